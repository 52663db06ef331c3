//! Snapshots and recordings, driven in-process with ffmpeg's lavfi test sources (no hardware): real ffmpeg, real
//! files checked with ffprobe; cameras and MediaMTX through the component's narrow traits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camera_service::camera::{Camera, CameraEvent, CameraStatus, RecordingLookup, RecordingView};
use camera_service::config::{Config, VirtualCameraConfig};
use camera_service::error::{Error, Result};
use camera_service::files::Thresholds;
use camera_service::media::{CameraLookup, Deps, Media, RecorderWiring, Recordings, StreamServer};
use camera_service::mediamtx::PathMetrics;
use camera_service::process::heartbeat::Heartbeats;
use camera_service::process::status::Components;
use camera_service::process::{Shutdown, Supervisor};
use camera_service::rpc::notify::{Hub, Notification, Subscriber};
use camera_service::rpc::params::decode;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::TempDir;

struct FakeCameras(Mutex<HashMap<String, Arc<Camera>>>);

impl CameraLookup for FakeCameras {
    fn get(&self, id: &str) -> Result<Arc<Camera>> {
        let map = self.0.lock();
        if let Some(c) = map.get(id).or_else(|| map.values().find(|c| c.path_name == id)) {
            return Ok(c.clone());
        }
        let well_formed = ["virtual", "camera", "/dev/video"]
            .iter()
            .any(|p| id.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())));
        Err(if well_formed { Error::CameraNotFound(id.into()) } else { Error::invalid_params("bad device") })
    }
}

#[derive(Default)]
struct FakeMtx {
    enabled: bool,
    available: AtomicBool,
    calls: Mutex<Vec<String>>,
}

impl StreamServer for FakeMtx {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn available(&self) -> bool {
        self.available.load(Ordering::SeqCst)
    }
    fn path_metrics(&self, _path: &str) -> Option<PathMetrics> {
        Some(PathMetrics { ready: true, ..Default::default() })
    }
    fn ensure_path(&self, path: &str) -> Result<()> {
        self.calls.lock().push(format!("ensure {path}"));
        Ok(())
    }
    fn set_record(&self, path: &str, on: bool) -> Result<()> {
        self.calls.lock().push(format!("record {path} {on}"));
        Ok(())
    }
    fn wait_ready(&self, path: &str, _t: Duration) -> Result<()> {
        self.calls.lock().push(format!("ready {path}"));
        Ok(())
    }
}

struct Collector(Sender<Value>);
impl Subscriber for Collector {
    fn deliver(&self, n: &Arc<Notification>) {
        let _ = self.0.send(json!({"method": n.method, "params": n.params(None)}));
    }
}

fn virtual_camera(i: u32, w: u32, h: u32, fps: u32) -> Camera {
    let cfg = VirtualCameraConfig { name: "T".into(), width: w, height: h, fps, pattern: "testsrc2".into() };
    camera_service::camera::virtual_camera(i as usize, &cfg)
}

/// The component's operations with params as a client sends them (decoded as the dispatcher decodes them).
struct Calls(Media);

impl Calls {
    fn take_snapshot(&self, p: &Value) -> Result<Value> {
        self.0.take_snapshot(decode(p)?)
    }
    fn start_recording(&self, p: &Value) -> Result<(Value, Value)> {
        self.0.start_recording(decode(p)?)
    }
    fn stop_recording(&self, p: &Value) -> Result<(Value, Value)> {
        let device = p["device"].as_str().ok_or_else(|| Error::invalid_params("device is required"))?;
        self.0.stop_recording(device)
    }
    fn recording_status(&self, p: &Value) -> Result<Value> {
        let device = p["device"].as_str().ok_or_else(|| Error::invalid_params("device is required"))?;
        self.0.recording_status(device)
    }
    fn recording_of(&self, device: &str) -> Option<RecordingView> {
        self.0.recordings().recording_of(device)
    }
    fn active_files(&self) -> std::collections::HashSet<String> {
        self.0.recordings().active_files()
    }
}

