//! A small synchronous Chrome DevTools Protocol client: starts headless Chromium, opens one page and drives it.
//!
//! Written here on tungstenite (already a dependency) instead of using the `headless_chrome` crate: that crate
//! generates the whole protocol at build time (a large compile on our 2-core machines), brings its own copies of
//! tungstenite, ureq and a dozen helpers, and its default features download a browser, which cannot work here.
//! The tests need a dozen commands; this client is a few hundred lines with no async runtime.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::support::TempDir;

/// How long one protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The flags known to work on our machines (no network beyond loopback, running as root).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--remote-debugging-port=0",
];

/// The Chromium binary: `CHROMIUM_BIN`, else `chromium`, `chromium-browser` or `google-chrome` on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM_BIN").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| crate::web::on_path(name))
}

/// One headless browser with one page, closed on drop.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    events: VecDeque<Value>,
    /// Console errors, exceptions and security messages (CSP violations) seen so far.
    pub problems: Vec<String>,
    pub downloads: PathBuf,
    _profile: TempDir,
}

impl Browser {
    /// Start Chromium with a fresh profile and a `width`×`height` window, and attach to a blank page.
    pub fn launch(bin: &Path, width: u32, height: u32) -> Browser {
        let profile = TempDir::new("chromium");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).unwrap();
        let child = Command::new(bin)
            .args(FLAGS)
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(profile.path().join("chromium.log")).unwrap())
            .spawn()
            .expect("start chromium");
        let endpoint = wait_for_endpoint(profile.path());
        let (ws, _) = tungstenite::connect(&endpoint).expect("connect to the DevTools endpoint");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        }
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 1,
            events: VecDeque::new(),
            problems: Vec::new(),
            downloads,
            _profile: profile,
        };
        let target = b.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let attached =
            b.browser_call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.call(domain, json!({}));
        }
        let dir = b.downloads.display().to_string();
        b.browser_call(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": dir, "eventsEnabled": true}),
        );
        b
    }

    /// A command to the browser itself.
    pub fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(None, method, params)
    }

    /// A command to the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).expect("send to chromium");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            assert!(Instant::now() < deadline, "{method}: no answer from chromium within {COMMAND_TIMEOUT:?}");
            let Some(v) = self.read_one() else { continue };
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
            self.note_event(v);
        }
    }

    /// One message, or `None` after the short read timeout.
    fn read_one(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(t)) => serde_json::from_str(&t).ok(),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection failed: {e}"),
        }
    }

    fn note_event(&mut self, v: Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                self.problems.push(format!("exception: {} {}", d["text"], d["exception"]["description"]));
            }
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.problems.push(format!("console.error: {}", p["args"]));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" || p["entry"]["source"] == "security" => {
                self.problems.push(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]));
            }
            _ => {}
        }
        if self.events.len() >= 1000 {
            self.events.pop_front();
        }
        self.events.push_back(v);
    }

    /// Read pending events without blocking for long.
    pub fn pump(&mut self) {
        while let Some(v) = self.read_one() {
            self.note_event(v);
        }
    }

    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(20));
    }

    /// Switch the page's view by its URL fragment (`#files`), as a link would.
    pub fn navigate_hash(&mut self, fragment: &str) {
        let f = serde_json::to_string(&format!("#{fragment}")).unwrap();
        self.eval(&format!("location.hash = {f}"));
    }

    /// Evaluate `expr` in the page (promises awaited) and return its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating `{expr}` threw: {}", e["exception"]["description"]);
        }
        r["result"]["value"].clone()
    }

    /// Wait until `expr` is truthy; returns its value. Panics with `expr` and the page's problems on timeout.
    pub fn wait_for(&mut self, expr: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(&format!("(() => {{ try {{ return ({expr}); }} catch (e) {{ return null; }} }})()"));
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                self.pump();
                let text = self.eval("document.body ? document.body.innerText.slice(0, 2000) : ''");
                panic!(
                    "timed out after {timeout:?} waiting for `{expr}`\npage text: {text}\nproblems: {:#?}",
                    self.problems
                );
            }
            self.pump();
        }
    }

    /// Click the centre of the first element matching `selector` with real mouse events.
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let expr = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; e.scrollIntoView({{block: 'center'}}); \
             const r = e.getBoundingClientRect(); return r.width > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null; }})()"
        );
        let at = self.wait_for(&expr, Duration::from_secs(10));
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Focus `selector` and type `text` as keyboard input.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        self.wait_for(&format!("document.querySelector({sel})"), Duration::from_secs(10));
        self.eval(&format!("document.querySelector({sel}).focus()"));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap()
    }

    /// Problems other than those matching one of `allowed` (substrings).
    pub fn unexpected_problems(&mut self, allowed: &[&str]) -> Vec<String> {
        self.pump();
        self.problems.iter().filter(|p| !allowed.iter().any(|a| p.contains(a))).cloned().collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask politely (the browser then ends its helper processes), then make sure.
        let close = json!({"id": 0, "method": "Browser.close"}).to_string();
        let _ = self.ws.send(Message::text(close));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium writes its DevTools port and browser path into `DevToolsActivePort` in the profile once it listens.
fn wait_for_endpoint(profile: &Path) -> String {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return format!("ws://127.0.0.1:{port}{path}");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
    panic!("chromium did not open its DevTools port within 30 s:\n{log}");
}
