//! MediaMTX integration: our paths in MediaMTX follow the cameras, a health monitor with a circuit
//! breaker watches the API, and request handlers read cached state without waiting on MediaMTX.
//!
//! Threads: `mediamtx-control` owns the path table (camera events, ensure/record commands, a ~2 s poll of the
//! runtime path list that feeds the metrics cache and notices a MediaMTX restart, reconciliation at least every
//! 60 s); `mediamtx-health` probes `GET /v3/config/global/get` and drives the breaker. Handlers read the small
//! shared snapshots below; only `ensure_path`, `set_record` and `wait_ready` block, and they fail fast while the
//! breaker is open.

pub mod breaker;
pub mod client;
pub mod control;
mod health;
pub mod pathconf;
pub mod rpc;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use parking_lot::RwLock;
use serde_json::{json, Value};

pub use breaker::BreakerState;
pub use client::{ApiError, Client, RuntimePath};
pub use control::{converge, Converged};

use crate::camera::{Camera, CameraEvent, StreamFigures, StreamMetrics};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::status::{Components, State};
use crate::process::Supervisor;
use crate::rpc::notify::Hub;

/// Component name in [`Components`].
pub const COMPONENT: &str = "mediamtx";
/// Runtime-list data older than this is not shown as metrics.
const CACHE_FRESH: Duration = Duration::from_secs(10);
/// Cap on one MediaMTX call made by the component threads.
const BACKGROUND_TIMEOUT: Duration = Duration::from_millis(1500);
/// `get_streams` answers from the cache when it is at most this old.
const STREAMS_FRESH: Duration = Duration::from_secs(3);

/// Runtime figures of one MediaMTX path (from `GET /v3/paths/get/{name}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathMetrics {
    pub ready: bool,
    pub bytes_sent: u64,
    pub readers: u64,
    /// Seconds since the path became ready (0 when not ready).
    pub uptime: u64,
}

/// What the health monitor knows (for `get_status`, `/health/*` and `/metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// At least one check has finished.
    pub checked: bool,
    pub breaker: BreakerState,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    pub last_success: Option<SystemTime>,
    pub last_failure: Option<SystemTime>,
    pub response_time_ms: Option<u64>,
    pub activations: u64,
    pub recoveries: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            checked: false,
            breaker: BreakerState::Closed,
            consecutive_failures: 0,
            last_error: None,
            last_success: None,
            last_failure: None,
            response_time_ms: None,
            activations: 0,
            recoveries: 0,
        }
    }
}

impl Health {
    /// `healthy` | `degraded` | `unknown` (before the first check).
    pub fn status(&self) -> &'static str {
        if !self.checked {
            "unknown"
        } else if self.breaker == BreakerState::Closed && self.consecutive_failures == 0 {
            "healthy"
        } else {
            "degraded"
        }
    }
}

/// Where the control thread learns about cameras (the registry in the daemon, a channel in tests). Subscribe to the
/// events before listing the cameras, so that no camera falls between the two (converging twice is harmless).
pub struct CameraFeed {
    /// Cameras already known when the thread starts.
    pub initial: Vec<Arc<Camera>>,
    pub events: Receiver<CameraEvent>,
}

/// What the control thread asks of other components.
#[derive(Clone)]
pub struct Hooks {
    /// Is a recording running for this device (`device` as in responses)? Paths are not deleted meanwhile.
    pub is_recording: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// The camera's MediaMTX path appeared or went away: re-evaluate its `camera_status_update`.
    pub announce: Arc<dyn Fn(&str) + Send + Sync>,
    /// Where path, stream and error events (`mediamtx.path`, `mediamtx.stream_started`, `mediamtx.error`, ...) are
    /// published.
    pub hub: Hub,
}

#[derive(Default)]
struct RuntimeCache {
    fetched: Option<Instant>,
    paths: HashMap<String, RuntimePath>,
}

