//! File management, storage, retention (issue 8). Placeholder handle: the signatures below are the contract.

/// Storage thresholds in percent used (decisions §7/§8), persisted in `<state_dir>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warning: u8,
    pub critical: u8,
}

#[derive(Clone, Default)]
pub struct Files;

impl Files {
    /// Current thresholds (config `recording.storage_*_percent` until an admin sets them).
    pub fn thresholds(&self) -> Thresholds {
        Thresholds { warning: 80, critical: 90 }
    }
}
