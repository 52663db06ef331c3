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
