//! End to end against a real MediaMTX (the binary found by `support::prereq::mediamtx_bin`): the daemon process,
//! its WebSocket API, and MediaMTX's RTSP, HLS and WebRTC servers, with ffprobe reading what comes out.
//!
//! Cameras: a virtual camera (a paced lavfi pattern) needs nothing special; a "USB" camera is a node in the test's
//! device directory answered by the V4L2 shim (tests/shim), which also streams YUYV frames, so MediaMTX's
//! on-demand publisher (the daemon's `ffmpeg -f v4l2` command, run by MediaMTX with the shim preloaded) really
//! captures, encodes and publishes. The shim needs root (mknod) and a C compiler.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::mediamtx::{http_exchange, RealMediaMtx};
use crate::support::{require_all, wait_until, Client, Daemon, Prereq, TempDir};

pub const WAIT: Duration = Duration::from_secs(40);

/// MediaMTX and a daemon pointed at it, in one temp dir. Fields drop in order: daemon, MediaMTX, then the dir.
pub struct Rig {
    pub daemon: Daemon,
    pub mtx: RealMediaMtx,
    /// The V4L2 shim's spec file (empty until a camera is plugged).
    pub spec: PathBuf,
    /// Where the publishers keep their live frames.
    pub live_frames: PathBuf,
    _dir: TempDir,
}

/// What a rig needs.
pub struct Setup<'a> {
    pub tag: &'a str,
    /// Shimmed USB cameras (root, cc).
    pub usb: bool,
    /// Other top-level daemon YAML (no `mediamtx:`).
    pub yaml: &'a str,
    /// Set `mediamtx.live_frames_path` to a folder outside the snapshots folder (else the default,
    /// `<snapshots_path>/.live`).
    pub own_live_frames: bool,
}

/// Daemon tuning for tests: fast health checks and readiness polls.
pub const MTX_TUNING: &str = "  api_timeout: 1.0\n  run_on_demand_start_timeout: 30s\n  \
                              health_check_interval: 0.5\n  health_failure_threshold: 3\n  \
                          health_circuit_breaker_timeout: 1.0\n  health_max_backoff_interval: 1.0\n  \
                          health_recovery_confirmation_threshold: 2\n  \
                          stream_readiness:\n    timeout: 20.0\n    check_interval: 0.2\n";

impl Rig {
    /// None when a prerequisite is missing (reported by `require`).
    pub fn start(s: Setup) -> Option<Rig> {
        let mut needs = vec![Prereq::Ffmpeg, Prereq::MediaMtx];
        if s.usb {
            needs.extend([Prereq::Root, Prereq::CCompiler]);
        }
        if !require_all(&needs) {
            return None;
        }
        let dir = TempDir::new(s.tag);
        let spec = dir.path().join("spec");
        std::fs::write(&spec, "").unwrap();
        let shim = s.usb.then(|| crate::cameras::shim().to_string_lossy().into_owned());
        let spec_s = spec.to_string_lossy().into_owned();
        let env: Vec<(&str, &str)> = match &shim {
            Some(lib) => vec![("LD_PRELOAD", lib.as_str()), ("CAMSHIM_SPEC", spec_s.as_str())],
            None => vec![],
        };
        let mtx = RealMediaMtx::start(&dir.path().join("mediamtx"), &env)?;
        let section = format!("{}{MTX_TUNING}", mtx.daemon_yaml(mtx.ports.api));
        // Tests poll the API while they wait: no rate limit.
        let mut b = Daemon::builder().yaml(&section).yaml(s.yaml).env("CAMERA_SERVICE_RATE_RPM", "1000000");
        for (k, v) in &env {
            b = b.env(k, v);
        }
        let own = dir.path().join("live-frames");
        if s.own_live_frames {
            b = b.env("CAMERA_SERVICE_MEDIAMTX_LIVE_FRAMES_PATH", own.to_str().unwrap());
        }
        let daemon = b.start();
        let live_frames = if s.own_live_frames { own } else { daemon.path("snapshots").join(".live") };
        Some(Rig { daemon, mtx, spec, live_frames, _dir: dir })
    }

    /// Plug shimmed camera `n` (see [`plug_usb`]).
    pub fn plug(&self, n: u32) {
        plug_usb(&self.daemon, &self.spec, n);
    }

    pub fn unplug(&self, n: u32) {
        unplug_usb(&self.daemon, n);
    }

