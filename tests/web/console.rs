//! The console in headless Chromium against the real daemon with a virtual camera (MediaMTX off): sign-in,
//! the camera card, snapshot, recording, playback, download, delete, roles, and recovery after a restart.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::{
    browser_prerequisites, one_browser_at_a_time, save_screenshot, sign_in, sign_in_with, text_of, Browser,
    VIRTUAL_CAMERA,
};
use crate::support::{bin, wait_until, Daemon, JWT_SECRET};

const CARD: &str = "[data-device='virtual0']";
const WAIT: Duration = Duration::from_secs(30);
/// Console lines that are expected while a daemon restarts or a file is deleted.
const EXPECTED_NOISE: &[&str] = &["WebSocket connection to", "ERR_CONNECTION_REFUSED", "404 (Not Found)"];

fn daemon() -> Daemon {
    Daemon::builder().yaml(VIRTUAL_CAMERA).start()
}

fn assert_clean(b: &mut Browser) {
    let problems = b.unexpected_problems(EXPECTED_NOISE);
    assert!(problems.is_empty(), "errors in the page: {problems:#?}");
}

#[test]
fn sign_in_rejects_a_bad_token_then_shows_the_virtual_camera() {
    let Some(chromium) = browser_prerequisites() else { return };
    let _one = one_browser_at_a_time();
    let d = daemon();
    let mut b = Browser::launch(&chromium, 1200, 820);
    b.navigate(&format!("http://127.0.0.1:{}/", d.port));
    b.type_into("#token", "not-a-valid-token");
    b.click("#signin-submit");
    b.wait_for("!document.querySelector('#signin-error').hidden", WAIT);
    let msg = text_of(&mut b, "#signin-error");
    assert!(msg.contains("Sign-in failed") && msg.contains("Invalid or expired"), "{msg}");
    assert!(b.eval("document.querySelector('#signin').hidden === false").as_bool().unwrap());
    save_screenshot("console-signin", &b.screenshot());

    sign_in(&mut b, &d, "admin", false);
    b.wait_for(&format!("document.querySelector(\"{CARD} .badge\")?.innerText === 'CONNECTED'"), WAIT);
    let card = text_of(&mut b, CARD);
    assert!(card.contains("Test pattern") && card.contains("640x480 · 15 fps"), "{card}");
    // MediaMTX is off: the card shows the daemon's MJPEG live view.
    b.wait_for(&format!("document.querySelector(\"{CARD} img[data-live='mjpeg']\")?.naturalWidth === 640"), WAIT);
    assert_eq!(text_of(&mut b, "#conn"), "Connected");
    assert!(text_of(&mut b, "#who").contains("admin"));
    assert!(b.eval("sessionStorage.length === 1 && localStorage.length === 0").as_bool().unwrap());
    // Unplugging is announced live: a second virtual camera is not configured, so check the count line instead.
    assert_eq!(text_of(&mut b, "#camera-count"), "1 of 1 connected");
    assert_clean(&mut b);
}

#[test]
fn operator_takes_a_snapshot_records_plays_downloads_and_deletes() {
    let Some(chromium) = browser_prerequisites() else { return };
    let _one = one_browser_at_a_time();
    let d = daemon();
    let mut b = Browser::launch(&chromium, 1200, 900);
    sign_in(&mut b, &d, "operator", false);

    // Snapshot: the picture shows at once on the card and in the files view.
    b.click(&format!("{CARD} [data-action='snapshot']"));
    let shot = b.wait_for(&format!("document.querySelector(\"{CARD} img.shot\")?.dataset.name"), WAIT);
    let shot = shot.as_str().unwrap().to_string();
    b.wait_for(&format!("document.querySelector(\"{CARD} img.shot\").naturalWidth === 640"), WAIT);
    b.navigate_hash("files");
    let item = format!("#snapshot-list li[data-name='{shot}']");
    b.wait_for(&format!("document.querySelector(\"{item} img\")?.naturalWidth === 640"), WAIT);
    save_screenshot_after_camera_view(&mut b);

    // Record about 3 s (a 10 s timed recording, stopped early).
    b.navigate_hash("cameras");
    b.eval(&format!("(() => {{ const s = document.querySelector(\"{CARD} select\"); s.value = '10'; }})()"));
    b.click(&format!("{CARD} [data-action='record']"));
    b.wait_for(&format!("!document.querySelector(\"{CARD} .rec-tag\").hidden"), WAIT);
    assert!(text_of(&mut b, "#toasts").contains("(10 s)"), "timed recording: {}", text_of(&mut b, "#toasts"));
    // 4 s of wall time: ffmpeg's start-up (slower on a loaded machine, with the live view's reader also encoding)
    // is part of it, and the check below wants at least 2 s of video.
    std::thread::sleep(Duration::from_secs(4));
    b.click(&format!("{CARD} [data-action='stop']"));
    b.wait_for(&format!("document.querySelector(\"{CARD} .rec-tag\").hidden"), WAIT);

    // It is listed and plays in the page.
    b.navigate_hash("files");
    let name = b.wait_for("document.querySelector('#recording-list li')?.dataset.name", WAIT);
    let name = name.as_str().unwrap().to_string();
    let row = format!("#recording-list li[data-name='{name}']");
    b.wait_for(&format!("document.querySelector(\"{item} img\")?.naturalWidth === 640"), WAIT);
    save_screenshot("console-files", &b.screenshot());
    b.click(&format!("{row} [data-action='play']"));
    b.wait_for("document.querySelector('#viewer video')?.currentTime > 0.5", WAIT);
    let duration = b.eval("document.querySelector('#viewer video').duration").as_f64().unwrap();
    assert!((2.0..6.0).contains(&duration), "a ~3 s recording plays for {duration} s");
    b.click("#viewer-close");
    b.wait_for("!document.querySelector('#viewer').open", WAIT);

    // Download through the signed URL: the browser saves the same bytes the server has.
    b.click(&format!("{row} [data-action='download']"));
    let saved = b.downloads.join(&name);
    let on_server = find_file(&d.path("recordings"), &name).expect("recording on disk");
    let downloads = b.downloads.clone();
    wait_until(&format!("the download into {}", downloads.display()), WAIT, || {
        std::fs::metadata(&saved).is_ok_and(|m| m.len() == file_len(&on_server))
    });
    assert_eq!(std::fs::read(&saved).unwrap(), std::fs::read(&on_server).unwrap());

    // Delete, after confirming.
    b.click(&format!("{row} [data-action='delete']"));
    b.wait_for("document.querySelector('#confirm').open", WAIT);
    b.click("#confirm-ok");
    b.wait_for(&format!("!document.querySelector(\"{row}\")"), WAIT);
    assert!(!on_server.exists(), "the file is gone from the box");
    assert_clean(&mut b);
}

