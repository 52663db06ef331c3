//! File management, storage, retention (issue 8). Placeholder handle.

#[derive(Clone, Default)]
pub struct Files;
