//! JSON-RPC methods of file management (api.md §3.10-3.18, §8.3; decisions §8).
//!
//! Each handler is a thin wrapper over a function of (`&Files`, params) so the logic is testable without an `App`.

use serde_json::{json, Map, Value};

use super::listing::Entry;
use super::names::{self, Lookup};
use super::state::{PolicyType, RetentionPolicy};
use super::{disk_usage, existing_ancestor, Files, Thresholds};
use crate::auth::signed_url::UrlSigner;
use crate::auth::Role;
use crate::error::{Error, FileKind, Result};
use crate::rpc::{params, Call, Exec, Method};
use crate::util::timefmt;

const fn method(name: &'static str, role: Role, handler: fn(&Call) -> Result<Value>, exec: Exec) -> Method {
    Method { name, role: Some(role), handler, exec }
}

pub static METHODS: &[Method] = &[
    method("list_recordings", Role::Viewer, |c| list(&c.app.files, FileKind::Recording, c.params), Exec::Blocking),
    method("list_snapshots", Role::Viewer, |c| list(&c.app.files, FileKind::Snapshot, c.params), Exec::Blocking),
    method("get_recording_info", Role::Viewer, |c| info(&c.app.files, FileKind::Recording, c.params), Exec::Blocking),
    method("get_snapshot_info", Role::Viewer, |c| info(&c.app.files, FileKind::Snapshot, c.params), Exec::Blocking),
    method("delete_recording", Role::Operator, |c| delete(&c.app.files, FileKind::Recording, c.params), Exec::Blocking),
    method("delete_snapshot", Role::Operator, |c| delete(&c.app.files, FileKind::Snapshot, c.params), Exec::Blocking),
    method("get_storage_info", Role::Admin, |c| storage_info(&c.app.files, c.params), Exec::Blocking),
    method("get_storage_threshold", Role::Admin, |c| get_threshold(&c.app.files, c.params), Exec::Inline),
    method("set_storage_threshold", Role::Admin, |c| set_threshold(&c.app.files, c.params), Exec::Blocking),
    method("set_retention_policy", Role::Admin, |c| set_retention(&c.app.files, c.params), Exec::Blocking),
    method("cleanup_old_files", Role::Admin, |c| cleanup(&c.app.files, c.params), Exec::Blocking),
    method("get_retention_policy", Role::Admin, |c| get_retention(&c.app.files, c.params), Exec::Inline),
    method(
        "get_download_url",
        Role::Viewer,
        |c| download_url(&c.app.files, c.app.auth.url_signer(), c.params),
        Exec::Blocking,
    ),
];

fn segment(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Recording => "recordings",
        FileKind::Snapshot => "snapshots",
    }
}

/// The relative download URL (decisions §8: stays relative); unusual characters percent-encoded.
pub fn url_for(kind: FileKind, name: &str) -> String {
    let mut enc = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+,=@".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/files/{}/{enc}", segment(kind))
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    // An unreadable directory is a server-side problem (D28), not a permission problem of the caller.
    Error::internal(format!("{what}: {e}"))
}

/// The per-file object of listings and info (the Python fields plus created_time, width, height).
fn file_json(files: &Files, kind: FileKind, e: &Entry) -> Map<String, Value> {
    let info = files.index(kind).media_info(e);
    let mut m = Map::new();
    m.insert("filename".into(), json!(e.name));
    m.insert("file_size".into(), json!(e.size));
    m.insert("created_time".into(), json!(timefmt::rfc3339(e.created)));
    m.insert("modified_time".into(), json!(timefmt::rfc3339(e.modified)));
    m.insert("download_url".into(), json!(url_for(kind, &e.name)));
    if kind == FileKind::Recording {
        // Whole seconds, as the Python contract types it.
        m.insert("duration".into(), json!(info.duration_secs.map(|d| d.round() as u64)));
    }
    m.insert("width".into(), json!(info.width));
    m.insert("height".into(), json!(info.height));
    m
}

pub fn list(files: &Files, kind: FileKind, p: &Value) -> Result<Value> {
    let limit = params::opt_int(p, "limit", 1, 1000)?.unwrap_or(100) as usize;
    let offset = params::opt_int(p, "offset", 0, i64::MAX)?.unwrap_or(0);
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let entries = files.index(kind).entries().map_err(|e| io_error("listing failed", e))?;
    let active = if kind == FileKind::Recording { files.active_files() } else { Default::default() };
    let (page, total) = super::listing::page(&entries, &active, offset, limit);
    let items: Vec<Value> = page.iter().map(|e| Value::Object(file_json(files, kind, e))).collect();
    Ok(json!({"files": items, "total": total, "limit": limit, "offset": offset}))
}

