//! Event subscriptions over the real daemon: a subscribed connection gets exactly its topics (filtered by device,
//! with a timestamp), a connection that never subscribed keeps the Python notifications, the counts, the errors,
//! recording progress, camera capabilities and MediaMTX failures, and subscriptions ending with their connection.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cameras;
use crate::fake_mediamtx::{FakeMediaMtx, Fault, Scope};
use crate::support::{require, require_all, wait_until, Client, Daemon, Prereq};

const TWO_VIRTUAL: &str = "camera:\n  virtual:\n  - {name: A, width: 320, height: 240, fps: 10, pattern: testsrc2}\n  \
                           - {name: B, width: 320, height: 240, fps: 10, pattern: testsrc2}";
const WAIT: Duration = Duration::from_secs(20);

fn daemon() -> Daemon {
    Daemon::builder().yaml(TWO_VIRTUAL).start()
}

/// Every message that arrives until nothing has come for `quiet` (plus those already stored).
fn drain(c: &mut Client, quiet: Duration) -> Vec<Value> {
    let mut out = std::mem::take(&mut c.notifications);
    while let Some(v) = c.recv_timeout(quiet) {
        out.push(v);
    }
    out
}

fn stats(c: &mut Client) -> Value {
    c.ok("get_subscription_stats", Value::Null)
}

fn utc(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("timestamp must be a string: {v}"));
    assert!(s.ends_with('Z') && camera_service::util::timefmt::parse_rfc3339(s).is_some(), "not UTC RFC 3339: {s}");
}

/// Record `device` for a moment: start, wait for the STARTED notification, stop.
fn record(op: &mut Client, device: &str) {
    op.ok("start_recording", json!({"device": device}));
    op.wait_notification("recording_status_update", WAIT, |p| p["status"] == "STARTED" && p["device"] == device)
        .expect("STARTED");
    op.ok("stop_recording", json!({"device": device}));
    op.wait_notification("recording_status_update", WAIT, |p| p["status"] == "STOPPED" && p["device"] == device)
        .expect("STOPPED");
}

#[test]
fn subscriber_gets_exactly_its_topics_for_its_device_and_others_keep_python_notifications() {
    if !require(Prereq::Ffmpeg) {
        return;
    }
    let d = daemon();
    let mut sub = d.client_as("viewer");
    let mut plain = d.client_as("viewer");
    let mut op = d.client_as("operator");
    let r = sub.ok(
        "subscribe_events",
        json!({"topics": ["recording.start", "recording.stop"], "filters": {"device": "virtual0"}}),
    );
    assert_eq!(
        r,
        json!({"subscribed": true, "topics": ["recording.start", "recording.stop"], "filters": {"device": "virtual0"}})
    );
    // Both kinds of connection are counted (the operator is a default client too).
    let s = stats(&mut plain);
    assert_eq!(s["global_stats"]["subscribed_clients"], 1, "{s}");
    assert_eq!(s["global_stats"]["default_clients"], 2, "{s}");
    assert_eq!(s["global_stats"]["active_clients"], 3, "{s}");
    assert_eq!(s["global_stats"]["topic_counts"], json!({"recording.start": 1, "recording.stop": 1}), "{s}");
    assert_eq!(s["global_stats"]["total_subscriptions"], 2, "{s}");
    assert_eq!(s["client_topics"], json!(["camera_status_update", "recording_status_update"]), "{s}");
    let mine = stats(&mut sub);
    assert_eq!(mine["client_topics"], json!(["recording.start", "recording.stop"]), "{mine}");
    assert!(mine["client_id"].is_string(), "{mine}");

    // Events about the other camera, and of other kinds, around one recording of virtual0.
    record(&mut op, "virtual1");
    op.ok("take_snapshot", json!({"device": "virtual0"}));
    record(&mut op, "virtual0");
    record(&mut op, "virtual1");

    let got = drain(&mut sub, Duration::from_millis(1500));
    let methods: Vec<&str> = got.iter().map(|n| n["method"].as_str().unwrap_or("?")).collect();
    assert_eq!(methods, ["recording.start", "recording.stop"], "exactly the subscribed events: {got:?}");
    for n in &got {
        assert!(n.get("id").is_none(), "{n}");
        assert_eq!(n["params"]["device"], "virtual0", "{n}");
        utc(&n["params"]["timestamp"]);
    }
    assert_eq!(got[0]["params"]["status"], "STARTED");
    assert_eq!(got[1]["params"]["status"], "STOPPED");
    assert_eq!(got[0]["params"]["session_id"], got[1]["params"]["session_id"]);

    // The connection that never subscribed got the Python notifications, unchanged (no timestamp), for both
    // cameras, and nothing named after a topic.
    let got = drain(&mut plain, Duration::from_millis(300));
    let seen: Vec<(String, String)> = got
        .iter()
        .map(|n| (n["method"].as_str().unwrap().to_string(), n["params"]["device"].as_str().unwrap().to_string()))
        .collect();
    let expected: Vec<(String, String)> = ["virtual1", "virtual1", "virtual0", "virtual0", "virtual1", "virtual1"]
        .iter()
        .map(|d| ("recording_status_update".to_string(), d.to_string()))
        .collect();
    assert_eq!(seen, expected, "{got:?}");
    assert!(got.iter().all(|n| n["params"].get("timestamp").is_none()), "{got:?}");
}

