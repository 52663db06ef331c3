//! Snapshot and recording latency, in-process with real ffmpeg (no hardware):
//! - `start_recording` / `stop_recording` reply time for a virtual camera (direct ffmpeg);
//! - `take_snapshot` of a virtual camera (lavfi tier) and from a running RTSP stream (GStreamer test server,
//!   standing in for a ready MediaMTX path; skipped with a note when python3-gi is missing): one fresh ffmpeg
//!   reader per snapshot (`enable_caching: false`) against the warm per-camera reader (first and later shots).
//!
//! Run: `cargo bench --bench media_latency` (env `MEDIA_BENCH_N`, default 30 iterations).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camera_service::camera::Camera;
use camera_service::config::{Config, VirtualCameraConfig};
use camera_service::error::{Error, Result};
use camera_service::files::Thresholds;
use camera_service::media::{CameraLookup, Deps, Media, RecorderWiring, Recordings, StreamServer};
use camera_service::mediamtx::PathMetrics;
use camera_service::process::heartbeat::Heartbeats;
use camera_service::process::status::Components;
use camera_service::process::{Shutdown, Supervisor};
use camera_service::rpc::notify::Hub;
use camera_service::rpc::params::decode;
use serde_json::json;

struct Cams(HashMap<String, Arc<Camera>>);
impl CameraLookup for Cams {
    fn get(&self, id: &str) -> Result<Arc<Camera>> {
        self.0.get(id).cloned().ok_or_else(|| Error::CameraNotFound(id.into()))
    }
}

/// A MediaMTX whose path is always ready (the RTSP server below plays the stream).
struct ReadyPath(bool);
impl StreamServer for ReadyPath {
    fn enabled(&self) -> bool {
        self.0
    }
    fn available(&self) -> bool {
        self.0
    }
    fn path_metrics(&self, _: &str) -> Option<PathMetrics> {
        Some(PathMetrics { ready: true, ..Default::default() })
    }
    fn ensure_path(&self, _: &str) -> Result<()> {
        Ok(())
    }
    fn set_record(&self, _: &str, _: bool) -> Result<()> {
        Ok(())
    }
    fn wait_ready(&self, _: &str, _: Duration) -> Result<()> {
        Ok(())
    }
}

fn camera() -> Camera {
    let cfg = VirtualCameraConfig { name: "T".into(), width: 640, height: 480, fps: 15, pattern: "testsrc2".into() };
    camera_service::camera::virtual_camera(0, &cfg)
}

fn media(root: &std::path::Path, rtsp_port: Option<u16>, caching: bool, sup: &Supervisor) -> Media {
    let mut config = Config::default();
    config.performance.optimization.enable_caching = caching;
    config.mediamtx.enabled = rtsp_port.is_some();
    config.mediamtx.host = "127.0.0.1".into();
    config.mediamtx.rtsp_port = rtsp_port.unwrap_or(8554);
    config.mediamtx.recordings_path = root.join("recordings");
    config.mediamtx.snapshots_path = root.join("snapshots");
    config.recording.segment_duration = 2;
    config.present.insert("recording.segment_duration".into());
    let deps = Deps {
        config: Arc::new(config),
        cameras: Arc::new(Cams(HashMap::from([("virtual0".to_string(), Arc::new(camera()))]))),
        mediamtx: Arc::new(ReadyPath(rtsp_port.is_some())),
        thresholds: Arc::new(|| Thresholds { warning: 98, critical: 99 }),
        recordings: Recordings::default(),
        shutdown: sup.shutdown().clone(),
    };
    let (m, recorder) = Media::new(deps);
    let wiring = RecorderWiring {
        camera_events: crossbeam_channel::never(),
        hub: Hub::new(),
        components: Components::default(),
        heartbeats: Heartbeats::default(),
    };
    recorder.spawn(wiring, sup).unwrap();
    m
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn report(name: &str, v: &mut [f64]) {
    println!(
        "{name:<40} n={:<3} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        v.len(),
        pct(v, 0.5),
        pct(v, 0.99),
        pct(v, 1.0)
    );
}

fn snapshots(m: &Media, n: usize, expect_tier: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = m.take_snapshot(decode(&json!({"device": "virtual0"})).unwrap()).unwrap();
            let took = ms(t);
            assert_eq!(r["status"], "completed", "{r}");
            assert_eq!(r["tier_used"], expect_tier, "{r}");
            assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(640), Some(480)), "{r}");
            took
        })
        .collect()
}

fn main() {
    let n: usize = std::env::var("MEDIA_BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let root = std::env::temp_dir().join(format!("media-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let sup = Supervisor::new(Shutdown::new());
    let m = media(&root.join("direct"), None, true, &sup);

    let (mut start, mut stop) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        m.start_recording(decode(&json!({"device": "virtual0"})).unwrap()).unwrap();
        start.push(ms(t));
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        m.stop_recording("virtual0").unwrap();
        stop.push(ms(t));
        // A new session within the same second would reuse the segment name stamp.
        std::thread::sleep(Duration::from_millis(1000));
    }
    report("start_recording reply (virtual, direct)", &mut start);
    report("stop_recording reply (virtual, direct)", &mut stop);
    report("take_snapshot (virtual, lavfi tier 2)", &mut snapshots(&m, n, 2));

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/rtsp_test_server.py");
    let server = Command::new("/usr/bin/python3")
        .args([script, &port.to_string(), "/virtual0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    match server {
        Ok(mut child) => {
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if line.starts_with("ready") {
                // Baseline: a fresh ffmpeg reader per snapshot (`enable_caching: false`).
                let cold = media(&root.join("rtsp-cold"), Some(port), false, &sup);
                // Warm up: the shared GStreamer media starts with the first reader.
                let _ = snapshots(&cold, 1, 1);
                report("take_snapshot (RTSP ready, reader per shot)", &mut snapshots(&cold, n, 1));
                // Default: the first snapshot starts the warm reader, the next ones take its latest frame.
                let warm = media(&root.join("rtsp-warm"), Some(port), true, &sup);
                report("take_snapshot (RTSP ready, first, warm rdr)", &mut snapshots(&warm, 1, 1));
                let mut shots = Vec::new();
                for _ in 0..n {
                    // Spaced like a client polling, so every shot waits on the reader's own pace.
                    std::thread::sleep(Duration::from_millis(150));
                    shots.extend(snapshots(&warm, 1, 1));
                }
                report("take_snapshot (RTSP ready, warm reader)", &mut shots);
            } else {
                println!("take_snapshot (RTSP): SKIPPED - GStreamer RTSP server did not start (python3-gi missing?)");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(e) => println!("take_snapshot (RTSP): SKIPPED - cannot run /usr/bin/python3: {e}"),
    }
    sup.shutdown().trigger();
    sup.join_all(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&root);
}