/// One in-process component: temp dirs, a virtual camera `virtual0` (320x240 @ 10 fps), 2 s segments.
struct Rig {
    media: Calls,
    cameras: Arc<FakeCameras>,
    events: Sender<CameraEvent>,
    notes: Receiver<Value>,
    supervisor: Supervisor,
    mtx: Arc<FakeMtx>,
    thresholds: Arc<Mutex<Thresholds>>,
    rec: PathBuf,
    snap: PathBuf,
    _dir: Option<TempDir>,
}

impl Rig {
    fn new() -> Rig {
        let dir = TempDir::new("media");
        let root = dir.path().to_path_buf();
        Rig::build(&root, Some(dir), false)
    }

    fn build(root: &Path, dir: Option<TempDir>, mtx_enabled: bool) -> Rig {
        let mut config = Config::default();
        config.mediamtx.enabled = mtx_enabled;
        config.mediamtx.host = "127.0.0.1".into();
        config.mediamtx.rtsp_port = crate::support::free_port();
        config.mediamtx.recordings_path = root.join("recordings");
        config.mediamtx.snapshots_path = root.join("snapshots");
        config.recording.segment_duration = 2;
        config.present.insert("recording.segment_duration".into());
        let mut cams = HashMap::new();
        cams.insert("virtual0".to_string(), Arc::new(virtual_camera(0, 320, 240, 10)));
        let cameras = Arc::new(FakeCameras(Mutex::new(cams)));
        let (events, camera_events) = crossbeam_channel::unbounded();
        let (ntx, notes) = crossbeam_channel::unbounded();
        let hub = Hub::new();
        hub.subscribe(Arc::new(Collector(ntx)));
        let mtx = Arc::new(FakeMtx { enabled: mtx_enabled, ..Default::default() });
        mtx.available.store(true, Ordering::SeqCst);
        let thresholds = Arc::new(Mutex::new(Thresholds { warning: 80, critical: 90 }));
        let th = thresholds.clone();
        let supervisor = Supervisor::new(Shutdown::new());
        let deps = Deps {
            config: Arc::new(config),
            cameras: cameras.clone(),
            mediamtx: mtx.clone(),
            thresholds: Arc::new(move || *th.lock()),
            recordings: Recordings::default(),
            shutdown: supervisor.shutdown().clone(),
        };
        let (media, recorder) = Media::new(deps);
        let wiring =
            RecorderWiring { camera_events, hub, components: Components::default(), heartbeats: Heartbeats::default() };
        recorder.spawn(wiring, &supervisor).unwrap();
        Rig {
            media: Calls(media),
            cameras,
            events,
            notes,
            supervisor,
            mtx,
            thresholds,
            rec: root.join("recordings"),
            snap: root.join("snapshots"),
            _dir: dir,
        }
    }

    fn start(&self, params: Value) -> Value {
        let (result, note) = self.media.start_recording(&params).expect("start_recording");
        assert_eq!(note["status"], "STARTED");
        assert_eq!(note["session_id"], result["session_id"]);
        result
    }

    fn stop(&self, device: &str) -> Value {
        let (result, note) = self.media.stop_recording(&json!({ "device": device })).expect("stop_recording");
        assert_eq!(note["status"], "STOPPED");
        assert_eq!(note["files"], result["files"]);
        result
    }

    /// Wait for a `recording_status_update` with `status`.
    fn note(&self, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = self.notes.recv_timeout(left).unwrap_or_else(|_| panic!("no {status} notification"));
            if n["method"] == "recording_status_update" && n["params"]["status"] == status {
                return n["params"].clone();
            }
        }
    }

    /// Wait until the running session of `device` has at least `n` segment files (2 s each).
    fn wait_segments(&self, device: &str, n: usize) {
        crate::support::wait_until(&format!("{n} segments"), Duration::from_secs(30), || {
            let s = self.media.recording_status(&json!({ "device": device })).unwrap_or(Value::Null);
            s["files"].as_array().is_some_and(|f| f.len() >= n)
        });
    }

    fn segment(&self, name: &str) -> PathBuf {
        let path = name.split('_').next().unwrap();
        self.rec.join(path).join(name)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.supervisor.shutdown().trigger();
        self.supervisor.join_all(Duration::from_secs(5));
    }
}

/// (container duration in seconds, video stream decoded) of a media file, via ffprobe.
fn probe_duration(path: &Path) -> Option<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Decode every frame: a truncated or corrupt file fails.
fn decodes(path: &Path) -> bool {
    Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stderr.is_empty())
}