pub(crate) struct Shared {
    config: Arc<Config>,
    /// For callers on request threads (`wait_ready`, `get_streams`): `mediamtx.api_timeout` per call.
    client: Client,
    /// For the control and health threads: the same, capped at [`BACKGROUND_TIMEOUT`], so that a hanging
    /// MediaMTX cannot hold them past the daemon's shutdown budget (< 2 s).
    bg_client: Client,
    health: RwLock<Health>,
    /// Paths that exist in MediaMTX with our configuration (written by the control thread).
    paths: RwLock<HashSet<String>>,
    runtime: RwLock<RuntimeCache>,
    control: Sender<control::Command>,
    components: Components,
}

impl Shared {
    fn breaker_open(&self) -> bool {
        self.health.read().breaker == BreakerState::Open
    }

    fn store_runtime(&self, list: &[RuntimePath]) {
        let paths = list.iter().map(|p| (p.name.clone(), p.clone())).collect();
        *self.runtime.write() = RuntimeCache { fetched: Some(Instant::now()), paths };
    }
}

/// Handle to the MediaMTX integration. `MediaMtx::default()` is the disabled integration.
#[derive(Clone, Default)]
pub struct MediaMtx {
    inner: Option<Arc<Shared>>,
}

/// The integration's threads, not started yet (nothing to start when it is disabled).
pub struct MediaMtxThreads {
    started: Option<(Arc<Shared>, Receiver<control::Command>)>,
}

impl MediaMtx {
    /// The handle and its command channel; nothing runs until [`MediaMtxThreads::spawn`].
    pub fn new(config: Arc<Config>, components: Components) -> (MediaMtx, MediaMtxThreads) {
        if !config.mediamtx.enabled {
            components.set(COMPONENT, State::Disabled, "MediaMTX integration disabled (mediamtx.enabled: false)");
            return (MediaMtx::default(), MediaMtxThreads { started: None });
        }
        components.set(COMPONENT, State::Starting, "MediaMTX health not checked yet");
        let m = &config.mediamtx;
        let host =
            if m.host.contains(':') && !m.host.starts_with('[') { format!("[{}]", m.host) } else { m.host.clone() };
        let base = format!("http://{host}:{}", m.api_port);
        let timeout = Duration::from_secs_f64(m.api_timeout.clamp(0.05, 3600.0));
        let client = Client::new(&base, timeout);
        let bg_client = Client::new(&base, timeout.min(BACKGROUND_TIMEOUT));
        let (tx, rx) = unbounded();
        let shared = Arc::new(Shared {
            config: config.clone(),
            client,
            bg_client,
            health: RwLock::new(Health::default()),
            paths: RwLock::new(HashSet::new()),
            runtime: RwLock::new(RuntimeCache::default()),
            control: tx,
            components,
        });
        (MediaMtx { inner: Some(shared.clone()) }, MediaMtxThreads { started: Some((shared, rx)) })
    }

