//! IP cameras (external RTSP sources) against a real RTSP server on loopback: the real MediaMTX publishing ffmpeg
//! test patterns stands in for the cameras. Needs MediaMTX and ffmpeg (see `support::prereq`): under `CI=true`
//! their absence fails the test, otherwise it is skipped with one line.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camera_service::camera::external::probe::{describe, Described};
use camera_service::camera::external::{self, SourceUrl};
use camera_service::config::Config;
use camera_service::process::{Shutdown, Supervisor};
use serde_json::{json, Value};

use crate::support::mediamtx::RealMediaMtx;
use crate::support::{free_port, require, wait_until, Daemon, Prereq, TempDir};

/// A password that appears nowhere else, so finding it anywhere is a leak.
const PASSWORD: &str = "Pw-9c2f1e-leak";

/// A real MediaMTX standing in for IP cameras: anyone may publish; reading needs `viewer:<PASSWORD>` unless
/// `open`. Each `publish` is an ffmpeg test pattern, stopped by PID.
struct Mtx {
    server: RealMediaMtx,
    port: u16,
    publishers: Vec<(String, Child)>,
    _dir: TempDir,
}

impl Mtx {
    /// None when MediaMTX or ffmpeg is missing (the test is reported skipped; under `CI=true` it fails).
    fn start(open: bool) -> Option<Mtx> {
        if !require(Prereq::Ffmpeg) {
            return None;
        }
        let dir = TempDir::new("ipcam-mtx");
        let auth = format!(
            "rtspAuthMethods: [basic, digest]\n\
             authInternalUsers:\n  - user: any\n    permissions:\n      - action: publish\n{}\
             \x20 - user: viewer\n    pass: {PASSWORD}\n    permissions:\n      - action: read\n\
             paths:\n  all_others:\n",
            if open { "      - action: read\n" } else { "" }
        );
        let server = RealMediaMtx::start_with(dir.path(), &[], &auth)?;
        let port = server.ports.rtsp;
        Some(Mtx { server, port, publishers: Vec::new(), _dir: dir })
    }

    fn url(&self, path: &str) -> String {
        format!("rtsp://viewer:{PASSWORD}@127.0.0.1:{}/{path}", self.port)
    }

