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
use camera_service::events::{Role, Topic, TopicSet};
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
        let _ = self.0.send(json!({"method": n.method(), "params": n.params(None)}));
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
        Rig::build_with(root, dir, mtx_enabled, 2)
    }

    /// Like [`Rig::build`], with `segment` seconds per segment.
    fn build_with(root: &Path, dir: Option<TempDir>, mtx_enabled: bool, segment: u64) -> Rig {
        let mut config = Config::default();
        config.mediamtx.enabled = mtx_enabled;
        config.mediamtx.host = "127.0.0.1".into();
        config.mediamtx.rtsp_port = crate::support::free_port();
        config.mediamtx.recordings_path = root.join("recordings");
        config.mediamtx.snapshots_path = root.join("snapshots");
        config.recording.segment_duration = segment;
        config.present.insert("recording.segment_duration".into());
        let mut cams = HashMap::new();
        cams.insert("virtual0".to_string(), Arc::new(virtual_camera(0, 320, 240, 10)));
        let cameras = Arc::new(FakeCameras(Mutex::new(cams)));
        let (events, camera_events) = crossbeam_channel::unbounded();
        let (ntx, notes) = crossbeam_channel::unbounded();
        let hub = Hub::new();
        hub.subscribe(Arc::new(Collector(ntx)));
        // A client that follows MediaMTX's recorder (events without a Python name reach only subscribers).
        hub.interest().change(Role::None, Role::Subscribed(TopicSet::of(&[Topic::MediamtxRecordingFailed])));
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

/// The acceptance scenario for a crash of the writer early in a recording: `kill -9` of the recording ffmpeg 3 s in
/// (inside its first segment) keeps what was flushed, names it in the FAILED notification, and at least 2 s of it
/// play; our own MP4 reader (used by `list_recordings`) reads the same duration from the fragments as ffprobe; a new
/// recording works right after.
#[test]
fn recorder_killed_in_its_first_seconds_keeps_its_fragments() {
    need_ffmpeg!();
    let dir = TempDir::new("media-early-kill");
    let rig = Rig::build_with(dir.path(), None, false, 60);
    let started = rig.start(json!({"device": "virtual0"}));
    let first = started["filename"].as_str().unwrap().to_string();
    assert!(rig.segment(&first).is_file(), "the announced {first} is not the file being written");
    std::thread::sleep(Duration::from_secs(3));
    let pids = child_pids_with(&rig.rec.to_string_lossy());
    assert_eq!(pids.len(), 1, "one recording ffmpeg expected, got {pids:?}");
    crate::support::unsafe_kill(pids[0] as u32, 9);
    let failed = rig.note("FAILED", Duration::from_secs(10));
    assert!(failed["error"].as_str().unwrap().contains("signal 9"), "{failed}");
    assert_eq!(names(&failed["files"]), [first.as_str()], "{failed}");
    let path = rig.segment(&first);
    assert!(decodes(&path), "{first} does not decode");
    let played = probe_duration(&path).expect("ffprobe reads a duration");
    assert!(played >= 2.0, "only {played:.2}s of {first} survived a kill 3 s in");
    let ours = camera_service::files::meta::probe(&path).unwrap().duration_secs.unwrap();
    assert!((ours - played).abs() < 0.15, "MP4 reader says {ours:.2}s, ffprobe {played:.2}s");

    let again = rig.start(json!({"device": "virtual0", "duration": 1}));
    let stopped = rig.note("STOPPED", Duration::from_secs(15));
    assert_eq!(stopped["session_id"], again["session_id"]);
    assert_eq!(names(&stopped["files"]), [again["filename"].as_str().unwrap().to_string()]);
    assert!(decodes(&rig.segment(again["filename"].as_str().unwrap())));
}

/// A writer killed before its first fragment leaves a header without frames: it is removed, not reported.
#[test]
fn recorder_killed_before_its_first_fragment_leaves_no_file() {
    need_ffmpeg!();
    let dir = TempDir::new("media-instant-kill");
    let rig = Rig::build_with(dir.path(), None, false, 60);
    rig.start(json!({"device": "virtual0"}));
    let pids = child_pids_with(&rig.rec.to_string_lossy());
    assert_eq!(pids.len(), 1, "{pids:?}");
    crate::support::unsafe_kill(pids[0] as u32, 9);
    let failed = rig.note("FAILED", Duration::from_secs(10));
    for f in names(&failed["files"]) {
        assert!(decodes(&rig.segment(&f)), "{f} is reported but does not play");
    }
    let left: Vec<_> = std::fs::read_dir(rig.rec.join("virtual0")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(left.len(), names(&failed["files"]).len(), "unreported files left: {left:?}");
}

/// The name in the reply is the file written, every time: four timed 1 s recordings in a row, each reply's name is
/// the one file of its session.
#[test]
fn reply_names_the_file_that_is_written() {
    need_ffmpeg!();
    let rig = Rig::new();
    let mut replied = Vec::new();
    for _ in 0..4 {
        let started = rig.start(json!({"device": "virtual0", "duration": 1}));
        let stopped = rig.note("STOPPED", Duration::from_secs(15));
        assert_eq!(stopped["session_id"], started["session_id"]);
        let name = started["filename"].as_str().unwrap().to_string();
        assert_eq!(names(&stopped["files"]), [name.as_str()], "reply said {name}");
        assert_eq!(stopped["filename"].as_str(), Some(name.as_str()));
        replied.push(name);
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(rig.rec.join("virtual0"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, replied);
}

/// A stop and a new start within the same second must not reuse (and overwrite) the previous file's name.
#[test]
fn restart_within_a_second_never_overwrites_a_segment() {
    need_ffmpeg!();
    let rig = Rig::new();
    let a = rig.start(json!({"device": "virtual0"}));
    let stopped_a = rig.stop("virtual0");
    let b = rig.start(json!({"device": "virtual0"}));
    rig.wait_segments("virtual0", 1);
    let stopped_b = rig.stop("virtual0");
    assert_ne!(a["filename"], b["filename"]);
    for f in names(&stopped_a["files"]).iter().chain(names(&stopped_b["files"]).iter()) {
        assert!(decodes(&rig.segment(f)), "{f}");
    }
    assert!(names(&stopped_a["files"]).iter().all(|f| !names(&stopped_b["files"]).contains(f)));
}

/// ffmpeg that cannot record (here: an input it cannot open) fails the start with -1004 and its error, and no
/// STARTED or FAILED notification follows.
#[test]
fn ffmpeg_that_cannot_start_fails_the_start_with_1004() {
    need_ffmpeg!();
    let rig = Rig::new();
    let cfg = VirtualCameraConfig { name: "B".into(), width: 64, height: 48, fps: 5, pattern: "nosuchsource".into() };
    rig.cameras.0.lock().insert("virtual1".into(), Arc::new(camera_service::camera::virtual_camera(1, &cfg)));
    let err = rig.media.start_recording(&json!({"device": "virtual1"})).unwrap_err();
    assert_eq!(err.code(), -1004, "{err}");
    let reason = err.data().unwrap()["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("ffmpeg could not record"), "{reason}");
    assert!(rig.media.recording_of("virtual1").is_none());
    assert!(rig.notes.recv_timeout(Duration::from_secs(1)).is_err(), "no notification for a start that failed");
    // The camera is free again.
    assert_eq!(rig.media.start_recording(&json!({"device": "virtual1"})).unwrap_err().code(), -1004);
}

/// A recordings folder nothing can be written to fails the start with -1004 (not STARTED, then FAILED).
#[test]
fn unwritable_recordings_folder_fails_the_start_with_1004() {
    need_ffmpeg!();
    let dir = TempDir::new("media-readonly");
    let mnt = dir.path().join("mnt");
    let cam_dir = mnt.join("recordings").join("virtual0");
    std::fs::create_dir_all(&mnt).unwrap();
    struct Unmount(Option<PathBuf>);
    impl Drop for Unmount {
        fn drop(&mut self) {
            if let Some(m) = &self.0 {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
    }
    // Root writes anywhere a mode allows nothing: a read-only mount stops it; others are stopped by the mode.
    let _guard = if crate::support::prereq::is_root() {
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&mnt).status();
        assert!(ok.is_ok_and(|s| s.success()), "cannot mount a tmpfs on {}", mnt.display());
        std::fs::create_dir_all(&cam_dir).unwrap();
        let ro = Command::new("mount").args(["-o", "remount,ro"]).arg(&mnt).status();
        assert!(ro.is_ok_and(|s| s.success()));
        Unmount(Some(mnt.clone()))
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&cam_dir).unwrap();
        std::fs::set_permissions(&cam_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        Unmount(None)
    };
    let rig = Rig::build(&mnt, None, false);
    let err = rig.media.start_recording(&json!({"device": "virtual0"})).unwrap_err();
    assert_eq!(err.code(), -1004, "{err}");
    let reason = err.data().unwrap()["reason"].as_str().unwrap().to_string();
    assert!(reason.contains(&cam_dir.to_string_lossy().into_owned()), "{reason}");
    assert!(rig.media.recording_of("virtual0").is_none());
    assert!(rig.notes.recv_timeout(Duration::from_millis(500)).is_err(), "no notification for a start that failed");
}

/// Camera listings read the segment being written from the recorder's board, which follows rotation.
#[test]
fn board_names_the_segment_being_written() {
    need_ffmpeg!();
    let rig = Rig::new();
    let started = rig.start(json!({"device": "virtual0"}));
    assert_eq!(rig.media.recording_of("virtual0").unwrap().current_file, started["filename"].as_str().unwrap());
    rig.wait_segments("virtual0", 3);
    crate::support::wait_until("the board names the newest segment", Duration::from_secs(5), || {
        let s = rig.media.recording_status(&json!({"device": "virtual0"})).unwrap();
        let newest = names(&s["files"]).pop().unwrap();
        rig.media.recording_of("virtual0").is_some_and(|v| v.current_file == newest)
    });
    assert_ne!(rig.media.recording_of("virtual0").unwrap().current_file, started["filename"].as_str().unwrap());
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
    let next = rig.notes.recv_timeout(Duration::from_millis(300));
    assert!(next.is_err(), "a direct recording is not MediaMTX's: {next:?}");
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

/// A USB camera `/dev/video0` (path `camera0`), recorded by MediaMTX's recorder when MediaMTX is enabled.
fn usb_camera(rig: &Rig) -> Camera {
    let mut cam = virtual_camera(0, 320, 240, 10);
    cam.device = "/dev/video0".into();
    cam.path_name = "camera0".into();
    cam.is_virtual = false;
    cam.virtual_source = None;
    rig.cameras.0.lock().insert("/dev/video0".into(), Arc::new(cam.clone()));
    cam
}

#[test]
fn mediamtx_recorder_mode_switches_record_and_keeps_a_reader() {
    need_ffmpeg!();
    let dir = TempDir::new("media-mtx");
    let rig = Rig::build(dir.path(), None, true);
    usb_camera(&rig);
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

/// A recording by MediaMTX's recorder that fails is also `mediamtx.recording_failed`, right after its FAILED
/// notification (the same failure, for clients that follow MediaMTX).
#[test]
fn a_failed_mediamtx_recording_is_also_a_mediamtx_event() {
    need_ffmpeg!();
    let dir = TempDir::new("media-mtx-failed");
    let rig = Rig::build(dir.path(), None, true);
    let mut cam = usb_camera(&rig);
    let s = rig.start(json!({"device": "camera0"}));
    cam.status = CameraStatus::Disconnected;
    let gone = Arc::new(cam);
    rig.cameras.0.lock().insert("/dev/video0".into(), gone.clone());
    rig.events.send(CameraEvent { camera: gone, previous: Some(CameraStatus::Connected) }).unwrap();
    let failed = rig.note("FAILED", Duration::from_secs(10));
    assert_eq!(failed["error"], "device_disconnected");
    let n = rig.notes.recv_timeout(Duration::from_secs(5)).expect("mediamtx.recording_failed");
    assert_eq!(
        n,
        json!({"method": "mediamtx.recording_failed", "params": {"path": "camera0", "device": "/dev/video0",
               "error": "device_disconnected", "session_id": s["session_id"]}})
    );
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
    // The connection stayed open until the recording had ended and said so.
    let stopped = op.wait_notification("recording_status_update", Duration::from_secs(2), |p| {
        p["status"] == "STOPPED" && p["session_id"] == started["session_id"]
    });
    let stopped = stopped.expect("STOPPED notification before the connection closed");
    assert!(!stopped["params"]["files"].as_array().unwrap().is_empty(), "{stopped}");
    let dir = d.path("recordings").join("virtual0");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    assert!(!files.is_empty());
    for f in files {
        assert!(decodes(&f), "{} is not playable after SIGTERM", f.display());
    }
}

/// Through the daemon: four timed 1 s recordings in a row; every name in the replies and STARTED notifications is
/// a name `list_recordings` shows.
#[test]
fn daemon_reply_names_are_listed() {
    need_ffmpeg!();
    let d = crate::support::Daemon::builder().yaml(VIRTUAL_YAML).start();
    let mut op = d.client_as("operator");
    let mut replied = Vec::new();
    for _ in 0..4 {
        let started = op.ok("start_recording", json!({"device": "virtual0", "duration": 1}));
        let id = started["session_id"].clone();
        let note = op.wait_notification("recording_status_update", Duration::from_secs(10), |p| {
            p["status"] == "STARTED" && p["session_id"] == id
        });
        assert_eq!(note.expect("STARTED")["params"]["filename"], started["filename"]);
        let stopped = op.wait_notification("recording_status_update", Duration::from_secs(15), |p| {
            p["status"] == "STOPPED" && p["session_id"] == id
        });
        assert!(stopped.is_some(), "timed recording {id} did not stop");
        replied.push(started["filename"].as_str().unwrap().to_string());
    }
    let listed = op.ok("list_recordings", json!({}));
    let listed: Vec<&str> =
        listed["files"].as_array().unwrap().iter().map(|f| f["filename"].as_str().unwrap()).collect();
    for name in &replied {
        assert!(listed.contains(&name.as_str()), "{name} from a reply is not listed: {listed:?}");
    }
    assert_eq!(listed.len(), 4, "{listed:?}");
}

/// SIGKILL of the daemon (its ffmpeg dies with it, as in a power loss): every fragment closed before the kill plays.
#[test]
fn daemon_killed_mid_recording_leaves_playable_fragments() {
    need_ffmpeg!();
    let yaml = "camera:\n  virtual:\n  - {name: T, width: 320, height: 240, fps: 10, pattern: testsrc2}\n\
                recording:\n  segment_duration: 60\n";
    let d = crate::support::Daemon::builder().yaml(yaml).start();
    let mut op = d.client_as("operator");
    let started = op.ok("start_recording", json!({"device": "virtual0"}));
    let path = d.path("recordings").join("virtual0").join(started["filename"].as_str().unwrap());
    assert!(path.is_file(), "{} was announced but does not exist", path.display());
    std::thread::sleep(Duration::from_secs(3));
    let ffmpeg = crate::support::mediamtx::children_of(d.child.id());
    assert!(!ffmpeg.is_empty(), "no recording ffmpeg under the daemon");
    crate::support::unsafe_kill(d.child.id(), 9);
    crate::support::wait_until("ffmpeg dies with the daemon", Duration::from_secs(5), || {
        // Gone, or a zombie waiting for whoever adopted it.
        ffmpeg.iter().all(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_none_or(|st| st == "Z")
        })
    });
    assert!(decodes(&path), "{} does not play after SIGKILL", path.display());
    let played = probe_duration(&path).unwrap_or(0.0);
    assert!(played >= 2.0, "only {played:.2}s survived");
}
