//! MediaMTX integration against the fake: path lifecycle, convergence, restart recovery, circuit breaker,
//! version tolerance, client error mapping, and the API staying responsive while MediaMTX is down or hanging.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camera_service::camera::{Camera, CameraEvent, CameraStatus};
use camera_service::config::Config;
use camera_service::error::Error;
use camera_service::events::{Role, Topic, TopicSet};
use camera_service::mediamtx::{ApiError, BreakerState, CameraFeed, Client, Hooks, MediaMtx};
use camera_service::process::status::{Components, State};
use camera_service::process::{Shutdown, Supervisor};
use camera_service::rpc::notify::{Hub, Notification, Subscriber};
use crossbeam_channel::Sender;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::fake_mediamtx::{FakeMediaMtx, Fault, Profile, Scope};
use crate::support::{Daemon, TempDir};

const WAIT: Duration = Duration::from_secs(20);

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn camera(n: u32, status: CameraStatus) -> Arc<Camera> {
    Arc::new(Camera {
        identity: format!("usb-{n}"),
        driver: Some("uvcvideo".into()),
        resolution: "1920x1080".into(),
        fps: 30,
        ..Camera::unprobed(n, status)
    })
}

struct Rig {
    fake: FakeMediaMtx,
    mtx: MediaMtx,
    events: Sender<CameraEvent>,
    sup: Supervisor,
    components: Components,
    announced: Arc<Mutex<Vec<String>>>,
    recording: Arc<Mutex<HashSet<String>>>,
    config: Arc<Config>,
    /// `mediamtx.error` params, as a subscribed client gets them.
    errors: crossbeam_channel::Receiver<Value>,
    _dir: TempDir,
}

/// Collects `mediamtx.error` params.
struct Errors(Sender<Value>);

impl Subscriber for Errors {
    fn deliver(&self, n: &Arc<Notification>) {
        if n.topics().contains(Topic::MediamtxError) {
            let _ = self.0.send(n.params(None));
        }
    }
}

fn test_config(port: u16, dir: &TempDir) -> Config {
    let mut c = Config::default();
    let m = &mut c.mediamtx;
    m.enabled = true;
    m.host = "127.0.0.1".into();
    m.api_port = port;
    m.api_timeout = 1.0;
    m.recordings_path = dir.path().join("recordings");
    m.health_check_interval = 0.2;
    m.health_failure_threshold = 3;
    m.health_circuit_breaker_timeout = 0.5;
    m.health_max_backoff_interval = 0.3;
    m.health_recovery_confirmation_threshold = 2;
    m.stream_readiness.check_interval = 0.05;
    c
}

impl Rig {
    fn start(fake: FakeMediaMtx, tweak: impl FnOnce(&mut Config)) -> Rig {
        let dir = TempDir::new("mediamtx");
        let mut config = test_config(fake.port(), &dir);
        tweak(&mut config);
        let config = Arc::new(config);
        let (events, rx) = crossbeam_channel::unbounded();
        let announced = Arc::new(Mutex::new(Vec::new()));
        let recording = Arc::new(Mutex::new(HashSet::new()));
        let (a, r) = (announced.clone(), recording.clone());
        let hub = Hub::new();
        let (tx, errors) = crossbeam_channel::unbounded();
        hub.subscribe(Arc::new(Errors(tx)));
        hub.interest().change(Role::None, Role::Subscribed(TopicSet::of(&[Topic::MediamtxError])));
        let hooks = Hooks {
            is_recording: Arc::new(move |d: &str| r.lock().contains(d)),
            announce: Arc::new(move |d: &str| a.lock().push(d.to_string())),
            hub,
        };
        let components = Components::default();
        let sup = Supervisor::new(Shutdown::new());
        let feed = CameraFeed { initial: vec![], events: rx };
        let (mtx, threads) = MediaMtx::new(config.clone(), components.clone());
        threads.spawn(feed, hooks, &sup).unwrap();
        Rig { fake, mtx, events, sup, components, announced, recording, config, errors, _dir: dir }
    }