fn image_info(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

macro_rules! need_ffmpeg {
    () => {
        if !crate::support::require(crate::support::Prereq::Ffmpeg) {
            return;
        }
    };
}

#[test]
fn snapshot_of_a_virtual_camera_is_a_jpeg_of_its_size() {
    need_ffmpeg!();
    let rig = Rig::new();
    let r = rig.media.take_snapshot(&json!({"device": "virtual0", "quality": 90})).unwrap();
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(320), Some(240)));
    assert_eq!(r["tier_used"], 2);
    let name = r["filename"].as_str().unwrap();
    assert!(name.starts_with("virtual0_snapshot_") && name.ends_with(".jpg"), "{name}");
    assert!(r["timestamp"].as_str().unwrap().ends_with('Z'));
    let path = PathBuf::from(r["file_path"].as_str().unwrap());
    assert_eq!(path, rig.snap.join(name));
    assert_eq!(r["file_size"].as_u64(), Some(std::fs::metadata(&path).unwrap().len()));
    assert_eq!(image_info(&path), "mjpeg,320,240");

    // Same name again: never overwritten.
    let a = rig.media.take_snapshot(&json!({"device": "virtual0", "filename": "shot"})).unwrap();
    let b = rig.media.take_snapshot(&json!({"device": "virtual0", "filename": "shot.jpg"})).unwrap();
    assert_eq!((a["filename"].as_str(), b["filename"].as_str()), (Some("shot.jpg"), Some("shot_1.jpg")));
    let png = rig.media.take_snapshot(&json!({"device": "virtual0", "format": "png"})).unwrap();
    assert_eq!(image_info(Path::new(png["file_path"].as_str().unwrap())), "png,320,240");
    // No temp files left behind.
    let hidden =
        std::fs::read_dir(&rig.snap).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with('.'));
    assert_eq!(hidden.count(), 0);

    let err = |p: Value| rig.media.take_snapshot(&p).unwrap_err().code();
    assert_eq!(err(json!({"device": "virtual7"})), -1000);
    assert_eq!(err(json!({"device": "nonsense"})), -32602);
    assert_eq!(err(json!({"device": "virtual0", "filename": "../x.jpg"})), -32602);
    assert_eq!(err(json!({"device": "virtual0", "format": "gif"})), -32602);
}

#[test]
fn snapshot_of_a_disconnected_camera_is_a_failed_result() {
    need_ffmpeg!();
    let rig = Rig::new();
    let mut cam = virtual_camera(1, 160, 120, 5);
    cam.status = CameraStatus::Disconnected;
    rig.cameras.0.lock().insert("virtual1".into(), Arc::new(cam));
    let r = rig.media.take_snapshot(&json!({"device": "virtual1"})).unwrap();
    assert_eq!(r["status"], "FAILED");
    assert_eq!(r["file_size"], 0);
    assert!(r["error"].as_str().unwrap().contains("DISCONNECTED"), "{r}");
}

#[test]
fn timed_recording_rotates_segments_stops_itself_and_can_restart() {
    need_ffmpeg!();
    let rig = Rig::new();
    let started = rig.start(json!({"device": "virtual0", "duration": 6}));
    assert_eq!(started["status"], "STARTED");
    assert_eq!(started["duration"], 6);
    assert_eq!(started["format"], "mp4");
    let status = rig.media.recording_status(&json!({"device": "virtual0"})).unwrap();
    assert_eq!(status["status"], "RECORDING");
    assert_eq!(status["recording_id"], started["session_id"]);
    assert!(rig.media.recording_of("virtual0").is_some());
    assert_eq!(rig.media.start_recording(&json!({"device": "virtual0"})).unwrap_err().code(), -1006);

    let stopped = rig.note("STOPPED", Duration::from_secs(30));
    assert_eq!(stopped["session_id"], started["session_id"]);
    assert!(stopped.get("error").is_none());
    let files = names(&stopped["files"]);
    assert!(files.len() >= 3, "expected >= 3 segments of 2 s, got {files:?}");
    assert_eq!(stopped["filename"].as_str(), Some(files[0].as_str()));
    let mut total = 0.0;
    for f in &files {
        let p = rig.segment(f);
        assert!(decodes(&p), "{f} does not decode");
        total += probe_duration(&p).unwrap_or_else(|| panic!("{f} has no duration"));
    }
    assert!((total - 6.0).abs() <= 0.6, "total duration {total:.2}s of {files:?} is not within 10% of 6 s");

    // State cleared (docs/migration.md D4): status null, the camera records again, stop works.
    assert_eq!(rig.media.recording_status(&json!({"device": "virtual0"})).unwrap(), Value::Null);
    assert!(rig.media.recording_of("virtual0").is_none());
    let again = rig.start(json!({"device": "virtual0"}));
    assert_ne!(again["session_id"], started["session_id"]);
    rig.wait_segments("virtual0", 1);
    let r = rig.stop("virtual0");
    assert_eq!(r["session_id"], again["session_id"]);
    assert!(names(&r["files"]).iter().all(|f| !files.contains(f)), "new session lists only its own files");
}

