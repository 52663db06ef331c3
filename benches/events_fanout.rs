//! Event fan-out: from `Hub::publish` to the complete notification frame at each of 100 connected, authenticated
//! WebSocket clients (goal: p99 ≤ 5 ms to the last of 100 subscribed clients).
//!
//! Runs the daemon's WebSocket server in-process (the same epoll workers, dispatcher and hub as the daemon, with
//! the `authenticate` and subscription methods) on an ephemeral 127.0.0.1 port. Two groups of clients stay
//! connected for the whole run:
//! - **baseline**: N clients that never subscribed, receiving the Python notification `camera_status_update`
//!   (today's path, as every Python client gets it);
//! - **subscribed**: N clients subscribed to `recording.start` and `recording.stop` with a `device` filter,
//!   receiving `recording.start` events about that device (topic rendering, timestamp, filter).
//!
//! A baseline event reaches only the baseline group and a subscribed event only the subscribed group, so each
//! measured event goes to exactly N clients. The two kinds alternate, one pair per round, so both see the same
//! machine; the ratio subscribed/baseline is taken over the same run.
//!
//! The measuring side must not make the tail it measures: all 2N client sockets are read by ONE thread with epoll
//! (non-blocking sockets, a minimal parser for the server's unmasked frames), pinned to one CPU while the server's
//! threads and the publishing thread are pinned to another (`--no-pin` leaves scheduling to the kernel). The clock
//! starts just before `publish` and stops when the reader has a client's complete frame (one clock read per
//! `read` call; the frame's method and sequence number are checked after that).
//!
//! `cargo bench --bench events_fanout [-- --clients 100 --events 300 --workers N --no-pin]`

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camera_service::auth::{Authenticator, Role};
use camera_service::config::Config;
use camera_service::events::Topic;
use camera_service::http::server::HttpServer;
use camera_service::http::Response;
use camera_service::process::heartbeat::Heartbeats;
use camera_service::process::status::Components;
use camera_service::process::{Shutdown, Supervisor};
use camera_service::rpc::dispatch::{Dispatcher, Limits};
use camera_service::rpc::events::EventMethods;
use camera_service::rpc::metrics::Metrics;
use camera_service::rpc::notify::{Hub, Notification};
use camera_service::rpc::Table;
use camera_service::sys::poll::{Epoll, Events};
use crossbeam_channel::{unbounded, Receiver, Sender};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

const BASELINE_METHOD: &[u8] = br#"{"jsonrpc":"2.0","method":"camera_status_update","#;
const SUBSCRIBED_METHOD: &[u8] = br#"{"jsonrpc":"2.0","method":"recording.start","#;

struct Args {
    clients: usize,
    events: usize,
    /// Connection workers; default: what the daemon starts on this machine.
    workers: usize,
    pin: bool,
}

fn args() -> Args {
    let default_workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
    let mut a = Args { clients: 100, events: 300, workers: default_workers, pin: true };
    let v: Vec<String> = std::env::args().collect();
    for (i, arg) in v.iter().enumerate() {
        let next = || v.get(i + 1).and_then(|s| s.parse().ok());
        match arg.as_str() {
            "--clients" => a.clients = next().expect("--clients N"),
            "--events" => a.events = next().expect("--events N"),
            "--workers" => a.workers = next().expect("--workers N"),
            "--no-pin" => a.pin = false,
            _ => {}
        }
    }
    a
}

/// The CPUs this process may run on.
#[allow(unsafe_code)] // sched_getaffinity: std has no affinity API
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set, zeroed and filled by the kernel for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![];
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// Pin the calling thread (and the threads it starts afterwards, which inherit it) to `cpu`.
#[allow(unsafe_code)] // sched_setaffinity: std has no affinity API
fn pin_current_thread(cpu: usize) {
    // SAFETY: `set` is a plain bit set; pid 0 is the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(rc, 0, "sched_setaffinity(cpu {cpu}): {}", std::io::Error::last_os_error());
}

