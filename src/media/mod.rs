//! Snapshots and recordings (issue 7). Placeholder handle: the signatures below are the contract.

use std::collections::HashSet;
use std::time::SystemTime;

/// What camera listings show about a running recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingView {
    pub session_id: String,
    /// Newest segment file name.
    pub current_file: String,
    pub start_time: SystemTime,
}

#[derive(Clone, Default)]
pub struct Media;

impl Media {
    /// The running recording session of a camera (`device` as in responses), if any.
    pub fn recording_of(&self, _device: &str) -> Option<RecordingView> {
        None
    }

    /// Number of running recording sessions (the shutdown budget grows when there are some).
    pub fn recording_count(&self) -> usize {
        0
    }

    /// File names that a running recording is writing (never deleted, listed or cleaned up).
    pub fn active_files(&self) -> HashSet<String> {
        HashSet::new()
    }
}