    /// `mediamtx.enabled`.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// MediaMTX is enabled and reachable (last check succeeded, circuit breaker closed).
    pub fn available(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.health.read().status() == "healthy")
    }

    /// The health monitor's view (a default, never-checked value when disabled).
    pub fn health(&self) -> Health {
        self.inner.as_ref().map(|s| s.health.read().clone()).unwrap_or_default()
    }

    /// Our path for this stream exists in MediaMTX (so `streams` carries URLs).
    pub fn has_path(&self, path: &str) -> bool {
        self.inner.as_ref().is_some_and(|s| s.paths.read().contains(path))
    }

    /// Runtime figures of the path from the control thread's cache (never waits on MediaMTX).
    pub fn path_metrics(&self, path: &str) -> Option<PathMetrics> {
        let shared = self.inner.as_ref()?;
        let cache = shared.runtime.read();
        if cache.fetched.is_none_or(|t| t.elapsed() > CACHE_FRESH) {
            return None;
        }
        cache.paths.get(path).map(metrics)
    }

    /// Make sure the path exists with our configuration (idempotent). Blocks at most a few API timeouts.
    pub fn ensure_path(&self, path: &str) -> Result<()> {
        let shared = self.usable(path)?;
        if shared.paths.read().contains(path) {
            return Ok(());
        }
        self.ask(shared, |reply| control::Command::Ensure { path: path.to_string(), reply })
    }

    /// Switch MediaMTX's recorder for the path on or off. "Off" is remembered even while MediaMTX cannot be
    /// reached, so the path is re-created without the recorder when MediaMTX is back (a recorder left on would
    /// record whenever the stream runs, for no session).
    pub fn set_record(&self, path: &str, on: bool) -> Result<()> {
        let command = |reply| control::Command::SetRecord { path: path.to_string(), on, reply };
        match self.usable(path) {
            Ok(shared) => self.ask(shared, command),
            Err(e) => {
                if let (false, Some(shared)) = (on, self.inner.as_ref()) {
                    let _ = shared.control.send(command(bounded(1).0));
                }
                Err(e)
            }
        }
    }

    /// Wait until the path is ready (a publisher is up), at most `timeout`.
    pub fn wait_ready(&self, path: &str, timeout: Duration) -> Result<()> {
        let shared = self.usable(path)?;
        let deadline = Instant::now() + timeout;
        let interval = Duration::from_secs_f64(shared.config.mediamtx.stream_readiness.check_interval.clamp(0.01, 5.0));
        loop {
            match shared.client.get_path(path) {
                Ok(p) if p.is_ready() => return Ok(()),
                Ok(_) | Err(ApiError::NotFound(_)) | Err(ApiError::Timeout) | Err(ApiError::Server { .. }) => {}
                Err(e) => return Err(Error::MediaMtx(format!("stream {path}: {e}"))),
            }
            let now = Instant::now();
            if now >= deadline || shared.breaker_open() {
                return Err(Error::MediaMtx(format!("stream {path} not ready within {:.1} s", timeout.as_secs_f64())));
            }
            std::thread::sleep(interval.min(deadline - now));
        }
    }

    /// `get_streams` items: the runtime path list, from the cache when fresh, else one bounded call;
    /// any MediaMTX failure gives an empty list.
    pub fn streams(&self) -> Vec<Value> {
        let Some(shared) = self.inner.as_ref() else {
            return Vec::new();
        };
        let mut items: Vec<RuntimePath> = {
            let cache = shared.runtime.read();
            if cache.fetched.is_some_and(|t| t.elapsed() <= STREAMS_FRESH) {
                cache.paths.values().cloned().collect()
            } else if shared.breaker_open() {
                return Vec::new();
            } else {
                drop(cache);
                match shared.client.list_paths() {
                    Ok(list) => {
                        shared.store_runtime(&list);
                        list
                    }
                    Err(e) => {
                        log::debug!("get_streams: MediaMTX {e}");
                        return Vec::new();
                    }
                }
            }
        };
        items.sort_by(|a, b| a.name.cmp(&b.name));
        items
            .iter()
            .map(|p| {
                json!({"name": p.name, "source": p.source.clone().unwrap_or(Value::Null), "ready": p.is_ready(),
                       "readers": p.reader_count(), "bytes_sent": p.sent()})
            })
            .collect()
    }

    /// The shared state, when the integration is enabled and the breaker lets calls through.
    fn usable(&self, path: &str) -> Result<&Arc<Shared>> {
        let shared = self.inner.as_ref().ok_or_else(|| Error::MediaMtx("MediaMTX integration is disabled".into()))?;
        if shared.breaker_open() {
            let last = shared.health.read().last_error.clone().unwrap_or_default();
            return Err(Error::MediaMtx(format!("MediaMTX unavailable (circuit breaker open) for {path}: {last}")));
        }
        Ok(shared)
    }

    /// Send a command to the control thread and wait for its answer (bounded: a few API timeouts).
    fn ask(&self, shared: &Shared, make: impl FnOnce(Sender<Result<()>>) -> control::Command) -> Result<()> {
        let (tx, rx) = bounded(1);
        shared.control.send(make(tx)).map_err(|_| Error::MediaMtx("MediaMTX control thread stopped".into()))?;
        let budget = Duration::from_secs_f64(shared.config.mediamtx.api_timeout.max(0.05) * 4.0 + 1.0);
        rx.recv_timeout(budget).unwrap_or_else(|_| Err(Error::MediaMtx("MediaMTX did not answer in time".into())))
    }
}

