//! Routes of the health/metrics HTTP server (api.md §7, decisions §9) and the Prometheus text endpoint.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::{Request, Response};
use crate::app::App;
use crate::camera::CameraStatus;
use crate::process::status::{ComponentStatus, State};
use crate::rpc::metrics;
use crate::util::timefmt;

pub fn route(app: &App, req: &Request) -> Response {
    let resp = match req.path.as_str() {
        "/health" | "/health/system" => system(app),
        "/health/cameras" => cameras(app),
        "/health/mediamtx" => mediamtx(app),
        "/health/ready" => ready(app),
        "/health/live" => Response::json(200, &json!({"status": "alive", "timestamp": now()})),
        "/metrics" => Response::new(200, "text/plain; version=0.0.4; charset=utf-8", prometheus(app)),
        "/api/cameras" => api_cameras(app),
        p if p.starts_with("/files/") => crate::files::http_download(app, req),
        _ => Response::text(404, "Not Found\n"),
    };
    resp.with_header("Cache-Control", "no-cache, no-store, must-revalidate")
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

/// MediaMTX being unreachable is "unhealthy" for its own component but only degrades the daemon (decisions §9).
fn mediamtx_word(app: &App) -> &'static str {
    match app.components.get("mediamtx").map(|c| c.state) {
        Some(State::Running) => "healthy",
        Some(State::Disabled) => "disabled",
        _ => "unhealthy",
    }
}

fn component(status: &str, details: String) -> Value {
    json!({"status": status, "details": details, "timestamp": now()})
}

fn camera_details(app: &App) -> (&'static str, String) {
    let c = app.components.get("camera_monitor");
    let w = word(c.as_ref());
    let details = match &c {
        Some(c) if c.state == State::Running || c.state == State::Degraded => {
            format!("Camera monitor is running with {} cameras", app.cameras.list().len())
        }
        Some(_) => "Camera monitor is not running".to_string(),
        None => "Camera monitor not available".to_string(),
    };
    (w, details)
}

fn mediamtx_details(app: &App) -> (&'static str, String) {
    let w = mediamtx_word(app);
    let details = match (w, app.components.get("mediamtx")) {
        ("disabled", _) => "MediaMTX integration is disabled (mediamtx.enabled: false)".to_string(),
        ("healthy", _) => "MediaMTX controller is healthy".to_string(),
        (_, Some(c)) if !c.details.is_empty() => format!("MediaMTX controller is unhealthy: {}", c.details),
        (_, Some(_)) => "MediaMTX controller is unhealthy".to_string(),
        (_, None) => "MediaMTX controller not available".to_string(),
    };
    (w, details)
}

/// Every component thread alive and none stopped.
fn service_manager(app: &App) -> (&'static str, String) {
    let all = app.components.all();
    let stopped: Vec<&str> = all.iter().filter(|(_, c)| c.state == State::Stopped).map(|(n, _)| *n).collect();
    if stopped.is_empty() {
        ("healthy", "Service manager is running".into())
    } else {
        ("unhealthy", format!("Service manager is not running: stopped {}", stopped.join(", ")))
    }
}

fn system(app: &App) -> Response {
    let (cw, cd) = camera_details(app);
    let (mw, md) = mediamtx_details(app);
    let (sw, sd) = service_manager(app);
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

fn cameras(app: &App) -> Response {
    let (w, d) = camera_details(app);
    single(w, d)
}

fn mediamtx(app: &App) -> Response {
    let (w, d) = mediamtx_details(app);
    single(w, d)
}

fn ready(app: &App) -> Response {
    let all = app.components.all();
    let started = all.values().all(|c| c.state != State::Starting && c.state != State::Stopped);
    let mw = mediamtx_word(app);
    let (sw, _) = service_manager(app);
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

fn api_cameras(app: &App) -> Response {
    let cams: Vec<Value> = app
        .cameras
        .list()
        .iter()
        .filter(|c| c.status == CameraStatus::Connected)
        .map(|c| json!({"device": c.device, "status": c.status.as_str(), "name": c.name, "resolution": c.resolution, "fps": c.fps}))
        .collect();
    let n = cams.len();
    Response::json(200, &json!({"status": "healthy", "timestamp": now(), "cameras": cams, "total": n, "connected": n}))
}

fn prometheus(app: &App) -> String {
    let m = &app.metrics;
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
        &[(String::new(), app.started.elapsed().as_secs_f64())],
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
    let cams = app.cameras.list();
    let count = |st: CameraStatus| cams.iter().filter(|c| c.status == st).count() as f64;
    metric(
        "cameras",
        "gauge",
        "Known cameras by status.",
        &[CameraStatus::Connected, CameraStatus::Disconnected, CameraStatus::Error]
            .map(|s| (format!("{{status=\"{}\"}}", s.as_str()), count(s))),
    );
    let comps: Vec<(String, f64)> = app
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
