//! Cameras: V4L2 discovery, hot-plug, virtual cameras, camera methods (issue 5). Placeholder handle.

#[derive(Clone, Default)]
pub struct Cameras;
