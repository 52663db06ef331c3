//! JSON-RPC methods of the MediaMTX integration: `get_streams`.

use serde_json::Value;

use super::MediaMtx;
use crate::error::Result;
use crate::rpc::params::NoParams;
use crate::rpc::{method, Call, Method};

pub static METHODS: &[Method<MediaMtx>] = &[method!("get_streams", Viewer, Blocking, get_streams)];

/// An array of `{name, source, ready, readers, bytes_sent}`; MediaMTX errors give `[]`.
fn get_streams(mtx: &MediaMtx, _: NoParams, _: &Call) -> Result<Value> {
    Ok(Value::Array(mtx.streams()))
}
