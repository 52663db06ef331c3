//! Hot-plug latency: from a device node appearing to `camera_status_update` received by every one of N connected,
//! authenticated WebSocket clients (goal p99 ≤ 5 ms with 100 clients).
//!
//! Runs the release daemon binary on ephemeral 127.0.0.1 ports with a temp device directory, preloading the V4L2
//! test shim (tests/shim/v4l2_shim.c, built here with `cc`) so a plugged node probes as a real capture device
//! through the daemon's ioctl path. Each plug is `mknod(2)` (root needed); the clock starts just before it and
//! stops when a client's reader thread has the parsed notification. Unplug latency is measured the same way.
//!
//! `cargo bench --bench hotplug [-- --clients 100 --plugs 200]`
#![allow(unsafe_code)] // mknod(2) to plug a test device node

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{unbounded, Receiver, Sender};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const SECRET: &str = "hotplug-bench-secret-0123456789abcdef0123456789abcdef";
const NODE_SPEC: &str = "uvcvideo|Bench Cam|usb-0000:00:14.0-1|84a00001|04200001\n\
                         fmt|MJPG|Motion-JPEG\nsize|1920|1080|1/30,1/15\nsize|1280|720|1/30\n\
                         fmt|YUYV|YUYV 4:2:2\nsize|640|480|1/30\n";

struct Args {
    clients: usize,
    plugs: usize,
}

fn args() -> Args {
    let mut a = Args { clients: 100, plugs: 200 };
    let v: Vec<String> = std::env::args().collect();
    for w in v.windows(2) {
        match w[0].as_str() {
            "--clients" => a.clients = w[1].parse().expect("--clients N"),
            "--plugs" => a.plugs = w[1].parse().expect("--plugs N"),
            _ => {}
        }
    }
    a
}

struct Daemon {
    child: Child,
    root: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn build_shim(root: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shim/v4l2_shim.c");
    let out = root.join("v4l2_shim.so");
    let ok = Command::new("cc").args(["-shared", "-fPIC", "-O2", "-o"]).arg(&out).arg(&src).arg("-ldl").status();
    assert!(ok.is_ok_and(|s| s.success()), "building the shim with cc failed");
    out
}

fn start_daemon(root: &Path, port: u16) -> Daemon {
    for sub in ["dev", "rec", "snap", "state"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let config = format!(
        "server:\n  host: 127.0.0.1\n  port: {port}\n  max_connections: 1000\n\
         health_port: {health}\nstate_dir: {d}/state\n\
         mediamtx:\n  enabled: false\n  recordings_path: {d}/rec\n  snapshots_path: {d}/snap\n\
         camera:\n  device_dir: {d}/dev\n  sysfs_dir: {d}/sys\n  poll_interval: 1.0\n  device_range: [0]\n\
         security:\n  health:\n    bind_address: 127.0.0.1\n  rate_limiting:\n    requests_per_minute: 100000\n\
         logging:\n  level: WARNING\n  file_enabled: false\n",
        health = free_port(),
        d = root.display()
    );
    std::fs::write(root.join("config.yaml"), config).unwrap();
    std::fs::write(root.join("spec"), format!("node|{}/dev/video0|{NODE_SPEC}", root.display())).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_camera-service"))
        .arg("--config")
        .arg(root.join("config.yaml"))
        .env("CAMERA_SERVICE_JWT_SECRET", SECRET)
        .env("CAMERA_SERVICE_API_KEYS_PATH", root.join("state/keys.json"))
        .env("LD_PRELOAD", build_shim(root))
        .env("CAMSHIM_SPEC", root.join("spec"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("stderr.log")).unwrap())
        .spawn()
        .expect("start daemon");
    let d = Daemon { child, root: root.to_path_buf() };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "daemon did not open its port");
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

fn token() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({"user_id": "bench", "role": "viewer", "iat": now, "exp": now + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn read_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue
            }
            Err(_) => return None,
        }
    }
}

/// Connect and authenticate; then a reader thread reports (status, arrival time) of each update for video0.
fn client(port: u16, token: &str, tx: Sender<(bool, Instant)>) {
    let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/ws")).expect("connect");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_nodelay(true).unwrap();
    }
    ws.send(Message::text(
        json!({"jsonrpc": "2.0", "method": "authenticate", "params": {"auth_token": token}, "id": 1}).to_string(),
    ))
    .unwrap();
    let r = read_json(&mut ws).expect("authenticate reply");
    assert_eq!(r["result"]["authenticated"], true, "{r}");
    std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            while let Some(v) = read_json(&mut ws) {
                if v["method"] == "camera_status_update" && v["params"]["device"] == "/dev/video0" {
                    let at = Instant::now();
                    if tx.send((v["params"]["status"] == "CONNECTED", at)).is_err() {
                        return;
                    }
                }
            }
        })
        .unwrap();
}

fn mknod(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o660, libc::makedev(81, 0)) };
    assert_eq!(r, 0, "mknod (root needed): {}", std::io::Error::last_os_error());
}

/// Wait for `n` reports with `connected`; returns each client's latency from `t0`, in µs.
fn collect(rx: &Receiver<(bool, Instant)>, n: usize, connected: bool, t0: Instant) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (c, at) = rx.recv_timeout(Duration::from_secs(10)).expect("notification lost (10 s)");
        assert_eq!(c, connected, "unexpected status order");
        out.push(at.duration_since(t0).as_secs_f64() * 1e6);
    }
    out
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[i.clamp(1, v.len()) - 1]
}

fn report(label: &str, v: &mut [f64]) {
    println!(
        "{label:<44} n={:<6} p50 {:>8.0} µs  p90 {:>8.0} µs  p99 {:>8.0} µs  max {:>8.0} µs",
        v.len(),
        pct(v, 50.0),
        pct(v, 90.0),
        pct(v, 99.0),
        pct(v, 100.0)
    );
}

fn main() {
    let a = args();
    let root = std::env::temp_dir().join(format!("camera-service-hotplug-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let port = free_port();
    let daemon = start_daemon(&root, port);
    let (tx, rx) = unbounded();
    let tok = token();
    for _ in 0..a.clients {
        client(port, &tok, tx.clone());
    }
    let node = root.join("dev/video0");
    let (mut each, mut all, mut gone_each, mut gone_all) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // A few unmeasured plugs warm up caches and the daemon's threads.
    for i in 0..a.plugs + 5 {
        let t0 = Instant::now();
        mknod(&node);
        let got = collect(&rx, a.clients, true, t0);
        let t1 = Instant::now();
        std::fs::remove_file(&node).unwrap();
        let gone = collect(&rx, a.clients, false, t1);
        if i >= 5 {
            all.push(got.iter().copied().fold(0.0, f64::max));
            each.extend(got);
            gone_all.push(gone.iter().copied().fold(0.0, f64::max));
            gone_each.extend(gone);
        }
    }
    println!(
        "hot-plug latency, {} clients, {} plugs (node created → notification parsed by the client)",
        a.clients, a.plugs
    );
    report("plug → CONNECTED, per client", &mut each);
    report("plug → CONNECTED, last of all clients", &mut all);
    report("unplug → DISCONNECTED, per client", &mut gone_each);
    report("unplug → DISCONNECTED, last of all clients", &mut gone_all);
    drop(daemon);
}
