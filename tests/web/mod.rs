//! The web console: its HTTP routes and signed URLs over plain HTTP, and the page itself in headless Chromium
//! driven over the DevTools protocol (with the real MediaMTX for the WebRTC live view).

mod cdp;
mod console;
mod live;
mod routes;
mod webrtc;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::support::{missing, require, token, Daemon, Prereq};
pub use cdp::Browser;

/// A virtual test-pattern camera, as the README's quick start has.
pub const VIRTUAL_CAMERA: &str =
    "camera:\n  virtual:\n    - name: Test pattern\n      width: 640\n      height: 480\n      fps: 15\n      pattern: testsrc2\n";

/// `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join(name)).find(|p| p.is_file())
}

/// Browser tests run one at a time: each starts a daemon, ffmpeg and Chromium, which is plenty for 2 cores.
pub fn one_browser_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Chromium and ffmpeg (the virtual camera), or `None` when the test must skip (under `CI=true`: fail).
pub fn browser_prerequisites() -> Option<PathBuf> {
    if !require(Prereq::Ffmpeg) {
        return None;
    }
    let found = cdp::find_chromium();
    if found.is_none() {
        missing("chromium not found (Debian package `chromium`, or set CHROMIUM_BIN)");
    }
    found
}

/// Open the console of `daemon` and sign in with a token of `role`; returns once the camera list is shown.
pub fn sign_in(b: &mut Browser, daemon: &Daemon, role: &str, remember: bool) {
    sign_in_with(b, daemon, &token(role, 3600), remember);
}

/// Sign in with `credential` (a JWT or an API key, detected automatically).
pub fn sign_in_with(b: &mut Browser, daemon: &Daemon, credential: &str, remember: bool) {
    b.navigate(&format!("http://127.0.0.1:{}/", daemon.port));
    b.type_into("#token", credential);
    if remember {
        b.click("#remember");
    }
    b.click("#signin-submit");
    b.wait_for("document.body.dataset.ready === 'cameras'", Duration::from_secs(20));
}

/// The text of the first element matching `selector` (empty when none).
pub fn text_of(b: &mut Browser, selector: &str) -> String {
    let sel = serde_json::to_string(selector).unwrap();
    b.eval(&format!("document.querySelector({sel})?.innerText ?? ''")).as_str().unwrap_or_default().to_string()
}

/// Keep a screenshot as `target/<name>.png`. The README's picture is `console`; it is also written to
/// `docs/console.png` when `CAMERA_SERVICE_UPDATE_SCREENSHOT=1` (so ordinary test runs leave the committed file alone).
pub fn save_screenshot(name: &str, png: &[u8]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::write(root.join(format!("target/{name}.png")), png);
    if name == "console" && std::env::var("CAMERA_SERVICE_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        std::fs::write(root.join("docs/console.png"), png).unwrap();
    }
}
