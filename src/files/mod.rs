//! File management (issue 8): listings with container metadata, info and deletion, storage figures and
//! thresholds, retention (policy, scheduled and on-demand cleanup) and authenticated downloads.
//!
//! [`Files`] is a cheap handle shared by the JSON-RPC handlers ([`rpc`]), the HTTP download route ([`download`])
//! and the `retention` thread. Directory indexes and metadata are cached ([`listing`]); run-time settings are
//! persisted in `<state_dir>` ([`state`]).

pub mod download;
mod listing;
pub mod meta;
pub mod names;
mod retention;
pub mod rpc;
mod state;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::error::FileKind;
use crate::media::Media;
use crate::process::status::{Components, State};
use crate::process::Supervisor;
use crate::rpc::notify::Hub;
pub use crate::sys::{disk_usage, DiskUsage};

pub use listing::Entry;
pub use retention::CleanupReport;
pub use state::{PolicySource, PolicyType, RetentionPolicy};

use crate::app::App;
use crate::http::{Request, Response};

/// Storage thresholds in percent used (decisions §7/§8), persisted in `<state_dir>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub warning: u8,
    pub critical: u8,
}

/// How long a computed directory size is reused by `get_storage_info` (internals §7.5).
const SIZE_CACHE_AGE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Files {
    inner: Arc<Inner>,
}

/// Where the names of files being recorded come from (the media component; tests inject their own).
pub type ActiveFiles = Arc<dyn Fn() -> HashSet<String> + Send + Sync>;

struct Inner {
    config: Arc<Config>,
    active: ActiveFiles,
    recordings: listing::DirIndex,
    snapshots: listing::DirIndex,
    thresholds: RwLock<Thresholds>,
    /// `Config` until an admin sets one; `Unreadable` while the persisted one cannot be used.
    policy: RwLock<PolicySource>,
    /// Recursive sizes (recordings, snapshots) and when they were computed.
    sizes: Mutex<Option<(Instant, u64, u64)>>,
    /// Serialises cleanup runs (scheduled and on demand); it guards no data.
    cleanup_run: Mutex<()>,
    /// False for the in-memory default handle: nothing is read from or written to `state_dir`.
    persist: bool,
}

impl Default for Files {
    /// An in-memory handle over the default configuration with no active recordings (tests and tools; the daemon
    /// uses [`Files::start`]).
    fn default() -> Self {
        Files::build(Arc::new(Config::default()), Arc::new(HashSet::new), false)
    }
}

impl Files {
    /// A handle with persisted settings loaded from `<state_dir>`, without the retention thread.
    pub fn new(config: Arc<Config>, media: Media) -> Files {
        Files::build(config, Arc::new(move || media.active_files()), true)
    }

    /// Like [`Files::new`] with another source of active file names (the narrow seam tests use).
    pub fn with_active_files(config: Arc<Config>, active: ActiveFiles) -> Files {
        Files::build(config, active, true)
    }

    fn build(config: Arc<Config>, active: ActiveFiles, persist: bool) -> Files {
        let rec = &config.recording;
        let mut thresholds = Thresholds { warning: rec.storage_warn_percent, critical: rec.storage_block_percent };
        let mut policy = PolicySource::Config;
        if persist {
            match state::load::<state::StoredThresholds>(&config.state_dir, state::THRESHOLDS_FILE) {
                Ok(Some(t)) if t.warning_threshold < t.critical_threshold && t.critical_threshold <= 100 => {
                    thresholds = Thresholds { warning: t.warning_threshold, critical: t.critical_threshold };
                }
                Ok(Some(t)) => log::warn!("ignoring invalid stored storage thresholds {t:?}"),
                Ok(None) => {}
                Err(e) => log::warn!("ignoring unreadable {}: {e}", state::THRESHOLDS_FILE),
            }
            policy = state::load_retention(&config.state_dir);
            if let PolicySource::Unreadable(reason) = &policy {
                report_unreadable_policy(&config.state_dir, reason);
            }
        }
        let inner = Inner {
            recordings: listing::DirIndex::new(config.mediamtx.recordings_path.clone()),
            snapshots: listing::DirIndex::new(config.mediamtx.snapshots_path.clone()),
            config,
            active,
            thresholds: RwLock::new(thresholds),
            policy: RwLock::new(policy),
            sizes: Mutex::new(None),
            cleanup_run: Mutex::new(()),
            persist,
        };
        Files { inner: Arc::new(inner) }
    }

    /// Loads persisted settings and starts the `retention` thread: its first run comes one cleanup interval
    /// after start (never during start-up), then every interval.
    pub fn start(
        config: Arc<Config>,
        media: Media,
        _hub: Hub,
        components: Components,
        supervisor: &Supervisor,
    ) -> io::Result<Files> {
        let files = Files::new(config, media);
        let interval = files.cleanup_interval();
        let worker = files.clone();
        let shutdown = supervisor.shutdown().clone();
        components.set("retention", State::Running, format!("Retention runs every {} s", interval.as_secs()));
        let status = components.clone();
        supervisor.spawn("retention", move || {
            while !shutdown.sleep(interval) {
                worker.scheduled_cleanup();
            }
            status.set("retention", State::Stopped, "Retention stopped");
            Ok(())
        })?;
        Ok(files)
    }