#[test]
fn stop_reports_every_segment_and_cancels_the_timer() {
    need_ffmpeg!();
    let rig = Rig::new();
    let first = rig.start(json!({"device": "virtual0", "duration_seconds": 3}));
    rig.wait_segments("virtual0", 1);
    rig.stop("virtual0");
    // A new unlimited session must survive the first session's timer (docs/migration.md D5).
    let second = rig.start(json!({"device": "virtual0", "format": "fmp4"}));
    assert_eq!(second["format"], "fmp4");
    // The third 2 s segment starts 4 s in: past the first session's 3 s timer.
    rig.wait_segments("virtual0", 3);
    let status = rig.media.recording_status(&json!({"device": "/dev/video0"}));
    assert_eq!(status.unwrap_err().code(), -1000);
    let status = rig.media.recording_status(&json!({"device": "virtual0"})).unwrap();
    assert_eq!(
        status["session_id"], second["session_id"],
        "stale timer of {} stopped the new session",
        first["session_id"]
    );
    assert!(status["elapsed_time"].as_u64().unwrap() >= 4);
    assert!(!rig.media.active_files().is_empty());
    let r = rig.stop("virtual0");
    let files = names(&r["files"]);
    assert!(files.len() >= 2, "{r}");
    let size: u64 = files.iter().map(|f| std::fs::metadata(rig.segment(f)).unwrap().len()).sum();
    assert_eq!(r["file_size"].as_u64(), Some(size));
    assert!(r["duration"].as_u64().unwrap() >= 4);
    assert!(r["end_time"].as_str().unwrap().ends_with('Z'));
    for f in &files {
        assert!(decodes(&rig.segment(f)), "{f}");
    }
    assert_eq!(rig.media.stop_recording(&json!({"device": "virtual0"})).unwrap_err().code(), -1003);
    assert!(rig.media.active_files().is_empty());
}

