//! JSON-RPC methods of the snapshot/recording component (roles per api.md §2.7 and §8.1).
#![forbid(unsafe_code)]

use serde_json::Value;

use crate::auth::Role;
use crate::error::Result;
use crate::rpc::notify::Notification;
use crate::rpc::{Call, Exec, Method};

pub static METHODS: &[Method] = &[
    Method { name: "take_snapshot", role: Some(Role::Operator), handler: take_snapshot, exec: Exec::Blocking },
    Method { name: "start_recording", role: Some(Role::Operator), handler: start_recording, exec: Exec::Blocking },
    Method { name: "stop_recording", role: Some(Role::Operator), handler: stop_recording, exec: Exec::Blocking },
    Method {
        name: "get_recording_status",
        role: Some(Role::Viewer),
        handler: get_recording_status,
        exec: Exec::Blocking,
    },
];

fn take_snapshot(call: &Call) -> Result<Value> {
    call.app.media.take_snapshot(call.params)
}

fn start_recording(call: &Call) -> Result<Value> {
    let (result, note) = call.app.media.start_recording(call.params)?;
    call.publish_after_reply(Notification::new("recording_status_update", note));
    Ok(result)
}

fn stop_recording(call: &Call) -> Result<Value> {
    let (result, note) = call.app.media.stop_recording(call.params)?;
    call.publish_after_reply(Notification::new("recording_status_update", note));
    Ok(result)
}

fn get_recording_status(call: &Call) -> Result<Value> {
    call.app.media.recording_status(call.params)
}
