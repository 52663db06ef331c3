//! JSON-RPC methods of the MediaMTX integration.

use serde_json::Value;

use crate::auth::Role;
use crate::error::Result;
use crate::rpc::{Call, Exec, Method};

pub static METHODS: &[Method] =
    &[Method { name: "get_streams", role: Some(Role::Viewer), handler: get_streams, exec: Exec::Blocking }];

/// `get_streams` (api.md §3.6): an array of `{name, source, ready, readers, bytes_sent}`; MediaMTX errors → `[]`.
fn get_streams(call: &Call) -> Result<Value> {
    Ok(Value::Array(call.app.mediamtx.streams()))
}