    /// The effective config of a MediaMTX path, or None (404).
    pub fn path_config(&self, name: &str) -> Option<Value> {
        let (status, v) = self.mtx.api_get(&format!("/v3/config/paths/get/{name}"));
        (status == 200).then_some(v)
    }

    /// The runtime path, or None (404).
    pub fn runtime(&self, name: &str) -> Option<Value> {
        let (status, v) = self.mtx.api_get(&format!("/v3/paths/get/{name}"));
        (status == 200).then_some(v)
    }
}

/// Plug shimmed camera `n` into the daemon's device directory: a 320x240 YUYV camera at 15 fps.
pub fn plug_usb(daemon: &Daemon, spec: &Path, n: u32) {
    let node = daemon.path("dev").join(format!("video{n}"));
    let line = format!(
        "node|{}|uvcvideo|Shim Cam {n}|usb-shim-{n}|84a00001|04200001\nfmt|YUYV|YUYV 4:2:2\nsize|320|240|1/15\n",
        node.display()
    );
    let mut text = std::fs::read_to_string(spec).unwrap_or_default();
    text.push_str(&line);
    // Atomically: the shim re-reads the spec on every open.
    let tmp = spec.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, spec).unwrap();
    crate::cameras::mknod(&node, n);
}

pub fn unplug_usb(daemon: &Daemon, n: u32) {
    std::fs::remove_file(daemon.path("dev").join(format!("video{n}"))).unwrap();
}

/// Run a command for at most `limit`; None when it did not finish (it is killed).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `codec,width,height` of the first video stream at `url` (an RTSP URL or a file).
pub fn probe(url: &str) -> String {
    let mut cmd = Command::new("ffprobe");
    if url.starts_with("rtsp://") {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    cmd.args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height"]);
    cmd.args(["-of", "csv=p=0", url]);
    let out = run_bounded(&mut cmd, Duration::from_secs(40)).unwrap_or_else(|| panic!("ffprobe {url} hung"));
    assert!(out.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Container duration in seconds.
pub fn duration_of(path: &Path) -> f64 {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]).arg(path);
    let out = run_bounded(&mut cmd, Duration::from_secs(20)).expect("ffprobe hung");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("no duration: {}", path.display()))
}

/// Every frame decodes without an error.
pub fn decodes(path: &Path) -> bool {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-xerror", "-i"]).arg(path).args(["-f", "null", "-"]);
    run_bounded(&mut cmd, Duration::from_secs(30)).is_some_and(|o| o.status.success() && o.stderr.is_empty())
}

/// A WHEP offer as a browser would make it for receiving one H.264 video track.
pub fn whep_offer() -> String {
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic: WMS",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:cAmS",
        "a=ice-pwd:camera0service0test0password",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3B:B3:9C:71:\
         6E:2D:68:2C:AB:6F:0B:D1",
        "a=setup:actpass",
        "a=mid:0",
        "a=recvonly",
        "a=rtcp-mux",
        "a=rtpmap:96 H264/90000",
        "a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "",
    ]
    .join("\r\n")
}

/// Port and path of an `http://127.0.0.1:<port>/<path>` URL.
pub fn split_url(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://127.0.0.1:").unwrap_or_else(|| panic!("unexpected URL {url}"));
    let (port, path) = rest.split_once('/').unwrap();
    (port.parse().unwrap(), format!("/{path}"))
}

/// The HLS playlist answers (MediaMTX creates the muxer on the first request and answers once it has segments).
fn check_hls(url: &str) {
    let (port, path) = split_url(url);
    let mut last = String::new();
    wait_until("HLS playlist", WAIT, || {
        let (status, headers, body) = http_exchange(port, "GET", &path, "", "text/plain");
        last = format!("{status} {headers:?} {}", String::from_utf8_lossy(&body));
        status == 200
    });
    assert!(last.contains("#EXTM3U") && last.contains("application/vnd.apple.mpegurl"), "{last}");
    assert!(last.contains("RESOLUTION=320x240"), "{last}");
}

/// A WHEP offer to the stream's WebRTC URL gets an SDP answer (201) for a session that can be deleted.
fn check_whep(url: &str) {
    let (port, path) = split_url(url);
    let (status, headers, body) =
        http_exchange(port, "POST", &format!("{path}/whep"), &whep_offer(), "application/sdp");
    let answer = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 201, "{answer}");
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(header("content-type"), "application/sdp");
    for line in ["v=0", "m=video", "a=sendonly", "a=ice-ufrag:", "a=fingerprint:sha-256", "H264/90000"] {
        assert!(answer.contains(line), "answer lacks {line}: {answer}");
    }
    let location = header("location");
    assert!(location.starts_with(&format!("{path}/whep/")), "{location}");
    assert_eq!(http_exchange(port, "DELETE", &location, "", "text/plain").0, 200);
}

