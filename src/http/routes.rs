//! The HTTP route table, served on both listeners (the health port, and plain GETs on the WebSocket port): the
//! health and metrics routes built in, plus handlers the daemon's wiring registers for other paths (downloads under
//! `/files/`). Routes read narrow handles, never the whole daemon.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::{Request, Response};
use crate::camera::{CameraStatus, Cameras};
use crate::process::status::{ComponentStatus, Components, State};
use crate::rpc::metrics::{self, Metrics};
use crate::util::timefmt;

/// What the health and metrics routes read.
pub struct Health {
    pub components: Components,
    pub cameras: Cameras,
    pub metrics: Arc<Metrics>,
    /// Monotonic start, for uptime.
    pub started: Instant,
}

/// A handler for requests under a path prefix.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// The route table: built-in health routes, then registered prefixes in registration order, else 404.
pub struct Routes {
    health: Health,
    prefixes: Vec<(&'static str, Handler)>,
}

impl Routes {
    pub fn new(health: Health) -> Routes {
        Routes { health, prefixes: Vec::new() }
    }

    /// Serve every path that starts with `prefix` with `handler`.
    pub fn prefix(
        mut self,
        prefix: &'static str,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> Routes {
        self.prefixes.push((prefix, Arc::new(handler)));
        self
    }

    pub fn route(&self, req: &Request) -> Response {
        let h = &self.health;
        let resp = match req.path.as_str() {
            "/health" | "/health/system" => system(h),
            "/health/cameras" => cameras(h),
            "/health/mediamtx" => mediamtx(h),
            "/health/ready" => ready(h),
            "/health/live" => Response::json(200, &json!({"status": "alive", "timestamp": now()})),
            "/metrics" => Response::new(200, "text/plain; version=0.0.4; charset=utf-8", prometheus(h)),
            "/api/cameras" => api_cameras(h),
            p => match self.prefixes.iter().find(|(prefix, _)| p.starts_with(prefix)) {
                Some((_, handler)) => handler(req),
                None => Response::text(404, "Not Found\n"),
            },
        };
        resp.with_header("Cache-Control", "no-cache, no-store, must-revalidate")
    }
}

fn now() -> String {
    timefmt::rfc3339_millis(SystemTime::now())
}

/// Health status word of a component, as the Python server names them.
fn word(c: Option<&ComponentStatus>) -> &'static str {
    match c.map(|c| c.state) {
        Some(State::Running) => "healthy",
        Some(State::Degraded) => "degraded",
        Some(State::Disabled) => "disabled",
        Some(State::Starting) | Some(State::Stopped) | None => "unhealthy",
    }
}

/// MediaMTX being unreachable is "unhealthy" for its own component but only degrades the daemon: the API keeps
/// serving without it.
fn mediamtx_word(h: &Health) -> &'static str {
    match h.components.get("mediamtx").map(|c| c.state) {
        Some(State::Running) => "healthy",
        Some(State::Disabled) => "disabled",
        _ => "unhealthy",
    }
}

fn component(status: &str, details: String) -> Value {
    json!({"status": status, "details": details, "timestamp": now()})
}

fn camera_details(h: &Health) -> (&'static str, String) {
    let c = h.components.get("camera_monitor");
    let w = word(c.as_ref());
    let details = match &c {
        Some(c) if c.state == State::Running || c.state == State::Degraded => {
            format!("Camera monitor is running with {} cameras", h.cameras.list().len())
        }
        Some(_) => "Camera monitor is not running".to_string(),
        None => "Camera monitor not available".to_string(),
    };
    (w, details)
}

fn mediamtx_details(h: &Health) -> (&'static str, String) {
    let w = mediamtx_word(h);
    let details = match (w, h.components.get("mediamtx")) {
        ("disabled", _) => "MediaMTX integration is disabled (mediamtx.enabled: false)".to_string(),
        ("healthy", _) => "MediaMTX controller is healthy".to_string(),
        (_, Some(c)) if !c.details.is_empty() => format!("MediaMTX controller is unhealthy: {}", c.details),
        (_, Some(_)) => "MediaMTX controller is unhealthy".to_string(),
        (_, None) => "MediaMTX controller not available".to_string(),
    };
    (w, details)
}

/// Every component thread alive and none stopped.
fn service_manager(h: &Health) -> (&'static str, String) {
    let all = h.components.all();
    let stopped: Vec<&str> = all.iter().filter(|(_, c)| c.state == State::Stopped).map(|(n, _)| *n).collect();
    if stopped.is_empty() {
        ("healthy", "Service manager is running".into())
    } else {
        ("unhealthy", format!("Service manager is not running: stopped {}", stopped.join(", ")))
    }
}

fn system(h: &Health) -> Response {
    let (cw, cd) = camera_details(h);
    let (mw, md) = mediamtx_details(h);
    let (sw, sd) = service_manager(h);
    let overall = if cw == "unhealthy" || sw == "unhealthy" {
        "unhealthy"
    } else if cw == "degraded" || mw == "unhealthy" || mw == "degraded" {
        "degraded"
    } else {
        "healthy"
    };
    let body = json!({
        "status": overall,
        "timestamp": now(),
        "components": {
            "mediamtx": component(mw, md),
            "camera_monitor": component(cw, cd),
            "service_manager": component(sw, sd),
        }
    });
    Response::json(if overall == "unhealthy" { 503 } else { 200 }, &body)
}

