//! What a camera is, as every component sees it. The registry (owned by the discovery thread) publishes these as
//! immutable `Arc<Camera>` values; other components read them and subscribe to [`CameraEvent`]s.

use serde::Serialize;

use super::external::{SourceUrl, Transport};
use crate::config::VirtualCameraConfig;

/// What kind of source a camera is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CameraKind {
    /// A `/dev/videoN` device.
    #[default]
    V4l2,
    /// A configured ffmpeg test pattern (`virtualN`).
    Virtual,
    /// An RTSP source (IP camera) named by its stream name.
    External,
}

/// Where an external camera's stream comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalSource {
    /// The real URL (credentials included) is only reachable through `SourceUrl::expose`.
    pub url: SourceUrl,
    pub transport: Transport,
}

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
    /// Public id in responses: `/dev/videoN`, `virtualN` for a virtual camera, the stream name of an external one.
    pub device: String,
    /// MediaMTX path / stream name: `cameraN`, `virtualN`, or an external camera's stream name.
    pub path_name: String,
    /// N (`external::NO_DEVICE_NODE` for an external camera, which has no device node).
    pub number: u32,
    pub kind: CameraKind,
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
    /// Set for external cameras: the RTSP source to read.
    pub external: Option<ExternalSource>,
}

impl Camera {
    /// A real camera `/dev/videoN` about which nothing has been probed yet (the starting point of every registry
    /// entry; also what tests build on with struct-update syntax).
    pub fn unprobed(n: u32, status: CameraStatus) -> Camera {
        Camera {
            device: format!("/dev/video{n}"),
            path_name: format!("camera{n}"),
            number: n,
            kind: CameraKind::V4l2,
            status,
            name: format!("Camera {n}"),
            identity: format!("node:/dev/video{n}"),
            serial: None,
            bus_info: None,
            driver: None,
            is_virtual: false,
            formats: Vec::new(),
            resolution: String::new(),
            fps: 0,
            validation_status: "none".into(),
            error: None,
            virtual_source: None,
            input_format: None,
            external: None,
        }
    }
}

/// A change in the registry: the camera as it is now, and its status before (None = first seen).
#[derive(Debug, Clone)]
pub struct CameraEvent {
    pub camera: std::sync::Arc<Camera>,
    pub previous: Option<CameraStatus>,
}

impl Format {
    /// Every distinct frame rate of this format, rounded to integers, ascending.
    pub fn fps_options(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.sizes.iter().flat_map(|s| s.fps.iter().map(|f| f.round() as u32)).collect();
        v.retain(|&f| f > 0);
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Python's defaults for a camera whose driver reports no usable mode.
pub const DEFAULT_RESOLUTION: &str = "1920x1080";
pub const DEFAULT_FPS: u32 = 30;

/// The preferred mode: format MJPG, then YUYV, then the first one that has sizes; its
/// highest-area size; the highest rate ≤ 30 fps at that size (else the highest). `None` when no format has sizes.
pub fn preferred_mode(formats: &[Format]) -> Option<(&Format, &FrameSize, u32)> {
    let with_sizes = |f: &&Format| !f.sizes.is_empty();
    let format = formats
        .iter()
        .filter(with_sizes)
        .find(|f| f.fourcc == "MJPG")
        .or_else(|| formats.iter().filter(with_sizes).find(|f| f.fourcc == "YUYV"))
        .or_else(|| formats.iter().find(with_sizes))?;
    let size = format.sizes.iter().max_by_key(|s| (u64::from(s.width) * u64::from(s.height), s.width))?;
    let rates: Vec<u32> = size.fps.iter().map(|f| f.round() as u32).filter(|&f| f > 0).collect();
    let fps = rates.iter().copied().filter(|&f| f <= 30).max().or_else(|| rates.iter().copied().max());
    Some((format, size, fps.unwrap_or(DEFAULT_FPS)))
}

/// ffmpeg's `-input_format` name for a V4L2 fourcc, when ffmpeg has one.
pub fn ffmpeg_input_format(fourcc: &str) -> Option<&'static str> {
    Some(match fourcc {
        "MJPG" | "JPEG" => "mjpeg",
        "YUYV" => "yuyv422",
        "UYVY" => "uyvy422",
        "H264" => "h264",
        "NV12" => "nv12",
        "YU12" => "yuv420p",
        "RGB3" => "rgb24",
        "BGR3" => "bgr24",
        "GREY" => "gray",
        _ => return None,
    })
}

impl Camera {
    /// Every distinct frame size over all formats, `WxH`, largest first (by width, then height).
    pub fn resolutions(&self) -> Vec<String> {
        let mut sizes: Vec<(u32, u32)> =
            self.formats.iter().flat_map(|f| f.sizes.iter().map(|s| (s.width, s.height))).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.dedup();
        sizes.into_iter().map(|(w, h)| format!("{w}x{h}")).collect()
    }

    /// Distinct integer frame rates of the preferred format.
    pub fn fps_options(&self) -> Vec<u32> {
        preferred_mode(&self.formats).map(|(f, _, _)| f.fps_options()).unwrap_or_default()
    }

    /// FourCC codes of every format, in driver order.
    pub fn format_codes(&self) -> Vec<String> {
        self.formats.iter().map(|f| f.fourcc.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(code: &str, sizes: &[(u32, u32, &[f64])]) -> Format {
        Format {
            fourcc: code.into(),
            description: code.into(),
            sizes: sizes.iter().map(|(w, h, f)| FrameSize { width: *w, height: *h, fps: f.to_vec() }).collect(),
        }
    }

    #[test]
    fn preferred_mode_of_a_typical_webcam() {
        // A typical USB webcam: YUYV {640x480: [30, 15], 1920x1080: [5]}, MJPG {1920x1080: [30]}.
        let formats = vec![
            fmt("YUYV", &[(640, 480, &[30.0, 15.0]), (1920, 1080, &[5.0])]),
            fmt("MJPG", &[(1920, 1080, &[30.0])]),
        ];
        let (f, s, fps) = preferred_mode(&formats).unwrap();
        assert_eq!((f.fourcc.as_str(), s.width, s.height, fps), ("MJPG", 1920, 1080, 30));
        assert_eq!(formats[0].fps_options(), vec![5, 15, 30]);
    }

    #[test]
    fn preferred_fps_is_highest_not_above_30_else_max() {
        let formats = vec![fmt("H264", &[(1280, 720, &[60.0, 29.97, 15.0])]), fmt("GREY", &[(320, 240, &[90.0])])];
        assert_eq!(preferred_mode(&formats).unwrap().2, 30);
        let only_fast = vec![fmt("GREY", &[(320, 240, &[90.0, 60.0])])];
        assert_eq!(preferred_mode(&only_fast).unwrap().2, 90);
        let no_rates = vec![fmt("YUYV", &[(640, 480, &[])])];
        assert_eq!(preferred_mode(&no_rates).unwrap().2, DEFAULT_FPS);
        assert!(preferred_mode(&[fmt("MJPG", &[])]).is_none());
        // MJPG without sizes does not win over YUYV with sizes.
        let formats = vec![fmt("MJPG", &[]), fmt("YUYV", &[(640, 480, &[30.0])])];
        assert_eq!(preferred_mode(&formats).unwrap().0.fourcc, "YUYV");
    }
}
