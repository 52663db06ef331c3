//! Process-level plumbing: the command line, the daemon's start and stop, signals, thread supervision, the
//! shutdown token, systemd notification, the heartbeat board and the component status board.

pub mod cli;
pub mod daemon;
pub mod heartbeat;
pub mod sdnotify;
mod shutdown;
mod signals;
pub mod status;
mod supervisor;

pub use shutdown::Shutdown;
pub use supervisor::{guarded, spawn_watched, Supervisor, ThreadFailure};
