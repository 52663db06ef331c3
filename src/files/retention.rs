//! Retention: which files a policy removes, and the cleanup run itself.
//!
//! Rules:
//! - no policy set → from config: recordings older than `recording.cleanup_after_days` (0 = keep) and beyond
//!   `recording.max_size` bytes; snapshots older than `snapshots.max_age` seconds and beyond `snapshots.max_count`.
//!   The scheduled run applies each kind's part only when its `auto_cleanup` is on; an explicit call applies all.
//! - `age` → recordings and snapshots older than `max_age_days`; `size` → oldest files (both kinds together)
//!   until their total is at most `max_size_gb` GiB; both also keep at most `snapshots.max_count` snapshots.
//! - `manual` → nothing on schedule; an explicit call applies the configured rules.
//! - `enabled: false` → nothing is removed, on schedule or on demand.
//! - a persisted policy that cannot be read → nothing is removed, on schedule or on demand, until it is readable
//!   again or set again (falling back to the configured rules could delete what the operator had switched off).
//!
//! Files of an active recording, hidden and in-progress files are never candidates.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::listing::Entry;
use super::state::{PolicySource, PolicyType, RetentionPolicy, RETENTION_FILE};
use super::Inner;
use crate::config::Config;
use crate::error::FileKind;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const DAY: f64 = 86_400.0;

/// What one run applies. `None` fields are not enforced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub recordings_max_age: Option<Duration>,
    pub snapshots_max_age: Option<Duration>,
    /// Byte budget and whether snapshots count toward it (recordings always do).
    pub max_bytes: Option<(u64, bool)>,
    pub snapshots_max_count: Option<u64>,
}

/// The rules for a run; `None` when nothing may be removed.
pub fn rules(config: &Config, policy: Option<&RetentionPolicy>, scheduled: bool) -> Option<Rules> {
    let count = (config.snapshots.max_count > 0).then_some(config.snapshots.max_count);
    let Some(p) = policy else { return Some(config_rules(config, scheduled)) };
    if !p.enabled {
        return None;
    }
    match p.policy_type {
        PolicyType::Manual if scheduled => None,
        PolicyType::Manual => Some(config_rules(config, false)),
        PolicyType::Age => {
            // Any number > 0 is valid; one too large for a Duration means "keep everything" (no panic).
            let age =
                Duration::try_from_secs_f64(p.max_age_days.unwrap_or(0.0).max(0.0) * DAY).unwrap_or(Duration::MAX);
            Some(Rules {
                recordings_max_age: Some(age),
                snapshots_max_age: Some(age),
                snapshots_max_count: count,
                ..Rules::default()
            })
        }
        PolicyType::Size => {
            let bytes = (p.max_size_gb.unwrap_or(0.0).max(0.0) * GIB) as u64;
            Some(Rules { max_bytes: Some((bytes, true)), snapshots_max_count: count, ..Rules::default() })
        }
    }
}

fn config_rules(config: &Config, scheduled: bool) -> Rules {
    let (rec, snap) = (&config.recording, &config.snapshots);
    let mut r = Rules::default();
    if rec.auto_cleanup || !scheduled {
        r.recordings_max_age =
            (rec.cleanup_after_days > 0).then(|| Duration::from_secs(rec.cleanup_after_days * 86_400));
        r.max_bytes = Some((rec.max_size, false));
    }
    if snap.auto_cleanup || !scheduled {
        r.snapshots_max_age = Some(Duration::from_secs(snap.max_age));
        r.snapshots_max_count = (snap.max_count > 0).then_some(snap.max_count);
    }
    r
}

/// The outcome of a run (the `cleanup_old_files` result).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanupReport {
    pub files_deleted: u64,
    pub space_freed: u64,
    pub recordings_removed: u64,
    pub snapshots_removed: u64,
}

struct Candidate {
    kind: FileKind,
    entry: Arc<Entry>,
}

/// Chooses the files `rules` remove, with the reason for the log. `files` are sorted oldest first.
fn select(files: &[Candidate], rules: &Rules, now: SystemTime) -> Vec<(usize, &'static str)> {
    let mut doomed = vec![None; files.len()];
    for (i, c) in files.iter().enumerate() {
        let max_age = match c.kind {
            FileKind::Recording => rules.recordings_max_age,
            FileKind::Snapshot => rules.snapshots_max_age,
        };
        if max_age.is_some_and(|age| now.duration_since(c.entry.modified).is_ok_and(|a| a > age)) {
            doomed[i] = Some("age");
        }
    }
    if let Some(max) = rules.snapshots_max_count {
        let kept: Vec<usize> =
            (0..files.len()).filter(|&i| doomed[i].is_none() && files[i].kind == FileKind::Snapshot).collect();
        // A count above usize::MAX (possible on 32-bit targets) keeps everything; `as` would wrap it to a small one.
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        for &i in kept.iter().take(kept.len().saturating_sub(max)) {
            doomed[i] = Some("count");
        }
    }
    if let Some((budget, with_snapshots)) = rules.max_bytes {
        let in_scope = |c: &Candidate| c.kind == FileKind::Recording || with_snapshots;
        let mut total: u64 = files
            .iter()
            .enumerate()
            .filter(|(i, c)| doomed[*i].is_none() && in_scope(c))
            .map(|(_, c)| c.entry.size)
            .sum();
        for (i, c) in files.iter().enumerate() {
            if total <= budget {
                break;
            }
            if doomed[i].is_none() && in_scope(c) {
                doomed[i] = Some("size");
                total -= c.entry.size;
            }
        }
    }
    doomed.into_iter().enumerate().filter_map(|(i, d)| d.map(|r| (i, r))).collect()
}