    fn plug(&self, n: u32) {
        self.events.send(CameraEvent { camera: camera(n, CameraStatus::Connected), previous: None }).unwrap();
    }

    fn unplug(&self, n: u32) {
        let ev = CameraEvent { camera: camera(n, CameraStatus::Disconnected), previous: Some(CameraStatus::Connected) };
        self.events.send(ev).unwrap();
    }

    /// Every camera event sent so far has been handled: the control thread took them all from the channel, and a
    /// command sent after that (handled by the same thread, after the event) has come back.
    fn settled(&self) {
        wait_until("camera events taken", || self.events.is_empty());
        assert!(matches!(self.mtx.ensure_path("camera99"), Err(Error::MediaMtx(_))), "no such camera");
    }

    /// `n` more periodic ticks (each starts with a runtime list) have run to completion.
    fn ticks(&self, n: usize) {
        let seen = self.fake.count("GET", "/v3/paths/list");
        wait_until("control ticks", || self.fake.count("GET", "/v3/paths/list") > seen + n);
    }

    fn state(&self) -> State {
        self.components.get("mediamtx").map(|c| c.state).unwrap_or(State::Starting)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.sup.shutdown().trigger();
        let stuck = self.sup.join_all(Duration::from_secs(10));
        assert!(stuck.is_empty() || std::thread::panicking(), "threads did not stop: {stuck:?}");
    }
}

/// Every request the daemon may send: anything else is a wrong method or an unknown route.
fn assert_only_valid_calls(fake: &FakeMediaMtx) {
    const ALLOWED: &[(&str, &str)] = &[
        ("GET", "/v3/config/global/get"),
        ("GET", "/v3/paths/list"),
        ("GET", "/v3/paths/get/"),
        ("GET", "/v3/config/paths/get/"),
        ("POST", "/v3/config/paths/add/"),
        ("POST", "/v3/config/paths/replace/"),
        ("PATCH", "/v3/config/paths/patch/"),
        ("DELETE", "/v3/config/paths/delete/"),
    ];
    for r in fake.requests() {
        let ok = ALLOWED
            .iter()
            .any(|(m, p)| r.method == *m && (r.path == *p || (p.ends_with('/') && r.path.starts_with(p))));
        assert!(ok, "unexpected MediaMTX call {} {}", r.method, r.path);
        if matches!(r.method.as_str(), "POST" | "PATCH") {
            assert!(r.json().is_object(), "mutation without a JSON object body: {r:?}");
        }
    }
}

const EXPECTED_CMD: &str = "ffmpeg -hide_banner -loglevel error -nostdin -f v4l2 -i /dev/video0 -c:v libx264 \
    -profile:v baseline -level 3.0 -pix_fmt yuv420p -preset ultrafast -tune zerolatency -b:v 600k -g 30 -bf 0 \
    -f rtsp -rtsp_transport tcp rtsp://127.0.0.1:8554/camera0 -map 0:v -an -vf fps=2 -c:v mjpeg -q:v 6 -f tee \
    '[f=image2:update=1:atomic_writing=1:onfail=ignore]/opt/camera-service/snapshots/.live/camera0.jpg|[f=null]-'";