/// A validated `filename` param.
fn filename(p: &Value) -> Result<&str> {
    let name = params::required_str(p, "filename")?;
    names::check(name).map_err(Error::invalid_params)?;
    Ok(name)
}

/// Finds an existing regular file by name: -1005 when missing, -32602 for a directory or an escaping link.
pub fn find(files: &Files, kind: FileKind, name: &str) -> Result<Entry> {
    match names::resolve(files.dir(kind), name).map_err(|e| io_error("lookup failed", e))? {
        Lookup::File(path, meta) => Ok(Entry::from_metadata(name.to_string(), path, &meta)),
        Lookup::Missing => Err(Error::FileNotFound { kind, name: name.to_string() }),
        Lookup::NotAFile => Err(Error::invalid_params(format!("{name} is not a regular file"))),
        Lookup::Escapes => Err(Error::invalid_params(format!("{name} points outside the {} directory", segment(kind)))),
    }
}

pub fn info(files: &Files, kind: FileKind, p: &Value) -> Result<Value> {
    let name = filename(p)?;
    let entry = find(files, kind, name)?;
    let mut m = file_json(files, kind, &entry);
    if kind == FileKind::Snapshot {
        let res = match (&m["width"], &m["height"]) {
            (Value::Number(w), Value::Number(h)) => json!(format!("{w}x{h}")),
            _ => Value::Null,
        };
        m.insert("resolution".into(), res);
    }
    Ok(Value::Object(m))
}

pub fn delete(files: &Files, kind: FileKind, p: &Value) -> Result<Value> {
    let name = filename(p)?;
    if kind == FileKind::Recording && files.active_files().contains(name) {
        return Err(Error::CameraRecording(format!("{name} is being recorded")));
    }
    let entry = find(files, kind, name)?;
    match std::fs::remove_file(&entry.path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::FileNotFound { kind, name: name.to_string() })
        }
        Err(e) => return Err(io_error("delete failed", e)),
    }
    files.invalidate();
    log::info!("deleted {} ({} bytes)", entry.path.display(), entry.size);
    let message = format!("{} file deleted successfully", kind.label());
    Ok(json!({"filename": name, "deleted": true, "message": message}))
}

/// Rejects params other than none / `null` / an object (methods without parameters ignore members).
fn no_params(p: &Value) -> Result<()> {
    params::obj(p).map(|_| ())
}

pub fn storage_info(files: &Files, p: &Value) -> Result<Value> {
    no_params(p)?;
    let at = existing_ancestor(files.dir(FileKind::Recording));
    let du = disk_usage(&at).map_err(|e| io_error("statvfs failed", e))?;
    let (recordings_size, snapshots_size) = files.dir_sizes();
    let t = files.thresholds();
    let used = du.total - du.available;
    let percent = (du.used_percent * 100.0).round() / 100.0;
    Ok(json!({
        "total_space": du.total,
        "used_space": used,
        "available_space": du.available,
        "free_space": du.available,
        "usage_percentage": percent,
        "used_percent": percent,
        "warn_threshold": t.warning,
        "block_threshold": t.critical,
        "recordings_size": recordings_size,
        "snapshots_size": snapshots_size,
        "low_space_warning": du.used_percent >= f64::from(t.warning),
        "critical_space_warning": du.used_percent >= f64::from(t.critical),
    }))
}

fn thresholds_json(t: Thresholds) -> Value {
    json!({"warning_threshold": t.warning, "critical_threshold": t.critical})
}

pub fn get_threshold(files: &Files, p: &Value) -> Result<Value> {
    no_params(p)?;
    Ok(thresholds_json(files.thresholds()))
}

/// Either or both thresholds; the result must keep `warning < critical`.
pub fn set_threshold(files: &Files, p: &Value) -> Result<Value> {
    let warning = params::opt_int(p, "warning_threshold", 0, 100)?;
    let critical = params::opt_int(p, "critical_threshold", 0, 100)?;
    if warning.is_none() && critical.is_none() {
        return Err(Error::invalid_params("warning_threshold or critical_threshold is required"));
    }
    let cur = files.thresholds();
    let t = Thresholds {
        warning: warning.map_or(cur.warning, |w| w as u8),
        critical: critical.map_or(cur.critical, |c| c as u8),
    };
    if t.warning >= t.critical {
        return Err(Error::invalid_params("warning_threshold must be below critical_threshold"));
    }
    files.set_thresholds(t).map_err(|e| io_error("saving thresholds failed", e))?;
    Ok(thresholds_json(t))
}

