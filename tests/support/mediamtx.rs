//! A real MediaMTX server for end-to-end tests, and a logging HTTP proxy for its control API.
//!
//! Each [`RealMediaMtx`] gets its own port for every listener it leaves on (API, RTSP with its RTP/RTCP and
//! multicast ports, HLS, WebRTC with its ICE/UDP port; RTMP, SRT, playback, metrics and pprof are off), its own
//! directory as working directory, and stops by PID (SIGTERM, then SIGKILL; the on-demand publishers it started
//! are stopped by PID too). Find the binary with [`super::prereq::mediamtx_bin`].

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use super::ports::free_port_pair;
use super::prereq::{mediamtx_bin, require, Prereq};
use super::{free_port, unsafe_kill};

/// Every listener port of one MediaMTX.
#[derive(Debug, Clone, Copy)]
pub struct MtxPorts {
    pub api: u16,
    pub rtsp: u16,
    pub rtp: u16,
    pub rtcp: u16,
    pub multicast_rtp: u16,
    pub multicast_rtcp: u16,
    pub hls: u16,
    pub webrtc: u16,
    pub webrtc_udp: u16,
}

impl MtxPorts {
    fn pick() -> MtxPorts {
        // MediaMTX wants each RTP port even, with its RTCP port next to it.
        let (rtp, rtcp) = free_port_pair();
        let (multicast_rtp, multicast_rtcp) = free_port_pair();
        MtxPorts {
            api: free_port(),
            rtsp: free_port(),
            rtp,
            rtcp,
            multicast_rtp,
            multicast_rtcp,
            hls: free_port(),
            webrtc: free_port(),
            webrtc_udp: free_port(),
        }
    }
}

/// A running MediaMTX.
pub struct RealMediaMtx {
    pub ports: MtxPorts,
    pub dir: PathBuf,
    bin: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Log of the current run; earlier runs are kept as `mediamtx.log.<n>`.
    runs: u32,
    /// Top-level configuration appended to the generated file (e.g. `authInternalUsers`).
    extra: String,
}

const START_TIMEOUT: Duration = Duration::from_secs(15);

impl RealMediaMtx {
    /// Start MediaMTX in `dir` with `env` added to its environment (its on-demand commands inherit it). None
    /// when the binary is missing (the test is reported skipped; under `CI=true` it fails).
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Option<RealMediaMtx> {
        RealMediaMtx::start_with(dir, env, "")
    }

    /// [`RealMediaMtx::start`] with `extra` top-level YAML (keys the generated file does not set) appended.
    pub fn start_with(dir: &Path, env: &[(&str, &str)], extra: &str) -> Option<RealMediaMtx> {
        if !require(Prereq::MediaMtx) {
            return None;
        }
        let mut m = RealMediaMtx {
            ports: MtxPorts::pick(),
            dir: dir.to_path_buf(),
            bin: mediamtx_bin().unwrap(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            child: None,
            runs: 0,
            extra: extra.to_string(),
        };
        for attempt in 1..=5 {
            match m.launch() {
                Ok(()) => return Some(m),
                Err(log) if attempt < 5 && log.contains("address already in use") => {
                    eprintln!("MediaMTX start attempt {attempt}: a port was taken meanwhile, retrying with others");
                    m.ports = MtxPorts::pick();
                }
                Err(log) => panic!("MediaMTX did not start: {log}"),
            }
        }
        unreachable!()
    }

    fn config(&self) -> String {
        let p = &self.ports;
        format!(
            "logLevel: debug\nlogDestinations: [stdout]\n\
             api: yes\napiAddress: 127.0.0.1:{api}\n\
             metrics: no\npprof: no\nplayback: no\nrtmp: no\nsrt: no\n\
             rtsp: yes\nrtspTransports: [tcp, udp]\nrtspAddress: 127.0.0.1:{rtsp}\n\
             rtpAddress: 127.0.0.1:{rtp}\nrtcpAddress: 127.0.0.1:{rtcp}\n\
             multicastRTPPort: {mrtp}\nmulticastRTCPPort: {mrtcp}\n\
             hls: yes\nhlsAddress: 127.0.0.1:{hls}\n\
             webrtc: yes\nwebrtcAddress: 127.0.0.1:{webrtc}\nwebrtcLocalUDPAddress: 127.0.0.1:{wudp}\n\
             webrtcIPsFromInterfaces: no\nwebrtcAdditionalHosts: [127.0.0.1]\n{extra}",
            api = p.api,
            rtsp = p.rtsp,
            rtp = p.rtp,
            rtcp = p.rtcp,
            mrtp = p.multicast_rtp,
            mrtcp = p.multicast_rtcp,
            hls = p.hls,
            webrtc = p.webrtc,
            wudp = p.webrtc_udp,
            extra = self.extra,
        )
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("mediamtx.log")
    }

    /// The current run's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Start the process and wait until its API listener is open (it is opened last, after every other one).
    fn launch(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).unwrap();
        let conf = self.dir.join("mediamtx.yml");
        std::fs::write(&conf, self.config()).unwrap();
        if self.runs > 0 {
            let _ = std::fs::rename(self.log_path(), self.dir.join(format!("mediamtx.log.{}", self.runs)));
        }
        self.runs += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.arg(&conf).current_dir(&self.dir).stdin(Stdio::null());
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        // Go reads the zone from TZ; recordings are named in MediaMTX's local time.
        cmd.env("TZ", "UTC");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let ready = format!("[API] listener opened on 127.0.0.1:{}", self.ports.api);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if self.log().contains(&ready) {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}: {}", self.log()));
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("no \"{ready}\" within {START_TIMEOUT:?}: {}", self.log()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash would: its on-demand publishers are left to notice on their own.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same ports (the daemon's configuration names them). A port of the dead process may take
    /// a moment to be released, so "address already in use" is retried for a few seconds.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(log) if Instant::now() < deadline && log.contains("address already in use") => {
                    thread::sleep(Duration::from_millis(200));
                }
                Err(log) => panic!("MediaMTX did not restart: {log}"),
            }
        }
    }

    /// The daemon's `mediamtx:` section for this server (API reached through `api_port`, e.g. a proxy's).
    pub fn daemon_yaml(&self, api_port: u16) -> String {
        let p = &self.ports;
        format!(
            "mediamtx:\n  enabled: true\n  host: 127.0.0.1\n  api_port: {api_port}\n  rtsp_port: {}\n  \
             webrtc_port: {}\n  hls_port: {}\n",
            p.rtsp, p.webrtc, p.hls
        )
    }

    /// `GET` on the control API: (status, JSON body or Null).
    pub fn api_get(&self, route: &str) -> (u16, Value) {
        let (status, body) = http_call(self.ports.api, "GET", route, "", "application/json");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// On-demand publishers (and other commands) MediaMTX started: its direct children.
    fn children(&self) -> Vec<u32> {
        self.pid().map(children_of).unwrap_or_default()
    }
}

