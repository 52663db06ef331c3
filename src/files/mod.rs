//! File management: listings with container metadata, info and deletion, storage figures and thresholds,
//! retention (policy, scheduled and on-demand cleanup) and authenticated downloads.
//!
//! [`Files`] is a cheap handle shared by the JSON-RPC handlers ([`rpc`]) and the HTTP download route
//! ([`download`]). Listings run on the caller's thread over cached directory indexes ([`listing`]); the `files`
//! thread ([`owner`]) owns the run-time settings (persisted in `<state_dir>`), the size cache and every cleanup run.

pub mod download;
mod listing;
pub mod meta;
pub mod names;
mod owner;
mod retention;
pub mod rpc;
mod state;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::RwLock;

use crate::config::Config;
use crate::error::FileKind;
pub use crate::sys::{disk_usage, DiskUsage};

pub use listing::Entry;
pub use owner::{load_settings, FilesOwner, Settings};
pub use retention::CleanupReport;
pub use state::{PolicySource, PolicyType, RetentionPolicy};

/// Storage thresholds in percent used, persisted in `<state_dir>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warning: u8,
    pub critical: u8,
}

/// Where the names of files being recorded come from (the recorder's sessions; tests inject their own).
pub type ActiveFiles = Arc<dyn Fn() -> HashSet<String> + Send + Sync>;

/// Handle to file management. Cheap to clone.
#[derive(Clone)]
pub struct Files {
    inner: Arc<Inner>,
    commands: Sender<owner::Command>,
}

/// What the handle and the `files` thread share. The thread holds this, not a [`Files`], so that it ends when the
/// last handle is gone.
struct Inner {
    config: Arc<Config>,
    active: ActiveFiles,
    recordings: listing::DirIndex,
    snapshots: listing::DirIndex,
    /// Published by the `files` thread (the only writer); readers clone the `Arc`. The lock is held only to swap
    /// or clone it.
    settings: RwLock<Arc<Settings>>,
}

impl Inner {
    fn index(&self, kind: FileKind) -> &listing::DirIndex {
        match kind {
            FileKind::Recording => &self.recordings,
            FileKind::Snapshot => &self.snapshots,
        }
    }

    /// Forget cached listings after this process changed the directories.
    fn invalidate(&self) {
        self.recordings.invalidate();
        self.snapshots.invalidate();
    }
}

impl Files {
    /// The handle, with the settings stored in `<state_dir>`, and its thread (not started yet).
    pub fn new(config: Arc<Config>, active: ActiveFiles) -> (Files, FilesOwner) {
        let settings = load_settings(&config);
        let inner = Arc::new(Inner {
            recordings: listing::DirIndex::new(config.mediamtx.recordings_path.clone()),
            snapshots: listing::DirIndex::new(config.mediamtx.snapshots_path.clone()),
            config,
            active,
            settings: RwLock::new(Arc::new(settings)),
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        (Files { inner: inner.clone(), commands: tx }, FilesOwner { inner, rx })
    }

    /// `min(recording.cleanup_interval, snapshots.cleanup_interval)`, at least one second.
    pub fn cleanup_interval(&self) -> Duration {
        owner::cleanup_interval(&self.inner.config)
    }

    /// The current settings (a snapshot).
    pub fn settings(&self) -> Arc<Settings> {
        self.inner.settings.read().clone()
    }

    /// Current thresholds (config `recording.storage_*_percent` until an admin sets them).
    pub fn thresholds(&self) -> Thresholds {
        self.inner.settings.read().thresholds
    }

    /// Validated by the caller (`warning < critical <= 100`); persisted before it takes effect.
    pub fn set_thresholds(&self, t: Thresholds) -> io::Result<()> {
        owner::ask(&self.commands, |reply| owner::Command::SetThresholds(t, reply))?
    }

    /// The retention policy an admin set, if any (`None` also while the persisted one is unreadable).
    pub fn retention_policy(&self) -> Option<RetentionPolicy> {
        match &self.inner.settings.read().policy {
            PolicySource::Set(p) => Some(p.clone()),
            PolicySource::Config | PolicySource::Unreadable(_) => None,
        }
    }

    /// Where the policy in force comes from (an unreadable persisted policy stops automatic cleanup).
    pub fn policy_source(&self) -> PolicySource {
        self.inner.settings.read().policy.clone()
    }

    /// Persists `p` (atomically) and makes it the policy.
    pub fn set_retention_policy(&self, p: RetentionPolicy) -> io::Result<()> {
        owner::ask(&self.commands, |reply| owner::Command::SetPolicy(p, reply))?
    }

    /// `cleanup_old_files`: apply the policy now (on the `files` thread, after any run in progress).
    pub fn cleanup_now(&self) -> io::Result<CleanupReport> {
        owner::ask(&self.commands, owner::Command::Cleanup)?
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn dir(&self, kind: FileKind) -> &Path {
        self.index(kind).dir()
    }

    fn index(&self, kind: FileKind) -> &listing::DirIndex {
        self.inner.index(kind)
    }

    /// Names a running recording is writing.
    pub fn active_files(&self) -> HashSet<String> {
        (self.inner.active)()
    }

    /// Recursive sizes of the recordings and snapshots directories, recomputed at most every minute.
    pub fn dir_sizes(&self) -> io::Result<(u64, u64)> {
        owner::ask(&self.commands, owner::Command::Sizes)
    }

    /// Forget cached listings and sizes after this process changed the directories.
    fn invalidate(&self) {
        self.inner.invalidate();
        let _ = self.commands.send(owner::Command::Invalidate);
    }
}

/// Bytes used by regular files under `dir` (symlinks not followed; depth bounded against loops and abuse).
fn dir_size(dir: &Path, depth: u32) -> u64 {
    const MAX_DEPTH: u32 = 8;
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_file() {
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        } else if ft.is_dir() && depth < MAX_DEPTH {
            total += dir_size(&entry.path(), depth + 1);
        }
    }
    total
}

/// The filesystem holding `path`, or its nearest existing ancestor (a storage directory may not exist yet).
fn existing_ancestor(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}
