//! Event fan-out: from `Hub::publish` to the parsed notification in each of 100 connected, authenticated
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
//! machine; the ratio subscribed/baseline is taken over the same run. The clock starts just before `publish` and
//! stops when a client's reader thread has parsed the frame.
//!
//! `cargo bench --bench events_fanout [-- --clients 100 --events 300]`

use std::net::{TcpListener, TcpStream};
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
use crossbeam_channel::{unbounded, Receiver, Sender};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

struct Args {
    clients: usize,
    events: usize,
}

fn args() -> Args {
    let mut a = Args { clients: 100, events: 300 };
    let v: Vec<String> = std::env::args().collect();
    for w in v.windows(2) {
        match w[0].as_str() {
            "--clients" => a.clients = w[1].parse().expect("--clients N"),
            "--events" => a.events = w[1].parse().expect("--events N"),
            _ => {}
        }
    }
    a
}

/// Start the WebSocket server with the session and subscription methods. Returns its port.
fn server(hub: &Hub, auth: &Authenticator, supervisor: &Supervisor) -> u16 {
    let mut config = Config::default();
    config.server.host = "127.0.0.1".into();
    config.server.max_connections = 10_000;
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

fn read_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

fn call(ws: &mut Ws, method: &str, params: Value) -> Value {
    ws.send(Message::text(json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string())).unwrap();
    loop {
        let v = read_json(ws).expect("reply");
        if v.get("id").is_some() {
            assert!(v.get("error").is_none(), "{method}: {v}");
            return v["result"].clone();
        }
    }
}

/// A client: authenticate, subscribe (or not), report ready, then report every event's sequence number and
/// the instant it was parsed.
fn client(port: u16, token: String, subscribe: bool, ready: Sender<()>, tx: Sender<(u64, Instant)>) {
    std::thread::Builder::new()
        .name("bench-client".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            let (mut ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/ws")).expect("connect");
            if let MaybeTlsStream::Plain(s) = ws.get_ref() {
                let _ = s.set_nodelay(true);
            }
            let r = call(&mut ws, "authenticate", json!({"auth_token": token}));
            assert_eq!(r["authenticated"], true);
            if subscribe {
                let topics = json!({"topics": ["recording.start", "recording.stop"], "filters": {"device": "camera0"}});
                call(&mut ws, "subscribe_events", topics);
            }
            ready.send(()).unwrap();
            while let Some(v) = read_json(&mut ws) {
                let at = Instant::now();
                if let Some(seq) = v["params"]["seq"].as_u64() {
                    if tx.send((seq, at)).is_err() {
                        return;
                    }
                }
            }
        })
        .unwrap();
}

/// Publish one event and wait until `n` clients have it: (each client's latency, the last one's), in ms.
fn one(
    hub: &Hub,
    rx: &Receiver<(u64, Instant)>,
    n: usize,
    seq: u64,
    make: impl FnOnce(u64) -> Notification,
) -> (Vec<f64>, f64) {
    let note = make(seq);
    let t0 = Instant::now();
    hub.publish(note);
    let deadline = t0 + Duration::from_secs(5);
    let mut lat = Vec::with_capacity(n);
    while lat.len() < n {
        let left = deadline.checked_duration_since(Instant::now()).expect("an event did not reach every client in 5 s");
        let (s, at) = rx.recv_timeout(left).expect("an event did not reach every client in 5 s");
        assert_eq!(s, seq, "events arrive in order");
        lat.push(at.duration_since(t0).as_secs_f64() * 1e3);
    }
    let last = lat.iter().cloned().fold(0.0, f64::max);
    (lat, last)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() {
    let a = args();
    let hub = Hub::new();
    let auth = Authenticator::new(b"fanout-bench-secret-0123456789abcdef", "/nonexistent/keys.json".into(), 1_000_000);
    let supervisor = Supervisor::new(Shutdown::new());
    let port = server(&hub, &auth, &supervisor);
    let (ready_tx, ready_rx) = unbounded();
    let (base_tx, base_rx) = unbounded();
    let (sub_tx, sub_rx) = unbounded();
    for i in 0..2 * a.clients {
        let subscribe = i % 2 == 1;
        let tx = if subscribe { sub_tx.clone() } else { base_tx.clone() };
        client(port, auth.issue(&format!("c{i}"), Role::Viewer, 3600), subscribe, ready_tx.clone(), tx);
    }
    for _ in 0..2 * a.clients {
        ready_rx.recv_timeout(Duration::from_secs(30)).expect("clients connect");
    }
    let counts = hub.interest().counts();
    assert_eq!((counts.subscribed as usize, counts.default as usize), (a.clients, a.clients));

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
    // Warm-up (first frames allocate buffers), not measured.
    let mut seq = 0;
    for _ in 0..20 {
        seq += 1;
        one(&hub, &base_rx, a.clients, seq, baseline);
        seq += 1;
        one(&hub, &sub_rx, a.clients, seq, subscribed);
    }
    let (mut base_all, mut base_last, mut sub_all, mut sub_last) = (vec![], vec![], vec![], vec![]);
    for _ in 0..a.events {
        seq += 1;
        let (l, last) = one(&hub, &base_rx, a.clients, seq, baseline);
        base_all.extend(l);
        base_last.push(last);
        seq += 1;
        let (l, last) = one(&hub, &sub_rx, a.clients, seq, subscribed);
        sub_all.extend(l);
        sub_last.push(last);
        std::thread::sleep(Duration::from_millis(2));
    }
    let row = |label: &str, all: &mut Vec<f64>, last: &mut Vec<f64>| {
        let r = (pct(all, 50.0), pct(all, 99.0), pct(last, 50.0), pct(last, 99.0), pct(last, 100.0));
        println!(
            "{label:<44} per client p50 {:.3} ms  p99 {:.3} ms | last of {} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            r.0, r.1, a.clients, r.2, r.3, r.4
        );
        r
    };
    println!("{} events of each kind to {} clients each ({} clients connected)", a.events, a.clients, 2 * a.clients);
    let b = row("baseline: camera_status_update, never subscribed", &mut base_all, &mut base_last);
    let s = row("subscribed: recording.start, device filter", &mut sub_all, &mut sub_last);
    println!(
        "ratio subscribed/baseline: per-client p99 {:.2}x, last-client p99 {:.2}x; goal last-client p99 <= 5 ms: {}",
        s.1 / b.1,
        s.3 / b.3,
        if s.3 <= 5.0 { "met" } else { "NOT met" }
    );
    println!(
        "{}",
        json!({"bench": "events_fanout", "clients": a.clients, "events": a.events,
               "baseline_p99_ms": b.3, "subscribed_p99_ms": s.3, "baseline_client_p99_ms": b.1,
               "subscribed_client_p99_ms": s.1, "ratio_last_p99": s.3 / b.3})
    );
    supervisor.shutdown().trigger();
    supervisor.join_all(Duration::from_secs(3));
}
