//! Child-process calls: parent-death signal, process-group signals, existence probe.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Make the child die with SIGKILL when the daemon dies (even by SIGKILL), and refuse to start it when the daemon
/// died between fork and exec: no ffmpeg outlives the daemon.
pub fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions (prctl,
    // getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Send `sig` to the process group `pgid` (a child started with `process_group(0)`). No-op for `pgid <= 0`, which
/// would address our own group or every process.
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: plain syscall; a negative pid addresses the process group we created for this child.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// Does process `pid` exist (signal 0 probe)?
pub fn exists(pid: i32) -> bool {
    // SAFETY: signal 0 only probes existence.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}