fn save_screenshot_after_camera_view(b: &mut Browser) {
    b.navigate_hash("cameras");
    b.wait_for(&format!("document.querySelector(\"{CARD}\")"), WAIT);
    let png = b.screenshot();
    save_screenshot("console-cameras", &png);
    b.navigate_hash("files");
}

#[test]
fn a_viewer_sees_no_control_buttons() {
    let Some(chromium) = browser_prerequisites() else { return };
    let _one = one_browser_at_a_time();
    let d = daemon();
    let jpeg = tiny_jpeg();
    for i in 0..13 {
        std::fs::write(d.path(&format!("snapshots/virtual0_snapshot_2025-01-01_00-00-{i:02}.jpg")), &jpeg).unwrap();
    }
    let key = d.create_api_key("viewer");
    let mut b = Browser::launch(&chromium, 1000, 800);
    // A phone: everything fits the width (no sideways scrolling).
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    );
    sign_in_with(&mut b, &d, &key, false);
    assert!(text_of(&mut b, "#who").contains("viewer"));
    b.wait_for(&format!("document.querySelector(\"{CARD} .badge\")?.innerText === 'CONNECTED'"), WAIT);
    let controls =
        b.eval("document.querySelectorAll('[data-action=snapshot],[data-action=record],[data-action=stop]').length");
    assert_eq!(controls, 0);
    let fits = "document.documentElement.scrollWidth <= window.innerWidth";
    assert_eq!(b.eval(fits), true, "the cameras view is wider than a phone");
    save_screenshot("console-phone", &b.screenshot());
    b.navigate_hash("files");
    b.wait_for("document.querySelector('#snapshot-list li [data-action=download]')", WAIT);
    assert_eq!(b.eval("document.querySelectorAll('[data-action=delete]').length"), 0);
    assert_eq!(b.eval(fits), true, "the files view is wider than a phone");
    // Thirteen snapshots are two pages of twelve.
    assert_eq!(b.eval("document.querySelectorAll('#snapshot-list li').length"), 12);
    assert!(text_of(&mut b, "#snapshots-pager").contains("1–12 of 13"));
    b.click("#snapshots-pager button:last-child");
    b.wait_for("document.querySelectorAll('#snapshot-list li').length === 1", WAIT);
    assert!(text_of(&mut b, "#snapshots-pager").contains("13–13 of 13"));
    b.navigate_hash("system");
    b.wait_for("!document.querySelector('#system-admin-only').hidden", WAIT);
    assert_clean(&mut b);
}

