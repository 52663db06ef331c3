//! Black-box contract conformance: the real daemon driven the way the Python SDKs and
//! the Python integration tests drive it, asserting exact field names, JSON types, error codes and messages.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{http_get, token, Client, Daemon};

const VIRTUAL: &str = "camera:\n  virtual:\n  - {name: T, width: 320, height: 240, fps: 10, pattern: testsrc2}";

fn daemon() -> Daemon {
    Daemon::builder().yaml(VIRTUAL).start()
}

/// `(code, message)` of an error reply (panics on a result).
fn err(v: &Value) -> (i64, String) {
    let e = v.get("error").unwrap_or_else(|| panic!("expected an error reply: {v}"));
    (e["code"].as_i64().unwrap(), e["message"].as_str().unwrap().to_string())
}

fn invalid(v: &Value) {
    assert_eq!(err(v), (-32602, "Invalid parameters".to_string()), "{v}");
}

fn not_found(v: &Value) {
    assert_eq!(err(v), (-1000, "Camera device not found".to_string()), "{v}");
}

/// UTC RFC 3339 with a `Z` suffix.
fn utc(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("timestamp must be a string: {v}"));
    assert!(s.ends_with('Z') && camera_service::util::timefmt::parse_rfc3339(s).is_some(), "not UTC RFC 3339: {s}");
}

/// The object's keys, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect();
    k.sort();
    k
}

fn has_keys(v: &Value, want: &[&str]) {
    let k = keys(v);
    for w in want {
        assert!(k.iter().any(|x| x == w), "missing {w} in {v}");
    }
}

fn int(v: &Value) -> bool {
    v.is_u64() || v.is_i64()
}

/// Sends one raw request with `params` as given (arrays, scalars) and returns the reply.
fn raw(c: &mut Client, method: &str, params: Value) -> Value {
    c.send_text(&json!({"jsonrpc": "2.0", "method": method, "params": params, "id": "raw"}).to_string());
    loop {
        let v = c.recv();
        if v["id"] == "raw" {
            return v;
        }
        c.notifications.push(v);
    }
}

#[test]
fn authentication_as_the_sdks_do_it() {
    let d = daemon();
    let mut c = d.client();
    // Unauthenticated: exact Python text.
    assert_eq!(
        err(&c.call("ping", Value::Null)),
        (-32001, "Authentication required for ping - call authenticate or provide auth_token".into())
    );
    // Bad credentials are a result, for each auth_type.
    let r = c.ok("authenticate", json!({"token": "not-a-jwt", "auth_type": "jwt"}));
    assert_eq!(r, json!({"authenticated": false, "error": "Invalid or expired JWT token"}));
    let r = c.ok("authenticate", json!({"token": "x".repeat(32), "auth_type": "api_key"}));
    assert_eq!(r, json!({"authenticated": false, "error": "Invalid or expired API key"}));
    let r = c.ok("authenticate", json!({"auth_token": token("admin", -10)}));
    assert_eq!(r, json!({"authenticated": false, "error": "Invalid or expired JWT token"}));
    let forged = crate::support::token_with("another-secret-entirely-0123456789abcdef", "admin", 3600);
    assert_eq!(c.ok("authenticate", json!({"auth_token": forged}))["authenticated"], false);
    assert_eq!(err(&c.call("ping", Value::Null)).0, -32001, "still unauthenticated");
    // Missing / empty / non-string token, params not an object → -32602.
    for p in [json!({}), json!({"token": ""}), json!({"auth_token": 5}), json!({"auth_type": "jwt"})] {
        invalid(&c.call("authenticate", p));
    }
    invalid(&raw(&mut c, "authenticate", json!([token("admin", 60)])));
    // The SDK form.
    let r = c.ok("authenticate", json!({"token": token("operator", 3600), "auth_type": "jwt"}));
    has_keys(&r, &["authenticated", "role", "permissions", "expires_at", "session_id"]);
    assert_eq!((r["authenticated"].clone(), r["role"].clone()), (json!(true), json!("operator")));
    assert_eq!(r["permissions"], json!(["view", "control"]));
    utc(&r["expires_at"]);
    assert_eq!(r["session_id"].as_str().unwrap().len(), 36, "UUID session id: {r}");
    assert_eq!(c.ok("ping", Value::Null), json!("pong"));
    // auto (default) resolves a JWT too.
    let mut c2 = d.client();
    let r = c2.ok("authenticate", json!({"auth_token": token("viewer", 3600), "auth_type": "auto"}));
    assert_eq!((r["role"].clone(), r["permissions"].clone()), (json!("viewer"), json!(["view"])));
}

