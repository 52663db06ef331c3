//! JSON-RPC methods of file management: listings, info, deletion, storage figures and thresholds, retention and
//! download URLs. Their state is the [`Files`] handle and the URL signer ([`FileMethods`]).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::listing::Entry;
use super::names::{self, Lookup};
use super::state::{PolicyType, RetentionPolicy};
use super::{disk_usage, existing_ancestor, Files, Thresholds};
use crate::auth::signed_url::UrlSigner;
use crate::error::{Error, FileKind, Result};
use crate::rpc::params::{Deferred, Int, NoParams, NonEmpty, Number};
use crate::rpc::{method, Call, Method};
use crate::util::timefmt;

/// What the file methods use: the file-management handle, and the signer of short-lived download URLs.
pub struct FileMethods {
    pub files: Files,
    pub urls: UrlSigner,
}

pub static METHODS: &[Method<FileMethods>] = &[
    method!("list_recordings", Viewer, Blocking, list_recordings),
    method!("list_snapshots", Viewer, Blocking, list_snapshots),
    method!("get_recording_info", Viewer, Blocking, get_recording_info),
    method!("get_snapshot_info", Viewer, Blocking, get_snapshot_info),
    method!("delete_recording", Operator, Blocking, delete_recording),
    method!("delete_snapshot", Operator, Blocking, delete_snapshot),
    method!("get_storage_info", Admin, Blocking, get_storage_info),
    method!("get_storage_threshold", Admin, Inline, get_storage_threshold),
    method!("set_storage_threshold", Admin, Blocking, set_storage_threshold),
    method!("set_retention_policy", Admin, Blocking, set_retention_policy),
    method!("cleanup_old_files", Admin, Blocking, cleanup_old_files),
    method!("get_retention_policy", Admin, Inline, get_retention_policy),
    method!("get_download_url", Viewer, Blocking, get_download_url),
];

#[derive(Deserialize)]
struct PageParams {
    limit: Option<Int<1, 1000>>,
    offset: Option<Int<0, { i64::MAX }>>,
}

#[derive(Deserialize)]
struct FileParams {
    filename: NonEmpty,
}

#[derive(Deserialize)]
struct ThresholdParams {
    warning_threshold: Option<Int<0, 100>>,
    critical_threshold: Option<Int<0, 100>>,
}

/// The limit members are checked only for the policy type that uses them.
#[derive(Deserialize)]
struct RetentionParams {
    policy_type: Option<NonEmpty>,
    enabled: Option<Deferred<bool>>,
    max_age_days: Option<Deferred<Number>>,
    max_size_gb: Option<Deferred<Number>>,
}

#[derive(Deserialize)]
struct DownloadParams {
    file_type: NonEmpty,
    filename: NonEmpty,
}

fn list_recordings(m: &FileMethods, p: PageParams, _: &Call) -> Result<Value> {
    list(&m.files, FileKind::Recording, p)
}

fn list_snapshots(m: &FileMethods, p: PageParams, _: &Call) -> Result<Value> {
    list(&m.files, FileKind::Snapshot, p)
}

fn get_recording_info(m: &FileMethods, p: FileParams, _: &Call) -> Result<Value> {
    info(&m.files, FileKind::Recording, &p.filename)
}

fn get_snapshot_info(m: &FileMethods, p: FileParams, _: &Call) -> Result<Value> {
    info(&m.files, FileKind::Snapshot, &p.filename)
}

fn delete_recording(m: &FileMethods, p: FileParams, _: &Call) -> Result<Value> {
    delete(&m.files, FileKind::Recording, &p.filename)
}

fn delete_snapshot(m: &FileMethods, p: FileParams, _: &Call) -> Result<Value> {
    delete(&m.files, FileKind::Snapshot, &p.filename)
}

fn segment(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Recording => "recordings",
        FileKind::Snapshot => "snapshots",
    }
}

/// The relative download URL (relative, so it resolves against whichever port the client used); unusual characters
/// percent-encoded.
pub fn url_for(kind: FileKind, name: &str) -> String {
    let enc = percent_encoding::utf8_percent_encode(name, URL_NAME);
    format!("/files/{}/{enc}", segment(kind))
}

/// Bytes a file name keeps as they are in a download URL; every other byte is percent-encoded.
const URL_NAME: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+')
    .remove(b',')
    .remove(b'=')
    .remove(b'@');

