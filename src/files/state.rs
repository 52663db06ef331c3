//! Settings an admin changes at run time, persisted in `<state_dir>` so they survive restarts: the storage
//! thresholds and the retention policy. Written atomically (temp file, fsync, rename) so a crash never leaves a
//! half-written file.

use std::fs;
use std::io;
use std::path::Path;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub const THRESHOLDS_FILE: &str = "storage_thresholds.json";
pub const RETENTION_FILE: &str = "retention.json";

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

/// A policy set with `set_retention_policy` (api.md §3.17).
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
}