    /// `min(recording.cleanup_interval, snapshots.cleanup_interval)`, at least one second.
    pub fn cleanup_interval(&self) -> Duration {
        let c = &self.inner.config;
        Duration::from_secs(c.recording.cleanup_interval.min(c.snapshots.cleanup_interval).max(1))
    }

    /// Current thresholds (config `recording.storage_*_percent` until an admin sets them).
    pub fn thresholds(&self) -> Thresholds {
        *self.inner.thresholds.read()
    }

    /// Validated by the caller (`warning < critical <= 100`); persisted before it takes effect.
    pub fn set_thresholds(&self, t: Thresholds) -> io::Result<()> {
        if self.inner.persist {
            let stored = state::StoredThresholds { warning_threshold: t.warning, critical_threshold: t.critical };
            state::save(&self.inner.config.state_dir, state::THRESHOLDS_FILE, &stored)?;
        }
        *self.inner.thresholds.write() = t;
        log::info!("storage thresholds set: warning {} %, critical {} %", t.warning, t.critical);
        Ok(())
    }

    /// The retention policy an admin set, if any.
    pub fn retention_policy(&self) -> Option<RetentionPolicy> {
        match &*self.inner.policy.read() {
            PolicySource::Set(p) => Some(p.clone()),
            PolicySource::Config | PolicySource::Unreadable(_) => None,
        }
    }

    /// Where the policy in force comes from. While the persisted policy is unreadable, the file is read again
    /// on every call, so a repaired file takes effect without a restart.
    pub fn policy_source(&self) -> PolicySource {
        let current = self.inner.policy.read().clone();
        if !matches!(current, PolicySource::Unreadable(_)) || !self.inner.persist {
            return current;
        }
        let reread = state::load_retention(&self.inner.config.state_dir);
        match &reread {
            PolicySource::Unreadable(_) => return current,
            PolicySource::Set(p) => log::info!("{} is readable again: {p:?}", state::RETENTION_FILE),
            PolicySource::Config => log::info!("{} was removed: the configured policy applies", state::RETENTION_FILE),
        }
        *self.inner.policy.write() = reread.clone();
        reread
    }

    /// Persists `p` (atomically, replacing an unreadable file) and makes it the policy.
    pub fn set_retention_policy(&self, p: RetentionPolicy) -> io::Result<()> {
        if self.inner.persist {
            state::save_retention(&self.inner.config.state_dir, &p)?;
        }
        log::info!("retention policy set: {p:?}");
        *self.inner.policy.write() = PolicySource::Set(p);
        Ok(())
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn dir(&self, kind: FileKind) -> &Path {
        self.index(kind).dir()
    }

    fn index(&self, kind: FileKind) -> &listing::DirIndex {
        match kind {
            FileKind::Recording => &self.inner.recordings,
            FileKind::Snapshot => &self.inner.snapshots,
        }
    }

    /// Names a running recording is writing.
    pub fn active_files(&self) -> HashSet<String> {
        (self.inner.active)()
    }

    /// Recursive sizes of the recordings and snapshots directories, recomputed at most every minute.
    pub fn dir_sizes(&self) -> (u64, u64) {
        if let Some((at, r, s)) = *self.inner.sizes.lock() {
            if at.elapsed() < SIZE_CACHE_AGE {
                return (r, s);
            }
        }
        let r = dir_size(self.dir(FileKind::Recording), 0);
        let s = dir_size(self.dir(FileKind::Snapshot), 0);
        *self.inner.sizes.lock() = Some((Instant::now(), r, s));
        (r, s)
    }

    /// Forget cached listings and sizes after this process changed the directories.
    fn invalidate(&self) {
        self.inner.recordings.invalidate();
        self.inner.snapshots.invalidate();
        *self.inner.sizes.lock() = None;
    }
}

/// The operator must see this: cleanup is off until they act.
fn report_unreadable_policy(state_dir: &Path, reason: &str) {
    let last = match state::last_good_retention(state_dir) {
        Some(p) => format!("the last good policy is kept in {}: {p:?}", state::RETENTION_LAST_GOOD_FILE),
        None => "no earlier copy is kept".to_string(),
    };
    log::error!(
        "retention policy {} is unusable ({reason}): automatic cleanup is suspended until the file is repaired or \
         set_retention_policy is called; {last}",
        state_dir.join(state::RETENTION_FILE).display()
    );
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

/// `GET`/`HEAD /files/recordings/<name>` and `/files/snapshots/<name>` on both HTTP listeners ([`download`]).
pub fn http_download(app: &App, req: &Request) -> Response {
    download::respond(&app.files, &app.auth, req)
}