#[test]
fn per_call_tokens_and_roles() {
    let d = daemon();
    // A per-call token authenticates the connection.
    let mut c = d.client();
    let r = c.ok("get_camera_list", json!({"auth_token": token("viewer", 3600)}));
    assert_eq!(r["total"], 1);
    assert_eq!(c.ok("ping", Value::Null), "pong", "the connection stays authenticated");
    let mut bad = d.client();
    assert_eq!(
        err(&bad.call("ping", json!({"auth_token": "garbage"}))),
        (-32001, "Authentication failed: Invalid or expired JWT token".into())
    );
    // The role table (docs/api.md): the role just below gets the exact -32003 text.
    let table: &[(&str, &str)] = &[
        ("take_snapshot", "operator"),
        ("start_recording", "operator"),
        ("stop_recording", "operator"),
        ("delete_recording", "operator"),
        ("delete_snapshot", "operator"),
        ("get_metrics", "admin"),
        ("get_status", "admin"),
        ("get_server_info", "admin"),
        ("get_storage_info", "admin"),
        ("set_retention_policy", "admin"),
        ("cleanup_old_files", "admin"),
        ("get_storage_threshold", "admin"),
        ("set_storage_threshold", "admin"),
    ];
    let mut viewer = d.client_as("viewer");
    let mut operator = d.client_as("operator");
    for (method, role) in table {
        let who = if *role == "operator" { &mut viewer } else { &mut operator };
        assert_eq!(
            err(&who.call(method, json!({}))),
            (-32003, format!("Insufficient permissions - {role} role required for {method}")),
            "{method}"
        );
    }
    // Viewer-level methods answer a viewer (whatever the validation outcome, never -32003/-32001).
    for m in [
        "ping",
        "get_camera_list",
        "get_camera_status",
        "get_camera_capabilities",
        "get_streams",
        "list_recordings",
        "list_snapshots",
        "get_recording_info",
        "get_snapshot_info",
        "get_recording_status",
        "get_download_url",
    ] {
        let r = viewer.call(m, json!({}));
        if let Some(e) = r.get("error") {
            assert!(![-32001, -32003, -32601].contains(&e["code"].as_i64().unwrap()), "{m}: {r}");
        }
    }
    // Notification names are not callable.
    let mut admin = d.client_as("admin");
    for m in ["camera_status_update", "recording_status_update"] {
        assert_eq!(err(&admin.call(m, json!({}))), (-32601, "Method not found".into()));
    }
}

#[test]
fn camera_methods() {
    let d = daemon();
    let mut c = d.client_as("viewer");
    let r = c.ok("get_camera_list", Value::Null);
    assert_eq!(keys(&r), ["cameras", "connected", "total"]);
    assert_eq!((r["total"].clone(), r["connected"].clone()), (json!(1), json!(1)));
    let cam = &r["cameras"][0];
    assert_eq!(
        keys(cam),
        [
            "bus_info",
            "current_file",
            "device",
            "driver",
            "elapsed_time",
            "fps",
            "identity",
            "name",
            "recording",
            "recording_session",
            "resolution",
            "serial",
            "status",
            "streams",
            "virtual"
        ]
    );
    assert_eq!(cam["device"], "virtual0");
    assert_eq!(cam["status"], "CONNECTED");
    assert_eq!(cam["name"], "T");
    assert_eq!(cam["resolution"], "320x240");
    assert_eq!(cam["fps"], 10);
    assert_eq!(cam["streams"], json!({}), "mediamtx disabled: no URLs");
    assert_eq!((cam["recording"].clone(), cam["virtual"].clone()), (json!(false), json!(true)));
    assert!(cam["recording_session"].is_null() && cam["current_file"].is_null());
    assert!(int(&cam["elapsed_time"]) && cam["identity"].is_string());
    // Params are ignored by get_camera_list, even an array.
    assert_eq!(raw(&mut c, "get_camera_list", json!([1]))["result"]["total"], 1);

    let s = c.ok("get_camera_status", json!({"device": "virtual0"}));
    has_keys(cam, &[]);
    for k in keys(cam) {
        assert!(s.get(&k).is_some(), "get_camera_status lacks {k}: {s}");
    }
    assert_eq!(s["metrics"], json!({"bytes_sent": 0, "readers": 0, "uptime": 0}));
    assert_eq!(s["capabilities"]["resolutions"], json!(["320x240"]));
    assert!(s["capabilities"]["formats"].as_array().unwrap().iter().all(Value::is_string));

    let caps = c.ok("get_camera_capabilities", json!({"device": "virtual0"}));
    assert_eq!(keys(&caps), ["device", "formats", "fps_options", "resolutions", "validation_status"]);
    assert_eq!(caps["device"], "virtual0");
    assert_eq!(caps["fps_options"], json!([10]));
    assert!(caps["validation_status"].is_string());

    // -1000 for every well-formed but unknown id, on every camera method; -32602 for malformed ones.
    for m in ["get_camera_status", "get_camera_capabilities", "get_recording_status"] {
        for id in ["/dev/video0", "camera0", "virtual1", "/dev/video9"] {
            not_found(&c.call(m, json!({"device": id})));
        }
        for p in [json!({}), json!({"device": ""}), json!({"device": 0}), json!({"device": "/dev/sda"})] {
            invalid(&c.call(m, p));
        }
        invalid(&raw(&mut c, m, json!(["virtual0"])));
        invalid(&raw(&mut c, m, json!("virtual0")));
    }
    // get_streams: an array, [] without MediaMTX.
    assert_eq!(c.ok("get_streams", Value::Null), json!([]));
}

