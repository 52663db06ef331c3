//! The `files` thread: sole owner of the settings an admin changes at run time (storage thresholds, retention
//! policy), of the directory-size cache, and of every cleanup run (scheduled and on demand).
//!
//! Handlers ask it with a [`Command`] and a reply channel; everyone reads the [`Settings`] it publishes as an
//! immutable `Arc` snapshot. Owning the writes in one thread keeps the file on disk and the published value in the
//! same order when two admins change a setting at once, and it serialises cleanup runs without a lock held across
//! file deletions.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender};

use super::retention::{self, CleanupReport};
use super::state::{self, PolicySource, RetentionPolicy};
use super::{Inner, Thresholds};
use crate::config::Config;
use crate::error::FileKind;
use crate::process::status::{Components, State};
use crate::process::{Shutdown, Supervisor};

/// How long a computed directory size is reused by `get_storage_info` (a recursive walk is not free).
const SIZE_CACHE_AGE: Duration = Duration::from_secs(60);
/// How long a handler waits for the thread (it may be in the middle of a long cleanup run).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// The run-time settings, as published by the `files` thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub thresholds: Thresholds,
    /// `Config` until an admin sets one; `Unreadable` while the persisted one cannot be used.
    pub policy: PolicySource,
}

/// The settings at start: configuration, overridden by what an admin stored in `<state_dir>`.
pub fn load_settings(config: &Config) -> Settings {
    let rec = &config.recording;
    let mut settings = Settings {
        thresholds: Thresholds { warning: rec.storage_warn_percent, critical: rec.storage_block_percent },
        policy: PolicySource::Config,
    };
    match state::load::<state::StoredThresholds>(&config.state_dir, state::THRESHOLDS_FILE) {
        Ok(Some(t)) if t.warning_threshold < t.critical_threshold && t.critical_threshold <= 100 => {
            settings.thresholds = Thresholds { warning: t.warning_threshold, critical: t.critical_threshold };
        }
        Ok(Some(t)) => log::warn!("ignoring invalid stored storage thresholds {t:?}"),
        Ok(None) => {}
        Err(e) => log::warn!("ignoring unreadable {}: {e}", state::THRESHOLDS_FILE),
    }
    settings.policy = state::load_retention(&config.state_dir);
    if let PolicySource::Unreadable(reason) = &settings.policy {
        report_unreadable_policy(&config.state_dir, reason);
    }
    settings
}

/// The operator must see this: cleanup is off until they act.
fn report_unreadable_policy(state_dir: &std::path::Path, reason: &str) {
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

pub(super) enum Command {
    SetThresholds(Thresholds, Sender<io::Result<()>>),
    SetPolicy(RetentionPolicy, Sender<io::Result<()>>),
    Cleanup(Sender<io::Result<CleanupReport>>),
    /// Recursive sizes of (recordings, snapshots).
    Sizes(Sender<(u64, u64)>),
    /// Files changed (a delete): forget the cached sizes.
    Invalidate,
}

/// Send `make(reply)` to the thread and wait for the answer.
pub(super) fn ask<T>(commands: &Sender<Command>, make: impl FnOnce(Sender<T>) -> Command) -> io::Result<T> {
    let (tx, rx) = bounded(1);
    commands.send(make(tx)).map_err(|_| io::Error::other("the files thread is not running"))?;
    rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| io::Error::other("the files thread did not answer"))
}

/// The `files` thread, not started yet.
pub struct FilesOwner {
    pub(super) inner: Arc<Inner>,
    pub(super) rx: Receiver<Command>,
}

impl FilesOwner {
    /// Start the thread: its first scheduled cleanup comes one cleanup interval after start (never during
    /// start-up), then every interval.
    pub fn spawn(self, components: Components, supervisor: &Supervisor) -> io::Result<()> {
        let interval = cleanup_interval(&self.inner.config);
        components.set("retention", State::Running, format!("Retention runs every {} s", interval.as_secs()));
        let shutdown = supervisor.shutdown().clone();
        let owner = Owner { inner: self.inner, sizes: None };
        let rx = self.rx;
        supervisor.spawn("files", move || {
            owner.run(&rx, interval, &shutdown);
            components.set("retention", State::Stopped, "Retention stopped");
            Ok(())
        })
    }
}

/// `min(recording.cleanup_interval, snapshots.cleanup_interval)`, at least one second.
pub fn cleanup_interval(c: &Config) -> Duration {
    Duration::from_secs(c.recording.cleanup_interval.min(c.snapshots.cleanup_interval).max(1))
}

struct Owner {
    inner: Arc<Inner>,
    /// Recursive sizes (recordings, snapshots) and when they were computed.
    sizes: Option<(Instant, u64, u64)>,
}

