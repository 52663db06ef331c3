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
    let deadline = Instant::now() + Duration::from_secs(10);
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
    // Give a repeated warning from the second round of listings time to reach the log too.
    std::thread::sleep(Duration::from_millis(300));
    let log = d.stderr();
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

#[test]
fn an_unreadable_retention_policy_stops_automatic_deletion() {
    // The operator had switched deletion off; the file got damaged afterwards.
    let d = retention_daemon("{\"policy_type\": \"manual\", \"enabled\": fal");
    std::thread::sleep(Duration::from_millis(3500));
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
    std::thread::sleep(Duration::from_millis(2500));
    assert!(d.path("recordings/old.mp4").exists());
    std::fs::write(d.path("state/retention.json"), "{\"policy_type\": \"manual\", \"enabled\": false}").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
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
    std::thread::sleep(Duration::from_millis(500));
    let open = std::fs::read_dir(format!("/proc/{}/fd", d.child.id())).unwrap().count();
    assert!(open >= 62, "only {open} of 64 descriptors in use: the test did not reach the limit");
    let r = client.call("authenticate", json!({"auth_token": token("viewer", 600)}));
    assert_eq!(r["result"]["authenticated"], true, "{r}");
    drop(hold);
    assert_eq!(client.call("ping", Value::Null)["result"], "pong");
    let log = d.stderr();
    assert!(!log.contains("panicked"), "{log}");
}
