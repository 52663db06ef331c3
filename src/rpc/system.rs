//! Methods about the server itself: `ping`, `get_server_info`, `get_status`, `get_metrics`. Their state is the
//! configuration, the start time, the component status board and the request metrics.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::params::NoParams;
use super::{method, Call, Method};
use crate::config::Config;
use crate::error::Result;
use crate::process::status::{Components, State};
use crate::rpc::metrics::{self, Metrics};

/// What the system methods read.
pub struct System {
    pub config: Arc<Config>,
    /// Monotonic start, for uptime.
    pub started: Instant,
    pub components: Components,
    pub metrics: Arc<Metrics>,
}

pub static METHODS: &[Method<System>] = &[
    method!("ping", Viewer, Inline, ping),
    method!("get_server_info", Admin, Inline, get_server_info),
    method!("get_status", Admin, Inline, get_status),
    method!("get_metrics", Admin, Inline, get_metrics),
];

/// Params are ignored, whatever their shape (the Python service does the same).
fn ping(_: &System, _: NoParams, _: &Call) -> Result<Value> {
    Ok(Value::String("pong".into()))
}

fn get_server_info(sys: &System, _: NoParams, _: &Call) -> Result<Value> {
    let cfg = &sys.config;
    Ok(json!({
        "name": "MediaMTX Camera Service",
        "version": crate::VERSION,
        "capabilities": ["snapshots", "recordings", "streaming"],
        "supported_formats": ["mp4", "fmp4", "jpg", "png"],
        "max_cameras": cfg.camera.device_numbers().len() + cfg.camera.virtual_cameras.len(),
        "git_commit": crate::GIT_COMMIT,
        "architecture": std::env::consts::ARCH,
    }))
}

/// Overall status from component states: any stopped component → unhealthy, any degraded → degraded.
pub fn overall(states: impl IntoIterator<Item = State>) -> &'static str {
    let mut overall = "healthy";
    for s in states {
        match s {
            State::Stopped => return "unhealthy",
            State::Degraded | State::Starting => overall = "degraded",
            State::Running | State::Disabled => {}
        }
    }
    overall
}

fn get_status(sys: &System, _: NoParams, _: &Call) -> Result<Value> {
    let all = sys.components.all();
    let state = |name: &str| all.get(name).map(|c| c.state);
    let running =
        |name: &str| state(name).map_or("stopped", |s| if s == State::Running { "running" } else { s.as_str() });
    let mediamtx = match state("mediamtx") {
        Some(State::Running) => "healthy",
        Some(State::Degraded) | Some(State::Stopped) => "unhealthy",
        Some(State::Disabled) => "disabled",
        Some(State::Starting) | None => "unknown",
    };
    let details: Map<String, Value> = all.iter().map(|(k, v)| (k.to_string(), json!(v.details))).collect();
    Ok(json!({
        "status": overall(all.values().map(|c| c.state)),
        "uptime": sys.started.elapsed().as_secs(),
        "version": crate::VERSION,
        "components": {
            "websocket_server": running("websocket_server"),
            "camera_monitor": running("camera_monitor"),
            "mediamtx_controller": mediamtx,
        },
        "details": details,
    }))
}

fn ms(us: u64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

fn get_metrics(sys: &System, _: NoParams, _: &Call) -> Result<Value> {
    let m = &sys.metrics;
    let (count, errors, total_us) = m.totals();
    let per_method: Map<String, Value> = m
        .methods()
        .filter(|(_, s)| s.count.load(Relaxed) > 0)
        .map(|(name, s)| {
            let c = s.count.load(Relaxed);
            (
                name.to_string(),
                json!({
                    "count": c,
                    "errors": s.errors.load(Relaxed),
                    "avg_ms": ms(s.total_us.load(Relaxed) / c.max(1)),
                    "p50_ms": ms(s.quantile_us(0.5)),
                    "p95_ms": ms(s.quantile_us(0.95)),
                    "p99_ms": ms(s.quantile_us(0.99)),
                }),
            )
        })
        .collect();
    Ok(json!({
        "active_connections": m.active_connections.load(Relaxed),
        "total_requests": count,
        "average_response_time": if count == 0 { 0.0 } else { total_us as f64 / count as f64 / 1000.0 },
        "error_rate": if count == 0 { 0.0 } else { errors as f64 / count as f64 },
        "memory_usage": (metrics::rss_bytes() as f64 / 1048576.0 * 100.0).round() / 100.0,
        "cpu_usage": (m.cpu_percent() * 100.0).round() / 100.0,
        "uptime": sys.started.elapsed().as_secs(),
        "total_errors": errors,
        "latency_ms": {
            "p50": ms(m.overall_quantile_us(0.5)),
            "p95": ms(m.overall_quantile_us(0.95)),
            "p99": ms(m.overall_quantile_us(0.99)),
        },
        "threads": metrics::proc_status_field("Threads").unwrap_or(0),
        "total_connections": m.total_connections.load(Relaxed),
        "rejected_connections": m.rejected_connections.load(Relaxed),
        "dropped_slow_clients": m.dropped_slow_clients.load(Relaxed),
        "methods": per_method,
    }))
}
