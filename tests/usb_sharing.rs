//! One reader per USB camera without MediaMTX: a V4L2 node streams for one opener at a time (the shim models the
//! kernel's rule: a second opener that sets the format or starts streaming gets EBUSY), so the live view, snapshots
//! and a direct recording of the same camera must share one ffmpeg reading it. The daemon runs with the shim
//! preloaded and `mediamtx.enabled: false`.

use std::path::Path;
use std::time::{Duration, Instant};

use camera_service::formats::image::jpeg_dimensions;
use serde_json::{json, Value};

use crate::support::mediamtx::children_of;
use crate::support::mjpeg::MjpegStream;
use crate::support::{require_all, token, Client, Daemon, Prereq, TempDir};

const WAIT: Duration = Duration::from_secs(20);

/// A daemon (MediaMTX disabled) with shimmed USB camera 0 plugged and connected, an operator client, and the folder
/// of the shim's spec and lock files (kept as long as the daemon).
fn daemon_with_usb_camera() -> (Daemon, Client, TempDir) {
    let spec_dir = TempDir::new("usb-sharing");
    let spec = spec_dir.path().join("spec");
    std::fs::write(&spec, "").unwrap();
    let d = Daemon::builder()
        .env("LD_PRELOAD", crate::cameras::shim().to_str().unwrap())
        .env("CAMSHIM_SPEC", spec.to_str().unwrap())
        .start();
    let mut c = d.client_as("operator");
    crate::real_mediamtx::plug_usb(&d, &spec, 0);
    c.wait_notification("camera_status_update", WAIT, |p| p["device"] == "/dev/video0" && p["status"] == "CONNECTED")
        .expect("the shimmed camera connects");
    (d, c, spec_dir)
}

/// The daemon's ffmpeg children.
fn ffmpeg_children(d: &Daemon) -> usize {
    children_of(d.child.id())
        .into_iter()
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "ffmpeg"))
        .count()
}

fn live(d: &Daemon) -> MjpegStream {
    let bearer = format!("Bearer {}", token("viewer", 600));
    let v = MjpegStream::open(d.port, "/live/camera0.mjpg", &[("Authorization", &bearer)]);
    assert_eq!(v.status, 200);
    v
}

/// `n` frames of the camera's size within `within` (a short gap while the reader changes is allowed: the stream's
/// read timeout is 10 s per frame).
fn frames(v: &mut MjpegStream, n: usize, within: Duration) {
    let until = Instant::now() + within;
    for i in 0..n {
        let f = v.next_frame().unwrap_or_else(|| panic!("frame {i} of {n}: the live view stopped"));
        assert_eq!(jpeg_dimensions(&f), Some((320, 240)));
        assert!(Instant::now() < until, "{n} frames took longer than {within:?}");
    }
}

fn snapshot(c: &mut Client, format: &str) -> Value {
    let shot = c.ok("take_snapshot", json!({"device": "camera0", "format": format}));
    assert_eq!(shot["status"], "completed", "{shot}");
    assert_eq!((shot["width"].as_u64(), shot["height"].as_u64()), (Some(320), Some(240)), "{shot}");
    shot
}

/// Stop the recording and check that every file it names plays for about as long as it ran.
fn stop_and_check(d: &Daemon, c: &mut Client, ran_at_least: f64) {
    let stopped = c.ok("stop_recording", json!({"device": "camera0"}));
    assert_eq!(stopped["status"], "STOPPED", "{stopped}");
    let files: Vec<&str> = stopped["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(!files.is_empty(), "{stopped}");
    let total: f64 = files.iter().map(|f| probe_duration(&d.path("recordings").join("camera0").join(f))).sum();
    assert!(total >= ran_at_least, "recorded {total:.1}s of at least {ran_at_least}s: {stopped}");
}

/// Container duration via ffprobe; 0 when it does not play.
fn probe_duration(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0.0)
}

#[test]
fn recording_starts_while_the_live_view_runs_and_both_go_on() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler, Prereq::Ffmpeg]) {
        return;
    }
    let (d, mut c, _spec) = daemon_with_usb_camera();
    let mut view = live(&d);
    frames(&mut view, 5, WAIT);
    assert_eq!(ffmpeg_children(&d), 1, "the live view's reader");

    let started = c.ok("start_recording", json!({"device": "camera0"}));
    assert_eq!(started["status"], "STARTED", "{started}");
    let t0 = Instant::now();
    // The recording's ffmpeg is now the camera's one reader, and the live view goes on from it.
    frames(&mut view, 20, WAIT);
    assert_eq!(ffmpeg_children(&d), 1, "one reader of the device while recording");
    snapshot(&mut c, "jpg");
    snapshot(&mut c, "png");
    while t0.elapsed() < Duration::from_secs(3) {
        view.next_frame().expect("frames while recording");
    }
    stop_and_check(&d, &mut c, 2.0);

    // The live view gets its own reader back.
    frames(&mut view, 10, WAIT);
    assert_eq!(ffmpeg_children(&d), 1, "the live view's own reader again");
}

#[test]
fn live_view_and_snapshots_work_while_a_recording_runs() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler, Prereq::Ffmpeg]) {
        return;
    }
    let (d, mut c, _spec) = daemon_with_usb_camera();
    let started = c.ok("start_recording", json!({"device": "camera0"}));
    assert_eq!(started["status"], "STARTED", "{started}");
    let t0 = Instant::now();
    snapshot(&mut c, "jpg");
    let mut view = live(&d);
    frames(&mut view, 15, WAIT);
    assert_eq!(ffmpeg_children(&d), 1, "the recording is the one reader");
    snapshot(&mut c, "png");
    // A second viewer shares the same frames.
    let mut other = live(&d);
    frames(&mut other, 5, WAIT);
    drop(other);
    while t0.elapsed() < Duration::from_secs(3) {
        view.next_frame().expect("frames while recording");
    }
    stop_and_check(&d, &mut c, 2.0);
    frames(&mut view, 10, WAIT);
    // A second recording takes over from the live view's reader again.
    let again = c.ok("start_recording", json!({"device": "camera0", "duration": 2}));
    assert_eq!(again["status"], "STARTED", "{again}");
    frames(&mut view, 10, WAIT);
    c.wait_notification("recording_status_update", WAIT, |p| p["status"] == "STOPPED").expect("the timed one ends");
    frames(&mut view, 10, WAIT);
}

#[test]
fn a_recording_that_dies_gives_the_camera_back_to_the_live_view() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler, Prereq::Ffmpeg]) {
        return;
    }
    let (d, mut c, _spec) = daemon_with_usb_camera();
    let mut view = live(&d);
    frames(&mut view, 3, WAIT);
    let started = c.ok("start_recording", json!({"device": "camera0"}));
    assert_eq!(started["status"], "STARTED", "{started}");
    frames(&mut view, 10, WAIT);
    let recorder = children_of(d.child.id())
        .into_iter()
        .find(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains("segment")))
        .expect("the recording's ffmpeg");
    crate::support::unsafe_kill(recorder, libc::SIGKILL);
    let failed = c.wait_notification("recording_status_update", WAIT, |p| p["status"] == "FAILED").expect("FAILED");
    assert!(failed["params"]["error"].as_str().is_some_and(|e| e.starts_with("process_exited")), "{failed}");
    // The live view reads the camera itself again, and a new recording can take over once more.
    frames(&mut view, 10, WAIT);
    let again = c.ok("start_recording", json!({"device": "camera0"}));
    assert_eq!(again["status"], "STARTED", "{again}");
    frames(&mut view, 10, WAIT);
    stop_and_check(&d, &mut c, 0.5);
}
