//! API keys: the Python key file format plus `key_hash`, verified for real in constant time.
//!
//! The Python service stored no hash and accepted any 32-character string. Here a presented key matches a
//! record only when `sha256(key)` equals the record's `key_hash`; records without a hash never match. The file is
//! re-read when its modification time changes, so keys created with `camera-service api-key create` work without a
//! restart, and a key made inactive or removed stops working on sessions already open ([`ApiKeys::is_active`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Identity, Role};
use crate::util::{ids, timefmt};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    #[serde(default)]
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub last_used: Option<String>,
    #[serde(default = "yes")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    #[serde(default = "version")]
    pub version: String,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub keys: Vec<KeyRecord>,
}

fn version() -> String {
    "1.0".into()
}

/// `sha256:<hex>` of a key.
pub fn hash_key(key: &str) -> String {
    format!("sha256:{}", ids::hex(&Sha256::digest(key.as_bytes())))
}

/// Equal-length byte comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Sessions re-check their key on every call; the file's mtime is looked at no more often than this.
const RECHECK: Duration = Duration::from_secs(1);

struct Cache {
    mtime: Option<SystemTime>,
    records: Vec<KeyRecord>,
    /// When the file's mtime was last looked at.
    checked: Option<Instant>,
}

/// The key store at one path.
pub struct ApiKeys {
    path: PathBuf,
    cache: Mutex<Cache>,
}

