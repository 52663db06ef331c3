//! Camera methods: `get_camera_list`, `get_camera_status`, `get_camera_capabilities`. All are viewer-level and
//! inline: they read the registry snapshot and two narrow seams (the recordings board and the MediaMTX path figures),
//! and never wait on I/O.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::model::Camera;
use super::wire::{self, Metrics, RecordingFields};
use super::{CameraStatus, Cameras};
use crate::config::Config;
use crate::error::Result;
use crate::rpc::params::{DeviceParams, NoParams};
use crate::rpc::{method, Call, Method};

/// What camera listings show about a running recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingView {
    pub session_id: String,
    /// Newest segment file name.
    pub current_file: String,
    pub start_time: SystemTime,
}

/// Which cameras record (implemented by the recorder's published sessions).
pub trait RecordingLookup: Send + Sync {
    /// The running recording of `device` (as in responses), if any.
    fn recording_of(&self, device: &str) -> Option<RecordingView>;
}

/// Runtime figures of a camera's stream (implemented by the MediaMTX integration's cache).
pub trait StreamFigures: Send + Sync {
    /// `None` when the stream server has no fresh figures for `path`.
    fn figures(&self, path: &str) -> Option<Metrics>;
}

/// The state camera methods read.
pub struct CameraMethods {
    pub cameras: Cameras,
    pub config: Arc<Config>,
    pub recordings: Arc<dyn RecordingLookup>,
    pub streams: Arc<dyn StreamFigures>,
}

pub static METHODS: &[Method<CameraMethods>] = &[
    method!("get_camera_list", Viewer, Inline, get_camera_list),
    method!("get_camera_status", Viewer, Inline, get_camera_status),
    method!("get_camera_capabilities", Viewer, Inline, get_camera_capabilities),
];

fn recording_of(m: &CameraMethods, cam: &Camera) -> RecordingFields {
    match m.recordings.recording_of(&cam.device) {
        Some(r) => RecordingFields {
            session: Some(r.session_id),
            current_file: Some(r.current_file),
            elapsed: SystemTime::now().duration_since(r.start_time).map(|d| d.as_secs()).unwrap_or(0),
        },
        None => RecordingFields::default(),
    }
}

/// `{cameras, total, connected}`; params are ignored (as in Python), whatever their shape.
fn get_camera_list(m: &CameraMethods, _: NoParams, call: &Call) -> Result<Value> {
    let host = call.caller.host.as_deref();
    let cameras = m.cameras.list();
    let list: Vec<Value> =
        cameras.iter().map(|c| wire::list_entry(c, &m.config.mediamtx, host, &recording_of(m, c))).collect();
    let connected = cameras.iter().filter(|c| c.status == CameraStatus::Connected).count();
    Ok(json!({"cameras": list, "total": list.len(), "connected": connected}))
}

fn get_camera_status(m: &CameraMethods, p: DeviceParams, call: &Call) -> Result<Value> {
    let cam = m.cameras.get(&p.device)?;
    let metrics = if cam.status == CameraStatus::Connected {
        m.streams.figures(&cam.path_name).unwrap_or_default()
    } else {
        Metrics::default()
    };
    let rec = recording_of(m, &cam);
    Ok(wire::status(&cam, &m.config.mediamtx, call.caller.host.as_deref(), &rec, metrics))
}

