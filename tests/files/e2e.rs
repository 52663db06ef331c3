//! File management through the real daemon: WebSocket JSON-RPC methods and HTTP downloads on both ports.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{put, BAD_NAMES};
use crate::support::{http_get, token, Daemon, TempDir};

fn err_code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error: {v}"))
}

/// Percent-encodes a name for a request line, keeping `/` and `.` raw (they are the traversal attempts).
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/.-_~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn methods_over_websocket_with_roles() {
    let d = Daemon::start();
    put(&d.path("recordings/camera0/camera0_2025-01-15_14-30-00.mp4"), 100, 200);
    put(&d.path("recordings/flat.mp4"), 50, 100);
    put(&d.path("snapshots/camera0_snapshot_2025-01-15_14-30-00.jpg"), 10, 50);
    let mut viewer = d.client_as("viewer");
    let r = viewer.ok("list_recordings", json!({"limit": 1}));
    assert_eq!((r["total"].clone(), r["files"][0]["filename"].clone()), (json!(2), json!("flat.mp4")));
    assert_eq!(r["files"][0]["download_url"], "/files/recordings/flat.mp4");
    assert_eq!(err_code(&viewer.call("list_recordings", json!({"limit": 0}))), -32602);
    assert_eq!(err_code(&viewer.call("list_snapshots", json!({"offset": -1}))), -32602);
    let r = viewer.ok("list_snapshots", json!({"offset": 5}));
    assert_eq!((r["total"].clone(), r["files"].clone()), (json!(1), json!([])));
    let r = viewer.ok("get_recording_info", json!({"filename": "camera0_2025-01-15_14-30-00.mp4"}));
    assert_eq!(r["file_size"], 100);
    let r = viewer.call("get_snapshot_info", json!({"filename": "gone.jpg"}));
    assert_eq!(r["error"], json!({"code": -1005, "message": "Snapshot file not found: gone.jpg"}));
    let r = viewer.ok(
        "get_download_url",
        json!({"file_type": "snapshot", "filename": "camera0_snapshot_2025-01-15_14-30-00.jpg"}),
    );
    assert_eq!(r["download_url"], "/files/snapshots/camera0_snapshot_2025-01-15_14-30-00.jpg");
    for m in ["delete_recording", "get_storage_info", "cleanup_old_files", "get_storage_threshold"] {
        assert_eq!(err_code(&viewer.call(m, json!({"filename": "flat.mp4"}))), -32003, "{m}");
    }
    let mut operator = d.client_as("operator");
    let r = operator.ok("delete_recording", json!({"filename": "flat.mp4"}));
    assert_eq!(r, json!({"filename": "flat.mp4", "deleted": true, "message": "Recording file deleted successfully"}));
    assert!(!d.path("recordings/flat.mp4").exists());
    let mut admin = d.client_as("admin");
    let s = admin.ok("get_storage_info", Value::Null);
    let n = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(n("used_space") + n("free_space"), n("total_space"));
    assert_eq!((n("recordings_size"), n("snapshots_size")), (100, 10));
    assert_eq!(
        admin.ok("get_storage_threshold", Value::Null),
        json!({"warning_threshold": 80, "critical_threshold": 90})
    );
    let r = admin.ok("cleanup_old_files", Value::Null);
    assert_eq!(
        (r["cleanup_executed"].clone(), r["message"].clone()),
        (json!(true), json!("Cleanup completed successfully"))
    );
}

#[test]
fn traversal_and_odd_names_rejected_over_websocket_and_http() {
    let d = Daemon::start();
    let outside = d.path("outside.mp4");
    put(&outside, 10, 0);
    std::os::unix::fs::symlink(&outside, d.path("recordings/escape.mp4")).unwrap();
    std::os::unix::fs::symlink(&outside, d.path("snapshots/escape.mp4")).unwrap();
    let mut c = d.client_as("admin");
    let auth = format!("Bearer {}", token("admin", 600));
    for name in BAD_NAMES {
        for m in ["get_recording_info", "get_snapshot_info", "delete_recording", "delete_snapshot"] {
            assert_eq!(err_code(&c.call(m, json!({ "filename": name }))), -32602, "{m} {name:?}");
        }
        let r = c.call("get_download_url", json!({"file_type": "recording", "filename": name}));
        assert_eq!(err_code(&r), -32602, "get_download_url {name:?}");
        for port in [d.port, d.health_port] {
            for kind in ["recordings", "snapshots"] {
                let path = format!("/files/{kind}/{}", encode(name));
                let (status, _, _) = http_get(port, &path, &[("Authorization", &auth)]);
                assert_eq!(status, 400, "GET {path} on {port}");
            }
        }
    }
    assert!(outside.exists());
}