/// Children of this test process whose command line mentions `needle`.
fn child_pids_with(needle: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat.rsplit(')').next().unwrap_or("").split_whitespace().nth(1).unwrap_or("");
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if ppid == me && String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn killed_recorder_leaves_playable_segments_and_a_failed_session() {
    need_ffmpeg!();
    let rig = Rig::new();
    rig.start(json!({"device": "virtual0"}));
    rig.wait_segments("virtual0", 3);
    let pids = child_pids_with(&rig.rec.to_string_lossy());
    assert_eq!(pids.len(), 1, "one recording ffmpeg expected, got {pids:?}");
    crate::support::unsafe_kill(pids[0] as u32, 9);
    let failed = rig.note("FAILED", Duration::from_secs(10));
    assert!(failed["error"].as_str().unwrap().contains("signal 9"), "{failed}");
    assert!(rig.media.recording_of("virtual0").is_none());
    let files = names(&failed["files"]);
    assert!(files.len() >= 2, "{failed}");
    for f in &files[..files.len() - 1] {
        assert!(decodes(&rig.segment(f)), "completed segment {f} is not playable");
    }
    // Even the segment cut off by SIGKILL opens (fragmented MP4: readable up to its last complete fragment).
    let last = rig.segment(files.last().unwrap());
    let opened = Command::new("ffprobe").args(["-v", "error"]).arg(&last).status().unwrap();
    assert!(opened.success(), "{} does not open", last.display());
    rig.start(json!({"device": "virtual0"}));
    rig.stop("virtual0");
}

#[test]
fn camera_removed_mid_recording_fails_the_session() {
    need_ffmpeg!();
    let rig = Rig::new();
    let s = rig.start(json!({"device": "virtual0"}));
    rig.wait_segments("virtual0", 2);
    let mut gone = virtual_camera(0, 320, 240, 10);
    gone.status = CameraStatus::Disconnected;
    let gone = Arc::new(gone);
    rig.cameras.0.lock().insert("virtual0".into(), gone.clone());
    rig.events.send(CameraEvent { camera: gone, previous: Some(CameraStatus::Connected) }).unwrap();
    let failed = rig.note("FAILED", Duration::from_secs(10));
    assert_eq!(failed["error"], "device_disconnected");
    assert_eq!(failed["session_id"], s["session_id"]);
    assert!(rig.media.recording_of("virtual0").is_none());
    for f in names(&failed["files"]) {
        assert!(decodes(&rig.segment(&f)), "{f}");
    }
    assert_eq!(rig.media.start_recording(&json!({"device": "virtual0"})).unwrap_err().code(), -1000);
}

#[test]
fn shutdown_finalises_running_recordings() {
    need_ffmpeg!();
    let rig = Rig::new();
    rig.start(json!({"device": "virtual0"}));
    rig.wait_segments("virtual0", 2);
    let t = Instant::now();
    rig.supervisor.shutdown().trigger();
    assert!(rig.supervisor.join_all(Duration::from_secs(5)).is_empty());
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    let stopped = rig.note("STOPPED", Duration::from_secs(1));
    let files = names(&stopped["files"]);
    assert!(!files.is_empty());
    for f in &files {
        assert!(decodes(&rig.segment(f)), "{f}");
    }
    assert!(child_pids_with(&rig.rec.to_string_lossy()).is_empty(), "ffmpeg left running");
}

#[test]
fn mediamtx_recorder_mode_switches_record_and_keeps_a_reader() {
    need_ffmpeg!();
    let dir = TempDir::new("media-mtx");
    let rig = Rig::build(dir.path(), None, true);
    let mut cam = virtual_camera(0, 320, 240, 10);
    cam.device = "/dev/video0".into();
    cam.path_name = "camera0".into();
    cam.is_virtual = false;
    cam.virtual_source = None;
    rig.cameras.0.lock().insert("/dev/video0".into(), Arc::new(cam));
    let s = rig.start(json!({"device": "camera0"}));
    assert_eq!(s["device"], "/dev/video0");
    assert!(s["filename"].as_str().unwrap().starts_with("camera0_"));
    assert_eq!(*rig.mtx.calls.lock(), ["ensure camera0", "record camera0 true", "ready camera0"]);
    let r = rig.stop("/dev/video0");
    assert_eq!(r["session_id"], s["session_id"]);
    assert_eq!(rig.mtx.calls.lock().last().map(String::as_str), Some("record camera0 false"));
    rig.mtx.available.store(false, Ordering::SeqCst);
    assert_eq!(rig.media.start_recording(&json!({"device": "camera0"})).unwrap_err().code(), -1003);
}

/// A tiny tmpfs as the storage: at the critical threshold nothing starts; crossing it stops a recording cleanly.
#[test]
fn full_disk_refuses_and_stops_cleanly() {
    need_ffmpeg!();
    let dir = TempDir::new("media-tmpfs");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    if !crate::support::require(crate::support::Prereq::Root) {
        return;
    }
    let ok = Command::new("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(&mnt).status();
    assert!(ok.is_ok_and(|s| s.success()), "cannot mount a tmpfs on {}", mnt.display());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let fill = |bytes: usize| {
        let _ = std::fs::write(mnt.join("filler"), vec![1u8; bytes]);
    };
    {
        let rig = Rig::build(&mnt, None, false);
        assert_eq!(rig.thresholds.lock().critical, 90);
        fill(7_700_000);
        let used = camera_service::files::disk_usage(&mnt).unwrap().used_percent;
        assert!(used >= 90.0, "{used}");
        assert_eq!(rig.media.start_recording(&json!({"device": "virtual0"})).unwrap_err().code(), -1010);
        assert_eq!(rig.media.take_snapshot(&json!({"device": "virtual0"})).unwrap_err().code(), -1010);
        assert!(rig.media.recording_of("virtual0").is_none());

        fill(4_000_000);
        rig.start(json!({"device": "virtual0"}));
        rig.wait_segments("virtual0", 2);
        fill(7_700_000);
        let failed = rig.note("FAILED", Duration::from_secs(10));
        assert!(failed["error"].as_str().unwrap().starts_with("storage_full"), "{failed}");
        assert!(rig.media.recording_of("virtual0").is_none());
        let files = names(&failed["files"]);
        assert!(!files.is_empty());
        for f in &files {
            assert!(decodes(&rig.segment(f)), "{f} is corrupt");
        }
    }
}

// ---- End to end through the daemon (WebSocket JSON-RPC) ----

const VIRTUAL_YAML: &str = "camera:\n  virtual:\n  - {name: T, width: 320, height: 240, fps: 10, pattern: testsrc2}\n\
                            recording:\n  segment_duration: 2\n";

#[test]
fn daemon_validates_media_params_and_roles() {
    let d = crate::support::Daemon::builder().yaml(VIRTUAL_YAML).start();
    let mut op = d.client_as("operator");
    let code = |r: &Value| r["error"]["code"].as_i64();
    assert_eq!(code(&op.call("start_recording", json!({"device": "virtual0", "format": "mkv"}))), Some(-32602));
    assert_eq!(code(&op.call("start_recording", json!({"device": "virtual0", "duration": 1.5}))), Some(-32602));
    assert_eq!(code(&op.call("take_snapshot", json!({"device": "virtual0", "quality": 0}))), Some(-32602));
    assert_eq!(code(&op.call("take_snapshot", json!({"device": "virtual0", "filename": "../x"}))), Some(-32602));
    assert_eq!(code(&op.call("stop_recording", json!({}))), Some(-32602));
    assert_eq!(code(&op.call("take_snapshot", json!({"device": "virtual9"}))), Some(-1000));
    let mut viewer = d.client_as("viewer");
    assert_eq!(code(&viewer.call("take_snapshot", json!({"device": "virtual0"}))), Some(-32003));
    assert_eq!(code(&viewer.call("start_recording", json!({"device": "virtual0"}))), Some(-32003));
    assert_eq!(code(&viewer.call("get_recording_status", json!({"device": "virtual9"}))), Some(-1000));
}

#[test]
fn daemon_snapshot_recording_and_sigterm() {
    need_ffmpeg!();
    let mut d = crate::support::Daemon::builder().yaml(VIRTUAL_YAML).start();
    let mut op = d.client_as("operator");
    let snap = op.ok("take_snapshot", json!({"device": "virtual0"}));
    assert_eq!(snap["status"], "completed", "{snap}");
    assert_eq!(image_info(&d.path("snapshots").join(snap["filename"].as_str().unwrap())), "mjpeg,320,240");

    let started = op.ok("start_recording", json!({"device": "virtual0"}));
    // The reply comes first: nothing was queued before it.
    assert!(op.notifications.iter().all(|n| n["params"]["status"] != "STARTED"), "{:?}", op.notifications);
    let note = op.wait_notification("recording_status_update", Duration::from_secs(10), |p| p["status"] == "STARTED");
    assert_eq!(note.expect("STARTED notification")["params"]["session_id"], started["session_id"]);
    let mut viewer = d.client_as("viewer");
    let status = viewer.ok("get_recording_status", json!({"device": "virtual0"}));
    assert_eq!(status["session_id"], started["session_id"]);
    assert_eq!(op.call("start_recording", json!({"device": "virtual0"}))["error"]["code"], -1006);

    crate::support::wait_until("two segments", Duration::from_secs(30), || {
        let s = viewer.ok("get_recording_status", json!({"device": "virtual0"}));
        s["files"].as_array().is_some_and(|f| f.len() >= 2)
    });
    let (code, took) = d.terminate();
    assert_eq!(code, Some(0), "{}", d.stderr());
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let dir = d.path("recordings").join("virtual0");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert!(!files.is_empty());
    for f in files {
        assert!(decodes(&f), "{} is not playable after SIGTERM", f.display());
    }
}