fn io_error(what: &str, e: std::io::Error) -> Error {
    // An unreadable directory is a server-side problem, not a permission problem of the caller.
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

fn list(files: &Files, kind: FileKind, p: PageParams) -> Result<Value> {
    let limit = p.limit.map_or(100, |l| l.0 as usize);
    let offset = p.offset.map_or(0, |o| o.0);
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let entries = files.index(kind).entries().map_err(|e| io_error("listing failed", e))?;
    let active = if kind == FileKind::Recording { files.active_files() } else { Default::default() };
    let (page, total) = super::listing::page(&entries, &active, offset, limit);
    let items: Vec<Value> = page.iter().map(|e| Value::Object(file_json(files, kind, e))).collect();
    Ok(json!({"files": items, "total": total, "limit": limit, "offset": offset}))
}

/// A `filename` that names a plain file (no separator, `..`, leading dot, NUL or absolute path).
fn checked(name: &str) -> Result<&str> {
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

fn info(files: &Files, kind: FileKind, name: &str) -> Result<Value> {
    let name = checked(name)?;
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

fn delete(files: &Files, kind: FileKind, name: &str) -> Result<Value> {
    let name = checked(name)?;
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

fn get_storage_info(m: &FileMethods, _: NoParams, _: &Call) -> Result<Value> {
    let files = &m.files;
    let at = existing_ancestor(files.dir(FileKind::Recording));
    let du = disk_usage(&at).map_err(|e| io_error("statvfs failed", e))?;
    let (recordings_size, snapshots_size) = files.dir_sizes().map_err(|e| io_error("directory sizes", e))?;
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

fn get_storage_threshold(m: &FileMethods, _: NoParams, _: &Call) -> Result<Value> {
    Ok(thresholds_json(m.files.thresholds()))
}

/// Either or both thresholds; the result must keep `warning < critical`.
fn set_storage_threshold(m: &FileMethods, p: ThresholdParams, _: &Call) -> Result<Value> {
    let files = &m.files;
    if p.warning_threshold.is_none() && p.critical_threshold.is_none() {
        return Err(Error::invalid_params("warning_threshold or critical_threshold is required"));
    }
    let cur = files.thresholds();
    let t = Thresholds {
        warning: p.warning_threshold.map_or(cur.warning, |w| w.0 as u8),
        critical: p.critical_threshold.map_or(cur.critical, |c| c.0 as u8),
    };
    if t.warning >= t.critical {
        return Err(Error::invalid_params("warning_threshold must be below critical_threshold"));
    }
    files.set_thresholds(t).map_err(|e| io_error("saving thresholds failed", e))?;
    Ok(thresholds_json(t))
}

/// A required number > 0 (integers or floats; booleans and strings are invalid), and the number as written.
fn positive(n: Option<Deferred<Number>>, key: &str) -> Result<(f64, Value)> {
    match n.map(Deferred::get).transpose()? {
        Some(n) if n.value.is_finite() && n.value > 0.0 => Ok((n.value, n.raw)),
        Some(_) => Err(Error::invalid_params(format!("{key} must be greater than 0"))),
        None => Err(Error::invalid_params(format!("{key} is required"))),
    }
}

fn set_retention_policy(m: &FileMethods, p: RetentionParams, _: &Call) -> Result<Value> {
    let files = &m.files;
    if p.policy_type.is_none() && p.enabled.is_none() && p.max_age_days.is_none() && p.max_size_gb.is_none() {
        return Err(Error::invalid_params("policy parameters are required"));
    }
    let type_str = p.policy_type.ok_or_else(|| Error::invalid_params("policy_type is required"))?.0;
    let policy_type = PolicyType::parse(&type_str)
        .ok_or_else(|| Error::invalid_params("policy_type must be one of age, size, manual"))?;
    let enabled = p.enabled.ok_or_else(|| Error::invalid_params("enabled is required"))?.get()?;
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
            let (n, raw) = positive(p.max_age_days, "max_age_days")?;
            policy.max_age_days = Some(n);
            result["max_age_days"] = raw;
        }
        PolicyType::Size => {
            let (n, raw) = positive(p.max_size_gb, "max_size_gb")?;
            policy.max_size_gb = Some(n);
            result["max_size_gb"] = raw;
        }
        PolicyType::Manual => {}
    }
    files.set_retention_policy(policy).map_err(|e| io_error("saving retention policy failed", e))?;
    Ok(result)
}

fn cleanup_old_files(m: &FileMethods, _: NoParams, _: &Call) -> Result<Value> {
    let r = m.files.cleanup_now().map_err(|e| io_error("cleanup failed", e))?;
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
fn get_download_url(m: &FileMethods, p: DownloadParams, _: &Call) -> Result<Value> {
    let (files, signer) = (&m.files, &m.urls);
    let kind = match &*p.file_type {
        "recording" => FileKind::Recording,
        "snapshot" => FileKind::Snapshot,
        _ => return Err(Error::invalid_params("file_type must be recording or snapshot")),
    };
    let name = checked(&p.filename)?;
    find(files, kind, name)?;
    let url = url_for(kind, name);
    let now = crate::auth::jwt::now_secs();
    let (signed, expires) = signer.sign(&url, &format!("/files/{}/{name}", segment(kind)), now);
    let expires_at = timefmt::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires as u64));
    Ok(json!({ "download_url": url, "signed_url": signed, "expires_at": expires_at }))
}

/// The retention policy in force: the one an admin set (`source: "policy"`), or the configuration's rules
/// (`source: "config"`) until then; both with the configured rules and the cleanup interval for context.
fn get_retention_policy(m: &FileMethods, _: NoParams, _: &Call) -> Result<Value> {
    let files = &m.files;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_urls_encode_unusual_bytes() {
        assert_eq!(
            url_for(FileKind::Recording, "cam0_2026-01-01_10-00-00.mp4"),
            "/files/recordings/cam0_2026-01-01_10-00-00.mp4"
        );
        assert_eq!(
            url_for(FileKind::Snapshot, "a b#?%/é~+,=@.jpg"),
            "/files/snapshots/a%20b%23%3F%25%2F%C3%A9~+,=@.jpg"
        );
        // What the HTTP layer decodes is the name again.
        let url = url_for(FileKind::Snapshot, "a b#?%é.jpg");
        assert_eq!(crate::http::percent_decode(&url).as_deref(), Some("/files/snapshots/a b#?%é.jpg"));
    }
}