#[test]
fn python_names_are_topics_and_camera_ids_of_the_go_port_filter_too() {
    let d = daemon();
    let mut c = d.client_as("viewer");
    // The Go port's web client subscribes with these names.
    let r = c.ok(
        "subscribe_events",
        json!({"topics": ["camera_status_update", "recording_status_update", "system_health_update"]}),
    );
    assert_eq!(r["topics"], json!(["camera_status_update", "recording_status_update", "system_health_update"]));
    // `cameraN` and `/dev/videoN` are the same camera; a malformed id is refused.
    for id in ["camera0", "/dev/video0", "virtual1"] {
        let r = c.ok("subscribe_events", json!({"topics": ["camera.connected"], "filters": {"device": id}}));
        assert_eq!(r["filters"]["device"], id);
    }
    let e = c.call("subscribe_events", json!({"topics": ["camera.connected"], "filters": {"device": "video0"}}));
    assert_eq!(e["error"]["code"], -32602, "{e}");
    // A replaced subscription is counted once.
    let s = stats(&mut c);
    assert_eq!(s["global_stats"]["topic_counts"], json!({"camera.connected": 1}), "{s}");
}

#[test]
fn unknown_topics_are_invalid_params_naming_them() {
    let d = daemon();
    let mut c = d.client_as("viewer");
    let e = c.call("subscribe_events", json!({"topics": ["recording.start", "recording.started", "camera.zoom"]}));
    assert_eq!(
        (e["error"]["code"].clone(), e["error"]["message"].clone()),
        (json!(-32602), json!("Invalid parameters"))
    );
    let reason = e["error"]["data"]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("recording.started") && reason.contains("camera.zoom"), "{e}");
    assert!(!reason.contains("recording.start,"), "only unknown names are listed: {reason}");
    let e = c.call("unsubscribe_events", json!({"topics": ["nope"]}));
    assert_eq!(e["error"]["code"], -32602, "{e}");
    assert_eq!(c.call("subscribe_events", json!({"topics": []}))["error"]["code"], -32602);
    assert_eq!(c.call("subscribe_events", json!({}))["error"]["code"], -32602);
    // Nothing was subscribed by the refused calls.
    assert_eq!(stats(&mut c)["global_stats"]["subscribed_clients"], 0);
    // Viewer role: an unauthenticated connection is refused.
    let mut anon = d.client();
    assert_eq!(anon.call("subscribe_events", json!({"topics": ["recording.start"]}))["error"]["code"], -32001);
}

#[test]
fn subscriptions_end_with_their_connection() {
    let d = daemon();
    let mut watcher = d.client_as("viewer");
    {
        let mut sub = d.client_as("viewer");
        sub.ok("subscribe_events", json!({"topics": ["recording.progress", "snapshot.taken"]}));
        let s = stats(&mut watcher);
        assert_eq!(s["global_stats"]["subscribed_clients"], 1, "{s}");
        assert_eq!(s["global_stats"]["topic_counts"]["recording.progress"], 1, "{s}");
        sub.ws.close(None).unwrap();
        let _ = sub.ws.flush();
        let _ = sub.recv_timeout(Duration::from_millis(200));
    }
    wait_until("the closed subscriber to be forgotten", WAIT, || {
        let s = stats(&mut watcher);
        s["global_stats"]["subscribed_clients"] == 0 && s["global_stats"]["topic_counts"] == json!({})
    });
    assert_eq!(stats(&mut watcher)["global_stats"]["default_clients"], 1);
    // Unsubscribing everything leaves a connection that receives nothing; it is still a subscriber (of nothing).
    let mut c = d.client_as("viewer");
    c.ok("subscribe_events", json!({"topics": ["snapshot.taken", "snapshot.error"]}));
    let r = c.ok("unsubscribe_events", json!({"topics": ["snapshot.error"]}));
    assert_eq!(r, json!({"unsubscribed": true, "topics": ["snapshot.error"]}));
    assert_eq!(stats(&mut c)["client_topics"], json!(["snapshot.taken"]));
    let r = c.ok("unsubscribe_events", Value::Null);
    assert_eq!(r, json!({"unsubscribed": true, "topics": ["snapshot.taken"]}));
    assert_eq!(stats(&mut c)["global_stats"]["topic_counts"], json!({}));
}