#[test]
fn admin_sees_the_system_panel_and_changes_the_retention_policy() {
    let Some(chromium) = browser_prerequisites() else { return };
    let _one = one_browser_at_a_time();
    let d = daemon();
    let mut b = Browser::launch(&chromium, 1200, 900);
    sign_in(&mut b, &d, "admin", false);
    b.navigate_hash("system");
    b.wait_for("document.querySelector('#system-cards meter')", WAIT);
    let text = text_of(&mut b, "#system-cards");
    for want in
        ["Health", "Uptime", "CPU", "Memory", "Connections", "Storage", "Warn / block at", "MediaMTX", "Retention"]
    {
        assert!(text.contains(want), "{want} missing from the system panel:\n{text}");
    }
    assert!(text.contains(camera_service::VERSION), "{text}");
    save_screenshot("console-system", &b.screenshot());
    b.eval("(() => { const t = document.querySelector('#retention-type'); t.value = 'age'; t.dispatchEvent(new Event('change')); })()");
    b.eval("(() => { const d = document.querySelector('#retention-days'); d.value = '7'; })()");
    b.click("#system-cards form button[type=submit]");
    b.wait_for("document.querySelector('#toasts').innerText.includes('Retention policy saved')", WAIT);
    let mut admin = d.client_as("admin");
    let policy = admin.ok("get_retention_policy", serde_json::Value::Null);
    assert_eq!((policy["policy_type"].as_str(), policy["max_age_days"].as_f64()), (Some("age"), Some(7.0)));
    // The event log shows notifications as they arrive.
    admin.ok("take_snapshot", json!({"device": "virtual0"}));
    admin.ok("start_recording", json!({"device": "virtual0", "duration_seconds": 1}));
    b.wait_for("document.querySelector('#event-log').innerText.includes('recording_status_update')", WAIT);
    assert_clean(&mut b);
}

#[test]
fn the_page_recovers_after_a_daemon_restart() {
    let Some(chromium) = browser_prerequisites() else { return };
    let _one = one_browser_at_a_time();
    let mut d = daemon();
    let mut b = Browser::launch(&chromium, 1000, 800);
    sign_in(&mut b, &d, "operator", true);
    assert!(b.eval("localStorage.length === 1 && sessionStorage.length === 0").as_bool().unwrap());
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    b.wait_for("document.querySelector('#conn').dataset.state === 'reconnecting'", WAIT);
    respawn(&mut d);
    b.wait_for("document.querySelector('#conn').dataset.state === 'online'", WAIT);
    b.wait_for(&format!("document.querySelector(\"{CARD} .badge\")?.innerText === 'CONNECTED'"), WAIT);
    b.wait_for("document.querySelector('#event-log').innerText.includes('re-established')", WAIT);
    // The remembered credential also survives a reload.
    b.navigate(&format!("http://127.0.0.1:{}/", d.port));
    b.wait_for("document.body.dataset.ready === 'cameras'", WAIT);
    assert_clean(&mut b);
}

/// Start the daemon again on the same configuration, ports and data (as systemd would after a restart).
fn respawn(d: &mut Daemon) {
    let stderr = std::fs::OpenOptions::new().append(true).open(&d.stderr_path).unwrap();
    d.child = Command::new(bin())
        .arg("--config")
        .arg(&d.config_path)
        .env("CAMERA_SERVICE_JWT_SECRET", JWT_SECRET)
        .env("CAMERA_SERVICE_API_KEYS_PATH", d.path("keys/api_keys.json"))
        .env_remove("RUST_LOG")
        .env_remove("CAMERA_SERVICE_FUZZ_CASES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    wait_until("the daemon's port", WAIT, || std::net::TcpStream::connect(("127.0.0.1", d.port)).is_ok());
}

fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if entry.file_name() == name {
            return Some(p);
        }
    }
    None
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX)
}

/// A 2×2 JPEG made by ffmpeg (the listing reads its size).
fn tiny_jpeg() -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=blue:s=64x48", "-frames:v", "1"])
        .args(["-f", "image2pipe", "-c:v", "mjpeg", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success());
    out.stdout
}

/// A files list with more snapshot thumbnails than the connection's rate limit allows in a minute: the page fetches
/// their signed URLs under a budget and retries what the daemon refused, so every thumbnail shows in the end and none
/// says "Preview unavailable".
#[test]
fn thumbnails_load_despite_the_per_connection_rate_limit() {
    let Some(chromium) = browser_prerequisites() else { return };
    let _one = one_browser_at_a_time();
    // Sign-in and the camera card take ~3 calls, the files view 2 lists + 12 thumbnails, page two 1 + 12: over 25.
    let d = Daemon::builder().yaml(VIRTUAL_CAMERA).env("CAMERA_SERVICE_RATE_RPM", "25").start();
    let jpeg = tiny_jpeg();
    for i in 0..24 {
        std::fs::write(d.path(&format!("snapshots/virtual0_snapshot_2025-01-01_00-00-{i:02}.jpg")), &jpeg).unwrap();
    }
    let mut b = Browser::launch(&chromium, 1200, 900);
    sign_in(&mut b, &d, "viewer", false);
    b.navigate_hash("files");
    let all_shown = "(() => { const l = [...document.querySelectorAll('#snapshot-list li img')]; \
                     return l.length === 12 && l.every((i) => i.complete && i.naturalWidth === 64); })()";
    b.wait_for(all_shown, WAIT);
    b.click("#snapshots-pager button:last-child");
    b.wait_for("document.querySelector('#snapshots-pager')?.innerText.includes('13–24 of 24')", WAIT);
    // The limit's window is a minute: what was refused is asked again after it.
    b.wait_for(all_shown, Duration::from_secs(90));
    let unavailable =
        "[...document.querySelectorAll('#snapshot-list img')].filter((i) => i.alt === 'Preview unavailable').length";
    assert_eq!(b.eval(unavailable), 0);
}
