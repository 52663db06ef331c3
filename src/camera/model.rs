//! What a camera is, as every component sees it. The registry (owned by the discovery thread) publishes these as
//! immutable `Arc<Camera>` values; other components read them and subscribe to [`CameraEvent`]s.

use serde::Serialize;

use crate::config::VirtualCameraConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CameraStatus {
    #[serde(rename = "CONNECTED")]
    Connected,
    #[serde(rename = "DISCONNECTED")]
    Disconnected,
    #[serde(rename = "ERROR")]
    Error,
}

impl CameraStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraStatus::Connected => "CONNECTED",
            CameraStatus::Disconnected => "DISCONNECTED",
            CameraStatus::Error => "ERROR",
        }
    }
}

/// One discrete frame size of a format, with its frame rates (frames per second).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameSize {
    pub width: u32,
    pub height: u32,
    pub fps: Vec<f64>,
}

/// One pixel format the device offers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Format {
    /// FourCC, e.g. `MJPG`, `YUYV`.
    pub fourcc: String,
    pub description: String,
    pub sizes: Vec<FrameSize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    /// Public id in responses: `/dev/videoN`, or `virtualN` for a virtual camera.
    pub device: String,
    /// MediaMTX path / stream name: `cameraN` or `virtualN`.
    pub path_name: String,
    /// N.
    pub number: u32,
    pub status: CameraStatus,
    /// V4L2 card name (fallback `Camera N`); a virtual camera's configured name.
    pub name: String,
    /// Stable across re-plugging and renumbering: USB serial when present, else the bus path.
    pub identity: String,
    pub serial: Option<String>,
    pub bus_info: Option<String>,
    pub driver: Option<String>,
    pub is_virtual: bool,
    pub formats: Vec<Format>,
    /// Preferred mode, `WxH`.
    pub resolution: String,
    pub fps: u32,
    /// `confirmed` | `provisional` | `none` | `disconnected` | `error`.
    pub validation_status: String,
    /// Why the camera is in `ERROR` (e.g. `permission_denied`).
    pub error: Option<String>,
    /// Set for virtual cameras: the lavfi source to run.
    pub virtual_source: Option<VirtualCameraConfig>,
    /// Preferred input for ffmpeg: V4L2 input format name (`mjpeg`, `yuyv422`), if known.
    pub input_format: Option<String>,
}

/// A change in the registry: the camera as it is now, and its status before (None = first seen).
#[derive(Debug, Clone)]
pub struct CameraEvent {
    pub camera: std::sync::Arc<Camera>,
    pub previous: Option<CameraStatus>,
}