#[test]
fn recording_progress_and_snapshot_events_reach_subscribers() {
    if !require(Prereq::Ffmpeg) {
        return;
    }
    let d = daemon();
    let mut sub = d.client_as("viewer");
    let mut op = d.client_as("operator");
    sub.ok("subscribe_events", json!({"topics": ["recording.progress", "snapshot.taken", "snapshot.error"]}));
    let shot = op.ok("take_snapshot", json!({"device": "virtual1"}));
    let n = sub.wait_notification("snapshot.taken", WAIT, |_| true).expect("snapshot.taken");
    assert_eq!(
        (n["params"]["device"].clone(), n["params"]["filename"].clone()),
        (json!("virtual1"), shot["filename"].clone())
    );
    utc(&n["params"]["timestamp"]);
    op.ok("start_recording", json!({"device": "virtual0"}));
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let n = sub.wait_notification("recording.progress", WAIT, |_| true).expect("recording.progress");
        seen.push((t0.elapsed(), n["params"].clone()));
    }
    op.ok("stop_recording", json!({"device": "virtual0"}));
    let p = &seen[2].1;
    assert_eq!((p["device"].clone(), p["status"].clone()), (json!("virtual0"), json!("RECORDING")), "{p}");
    assert!(p["elapsed"].as_f64().unwrap() > seen[0].1["elapsed"].as_f64().unwrap(), "{seen:?}");
    assert!(p["file_size"].is_u64() && p["filename"].is_string(), "{p}");
    // About once a second: three events take about two seconds (generous bounds; timing is not the point).
    let span = seen[2].0 - seen[0].0;
    assert!(span >= Duration::from_millis(1500) && span <= Duration::from_secs(6), "{span:?}");
    // After the stop, no more progress.
    let _ = drain(&mut sub, Duration::from_millis(300));
    let later = drain(&mut sub, Duration::from_millis(1500));
    assert!(later.iter().all(|n| n["method"] != "recording.progress"), "{later:?}");
}

#[test]
fn shutdown_reaches_subscribers_before_the_connection_closes() {
    let mut d = daemon();
    let mut sub = d.client_as("viewer");
    let mut plain = d.client_as("viewer");
    sub.ok("subscribe_events", json!({"topics": ["system.shutdown"]}));
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let n = sub.recv_timeout(Duration::from_secs(5)).expect("system.shutdown before the close");
    assert_eq!(
        (n["method"].clone(), n["params"]["status"].clone()),
        (json!("system.shutdown"), json!("stopping")),
        "{n}"
    );
    utc(&n["params"]["timestamp"]);
    // Not a Python notification: the other connection only sees the close.
    assert!(plain.recv_timeout(Duration::from_millis(300)).is_none());
}

/// Every notification `method` of `c` that arrives until nothing has come for `quiet`, with its params.
fn events_named(c: &mut Client, method: &str, quiet: Duration) -> Vec<Value> {
    drain(c, quiet).into_iter().filter(|n| n["method"] == method).map(|n| n["params"].clone()).collect()
}

/// A USB camera is probed (through the V4L2 shim): its capabilities reach subscribers when first probed and when a
/// re-probe confirms them; an unopenable node is one `camera.capability_error`, not one per retry.
#[test]
fn capability_events_follow_the_probes() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler]) {
        return;
    }
    let t = crate::support::TempDir::new("caps-events");
    let spec = t.path().join("spec");
    std::fs::write(&spec, "").unwrap();
    let d = Daemon::builder()
        .yaml("camera:\n  capability_retry_interval: 0.2\n")
        .env("LD_PRELOAD", cameras::shim().to_str().unwrap())
        .env("CAMSHIM_SPEC", spec.to_str().unwrap())
        .start();
    let dev = d.path("dev");
    let mut sub = d.client_as("viewer");
    sub.ok("subscribe_events", json!({"topics": ["camera.capability_detected", "camera.capability_error"]}));

    let card = cameras::spec_node(&dev.join("video0"), "C920", "usb-1", "84a00001", "04200001", cameras::C920_FORMATS);
    std::fs::write(&spec, card).unwrap();
    cameras::mknod(&dev.join("video0"), 0);
    let n = sub.wait_notification("camera.capability_detected", WAIT, |_| true).expect("capabilities detected");
    let mut p = n["params"].clone();
    utc(&p["timestamp"]);
    p.as_object_mut().unwrap().remove("timestamp");
    assert_eq!(
        p,
        json!({"device": "/dev/video0", "formats": ["YUYV", "MJPG"], "resolutions": ["1920x1080", "1280x720", "640x480"],
               "fps_options": [15, 30], "validation_status": "provisional", "resolution": "1920x1080", "fps": 30})
    );
    // The confirming re-probe (2 s later) saw the same modes: announced as confirmed, as
    // `get_camera_capabilities` now answers.
    let n = sub.wait_notification("camera.capability_detected", WAIT, |_| true).expect("capabilities confirmed");
    assert_eq!(
        (n["params"]["device"].as_str(), n["params"]["validation_status"].as_str()),
        (Some("/dev/video0"), Some("confirmed"))
    );
    let caps = sub.ok("get_camera_capabilities", json!({"device": "camera0"}));
    assert_eq!(caps["validation_status"], "confirmed");

    // No driver behind video3: opening it fails on every retry (every 0.2 s), announced once.
    cameras::mknod(&dev.join("video3"), 3);
    let n = sub.wait_notification("camera.capability_error", WAIT, |_| true).expect("capability error");
    let p = &n["params"];
    assert_eq!((p["device"].as_str(), p["validation_status"].as_str()), (Some("/dev/video3"), Some("error")), "{p}");
    assert!(p["error"].as_str().unwrap().contains("open failed"), "{p}");
    let again = drain(&mut sub, Duration::from_millis(1500));
    assert!(again.is_empty(), "nothing changed, nothing announced: {again:?}");

    // Unplugged and plugged again: its capabilities are news again.
    std::fs::remove_file(dev.join("video0")).unwrap();
    wait_until("video0 unplugged", WAIT, || {
        sub.ok("get_camera_status", json!({"device": "camera0"}))["status"] == "DISCONNECTED"
    });
    cameras::mknod(&dev.join("video0"), 0);
    let n = sub.wait_notification("camera.capability_detected", WAIT, |_| true).expect("detected after a re-plug");
    assert_eq!(n["params"]["validation_status"], "provisional");
}

