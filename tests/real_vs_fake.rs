//! The fake MediaMTX against the real one, so that the fake cannot drift unnoticed:
//! - the same requests (the daemon's whole vocabulary, and the error cases the fake copies) get the same answers
//!   from both (the fake set to the real server's version);
//! - the daemon runs the same scenario against each (through a logging proxy) and does the same: the same
//!   requests with the same answers, the same notifications and replies, the same paths left behind.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fake_mediamtx::{FakeMediaMtx, Profile};
use crate::real_mediamtx::{plug_usb, unplug_usb, MTX_TUNING, WAIT};
use crate::support::mediamtx::{http_call, ApiProxy, Exchange, RealMediaMtx};
use crate::support::{require, require_all, wait_until, Daemon, Prereq, TempDir};

/// One request: method, target, body.
type Probe = (&'static str, String, String);

/// The requests compared between the fake and the real server.
fn probes() -> Vec<Probe> {
    let mut cfg = camera_service::config::Config::default();
    cfg.mediamtx.recordings_path = "/tmp/camera-service-probe/recordings".into();
    let cam = camera_service::camera::Camera {
        identity: "usb-0".into(),
        resolution: "640x480".into(),
        fps: 15,
        ..camera_service::camera::Camera::unprobed(0, camera_service::camera::CameraStatus::Connected)
    };
    let body = camera_service::mediamtx::pathconf::desired(&cfg, &cam, false).to_string();
    let p = |m: &'static str, t: &str, b: &str| (m, t.to_string(), b.to_string());
    vec![
        p("GET", "/v3/config/paths/get/camera0", ""),
        p("GET", "/v3/paths/get/camera0", ""),
        p("POST", "/v3/config/paths/add/camera0", &body),
        p("POST", "/v3/config/paths/add/camera0", &body),
        p("GET", "/v3/config/paths/get/camera0", ""),
        p("GET", "/v3/paths/get/camera0", ""),
        p("GET", "/v3/paths/list?itemsPerPage=1000&page=0", ""),
        p("PATCH", "/v3/config/paths/patch/camera0", r#"{"record":true}"#),
        p("GET", "/v3/config/paths/get/camera0", ""),
        p("POST", "/v3/config/paths/replace/camera0", &body),
        p("GET", "/v3/config/paths/get/camera0", ""),
        p("POST", "/v3/config/paths/replace/camera1", &body.replace("camera0", "camera1")),
        p("GET", "/v3/recordings/get/camera0", ""),
        p("GET", "/v3/recordings/get/nope", ""),
        p("DELETE", "/v3/config/paths/delete/camera0", ""),
        p("DELETE", "/v3/config/paths/delete/camera0", ""),
        p("PATCH", "/v3/config/paths/patch/camera0", r#"{"record":false}"#),
        p("GET", "/v3/config/paths/get/camera0", ""),
        p("GET", "/v3/paths/get/camera0", ""),
        p("POST", "/v3/config/paths/add/bad", r#"{"bogus":1}"#),
        p("POST", "/v3/config/paths/add/bad", r#"{"record":"yes"}"#),
        p("POST", "/v3/config/paths/add/bad", r#"{"recordSegmentDuration":5}"#),
        p("POST", "/v3/config/paths/add/bad", ""),
        p("POST", "/v3/config/paths/add/bad", r#"{"recordPath":"x"}"#),
        p("POST", "/v3/config/paths/add/bad", r#"{"source":"rtsp://cam/x","runOnDemand":"ffmpeg"}"#),
        p("GET", "/v3/paths/list?itemsPerPage=0", ""),
        p("GET", "/v3/paths/list?itemsPerPage=abc", ""),
        p("POST", "/v3/config/paths/delete/camera1", ""),
        p("GET", "/v3/config/paths/add/camera1", ""),
        p("GET", "/v3/config/global/get", ""),
        p("GET", "/v3/info", ""),
        p("GET", "/v3/config/paths/list", ""),
    ]
}

/// Keys whose values legitimately differ between two servers: clock and build, and the global settings each
/// server was started with (addresses, log level, enabled protocols, users).
const VOLATILE: &[&str] = &[
    "started",
    "version",
    "logLevel",
    "apiAddress",
    "rtspAddress",
    "hlsAddress",
    "webrtcAddress",
    "rtmp",
    "srt",
    "authInternalUsers",
];

/// Compare one answer: same status; a JSON body equal on every key the fake sends (the real server may send
/// more: the fake only carries what the daemon reads), and no key the real one lacks; plain text equal.
fn same_answer(what: &str, fake: (u16, Vec<u8>), real: (u16, Vec<u8>)) -> Vec<String> {
    let mut diffs = Vec::new();
    if fake.0 != real.0 {
        diffs.push(format!("{what}: status fake {} real {}", fake.0, real.0));
    }
    match (serde_json::from_slice::<Value>(&fake.1), serde_json::from_slice::<Value>(&real.1)) {
        (Ok(f), Ok(r)) => compare_json(what, &f, &r, &mut diffs),
        _ if fake.1 != real.1 => diffs.push(format!(
            "{what}: body fake {:?} real {:?}",
            String::from_utf8_lossy(&fake.1),
            String::from_utf8_lossy(&real.1)
        )),
        _ => {}
    }
    diffs
}

fn compare_json(at: &str, f: &Value, r: &Value, diffs: &mut Vec<String>) {
    match (f, r) {
        (Value::Object(fo), Value::Object(ro)) => {
            for (k, fv) in fo {
                match ro.get(k) {
                    None => diffs.push(format!("{at}: key {k} only in the fake")),
                    Some(_) if VOLATILE.contains(&k.as_str()) => {}
                    Some(rv) => compare_json(&format!("{at}.{k}"), fv, rv, diffs),
                }
            }
        }
        (Value::Array(fa), Value::Array(ra)) if fa.len() == ra.len() => {
            for (i, (fv, rv)) in fa.iter().zip(ra).enumerate() {
                compare_json(&format!("{at}[{i}]"), fv, rv, diffs);
            }
        }
        _ if f != r => diffs.push(format!("{at}: fake {f} real {r}")),
        _ => {}
    }
}

/// The fake (as the real server's version) answers the daemon's requests and the copied error cases as the real
/// MediaMTX does.
#[test]
fn fake_answers_like_real_mediamtx() {
    if !require(Prereq::MediaMtx) {
        return;
    }
    let dir = TempDir::new("fake-vs-real-api");
    let Some(real) = RealMediaMtx::start(&dir.path().join("mediamtx"), &[]) else { return };
    let fake = FakeMediaMtx::start();
    fake.set_profile(Profile::V1_16);
    let mut diffs = Vec::new();
    for (i, (method, target, body)) in probes().into_iter().enumerate() {
        let what = format!("#{i} {method} {target}");
        let f = http_call(fake.port(), method, &target, &body, "application/json");
        // The real server applies a mutation after its reply, so a read may briefly show the old state: a read
        // is repeated until it agrees with the fake, for at most 2 s.
        let deadline = Instant::now() + Duration::from_secs(2);
        let found = loop {
            let r = http_call(real.ports.api, method, &target, &body, "application/json");
            let d = same_answer(&what, f.clone(), r);
            if d.is_empty() || method != "GET" || Instant::now() >= deadline {
                break d;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        diffs.extend(found);
    }
    assert!(diffs.is_empty(), "the fake drifted from MediaMTX {}:\n{}", real_version(&real), diffs.join("\n"));
}

fn real_version(real: &RealMediaMtx) -> String {
    real.api_get("/v3/info").1["version"].as_str().unwrap_or("?").to_string()
}

/// What the daemon did in one run of the scenario.
#[derive(Debug, PartialEq)]
struct Observed {
    /// POST/PATCH/DELETE in order: method, path, body (the run's temp dir replaced), status.
    mutations: Vec<(String, String, Value, u16)>,
    /// Every other request: method, path, status (how often depends on timing, so a set).
    reads: BTreeSet<(String, String, u16)>,
    notifications: Vec<Value>,
    replies: Vec<Value>,
    paths_left: Vec<String>,
}

/// Plug a USB camera, read it back through the API, unplug it.
fn scenario(daemon: &Daemon, spec: &Path, proxy: &ApiProxy, paths_left: impl Fn() -> Vec<String>) -> Observed {
    let health = || crate::support::http_get(daemon.health_port, "/health/mediamtx", &[]).0;
    wait_until("MediaMTX healthy", WAIT, || health() == 200);
    let mut c = daemon.client_as("viewer");
    plug_usb(daemon, spec, 0);
    let done = |method: &str, path: &str| {
        proxy.exchanges().iter().any(|e| e.method == method && e.path == path && e.status == 200)
    };
    wait_until("camera0 added", WAIT, || done("POST", "/v3/config/paths/add/camera0"));
    wait_until("capabilities confirmed", WAIT, || {
        c.ok("get_camera_capabilities", json!({"device": "camera0"}))["validation_status"] == "confirmed"
    });
    wait_until("camera0 in get_streams", WAIT, || {
        c.ok("get_streams", Value::Null).as_array().unwrap().iter().any(|s| s["name"] == "camera0")
    });
    let mut replies = vec![c.ok("get_streams", Value::Null), c.ok("get_camera_status", json!({"device": "camera0"}))];
    unplug_usb(daemon, 0);
    wait_until("camera0 deleted", WAIT, || done("DELETE", "/v3/config/paths/delete/camera0"));
    wait_until("get_streams empty", WAIT, || c.ok("get_streams", Value::Null) == json!([]));
    replies.push(c.ok("get_camera_status", json!({"device": "camera0"})));
    let notifications = c.notifications.iter().map(|n| n["params"].clone()).collect();
    let dir = daemon.dir.path().to_string_lossy().into_owned();
    let exchanges = proxy.exchanges();
    let mutations = exchanges
        .iter()
        .filter(|e| e.method != "GET")
        .map(|e| (e.method.clone(), e.path.clone(), normalised(e, &dir), e.status))
        .collect();
    let reads = exchanges.iter().filter(|e| e.method == "GET").map(|e| (e.method.clone(), e.path.clone(), e.status));
    Observed { mutations, reads: reads.collect(), notifications, replies, paths_left: paths_left() }
}

fn normalised(e: &Exchange, dir: &str) -> Value {
    serde_json::from_str(&e.body.replace(dir, "<dir>")).unwrap_or(Value::Null)
}

/// The daemon does the same against the fake and against the real MediaMTX.
#[test]
fn daemon_does_the_same_against_fake_and_real_mediamtx() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler, Prereq::MediaMtx]) {
        return;
    }
    let dir = TempDir::new("fake-vs-real");
    let real_dir = dir.path().join("mediamtx");
    let Some(mtx) = RealMediaMtx::start(&real_dir, &[]) else { return };
    let real_proxy = ApiProxy::start(mtx.ports.api);
    let real = run_against(&dir, "real", &mtx.daemon_yaml(real_proxy.port), &real_proxy, || {
        let list = mtx.api_get("/v3/config/paths/list").1;
        list["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
    });

    let fake = FakeMediaMtx::start();
    let fake_proxy = ApiProxy::start(fake.port());
    let fake_run = run_against(&dir, "fake", &mtx.daemon_yaml(fake_proxy.port), &fake_proxy, || fake.entry_names());
    assert_eq!(fake_run.mutations, real.mutations, "requests that change MediaMTX");
    assert_eq!(fake_run.reads, real.reads, "reads and their answers");
    assert_eq!(fake_run.notifications, real.notifications, "notifications");
    assert_eq!(fake_run.replies, real.replies, "API replies");
    assert_eq!(fake_run.paths_left, real.paths_left, "paths left in MediaMTX");
    assert!(!real.mutations.is_empty() && real.paths_left.is_empty(), "{real:?}");
    crate::support::report(&format!(
        "same against both: {} mutations, {} distinct reads, {} notifications, {} replies",
        real.mutations.len(),
        real.reads.len(),
        real.notifications.len(),
        real.replies.len()
    ));
}

fn run_against(
    dir: &TempDir,
    tag: &str,
    mtx_yaml: &str,
    proxy: &ApiProxy,
    paths: impl Fn() -> Vec<String>,
) -> Observed {
    let spec = dir.path().join(format!("spec-{tag}"));
    std::fs::write(&spec, "").unwrap();
    let shim = crate::cameras::shim().to_string_lossy().into_owned();
    let daemon = Daemon::builder()
        .yaml(&format!("{mtx_yaml}{MTX_TUNING}"))
        .env("CAMERA_SERVICE_RATE_RPM", "1000000")
        .env("LD_PRELOAD", &shim)
        .env("CAMSHIM_SPEC", spec.to_str().unwrap())
        .start();
    scenario(&daemon, &spec, proxy, paths)
}
