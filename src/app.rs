//! The daemon's shared context: configuration and a handle to every component. Handlers get `&App`.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::auth::Authenticator;
use crate::camera::Cameras;
use crate::config::Config;
use crate::files::Files;
use crate::media::Media;
use crate::mediamtx::MediaMtx;
use crate::process::status::Components;
use crate::process::Shutdown;
use crate::rpc::metrics::Metrics;
use crate::rpc::notify::Hub;

pub struct App {
    pub config: Arc<Config>,
    /// Monotonic start, for uptime.
    pub started: Instant,
    /// Wall-clock start, for reports.
    pub started_at: SystemTime,
    pub hub: Hub,
    pub shutdown: Shutdown,
    pub components: Components,
    pub auth: Authenticator,
    pub metrics: Arc<Metrics>,
    pub cameras: Cameras,
    pub mediamtx: MediaMtx,
    pub media: Media,
    pub files: Files,
}