#[test]
fn snapshots() {
    let d = daemon();
    let mut c = d.client_as("operator");
    let r = c.ok("take_snapshot", json!({"device": "virtual0"}));
    has_keys(&r, &["device", "filename", "status", "timestamp", "file_size", "file_path"]);
    has_keys(&r, &["tier_used", "capture_time_ms", "width", "height"]);
    assert_eq!((r["device"].clone(), r["status"].clone()), (json!("virtual0"), json!("completed")), "{r}");
    assert!(r.get("error").is_none());
    utc(&r["timestamp"]);
    let name = r["filename"].as_str().unwrap();
    assert!(name.starts_with("virtual0_snapshot_") && name.ends_with(".jpg") && name.len() == 41, "{name}");
    assert!(int(&r["file_size"]) && r["file_size"].as_u64().unwrap() > 0);
    assert!(r["file_path"].as_str().unwrap().starts_with('/'));
    assert!(int(&r["tier_used"]) && int(&r["capture_time_ms"]));
    assert_eq!((r["width"].clone(), r["height"].clone()), (json!(320), json!(240)));
    // Chosen names, png.
    let r = c.ok("take_snapshot", json!({"device": "virtual0", "filename": "shot", "format": "png", "quality": 100}));
    assert_eq!((r["filename"].clone(), r["status"].clone()), (json!("shot.png"), json!("completed")));
    // Validation.
    for p in [
        json!({}),
        json!({"device": 5}),
        json!({"device": "virtual0", "quality": 0}),
        json!({"device": "virtual0", "quality": 101}),
        json!({"device": "virtual0", "quality": 1.5}),
        json!({"device": "virtual0", "quality": "85"}),
        json!({"device": "virtual0", "format": "bmp"}),
        json!({"device": "virtual0", "filename": "../x.jpg"}),
        json!({"device": "virtual0", "filename": "/tmp/x.jpg"}),
        json!({"device": "virtual0", "filename": ".hidden.jpg"}),
        json!({"device": "nonsense"}),
    ] {
        invalid(&c.call("take_snapshot", p));
    }
    invalid(&raw(&mut c, "take_snapshot", json!(["virtual0"])));
    for id in ["/dev/video0", "camera0", "virtual1"] {
        not_found(&c.call("take_snapshot", json!({"device": id})));
    }
    // The snapshot is listed with the extras we add.
    let mut v = d.client_as("viewer");
    let l = v.ok("list_snapshots", Value::Null);
    assert_eq!((l["total"].clone(), l["limit"].clone(), l["offset"].clone()), (json!(2), json!(100), json!(0)));
    let f = l["files"].as_array().unwrap().iter().find(|f| f["filename"] == name).unwrap().clone();
    assert_eq!(keys(&f), ["created_time", "download_url", "file_size", "filename", "height", "modified_time", "width"]);
    utc(&f["created_time"]);
    utc(&f["modified_time"]);
    assert_eq!(f["download_url"], format!("/files/snapshots/{name}"));
    let i = v.ok("get_snapshot_info", json!({"filename": name}));
    assert_eq!(i["resolution"], "320x240");
    assert_eq!((i["width"].clone(), i["height"].clone()), (json!(320), json!(240)));
}