/// MediaMTX refusing to create a path, and MediaMTX going away, are each one `mediamtx.error` while the daemon
/// keeps retrying; a password in MediaMTX's error text is masked.
#[test]
fn mediamtx_failures_are_announced_once_each() {
    let fake = FakeMediaMtx::start();
    let mtx = format!(
        "mediamtx:\n  enabled: true\n  host: 127.0.0.1\n  api_port: {}\n  api_timeout: 1.0\n  health_check_interval: 0.2\n",
        fake.port()
    );
    let d = Daemon::builder().yaml(TWO_VIRTUAL).yaml(&mtx).start();
    wait_until("virtual0's path created", WAIT, || fake.entry("virtual0").is_some());
    let mut sub = d.client_as("viewer");
    let mut plain = d.client_as("viewer");
    sub.ok("subscribe_events", json!({"topics": ["mediamtx.error"]}));

    // MediaMTX restarts (forgetting our paths) and now refuses them, quoting a source with its password.
    let refusal = "invalid source 'rtsp://admin:Pw-7f3e-leak@10.0.0.9/live'";
    fake.inject(Fault::Status(400, refusal.into()), Scope::method_route("POST", "/v3/config/paths/add"), None);
    fake.restart();
    let n = sub.wait_notification("mediamtx.error", WAIT, |p| p["path"] == "virtual0").expect("mediamtx.error");
    let p = &n["params"];
    assert_eq!((p["operation"].as_str(), p["device"].as_str()), (Some("create_path"), Some("virtual0")), "{p}");
    let error = p["error"].as_str().unwrap();
    assert!(error.contains("bad request") && error.contains("rtsp://admin:***@10.0.0.9/live"), "{p}");
    assert!(!n.to_string().contains("Pw-7f3e-leak"), "the event shows the password: {n}");
    utc(&p["timestamp"]);
    // It is retried on every tick (0.2 s): still one event per path.
    let more = events_named(&mut sub, "mediamtx.error", Duration::from_millis(1500));
    assert!(fake.count("POST", "/v3/config/paths/add/virtual0") >= 3, "the daemon kept retrying");
    assert!(more.iter().all(|p| p["path"] == "virtual1"), "{more:?}");
    assert!(more.len() <= 1, "{more:?}");
    fake.clear_faults();
    wait_until("virtual0's path re-created", WAIT, || fake.entry("virtual0").is_some());

    // MediaMTX goes away: one event for the outage, however many checks fail.
    fake.set_down(true);
    let n = sub.wait_notification("mediamtx.error", WAIT, |_| true).expect("mediamtx.error for the outage");
    let p = &n["params"];
    assert_eq!(
        (p["operation"].as_str(), p["path"].clone(), p["device"].clone()),
        (Some("health_check"), Value::Null, Value::Null)
    );
    assert!(p["error"].as_str().unwrap().contains("unreachable"), "{p}");
    let more = events_named(&mut sub, "mediamtx.error", Duration::from_millis(1500));
    assert!(more.is_empty(), "{more:?}");
    fake.set_down(false);
    // Not a Python notification: the connection that never subscribed saw none of it.
    assert!(drain(&mut plain, Duration::from_millis(200)).is_empty());
}