#[test]
fn path_added_on_plug_and_deleted_on_unplug() {
    let rig = Rig::start(FakeMediaMtx::start(), |_| {});
    rig.plug(0);
    wait_until("camera0 path", || rig.mtx.has_path("camera0"));
    let entry = rig.fake.entry("camera0").expect("entry added");
    assert_eq!(entry["runOnDemand"], EXPECTED_CMD);
    assert_eq!(entry["source"], "publisher");
    assert_eq!(entry["runOnDemandRestart"], true);
    assert_eq!(entry["record"], false);
    assert_eq!(entry["recordFormat"], "fmp4");
    let rec = format!("{}/%path/%path_%Y-%m-%d_%H-%M-%S", rig.config.mediamtx.recordings_path.display());
    assert_eq!(entry["recordPath"], rec.as_str());
    // MediaMTX normalises durations: our "0s" reads back as "" and "1800s" as "30m0s".
    assert_eq!(entry["recordDeleteAfter"], "");
    assert_eq!(entry["recordSegmentDuration"], "30m0s");
    assert_eq!(rig.fake.count("POST", "/v3/config/paths/add/camera0"), 1);
    assert!(rig.announced.lock().contains(&"/dev/video0".to_string()));

    // The same event again converges to "equal → leave": reads only.
    rig.fake.clear_log();
    rig.plug(0);
    rig.settled();
    assert_eq!(rig.fake.count("GET", "/v3/config/paths/get/camera0"), 1, "re-read");
    assert_eq!(rig.fake.count("POST", "/v3/config/paths/"), 0, "{:?}", rig.fake.requests());

    rig.unplug(0);
    wait_until("camera0 deleted", || rig.fake.entry("camera0").is_none());
    wait_until("has_path false", || !rig.mtx.has_path("camera0"));
    assert_eq!(rig.fake.count("DELETE", "/v3/config/paths/delete/camera0"), 1);
    assert_only_valid_calls(&rig.fake);
}

#[test]
fn different_path_is_replaced_and_stale_paths_deleted() {
    let fake = FakeMediaMtx::start();
    fake.seed_entry("camera0", json!({"runOnDemand": "ffmpeg -i old", "recordPath": "./r/%path/%s"}));
    fake.seed_entry("camera7", json!({}));
    fake.seed_entry("other", json!({}));
    let rig = Rig::start(fake, |_| {});
    rig.plug(0);
    wait_until("camera0 converged", || rig.mtx.has_path("camera0"));
    assert_eq!(rig.fake.entry("camera0").unwrap()["runOnDemand"], EXPECTED_CMD);
    assert_eq!(rig.fake.count("POST", "/v3/config/paths/replace/camera0"), 1);
    assert_eq!(rig.fake.count("POST", "/v3/config/paths/add/camera0"), 0);
    wait_until("stale camera7 deleted", || rig.fake.entry("camera7").is_none());
    assert!(rig.fake.entry("other").is_some(), "only our cameraN paths are removed");
    assert_only_valid_calls(&rig.fake);
}

#[test]
fn path_kept_while_recording() {
    let rig = Rig::start(FakeMediaMtx::start(), |_| {});
    rig.plug(1);
    wait_until("camera1", || rig.mtx.has_path("camera1"));
    rig.mtx.set_record("camera1", true).unwrap();
    assert_eq!(rig.fake.entry("camera1").unwrap()["record"], true);
    let patch = rig.fake.requests().into_iter().find(|r| r.method == "PATCH").expect("record PATCH");
    assert_eq!(patch.path, "/v3/config/paths/patch/camera1");
    assert_eq!(patch.json(), json!({"record": true}));
    rig.recording.lock().insert("/dev/video1".into());
    rig.unplug(1);
    rig.settled();
    rig.ticks(1);
    assert!(rig.fake.entry("camera1").is_some(), "deleted while recording");
    assert_eq!(rig.fake.count("DELETE", "/v3/config/paths/delete/"), 0);
    rig.recording.lock().clear();
    wait_until("deleted after the recording", || rig.fake.entry("camera1").is_none());
    assert_only_valid_calls(&rig.fake);
}

#[test]
fn paths_recreated_after_mediamtx_restart() {
    let rig = Rig::start(FakeMediaMtx::start(), |_| {});
    rig.plug(0);
    rig.plug(2);
    wait_until("paths", || rig.mtx.has_path("camera0") && rig.mtx.has_path("camera2"));
    rig.mtx.set_record("camera2", true).unwrap();
    rig.fake.restart();
    assert!(rig.fake.entry("camera0").is_none());
    wait_until("re-created", || rig.fake.entry("camera0").is_some() && rig.fake.entry("camera2").is_some());
    assert_eq!(rig.fake.entry("camera2").unwrap()["record"], true, "recorder setting re-applied");
    assert_eq!(rig.fake.count("POST", "/v3/config/paths/add/camera0"), 2);
    assert_only_valid_calls(&rig.fake);
}