impl Drop for RealMediaMtx {
    fn drop(&mut self) {
        let kids = self.children();
        if let Some(mut c) = self.child.take() {
            unsafe_kill(c.id(), 15);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && c.try_wait().ok().flatten().is_none() {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // MediaMTX stops its commands with SIGINT on a clean exit; after a forced one they may linger.
        for pid in kids {
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                unsafe_kill(pid, 9);
            }
        }
    }
}

/// Direct children of `pid` (from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let parent = pid.to_string();
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)) == Some(parent.as_str())
        })
        .collect()
}

/// An HTTP response: status, headers (names lower-cased), body.
pub type HttpReply = (u16, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 request to 127.0.0.1:`port` on a fresh connection: (status, body).
pub fn http_call(port: u16, method: &str, target: &str, body: &str, content_type: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = http_exchange(port, method, target, body, content_type);
    (status, body)
}

/// As [`http_call`], with the response headers (names lower-cased).
pub fn http_exchange(port: u16, method: &str, target: &str, body: &str, content_type: &str) -> HttpReply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw).unwrap_or_else(|| panic!("bad HTTP response: {}", String::from_utf8_lossy(&raw)))
}

fn parse_response(raw: &[u8]) -> Option<HttpReply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Some((status, headers, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// A logging proxy for a control API

/// One request the daemon made and the answer it got.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub query: String,
    pub body: String,
    pub status: u16,
    pub response: String,
}

impl Exchange {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn response_json(&self) -> Value {
        serde_json::from_str(&self.response).unwrap_or(Value::Null)
    }
}

/// An HTTP/1.1 proxy on 127.0.0.1 that forwards every request to a control API (the real MediaMTX or the fake)
/// and logs the exchange, so a test sees exactly what the daemon asked and what it was told. Each forwarded
/// request uses a fresh upstream connection; when the upstream cannot be reached the client's connection is
/// closed without an answer.
pub struct ApiProxy {
    pub port: u16,
    log: Arc<Mutex<Vec<Exchange>>>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl ApiProxy {
    pub fn start(upstream: u16) -> ApiProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let accept = thread::Builder::new()
            .name("api-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (l, s) = (l.clone(), s.clone());
                    let _ = thread::Builder::new().name("api-proxy-conn".into()).spawn(move || {
                        proxy_connection(conn, upstream, &l, &s);
                    });
                }
            })
            .unwrap();
        ApiProxy { port, log, stop, accept: Some(accept) }
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().clone()
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// One parsed request: (method, target, body).
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> Option<(String, String, String)> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match conn.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut parts = head.lines().next()?.split(' ');
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + 4 + length {
        match conn.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end + 4..head_end + 4 + length]).to_string();
    buf.drain(..head_end + 4 + length);
    Some((method, target, body))
}

fn proxy_connection(mut conn: TcpStream, upstream: u16, log: &Mutex<Vec<Exchange>>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    while let Some((method, target, body)) = read_request(&mut conn, &mut buf, stop) {
        let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
        let _ = up.set_read_timeout(Some(Duration::from_secs(30)));
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{upstream}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if up.write_all(head.as_bytes()).and_then(|_| up.write_all(body.as_bytes())).is_err() {
            return;
        }
        let mut raw = Vec::new();
        let _ = up.read_to_end(&mut raw);
        let Some((status, headers, resp)) = parse_response(&raw) else { return };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        log.lock().push(Exchange {
            method,
            path: path.to_string(),
            query: query.to_string(),
            body,
            status,
            response: String::from_utf8_lossy(&resp).to_string(),
        });
        let ct = headers.iter().find(|(k, _)| k == "content-type").map_or("text/plain", |(_, v)| v.as_str());
        let out = format!("HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n", resp.len());
        if conn.write_all(out.as_bytes()).and_then(|_| conn.write_all(&resp)).is_err() {
            return;
        }
    }
}