/// Start the WebSocket server with the session and subscription methods. Returns its port.
fn server(hub: &Hub, auth: &Authenticator, supervisor: &Supervisor, workers: usize) -> u16 {
    let mut config = Config::default();
    config.server.host = "127.0.0.1".into();
    config.server.max_connections = 10_000;
    config.server.worker_threads = workers;
    let config = Arc::new(config);
    let events = EventMethods {
        hub: hub.clone(),
        device_id: Arc::new(|id: &str| Ok(camera_service::events::canonical_device(id))),
    };
    let table = Table::new()
        .with(auth.clone(), camera_service::rpc::session::METHODS)
        .with(events, camera_service::rpc::events::METHODS);
    let names: Vec<&'static str> = table.names();
    let metrics = Arc::new(Metrics::new(&names));
    let limits = Limits { max_batch: 100, reply_budget: config.server.max_message_size };
    let ctx = Arc::new(camera_service::ws::Context {
        config: config.clone(),
        dispatcher: Dispatcher::new(table, auth.clone(), metrics.clone(), limits),
        hub: hub.clone(),
        metrics,
        components: Components::default(),
        heartbeats: Heartbeats::default(),
    });
    // The health port's server is required by the WebSocket server (it serves plain GETs handed over).
    let health = TcpListener::bind("127.0.0.1:0").unwrap();
    let http =
        HttpServer::start(health, Arc::new(|_| Response::text(404, "not found")), Components::default(), supervisor)
            .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    camera_service::ws::start(ctx, listener, http, supervisor).unwrap();
    port
}

fn call(ws: &mut Ws, method: &str, params: Value) -> Value {
    ws.send(Message::text(json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string())).unwrap();
    loop {
        let Message::Text(t) = ws.read().expect("reply") else { continue };
        let v: Value = serde_json::from_str(&t).expect("JSON reply");
        if v.get("id").is_some() {
            assert!(v.get("error").is_none(), "{method}: {v}");
            return v["result"].clone();
        }
    }
}

/// Connect, authenticate and subscribe (or not) with a blocking tungstenite client, then hand back the bare socket
/// for the reader. Nothing is published during set-up, so tungstenite holds no unread frame.
fn connect(port: u16, token: &str, subscribe: bool) -> TcpStream {
    let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/ws")).expect("connect");
    let r = call(&mut ws, "authenticate", json!({"auth_token": token}));
    assert_eq!(r["authenticated"], true);
    if subscribe {
        let topics = json!({"topics": ["recording.start", "recording.stop"], "filters": {"device": "camera0"}});
        call(&mut ws, "subscribe_events", topics);
    }
    let MaybeTlsStream::Plain(stream) = ws.into_inner() else { unreachable!("plain ws://") };
    stream.set_nodelay(true).unwrap();
    stream.set_nonblocking(true).unwrap();
    stream
}

/// One client as the reader sees it.
struct Client {
    stream: TcpStream,
    /// Bytes of an incomplete frame.
    buf: Vec<u8>,
    subscribed: bool,
    last_seq: u64,
}

/// One complete server frame at the start of `buf`: (opcode, payload range, frame length), or `None` if more bytes
/// are needed. Server frames are never masked.
fn parse_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames are not masked");
    let (len, head) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (buf.len() >= head + len).then(|| (buf[0] & 0x0f, head..head + len, head + len))
}

/// The value of `"seq":` in a notification's JSON text.
fn seq_of(text: &[u8]) -> u64 {
    let key = br#""seq":"#;
    let at = text.windows(key.len()).position(|w| w == key).expect("notification has a seq") + key.len();
    text[at..].iter().take_while(|b| b.is_ascii_digit()).fold(0, |n, b| n * 10 + u64::from(b - b'0'))
}