fn start(c: &mut Client, params: Value) -> Value {
    c.ok("start_recording", params)
}

#[test]
fn recordings_and_their_notifications() {
    let d = daemon();
    let mut op = d.client_as("operator");
    let mut anon = d.client();
    // Validation first (nothing is started).
    for p in [
        json!({}),
        json!({"device": "virtual0", "duration": 0}),
        json!({"device": "virtual0", "duration": 1.5}),
        json!({"device": "virtual0", "duration": "10"}),
        json!({"device": "virtual0", "duration_seconds": 3601}),
        json!({"device": "virtual0", "duration_minutes": 0}),
        json!({"device": "virtual0", "duration_hours": 25}),
        json!({"device": "virtual0", "format": "mkv"}),
    ] {
        invalid(&op.call("start_recording", p));
    }
    invalid(&raw(&mut op, "start_recording", json!(["virtual0"])));
    for m in ["start_recording", "stop_recording"] {
        for id in ["/dev/video0", "camera0", "virtual1"] {
            not_found(&op.call(m, json!({"device": id})));
        }
        invalid(&op.call(m, json!({"device": "video0"})));
    }
    // The SDK sends `filename` too (ignored).
    let r = start(&mut op, json!({"device": "virtual0", "filename": "ignored.mp4"}));
    assert_eq!(keys(&r), ["device", "duration", "filename", "format", "session_id", "start_time", "status"]);
    assert_eq!(
        (r["status"].clone(), r["format"].clone(), r["duration"].clone()),
        ("STARTED".into(), "mp4".into(), Value::Null)
    );
    utc(&r["start_time"]);
    let session = r["session_id"].as_str().unwrap().to_string();
    let file = r["filename"].as_str().unwrap().to_string();
    assert!(file.starts_with("virtual0_") && file.ends_with(".mp4"), "{file}");
    let n = op
        .wait_notification("recording_status_update", Duration::from_secs(10), |p| p["status"] == "STARTED")
        .expect("STARTED notification");
    let p = &n["params"];
    assert_eq!(
        (p["device"].clone(), p["filename"].clone(), p["duration"].clone()),
        ("virtual0".into(), json!(file), Value::Null)
    );
    assert_eq!(p["session_id"], json!(session));
    assert!(n.get("id").is_none());
    // Busy: -1006 exact, for start and for deleting the file being written.
    assert_eq!(
        err(&op.call("start_recording", json!({"device": "virtual0"}))),
        (-1006, "Camera is currently recording".into())
    );
    // Status views while recording.
    let mut v = d.client_as("viewer");
    let s = v.ok("get_recording_status", json!({"device": "virtual0"}));
    has_keys(
        &s,
        &["device", "recording_id", "session_id", "filename", "start_time", "duration", "elapsed_time", "status"],
    );
    assert_eq!((s["status"].clone(), s["recording_id"].clone()), ("RECORDING".into(), json!(session)));
    let cam = &v.ok("get_camera_list", Value::Null)["cameras"][0];
    assert_eq!((cam["recording"].clone(), cam["recording_session"].clone()), (json!(true), json!(session)));
    assert!(cam["current_file"].is_string());
    // Once a segment is on disk, `current_file` names the file being written; 3 s in, the stop below reports a
    // duration of at least 2 s.
    crate::support::wait_until("a segment and 3 s of recording", Duration::from_secs(20), || {
        let s = v.ok("get_recording_status", json!({"device": "virtual0"}));
        s["files"].as_array().is_some_and(|f| !f.is_empty()) && s["elapsed_time"].as_u64() >= Some(3)
    });
    let current =
        v.ok("get_camera_status", json!({"device": "virtual0"}))["current_file"].as_str().unwrap().to_string();
    assert_eq!(
        err(&op.call("delete_recording", json!({"filename": current}))),
        (-1006, "Camera is currently recording".into())
    );
    // Stop.
    let r = op.ok("stop_recording", json!({"device": "virtual0"}));
    has_keys(&r, &["device", "session_id", "filename", "status", "start_time", "end_time", "duration", "file_size"]);
    assert_eq!((r["status"].clone(), r["session_id"].clone()), ("STOPPED".into(), json!(session)));
    utc(&r["start_time"]);
    utc(&r["end_time"]);
    assert!(int(&r["duration"]) && r["duration"].as_u64().unwrap() >= 2, "{r}");
    assert!(int(&r["file_size"]) && r["file_size"].as_u64().unwrap() > 0, "{r}");
    let n = op
        .wait_notification("recording_status_update", Duration::from_secs(10), |p| p["status"] == "STOPPED")
        .expect("STOPPED notification");
    has_keys(&n["params"], &["device", "status", "filename", "duration", "session_id", "files"]);
    assert!(int(&n["params"]["duration"]));
    // Not recording any more.
    assert_eq!(v.ok("get_recording_status", json!({"device": "virtual0"})), Value::Null);
    assert_eq!(err(&op.call("stop_recording", json!({"device": "virtual0"}))).0, -1003);
    // Notifications never reach unauthenticated connections.
    assert!(anon.recv_timeout(Duration::from_millis(500)).is_none());
    // Timed recording: duration echoed as an integer in the reply and the notification.
    let r = start(&mut op, json!({"device": "camera0".replace("camera0", "virtual0"), "duration_seconds": 2}));
    assert_eq!(r["duration"], 2);
    let n = op
        .wait_notification("recording_status_update", Duration::from_secs(20), |p| p["status"] == "STOPPED")
        .expect("auto-stop notification");
    assert!(n["params"]["filename"].is_string() && int(&n["params"]["duration"]), "{n}");
    // The recording is listed with a real integer duration.
    let l = v.ok("list_recordings", json!({"limit": 1000}));
    let f = &l["files"][0];
    assert_eq!(
        keys(f),
        ["created_time", "download_url", "duration", "file_size", "filename", "height", "modified_time", "width"]
    );
    assert!(int(&f["duration"]), "{f}");
    let i = v.ok("get_recording_info", json!({"filename": f["filename"]}));
    has_keys(&i, &["filename", "file_size", "created_time", "modified_time", "download_url", "duration"]);
}

