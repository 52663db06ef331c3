//! Camera methods (api.md §3.3–3.5, decisions §5). All are viewer-level and inline: they read the registry snapshot,
//! the MediaMTX helper's cached path metrics and the media component's recording table, and never wait on I/O.
#![forbid(unsafe_code)]

use std::time::SystemTime;

use serde_json::{json, Value};

use super::model::Camera;
use super::wire::{self, Metrics, RecordingFields};
use crate::auth::Role;
use crate::error::Result;
use crate::rpc::{params, Call, Exec, Method};

pub static METHODS: &[Method] = &[
    Method { name: "get_camera_list", role: Some(Role::Viewer), handler: get_camera_list, exec: Exec::Inline },
    Method { name: "get_camera_status", role: Some(Role::Viewer), handler: get_camera_status, exec: Exec::Inline },
    Method {
        name: "get_camera_capabilities",
        role: Some(Role::Viewer),
        handler: get_camera_capabilities,
        exec: Exec::Inline,
    },
];

fn recording_of(call: &Call, cam: &Camera) -> RecordingFields {
    match call.app.media.recording_of(&cam.device) {
        Some(r) => RecordingFields {
            session: Some(r.session_id),
            current_file: Some(r.current_file),
            elapsed: SystemTime::now().duration_since(r.start_time).map(|d| d.as_secs()).unwrap_or(0),
        },
        None => RecordingFields::default(),
    }
}

/// `{cameras, total, connected}`; params are ignored (as in Python).
pub fn get_camera_list(call: &Call) -> Result<Value> {
    let app = call.app;
    let host = call.caller.host.as_deref();
    let cameras = app.cameras.list();
    let list: Vec<Value> =
        cameras.iter().map(|c| wire::list_entry(c, &app.config.mediamtx, host, &recording_of(call, c))).collect();
    let connected = cameras.iter().filter(|c| c.status == super::CameraStatus::Connected).count();
    Ok(json!({"cameras": list, "total": list.len(), "connected": connected}))
}

pub fn get_camera_status(call: &Call) -> Result<Value> {
    let device = params::required_str(call.params, "device")?;
    let app = call.app;
    let cam = app.cameras.get(device)?;
    let metrics = if cam.status == super::CameraStatus::Connected {
        app.mediamtx
            .path_metrics(&cam.path_name)
            .map(|m| Metrics { bytes_sent: m.bytes_sent, readers: m.readers, uptime: m.uptime })
            .unwrap_or_default()
    } else {
        Metrics::default()
    };
    let rec = recording_of(call, &cam);
    Ok(wire::status(&cam, &app.config.mediamtx, call.caller.host.as_deref(), &rec, metrics))
}

pub fn get_camera_capabilities(call: &Call) -> Result<Value> {
    let device = params::required_str(call.params, "device")?;
    let cam = call.app.cameras.get(device)?;
    Ok(wire::capabilities(&cam))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};

    use serde_json::{json, Value};

    use super::*;
    use crate::app::App;
    use crate::camera::model::CameraStatus;
    use crate::camera::registry::{base_camera, disconnected_camera, virtual_camera};
    use crate::camera::Cameras;
    use crate::config::{Config, VirtualCameraConfig};
    use crate::error::Error;
    use crate::rpc::Caller;

    fn app(mtx_enabled: bool) -> App {
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
        App {
            config: Arc::new(config),
            started: Instant::now(),
            started_at: SystemTime::now(),
            hub: Default::default(),
            shutdown: Default::default(),
            components: Default::default(),
            auth: crate::auth::Authenticator::new(b"unit-test-secret", "/nonexistent/keys.json".into(), 0),
            metrics: Arc::new(crate::rpc::metrics::Metrics::new(&[])),
            cameras: Cameras::fixed(cams),
            mediamtx: Default::default(),
            media: Default::default(),
            files: Default::default(),
        }
    }

    fn call(app: &App, f: crate::rpc::Handler, params: Value) -> crate::error::Result<Value> {
        let caller = Caller { host: Some("box.local".into()), ..Caller::default() };
        f(&Call::new(app, &params, &caller))
    }

    #[test]
    fn list_has_every_field() {
        let app = app(true);
        let r = call(&app, get_camera_list, Value::Null).unwrap();
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
        let r = call(&self::app(false), get_camera_list, Value::Null).unwrap();
        assert_eq!(r["cameras"][1]["streams"], json!({}));
    }

    #[test]
    fn status_and_capabilities_accept_both_id_forms() {
        let app = app(true);
        for id in ["/dev/video1", "camera1"] {
            let s = call(&app, get_camera_status, json!({"device": id})).unwrap();
            assert_eq!(s["device"], "/dev/video1");
            assert_eq!(s["name"], "HD Pro Webcam C920");
            assert_eq!(s["metrics"], json!({"bytes_sent": 0, "readers": 0, "uptime": 0}));
            assert_eq!(s["capabilities"], json!({"formats": ["MJPG"], "resolutions": ["1280x720", "640x480"]}));
        }
        let c = call(&app, get_camera_capabilities, json!({"device": "camera1"})).unwrap();
        assert_eq!(
            c,
            json!({"device": "/dev/video1", "formats": ["MJPG"], "resolutions": ["1280x720", "640x480"],
                   "fps_options": [15, 30], "validation_status": "confirmed"})
        );
        let v = call(&app, get_camera_capabilities, json!({"device": "virtual0"})).unwrap();
        assert_eq!(v["resolutions"], json!(["640x480"]));
        assert_eq!(v["fps_options"], json!([15]));
        let d = call(&app, get_camera_capabilities, json!({"device": "/dev/video2"})).unwrap();
        assert_eq!(d["validation_status"], "disconnected");
    }

    #[test]
    fn unknown_and_malformed_ids() {
        let app = app(true);
        for f in [get_camera_status as crate::rpc::Handler, get_camera_capabilities] {
            assert!(matches!(call(&app, f, json!({"device": "/dev/video7"})), Err(Error::CameraNotFound(_))));
            assert!(matches!(call(&app, f, json!({"device": "virtual3"})), Err(Error::CameraNotFound(_))));
            for bad in [json!({"device": "/dev/sda"}), json!({"device": 3}), json!({}), json!([1])] {
                assert!(matches!(call(&app, f, bad), Err(Error::InvalidParams(_))));
            }
        }
        assert_eq!(Error::CameraNotFound("x".into()).code(), -1000);
    }
}
