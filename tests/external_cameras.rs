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
use crate::support::{free_port, require, Daemon, Prereq, TempDir};

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

    let seen = serde_json::to_string(&c.notifications).unwrap() + &list.to_string() + &caps.to_string();
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
    let (ext, _) = external::start(&Arc::new(config), Box::new(|_| {}), &sup).unwrap();
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
