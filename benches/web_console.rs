//! Web console first load, measured in headless Chromium against the real daemon (release build) with the virtual
//! camera: time from navigation start to a usable camera list (the page's `cameras-ready` mark: signed in with a
//! remembered credential, camera cards rendered), with the HTTP cache cleared before every load.
//!
//! Baseline, in the same run and browser: a bare page that does only the protocol work the console needs for that
//! list (open the WebSocket, `authenticate`, `get_camera_list`). The ratio is what the console's own files, parsing
//! and rendering add. Runs alternate console / baseline; medians and the median of per-pair ratios are reported.
//!
//! Run: `cargo bench --bench web_console` (`WEB_BENCH_N`, default 15 pairs). Needs `chromium` and `ffmpeg`.

#[allow(unsafe_code)] // the test support calls libc (geteuid, mknod)
#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

#[path = "../tests/web/cdp.rs"]
#[allow(dead_code)]
mod cdp;

mod web {
    pub fn on_path(name: &str) -> Option<std::path::PathBuf> {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| std::path::PathBuf::from(d).join(name))
            .find(|p| p.is_file())
    }
}

use std::time::Duration;

use serde_json::json;

const VIRTUAL_CAMERA: &str =
    "camera:\n  virtual:\n    - name: Test pattern\n      width: 640\n      height: 480\n      fps: 15\n      pattern: testsrc2\n";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The baseline: the same protocol work as the console and nothing else, run by a script the browser injects into
/// a document of the daemon's own origin (its tiny 404 page at `BASELINE_PATH`), so that both loads have the same
/// origin and network path. Chromium refuses WebSocket connections to loopback from other origins (`data:`).
fn baseline_script(port: u16, token: &str) -> String {
    format!(
        "if (location.pathname === '{BASELINE_PATH}') {{\
         const ws = new WebSocket('ws://127.0.0.1:{port}/ws');\
         ws.onopen = () => ws.send(JSON.stringify({{jsonrpc:'2.0',id:1,method:'authenticate',params:{{auth_token:'{token}'}}}}));\
         ws.onmessage = (e) => {{ const m = JSON.parse(e.data);\
           if (m.id === 1) ws.send(JSON.stringify({{jsonrpc:'2.0',id:2,method:'get_camera_list'}}));\
           if (m.id === 2) {{ document.body.textContent = m.result.cameras.map(c => c.name).join(', ');\
             performance.mark('cameras-ready'); document.body.dataset.ready = 'cameras'; }} }}; }}"
    )
}

const BASELINE_PATH: &str = "/bench-baseline";

/// Navigate with a cold cache; returns ms from navigation start to the `cameras-ready` mark and to the end of
/// `DOMContentLoaded` (every script fetched and run: what is left after it is the protocol work).
fn load(b: &mut cdp::Browser, url: &str) -> (f64, f64) {
    b.call("Network.clearBrowserCache", json!({}));
    b.navigate("about:blank");
    b.call("Page.navigate", json!({"url": url}));
    b.wait_for("document.body && document.body.dataset.ready === 'cameras'", Duration::from_secs(30));
    let ready = b.eval("performance.getEntriesByName('cameras-ready')[0].startTime").as_f64().unwrap();
    let dcl = b.eval("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd").as_f64().unwrap();
    (ready, dcl)
}

fn main() {
    let Some(chromium) = cdp::find_chromium() else {
        eprintln!("skipped: chromium not found");
        return;
    };
    let n: usize = std::env::var("WEB_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
    let d = support::Daemon::builder().yaml(VIRTUAL_CAMERA).start();
    let token = support::token("viewer", 3600);
    let mut b = cdp::Browser::launch(&chromium, 1200, 820);
    b.call("Network.enable", json!({}));
    let console = format!("http://127.0.0.1:{}/", d.port);
    b.navigate(&console);
    let cred = json!({"token": token, "type": "jwt", "remember": false}).to_string();
    b.eval(&format!("sessionStorage.setItem('camera-service.credential', {})", serde_json::to_string(&cred).unwrap()));
    b.call("Page.addScriptToEvaluateOnNewDocument", json!({"source": baseline_script(d.port, &token)}));
    let bare = format!("http://127.0.0.1:{}{BASELINE_PATH}", d.port);
    // One untimed round each (process start-up, ffmpeg probes of the camera).
    load(&mut b, &console);
    load(&mut b, &bare);
    let (mut ui, mut dom, mut base, mut ratios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (u, d) = load(&mut b, &console);
        let (s, _) = load(&mut b, &bare);
        ui.push(u);
        dom.push(d);
        base.push(s);
        ratios.push(u / s);
    }
    load(&mut b, &console);
    let transferred = b
        .eval("performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation')).filter(e => !e.name.includes('/ws')).reduce((a, e) => a + e.encodedBodySize, 0)")
        .as_f64()
        .unwrap_or(0.0);
    let files = b.eval("performance.getEntriesByType('resource').length").as_u64().unwrap_or(0) + 1;
    let out = json!({
        "bench": "web_console",
        "runs": n,
        "page_weight_bytes": camera_service::web::page_weight(),
        "transferred_bytes": transferred,
        "requests": files,
        "console_first_load_ms_p50": (median(&mut ui) * 10.0).round() / 10.0,
        "console_scripts_done_ms_p50": (median(&mut dom) * 10.0).round() / 10.0,
        "baseline_bare_page_ms_p50": (median(&mut base) * 10.0).round() / 10.0,
        "ratio_p50": (median(&mut ratios) * 100.0).round() / 100.0,
    });
    println!("{out}");
}
