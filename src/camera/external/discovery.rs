//! Finding RTSP streams on the network: every (host, port) of `external_discovery` is asked OPTIONS, then
//! DESCRIBE for each candidate path, on one connection per host and port. At most `concurrency` connections are
//! open at once, every request is bounded by `timeout`, and a whole scan by [`SCAN_LIMIT`]. What answered is
//! reported (listed, never added: a client adds what it wants).
//!
//! The `camera-ext-discovery` thread owns the schedule (`scan_interval`, 0 = only on demand, changeable at run time
//! and persisted in `<state_dir>`) and the last report. Scans run on a detached `rtsp-scan` thread so shutdown never
//! waits for the network; a request arriving during a scan gets that scan's report.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::probe::{describe_on, Described};
use super::rtsp::{Failure, Session};
use super::sdp::StreamInfo;
use crate::config::ExternalDiscoveryConfig;
use crate::error::{Error, Result};
use crate::process::Shutdown;
use crate::util::timefmt;

/// The longest a scan may run; targets not reached by then are reported as not probed.
pub const SCAN_LIMIT: Duration = Duration::from_secs(120);
/// Where a run-time `scan_interval` is kept.
pub const INTERVAL_FILE: &str = "external_discovery.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundStatus {
    /// DESCRIBE answered with a video stream.
    Available,
    /// The server wants credentials before it says anything.
    AuthRequired,
}

/// One stream (or one server that wants credentials) that answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// `rtsp://host:port/path`, without credentials.
    pub url: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub status: FoundStatus,
    pub info: Option<StreamInfo>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub started_at: SystemTime,
    pub duration: Duration,
    /// (host, port) pairs probed.
    pub targets: usize,
    pub found: Vec<Found>,
    pub errors: Vec<String>,
}

/// What a scan covers.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub hosts: Vec<IpAddr>,
    pub ports: Vec<u16>,
    /// Without a leading `/`.
    pub paths: Vec<String>,
    pub timeout: Duration,
    pub concurrency: usize,
}

impl ScanPlan {
    pub fn from_config(c: &ExternalDiscoveryConfig) -> ScanPlan {
        let hosts = super::targets::expand(&c.hosts).unwrap_or_else(|(i, why)| {
            log::warn!("external_discovery.hosts[{i}]: {why}");
            Vec::new()
        });
        let mut paths: Vec<String> = c.paths.iter().map(|p| p.trim().trim_start_matches('/').to_string()).collect();
        if paths.is_empty() {
            paths.push(String::new());
        }
        ScanPlan {
            hosts,
            ports: c.ports.clone(),
            paths,
            timeout: Duration::from_secs_f64(c.timeout.max(0.01)),
            concurrency: c.concurrency.max(1) as usize,
        }
    }
}

/// Probe every target of `plan`, stopping new targets at `limit`.
pub fn scan(plan: &ScanPlan, limit: Duration) -> Report {
    let (started, started_at) = (Instant::now(), SystemTime::now());
    let deadline = started + limit;
    let targets: Vec<(IpAddr, u16)> =
        plan.hosts.iter().flat_map(|h| plan.ports.iter().map(move |p| (*h, *p))).collect();
    let next = AtomicUsize::new(0);
    let skipped = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(&target) = targets.get(i) else { break };
        if Instant::now() >= deadline {
            skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let r = probe_target(target, plan);
        found.lock().extend(r);
    };
    std::thread::scope(|scope| {
        let mut started_any = false;
        for _ in 0..plan.concurrency.min(targets.len()) {
            let spawned =
                std::thread::Builder::new().name("rtsp-scan".into()).stack_size(256 * 1024).spawn_scoped(scope, work);
            started_any |= spawned.is_ok();
        }
        if !started_any {
            work(); // no thread to spare: scan on this one
        }
    });
    let mut found = found.into_inner();
    found.sort_by(|a, b| (a.host.as_str(), a.port, a.path.as_str()).cmp(&(b.host.as_str(), b.port, b.path.as_str())));
    let mut errors = Vec::new();
    let skipped = skipped.into_inner();
    if skipped > 0 {
        errors.push(format!(
            "scan stopped at the {} s limit: {skipped} of {} targets not probed",
            limit.as_secs(),
            targets.len()
        ));
    }
    Report { started_at, duration: started.elapsed(), targets: targets.len(), found, errors }
}