/// The reader: every client socket in one epoll set. Reports each event's arrival instants once all `per_event`
/// clients have it.
fn reader(mut clients: Vec<Client>, per_event: usize, cpu: Option<usize>, done: Sender<(u64, Vec<Instant>)>) {
    if let Some(cpu) = cpu {
        pin_current_thread(cpu);
    }
    let epoll = Epoll::new().unwrap();
    for (i, c) in clients.iter().enumerate() {
        epoll.add(c.stream.as_raw_fd(), i as u64).unwrap();
    }
    let mut events = Events::with_capacity(256);
    let mut pending: HashMap<u64, Vec<Instant>> = HashMap::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = epoll.wait(&mut events, Some(Duration::from_millis(200))).unwrap();
        for e in 0..n {
            let c = &mut clients[events.get(e).0 as usize];
            loop {
                let got = match c.stream.read(&mut chunk) {
                    Ok(0) => return, // the server shut down
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return,
                };
                let at = Instant::now();
                c.buf.extend_from_slice(&chunk[..got]);
                let mut used = 0;
                while let Some((op, payload, len)) = parse_frame(&c.buf[used..]) {
                    let payload = &c.buf[used + payload.start..used + payload.end];
                    match op {
                        1 => {
                            let want = if c.subscribed { SUBSCRIBED_METHOD } else { BASELINE_METHOD };
                            assert!(payload.starts_with(want), "{}", String::from_utf8_lossy(payload));
                            let seq = seq_of(payload);
                            assert!(seq > c.last_seq, "events arrive once, in order");
                            c.last_seq = seq;
                            let times = pending.entry(seq).or_default();
                            times.push(at);
                            if times.len() == per_event {
                                let times = pending.remove(&seq).unwrap();
                                if done.send((seq, times)).is_err() {
                                    return;
                                }
                            }
                        }
                        // A ping (idle for the server's ping interval): answer with a masked pong (zero mask).
                        9 => {
                            let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
                            pong.extend_from_slice(payload);
                            c.stream.write_all(&pong).expect("pong");
                        }
                        8 => return,
                        _ => {}
                    }
                    used += len;
                }
                c.buf.drain(..used);
            }
        }
    }
}

/// The threads of the connection workers (named `ws-worker-N`).
fn worker_threads() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    let tids = tasks.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()));
    tids.filter(|t| {
        std::fs::read_to_string(format!("/proc/self/task/{t}/comm")).is_ok_and(|c| c.starts_with("ws-worker-"))
    })
    .collect()
}

