//! The operating-system calls std does not wrap (readiness, socket options, file-system figures, resource limits,
//! process groups), each behind a safe function. This module and the V4L2 ioctls (`camera::v4l2`) are the only
//! places with `unsafe` code (the crate denies `unsafe_code` elsewhere).
#![allow(unsafe_code)]

pub mod poll;
pub mod process;

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Set `SO_SNDBUF` (best effort: the kernel clamps it to its limits).
pub fn set_send_buffer(fd: RawFd, bytes: usize) {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: passes a pointer to a valid c_int and its size; an invalid fd only makes the call fail.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
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

/// statvfs of `path`. `statvfs64`: on 32-bit targets plain `statvfs` has 32-bit block counts and fails with
/// EOVERFLOW for a file system of 2^32 blocks or more (16 TiB at 4 KiB blocks); on 64-bit targets both are the
/// same call. Counts are widened to `u64` before multiplying: `f_frsize` is 32 bits wide there too.
pub fn disk_usage(path: &Path) -> io::Result<DiskUsage> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: statvfs64 is plain old data; all-zero is a valid value for it.
    let mut st: libc::statvfs64 = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    cvt(unsafe { libc::statvfs64(c.as_ptr(), &mut st) })?;
    #[allow(clippy::unnecessary_cast)] // the field types differ between 32- and 64-bit targets
    let (frsize, blocks, bavail, bfree) =
        (st.f_frsize as u64, st.f_blocks as u64, st.f_bavail as u64, st.f_bfree as u64);
    let total = blocks.saturating_mul(frsize);
    let available = bavail.saturating_mul(frsize);
    let free = bfree.saturating_mul(frsize);
    let used_percent = if total == 0 { 0.0 } else { total.saturating_sub(available) as f64 * 100.0 / total as f64 };
    Ok(DiskUsage { total, available, free, used_percent })
}

/// Raise the soft `RLIMIT_NOFILE` towards `wanted`, at most to the hard limit. Returns the soft limit now in
/// force. `rlim_t` is 32 bits wide on 32-bit targets, so values are converted, saturating, at this boundary.
pub fn raise_nofile_limit(wanted: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into a valid, exclusively borrowed struct.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    #[allow(clippy::unnecessary_cast)] // rlim_t is u32 on 32-bit targets
    let (cur, max) = (lim.rlim_cur as u64, lim.rlim_max as u64);
    if cur >= wanted {
        return Ok(cur);
    }
    let target = wanted.min(max);
    lim.rlim_cur = libc::rlim_t::try_from(target).unwrap_or(libc::rlim_t::MAX);
    // SAFETY: setrlimit reads a valid, initialised struct.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    Ok(target)
}

/// Clock ticks per second (`_SC_CLK_TCK`), for CPU times read from `/proc`; 100 when unknown.
pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_of_root_is_sane() {
        let u = disk_usage(Path::new("/")).unwrap();
        assert!(u.total > 0 && u.available <= u.total && u.free <= u.total);
        assert!((0.0..=100.0).contains(&u.used_percent));
        assert!(disk_usage(Path::new("/nonexistent/dir")).is_err());
    }

    #[test]
    fn nofile_limit_is_reported() {
        let now = raise_nofile_limit(0).unwrap();
        assert!(now > 0);
    }
}
