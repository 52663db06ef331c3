//! `list_recordings` over 10 000 files: p50/p90/p99 after warm-up, through the daemon's WebSocket (with `ping` on
//! the same connection as the baseline) and in-process (the handler alone).
//!
//! Run: `cargo bench --bench files_listing` (env `FILES_BENCH_N` changes the file count).

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use camera_service::config::Config;
use camera_service::files::{rpc, Files};
use camera_service::rpc::table::invoke;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A small real MP4 (so the metadata path is exercised), or a stub if ffmpeg is missing.
fn sample_mp4(dir: &Path) -> Vec<u8> {
    let p = dir.join("sample.mp4");
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5"])
        .args(["-t", "1", "-c:v", "libx264", "-preset", "ultrafast"])
        .arg(&p)
        .status()
        .is_ok_and(|s| s.success());
    let bytes = if ok { std::fs::read(&p).unwrap() } else { b"\0\0\0\x08free".to_vec() };
    let _ = std::fs::remove_file(&p);
    bytes
}

fn populate(rec: &Path, n: usize, sample: &[u8]) {
    let now = SystemTime::now();
    for i in 0..n {
        let cam = format!("camera{}", i % 4);
        let sub = rec.join(&cam);
        std::fs::create_dir_all(&sub).unwrap();
        let t = now - Duration::from_secs(60 * i as u64 + 3600);
        let name = format!("{cam}_{}.mp4", camera_service::util::timefmt::file_stamp(t));
        let path = sub.join(name);
        std::fs::write(&path, sample).unwrap();
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(t).unwrap();
    }
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0;
    format!("p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  (n={})", at(0.5), at(0.9), at(0.99), v.len())
}

fn measure(warmup: usize, samples: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    for i in 0..warmup {
        f(i);
    }
    (0..samples)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect()
}

struct Ws {
    ws: WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    id: u64,
}

impl Ws {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let req = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": self.id});
        self.ws.send(Message::text(req.to_string())).unwrap();
        loop {
            if let Message::Text(t) = self.ws.read().unwrap() {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == json!(self.id) {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }
}

fn main() {
    let n: usize = std::env::var("FILES_BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let root = std::env::temp_dir().join(format!("camera-service-bench-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for sub in ["recordings", "snapshots", "state", "state/dev"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let t = Instant::now();
    populate(&root.join("recordings"), n, &sample_mp4(&root));
    println!("created {n} recordings in {:.1} s", t.elapsed().as_secs_f64());

    // In-process: the handler alone.
    let mut config = Config::default();
    config.mediamtx.recordings_path = root.join("recordings");
    config.mediamtx.snapshots_path = root.join("snapshots");
    config.state_dir = root.join("state");
    let (files, _owner) = Files::new(Arc::new(config), Arc::new(Default::default));
    let state = rpc::FileMethods { files, urls: camera_service::auth::signed_url::UrlSigner::new(b"bench") };
    let list = |p: serde_json::Value| invoke(rpc::METHODS, &state, "list_recordings", &p);
    let first = Instant::now();
    let r = list(json!({"limit": 100})).unwrap();
    println!(
        "in-process first call (cold index + metadata of 100 files): {:.1} ms",
        first.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(r["total"], n);
    let page = |i: usize| json!({"limit": 100, "offset": (i * 100) % n});
    let v = measure(50, 500, |_| drop(list(json!({"limit": 100})).unwrap()));
    println!("in-process list_recordings limit=100 offset=0:     {}", percentiles(v));

    // Through the daemon.
    let (port, health) = (free_port(), free_port());
    let yaml = format!(
        "server: {{host: 127.0.0.1, port: {port}}}\nhealth_port: {health}\nstate_dir: {s}\n\
         mediamtx: {{enabled: false, recordings_path: {r}, snapshots_path: {p}}}\n\
         camera: {{device_dir: {s}/dev, sysfs_dir: {s}/sys, virtual: []}}\n\
         security: {{health: {{bind_address: 127.0.0.1}}}}\nlogging: {{level: WARNING, file_enabled: false}}\n",
        s = root.join("state").display(),
        r = root.join("recordings").display(),
        p = root.join("snapshots").display(),
    );
    std::fs::write(root.join("config.yaml"), yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_camera-service"))
        .arg("--config")
        .arg(root.join("config.yaml"))
        .env("CAMERA_SERVICE_JWT_SECRET", SECRET)
        // The default 120 requests per minute per connection would stop the measurement.
        .env("CAMERA_SERVICE_RATE_RPM", "100000000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("daemon did not start: {e}"),
        }
    };
    stream.set_nodelay(true).unwrap();
    let (ws, _) =
        tungstenite::client(format!("ws://127.0.0.1:{port}/ws"), tungstenite::stream::MaybeTlsStream::Plain(stream))
            .unwrap();
    let mut c = Ws { ws, id: 0 };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"user_id": "bench", "role": "viewer", "iat": now, "exp": now + 3600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(c.call("authenticate", json!({"auth_token": token}))["authenticated"], true);
    let v = measure(100, 1000, |_| drop(c.call("ping", Value::Null)));
    println!("daemon ping (baseline):                            {}", percentiles(v.clone()));
    let ping_p50 = {
        let mut s = v;
        s.sort();
        s[s.len() / 2]
    };
    let first = Instant::now();
    c.call("list_recordings", json!({"limit": 100, "offset": 5000 % n}));
    println!("daemon first list_recordings (cold caches):        {:.1} ms", first.elapsed().as_secs_f64() * 1e3);
    let v = measure(50, 500, |_| drop(c.call("list_recordings", json!({"limit": 100}))));
    let mut sorted = v.clone();
    sorted.sort();
    println!("daemon list_recordings limit=100 offset=0:         {}", percentiles(v));
    println!(
        "  ratio p50 list_recordings / p50 ping: {:.1}",
        sorted[sorted.len() / 2].as_secs_f64() / ping_p50.as_secs_f64()
    );
    let v = measure(n / 100, 500, |i| drop(c.call("list_recordings", page(i))));
    println!("daemon list_recordings limit=100, paging all:      {}", percentiles(v));
    let v = measure(20, 200, |_| drop(c.call("list_recordings", json!({"limit": 1000}))));
    println!("daemon list_recordings limit=1000:                 {}", percentiles(v));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&root);
}
