//! camera-service: a camera daemon for small Linux boxes. See README.md for the thread map.

pub mod app;
pub mod auth;
pub mod camera;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod error;
pub mod files;
pub mod fsutil;
pub mod http;
pub mod ids;
pub mod lifecycle;
pub mod logging;
pub mod media;
pub mod mediamtx;
pub mod metrics;
pub mod notify;
pub mod rpc;
pub mod sdnotify;
pub mod status;
pub mod streams;
pub mod timefmt;
pub mod ws;

/// Crate version and the git commit it was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("BUILD_GIT_COMMIT");