fn camera_streams(c: &mut Client, device: &str) -> Value {
    c.ok("get_camera_status", json!({ "device": device }))["streams"].clone()
}

/// A virtual camera's path, its on-demand publisher read over RTSP, HLS and WebRTC, and snapshots of the idle
/// and of the ready path.
#[test]
fn virtual_camera_streams_over_rtsp_hls_webrtc_and_snapshots() {
    let yaml = "camera:\n  virtual:\n  - {name: T, width: 320, height: 240, fps: 10, pattern: testsrc2}\n";
    // The live frames go to a folder of their own (`mediamtx.live_frames_path`), as the package sets it up.
    let Some(rig) = Rig::start(Setup { tag: "mtx-virtual", usb: false, yaml, own_live_frames: true }) else {
        return;
    };
    wait_until("virtual0 path in MediaMTX", WAIT, || rig.path_config("virtual0").is_some());
    let conf = rig.path_config("virtual0").unwrap();
    assert!(conf["runOnDemand"].as_str().unwrap().contains("-f lavfi -i testsrc2=size=320x240:rate=10"), "{conf}");
    let idle = rig.runtime("virtual0").expect("runtime path");
    assert_eq!((idle["ready"].clone(), idle["source"].clone()), (json!(false), Value::Null), "{idle}");

    let mut op = rig.daemon.client_as("operator");
    // Idle on-demand path: captured without starting the publisher.
    let snap = op.ok("take_snapshot", json!({"device": "virtual0"}));
    assert_eq!((snap["status"].clone(), snap["width"].clone()), (json!("completed"), json!(320)), "{snap}");
    assert_eq!((snap["tier_used"].clone(), snap["capture_method"].clone()), (json!(2), json!("lavfi_direct")));
    assert_eq!(rig.runtime("virtual0").unwrap()["ready"], false, "an idle snapshot must not start the publisher");

    let streams = camera_streams(&mut op, "virtual0");
    let rtsp = streams["rtsp"].as_str().unwrap();
    assert_eq!(rtsp, format!("rtsp://127.0.0.1:{}/virtual0", rig.mtx.ports.rtsp));
    assert_eq!(probe(rtsp), "h264,320,240", "the first reader starts the on-demand publisher");
    let ready = rig.runtime("virtual0").unwrap();
    assert_eq!((ready["ready"].clone(), ready["source"]["type"].clone()), (json!(true), json!("rtspSession")));
    check_hls(streams["hls"].as_str().unwrap());
    check_whep(streams["webrtc"].as_str().unwrap());

    // Ready path: the daemon sees it ready (its runtime cache), then snapshots come from the frame our publisher
    // keeps (copied for the default quality, re-encoded for another quality or PNG).
    wait_until("daemon sees virtual0 ready", WAIT, || {
        op.ok("get_streams", Value::Null)
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "virtual0" && s["ready"] == true)
    });
    let live = rig.live_frames.clone();
    assert!(!rig.daemon.path("snapshots").join(".live").exists(), "the configured folder replaces the default");
    wait_until("the publisher keeps a live frame", WAIT, || live.join("virtual0.jpg").is_file());
    for (params, codec) in [
        (json!({"device": "virtual0"}), "mjpeg,320,240"),
        (json!({"device": "virtual0"}), "mjpeg,320,240"),
        (json!({"device": "virtual0", "quality": 40}), "mjpeg,320,240"),
        (json!({"device": "virtual0", "format": "png"}), "png,320,240"),
    ] {
        let snap = op.ok("take_snapshot", params);
        assert_eq!(snap["status"], "completed", "{snap}");
        assert_eq!((snap["tier_used"].clone(), snap["capture_method"].clone()), (json!(1), json!("publisher_frame")));
        let file = rig.daemon.path("snapshots").join(snap["filename"].as_str().unwrap());
        assert_eq!(probe(file.to_str().unwrap()), codec);
    }
    assert!(
        op.ok("list_snapshots", json!({}))["files"].as_array().unwrap().iter().all(|f| f["filename"] != "virtual0.jpg"),
        "the live frame is not a snapshot"
    );

    // The live frame cannot be written any more: the stream goes on, snapshots come from the warm reader.
    std::fs::remove_dir_all(&live).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let snap = op.ok("take_snapshot", json!({"device": "virtual0"}));
    assert_eq!((snap["tier_used"].clone(), snap["capture_method"].clone()), (json!(1), json!("rtsp_warm_reader")));
    assert_eq!(probe(streams["rtsp"].as_str().unwrap()), "h264,320,240", "the stream still plays");
}

