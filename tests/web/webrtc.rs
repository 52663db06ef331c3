//! The live view over WebRTC: the real MediaMTX publishes the virtual camera and Chromium plays it through
//! MediaMTX's WHEP endpoint, as a person opening the console would see it.

use std::time::Duration;

use super::{browser_prerequisites, one_browser_at_a_time, save_screenshot, sign_in, Browser, VIRTUAL_CAMERA};
use crate::support::mediamtx::RealMediaMtx;
use crate::support::{Daemon, TempDir};

#[test]
fn the_live_view_plays_over_webrtc_from_the_real_mediamtx() {
    let Some(chromium) = browser_prerequisites() else { return };
    let _one = one_browser_at_a_time();
    let dir = TempDir::new("web-mediamtx");
    let Some(mtx) = RealMediaMtx::start(dir.path(), &[]) else { return };
    let yaml = format!("{VIRTUAL_CAMERA}{}  health_check_interval: 0.5\n", mtx.daemon_yaml(mtx.ports.api));
    let d = Daemon::builder().yaml(&yaml).start();
    let mut b = Browser::launch(&chromium, 1200, 820);
    sign_in(&mut b, &d, "operator", false);
    let video = "document.querySelector(\"[data-device='virtual0'] video[data-live='webrtc']\")";
    let played = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.wait_for(&format!("{video}?.currentTime > 1"), Duration::from_secs(45));
    }));
    if played.is_err() {
        panic!("WebRTC did not play.\nmediamtx log:\n{}\ndaemon log tail:\n{}", mtx.log(), tail(&d.stderr()));
    }
    // Frames are decoded, not just a clock running on an empty stream.
    let size = b.eval(&format!("[{video}.videoWidth, {video}.videoHeight]"));
    assert_eq!(size, serde_json::json!([640, 480]));
    // A snapshot of a streaming camera shows up on its card at once.
    b.click("[data-device='virtual0'] [data-action='snapshot']");
    b.wait_for(
        "document.querySelector(\"[data-device='virtual0'] img.shot\")?.naturalWidth === 640",
        Duration::from_secs(30),
    );
    save_screenshot("console", &b.screenshot());
    let problems = b.unexpected_problems(&[]);
    assert!(problems.is_empty(), "errors in the page: {problems:#?}");
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