fn single(status: &str, details: String) -> Response {
    let code = if status == "unhealthy" { 503 } else { 200 };
    Response::json(code, &json!({"status": status, "timestamp": now(), "details": details}))
}

fn cameras(h: &Health) -> Response {
    let (w, d) = camera_details(h);
    single(w, d)
}

fn mediamtx(h: &Health) -> Response {
    let (w, d) = mediamtx_details(h);
    single(w, d)
}

fn ready(h: &Health) -> Response {
    let all = h.components.all();
    let started = all.values().all(|c| c.state != State::Starting && c.state != State::Stopped);
    let mw = mediamtx_word(h);
    let (sw, _) = service_manager(h);
    if started && mw != "unhealthy" && sw == "healthy" {
        Response::json(200, &json!({"status": "ready", "timestamp": now()}))
    } else {
        let body = json!({
            "status": "not_ready",
            "timestamp": now(),
            "details": {"mediamtx": mw, "service_manager": if started { sw } else { "starting" }},
        });
        Response::json(503, &body)
    }
}

fn api_cameras(h: &Health) -> Response {
    let cams: Vec<Value> = h
        .cameras
        .list()
        .iter()
        .filter(|c| c.status == CameraStatus::Connected)
        .map(|c| json!({"device": c.device, "status": c.status.as_str(), "name": c.name, "resolution": c.resolution, "fps": c.fps}))
        .collect();
    let n = cams.len();
    Response::json(200, &json!({"status": "healthy", "timestamp": now(), "cameras": cams, "total": n, "connected": n}))
}

fn prometheus(h: &Health) -> String {
    let m = &h.metrics;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP camera_service_{name} {help}\n# TYPE camera_service_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "camera_service_{name}{labels} {v}");
        }
    };
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        &[(String::new(), h.started.elapsed().as_secs_f64())],
    );
    metric(
        "websocket_connections",
        "gauge",
        "Open WebSocket connections.",
        &[(String::new(), m.active_connections.load(Relaxed) as f64)],
    );
    metric(
        "websocket_connections_total",
        "counter",
        "Accepted TCP connections on the WebSocket port.",
        &[(String::new(), m.total_connections.load(Relaxed) as f64)],
    );
    metric(
        "websocket_rejected_total",
        "counter",
        "Connections refused at the connection limit.",
        &[(String::new(), m.rejected_connections.load(Relaxed) as f64)],
    );
    metric(
        "slow_clients_dropped_total",
        "counter",
        "Clients disconnected because they could not keep up.",
        &[(String::new(), m.dropped_slow_clients.load(Relaxed) as f64)],
    );
    metric(
        "notifications_sent_total",
        "counter",
        "Notification frames queued to clients.",
        &[(String::new(), m.notifications_sent.load(Relaxed) as f64)],
    );
    let per = |f: &dyn Fn(&metrics::MethodStats) -> f64| -> Vec<(String, f64)> {
        m.methods().map(|(n, s)| (format!("{{method=\"{n}\"}}"), f(s))).collect()
    };
    metric(
        "requests_total",
        "counter",
        "JSON-RPC requests handled, by method.",
        &per(&|s| s.count.load(Relaxed) as f64),
    );
    metric(
        "request_errors_total",
        "counter",
        "JSON-RPC requests answered with an error, by method.",
        &per(&|s| s.errors.load(Relaxed) as f64),
    );
    metric(
        "request_duration_seconds_sum",
        "counter",
        "Total handling time, by method.",
        &per(&|s| s.total_us.load(Relaxed) as f64 / 1e6),
    );
    metric(
        "process_resident_memory_bytes",
        "gauge",
        "Resident set size.",
        &[(String::new(), metrics::rss_bytes() as f64)],
    );
    metric(
        "process_cpu_percent",
        "gauge",
        "Process CPU use since the previous sample (100 = one core).",
        &[(String::new(), m.cpu_percent())],
    );
    metric(
        "process_threads",
        "gauge",
        "Threads of the process.",
        &[(String::new(), metrics::proc_status_field("Threads").unwrap_or(0) as f64)],
    );
    let cams = h.cameras.list();
    let count = |st: CameraStatus| cams.iter().filter(|c| c.status == st).count() as f64;
    metric(
        "cameras",
        "gauge",
        "Known cameras by status.",
        &[CameraStatus::Connected, CameraStatus::Disconnected, CameraStatus::Error]
            .map(|s| (format!("{{status=\"{}\"}}", s.as_str()), count(s))),
    );
    let comps: Vec<(String, f64)> = h
        .components
        .all()
        .iter()
        .map(|(n, c)| {
            (
                format!("{{component=\"{n}\",state=\"{}\"}}", c.state.as_str()),
                f64::from(u8::from(matches!(c.state, State::Running | State::Disabled))),
            )
        })
        .collect();
    metric("component_up", "gauge", "1 when the component works normally.", &comps);
    out
}
