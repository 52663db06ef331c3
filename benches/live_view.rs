//! Live MJPEG view (`/live/<camera>.mjpg`) against the real daemon (release build) with the 15 fps virtual camera:
//! frame rate measured at the client, and the daemon's CPU with 10 viewers against 1 viewer of the same camera in
//! the same run (one shared reader, frames shared: 10 viewers should cost well under 2× one viewer).
//!
//! Rounds alternate 1 viewer / 10 viewers (the 9 extra viewers join and leave while one stays, so the reader keeps
//! running); each phase is measured over `LIVE_BENCH_SECS` (default 8) after a 1 s settle. CPU is read from
//! `/proc/<pid>/stat` (daemon) and its ffmpeg children; medians over `LIVE_BENCH_ROUNDS` (default 3) rounds.
//!
//! Run: `cargo bench --bench live_view`. Needs `ffmpeg`.

#[allow(unsafe_code)] // the test support calls libc (geteuid, mknod)
#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use support::mjpeg::MjpegStream;

const VIRTUAL_CAMERA: &str =
    "camera:\n  virtual:\n    - name: Test pattern\n      width: 640\n      height: 480\n      fps: 15\n      pattern: testsrc2\n";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // After the command: state(0) ... utime(11) stime(12).
    rest.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + rest.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn ffmpeg_ticks(daemon: u32) -> u64 {
    support::mediamtx::children_of(daemon).into_iter().map(cpu_ticks).sum()
}

/// A viewer reading frames on its own thread until `stop`; returns the frames seen while `counting`.
fn viewer(port: u16, url: String, counting: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut s = MjpegStream::open(port, &url, &[]);
        assert_eq!(s.status, 200);
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            s.next_frame().expect("frames keep coming");
            if counting.load(Ordering::SeqCst) {
                n += 1;
            }
        }
        n
    })
}

struct Phase {
    fps_min: f64,
    fps_median: f64,
    daemon_ms_per_s: f64,
    ffmpeg_ms_per_s: f64,
}

/// Measure with `extra` viewers besides the one that stays.
fn phase(
    d: &support::Daemon,
    url: &str,
    main_count: &Arc<AtomicBool>,
    main_frames: &dyn Fn() -> u64,
    extra: usize,
    secs: f64,
) -> Phase {
    let pid = d.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..extra).map(|_| viewer(d.port, url.to_string(), counting.clone(), stop.clone())).collect();
    thread::sleep(Duration::from_secs(1));
    let hz = 100.0; // USER_HZ on Linux
    let (d0, f0, m0) = (cpu_ticks(pid), ffmpeg_ticks(pid), main_frames());
    let start = Instant::now();
    counting.store(true, Ordering::SeqCst);
    main_count.store(true, Ordering::SeqCst);
    thread::sleep(Duration::from_secs_f64(secs));
    counting.store(false, Ordering::SeqCst);
    main_count.store(false, Ordering::SeqCst);
    let elapsed = start.elapsed().as_secs_f64();
    let (d1, f1, m1) = (cpu_ticks(pid), ffmpeg_ticks(pid), main_frames());
    stop.store(true, Ordering::SeqCst);
    let mut fps: Vec<f64> = handles.into_iter().map(|h| h.join().unwrap() as f64 / elapsed).collect();
    fps.push((m1 - m0) as f64 / elapsed);
    Phase {
        fps_min: fps.iter().cloned().fold(f64::MAX, f64::min),
        fps_median: median(&mut fps),
        daemon_ms_per_s: (d1 - d0) as f64 / hz * 1000.0 / elapsed,
        ffmpeg_ms_per_s: (f1 - f0) as f64 / hz * 1000.0 / elapsed,
    }
}

fn main() {
    if !support::require(support::Prereq::Ffmpeg) {
        return;
    }
    let rounds: usize = std::env::var("LIVE_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let secs: f64 = std::env::var("LIVE_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(8.0);
    let d = support::Daemon::builder().yaml(VIRTUAL_CAMERA).yaml("logging:\n  level: INFO\n").start();
    let mut c = d.client_as("viewer");
    let url = c.ok("get_live_url", json!({"device": "virtual0"}))["url"].as_str().unwrap().to_string();

    // The viewer that stays for the whole run (so the reader runs throughout), counted per phase.
    let main_count = Arc::new(AtomicBool::new(false));
    let main_frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop_main = Arc::new(AtomicBool::new(false));
    let main = {
        let (url, count, frames, stop, port) =
            (url.clone(), main_count.clone(), main_frames.clone(), stop_main.clone(), d.port);
        thread::spawn(move || {
            let mut s = MjpegStream::open(port, &url, &[]);
            assert_eq!(s.status, 200);
            while !stop.load(Ordering::SeqCst) {
                s.next_frame().expect("frames keep coming");
                if count.load(Ordering::SeqCst) {
                    frames.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    thread::sleep(Duration::from_secs(2));
    let read_main = || main_frames.load(Ordering::SeqCst);
    let (mut one, mut ten) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        one.push(phase(&d, &url, &main_count, &read_main, 0, secs));
        ten.push(phase(&d, &url, &main_count, &read_main, 9, secs));
    }
    stop_main.store(true, Ordering::SeqCst);
    let _ = main.join();

    let med = |v: &[Phase], f: fn(&Phase) -> f64| median(&mut v.iter().map(f).collect::<Vec<_>>());
    let ratios: Vec<f64> = one.iter().zip(&ten).map(|(a, b)| b.daemon_ms_per_s / a.daemon_ms_per_s.max(0.01)).collect();
    let total_ratios: Vec<f64> = one
        .iter()
        .zip(&ten)
        .map(|(a, b)| (b.daemon_ms_per_s + b.ffmpeg_ms_per_s) / (a.daemon_ms_per_s + a.ffmpeg_ms_per_s).max(0.01))
        .collect();
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    let out = json!({
        "bench": "live_view",
        "rounds": rounds,
        "seconds_per_phase": secs,
        "camera_fps": 15,
        "one_viewer_fps": r2(med(&one, |p| p.fps_median)),
        "ten_viewers_fps_median": r2(med(&ten, |p| p.fps_median)),
        "ten_viewers_fps_min": r2(med(&ten, |p| p.fps_min)),
        "daemon_cpu_ms_per_s_one": r2(med(&one, |p| p.daemon_ms_per_s)),
        "daemon_cpu_ms_per_s_ten": r2(med(&ten, |p| p.daemon_ms_per_s)),
        "ffmpeg_cpu_ms_per_s_one": r2(med(&one, |p| p.ffmpeg_ms_per_s)),
        "ffmpeg_cpu_ms_per_s_ten": r2(med(&ten, |p| p.ffmpeg_ms_per_s)),
        "daemon_ratio_ten_vs_one": r2(median(&mut ratios.clone())),
        "daemon_plus_ffmpeg_ratio_ten_vs_one": r2(median(&mut total_ratios.clone())),
    });
    println!("{out}");
}
