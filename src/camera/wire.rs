//! The JSON shapes of cameras on the wire: one place, used by the methods
//! and by `camera_status_update`, so list, status and notifications never disagree.
#![forbid(unsafe_code)]

use serde_json::{json, Map, Value};

use super::model::{Camera, CameraStatus};
use crate::camera::streams;
use crate::config::MediaMtxConfig;

/// `streams`: the three URLs while the camera has a MediaMTX path (MediaMTX enabled and the camera connected),
/// else `{}`.
pub fn streams_of(cam: &Camera, mtx: &MediaMtxConfig, host: Option<&str>) -> Value {
    if mtx.enabled && cam.status == CameraStatus::Connected {
        streams::urls(mtx, host, &cam.path_name)
    } else {
        streams::none()
    }
}

/// The identity keys (docs/cameras.md), added to every camera object and notification.
fn identity_fields(cam: &Camera, m: &mut Map<String, Value>) {
    m.insert("identity".into(), json!(cam.identity));
    m.insert("serial".into(), json!(cam.serial));
    m.insert("bus_info".into(), json!(cam.bus_info));
    m.insert("driver".into(), json!(cam.driver));
    m.insert("virtual".into(), json!(cam.is_virtual));
}

/// `camera_status_update` params: exactly the Python keys plus the identity keys.
pub fn status_update(cam: &Camera, mtx: &MediaMtxConfig, host: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("device".into(), json!(cam.device));
    m.insert("status".into(), json!(cam.status.as_str()));
    m.insert("name".into(), json!(cam.name));
    m.insert("resolution".into(), json!(cam.resolution));
    m.insert("fps".into(), json!(cam.fps));
    m.insert("streams".into(), streams_of(cam, mtx, host));
    identity_fields(cam, &mut m);
    Value::Object(m)
}

/// What a running recording adds to camera objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordingFields {
    pub session: Option<String>,
    pub current_file: Option<String>,
    pub elapsed: u64,
}

impl RecordingFields {
    fn insert(&self, m: &mut Map<String, Value>) {
        m.insert("recording".into(), json!(self.session.is_some()));
        m.insert("recording_session".into(), json!(self.session));
        m.insert("current_file".into(), json!(self.current_file));
        m.insert("elapsed_time".into(), json!(self.elapsed));
    }
}

/// One entry of `get_camera_list`.
pub fn list_entry(cam: &Camera, mtx: &MediaMtxConfig, host: Option<&str>, rec: &RecordingFields) -> Value {
    let mut v = status_update(cam, mtx, host);
    if let Value::Object(m) = &mut v {
        rec.insert(m);
    }
    v
}

/// `metrics` of `get_camera_status` (corrected from the Python service: integer readers, uptime in seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Metrics {
    pub bytes_sent: u64,
    pub readers: u64,
    pub uptime: u64,
}

/// `get_camera_status` result.
pub fn status(cam: &Camera, mtx: &MediaMtxConfig, host: Option<&str>, rec: &RecordingFields, m: Metrics) -> Value {
    let mut v = list_entry(cam, mtx, host, rec);
    if let Value::Object(o) = &mut v {
        o.insert("metrics".into(), json!({"bytes_sent": m.bytes_sent, "readers": m.readers, "uptime": m.uptime}));
        o.insert("capabilities".into(), json!({"formats": cam.format_codes(), "resolutions": cam.resolutions()}));
    }
    v
}

/// `get_camera_capabilities` result.
pub fn capabilities(cam: &Camera) -> Value {
    json!({
        "device": cam.device,
        "formats": cam.format_codes(),
        "resolutions": cam.resolutions(),
        "fps_options": cam.fps_options(),
        "validation_status": cam.validation_status,
    })
}