/// The admin-set policy (`None`: the configured rules), or why no cleanup may run.
pub(super) fn policy_in_force(source: &PolicySource) -> Result<Option<RetentionPolicy>, String> {
    match source {
        PolicySource::Config => Ok(None),
        PolicySource::Set(p) => Ok(Some(p.clone())),
        PolicySource::Unreadable(reason) => Err(format!(
            "the persisted retention policy ({RETENTION_FILE} in the state directory) is unusable ({reason}); repair \
             it or call set_retention_policy"
        )),
    }
}

/// One cleanup run over both directories (on the `files` thread, which also serialises the runs).
pub(super) fn run(files: &Inner, rules: &Rules) -> io::Result<CleanupReport> {
    files.invalidate();
    let active: HashSet<String> = (files.active)();
    let mut candidates = Vec::new();
    for kind in [FileKind::Recording, FileKind::Snapshot] {
        for entry in files.index(kind).entries()?.iter() {
            if !active.contains(&entry.name) {
                candidates.push(Candidate { kind, entry: entry.clone() });
            }
        }
    }
    candidates.sort_by(|a, b| a.entry.modified.cmp(&b.entry.modified).then_with(|| a.entry.name.cmp(&b.entry.name)));
    let mut report = CleanupReport::default();
    for (i, reason) in select(&candidates, rules, SystemTime::now()) {
        let c = &candidates[i];
        match fs::remove_file(&c.entry.path) {
            Ok(()) => {
                log::info!("retention: removed {} ({} bytes, {reason})", c.entry.path.display(), c.entry.size);
                report.files_deleted += 1;
                report.space_freed += c.entry.size;
                match c.kind {
                    FileKind::Recording => report.recordings_removed += 1,
                    FileKind::Snapshot => report.snapshots_removed += 1,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("retention: cannot remove {}: {e}", c.entry.path.display()),
        }
    }
    files.invalidate();
    log::info!(
        "retention: run removed {} files ({} recordings, {} snapshots), freed {} bytes",
        report.files_deleted,
        report.recordings_removed,
        report.snapshots_removed,
        report.space_freed
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cand(kind: FileKind, name: &str, age_days: u64, size: u64, now: SystemTime) -> Candidate {
        let modified = now - Duration::from_secs(age_days * 86_400);
        let entry = Entry { name: name.into(), path: PathBuf::from(name), size, modified, created: modified };
        Candidate { kind, entry: Arc::new(entry) }
    }

    #[test]
    fn selects_by_age_count_and_size_oldest_first() {
        let now = SystemTime::now();
        let files = vec![
            cand(FileKind::Recording, "r-old", 40, 100, now),
            cand(FileKind::Snapshot, "s-1", 5, 10, now),
            cand(FileKind::Snapshot, "s-2", 4, 10, now),
            cand(FileKind::Recording, "r-mid", 3, 100, now),
            cand(FileKind::Snapshot, "s-3", 2, 10, now),
            cand(FileKind::Recording, "r-new", 1, 100, now),
        ];
        let age = Rules { recordings_max_age: Some(Duration::from_secs(30 * 86_400)), ..Rules::default() };
        assert_eq!(select(&files, &age, now), vec![(0, "age")]);
        let count = Rules { snapshots_max_count: Some(1), ..Rules::default() };
        assert_eq!(select(&files, &count, now), vec![(1, "count"), (2, "count")]);
        let size = Rules { max_bytes: Some((150, false)), ..Rules::default() };
        assert_eq!(select(&files, &size, now), vec![(0, "size"), (3, "size")]);
        let both = Rules { max_bytes: Some((220, true)), ..Rules::default() };
        assert_eq!(select(&files, &both, now), vec![(0, "size"), (1, "size")]);
        // Counts and sizes above 32 bits: nothing to delete. (On 32-bit targets a count cast with `as usize`
        // wraps: 2^32 + 1 would become 1 and delete all snapshots but one; a size budget kept in usize would wrap
        // the same way.)
        let huge =
            Rules { snapshots_max_count: Some((1 << 32) + 1), max_bytes: Some((5 << 30, true)), ..Rules::default() };
        assert_eq!(select(&files, &huge, now), vec![]);
        let big = |name, gib: u64| cand(FileKind::Recording, name, 1, gib << 30, now);
        let large = [big("a", 3), big("b", 3)];
        let budget = Rules { max_bytes: Some((5 << 30, false)), ..Rules::default() };
        assert_eq!(select(&large, &budget, now), vec![(0, "size")], "6 GiB over a 5 GiB budget");
    }

    #[test]
    fn policy_types_map_to_rules() {
        let c = Config::default();
        let p = |t, enabled| RetentionPolicy {
            policy_type: t,
            enabled,
            max_age_days: Some(2.0),
            max_size_gb: Some(1.0),
            updated_at: String::new(),
        };
        assert_eq!(rules(&c, Some(&p(PolicyType::Age, false)), false), None);
        assert_eq!(rules(&c, Some(&p(PolicyType::Manual, true)), true), None);
        assert_eq!(rules(&c, Some(&p(PolicyType::Manual, true)), false), Some(config_rules(&c, false)));
        let age = rules(&c, Some(&p(PolicyType::Age, true)), true).unwrap();
        assert_eq!(age.recordings_max_age, Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(age.snapshots_max_count, Some(1000));
        let size = rules(&c, Some(&p(PolicyType::Size, true)), true).unwrap();
        assert_eq!(size.max_bytes, Some((1 << 30, true)));
        let from_config = rules(&c, None, true).unwrap();
        assert_eq!(from_config.recordings_max_age, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(from_config.snapshots_max_age, Some(Duration::from_secs(86_400)));
        assert_eq!(from_config.max_bytes, Some((10_737_418_240, false)));
    }
}
