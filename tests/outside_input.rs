//! Input the daemon does not control: crafted media files in its folders, a damaged persisted retention policy,
//! and a process that has used up its file descriptors. None of them may stop a handler, the daemon, or cost data.

use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::support::{token, Client, Daemon};

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// 52 bytes: an `ftyp`, then a `moov` whose 64-bit size is 2^64 - 8 (once an index overflow in the box walker that
/// made `list_recordings` answer -32603 to every client).
fn crafted_mp4() -> Vec<u8> {
    let mut f = bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41");
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(b"moov");
    f.extend_from_slice(&(u64::MAX - 7).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f
}

/// The daemon's log once `ready` holds for it (the log writer is a thread of its own), or after 10 s.
pub fn log_once(d: &Daemon, ready: impl Fn(&str) -> bool) -> String {
    log_once_within(d, Duration::from_secs(10), ready)
}

/// [`log_once`] with another bound.
pub fn log_once_within(d: &Daemon, within: Duration, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let log = d.stderr();
        if ready(&log) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn set_age(path: &std::path::Path, days: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400)).unwrap();
}

#[test]
fn crafted_media_files_cost_only_their_own_metadata() {
    let d = Daemon::start();
    let crafted = crafted_mp4();
    assert_eq!(crafted.len(), 52);
    std::fs::create_dir_all(d.path("recordings/camera0")).unwrap();
    std::fs::write(d.path("recordings/camera0/camera0_2025-01-01_00-00-00.mp4"), &crafted).unwrap();
    std::fs::write(d.path("recordings/flat.mp4"), &crafted).unwrap();
    // A nested box with the same size inside moov, a JPEG whose segment length runs past the file, a bare PNG.
    let mut nested = bx(b"ftyp", b"isom");
    let mut inner = 1u32.to_be_bytes().to_vec();
    inner.extend_from_slice(b"trak");
    inner.extend_from_slice(&(u64::MAX - 3).to_be_bytes());
    nested.extend(bx(b"moov", &inner));
    std::fs::write(d.path("recordings/nested.mp4"), &nested).unwrap();
    std::fs::write(d.path("snapshots/cut.jpg"), [0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x00]).unwrap();
    std::fs::write(d.path("snapshots/sig.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let mut clients: Vec<Client> = (0..3).map(|_| d.client_as("viewer")).collect();
    for _ in 0..2 {
        for c in &mut clients {
            let r = c.ok("list_recordings", json!({}));
            assert_eq!(r["total"], 3, "{r}");
            for f in r["files"].as_array().unwrap() {
                assert_eq!(f["duration"], Value::Null, "{f}");
            }
            let s = c.ok("list_snapshots", json!({}));
            assert_eq!(s["total"], 2, "{s}");
            let info = c.ok("get_recording_info", json!({"filename": "flat.mp4"}));
            assert_eq!(info["file_size"], 52, "{info}");
        }
    }
    // One warning per file, not one per listing.
    let names = ["camera0_2025-01-01_00-00-00.mp4", "flat.mp4", "nested.mp4", "cut.jpg", "sig.png"];
    log_once(&d, |log| names.iter().all(|n| log.contains(n)));
    // A repeated warning from the second round of listings would have been logged before the daemon answered it; a
    // line logged after those answers (a new session) proves the log holds everything the listings wrote.
    let sessions = |log: &str| log.matches("authenticated test-").count();
    let before = sessions(&d.stderr());
    let _marker = d.client_as("viewer");
    let log = log_once(&d, |log| sessions(log) > before);
    assert!(sessions(&log) > before, "the marker session was not logged: {log}");
    for name in names {
        let warnings = log.lines().filter(|l| l.contains("WARNING") && l.contains(name)).count();
        assert_eq!(warnings, 1, "{name}: {warnings} warnings in {log}");
    }
    assert!(!log.contains("panicked"), "{log}");
}

/// A daemon that would delete its 10-day-old recording and snapshot within a second, given a usable policy.
fn retention_daemon(policy_file: &'static str) -> Daemon {
    Daemon::builder()
        .yaml("recording:\n  cleanup_interval: 1\n  cleanup_after_days: 1\n  auto_cleanup: true")
        .yaml("snapshots:\n  cleanup_interval: 1\n  max_age: 60\n  auto_cleanup: true")
        .before_start(move |dir| {
            for rel in ["recordings/old.mp4", "snapshots/old.jpg"] {
                let p = dir.join(rel);
                std::fs::write(&p, b"kept").unwrap();
                set_age(&p, 10);
            }
            std::fs::write(dir.join("state/retention.json"), policy_file).unwrap();
        })
        .start()
}

/// What a scheduled cleanup logs when it does not run: under an unreadable policy, under a manual/disabled one.
const SKIPPED_UNREADABLE: &str = "retention: scheduled cleanup skipped: ";
const SKIPPED_DISABLED: &str = "retention: scheduled cleanup skipped (policy is manual or disabled)";

/// Wait (at most 15 s) until `n` scheduled cleanups logged `line`.
fn wait_for_skipped_cleanups(d: &Daemon, line: &str, n: usize) {
    let log = log_once_within(d, Duration::from_secs(15), |log| log.matches(line).count() >= n);
    assert!(log.matches(line).count() >= n, "fewer than {n} scheduled cleanups logged {line:?}: {log}");
}

#[test]
fn an_unreadable_retention_policy_stops_automatic_deletion() {
    // The operator had switched deletion off; the file got damaged afterwards.
    let d = retention_daemon("{\"policy_type\": \"manual\", \"enabled\": fal");
    // Three scheduled cleanups (one a second) ran and refused to apply the unknown policy.
    wait_for_skipped_cleanups(&d, SKIPPED_UNREADABLE, 3);
    assert!(d.path("recordings/old.mp4").exists(), "a scheduled cleanup deleted a recording");
    assert!(d.path("snapshots/old.jpg").exists(), "a scheduled cleanup deleted a snapshot");
    let log = log_once(&d, |log| log.lines().any(|l| l.contains("ERROR") && l.contains("retention.json")));
    assert!(log.lines().any(|l| l.contains("ERROR") && l.contains("retention.json")), "{log}");
    let mut admin = d.client_as("admin");
    let r = admin.call("cleanup_old_files", json!({}));
    assert!(r.get("error").is_some(), "an explicit cleanup must not apply an unknown policy: {r}");
    assert!(d.path("recordings/old.mp4").exists());
    assert_eq!(
        std::fs::read_to_string(d.path("state/retention.json")).unwrap(),
        "{\"policy_type\": \"manual\", \"enabled\": fal",
        "the damaged file is left for inspection"
    );
    // Setting a policy again resumes cleanup (and proves this setup deletes when allowed to).
    admin.ok("set_retention_policy", json!({"policy_type": "age", "enabled": true, "max_age_days": 1}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.path("recordings/old.mp4").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!d.path("recordings/old.mp4").exists(), "cleanup did not resume: {}", d.stderr());
    let kept: Value =
        serde_json::from_slice(&std::fs::read(d.path("state/retention.last-good.json")).unwrap()).unwrap();
    assert_eq!(kept["policy_type"], "age");
}

#[test]
fn a_repaired_retention_policy_is_picked_up_without_a_restart() {
    let d = retention_daemon("not json at all");
    wait_for_skipped_cleanups(&d, SKIPPED_UNREADABLE, 2);
    assert!(d.path("recordings/old.mp4").exists());
    std::fs::write(d.path("state/retention.json"), "{\"policy_type\": \"manual\", \"enabled\": false}").unwrap();
    // Two scheduled cleanups under the repaired (manual, disabled) policy.
    wait_for_skipped_cleanups(&d, SKIPPED_DISABLED, 2);
    assert!(d.path("recordings/old.mp4").exists(), "manual/disabled must keep everything");
    let log = log_once(&d, |log| log.contains("readable again"));
    assert!(log.contains("readable again"), "{log}");
}

/// Authenticating needs a random session id; with every descriptor of the process in use, that must not panic
/// the connection's worker (the id once came from opening `/dev/urandom`).
#[test]
fn authenticate_works_with_every_file_descriptor_in_use() {
    let d = Daemon::builder().fd_limit(64).start();
    let mut client = d.client();
    // Fill the daemon's descriptor table with accepted but silent sockets.
    let mut hold = Vec::new();
    for _ in 0..80 {
        if let Ok(s) = TcpStream::connect_timeout(&([127, 0, 0, 1], d.port).into(), Duration::from_millis(500)) {
            hold.push(s);
        }
    }
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", d.child.id())).unwrap().count();
    // The daemon accepts the connections asynchronously.
    crate::support::wait_until("the daemon's descriptor table to fill", Duration::from_secs(10), || fds() >= 62);
    let open = fds();
    assert!(open >= 62, "only {open} of 64 descriptors in use: the test did not reach the limit");
    let r = client.call("authenticate", json!({"auth_token": token("viewer", 600)}));
    assert_eq!(r["result"]["authenticated"], true, "{r}");
    drop(hold);
    assert_eq!(client.call("ping", Value::Null)["result"], "pong");
    let log = d.stderr();
    assert!(!log.contains("panicked"), "{log}");
}

/// An `ffmpeg` on the daemon's PATH that fails the way `mode` (a file next to it) says: `fail` (an error line,
/// exit 1), `empty` (exit 0 without writing), `hang` (never ends). `-version` answers like ffmpeg.
fn broken_ffmpeg(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = "#!/bin/sh\n\
        [ \"$1\" = -version ] && { echo 'ffmpeg version 6.0'; exit 0; }\n\
        case \"$(cat \"$(dirname \"$0\")/mode\")\" in\n\
        fail) echo '[in#0 @ 0x1] Error opening input: Input/output error' >&2; exit 1;;\n\
        empty) exit 0;;\n\
        *) exec sleep 60;;\n\
        esac\n";
    let path = bin.join("ffmpeg");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_failing_capture_is_reported_with_ffmpegs_reason_and_leaves_no_file() {
    let dir = crate::support::TempDir::new("broken-ffmpeg");
    let bin = broken_ffmpeg(dir.path());
    std::fs::write(bin.join("mode"), "fail").unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let d = Daemon::builder()
        .yaml("camera:\n  virtual:\n  - {name: T, width: 320, height: 240, fps: 10, pattern: testsrc2}")
        .yaml("ffmpeg:\n  snapshot:\n    execution_timeout: 1.0")
        .env("PATH", &path)
        .start();
    let mut c = d.client_as("operator");
    for (mode, why) in [
        ("fail", "lavfi_direct: exit code 1 [in#0 @ 0x1] Error opening input: Input/output error"),
        ("empty", "lavfi_direct: no frame written"),
        ("hang", "lavfi_direct: timed out after 1.0s"),
    ] {
        std::fs::write(bin.join("mode"), mode).unwrap();
        let r = c.ok("take_snapshot", json!({"device": "virtual0", "filename": mode}));
        assert_eq!(
            (r["status"].clone(), r["file_size"].clone(), r["file_path"].clone()),
            (json!("FAILED"), json!(0), json!("")),
            "{mode}: {r}"
        );
        let error = r["error"].as_str().unwrap();
        assert!(error.starts_with("All snapshot capture methods failed for virtual0 after "), "{mode}: {error}");
        assert!(error.ends_with(why), "{mode}: {error}");
        assert_eq!(r["filename"], format!("{mode}.jpg"));
    }
    // Nothing is left behind: no snapshot, no partial file.
    let left: Vec<_> = std::fs::read_dir(d.path("snapshots")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(c.ok("list_snapshots", json!({}))["total"], 0);
}