#[test]
fn file_methods() {
    let d = daemon();
    std::fs::write(d.path("recordings/a.mp4"), b"not really a video").unwrap();
    std::fs::write(d.path("snapshots/s.jpg"), b"not really a jpeg").unwrap();
    let mut v = d.client_as("viewer");
    // Pagination bounds.
    for p in [
        json!({"limit": 0}),
        json!({"limit": 1001}),
        json!({"limit": "5"}),
        json!({"offset": -1}),
        json!({"limit": 1.5}),
    ] {
        invalid(&v.call("list_recordings", p.clone()));
        invalid(&v.call("list_snapshots", p));
    }
    let r = v.ok("list_recordings", json!({"limit": 1000, "offset": 0}));
    assert_eq!((r["total"].clone(), r["limit"].clone()), (json!(1), json!(1000)));
    assert!(r["files"][0]["duration"].is_null(), "unreadable container: null duration");
    // Names and -1005.
    for m in ["get_recording_info", "get_snapshot_info", "delete_recording", "delete_snapshot"] {
        let who = if m.starts_with("delete") { None } else { Some(()) };
        let mut c = if who.is_some() { d.client_as("viewer") } else { d.client_as("operator") };
        for p in [
            json!({}),
            json!({"filename": ""}),
            json!({"filename": 3}),
            json!({"filename": "../x"}),
            json!({"filename": "a/b"}),
            json!({"filename": ".x"}),
            json!({"filename": "/etc/passwd"}),
        ] {
            invalid(&c.call(m, p));
        }
        let label = if m.contains("recording") { "Recording" } else { "Snapshot" };
        assert_eq!(
            err(&c.call(m, json!({"filename": "nope.bin"}))),
            (-1005, format!("{label} file not found: nope.bin"))
        );
    }
    // Download URL.
    let r = v.ok("get_download_url", json!({"file_type": "recording", "filename": "a.mp4"}));
    assert_eq!(r["download_url"], "/files/recordings/a.mp4");
    assert!(r["signed_url"].as_str().unwrap().starts_with("/files/recordings/a.mp4?expires="), "{r}");
    assert!(r["expires_at"].as_str().unwrap().ends_with('Z'), "{r}");
    invalid(&v.call("get_download_url", json!({"file_type": "video", "filename": "a.mp4"})));
    assert_eq!(err(&v.call("get_download_url", json!({"file_type": "snapshot", "filename": "x.jpg"}))).0, -1005);
    // Deletion.
    let mut op = d.client_as("operator");
    assert_eq!(
        op.ok("delete_snapshot", json!({"filename": "s.jpg"})),
        json!({"filename": "s.jpg", "deleted": true, "message": "Snapshot file deleted successfully"})
    );
    // Storage (admin).
    let mut a = d.client_as("admin");
    let s = a.ok("get_storage_info", Value::Null);
    assert_eq!(
        keys(&s),
        [
            "available_space",
            "block_threshold",
            "critical_space_warning",
            "free_space",
            "low_space_warning",
            "recordings_size",
            "snapshots_size",
            "total_space",
            "usage_percentage",
            "used_percent",
            "used_space",
            "warn_threshold"
        ]
    );
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} must be an integer: {s}"));
    assert_eq!(n("used_space") + n("free_space"), n("total_space"));
    assert!(n("recordings_size") >= 18);
    assert!(s["usage_percentage"].is_f64() && s["used_percent"].is_f64(), "{s}");
    assert!(s["low_space_warning"].is_boolean() && s["critical_space_warning"].is_boolean());
    assert_eq!((s["warn_threshold"].clone(), s["block_threshold"].clone()), (json!(80), json!(90)));
    // Thresholds.
    assert_eq!(a.ok("get_storage_threshold", Value::Null), json!({"warning_threshold": 80, "critical_threshold": 90}));
    assert_eq!(
        a.ok("set_storage_threshold", json!({"warning_threshold": 70, "critical_threshold": 95})),
        json!({"warning_threshold": 70, "critical_threshold": 95})
    );
    for p in [
        json!({"warning_threshold": 96}),
        json!({"warning_threshold": 50, "critical_threshold": 101}),
        json!({"warning_threshold": -1}),
        json!({"warning_threshold": "50"}),
        json!({}),
    ] {
        invalid(&a.call("set_storage_threshold", p));
    }
    assert_eq!(a.ok("get_storage_info", Value::Null)["block_threshold"], 95);
    // Retention.
    let r = a.ok("set_retention_policy", json!({"policy_type": "age", "max_age_days": 30, "enabled": true}));
    assert_eq!(
        r,
        json!({"policy_type": "age", "enabled": true, "message": "Retention policy updated successfully", "max_age_days": 30})
    );
    let r = a.ok("set_retention_policy", json!({"policy_type": "size", "max_size_gb": 1.5, "enabled": false}));
    assert_eq!(r["max_size_gb"], 1.5);
    let r = a.ok("set_retention_policy", json!({"policy_type": "manual", "enabled": false}));
    assert_eq!(keys(&r), ["enabled", "message", "policy_type"]);
    for p in [
        json!({}),
        json!({"policy_type": "age", "enabled": true}),
        json!({"policy_type": "age", "max_age_days": 0, "enabled": true}),
        json!({"policy_type": "size", "max_size_gb": -1, "enabled": true}),
        json!({"policy_type": "weekly", "enabled": true}),
        json!({"policy_type": "manual"}),
        json!({"policy_type": "manual", "enabled": "yes"}),
    ] {
        invalid(&a.call("set_retention_policy", p));
    }
    invalid(&raw(&mut a, "set_retention_policy", json!(["age", 30, true])));
    let r = a.ok("cleanup_old_files", Value::Null);
    has_keys(&r, &["cleanup_executed", "files_deleted", "space_freed", "message"]);
    assert_eq!(
        (r["cleanup_executed"].clone(), r["message"].clone()),
        (json!(true), json!("Cleanup completed successfully"))
    );
    assert!(int(&r["files_deleted"]) && int(&r["space_freed"]));
}

