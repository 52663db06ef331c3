//! MediaMTX integration (issue 6). Placeholder handle: the signatures below are the contract.

use std::time::Duration;

use crate::error::{Error, Result};

/// Runtime figures of one MediaMTX path (from `GET /v3/paths/get/{name}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathMetrics {
    pub ready: bool,
    pub bytes_sent: u64,
    pub readers: u64,
    /// Seconds since the path became ready (0 when not ready).
    pub uptime: u64,
}

#[derive(Clone, Default)]
pub struct MediaMtx;

impl MediaMtx {
    /// `mediamtx.enabled`.
    pub fn enabled(&self) -> bool {
        false
    }

    /// MediaMTX is enabled and reachable (circuit breaker closed).
    pub fn available(&self) -> bool {
        false
    }

    /// Our path for this stream exists in MediaMTX (so `streams` carries URLs).
    pub fn has_path(&self, _path: &str) -> bool {
        false
    }

    /// Runtime figures of the path, when MediaMTX answers in time.
    pub fn path_metrics(&self, _path: &str) -> Option<PathMetrics> {
        None
    }

    /// Make sure the path exists with our configuration (idempotent).
    pub fn ensure_path(&self, path: &str) -> Result<()> {
        Err(Error::MediaMtx(format!("MediaMTX not available for {path}")))
    }

    /// Switch MediaMTX's recorder for the path on or off.
    pub fn set_record(&self, path: &str, _on: bool) -> Result<()> {
        Err(Error::MediaMtx(format!("MediaMTX not available for {path}")))
    }

    /// Wait until the path is ready (a publisher is up), at most `timeout`.
    pub fn wait_ready(&self, path: &str, _timeout: Duration) -> Result<()> {
        Err(Error::MediaMtx(format!("MediaMTX not available for {path}")))
    }
}