impl ApiKeys {
    pub fn new(path: PathBuf) -> ApiKeys {
        let keys = ApiKeys { path, cache: Mutex::new(Cache { mtime: None, records: Vec::new(), checked: None }) };
        keys.refresh();
        keys
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-read the file if it changed since the last read. The file is read with the cache unlocked (the lock is
    /// held only to compare and to store), so verifying never waits on the disk behind another caller.
    fn refresh(&self) {
        let mtime = fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        {
            let mut cache = self.cache.lock();
            cache.checked = Some(Instant::now());
            if mtime == cache.mtime {
                return;
            }
        }
        let records = match mtime.map(|_| read_file(&self.path)) {
            None => Vec::new(),
            Some(Ok(f)) => {
                let unhashed = f.keys.iter().filter(|k| k.key_hash.is_none()).count();
                if unhashed > 0 {
                    log::warn!(
                        "{}: {unhashed} API key record(s) without key_hash can never match (re-create them with \
                         `camera-service api-key create`)",
                        self.path.display()
                    );
                }
                f.keys
            }
            Some(Err(e)) => {
                log::warn!("API keys file {}: {e}", self.path.display());
                Vec::new()
            }
        };
        let mut cache = self.cache.lock();
        cache.mtime = mtime;
        cache.records = records;
    }

    /// [`ApiKeys::refresh`], unless the file was looked at less than [`RECHECK`] ago.
    fn refresh_throttled(&self) {
        if self.cache.lock().checked.is_some_and(|t| t.elapsed() < RECHECK) {
            return;
        }
        self.refresh();
    }

    /// Is the key with this id still in the file, active and unexpired? (Sessions ask on every call.)
    pub fn is_active(&self, key_id: &str) -> bool {
        self.refresh_throttled();
        let now = crate::auth::jwt::now_secs();
        self.cache.lock().records.iter().any(|r| r.key_id == key_id && usable(r, now))
    }

    /// The identity of a valid, active, unexpired key.
    pub fn verify(&self, key: &str) -> Option<Identity> {
        if key.is_empty() {
            return None;
        }
        self.refresh();
        let presented = hash_key(key);
        let now = crate::auth::jwt::now_secs();
        let cache = self.cache.lock();
        let mut found = None;
        // Compare against every record (no early exit) so timing does not reveal which record matched.
        for rec in &cache.records {
            let Some(h) = &rec.key_hash else { continue };
            if constant_time_eq(h.as_bytes(), presented.as_bytes()) && found.is_none() {
                found = Some(rec);
            }
        }
        let rec = found.filter(|r| usable(r, now))?;
        let role = Role::parse(&rec.role)?;
        Some(Identity {
            user_id: format!("api_key_{}", rec.key_id).into(),
            role,
            method: "api_key",
            expires_at: None,
            key_id: Some(rec.key_id.as_str().into()),
        })
    }

    /// Create a key, store only its hash, and return the key (shown once).
    pub fn create(&self, role: Role, name: &str) -> std::io::Result<(String, KeyRecord)> {
        let mut file = match read_file(&self.path) {
            Ok(f) => f,
            Err(e) if self.path.exists() => return Err(std::io::Error::other(e)),
            Err(_) => KeyFile { version: version(), updated_at: None, keys: Vec::new() },
        };
        let key = ids::random_alnum(32)?;
        let now = timefmt::now_rfc3339();
        let record = KeyRecord {
            key_id: ids::random_alnum(22)?,
            name: name.to_string(),
            role: role.as_str().to_string(),
            created_at: Some(now.clone()),
            expires_at: None,
            last_used: None,
            is_active: true,
            key_hash: Some(hash_key(&key)),
        };
        file.keys.push(record.clone());
        file.updated_at = Some(now);
        write_file(&self.path, &file)?;
        self.refresh();
        Ok((key, record))
    }
}

/// Active and not past its `expires_at`.
fn usable(rec: &KeyRecord, now: i64) -> bool {
    if !rec.is_active {
        return false;
    }
    match rec.expires_at.as_deref().filter(|s| !s.is_empty()) {
        Some(exp) => timefmt::parse_rfc3339(exp).is_some_and(|t| t > now),
        None => true,
    }
}

fn read_file(path: &Path) -> Result<KeyFile, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not a valid API key file: {e}"))
}

/// Atomic write with mode 0600: the file holds only hashes, but its metadata is still nobody else's business.
fn write_file(path: &Path, file: &KeyFile) -> std::io::Result<()> {
    let body = serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
    crate::util::fs::write_atomic(path, body.as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_verified_against_their_hash() {
        let dir = std::env::temp_dir().join(format!("apikeys-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let keys = ApiKeys::new(dir.join("keys.json"));
        assert!(keys.verify("x".repeat(32).as_str()).is_none());
        let (key, _) = keys.create(Role::Operator, "test").unwrap();
        let id = keys.verify(&key).unwrap();
        assert_eq!(id.role, Role::Operator);
        assert!(
            keys.verify(&"A".repeat(32)).is_none(),
            "any 32-char string must not pass (the Python service never compared keys)"
        );
        let mut other = key.clone().into_bytes();
        other[0] = if other[0] == b'a' { b'b' } else { b'a' };
        assert!(keys.verify(std::str::from_utf8(&other).unwrap()).is_none());
        let key_id = id.key_id.clone().unwrap();
        assert!(keys.is_active(&key_id));
        // Inactive and expired records are rejected, for new sessions and for sessions already open.
        let mut f = read_file(keys.path()).unwrap();
        f.keys[0].is_active = false;
        write_file(keys.path(), &f).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        filetime_bump(keys.path());
        assert!(keys.verify(&key).is_none());
        assert!(!keys.is_active(&key_id));
        f.keys[0].is_active = true;
        f.keys[0].expires_at = Some("2000-01-01T00:00:00+00:00".into());
        write_file(keys.path(), &f).unwrap();
        filetime_bump(keys.path());
        assert!(keys.verify(&key).is_none());
        assert!(!keys.is_active(&key_id), "verify re-read the file, so is_active sees the expiry at once");
        // Removed from the file.
        f.keys.clear();
        write_file(keys.path(), &f).unwrap();
        filetime_bump(keys.path());
        std::thread::sleep(RECHECK);
        assert!(!keys.is_active(&key_id));
        let _ = fs::remove_dir_all(&dir);
    }

    /// Make sure the cache sees a new mtime even on coarse-grained filesystems.
    fn filetime_bump(p: &Path) {
        let f = fs::File::options().append(true).open(p).unwrap();
        let t = SystemTime::now() + std::time::Duration::from_secs(1 + (ids::short_id().len() as u64));
        f.set_modified(t).unwrap();
    }
}