#[test]
fn system_methods() {
    let d = daemon();
    let mut a = d.client_as("admin");
    assert_eq!(a.ok("ping", json!({"anything": 1})), "pong");
    let i = a.ok("get_server_info", Value::Null);
    has_keys(&i, &["name", "version", "capabilities", "supported_formats", "max_cameras"]);
    assert_eq!(i["name"], "MediaMTX Camera Service");
    assert!(i["version"].is_string() && int(&i["max_cameras"]));
    assert_eq!(i["capabilities"], json!(["snapshots", "recordings", "streaming"]));
    let s = a.ok("get_status", Value::Null);
    has_keys(&s, &["status", "uptime", "version", "components"]);
    assert!(["healthy", "degraded", "unhealthy"].contains(&s["status"].as_str().unwrap()), "{s}");
    assert!(int(&s["uptime"]));
    for k in ["websocket_server", "camera_monitor", "mediamtx_controller"] {
        assert!(s["components"][k].is_string(), "{k}: {s}");
    }
    assert_eq!(s["components"]["websocket_server"], "running");
    assert_eq!(s["components"]["camera_monitor"], "running");
    let m = a.ok("get_metrics", Value::Null);
    has_keys(
        &m,
        &["active_connections", "total_requests", "average_response_time", "error_rate", "memory_usage", "cpu_usage"],
    );
    assert!(int(&m["active_connections"]) && int(&m["total_requests"]));
    for k in ["average_response_time", "error_rate", "memory_usage", "cpu_usage"] {
        assert!(m[k].is_f64(), "{k} must be a float: {m}");
    }
    assert!(m["active_connections"].as_u64().unwrap() >= 1);
    let rate = m["error_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&rate));
}

#[test]
fn http_routes() {
    let d = daemon();
    std::fs::write(d.path("recordings/r.mp4"), vec![7u8; 1000]).unwrap();
    std::fs::write(d.path("snapshots/s.jpg"), vec![1u8; 10]).unwrap();
    let bearer = format!("Bearer {}", token("viewer", 3600));
    for port in [d.port, d.health_port] {
        let (st, h, body) = http_get(port, "/files/recordings/r.mp4", &[("Authorization", &bearer)]);
        assert_eq!((st, body.len()), (200, 1000), "port {port}");
        let hv = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(hv("content-type").as_deref(), Some("video/mp4"));
        assert_eq!(hv("content-length").as_deref(), Some("1000"));
        assert!(hv("content-disposition").unwrap().contains("attachment; filename=\"r.mp4\""));
        let (st, h, _) = http_get(port, "/files/snapshots/s.jpg", &[]);
        assert_eq!(st, 401);
        assert!(h.iter().any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")), "{h:?}");
        let (st, _, _) = http_get(port, "/files/snapshots/s.jpg", &[("Authorization", "Bearer junk")]);
        assert_eq!(st, 401);
        let (st, _, _) = http_get(port, "/files/snapshots/gone.jpg", &[("Authorization", &bearer)]);
        assert_eq!(st, 404);
        let (st, _, _) = http_get(port, "/files/snapshots/..%2Fx", &[("Authorization", &bearer)]);
        assert_eq!(st, 400);
        let (st, h, body) =
            http_get(port, "/files/recordings/r.mp4", &[("Authorization", &bearer), ("Range", "bytes=0-9")]);
        assert_eq!((st, body.len()), (206, 10));
        assert!(h.iter().any(|(k, v)| k == "content-range" && v == "bytes 0-9/1000"), "{h:?}");
    }
    let hp = d.health_port;
    let json_of = |path: &str| {
        let (st, h, body) = http_get(hp, path, &[]);
        assert!(h.iter().any(|(k, v)| k == "content-type" && v.starts_with("application/json")), "{path}");
        (st, serde_json::from_slice::<Value>(&body).unwrap())
    };
    let (st, b) = json_of("/health/system");
    assert_eq!(st, 200);
    utc(&b["timestamp"]);
    for k in ["mediamtx", "camera_monitor", "service_manager"] {
        has_keys(&b["components"][k], &["status", "details", "timestamp"]);
    }
    assert_eq!(b["components"]["camera_monitor"]["details"], "Camera monitor is running with 1 cameras");
    let (st, b) = json_of("/health/cameras");
    assert_eq!((st, b["status"].clone()), (200, json!("healthy")));
    has_keys(&b, &["status", "timestamp", "details"]);
    let (st, b) = json_of("/health/ready");
    assert_eq!((st, b["status"].clone()), (200, json!("ready")), "{b}");
    let (st, b) = json_of("/health/live");
    assert_eq!(st, 200);
    utc(&b["timestamp"]);
    let (st, b) = json_of("/api/cameras");
    assert_eq!(st, 200);
    assert_eq!(
        (b["total"].clone(), b["connected"].clone(), b["cameras"][0]["device"].clone()),
        (json!(1), json!(1), json!("virtual0"))
    );
    let (st, _, body) = http_get(hp, "/metrics", &[]);
    assert_eq!(st, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).all(|l| l.starts_with("camera_service_")));
}

#[test]
fn storage_critical_blocks_captures() {
    let d = daemon();
    let mut a = d.client_as("admin");
    // Any real disk is more than 1 % used.
    a.ok("set_storage_threshold", json!({"warning_threshold": 0, "critical_threshold": 1}));
    assert_eq!(a.ok("get_storage_info", Value::Null)["critical_space_warning"], true);
    for m in ["start_recording", "take_snapshot"] {
        assert_eq!(err(&a.call(m, json!({"device": "virtual0"}))), (-1010, "Storage space is critical".into()), "{m}");
    }
    a.ok("set_storage_threshold", json!({"warning_threshold": 98, "critical_threshold": 100}));
    assert_eq!(a.ok("take_snapshot", json!({"device": "virtual0"}))["status"], "completed");
}

#[test]
fn api_keys_over_websocket_and_http() {
    let d = daemon();
    let key = d.create_api_key("viewer");
    let mut c = d.client();
    let r = c.ok("authenticate", json!({"token": key, "auth_type": "api_key"}));
    has_keys(&r, &["authenticated", "role", "permissions", "expires_at", "session_id"]);
    assert_eq!((r["authenticated"].clone(), r["role"].clone()), (json!(true), json!("viewer")));
    utc(&r["expires_at"]);
    // A JWT offered as an API key is not one.
    let r = d.client().ok("authenticate", json!({"token": token("admin", 60), "auth_type": "api_key"}));
    assert_eq!(r, json!({"authenticated": false, "error": "Invalid or expired API key"}));
    // Per-call API key.
    let mut c2 = d.client();
    assert_eq!(c2.ok("list_snapshots", json!({"auth_token": key}))["total"], 0);
    // HTTP with X-API-Key, and HEAD.
    std::fs::write(d.path("snapshots/s.jpg"), vec![1u8; 10]).unwrap();
    for port in [d.port, d.health_port] {
        let (st, h, body) = http_get(port, "/files/snapshots/s.jpg", &[("X-API-Key", &key)]);
        assert_eq!((st, body.len()), (200, 10));
        assert!(h.iter().any(|(k, v)| k == "content-type" && v == "image/jpeg"), "{h:?}");
        let (st, _, _) = http_get(port, "/files/snapshots/s.jpg", &[("X-API-Key", &"k".repeat(32))]);
        assert_eq!(st, 401);
    }
}

/// `duration` (legacy seconds) has no upper bound: the largest integer starts a recording that runs
/// until stopped, and the daemon keeps serving (an overflowing deadline used to kill the recorder thread).
#[test]
fn unbounded_legacy_duration() {
    let d = daemon();
    let mut op = d.client_as("operator");
    let r = op.ok("start_recording", json!({"device": "virtual0", "duration": i64::MAX}));
    assert_eq!((r["status"].clone(), r["duration"].clone()), (json!("STARTED"), json!(i64::MAX)));
    // Past the recorder's first timer checks (an overflowing deadline used to fire there) and writing.
    crate::support::wait_until("a first segment", Duration::from_secs(20), || {
        let s = op.ok("get_recording_status", json!({"device": "virtual0"}));
        assert_eq!(s["status"], "RECORDING", "{s}");
        s["files"].as_array().is_some_and(|f| !f.is_empty())
    });
    assert_eq!(op.ok("get_recording_status", json!({"device": "virtual0"}))["status"], "RECORDING");
    let r = op.ok("stop_recording", json!({"device": "virtual0"}));
    assert_eq!(r["status"], "STOPPED");
    assert!(r["file_size"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(op.ok("ping", Value::Null), "pong");
}

/// `max_age_days` is any number > 0: a huge one keeps everything (it used to overflow a Duration and panic).
#[test]
fn huge_retention_age() {
    let d = daemon();
    std::fs::write(d.path("snapshots/s.jpg"), b"x").unwrap();
    let mut a = d.client_as("admin");
    let r = a.ok("set_retention_policy", json!({"policy_type": "age", "max_age_days": 1e300, "enabled": true}));
    assert_eq!(r["max_age_days"], 1e300);
    let r = a.ok("cleanup_old_files", Value::Null);
    assert_eq!((r["files_deleted"].clone(), r["space_freed"].clone()), (json!(0), json!(0)), "{r}");
    assert_eq!(a.ok("ping", Value::Null), "pong");
}
