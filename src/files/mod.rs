//! File management, storage, retention (issue 8). Placeholder handle: the signatures below are the contract.

use std::path::Path;

use crate::app::App;
use crate::http::{Request, Response};

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

/// Space on the filesystem holding a path (statvfs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskUsage {
    pub total: u64,
    /// Bytes available to unprivileged users (`f_bavail`).
    pub available: u64,
    /// Bytes free including root-reserved blocks (`f_bfree`).
    pub free: u64,
    /// `(total - available) / total * 100`: root-reserved blocks count as used, as in the Python service.
    pub used_percent: f64,
}

/// statvfs of `path`.
pub fn disk_usage(path: &Path) -> std::io::Result<DiskUsage> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frsize;
    let available = st.f_bavail as u64 * frsize;
    let free = st.f_bfree as u64 * frsize;
    let used_percent = if total == 0 { 0.0 } else { (total - available) as f64 * 100.0 / total as f64 };
    Ok(DiskUsage { total, available, free, used_percent })
}

/// `GET /files/recordings/<name>` and `/files/snapshots/<name>` (placeholder until file management lands).
pub fn http_download(_app: &App, _req: &Request) -> Response {
    Response::text(404, "File not found\n")
}