fn get_camera_capabilities(m: &CameraMethods, p: DeviceParams, _: &Call) -> Result<Value> {
    let cam = m.cameras.get(&p.device)?;
    Ok(wire::capabilities(&cam))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::camera::registry::{base_camera, disconnected_camera, virtual_camera};
    use crate::config::VirtualCameraConfig;
    use crate::error::Error;
    use crate::rpc::Caller;

    struct NoRecordings;
    impl RecordingLookup for NoRecordings {
        fn recording_of(&self, _: &str) -> Option<RecordingView> {
            None
        }
    }

    struct NoFigures;
    impl StreamFigures for NoFigures {
        fn figures(&self, _: &str) -> Option<Metrics> {
            None
        }
    }

    /// The camera methods' whole world: three cameras, no recordings, no stream figures.
    fn state(mtx_enabled: bool) -> CameraMethods {
        let mut config = Config::default();
        config.mediamtx.enabled = mtx_enabled;
        let mut c1 = base_camera(1, CameraStatus::Connected);
        c1.name = "HD Pro Webcam C920".into();
        c1.formats = vec![crate::camera::Format {
            fourcc: "MJPG".into(),
            description: "Motion-JPEG".into(),
            sizes: vec![
                crate::camera::FrameSize { width: 1280, height: 720, fps: vec![30.0, 15.0] },
                crate::camera::FrameSize { width: 640, height: 480, fps: vec![30.0] },
            ],
        }];
        c1.resolution = "1280x720".into();
        c1.fps = 30;
        c1.validation_status = "confirmed".into();
        let c2 = disconnected_camera(&base_camera(2, CameraStatus::Connected));
        let cams = vec![virtual_camera(0, &VirtualCameraConfig::default()), c1, c2];
        CameraMethods {
            cameras: Cameras::fixed(cams),
            config: Arc::new(config),
            recordings: Arc::new(NoRecordings),
            streams: Arc::new(NoFigures),
        }
    }

    /// Through the table entry, so params are decoded as the dispatcher does.
    fn call(m: &CameraMethods, name: &str, params: Value) -> crate::error::Result<Value> {
        let caller = Caller { host: Some("box.local".into()), ..Caller::default() };
        let method = METHODS.iter().find(|x| x.name == name).unwrap();
        method.invoke(m, &params, &Call::new(&caller))
    }

    #[test]
    fn list_has_every_field() {
        let m = state(true);
        let r = call(&m, "get_camera_list", Value::Null).unwrap();
        assert_eq!((r["total"].clone(), r["connected"].clone()), (json!(3), json!(2)));
        let c = &r["cameras"][1];
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "device",
            "status",
            "name",
            "resolution",
            "fps",
            "streams",
            "recording",
            "recording_session",
            "current_file",
            "elapsed_time",
            "identity",
            "serial",
            "bus_info",
            "driver",
            "virtual",
        ];
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(c["device"], "/dev/video1");
        assert_eq!(c["streams"]["rtsp"], "rtsp://box.local:8554/camera1");
        assert_eq!(c["recording"], false);
        assert_eq!(c["recording_session"], Value::Null);
        assert_eq!(r["cameras"][0]["device"], "virtual0");
        assert_eq!(r["cameras"][2]["status"], "DISCONNECTED");
        assert_eq!(r["cameras"][2]["streams"], json!({}));
        // MediaMTX off: no URLs anywhere.
        let r = call(&state(false), "get_camera_list", json!([1])).unwrap();
        assert_eq!(r["cameras"][1]["streams"], json!({}));
    }

    #[test]
    fn status_and_capabilities_accept_both_id_forms() {
        let m = state(true);
        for id in ["/dev/video1", "camera1"] {
            let s = call(&m, "get_camera_status", json!({"device": id})).unwrap();
            assert_eq!(s["device"], "/dev/video1");
            assert_eq!(s["name"], "HD Pro Webcam C920");
            assert_eq!(s["metrics"], json!({"bytes_sent": 0, "readers": 0, "uptime": 0}));
            assert_eq!(s["capabilities"], json!({"formats": ["MJPG"], "resolutions": ["1280x720", "640x480"]}));
        }
        let c = call(&m, "get_camera_capabilities", json!({"device": "camera1"})).unwrap();
        assert_eq!(
            c,
            json!({"device": "/dev/video1", "formats": ["MJPG"], "resolutions": ["1280x720", "640x480"],
                   "fps_options": [15, 30], "validation_status": "confirmed"})
        );
        let v = call(&m, "get_camera_capabilities", json!({"device": "virtual0"})).unwrap();
        assert_eq!(v["resolutions"], json!(["640x480"]));
        assert_eq!(v["fps_options"], json!([15]));
        let d = call(&m, "get_camera_capabilities", json!({"device": "/dev/video2"})).unwrap();
        assert_eq!(d["validation_status"], "disconnected");
    }

    #[test]
    fn unknown_and_malformed_ids() {
        let m = state(true);
        for f in ["get_camera_status", "get_camera_capabilities"] {
            assert!(matches!(call(&m, f, json!({"device": "/dev/video7"})), Err(Error::CameraNotFound(_))));
            assert!(matches!(call(&m, f, json!({"device": "virtual3"})), Err(Error::CameraNotFound(_))));
            for bad in [json!({"device": "/dev/sda"}), json!({"device": 3}), json!({}), json!([1])] {
                assert!(matches!(call(&m, f, bad), Err(Error::InvalidParams(_))));
            }
        }
        assert_eq!(Error::CameraNotFound("x".into()).code(), -1000);
    }
}
