//! JSON-RPC methods of the snapshot/recording component: `take_snapshot`, `start_recording`, `stop_recording`,
//! `get_recording_status`.
#![forbid(unsafe_code)]

use serde_json::Value;

use super::{Media, SnapshotParams, StartParams};
use crate::error::Result;
use crate::rpc::notify::Notification;
use crate::rpc::params::DeviceParams;
use crate::rpc::{method, Call, Method};

pub static METHODS: &[Method<Media>] = &[
    method!("take_snapshot", Operator, Blocking, take_snapshot),
    method!("start_recording", Operator, Blocking, start_recording),
    method!("stop_recording", Operator, Blocking, stop_recording),
    method!("get_recording_status", Viewer, Blocking, get_recording_status),
];

fn take_snapshot(media: &Media, p: SnapshotParams, _: &Call) -> Result<Value> {
    media.take_snapshot(p)
}

/// The STARTED notification follows the reply, so a client never sees it before the result.
fn start_recording(media: &Media, p: StartParams, call: &Call) -> Result<Value> {
    let (result, note) = media.start_recording(p)?;
    call.publish_after_reply(Notification::new("recording_status_update", note));
    Ok(result)
}

fn stop_recording(media: &Media, p: DeviceParams, call: &Call) -> Result<Value> {
    let (result, note) = media.stop_recording(&p.device)?;
    call.publish_after_reply(Notification::new("recording_status_update", note));
    Ok(result)
}

fn get_recording_status(media: &Media, p: DeviceParams, _: &Call) -> Result<Value> {
    media.recording_status(&p.device)
}
