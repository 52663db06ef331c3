//! JSON-RPC methods of the snapshot/recording component: `take_snapshot`, `start_recording`, `stop_recording`,
//! `get_recording_status`.
#![forbid(unsafe_code)]

use serde_json::{json, Value};

use super::{Media, SnapshotParams, StartParams};
use crate::error::{Error, Result};
use crate::events::{self, Topic};
use crate::rpc::notify::Notification;
use crate::rpc::params::DeviceParams;
use crate::rpc::{method, Call, Method};

pub static METHODS: &[Method<Media>] = &[
    method!("take_snapshot", Operator, Blocking, take_snapshot),
    method!("start_recording", Operator, Blocking, start_recording),
    method!("stop_recording", Operator, Blocking, stop_recording),
    method!("get_recording_status", Viewer, Blocking, get_recording_status),
];

/// Every capture that got as far as the camera is an event: `snapshot.taken` or `snapshot.error`.
fn take_snapshot(media: &Media, p: SnapshotParams, call: &Call) -> Result<Value> {
    let asked = events::canonical_device(p.device());
    let result = media.take_snapshot(p);
    let event = match &result {
        Ok(r) => {
            let topic = if r["status"] == "FAILED" { Topic::SnapshotError } else { Topic::SnapshotTaken };
            Some(Notification::event(topic, r["device"].as_str(), r.clone()))
        }
        Err(Error::InvalidParams(_) | Error::CameraNotFound(_)) => None,
        Err(e) => Some(Notification::event(
            Topic::SnapshotError,
            Some(&asked),
            json!({"device": asked, "status": "FAILED", "error": e.to_string(), "code": e.code()}),
        )),
    };
    if let Some(n) = event {
        call.publish_after_reply(n);
    }
    result
}

/// The STARTED notification follows the reply, so a client never sees it before the result.
fn start_recording(media: &Media, p: StartParams, call: &Call) -> Result<Value> {
    let (result, note) = media.start_recording(p)?;
    call.publish_after_reply(Notification::recording(note));
    Ok(result)
}

fn stop_recording(media: &Media, p: DeviceParams, call: &Call) -> Result<Value> {
    let (result, note) = media.stop_recording(&p.device)?;
    call.publish_after_reply(Notification::recording(note));
    Ok(result)
}

fn get_recording_status(media: &Media, p: DeviceParams, _: &Call) -> Result<Value> {
    media.recording_status(&p.device)
}