/// CPU time the threads `tids` have used so far, in ns (first field of schedstat). Unlike latency, it hardly
/// depends on what else the machine runs: the server's own cost of a fan-out.
fn cpu_ns(tids: &[String]) -> u64 {
    tids.iter()
        .map(|t| {
            let s = std::fs::read_to_string(format!("/proc/self/task/{t}/schedstat")).unwrap_or_default();
            s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum()
}

/// Per-kind results, in ms: every client's latency, each event's last client, the workers' CPU per event.
#[derive(Default)]
struct Kind {
    all: Vec<f64>,
    last: Vec<f64>,
    cpu: Vec<f64>,
}

/// Publish one event, wait until every client of its group has it, and record the latencies and the workers' CPU
/// time (read before the clock starts and after it stops).
fn one(
    hub: &Hub,
    rx: &Receiver<(u64, Vec<Instant>)>,
    workers: &[String],
    seq: u64,
    make: impl FnOnce(u64) -> Notification,
    into: &mut Kind,
) {
    let note = make(seq);
    let cpu0 = cpu_ns(workers);
    let t0 = Instant::now();
    hub.publish(note);
    let (s, times) = rx.recv_timeout(Duration::from_secs(5)).expect("an event did not reach every client in 5 s");
    assert_eq!(s, seq, "events complete in order");
    let cpu = cpu_ns(workers).saturating_sub(cpu0);
    let lat: Vec<f64> = times.iter().map(|at| at.duration_since(t0).as_secs_f64() * 1e3).collect();
    into.last.push(lat.iter().cloned().fold(0.0, f64::max));
    into.all.extend(lat);
    into.cpu.push(cpu as f64 / 1e6);
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() {
    let a = args();
    let cpus = allowed_cpus();
    // Server and publisher on the first allowed CPU, the reader on the last one.
    let (server_cpu, reader_cpu) = match (a.pin, cpus.first(), cpus.last()) {
        (true, Some(&s), Some(&r)) if s != r => (Some(s), Some(r)),
        _ => (None, None),
    };
    if let Some(cpu) = server_cpu {
        pin_current_thread(cpu);
    }
    let hub = Hub::new();
    let auth = Authenticator::new(b"fanout-bench-secret-0123456789abcdef", "/nonexistent/keys.json".into(), 1_000_000);
    let supervisor = Supervisor::new(Shutdown::new());
    let port = server(&hub, &auth, &supervisor, a.workers);
    let clients: Vec<Client> = (0..2 * a.clients)
        .map(|i| {
            // The acceptor deals connections to the workers in turn: alternate the groups every `workers`
            // connections so each group is spread over every worker, as independent clients would be.
            let subscribed = (i / a.workers.max(1)) % 2 == 1;
            let stream = connect(port, &auth.issue(&format!("c{i}"), Role::Viewer, 3600), subscribed);
            Client { stream, buf: Vec::new(), subscribed, last_seq: 0 }
        })
        .collect();
    let counts = hub.interest().counts();
    assert_eq!((counts.subscribed as usize, counts.default as usize), (a.clients, a.clients));
    let (done_tx, done_rx) = unbounded();
    let per_event = a.clients;
    let reader_thread = std::thread::Builder::new()
        .name("bench-reader".into())
        .spawn(move || reader(clients, per_event, reader_cpu, done_tx))
        .unwrap();

    let baseline = |seq: u64| {
        Notification::per_host(&[Topic::CameraStatusUpdate], Some("/dev/video0"), move |host| {
            json!({"device": "/dev/video0", "status": "CONNECTED", "name": "Camera 0", "resolution": "1920x1080",
                   "fps": 30, "streams": {"rtsp": format!("rtsp://{}:8554/camera0", host.unwrap_or("127.0.0.1"))},
                   "seq": seq})
        })
    };
    // Only the topic (a `recording_status_update` would also reach the baseline group).
    let subscribed = |seq: u64| {
        let params = json!({"device": "/dev/video0", "status": "STARTED", "filename": "camera0_2026-01-01_00-00-00.mp4",
                            "duration": null, "session_id": "s", "seq": seq});
        Notification::event(Topic::RecordingStart, Some("/dev/video0"), params)
    };
    let workers = worker_threads();
    assert_eq!(workers.len(), a.workers, "worker threads found: {workers:?}");
    // Warm-up (first frames allocate buffers), not measured.
    let mut seq = 0;
    let mut warm = Kind::default();
    for _ in 0..20 {
        seq += 1;
        one(&hub, &done_rx, &workers, seq, baseline, &mut warm);
        seq += 1;
        one(&hub, &done_rx, &workers, seq, subscribed, &mut warm);
    }
    let (mut base, mut sub) = (Kind::default(), Kind::default());
    for _ in 0..a.events {
        seq += 1;
        one(&hub, &done_rx, &workers, seq, baseline, &mut base);
        seq += 1;
        one(&hub, &done_rx, &workers, seq, subscribed, &mut sub);
        std::thread::sleep(Duration::from_millis(2));
    }
    let row = |label: &str, k: &mut Kind| {
        let cpu_mean = k.cpu.iter().sum::<f64>() / k.cpu.len() as f64;
        let r = (pct(&mut k.all, 50.0), pct(&mut k.all, 99.0), pct(&mut k.last, 50.0), pct(&mut k.last, 99.0));
        let max = pct(&mut k.last, 100.0);
        println!(
            "{label:<44} per client p50 {:.3} ms  p99 {:.3} ms | last of {} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms \
             | workers' CPU per event {:.3} ms",
            r.0, r.1, a.clients, r.2, r.3, max, cpu_mean
        );
        (r.0, r.1, r.2, r.3, cpu_mean)
    };
    let pinning = match (server_cpu, reader_cpu) {
        (Some(s), Some(r)) => format!("server and publisher on CPU {s}, reader on CPU {r}"),
        _ => "not pinned".to_string(),
    };
    println!(
        "{} events of each kind to {} clients each ({} clients connected, {} workers, {pinning})",
        a.events,
        a.clients,
        2 * a.clients,
        a.workers
    );
    let b = row("baseline: camera_status_update, never subscribed", &mut base);
    let s = row("subscribed: recording.start, device filter", &mut sub);
    println!(
        "ratio subscribed/baseline: per-client p99 {:.2}x, last-client p99 {:.2}x; goal last-client p99 <= 5 ms: {}",
        s.1 / b.1,
        s.3 / b.3,
        if s.3 <= 5.0 { "met" } else { "NOT met" }
    );
    println!(
        "{}",
        json!({"bench": "events_fanout", "clients": a.clients, "events": a.events, "workers": a.workers,
               "pinned": server_cpu.is_some(), "baseline_p99_ms": b.3, "subscribed_p99_ms": s.3,
               "baseline_client_p99_ms": b.1, "subscribed_client_p99_ms": s.1, "ratio_last_p99": s.3 / b.3,
               "baseline_last_p50_ms": b.2, "subscribed_last_p50_ms": s.2,
               "baseline_worker_cpu_ms": b.4, "subscribed_worker_cpu_ms": s.4})
    );
    drop(done_rx);
    supervisor.shutdown().trigger();
    supervisor.join_all(Duration::from_secs(3));
    let _ = reader_thread.join();
}