impl Owner {
    fn run(mut self, rx: &Receiver<Command>, interval: Duration, shutdown: &Shutdown) {
        let ticker = crossbeam_channel::tick(interval);
        loop {
            select! {
                recv(rx) -> cmd => match cmd {
                    Ok(cmd) => self.handle(cmd),
                    Err(_) => return,
                },
                recv(ticker) -> _ => self.scheduled_cleanup(),
                recv(shutdown.channel()) -> _ => return,
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::SetThresholds(t, reply) => {
                let _ = reply.send(self.set_thresholds(t));
            }
            Command::SetPolicy(p, reply) => {
                let _ = reply.send(self.set_policy(p));
            }
            Command::Cleanup(reply) => {
                let _ = reply.send(self.cleanup_now());
            }
            Command::Sizes(reply) => {
                let _ = reply.send(self.dir_sizes());
            }
            Command::Invalidate => self.sizes = None,
        }
    }

    /// Persisted before it takes effect, so a restart never brings back an older value.
    fn set_thresholds(&mut self, t: Thresholds) -> io::Result<()> {
        let stored = state::StoredThresholds { warning_threshold: t.warning, critical_threshold: t.critical };
        state::save(&self.inner.config.state_dir, state::THRESHOLDS_FILE, &stored)?;
        self.publish(|s| s.thresholds = t);
        log::info!("storage thresholds set: warning {} %, critical {} %", t.warning, t.critical);
        Ok(())
    }

    /// Persisted (atomically, replacing an unreadable file, with a last-good copy) before it takes effect.
    fn set_policy(&mut self, p: RetentionPolicy) -> io::Result<()> {
        state::save_retention(&self.inner.config.state_dir, &p)?;
        log::info!("retention policy set: {p:?}");
        self.publish(|s| s.policy = PolicySource::Set(p));
        Ok(())
    }

    /// Replace the published snapshot with a changed copy.
    fn publish(&self, change: impl FnOnce(&mut Settings)) {
        let mut next = Settings::clone(&self.inner.settings.read());
        change(&mut next);
        *self.inner.settings.write() = Arc::new(next);
    }

    /// The policy in force, or why no cleanup may run. While the persisted policy is unreadable the file is read
    /// again each time, so a repaired file takes effect without a restart.
    fn policy(&self) -> Result<Option<RetentionPolicy>, String> {
        let current = self.inner.settings.read().policy.clone();
        if let PolicySource::Unreadable(_) = current {
            let reread = state::load_retention(&self.inner.config.state_dir);
            match &reread {
                PolicySource::Unreadable(_) => {}
                PolicySource::Set(p) => log::info!("{} is readable again: {p:?}", state::RETENTION_FILE),
                PolicySource::Config => {
                    log::info!("{} was removed: the configured policy applies", state::RETENTION_FILE)
                }
            }
            if !matches!(reread, PolicySource::Unreadable(_)) {
                self.publish(|s| s.policy = reread.clone());
            }
            return retention::policy_in_force(&reread);
        }
        retention::policy_in_force(&current)
    }

    fn scheduled_cleanup(&mut self) {
        let policy = match self.policy() {
            Ok(p) => p,
            Err(reason) => {
                log::error!("retention: scheduled cleanup skipped: {reason}");
                return;
            }
        };
        let Some(rules) = retention::rules(&self.inner.config, policy.as_ref(), true) else {
            log::debug!("retention: scheduled cleanup skipped (policy is manual or disabled)");
            return;
        };
        if let Err(e) = self.cleanup(&rules) {
            log::warn!("retention: scheduled cleanup failed: {e}");
        }
    }

    /// `cleanup_old_files`: apply the policy now.
    fn cleanup_now(&mut self) -> io::Result<CleanupReport> {
        let policy = self.policy().map_err(|reason| io::Error::new(io::ErrorKind::InvalidData, reason))?;
        match retention::rules(&self.inner.config, policy.as_ref(), false) {
            Some(rules) => self.cleanup(&rules),
            None => {
                log::info!("retention: cleanup requested but the retention policy is disabled");
                Ok(CleanupReport::default())
            }
        }
    }

    fn cleanup(&mut self, rules: &retention::Rules) -> io::Result<CleanupReport> {
        self.sizes = None;
        retention::run(&self.inner, rules)
    }

    fn dir_sizes(&mut self) -> (u64, u64) {
        if let Some((at, r, s)) = self.sizes {
            if at.elapsed() < SIZE_CACHE_AGE {
                return (r, s);
            }
        }
        let r = super::dir_size(self.inner.index(FileKind::Recording).dir(), 0);
        let s = super::dir_size(self.inner.index(FileKind::Snapshot).dir(), 0);
        self.sizes = Some((Instant::now(), r, s));
        (r, s)
    }
}