#[test]
fn downloads_need_a_valid_token_and_support_ranges_on_both_ports() {
    let d = Daemon::start();
    let body: Vec<u8> = (0..=255u8).cycle().take(50_000).collect();
    fs::create_dir_all(d.path("recordings/camera0")).unwrap();
    fs::write(d.path("recordings/camera0/clip.mp4"), &body).unwrap();
    fs::write(d.path("snapshots/shot.jpg"), b"\xFF\xD8\xFF\xD9").unwrap();
    let (admin, viewer, expired) = (token("admin", 600), token("viewer", 600), token("viewer", -60));
    for port in [d.port, d.health_port] {
        let url = "/files/recordings/clip.mp4";
        for h in [vec![], vec![("Authorization", format!("Bearer {expired}"))], vec![("X-API-Key", "nope".into())]] {
            let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, headers, _) = http_get(port, url, &hs);
            assert_eq!(status, 401, "{h:?} on {port}");
            assert!(headers.iter().any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")));
        }
        let (status, headers, got) = http_get(port, url, &[("Authorization", &format!("Bearer {admin}"))]);
        assert_eq!((status, got.len()), (200, body.len()));
        assert!(got == body);
        assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "video/mp4"));
        let bearer = format!("Bearer {viewer}");
        let (status, headers, got) = http_get(port, url, &[("Authorization", &bearer), ("Range", "bytes=1000-1999")]);
        assert_eq!(status, 206);
        assert!(got == body[1000..2000]);
        assert!(headers.iter().any(|(k, v)| k == "content-range" && v == "bytes 1000-1999/50000"));
        let (status, headers, got) = http_get(port, "/files/snapshots/shot.jpg", &[("Authorization", &bearer)]);
        assert_eq!((status, got.as_slice()), (200, &b"\xFF\xD8\xFF\xD9"[..]));
        assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "image/jpeg"));
        let (status, _, _) = http_get(port, "/files/snapshots/missing.jpg", &[("Authorization", &bearer)]);
        assert_eq!(status, 404);
    }
}

fn daemon_with(dirs: &Path, extra: &str) -> Daemon {
    let yaml = format!(
        "state_dir: {s}\nmediamtx:\n  recordings_path: {r}\n  snapshots_path: {p}\n{extra}",
        s = dirs.join("state").display(),
        r = dirs.join("recordings").display(),
        p = dirs.join("snapshots").display(),
    );
    Daemon::builder().yaml(&yaml).start()
}

#[test]
fn policy_and_thresholds_survive_a_daemon_restart() {
    let dirs = TempDir::new("files-e2e-restart");
    let mut d = daemon_with(dirs.path(), "");
    let mut c = d.client_as("admin");
    let r = c.ok("set_retention_policy", json!({"policy_type": "age", "max_age_days": 2, "enabled": true}));
    assert_eq!(r["message"], "Retention policy updated successfully");
    c.ok("set_storage_threshold", json!({"warning_threshold": 70, "critical_threshold": 85}));
    assert_eq!(d.terminate().0, Some(0));
    let d = daemon_with(dirs.path(), "");
    let mut c = d.client_as("admin");
    assert_eq!(c.ok("get_storage_threshold", Value::Null), json!({"warning_threshold": 70, "critical_threshold": 85}));
    // 3 days old: kept by the configured 30 days, removed by the stored 2-day policy.
    put(&dirs.path().join("recordings/camera0/old.mp4"), 10, 3 * 86_400);
    put(&dirs.path().join("recordings/camera0/new.mp4"), 10, 86_400);
    let r = c.ok("cleanup_old_files", Value::Null);
    assert_eq!((r["files_deleted"].clone(), r["recordings_removed"].clone()), (json!(1), json!(1)));
    assert!(dirs.path().join("recordings/camera0/new.mp4").exists());
}

#[test]
fn scheduled_retention_runs_after_one_interval() {
    let dirs = TempDir::new("files-e2e-schedule");
    for i in 0..4u64 {
        put(&dirs.path().join(format!("snapshots/s{i}.jpg")), 10, 100 + i);
    }
    let extra = "recording:\n  cleanup_interval: 2\nsnapshots:\n  cleanup_interval: 2\n  max_count: 1\n";
    let d = daemon_with(dirs.path(), extra);
    let remaining = || fs::read_dir(dirs.path().join("snapshots")).unwrap().count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while remaining() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(remaining(), 1, "{}", d.stderr());
    assert!(dirs.path().join("snapshots/s0.jpg").exists(), "the newest snapshot is kept");
    assert!(d.stderr().contains("retention: removed"), "each run logs what it removed");
}
