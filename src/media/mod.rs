//! Snapshots and recordings (issue 7). Placeholder handle.

#[derive(Clone, Default)]
pub struct Media;
