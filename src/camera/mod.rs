//! Cameras: V4L2 discovery, hot-plug, virtual cameras, camera methods (issue 5).
//! Placeholder handle: the signatures below are the contract other components code against.

pub mod model;

use std::sync::Arc;

use crossbeam_channel::Receiver;

pub use model::{Camera, CameraEvent, CameraStatus, Format, FrameSize};

use crate::error::{Error, Result};

#[derive(Clone, Default)]
pub struct Cameras;

impl Cameras {
    /// Every camera seen since start, in discovery order (virtual cameras first, in config order).
    pub fn list(&self) -> Vec<Arc<Camera>> {
        Vec::new()
    }

    /// Resolve a client-supplied id (`/dev/videoN`, `cameraN`, `virtualN`): malformed → -32602, never seen → -1000.
    pub fn get(&self, id: &str) -> Result<Arc<Camera>> {
        Err(Error::CameraNotFound(id.to_string()))
    }

    /// Registry changes, for components that follow cameras (MediaMTX paths, recordings).
    pub fn subscribe(&self) -> Receiver<CameraEvent> {
        crossbeam_channel::never()
    }

    /// Re-evaluate `camera_status_update` for `device` (e.g. its MediaMTX path appeared); sends only on change.
    pub fn announce(&self, _device: &str) {}
}
