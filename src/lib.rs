//! camera-service: a camera daemon for small Linux boxes. See README.md for the thread map.

pub mod auth;
pub mod camera;
pub mod config;
pub mod error;
pub mod events;
pub mod files;
pub mod formats;
pub mod http;
pub mod logging;
pub mod media;
pub mod mediamtx;
pub mod process;
pub mod rpc;
pub mod sys;
pub mod util;
pub mod web;
pub mod ws;

/// Crate version and the git commit it was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("BUILD_GIT_COMMIT");
