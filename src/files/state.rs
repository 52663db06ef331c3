//! Settings an admin changes at run time, persisted in `<state_dir>` so they survive restarts: the storage
//! thresholds and the retention policy. Written atomically (temp file, fsync, rename) so a crash never leaves a
//! half-written file.
//!
//! The retention policy decides what gets deleted, so a policy file that cannot be read (disk error, bad hand
//! edit) must not quietly turn into "use the configured rules", which may delete what an operator had switched
//! off: it becomes [`PolicySource::Unreadable`], the file is left as it is for inspection, and a copy of the last
//! policy that did read, `retention.last-good.json`, stays next to it.

use std::fs;
use std::io;
use std::path::Path;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub const THRESHOLDS_FILE: &str = "storage_thresholds.json";
pub const RETENTION_FILE: &str = "retention.json";
/// The last retention policy that was read or written successfully (what to restore a damaged file from).
pub const RETENTION_LAST_GOOD_FILE: &str = "retention.last-good.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyType {
    Age,
    Size,
    Manual,
}

impl PolicyType {
    pub fn parse(s: &str) -> Option<PolicyType> {
        match s {
            "age" => Some(PolicyType::Age),
            "size" => Some(PolicyType::Size),
            "manual" => Some(PolicyType::Manual),
            _ => None,
        }
    }
}

/// A policy set with `set_retention_policy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub policy_type: PolicyType,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_gb: Option<f64>,
    /// When it was set (UTC RFC 3339), for operators reading the file.
    #[serde(default)]
    pub updated_at: String,
}

impl RetentionPolicy {
    /// The limit a policy type needs must be a number above zero: a file saying `age` without `max_age_days`
    /// would otherwise mean "older than 0 days", i.e. delete everything.
    pub fn check(&self) -> Result<(), String> {
        let positive = |v: Option<f64>| v.is_some_and(|n| n.is_finite() && n > 0.0);
        match self.policy_type {
            PolicyType::Age if !positive(self.max_age_days) => Err("an age policy needs max_age_days > 0".into()),
            PolicyType::Size if !positive(self.max_size_gb) => Err("a size policy needs max_size_gb > 0".into()),
            _ => Ok(()),
        }
    }
}

/// Where the retention policy in force comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicySource {
    /// None was ever set: the configured rules apply.
    Config,
    /// Set with `set_retention_policy` (and persisted).
    Set(RetentionPolicy),
    /// The persisted policy exists but cannot be used (the reason): no automatic cleanup until it is readable
    /// again or set again.
    Unreadable(String),
}

/// Reads the persisted retention policy; a good one refreshes the last-good copy.
pub fn load_retention(dir: &Path) -> PolicySource {
    let policy = match load::<RetentionPolicy>(dir, RETENTION_FILE) {
        Ok(None) => return PolicySource::Config,
        Ok(Some(p)) => p,
        Err(e) => return PolicySource::Unreadable(e.to_string()),
    };
    if let Err(reason) = policy.check() {
        return PolicySource::Unreadable(reason);
    }
    keep_last_good(dir, &policy);
    PolicySource::Set(policy)
}

/// Persists `policy` (atomically) and its last-good copy.
pub fn save_retention(dir: &Path, policy: &RetentionPolicy) -> io::Result<()> {
    save(dir, RETENTION_FILE, policy)?;
    keep_last_good(dir, policy);
    Ok(())
}

/// The last-good copy, if one is kept and readable.
pub fn last_good_retention(dir: &Path) -> Option<RetentionPolicy> {
    load::<RetentionPolicy>(dir, RETENTION_LAST_GOOD_FILE).ok().flatten()
}

fn keep_last_good(dir: &Path, policy: &RetentionPolicy) {
    if last_good_retention(dir).as_ref() == Some(policy) {
        return;
    }
    if let Err(e) = save(dir, RETENTION_LAST_GOOD_FILE, policy) {
        log::warn!("cannot keep a copy of the retention policy in {RETENTION_LAST_GOOD_FILE}: {e}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredThresholds {
    pub warning_threshold: u8,
    pub critical_threshold: u8,
}

/// Reads `<dir>/<file>`; `Ok(None)` when absent. A corrupt file is an error the caller logs (and then ignores).
pub fn load<T: DeserializeOwned>(dir: &Path, file: &str) -> io::Result<Option<T>> {
    match fs::read(dir.join(file)) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `<dir>/<file>` atomically.
pub fn save<T: Serialize>(dir: &Path, file: &str, value: &T) -> io::Result<()> {
    let mut body = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    body.push(b'\n');
    crate::util::fs::write_atomic(&dir.join(file), &body, 0o640)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_atomically() {
        let d = std::env::temp_dir().join(format!("cs-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        assert_eq!(load::<StoredThresholds>(&d, THRESHOLDS_FILE).unwrap(), None);
        let t = StoredThresholds { warning_threshold: 70, critical_threshold: 95 };
        save(&d, THRESHOLDS_FILE, &t).unwrap();
        assert_eq!(load::<StoredThresholds>(&d, THRESHOLDS_FILE).unwrap(), Some(t));
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temp file left behind");
        fs::write(d.join(RETENTION_FILE), "{not json").unwrap();
        assert!(load::<RetentionPolicy>(&d, RETENTION_FILE).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unusable_retention_policies_are_not_replaced_by_the_config() {
        let d = std::env::temp_dir().join(format!("cs-state-retention-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        assert_eq!(load_retention(&d), PolicySource::Config);
        let off = RetentionPolicy {
            policy_type: PolicyType::Manual,
            enabled: false,
            max_age_days: None,
            max_size_gb: None,
            updated_at: String::new(),
        };
        save_retention(&d, &off).unwrap();
        assert_eq!(load_retention(&d), PolicySource::Set(off.clone()));
        fs::write(d.join(RETENTION_FILE), "{\"policy_type\": \"manual\", \"enab").unwrap();
        assert!(matches!(load_retention(&d), PolicySource::Unreadable(_)));
        assert_eq!(last_good_retention(&d), Some(off.clone()), "the last good copy survives");
        // Valid JSON that would delete everything is unusable too.
        fs::write(d.join(RETENTION_FILE), "{\"policy_type\": \"age\", \"enabled\": true}").unwrap();
        assert_eq!(load_retention(&d), PolicySource::Unreadable("an age policy needs max_age_days > 0".into()));
        assert_eq!(last_good_retention(&d), Some(off));
        fs::remove_dir_all(&d).unwrap();
    }
}