/// A shimmed USB camera: plugging creates its path, the first reader starts the V4L2 publisher, MediaMTX's
/// recorder writes 2 s segments named and listed as the API says, unplugging deletes the path.
#[test]
fn usb_camera_path_stream_recording_and_unplug() {
    let yaml = "recording:\n  segment_duration: 2\n";
    let setup = Setup { tag: "mtx-usb", usb: true, yaml, own_live_frames: false };
    let Some(rig) = Rig::start(setup) else { return };
    let mut op = rig.daemon.client_as("operator");
    rig.plug(0);
    let n = op.wait_notification("camera_status_update", WAIT, |p| p["device"] == "/dev/video0");
    let p = n.expect("CONNECTED notification")["params"].clone();
    assert_eq!(
        (p["status"].clone(), p["resolution"].clone(), p["fps"].clone()),
        (json!("CONNECTED"), json!("320x240"), json!(15))
    );
    wait_until("camera0 path in MediaMTX", WAIT, || rig.path_config("camera0").is_some());
    let cmd = rig.path_config("camera0").unwrap()["runOnDemand"].as_str().unwrap().to_string();
    let node = rig.daemon.path("dev").join("video0");
    assert!(
        cmd.contains(&format!("-f v4l2 -input_format yuyv422 -video_size 320x240 -framerate 15 -i {}", node.display())),
        "{cmd}"
    );
    let rtsp = p["streams"]["rtsp"].as_str().unwrap().to_string();
    assert_eq!(probe(&rtsp), "h264,320,240");
    // The default live frames folder: hidden in the snapshots folder.
    assert!(rig.live_frames.ends_with("snapshots/.live"));
    wait_until("the publisher keeps a live frame", WAIT, || rig.live_frames.join("camera0.jpg").is_file());

    let started = op.ok("start_recording", json!({"device": "camera0"}));
    assert_eq!(started["status"], "STARTED");
    let mut files = Vec::new();
    wait_until("three segments", WAIT, || {
        let s = op.ok("get_recording_status", json!({"device": "camera0"}));
        files = s["files"].as_array().cloned().unwrap_or_default();
        files.len() >= 3
    });
    let stopped = op.ok("stop_recording", json!({"device": "camera0"}));
    assert_eq!(stopped["session_id"], started["session_id"]);
    let names: Vec<String> = stopped["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().into()).collect();
    assert!(names.len() >= 3, "{stopped}");
    assert_eq!(stopped["filename"].as_str(), Some(names[0].as_str()));
    assert_eq!(started["filename"], names[0], "the start reply names the first segment");
    let listed = op.ok("list_recordings", json!({"limit": 1000}));
    let dir = rig.daemon.path("recordings").join("camera0");
    for (i, name) in names.iter().enumerate() {
        assert!(name.starts_with("camera0_") && name.ends_with(".mp4"), "{name}");
        let path = dir.join(name);
        assert!(decodes(&path), "{name} does not decode");
        let d = duration_of(&path);
        if i + 1 < names.len() {
            assert!((1.9..=3.1).contains(&d), "segment {name} lasts {d:.2} s, not the configured 2 s");
        }
        let entry = listed["files"].as_array().unwrap().iter().find(|f| f["filename"] == name.as_str());
        let entry = entry.unwrap_or_else(|| panic!("{name} not in list_recordings: {listed}"));
        assert_eq!(entry["file_size"].as_u64(), Some(std::fs::metadata(&path).unwrap().len()), "{entry}");
    }
    assert_eq!(rig.path_config("camera0").unwrap()["record"], false, "recorder switched off again");

    rig.unplug(0);
    let n = op.wait_notification("camera_status_update", WAIT, |p| {
        p["device"] == "/dev/video0" && p["status"] == "DISCONNECTED"
    });
    assert_eq!(n.expect("DISCONNECTED notification")["params"]["streams"], json!({}));
    wait_until("camera0 path deleted", WAIT, || rig.path_config("camera0").is_none());
    assert!(rig.runtime("camera0").is_none());
}

/// Median and maximum time of 40 calls that read what MediaMTX feeds (ping, camera list, streams, camera status).
fn api_latency(c: &mut Client) -> (Duration, Duration) {
    let mut times = Vec::new();
    for _ in 0..10 {
        for (method, params) in [
            ("ping", Value::Null),
            ("get_camera_list", Value::Null),
            ("get_streams", Value::Null),
            ("get_camera_status", json!({"device": "camera0"})),
        ] {
            let t = Instant::now();
            let r = c.call(method, params);
            times.push(t.elapsed());
            assert!(r.get("result").is_some(), "{method}: {r}");
        }
    }
    times.sort();
    (times[times.len() / 2], *times.last().unwrap())
}

/// MediaMTX killed mid-recording: health degrades within the check interval, the API keeps answering, the
/// recording fails with a notification and playable files; MediaMTX restarted: every path comes back and streams
/// read again, with the same daemon process.
#[test]
fn mediamtx_killed_and_restarted() {
    let yaml = "recording:\n  segment_duration: 2\n\
                camera:\n  virtual:\n  - {name: T, width: 320, height: 240, fps: 10, pattern: testsrc2}\n";
    let setup = Setup { tag: "mtx-kill", usb: true, yaml, own_live_frames: false };
    let Some(mut rig) = Rig::start(setup) else { return };
    let mut op = rig.daemon.client_as("operator");
    let mut admin = rig.daemon.client_as("admin");
    rig.plug(0);
    wait_until("both paths", WAIT, || rig.path_config("camera0").is_some() && rig.path_config("virtual0").is_some());
    let started = op.ok("start_recording", json!({"device": "camera0"}));
    wait_until("a first segment", WAIT, || {
        let s = op.ok("get_recording_status", json!({"device": "camera0"}));
        s["files"].as_array().is_some_and(|f| !f.is_empty())
    });
    let health = |path: &str| crate::support::http_get(rig.daemon.health_port, path, &[]);
    assert_eq!(health("/health/mediamtx").0, 200);

    let (up_median, up_max) = api_latency(&mut admin);
    let killed = Instant::now();
    rig.mtx.kill();
    wait_until("MediaMTX unhealthy", WAIT, || health("/health/mediamtx").0 == 503);
    let took = killed.elapsed();
    crate::support::report(&format!("/health/mediamtx unhealthy {took:?} after the kill"));
    // One failed probe is enough: checks every 0.5 s, each bounded by the 1 s API timeout (+ slack for a loaded box).
    assert!(took <= Duration::from_millis(3500), "health degraded only after {took:?}");
    let (status, _, body) = health("/health/system");
    let system: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, system["status"].as_str()), (200, Some("degraded")), "{system}");

    let (median, max) = api_latency(&mut admin);
    crate::support::report(&format!(
        "API while MediaMTX is down: median {median:?}, max {max:?} over 40 calls (up: median {up_median:?}, \
         max {up_max:?})"
    ));
    assert!(median < Duration::from_millis(250) && max < Duration::from_secs(2), "median {median:?}, max {max:?}");

    let failed = op.wait_notification("recording_status_update", WAIT, |p| p["status"] == "FAILED");
    let failed = failed.expect("FAILED notification")["params"].clone();
    assert_eq!(failed["session_id"], started["session_id"]);
    let why = failed["error"].as_str().unwrap();
    assert!(why.starts_with("stream_lost") || why == "mediamtx_unavailable", "{failed}");
    let dir = rig.daemon.path("recordings").join("camera0");
    for f in failed["files"].as_array().unwrap() {
        let path = dir.join(f.as_str().unwrap());
        assert!(probe(path.to_str().unwrap()).starts_with("h264,320,240"), "{} is not playable", path.display());
    }
    assert_eq!(op.ok("get_recording_status", json!({"device": "camera0"})), Value::Null, "session cleared");

    let pid = rig.daemon.child.id();
    rig.mtx.restart();
    wait_until("paths re-created", WAIT, || {
        rig.path_config("camera0").is_some() && rig.path_config("virtual0").is_some()
    });
    assert_eq!(rig.path_config("camera0").unwrap()["record"], false, "the failed session's recorder stays off");
    wait_until("MediaMTX healthy", WAIT, || health("/health/mediamtx").0 == 200);
    let streams = camera_streams(&mut op, "camera0");
    assert_eq!(probe(streams["rtsp"].as_str().unwrap()), "h264,320,240");
    assert_eq!(probe(camera_streams(&mut op, "virtual0")["rtsp"].as_str().unwrap()), "h264,320,240");
    assert_eq!(rig.daemon.child.id(), pid);
    assert!(rig.daemon.child.try_wait().unwrap().is_none(), "the daemon kept running");
}
