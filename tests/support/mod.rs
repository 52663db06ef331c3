//! Test support: temp dirs, a real daemon process on ephemeral ports, and a blocking WebSocket JSON-RPC client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub mod mediamtx;
pub mod mjpeg;
pub mod ports;
pub mod prereq;

pub use ports::free_port;
pub use prereq::{missing, require, require_all, Prereq};

pub const JWT_SECRET: &str = "integration-test-secret-0123456789abcdef0123456789";

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "camera-service-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `LLVM_PROFILE_FILE` when a coverage run set it, for a child started with `env_clear()`: an instrumented daemon
/// then writes its profile where the run collects it (the variable is no input of the daemon).
pub fn profile_env() -> Option<(&'static str, std::ffi::OsString)> {
    std::env::var_os("LLVM_PROFILE_FILE").map(|v| ("LLVM_PROFILE_FILE", v))
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_camera-service")
}

/// An HS256 token as the Python service issues them.
pub fn token(role: &str, ttl_secs: i64) -> String {
    token_with(JWT_SECRET, role, ttl_secs)
}

pub fn token_with(secret: &str, role: &str, ttl_secs: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({"user_id": format!("test-{role}"), "role": role, "iat": now, "exp": now + ttl_secs});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Prepares the daemon's directory (`recordings`, `snapshots`, `state`, ... exist) before the daemon starts.
pub type BeforeStart = Box<dyn FnOnce(&Path)>;

/// How to start a daemon. `yaml` is appended to a base config that sets ports, data dirs and disables MediaMTX.
#[derive(Default)]
pub struct DaemonBuilder {
    pub yaml: String,
    pub env: Vec<(String, String)>,
    /// Variables the daemon must not inherit (nor get from the harness, e.g. the JWT secret).
    pub env_removed: Vec<String>,
    pub args: Vec<String>,
    pub before_start: Option<BeforeStart>,
    /// Start the daemon under `ulimit -n <n>` (soft and hard), so it cannot raise its descriptor limit.
    pub fd_limit: Option<u32>,
    /// Run this command line instead of the test build's binary (e.g. an emulator and a cross-built binary).
    pub program: Option<Vec<String>>,
}

impl DaemonBuilder {
    pub fn yaml(mut self, y: &str) -> Self {
        self.yaml.push_str(y);
        self.yaml.push('\n');
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn without_env(mut self, k: &str) -> Self {
        self.env_removed.push(k.into());
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }
    /// Runs `f` on the daemon's directory before the daemon starts (files it must find at start-up).
    pub fn before_start(mut self, f: impl FnOnce(&Path) + 'static) -> Self {
        self.before_start = Some(Box::new(f));
        self
    }
    pub fn fd_limit(mut self, n: u32) -> Self {
        self.fd_limit = Some(n);
        self
    }
    /// Start `program[0]` with the rest of `program` as its first arguments, instead of [`bin`]. Its process must
    /// be the daemon's (signals go to it), as with `qemu-user`.
    pub fn program(mut self, program: &[String]) -> Self {
        self.program = Some(program.to_vec());
        self
    }
    pub fn start(self) -> Daemon {
        Daemon::start_with(self)
    }
}

/// A running daemon process, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub health_port: u16,
    pub dir: TempDir,
    pub config_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Daemon {
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    pub fn start() -> Daemon {
        DaemonBuilder::default().start()
    }

    /// Start on fresh ports. Another process may take a port between our pick and the daemon's bind: the daemon
    /// then exits with "Address already in use" before logging that it is ready, and we try again with others.
    fn start_with(mut b: DaemonBuilder) -> Daemon {
        let dir = TempDir::new("daemon");
        let d = dir.path();
        for sub in ["recordings", "snapshots", "state", "dev", "keys"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        if let Some(f) = b.before_start.take() {
            f(d);
        }
        let config_path = d.join("config.yaml");
        let stderr_path = d.join("stderr.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (port, health_port) = (free_port(), free_port());
            let base = format!(
                "server:\n  host: 127.0.0.1\n  port: {port}\n\
                 health_port: {health_port}\n\
                 state_dir: {state}\n\
                 mediamtx:\n  enabled: false\n  recordings_path: {rec}\n  snapshots_path: {snap}\n\
                 camera:\n  device_dir: {dev}\n  sysfs_dir: {dev}/sys\n  poll_interval: 1.0\n\
                 security:\n  health:\n    bind_address: 127.0.0.1\n\
                 logging:\n  level: DEBUG\n  file_enabled: false\n",
                state = d.join("state").display(),
                rec = d.join("recordings").display(),
                snap = d.join("snapshots").display(),
                dev = d.join("dev").display(),
            );
            std::fs::write(&config_path, merge_yaml(&base, &b.yaml)).unwrap();
            let program = b.program.clone().unwrap_or_else(|| vec![bin().to_string()]);
            let mut cmd = match b.fd_limit {
                // `exec` keeps the pid: `child` is the daemon itself.
                Some(n) => {
                    let mut sh = Command::new("sh");
                    sh.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$@\"")).args(&program);
                    sh
                }
                None => {
                    let mut c = Command::new(&program[0]);
                    c.args(&program[1..]);
                    c
                }
            };
            cmd.arg("--config").arg(&config_path).args(&b.args);
            cmd.env("CAMERA_SERVICE_JWT_SECRET", JWT_SECRET)
                .env("CAMERA_SERVICE_API_KEYS_PATH", d.join("keys/api_keys.json"))
                .env_remove("RUST_LOG")
                // The fuzz-test budget is for the test process, not for the daemon (which would warn about it).
                .env_remove("CAMERA_SERVICE_FUZZ_CASES");
            for (k, v) in &b.env {
                cmd.env(k, v);
            }
            for k in &b.env_removed {
                cmd.env_remove(k);
            }
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&stderr_path).unwrap());
            let mut child = cmd.spawn().expect("start daemon");
            match wait_ready(&mut child, &stderr_path, port) {
                Ok(()) => return Daemon { child, port, health_port, dir, config_path, stderr_path },
                Err(log) if attempt < 5 && log.contains("Address already in use") => {
                    eprintln!("daemon start attempt {attempt}: a port was taken meanwhile, retrying with others");
                }
                Err(log) => panic!("daemon did not start: {log}"),
            }
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.url())
    }

    /// A client already authenticated with `role`.
    pub fn client_as(&self, role: &str) -> Client {
        let mut c = self.client();
        let r = c.call("authenticate", json!({"auth_token": token(role, 3600)}));
        assert_eq!(r["result"]["authenticated"], true, "authenticate failed: {r}");
        c
    }

    /// `camera-service api-key create --role <role>` against this daemon's config and key file; returns the key.
    pub fn create_api_key(&self, role: &str) -> String {
        let out = Command::new(bin())
            .args(["api-key", "create", "--role", role, "--name", "test", "--config"])
            .arg(&self.config_path)
            .env("CAMERA_SERVICE_JWT_SECRET", JWT_SECRET)
            .env("CAMERA_SERVICE_API_KEYS_PATH", self.path("keys/api_keys.json"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// SIGTERM and wait; returns (exit code, time taken).
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let t = Instant::now();
        unsafe_kill(self.child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status.code(), t.elapsed());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return (None, t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Daemon {
    /// SIGTERM first, so the daemon stops as in production and an instrumented build writes its coverage profile
    /// (a SIGKILLed process writes none); SIGKILL if it has not exited within [`STOP_WITHIN`].
    fn drop(&mut self) {
        stop_child(&mut self.child, STOP_WITHIN);
    }
}

/// How long a test daemon gets to stop on SIGTERM before it is killed: the daemon's own stop budget is 5 s at
/// most (with recordings to finalise), plus writing a coverage profile in an instrumented build.
pub const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Stop `child`: SIGTERM, wait up to `within` for it to exit, then SIGKILL. Returns true when it exited on its own
/// (or had already exited) before the deadline.
pub fn stop_child(child: &mut Child, within: Duration) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return true;
    }
    unsafe_kill(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Wait until the daemon logs that it is ready on `port` (every listener is bound by then). Err carries its log
/// when it exits first or stays silent for 20 s (it is killed then).
fn wait_ready(child: &mut Child, stderr_path: &Path, port: u16) -> Result<(), String> {
    let ready = format!("ready on ws://127.0.0.1:{port}/");
    let log = || std::fs::read_to_string(stderr_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if log().contains(&ready) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}: {}", log()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("no \"{ready}\" line within 20 s: {}", log()))
}

/// Send `sig` to `pid` (a process this test started; errors such as "no such process" are ignored).
pub fn unsafe_kill(pid: u32, sig: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is a positive id of a child we started.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Later top-level sections replace earlier ones key by key (one level deep), so tests can override the base.
fn merge_yaml(base: &str, extra: &str) -> String {
    let mut b: serde_norway::Value = serde_norway::from_str(base).unwrap();
    if extra.trim().is_empty() {
        return base.to_string();
    }
    let e: serde_norway::Value = serde_norway::from_str(extra).expect("test yaml");
    if let (Some(bm), Some(em)) = (b.as_mapping_mut(), e.as_mapping()) {
        for (k, v) in em {
            match (bm.get_mut(k).and_then(|x| x.as_mapping_mut()), v.as_mapping()) {
                (Some(bsec), Some(esec)) => {
                    for (k2, v2) in esec {
                        bsec.insert(k2.clone(), v2.clone());
                    }
                }
                _ => {
                    bm.insert(k.clone(), v.clone());
                }
            }
        }
    }
    serde_norway::to_string(&b).unwrap()
}

/// A blocking JSON-RPC client over WebSocket. Notifications read while waiting for a reply are kept.
pub struct Client {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    pub notifications: Vec<Value>,
}

impl Client {
    pub fn connect(url: &str) -> Client {
        let (ws, _) = tungstenite::connect(url).expect("websocket connect");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let _ = s.set_nodelay(true);
        }
        Client { ws, next_id: 1, notifications: Vec::new() }
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).unwrap();
    }

    /// Next text message as JSON (waits up to the read timeout).
    pub fn recv(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read") {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                Message::Close(c) => panic!("closed by server: {c:?}"),
                _ => {}
            }
        }
    }

    /// Wait for a text message for at most `d`; None on timeout.
    pub fn recv_timeout(&mut self, d: Duration) -> Option<Value> {
        self.set_timeout(d);
        let r = loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => break Some(serde_json::from_str(&t).unwrap()),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        self.set_timeout(Duration::from_secs(30));
        r
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.set_timeout(d);
    }

    fn set_timeout(&self, d: Duration) {
        if let MaybeTlsStream::Plain(s) = self.ws.get_ref() {
            s.set_read_timeout(Some(d)).unwrap();
        }
    }

    /// Send a request and wait for the reply with the same id (notifications on the way are stored).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = if params.is_null() {
            json!({"jsonrpc": "2.0", "method": method, "id": id})
        } else {
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})
        };
        self.send_text(&req.to_string());
        loop {
            let v = self.recv();
            if v.get("id") == Some(&json!(id)) {
                return v;
            }
            self.notifications.push(v);
        }
    }

    /// `result` of a call, panicking with the reply on error.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    /// Wait for a notification `method` matching `pred`, at most `d`.
    pub fn wait_notification(&mut self, method: &str, d: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        if let Some(i) = self.notifications.iter().position(|n| n["method"] == method && pred(&n["params"])) {
            return Some(self.notifications.remove(i));
        }
        let deadline = Instant::now() + d;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.recv_timeout(left) {
                Some(n) if n["method"] == method && pred(&n["params"]) => return Some(n),
                Some(n) => self.notifications.push(n),
                None => return None,
            }
        }
        None
    }
}

/// The head of `GET path` to 127.0.0.1:port with extra `headers`.
pub fn get_head(port: u16, path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// A raw HTTP GET to 127.0.0.1:port; returns (status, headers lower-cased, body).
pub fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let all: Vec<(&str, &str)> = [("Connection", "close")].into_iter().chain(headers.iter().copied()).collect();
    s.write_all(get_head(port, path, &all).as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[end + 4..].to_vec())
}

/// Poll `f` until it holds; panic naming `what` after `within`. For waits on an event the test cannot be told
/// about directly (a file appearing, a server's state changing). Polls back off from 10 ms to 200 ms, so a quick
/// event is seen quickly and a slow one does not load the machine (or a rate limit).
#[track_caller]
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(10);
    loop {
        if f() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// A line for the person running the tests (a measured figure, a note): written straight to stderr, past
/// libtest's output capture.
pub fn report(line: &str) {
    let test = std::thread::current().name().unwrap_or("<test>").to_string();
    let _ = std::io::stderr().lock().write_all(format!("{test}: {line}\n").as_bytes());
}