    /// Publish a 320x240 10 fps test pattern on `path` with `codec`; returns once it can be read.
    fn publish(&mut self, path: &str, codec: &str) {
        let target = format!("rtsp://127.0.0.1:{}/{path}", self.port);
        let mut args = vec!["-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi"];
        args.extend(["-i", "testsrc2=size=320x240:rate=10", "-c:v", codec, "-g", "10"]);
        if codec == "libx264" {
            args.extend(["-preset", "ultrafast", "-tune", "zerolatency"]);
        }
        args.extend(["-f", "rtsp", "-rtsp_transport", "tcp", &target]);
        let child = Command::new("ffmpeg").args(&args).stdin(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        self.publishers.push((path.to_string(), child));
        let url = SourceUrl::parse(&self.url(path)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !matches!(describe(&url, Instant::now() + Duration::from_secs(1)), Ok(Described::Stream(_))) {
            assert!(Instant::now() < deadline, "the {path} stream never became readable: {}", self.server.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop_publishing(&mut self, path: &str) {
        if let Some(i) = self.publishers.iter().position(|(p, _)| p == path) {
            let (_, mut child) = self.publishers.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Mtx {
    fn drop(&mut self) {
        for (_, c) in &mut self.publishers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn camera<'a>(list: &'a Value, device: &str) -> &'a Value {
    list["cameras"].as_array().unwrap().iter().find(|c| c["device"] == device).unwrap_or(&Value::Null)
}

#[test]
fn ip_cameras_are_listed_follow_their_source_and_never_show_the_password() {
    let Some(mut mtx) = Mtx::start(false) else { return };
    mtx.publish("cam", "libx264");
    mtx.publish("mp4v", "mpeg4");
    // A wrong password is a different source (the query tells them apart); MediaMTX answers it only after a 2 s
    // pause against password guessing, hence the 3 s check timeout.
    let wrong = format!("rtsp://viewer:wrong@127.0.0.1:{}/cam?tag=1", mtx.port);
    let yaml = format!(
        "camera:\n  external_probe_interval: 1.0\n  external_probe_timeout: 3.0\n  external:\n\
         \x20   - {{name: frontdoor, url: \"{}\"}}\n    - {{name: mpeg-cam, url: \"{}\", transport: tcp}}\n\
         \x20   - {{name: wrong_pw, url: \"{wrong}\"}}\n",
        mtx.url("cam"),
        mtx.url("mp4v")
    );
    let daemon = Daemon::builder().yaml(&yaml).start();
    let mut c = daemon.client_as("viewer");
    let mut sub = daemon.client_as("viewer");
    let topics = ["camera.capability_detected", "camera.capability_error"];
    sub.ok("subscribe_events", json!({"topics": topics, "filters": {"device": "frontdoor"}}));
    let t = Instant::now();
    let mut list = c.ok("get_camera_list", Value::Null);
    while camera(&list, "frontdoor")["status"] != "CONNECTED" || camera(&list, "mpeg-cam")["status"] != "CONNECTED" {
        assert!(t.elapsed() < Duration::from_secs(5), "not CONNECTED within 5 s: {list}");
        std::thread::sleep(Duration::from_millis(100));
        list = c.ok("get_camera_list", Value::Null);
    }
    let door = camera(&list, "frontdoor");
    assert_eq!((door["resolution"].clone(), door["fps"].clone()), (json!("320x240"), json!(10)), "{door}");
    assert_eq!(
        (door["name"].clone(), door["virtual"].clone(), door["streams"].clone()),
        (json!("frontdoor"), json!(false), json!({}))
    );
    assert_eq!(door["identity"], "external:frontdoor");
    // MPEG-4 SDPs carry no size: ffprobe read it from the stream.
    let mpeg = camera(&list, "mpeg-cam");
    assert_eq!((mpeg["resolution"].clone(), mpeg["fps"].clone()), (json!("320x240"), json!(10)), "{mpeg}");
    assert_eq!(camera(&list, "wrong_pw")["status"], "ERROR");

    let caps = c.ok("get_camera_capabilities", json!({"device": "frontdoor"}));
    assert_eq!(
        caps,
        json!({"device": "frontdoor", "formats": ["H264"], "resolutions": ["320x240"], "fps_options": [10],
               "validation_status": "confirmed"})
    );
    assert_eq!(c.ok("get_camera_capabilities", json!({"device": "mpeg-cam"}))["formats"], json!(["MP4V"]));
    let status = c.ok("get_camera_status", json!({"device": "frontdoor"}));
    assert_eq!((status["device"].clone(), status["status"].clone()), (json!("frontdoor"), json!("CONNECTED")));
    // Unknown names stay malformed ids, as before IP cameras existed.
    assert_eq!(c.call("get_camera_status", json!({"device": "backdoor"}))["error"]["code"], -32602);

    // The source stops: DISCONNECTED, announced.
    mtx.stop_publishing("cam");
    let n = c.wait_notification("camera_status_update", Duration::from_secs(10), |p| {
        p["device"] == "frontdoor" && p["status"] == "DISCONNECTED"
    });
    let n = n.expect("camera_status_update DISCONNECTED for frontdoor");
    assert_eq!((n["params"]["resolution"].clone(), n["params"]["fps"].clone()), (json!(""), json!(0)));
    // It comes back: CONNECTED again.
    mtx.publish("cam", "libx264");
    let back = c.wait_notification("camera_status_update", Duration::from_secs(10), |p| {
        p["device"] == "frontdoor" && p["status"] == "CONNECTED"
    });
    assert!(back.is_some(), "frontdoor never came back");
    // Its stream's codec, size and rate are learned again: news for capability subscribers.
    let n = sub.wait_notification("camera.capability_detected", Duration::from_secs(10), |p| p["fps"] == 10);
    let n = n.expect("camera.capability_detected for frontdoor");
    assert_eq!(
        (n["params"]["device"].clone(), n["params"]["formats"].clone(), n["params"]["resolutions"].clone()),
        (json!("frontdoor"), json!(["H264"]), json!(["320x240"]))
    );

    let seen = serde_json::to_string(&c.notifications).unwrap()
        + &serde_json::to_string(&sub.notifications).unwrap()
        + &n.to_string()
        + &list.to_string()
        + &caps.to_string();
    assert!(!seen.contains(PASSWORD), "a reply or notification shows the password");
    let log = daemon.stderr();
    assert!(log.contains("frontdoor (rtsp://viewer:***@127.0.0.1:"), "the log names the source, masked:\n{log}");
    assert!(!log.contains(PASSWORD), "a log line shows the password:\n{log}");
}

#[test]
fn a_stored_ip_camera_is_listed_after_a_restart() {
    let Some(mut mtx) = Mtx::start(false) else { return };
    mtx.publish("cam", "libx264");
    let state = TempDir::new("ipcam-state");
    // What an earlier run wrote when a client added the stream (external_streams.json, mode 0600).
    let stored = json!({"version": 1, "streams": [{"name": "garage", "url": mtx.url("cam"), "added_at": "2026-01-02T03:04:05Z"}]});
    std::fs::write(state.path().join("external_streams.json"), stored.to_string()).unwrap();
    let yaml = format!("state_dir: {}\n", state.path().display());
    for _run in 0..2 {
        let mut daemon = Daemon::builder().yaml(&yaml).start();
        let list = daemon.client_as("viewer").ok("get_camera_list", Value::Null);
        assert_eq!(camera(&list, "garage")["status"], "CONNECTED", "{list}");
        assert_eq!(daemon.terminate().0, Some(0));
        assert!(!daemon.stderr().contains(PASSWORD));
    }
}

/// One discovery scan of 127.0.0.1 on `ports` through the real code path (the handle and its thread); the report
/// and how long the request took.
fn discover(ports: Vec<u16>) -> (Arc<external::Report>, Duration) {
    let dir = TempDir::new("ipcam-discovery");
    let mut config = Config { state_dir: dir.path().to_path_buf(), ..Config::default() };
    let d = &mut config.external_discovery;
    (d.enabled, d.hosts, d.ports) = (true, vec!["127.0.0.1".into()], ports);
    let sup = Supervisor::new(Shutdown::new());
    let (ext, threads) = external::new(&Arc::new(config));
    threads.spawn(Box::new(|_| {}), &sup).unwrap();
    let t = Instant::now();
    let report = ext.discover().unwrap();
    let took = t.elapsed();
    sup.shutdown().trigger();
    assert!(sup.join_all(Duration::from_secs(2)).is_empty());
    (report, took)
}

#[test]
fn discovery_over_loopback_finds_the_stream_quickly() {
    // Reading needs credentials here: discovery reports the server as wanting them.
    let Some(mut locked) = Mtx::start(false) else { return };
    locked.publish("stream", "libx264");
    let (report, took) = discover(vec![free_port(), locked.port]);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(report.found.len(), 1, "{report:?}");
    assert_eq!(report.found[0].url, format!("rtsp://127.0.0.1:{}/", locked.port));
    assert_eq!(report.found[0].status, external::FoundStatus::AuthRequired);

    // An open server: the stream itself, with its size and rate.
    let mut open = Mtx::start(true).unwrap();
    open.publish("stream", "libx264");
    let (report, took) = discover(vec![open.port]);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let f = &report.found[0];
    let url = format!("rtsp://127.0.0.1:{}/stream", open.port);
    assert_eq!((f.url.clone(), f.status), (url, external::FoundStatus::Available));
    let info = f.info.as_ref().unwrap();
    assert_eq!((info.codec.as_deref(), info.width, info.height), (Some("H264"), Some(320), Some(240)));
}

/// Replies and notifications a test saw, to search for the password at the end.
#[derive(Default)]
struct Seen(Vec<Value>);

impl Seen {
    fn ok(&mut self, c: &mut crate::support::Client, method: &str, params: Value) -> Value {
        let r = c.ok(method, params);
        self.0.push(r.clone());
        r
    }
    fn err(&mut self, c: &mut crate::support::Client, method: &str, params: Value) -> Value {
        let r = c.call(method, params);
        assert!(r.get("error").is_some(), "{method} should fail: {r}");
        self.0.push(r.clone());
        r["error"].clone()
    }
    fn assert_no(&self, secret: &str, clients: &[&crate::support::Client], logs: &[String]) {
        let mut text = serde_json::to_string(&self.0).unwrap();
        for c in clients {
            text += &serde_json::to_string(&c.notifications).unwrap();
        }
        assert!(!text.contains(secret), "a reply or notification shows the password");
        for log in logs {
            assert!(!log.contains(secret), "a log line shows the password:\n{log}");
        }
    }
}

fn list_has(c: &mut crate::support::Client, device: &str, status: &str) -> bool {
    camera(&c.ok("get_camera_list", Value::Null), device)["status"] == status
}

/// The recording's single file, once its STOPPED notification came: (path, duration in seconds).
fn finished_recording(c: &mut crate::support::Client, daemon: &Daemon, device: &str) -> (std::path::PathBuf, f64) {
    let n = c.wait_notification("recording_status_update", Duration::from_secs(30), |p| {
        p["device"] == device && p["status"] == "STOPPED"
    });
    let n = n.unwrap_or_else(|| panic!("no STOPPED for {device}: {:?}", c.notifications));
    let name = n["params"]["filename"].as_str().unwrap().to_string();
    assert!(name.starts_with(&format!("{device}_")) && name.ends_with(".mp4"), "{name}");
    let path = daemon.path("recordings").join(device).join(&name);
    assert!(crate::real_mediamtx::decodes(&path), "{name} does not decode");
    let d = crate::real_mediamtx::duration_of(&path);
    (path, d)
}

fn is_jpeg(path: &str) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.starts_with(&[0xFF, 0xD8]) && crate::real_mediamtx::decodes(std::path::Path::new(path))
}

/// The acceptance path without MediaMTX in the daemon: ffmpeg reads the camera's URL directly.
#[test]
fn an_added_ip_camera_is_a_camera_and_comes_back_after_a_restart() {
    let Some(mut mtx) = Mtx::start(false) else { return };
    mtx.publish("cam", "libx264");
    let state = TempDir::new("ipcam-added-state");
    let yaml = format!(
        "state_dir: {}\ncamera:\n  external_probe_interval: 1.0\n  external_probe_timeout: 3.0\n\
         external_discovery:\n  enabled: true\n  hosts: [127.0.0.1]\n  ports: [{}]\n  timeout: 0.5\n",
        state.path().display(),
        mtx.port
    );
    let start = || Daemon::builder().yaml(&yaml).env("CAMERA_SERVICE_RATE_RPM", "1000000").start();
    let mut daemon = start();
    let (mut op, mut viewer, mut admin) =
        (daemon.client_as("operator"), daemon.client_as("viewer"), daemon.client_as("admin"));
    let mut seen = Seen::default();
    let url = mtx.url("cam");
    let masked = format!("rtsp://viewer:***@127.0.0.1:{}/cam", mtx.port);

    let t = Instant::now();
    let added = seen.ok(&mut op, "add_external_stream", json!({"stream_url": url, "stream_name": "porch"}));
    assert_eq!(
        (added["status"].clone(), added["stream_type"].clone(), added["stream_url"].clone()),
        (json!("ADDED"), json!("generic_rtsp"), json!(masked))
    );
    assert!(added["timestamp"].as_str().unwrap().ends_with('Z'), "{added}");
    wait_until("porch CONNECTED", Duration::from_secs(5).saturating_sub(t.elapsed()), || {
        list_has(&mut viewer, "porch", "CONNECTED")
    });
    assert!(t.elapsed() < Duration::from_secs(5));
    // Names are unique; viewers may not add.
    let e = seen.err(&mut op, "add_external_stream", json!({"stream_url": mtx.url("other"), "stream_name": "porch"}));
    assert_eq!(e["code"], -32602);
    assert_eq!(
        seen.err(&mut viewer, "add_external_stream", json!({"stream_url": url, "stream_name": "x"}))["code"],
        -32003
    );

    let listed = seen.ok(&mut viewer, "get_external_streams", Value::Null);
    assert_eq!(listed["total_count"], 1, "{listed}");
    let s = &listed["external_streams"][0];
    assert_eq!(
        (s["name"].clone(), s["url"].clone(), s["status"].clone()),
        (json!("porch"), json!(masked), json!("CONNECTED"))
    );
    assert_eq!((s["capabilities"]["width"].clone(), s["capabilities"]["codec"].clone()), (json!(320), json!("H264")));
    let caps = seen.ok(&mut viewer, "get_camera_capabilities", json!({"device": "porch"}));
    assert_eq!((caps["formats"].clone(), caps["resolutions"].clone()), (json!(["H264"]), json!(["320x240"])));
    let st = seen.ok(&mut viewer, "get_camera_status", json!({"device": "porch"}));
    assert_eq!((st["status"].clone(), st["fps"].clone()), (json!("CONNECTED"), json!(10)));
    let sys = seen.ok(&mut viewer, "get_system_status", Value::Null);
    assert_eq!(sys["status"], "ready", "{sys}");
    assert!(sys["available_cameras"].as_array().unwrap().contains(&json!("porch")), "{sys}");

    // Snapshot and recording straight from the camera.
    let snap = seen.ok(&mut op, "take_snapshot", json!({"device": "porch"}));
    assert_eq!(
        (snap["status"].clone(), snap["capture_method"].clone()),
        (json!("completed"), json!("rtsp_direct")),
        "{snap}"
    );
    assert_eq!((snap["width"].clone(), snap["height"].clone()), (json!(320), json!(240)));
    assert!(is_jpeg(snap["file_path"].as_str().unwrap()), "{snap}");
    let rec = seen.ok(&mut op, "start_recording", json!({"device": "porch", "duration": 3}));
    assert_eq!(rec["status"], "STARTED");
    let (_, d) = finished_recording(&mut op, &daemon, "porch");
    assert!((2.0..=4.5).contains(&d), "a 3 s recording lasts {d:.2} s");
    // A recording camera cannot be removed.
    seen.ok(&mut op, "start_recording", json!({"device": "porch"}));
    let e = seen.err(&mut op, "remove_external_stream", json!({"stream_url": url}));
    assert_eq!((e["code"].clone(), e["message"].clone()), (json!(-1006), json!("Camera is currently recording")));
    seen.ok(&mut op, "stop_recording", json!({"device": "porch"}));

    // Discovery over loopback finds the server quickly (it wants credentials before naming its streams).
    let t = Instant::now();
    let found = seen.ok(&mut op, "discover_external_streams", json!({}));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let root = format!("rtsp://127.0.0.1:{}/", mtx.port);
    let hit = found["discovered_streams"].as_array().unwrap().iter().find(|f| f["url"] == root.as_str());
    assert_eq!(hit.unwrap_or_else(|| panic!("{found}"))["status"], "AUTH_REQUIRED");
    assert_eq!(found["total_found"], found["discovered_streams"].as_array().unwrap().len());
    let upd = seen.ok(&mut admin, "set_discovery_interval", json!({"scan_interval": 0}));
    assert_eq!((upd["scan_interval"].clone(), upd["status"].clone()), (json!(0), json!("UPDATED")));
    assert_eq!(seen.err(&mut op, "set_discovery_interval", json!({"scan_interval": 60}))["code"], -32003);

    // The camera stops answering: DISCONNECTED, announced.
    mtx.stop_publishing("cam");
    let n = viewer.wait_notification("camera_status_update", Duration::from_secs(10), |p| {
        p["device"] == "porch" && p["status"] == "DISCONNECTED"
    });
    assert!(n.is_some(), "no DISCONNECTED for porch: {:?}", viewer.notifications);
    mtx.publish("cam", "libx264");
    let mut logs = vec![daemon.stderr()];
    seen.assert_no(PASSWORD, &[&op, &viewer, &admin], &logs);
    assert_eq!(daemon.terminate().0, Some(0));

    // After a restart it is still there, and answers again.
    let daemon = start();
    let mut op = daemon.client_as("operator");
    assert!(list_has(&mut op, "porch", "CONNECTED"), "{}", op.ok("get_camera_list", Value::Null));
    let removed = seen.ok(&mut op, "remove_external_stream", json!({"stream_name": "porch"}));
    assert_eq!((removed["status"].clone(), removed["stream_url"].clone()), (json!("REMOVED"), json!(masked)));
    wait_until("porch gone from the list", Duration::from_secs(5), || {
        camera(&op.ok("get_camera_list", Value::Null), "porch").is_null()
    });
    assert_eq!(seen.err(&mut op, "remove_external_stream", json!({"stream_name": "porch"}))["code"], -1000);
    logs.push(daemon.stderr());
    seen.assert_no(PASSWORD, &[&op], &logs);
}

/// With MediaMTX in the daemon: the camera becomes a MediaMTX path pulling its URL on demand; snapshots,
/// recordings and viewing holds go through it.
#[test]
fn an_ip_camera_through_mediamtx_records_snapshots_and_is_kept_up_for_viewing() {
    let Some(mut cam) = Mtx::start(false) else { return };
    if !require(Prereq::MediaMtx) {
        return;
    }
    cam.publish("cam", "libx264");
    let dir = TempDir::new("ipcam-via-mtx");
    let Some(server) = RealMediaMtx::start(dir.path(), &[]) else { return };
    let url = cam.url("cam");
    let yaml = format!(
        "{}{}  viewing_close_after: 3\ncamera:\n  external_probe_interval: 1.0\n  external:\n    - {{name: gate, url: \"{url}\"}}\n",
        server.daemon_yaml(server.ports.api),
        crate::real_mediamtx::MTX_TUNING
    );
    let daemon = Daemon::builder().yaml(&yaml).env("CAMERA_SERVICE_RATE_RPM", "1000000").start();
    let (mut op, mut viewer) = (daemon.client_as("operator"), daemon.client_as("viewer"));
    let mut seen = Seen::default();
    let path_source = || {
        let (status, v) = server.api_get("/v3/config/paths/get/gate");
        (status == 200).then(|| v["source"].as_str().unwrap_or_default().to_string())
    };
    wait_until("the gate path in MediaMTX", Duration::from_secs(10), || path_source().is_some());
    assert_eq!(path_source().unwrap(), url, "MediaMTX pulls the camera's own URL");
    let (_, conf) = server.api_get("/v3/config/paths/get/gate");
    assert_eq!(conf["sourceOnDemand"], true, "{conf}");

    let rtsp = format!("rtsp://127.0.0.1:{}/gate", server.ports.rtsp);
    // The daemon learns a path's runtime state from its periodic read of MediaMTX's path list, a moment after the
    // path was configured.
    wait_until("the gate path in the daemon's view of MediaMTX", Duration::from_secs(10), || {
        viewer.ok("get_stream_url", json!({"device": "gate"}))["available"] == true
    });
    let u = seen.ok(&mut viewer, "get_stream_url", json!({"device": "gate"}));
    assert_eq!((u["stream_url"].clone(), u["available"].clone()), (json!(rtsp), json!(true)), "{u}");
    assert_eq!(u["stream_name"], "gate");
    let started = seen.ok(&mut op, "start_streaming", json!({"device": "gate"}));
    assert_eq!((started["status"].clone(), started["stream_url"].clone()), (json!("STARTED"), json!(rtsp)));
    assert_eq!(started["auto_close_after"], "3s");
    assert!(started.get("ffmpeg_command").is_none(), "no made-up command: {started}");
    // The status reads MediaMTX's path list, which the daemon refreshes every health check.
    let mut st = Value::Null;
    wait_until("the stream ACTIVE", Duration::from_secs(5), || {
        st = seen.ok(&mut viewer, "get_stream_status", json!({"device": "gate"}));
        st["status"] == "ACTIVE"
    });
    assert_eq!(
        (st["status"].clone(), st["ready"].clone(), st["viewing"]["active"].clone()),
        (json!("ACTIVE"), json!(true), json!(true)),
        "{st}"
    );
    assert!(st["start_time"].is_string() && st["viewers"].as_u64() >= Some(1), "{st}");
    assert_eq!(crate::real_mediamtx::probe(&rtsp), "h264,320,240");

    let stopped = seen.ok(&mut op, "stop_streaming", json!({"device": "gate"}));
    assert_eq!((stopped["status"].clone(), stopped["was_streaming"].clone()), (json!("STOPPED"), json!(true)));
    assert!(stopped["start_time"] == started["start_time"], "{stopped}");
    // A hold nobody watches ends by itself after `viewing_close_after`.
    seen.ok(&mut op, "start_streaming", json!({"device": "gate"}));
    wait_until("the idle viewing hold to end", Duration::from_secs(15), || {
        viewer.ok("get_stream_status", json!({"device": "gate"}))["viewing"]["active"] == false
    });

    // Snapshots and recordings read the path (a warm snapshot reader counts as a viewer for 30 s: so last).
    let snap = seen.ok(&mut op, "take_snapshot", json!({"device": "gate"}));
    assert_eq!(snap["status"], "completed", "{snap}");
    assert!(snap["capture_method"].as_str().unwrap().starts_with("rtsp_"), "{snap}");
    assert!(is_jpeg(snap["file_path"].as_str().unwrap()), "{snap}");
    seen.ok(&mut op, "start_recording", json!({"device": "gate", "duration": 3}));
    let (_, d) = finished_recording(&mut op, &daemon, "gate");
    assert!((2.0..=5.0).contains(&d), "a 3 s recording lasts {d:.2} s");

    // The Go port's ids are camera ids here too; discovery is off by default; configured cameras stay.
    assert_eq!(seen.err(&mut op, "start_streaming", json!({"device": "camera0"}))["code"], -1000);
    assert_eq!(seen.err(&mut viewer, "get_stream_url", json!({"device": "camera3"}))["code"], -1000);
    let e = seen.err(&mut op, "discover_external_streams", json!({}));
    assert_eq!((e["code"].clone(), e["message"].clone()), (json!(-32030), json!("Unsupported")));
    assert!(e["data"]["reason"].as_str().unwrap().contains("disabled"), "{e}");
    assert_eq!(seen.err(&mut op, "remove_external_stream", json!({"stream_name": "gate"}))["code"], -32602);

    // The source stops: DISCONNECTED, and its path goes.
    cam.stop_publishing("cam");
    let n = viewer.wait_notification("camera_status_update", Duration::from_secs(10), |p| {
        p["device"] == "gate" && p["status"] == "DISCONNECTED"
    });
    assert_eq!(n.expect("DISCONNECTED for gate")["params"]["streams"], json!({}));
    wait_until("the gate path removed", Duration::from_secs(10), || path_source().is_none());
    seen.assert_no(PASSWORD, &[&op, &viewer], &[daemon.stderr()]);
}