/// A required number > 0 (integers or floats; booleans and strings are invalid).
fn positive(p: &Value, key: &str) -> Result<(f64, Value)> {
    match params::opt_number(p, key)? {
        Some(n) if n.is_finite() && n > 0.0 => Ok((n, p[key].clone())),
        Some(_) => Err(Error::invalid_params(format!("{key} must be greater than 0"))),
        None => Err(Error::invalid_params(format!("{key} is required"))),
    }
}

pub fn set_retention(files: &Files, p: &Value) -> Result<Value> {
    if params::obj(p)?.is_none_or(|m| m.is_empty()) {
        return Err(Error::invalid_params("policy parameters are required"));
    }
    let type_str = params::required_str(p, "policy_type")?;
    let policy_type = PolicyType::parse(type_str)
        .ok_or_else(|| Error::invalid_params("policy_type must be one of age, size, manual"))?;
    let enabled = params::opt_bool(p, "enabled")?.ok_or_else(|| Error::invalid_params("enabled is required"))?;
    let mut result = json!({
        "policy_type": type_str,
        "enabled": enabled,
        "message": "Retention policy updated successfully",
    });
    let mut policy = RetentionPolicy {
        policy_type,
        enabled,
        max_age_days: None,
        max_size_gb: None,
        updated_at: timefmt::now_rfc3339(),
    };
    match policy_type {
        PolicyType::Age => {
            let (n, raw) = positive(p, "max_age_days")?;
            policy.max_age_days = Some(n);
            result["max_age_days"] = raw;
        }
        PolicyType::Size => {
            let (n, raw) = positive(p, "max_size_gb")?;
            policy.max_size_gb = Some(n);
            result["max_size_gb"] = raw;
        }
        PolicyType::Manual => {}
    }
    files.set_retention_policy(policy).map_err(|e| io_error("saving retention policy failed", e))?;
    Ok(result)
}

pub fn cleanup(files: &Files, p: &Value) -> Result<Value> {
    no_params(p)?;
    let r = files.cleanup_now().map_err(|e| io_error("cleanup failed", e))?;
    Ok(json!({
        "cleanup_executed": true,
        "files_deleted": r.files_deleted,
        "space_freed": r.space_freed,
        "recordings_removed": r.recordings_removed,
        "snapshots_removed": r.snapshots_removed,
        "message": "Cleanup completed successfully",
    }))
}

/// `download_url` as the Python service returns it, plus a short-lived `signed_url` for browser elements that
/// cannot send credentials (`<img>`, `<video>`, `<a download>`) and its `expires_at`.
pub fn download_url(files: &Files, signer: &UrlSigner, p: &Value) -> Result<Value> {
    let kind = match params::required_str(p, "file_type")? {
        "recording" => FileKind::Recording,
        "snapshot" => FileKind::Snapshot,
        _ => return Err(Error::invalid_params("file_type must be recording or snapshot")),
    };
    let name = filename(p)?;
    find(files, kind, name)?;
    let url = url_for(kind, name);
    let now = crate::auth::jwt::now_secs();
    let (signed, expires) = signer.sign(&url, &format!("/files/{}/{name}", segment(kind)), now);
    let expires_at = timefmt::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires as u64));
    Ok(json!({ "download_url": url, "signed_url": signed, "expires_at": expires_at }))
}

/// The retention policy in force: the one an admin set (`source: "policy"`), or the configuration's rules
/// (`source: "config"`) until then; both with the configured rules and the cleanup interval for context.
pub fn get_retention(files: &Files, p: &Value) -> Result<Value> {
    no_params(p)?;
    let c = files.config();
    let mut out = match files.retention_policy() {
        Some(policy) => {
            let mut v = serde_json::to_value(&policy).map_err(|e| Error::internal(e.to_string()))?;
            v["source"] = json!("policy");
            v
        }
        None => json!({"source": "config", "policy_type": "config", "enabled": true}),
    };
    out["config"] = json!({
        "recordings": {
            "auto_cleanup": c.recording.auto_cleanup,
            "cleanup_after_days": c.recording.cleanup_after_days,
            "max_size": c.recording.max_size,
        },
        "snapshots": {
            "auto_cleanup": c.snapshots.auto_cleanup,
            "max_age": c.snapshots.max_age,
            "max_count": c.snapshots.max_count,
        },
    });
    out["cleanup_interval"] = json!(files.cleanup_interval().as_secs());
    Ok(out)
}