impl MediaMtxThreads {
    /// Start `mediamtx-control` (paths follow `feed`; `hooks` reach the other components) and `mediamtx-health`.
    pub fn spawn(self, feed: CameraFeed, hooks: Hooks, supervisor: &Supervisor) -> std::io::Result<()> {
        let Some((shared, rx)) = self.started else { return Ok(()) };
        let shutdown = supervisor.shutdown().clone();
        let (s, sd, hub) = (shared.clone(), shutdown.clone(), hooks.hub.clone());
        supervisor.spawn("mediamtx-control", move || control::run(s, feed, hooks, rx, sd))?;
        supervisor.spawn("mediamtx-health", move || health::run(shared, hub, shutdown))
    }
}

impl StreamFigures for MediaMtx {
    fn figures(&self, path: &str) -> Option<StreamMetrics> {
        self.path_metrics(path).map(|m| StreamMetrics {
            bytes_sent: m.bytes_sent,
            readers: m.readers,
            uptime: m.uptime,
        })
    }
}

fn metrics(p: &RuntimePath) -> PathMetrics {
    let ready = p.is_ready();
    let uptime = match p.ready_since().and_then(crate::util::timefmt::parse_rfc3339) {
        Some(since) if ready => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
            now.saturating_sub(since).max(0) as u64
        }
        _ => 0,
    };
    PathMetrics { ready, bytes_sent: p.sent(), readers: p.reader_count(), uptime }
}

/// A uniform random number in [0, 1) (backoff jitter).
fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    crate::util::ids::nonsecret_bytes(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_handle_is_neutral() {
        let m = MediaMtx::default();
        assert!(!m.enabled() && !m.available() && !m.has_path("camera0"));
        assert_eq!(m.path_metrics("camera0"), None);
        assert!(m.streams().is_empty());
        assert!(matches!(m.ensure_path("camera0"), Err(Error::MediaMtx(_))));
        assert!(matches!(m.wait_ready("camera0", Duration::from_millis(1)), Err(Error::MediaMtx(_))));
    }

    #[test]
    fn disabled_by_config_reports_disabled() {
        let mut cfg = Config::default();
        cfg.mediamtx.enabled = false;
        let components = Components::default();
        let sup = Supervisor::new(crate::process::Shutdown::new());
        let feed = CameraFeed { initial: vec![], events: crossbeam_channel::never() };
        let hooks = Hooks { is_recording: Arc::new(|_| false), announce: Arc::new(|_| {}), hub: Hub::new() };
        let (m, threads) = MediaMtx::new(Arc::new(cfg), components.clone());
        threads.spawn(feed, hooks, &sup).unwrap();
        assert!(!m.enabled());
        assert_eq!(components.get(COMPONENT).unwrap().state, State::Disabled);
        assert!(sup.join_all(Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn metrics_from_runtime_path() {
        let p: RuntimePath = serde_json::from_str(
            r#"{"name":"camera0","ready":true,"readyTime":"2020-01-01T00:00:00Z","readers":[{},{}],"bytesSent":9}"#,
        )
        .unwrap();
        let m = metrics(&p);
        assert!(m.ready && m.readers == 2 && m.bytes_sent == 9 && m.uptime > 100_000_000);
        assert!((0.0..1.0).contains(&random_unit()));
    }
}