#[test]
fn breaker_opens_after_threshold_and_closes_after_confirmations() {
    let rig = Rig::start(FakeMediaMtx::start(), |_| {});
    wait_until("healthy", || rig.state() == State::Running && rig.mtx.available());
    rig.plug(0);
    wait_until("camera0", || rig.mtx.has_path("camera0"));

    rig.fake.set_down(true);
    wait_until("degraded", || rig.state() == State::Degraded);
    assert!(!rig.mtx.available());
    wait_until("breaker open", || rig.mtx.health().breaker == BreakerState::Open);
    let h = rig.mtx.health();
    assert!(h.consecutive_failures >= 3 && h.activations >= 1, "{h:?}");
    let details = rig.components.get("mediamtx").unwrap().details;
    assert!(details.contains("breaker") && details.contains("unreachable"), "{details}");
    // Blocking operations fail fast while the breaker is open.
    if rig.mtx.health().breaker == BreakerState::Open {
        let t = Instant::now();
        let r = rig.mtx.set_record("camera0", true);
        assert!(matches!(r, Err(Error::MediaMtx(_))), "{r:?}");
        assert!(t.elapsed() < Duration::from_millis(500), "not fail-fast: {:?}", t.elapsed());
    }

    // MediaMTX comes back having forgotten our paths: confirmations close the breaker, paths are re-created.
    rig.fake.restart();
    rig.fake.set_down(false);
    wait_until("closed again", || {
        let h = rig.mtx.health();
        h.breaker == BreakerState::Closed && h.recoveries >= 1 && rig.state() == State::Running
    });
    wait_until("camera0 re-created", || rig.fake.entry("camera0").is_some());
    assert_only_valid_calls(&rig.fake);
}

#[test]
fn reads_never_wait_on_a_hanging_mediamtx() {
    let rig = Rig::start(FakeMediaMtx::start(), |_| {});
    rig.plug(0);
    wait_until("camera0", || rig.mtx.has_path("camera0"));
    rig.fake.fault(Fault::Hang);
    wait_until("degraded", || rig.state() == State::Degraded);
    assert!(rig.mtx.health().last_error.unwrap_or_default().contains("timed out"));
    let mut times: Vec<Duration> = (0..21)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            let t = Instant::now();
            let _ = (rig.mtx.has_path("camera0"), rig.mtx.path_metrics("camera0"), rig.mtx.available());
            let _ = rig.mtx.health();
            t.elapsed()
        })
        .collect();
    times.sort();
    assert!(times[10] < Duration::from_millis(50), "handle reads blocked: median {:?}", times[10]);
    rig.fake.clear_faults();
    wait_until("healthy again", || rig.state() == State::Running);
}

#[test]
fn lazy_paths_when_auto_start_is_off() {
    let rig = Rig::start(FakeMediaMtx::start(), |c| c.camera.auto_start_streams = false);
    rig.plug(3);
    rig.settled();
    assert!(rig.fake.entry("camera3").is_none() && !rig.mtx.has_path("camera3"));
    rig.mtx.ensure_path("camera3").unwrap();
    assert!(rig.mtx.has_path("camera3"));
    assert!(rig.fake.entry("camera3").is_some());
    assert!(matches!(rig.mtx.ensure_path("camera9"), Err(Error::MediaMtx(_))), "unknown camera");
}

#[test]
fn readiness_metrics_and_streams() {
    let rig = Rig::start(FakeMediaMtx::start(), |_| {});
    rig.plug(0);
    wait_until("camera0", || rig.mtx.has_path("camera0"));
    assert!(rig.mtx.wait_ready("camera0", Duration::from_millis(300)).is_err());
    assert!(rig.fake.publish("camera0", &["H264"]));
    rig.mtx.wait_ready("camera0", Duration::from_secs(5)).unwrap();
    rig.fake.add_reader("camera0").unwrap();
    rig.fake.add_reader("camera0").unwrap();
    rig.fake.add_bytes("camera0", 1000, 4096);
    wait_until("metrics", || rig.mtx.path_metrics("camera0").is_some_and(|m| m.ready && m.readers == 2));
    assert_eq!(rig.mtx.path_metrics("camera0").unwrap().bytes_sent, 4096);
    let streams = rig.mtx.streams();
    let s = streams.iter().find(|s| s["name"] == "camera0").expect("camera0 in streams");
    assert_eq!(s["ready"], true);
    assert_eq!(s["readers"], 2);
    assert_eq!(s["bytes_sent"], 4096);
    assert_eq!(s["source"]["type"], "rtspSession");
}

