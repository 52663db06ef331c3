//! Test prerequisites: a test that needs something the machine may lack (root, ffmpeg, the MediaMTX binary, a
//! browser, ...) asks for it first and returns when it is missing:
//!
//! ```ignore
//! if !require(Prereq::Ffmpeg) {
//!     return;
//! }
//! ```
//!
//! Under `CI=true` a missing prerequisite fails the test (CI installs everything, so absence is a broken CI, not
//! a reason to pass). Elsewhere the test prints one `skipped: <test>: <reason>` line and returns: the line goes
//! straight to the process's stderr, past libtest's capture, so it shows in a plain `cargo test` run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    /// Running as root (mknod of device nodes, mounting a tmpfs).
    Root,
    /// `ffmpeg` and `ffprobe` on PATH.
    Ffmpeg,
    /// A MediaMTX binary: `MEDIAMTX_BIN`, else `mediamtx` on PATH, else `../shared/tools/mediamtx/mediamtx`
    /// (see [`mediamtx_bin`]).
    MediaMtx,
    /// A C compiler (`cc`), to build the V4L2 shim.
    CCompiler,
    /// Any other program, looked up on PATH by name (it must run `<name> --version` or exist).
    Program(&'static str),
}

/// True when the prerequisite is present. When it is missing: under `CI=true` the test panics; otherwise one
/// "skipped" line is printed and false is returned (the caller returns).
#[track_caller]
pub fn require(p: Prereq) -> bool {
    match check(p) {
        Ok(()) => true,
        Err(reason) => missing(&reason),
    }
}

/// [`require`] for several prerequisites; reports the first one missing.
#[track_caller]
pub fn require_all(ps: &[Prereq]) -> bool {
    ps.iter().all(|p| require(*p))
}

/// A prerequisite found missing by the caller's own check (`reason` says what): fail under `CI=true`, else print
/// the skip line and return false.
#[track_caller]
pub fn missing(reason: &str) -> bool {
    let test = std::thread::current().name().unwrap_or("<test>").to_string();
    if in_ci() {
        panic!("{test}: prerequisite missing under CI=true: {reason}");
    }
    let line = format!("skipped: {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    false
}

/// `CI=true` (or `1`) in the environment: missing prerequisites are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn check(p: Prereq) -> Result<(), String> {
    match p {
        Prereq::Root => is_root().then_some(()).ok_or_else(|| "needs root (mknod, mount)".to_string()),
        Prereq::Ffmpeg => {
            for tool in ["ffmpeg", "ffprobe"] {
                if !runs(tool, "-version") {
                    return Err(format!("{tool} is not installed"));
                }
            }
            Ok(())
        }
        Prereq::MediaMtx => mediamtx_bin().map(|_| ()),
        Prereq::CCompiler => runs("cc", "--version").then_some(()).ok_or_else(|| "no C compiler (cc)".to_string()),
        Prereq::Program(name) => (runs(name, "--version") || on_path(name).is_some())
            .then_some(())
            .ok_or_else(|| format!("{name} not found")),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The MediaMTX binary for tests: `MEDIAMTX_BIN` when set (and then only that: a wrong value is reported, not
/// silently replaced), else `mediamtx` on PATH, else `../shared/tools/mediamtx/mediamtx` next to the crate.
pub fn mediamtx_bin() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(v) = std::env::var_os("MEDIAMTX_BIN") {
                let p = PathBuf::from(&v);
                return if is_executable(&p) {
                    Ok(p)
                } else {
                    Err(format!("MEDIAMTX_BIN={} is not an executable file", p.display()))
                };
            }
            if let Some(p) = on_path("mediamtx") {
                return Ok(p);
            }
            let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/mediamtx/mediamtx");
            if is_executable(&shared) {
                return Ok(shared);
            }
            Err("no MediaMTX binary (set MEDIAMTX_BIN, put mediamtx on PATH, or provide \
                 ../shared/tools/mediamtx/mediamtx)"
                .to_string())
        })
        .clone()
}
