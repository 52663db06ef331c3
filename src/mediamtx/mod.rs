//! MediaMTX integration (issue 6). Placeholder handle.

#[derive(Clone, Default)]
pub struct MediaMtx;