#[test]
fn old_mediamtx_reply_shapes_are_accepted() {
    let fake = FakeMediaMtx::start();
    fake.set_profile(Profile::V1_15_4);
    let rig = Rig::start(fake, |_| {});
    rig.plug(0);
    wait_until("camera0 on v1.15.4", || rig.mtx.has_path("camera0"));
    rig.fake.publish("camera0", &["H264"]);
    rig.mtx.wait_ready("camera0", Duration::from_secs(5)).unwrap();
    rig.unplug(0);
    wait_until("deleted on v1.15.4", || rig.fake.entry("camera0").is_none());
    // Then a current server again, with every 200 body empty.
    rig.fake.set_profile(Profile::V1_20_1);
    rig.fake.fault(Fault::EmptyBody200);
    rig.plug(1);
    wait_until("camera1", || rig.fake.entry("camera1").is_some());
    rig.fake.clear_faults();
    wait_until("has camera1", || rig.mtx.has_path("camera1"));
}

#[test]
fn lost_replies_and_closed_connections_recover() {
    let fake = FakeMediaMtx::start();
    fake.inject(Fault::ResetBeforeReply, Scope::method_route("POST", "/v3/config/paths/add/"), Some(1));
    fake.fault(Fault::CloseAfterEachResponse);
    let rig = Rig::start(fake, |_| {});
    rig.plug(0);
    wait_until("camera0 after a reset add", || rig.mtx.has_path("camera0"));
    assert!(rig.fake.count("POST", "/v3/config/paths/add/camera0") >= 2);
    assert_only_valid_calls(&rig.fake);
}

#[test]
fn client_error_mapping() {
    let fake = FakeMediaMtx::start();
    let c = Client::new(&fake.base_url(), Duration::from_millis(800));
    assert!(matches!(c.get_path_config("nope"), Err(ApiError::NotFound(m)) if m == "path configuration not found"));
    assert!(matches!(c.delete_path("nope"), Err(ApiError::NotFound(m)) if m == "path not found"));
    c.add_path("x", &json!({})).unwrap();
    assert_eq!(c.add_path("x", &json!({})), Err(ApiError::AlreadyExists));
    assert_eq!(
        c.add_path("y", &json!({"bogus": 1})),
        Err(ApiError::BadRequest("json: unknown field \"bogus\"".into()))
    );
    assert_eq!(
        c.add_path("y", &json!({"record": "yes"})),
        Err(ApiError::BadRequest("json: cannot unmarshal string into Go value of type bool".into()))
    );
    assert_eq!(
        c.add_path("y", &json!({"source": "rtsp://cam/x", "runOnDemand": "ffmpeg"})),
        Err(ApiError::BadRequest(
            "'runOnDemand' and 'runOnUnDemand' can be used only when source is 'publisher'".into()
        ))
    );
    c.patch_path("x", &json!({"record": true})).unwrap();
    c.replace_path("z", &json!({})).unwrap();
    assert!(c.get_path("z").is_ok());
    c.delete_path("x").unwrap();
    fake.set_profile(Profile::V1_15_1);
    assert!(matches!(c.get_info(), Err(ApiError::UnknownRoute(_))));
    fake.set_profile(Profile::V1_20_1);
    assert_eq!(c.get_info().unwrap()["version"], "v1.20.1");

    fake.inject(Fault::Status(500, "terminated".into()), Scope::all(), Some(1));
    assert_eq!(c.get_global_config(), Err(ApiError::Server { status: 500, message: "terminated".into() }));
    fake.inject(Fault::BadJson, Scope::all(), Some(1));
    assert!(matches!(c.get_global_config(), Err(ApiError::Server { status: 200, .. })));
    fake.fault(Fault::Hang);
    let t = Instant::now();
    assert_eq!(c.get_global_config(), Err(ApiError::Timeout));
    assert!(t.elapsed() < Duration::from_secs(5));
    fake.clear_faults();
    fake.set_down(true);
    assert!(matches!(c.get_global_config(), Err(ApiError::Unreachable(_))));
    fake.set_down(false);
    assert!(c.get_global_config().is_ok());
}

