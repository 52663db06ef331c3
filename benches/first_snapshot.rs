//! First snapshot of a ready stream, against the real MediaMTX and the real daemon (release build): the time a
//! client waits for `take_snapshot` (WebSocket round trip included) on a camera whose stream MediaMTX reports
//! ready, the first time and then repeated.
//!
//! Each sample uses a fresh virtual camera (640x480, 15 fps, one key frame a second), so nothing is warm: a reader
//! keeps its stream ready (as a viewer would), the daemon sees the path ready, then the snapshot is taken. Cameras
//! alternate between the default (the publisher keeps a live JPEG frame: the snapshot copies it) and, in the same
//! run, the baseline without it (the live frame file is blocked, so the publisher's tee output drops it at its first
//! frame and the snapshot connects the warm RTSP reader and waits for a key frame, as before).
//!
//! Run: `cargo bench --bench first_snapshot` (`SNAPSHOT_BENCH_N`, default 8 pairs). Needs ffmpeg and MediaMTX
//! (`MEDIAMTX_BIN`, `PATH`, or `../shared/tools/mediamtx/mediamtx`).

#[allow(unsafe_code)] // the test support calls libc (geteuid, mknod)
#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const REPEATS: usize = 10;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A viewer of the camera's RTSP stream (keeps the on-demand publisher running).
fn reader(url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", url])
        .args(["-c", "copy", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg reader")
}

/// (first snapshot ms, repeats ms, capture methods seen).
fn sample(op: &mut support::Client, device: &str, rtsp: &str) -> (f64, Vec<f64>, Vec<String>) {
    let mut viewer = reader(rtsp);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let streams = op.ok("get_streams", Value::Null);
        if streams.as_array().unwrap().iter().any(|s| s["name"] == device && s["ready"] == true) {
            break;
        }
        assert!(Instant::now() < deadline, "{device} never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut methods = Vec::new();
    let mut shot = || {
        let t = Instant::now();
        let r = op.ok("take_snapshot", json!({ "device": device }));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(r["status"], "completed", "{r}");
        methods.push(r["capture_method"].as_str().unwrap_or("").to_string());
        ms
    };
    let first = shot();
    let repeats: Vec<f64> = (0..REPEATS).map(|_| shot()).collect();
    let _ = viewer.kill();
    let _ = viewer.wait();
    methods.dedup();
    (first, repeats, methods)
}

fn main() {
    if !support::require_all(&[support::Prereq::Ffmpeg, support::Prereq::MediaMtx]) {
        return;
    }
    let pairs: usize = std::env::var("SNAPSHOT_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let dir = support::TempDir::new("bench-snapshot");
    let mtx = support::mediamtx::RealMediaMtx::start(&dir.path().join("mediamtx"), &[]).expect("MediaMTX");
    let mut yaml = format!(
        "{}  stream_readiness:\n    check_interval: 0.2\ncamera:\n  virtual:\n",
        mtx.daemon_yaml(mtx.ports.api)
    );
    for i in 0..2 * pairs {
        yaml.push_str(&format!("  - {{name: B{i}, width: 640, height: 480, fps: 15, pattern: testsrc2}}\n"));
    }
    let d = support::Daemon::builder().yaml(&yaml).env("CAMERA_SERVICE_RATE_RPM", "1000000").start();
    let mut op = d.client_as("operator");
    let live = d.path("snapshots").join(".live");
    let (mut new_first, mut new_rep, mut old_first, mut old_rep) = (vec![], vec![], vec![], vec![]);
    for i in 0..2 * pairs {
        let device = format!("virtual{i}");
        let baseline = i % 2 == 1;
        if baseline {
            // The publisher's tee writes `<name>.tmp` then renames: a directory there makes its first write fail.
            std::fs::create_dir_all(live.join(format!("{device}.jpg.tmp"))).unwrap();
        }
        let rtsp = format!("rtsp://127.0.0.1:{}/{device}", mtx.ports.rtsp);
        let (first, repeats, methods) = sample(&mut op, &device, &rtsp);
        println!(
            "{device} {}: first {first:.1} ms, repeats p50 {:.2} ms ({methods:?})",
            if baseline { "baseline" } else { "live frame" },
            median(&mut repeats.clone())
        );
        if baseline {
            old_first.push(first);
            old_rep.extend(repeats);
        } else {
            new_first.push(first);
            new_rep.extend(repeats);
        }
    }
    let (nf, of) = (median(&mut new_first), median(&mut old_first));
    println!(
        "first snapshot, live frame (default): n={} p50 {nf:.1} ms, max {:.1} ms",
        new_first.len(),
        pct(&mut new_first, 1.0)
    );
    println!(
        "first snapshot, warm reader (baseline): n={} p50 {of:.1} ms, max {:.1} ms",
        old_first.len(),
        pct(&mut old_first, 1.0)
    );
    println!(
        "repeats, live frame: n={} p50 {:.2} ms, p99 {:.2} ms",
        new_rep.len(),
        median(&mut new_rep),
        pct(&mut new_rep, 0.99)
    );
    println!(
        "repeats, warm reader: n={} p50 {:.2} ms, p99 {:.2} ms",
        old_rep.len(),
        median(&mut old_rep),
        pct(&mut old_rep, 0.99)
    );
    println!("ratio first snapshot live/baseline: {:.3}", nf / of);
}
