//! The live view over WebRTC: the real MediaMTX publishes the virtual camera and Chromium plays it through
//! MediaMTX's WHEP endpoint, as a person opening the console would see it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{browser_prerequisites, one_browser_at_a_time, require, save_screenshot, sign_in, Browser, VIRTUAL_CAMERA};
use crate::support::{free_port, Daemon, TempDir};

/// The MediaMTX binary: `MEDIAMTX_BIN`, else `mediamtx` on `PATH`, else the team's copy next to the checkout.
fn find_mediamtx() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEDIAMTX_BIN").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    super::on_path("mediamtx").or_else(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/mediamtx/mediamtx");
        p.is_file().then_some(p)
    })
}

/// A real MediaMTX with every listener on its own free loopback port; stopped on drop.
struct MediaMtx {
    child: Child,
    api: u16,
    rtsp: u16,
    webrtc: u16,
    _dir: TempDir,
}

impl MediaMtx {
    fn start(bin: &PathBuf) -> MediaMtx {
        let dir = TempDir::new("mediamtx-real");
        let [api, rtsp, rtp, rtcp, mrtp, mrtcp, webrtc, udp] = [(); 8].map(|_| free_port());
        let yml = format!(
            "logLevel: info\nlogDestinations: [stdout]\napi: yes\napiAddress: 127.0.0.1:{api}\nmetrics: no\npprof: no\n\
             playback: no\nrtsp: yes\nrtspTransports: [tcp]\nrtspAddress: 127.0.0.1:{rtsp}\nrtpAddress: :{rtp}\n\
             rtcpAddress: :{rtcp}\nmulticastRTPPort: {mrtp}\nmulticastRTCPPort: {mrtcp}\nrtmp: no\nhls: no\nsrt: no\n\
             webrtc: yes\nwebrtcAddress: 127.0.0.1:{webrtc}\nwebrtcLocalUDPAddress: 127.0.0.1:{udp}\n\
             webrtcLocalTCPAddress: ''\nwebrtcIPsFromInterfaces: no\nwebrtcAdditionalHosts: [127.0.0.1]\npaths: {{}}\n"
        );
        let config = dir.path().join("mediamtx.yml");
        std::fs::write(&config, yml).unwrap();
        let log = std::fs::File::create(dir.path().join("mediamtx.log")).unwrap();
        let child = Command::new(bin)
            .arg(&config)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mediamtx");
        let m = MediaMtx { child, api, rtsp, webrtc, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", api)).is_err() {
            assert!(Instant::now() < deadline, "mediamtx did not open its API port: {}", m.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("mediamtx.log")).unwrap_or_default()
    }
}

impl Drop for MediaMtx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_live_view_plays_over_webrtc_from_the_real_mediamtx() {
    let Some(chromium) = browser_prerequisites() else { return };
    let Some(mediamtx_bin) = require("MediaMTX (MEDIAMTX_BIN, PATH or ../shared/tools/mediamtx)", find_mediamtx())
    else {
        return;
    };
    let _one = one_browser_at_a_time();
    let mtx = MediaMtx::start(&mediamtx_bin);
    let yaml = format!(
        "{VIRTUAL_CAMERA}mediamtx:\n  enabled: true\n  host: 127.0.0.1\n  api_port: {}\n  rtsp_port: {}\n  \
         webrtc_port: {}\n  hls_port: {}\n  health_check_interval: 0.5\n",
        mtx.api,
        mtx.rtsp,
        mtx.webrtc,
        free_port()
    );
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