/// One host and port: OPTIONS once, then DESCRIBE of each candidate path on the same connection (a path whose
/// connection the server closed is tried once more on a new one). Stops at the first sign that nothing RTSP is
/// there, or that the server wants credentials (then it is reported once, as `rtsp://host:port/`: which of the
/// candidate paths exist cannot be known without them).
fn probe_target((ip, port): (IpAddr, u16), plan: &ScanPlan) -> Vec<Found> {
    let host = ip.to_string();
    let authority = if ip.is_ipv6() { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let found = |path: &str, status, info| Found {
        url: format!("rtsp://{authority}/{path}"),
        host: host.clone(),
        port,
        path: path.to_string(),
        status,
        info,
    };
    let mut out = Vec::new();
    let mut session: Option<Session> = None;
    let mut greeted = false;
    for path in &plan.paths {
        let uri = format!("rtsp://{authority}/{path}");
        for attempt in 0..2 {
            let deadline = Instant::now() + plan.timeout;
            let reused = session.is_some();
            let mut s = match session.take() {
                Some(mut s) => {
                    s.set_deadline(deadline);
                    s
                }
                None => match Session::connect(&host, port, deadline) {
                    Ok(s) => s,
                    Err(_) => return out,
                },
            };
            if !greeted {
                match s.request("OPTIONS", &uri) {
                    Ok(r) if matches!(r.status, 401 | 403) => return vec![found("", FoundStatus::AuthRequired, None)],
                    Ok(_) => greeted = true,
                    Err(_) => return out,
                }
            }
            match describe_on(&mut s, &uri) {
                Ok(Described::Stream(info)) => out.push(found(path, FoundStatus::Available, Some(info))),
                Ok(Described::Unauthorized) => return vec![found("", FoundStatus::AuthRequired, None)],
                Ok(Described::NoVideo | Described::Status(..)) => {}
                Err(Failure::Closed) if reused && attempt == 0 => continue,
                Err(_) => return out,
            }
            session = Some(s);
            break;
        }
    }
    out
}

/// Messages to the `camera-ext-discovery` thread.
pub enum Request {
    Scan {
        reply: Sender<Result<Arc<Report>>>,
    },
    SetInterval {
        seconds: u64,
        reply: Sender<Result<u64>>,
    },
    /// The running scan ended.
    Finished(Arc<Report>),
}

/// What the handle reads without asking the thread.
#[derive(Default)]
pub struct Shared {
    pub last: RwLock<Option<Arc<Report>>>,
    pub interval: AtomicU64,
    pub scanning: AtomicBool,
}

#[derive(Serialize, Deserialize)]
struct StoredInterval {
    scan_interval: u64,
    #[serde(default)]
    updated_at: String,
}

pub struct Discovery {
    enabled: bool,
    plan: Arc<ScanPlan>,
    state_dir: PathBuf,
    next: Option<Instant>,
    waiters: Vec<Sender<Result<Arc<Report>>>>,
    requests: Sender<Request>,
    shared: Arc<Shared>,
}

impl Discovery {
    pub fn new(config: &crate::config::Config, requests: Sender<Request>, shared: Arc<Shared>) -> Discovery {
        let c = &config.external_discovery;
        let path = config.state_dir.join(INTERVAL_FILE);
        let interval = match std::fs::read(&path).map(|b| serde_json::from_slice::<StoredInterval>(&b)) {
            Ok(Ok(s)) => s.scan_interval,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => c.scan_interval,
            Ok(Err(e)) => {
                log::warn!("{}: {e}; using external_discovery.scan_interval", path.display());
                c.scan_interval
            }
            Err(e) => {
                log::warn!("{}: {e}; using external_discovery.scan_interval", path.display());
                c.scan_interval
            }
        };
        shared.interval.store(interval, Ordering::Relaxed);
        let mut d = Discovery {
            enabled: c.enabled,
            plan: Arc::new(ScanPlan::from_config(c)),
            state_dir: config.state_dir.clone(),
            next: None,
            waiters: Vec::new(),
            requests,
            shared,
        };
        d.schedule(Instant::now());
        d
    }

    /// Body of the `camera-ext-discovery` thread.
    pub fn run(mut self, rx: Receiver<Request>, shutdown: Shutdown) -> std::result::Result<(), String> {
        if self.enabled {
            let p = &self.plan;
            log::info!(
                "external discovery: {} hosts x {} ports x {} paths, every {}",
                p.hosts.len(),
                p.ports.len(),
                p.paths.len(),
                match self.shared.interval.load(Ordering::Relaxed) {
                    0 => "request (on demand only)".to_string(),
                    s => format!("{s} s"),
                }
            );
        }
        loop {
            let wait = self.next.map_or(Duration::from_secs(3600), |t| t.saturating_duration_since(Instant::now()));
            crossbeam_channel::select! {
                recv(rx) -> m => match m {
                    Ok(m) => self.handle(m),
                    Err(_) => return Ok(()),
                },
                recv(shutdown.channel()) -> _ => return Ok(()),
                default(wait) => {
                    if self.next.is_some_and(|t| Instant::now() >= t) {
                        self.next = None;
                        self.start_scan();
                    }
                }
            }
        }
    }

    fn handle(&mut self, m: Request) {
        match m {
            Request::Scan { reply } => {
                if !self.enabled {
                    let _ = reply.send(Err(disabled()));
                    return;
                }
                self.waiters.push(reply);
                self.start_scan();
            }
            Request::SetInterval { seconds, reply } => {
                let _ = reply.send(self.set_interval(seconds));
            }
            Request::Finished(report) => {
                self.shared.scanning.store(false, Ordering::Relaxed);
                let n = report.found.len();
                log::info!(
                    "external discovery: {n} found in {} ms ({} targets)",
                    report.duration.as_millis(),
                    report.targets
                );
                *self.shared.last.write() = Some(report.clone());
                for w in self.waiters.drain(..) {
                    let _ = w.send(Ok(report.clone()));
                }
                self.schedule(Instant::now());
            }
        }
    }

    fn set_interval(&mut self, seconds: u64) -> Result<u64> {
        const MAX: u64 = 7 * 86_400;
        if seconds > MAX {
            return Err(Error::invalid_params(format!("scan_interval must be 0..{MAX} seconds, got {seconds}")));
        }
        let stored = StoredInterval { scan_interval: seconds, updated_at: timefmt::now_rfc3339() };
        let body = serde_json::to_vec_pretty(&stored).map_err(Error::internal)?;
        crate::util::fs::write_atomic(&self.state_dir.join(INTERVAL_FILE), &body, 0o640)
            .map_err(|e| Error::internal(format!("cannot save the discovery interval: {e}")))?;
        self.shared.interval.store(seconds, Ordering::Relaxed);
        log::info!("external discovery interval set to {seconds} s");
        if !self.shared.scanning.load(Ordering::Relaxed) {
            self.schedule(Instant::now());
        }
        Ok(seconds)
    }

    /// The next periodic scan: `interval` after `from` (the end of the last scan, or now).
    fn schedule(&mut self, from: Instant) {
        let secs = self.shared.interval.load(Ordering::Relaxed);
        self.next = (self.enabled && secs > 0).then(|| from + Duration::from_secs(secs));
    }

    fn start_scan(&mut self) {
        if self.shared.scanning.swap(true, Ordering::Relaxed) {
            return; // the running scan answers every waiter
        }
        let (plan, tx) = (self.plan.clone(), self.requests.clone());
        let spawned = std::thread::Builder::new().name("rtsp-scan".into()).spawn(move || {
            let _ = tx.send(Request::Finished(Arc::new(scan(&plan, SCAN_LIMIT))));
        });
        if let Err(e) = spawned {
            self.shared.scanning.store(false, Ordering::Relaxed);
            for w in self.waiters.drain(..) {
                let _ = w.send(Err(Error::internal(format!("cannot start a discovery scan: {e}"))));
            }
        }
    }
}

/// The answer while `external_discovery.enabled` is false.
pub fn disabled() -> Error {
    Error::Unsupported("external stream discovery is disabled (external_discovery.enabled: false)".into())
}

#[cfg(test)]
mod tests;