#[test]
fn list_paths_follows_pages() {
    let fake = FakeMediaMtx::start();
    for i in 0..1005 {
        fake.seed_entry(&format!("p{i:04}"), json!({}));
    }
    let c = Client::new(&fake.base_url(), Duration::from_secs(5));
    assert_eq!(c.list_paths().unwrap().len(), 1005);
    let lists: Vec<_> = fake.requests().into_iter().filter(|r| r.path == "/v3/paths/list").collect();
    assert_eq!(lists.len(), 2);
    assert_eq!(lists[1].query, "itemsPerPage=1000&page=1");
}

/// The fake itself behaves like MediaMTX where the daemon could trip (wrong methods, pagination errors).
#[test]
fn fake_matches_mediamtx_contract() {
    let fake = FakeMediaMtx::start();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let call = |method: &str, path: &str, body: Option<&str>| -> (u16, String, String) {
        let url = format!("{}{path}", fake.base_url());
        let resp = match method {
            "GET" => agent.get(&url).call(),
            "DELETE" => agent.delete(&url).call(),
            "POST" => agent.post(&url).send(body.unwrap_or("")),
            _ => agent.patch(&url).send(body.unwrap_or("")),
        };
        let mut resp = resp.unwrap();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (resp.status().as_u16(), ct, resp.body_mut().read_to_string().unwrap_or_default())
    };
    let (s, ct, b) = call("POST", "/v3/config/paths/delete/cam", None);
    assert_eq!((s, ct.as_str(), b.as_str()), (404, "text/plain", "404 page not found"));
    assert_eq!(call("GET", "/v3/config/paths/add/cam", None).0, 404);
    assert_eq!(
        call("POST", "/v3/config/paths/add/cam", Some("")).2,
        r#"{"error":"unexpected end of JSON input","status":"error"}"#
    );
    assert_eq!(
        call("GET", "/v3/paths/list?itemsPerPage=0", None).2,
        r#"{"error":"invalid items per page","status":"error"}"#
    );
    assert!(call("GET", "/v3/paths/list?itemsPerPage=abc", None)
        .2
        .contains(r#"strconv.ParseUint: parsing \"abc\": invalid syntax"#));
    let v: Value = serde_json::from_str(&call("GET", "/v3/paths/list", None).2).unwrap();
    assert_eq!(v, json!({"itemCount": 0, "pageCount": 0, "items": []}));
    assert_eq!(call("GET", "/v3/config/paths/get/", None).2, r#"{"error":"invalid name","status":"error"}"#);
    assert_eq!(
        call("POST", "/v3/config/paths/add/a", Some(r#"{"recordPath":"x"}"#)).2,
        r#"{"error":"'recordPath' must contain %path","status":"error"}"#
    );
    assert_eq!(call("POST", "/v3/config/paths/add/a", Some("{}")).0, 200);
    assert_eq!(
        call("POST", "/v3/config/paths/add/a", Some("{}")).2,
        r#"{"error":"path already exists","status":"error"}"#
    );
    assert_eq!(
        call("GET", "/v3/recordings/get/zz", None).2,
        r#"{"error":"path 'zz' is not configured","status":"error"}"#
    );
    assert_eq!(call("GET", "/v3/recordings/get/a", None).2, r#"{"name":"a","segments":[]}"#);
}

#[test]
fn api_answers_while_mediamtx_is_down_or_hanging() {
    let fake = FakeMediaMtx::start();
    fake.fault(Fault::Hang);
    let yaml = format!(
        "mediamtx:\n  enabled: true\n  host: 127.0.0.1\n  api_port: {}\n  api_timeout: 2.0\n  health_check_interval: 0.5\n",
        fake.port()
    );
    let mut daemon = Daemon::builder().yaml(&yaml).start();
    let mut client = daemon.client_as("viewer");
    let mut check = |label: &str| {
        for method in ["ping", "get_camera_list"] {
            let mut times: Vec<Duration> = (0..7)
                .map(|_| {
                    let t = Instant::now();
                    let r = client.call(method, Value::Null);
                    assert!(r.get("result").is_some() || r.get("error").is_some());
                    t.elapsed()
                })
                .collect();
            times.sort();
            assert!(times[3] < Duration::from_millis(50), "{label}: {method} median {:?}", times[3]);
        }
    };
    let health_port = daemon.health_port;
    let noticed = |what: &str| {
        wait_until(what, || {
            let (status, _, body) = crate::support::http_get(health_port, "/health/mediamtx", &[]);
            status == 503 && String::from_utf8_lossy(&body).contains(what)
        })
    };
    noticed("last error: timed out");
    check("hanging");
    fake.clear_faults();
    fake.set_down(true);
    noticed("last error: unreachable");
    check("down");
    let r = client.ok("get_streams", Value::Null);
    assert_eq!(r, json!([]), "MediaMTX down → empty list");
    fake.set_down(false);
    fake.seed_entry("ext", json!({}));
    fake.publish("ext", &["H264"]);
    let mut found = Value::Null;
    wait_until("get_streams lists ext", || {
        found = client.ok("get_streams", Value::Null);
        found.as_array().is_some_and(|a| a.iter().any(|s| s["name"] == "ext" && s["ready"] == true))
    });
    // A MediaMTX call in flight must not hold the daemon past its shutdown budget.
    let before = fake.requests().len();
    fake.fault(Fault::Hang);
    wait_until("a call hanging in MediaMTX", || fake.requests().len() > before);
    let (code, took) = daemon.terminate();
    assert_eq!(code, Some(0), "exit after {took:?}: {}", daemon.stderr());
}

/// A refused path operation is one `mediamtx.error` however often it is retried; it is announced again once it
/// has succeeded or its camera came back; a delete answered 404 (already gone) is no failure.
#[test]
fn path_failures_are_announced_once_until_they_end() {
    let fake = FakeMediaMtx::start();
    let refusal = || Fault::Status(500, "disk on fire".into());
    fake.inject(refusal(), Scope::method_route("POST", "/v3/config/paths/add/"), None);
    let rig = Rig::start(fake, |_| {});
    let next_error = || rig.errors.recv_timeout(WAIT).expect("mediamtx.error");
    rig.plug(0);
    let e = next_error();
    assert_eq!(
        (e["operation"].as_str(), e["path"].as_str(), e["device"].as_str()),
        (Some("create_path"), Some("camera0"), Some("/dev/video0"))
    );
    assert!(e["error"].as_str().unwrap().contains("disk on fire"), "{e}");
    rig.ticks(3);
    assert!(rig.fake.count("POST", "/v3/config/paths/add/camera0") >= 3, "retried");
    assert!(rig.errors.try_recv().is_err(), "retries are the same failure");
    // Unplugged (its path never existed: the delete's 404 is what we wanted) and plugged again: a new failure.
    rig.unplug(0);
    rig.settled();
    assert!(rig.errors.try_recv().is_err());
    rig.plug(0);
    assert_eq!(next_error()["operation"], "create_path");
    // MediaMTX accepts it now; then it refuses the delete.
    rig.fake.clear_faults();
    wait_until("camera0 path", || rig.mtx.has_path("camera0"));
    rig.fake.inject(refusal(), Scope::method_route("DELETE", "/v3/config/paths/delete/"), None);
    rig.unplug(0);
    assert_eq!(next_error()["operation"], "delete_path");
    rig.ticks(3);
    assert!(rig.errors.try_recv().is_err(), "retries are the same failure");
    rig.fake.clear_faults();
    wait_until("camera0 path deleted", || !rig.mtx.has_path("camera0"));
    assert!(rig.errors.try_recv().is_err());
}
