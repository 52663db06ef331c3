//! External RTSP sources ("IP cameras") as cameras.
//!
//! Each source has a stream name (its camera id and MediaMTX path name) and an `rtsp://` URL. Configured ones
//! (`camera.external`) are always present; more are added at run time and persisted in `<state_dir>`. Each is
//! listed by the registry like any camera: CONNECTED while it answers RTSP DESCRIBE with a video stream,
//! DISCONNECTED while it does not, ERROR while it rejects the credentials; resolution and frame rate come from the
//! stream.
//!
//! Threads (started by [`start`] through the supervisor):
//! - `camera-external` ([`monitor`]) owns the sources, persists run-time ones, schedules checks and publishes
//!   cameras to the registry; checks run on short-lived `rtsp-check` threads.
//! - `camera-ext-discovery` ([`discovery`]) scans `external_discovery` targets on demand or every `scan_interval`.
//!
//! [`ExternalStreams`] is the handle methods use: `add`, `remove`, `list`, `discover`, `set_discovery_interval`,
//! each returning the crate's [`Error`] so JSON-RPC handlers stay thin. URLs are [`SourceUrl`]s: they print with
//! the password masked, and only the few places that connect (MediaMTX `source`, ffmpeg input) call `expose()`.

mod auth;
pub mod discovery;
#[cfg(test)]
mod fake_rtsp;
mod h264;
mod monitor;
pub mod probe;
pub mod rpc;
pub mod rtsp;
pub mod sdp;
mod store;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use parking_lot::RwLock;
use serde::Serialize;

pub use discovery::{Found, FoundStatus, Report};
pub use sdp::StreamInfo;
// The source's text forms are parsed where the configuration validator can use them too (it may not depend on
// the camera component): `formats::source`, `formats::targets`.
pub use crate::formats::source::{self, SourceUrl, Transport};
pub use crate::formats::targets;

use super::model::{Camera, CameraStatus};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::Supervisor;

/// `Camera::number` of an external camera: it has no `/dev/videoN` node, and no device number can name this one.
pub const NO_DEVICE_NODE: u32 = u32::MAX;

/// What the monitor tells the registry.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add the camera, or replace the one with the same `device`.
    Upsert(Box<Camera>),
    /// The stream was removed: announce it DISCONNECTED once, then drop it from the list.
    Remove(String),
}

/// A stream to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStream {
    pub name: String,
    /// May carry credentials.
    pub url: String,
    /// `tcp`, `udp`, or None (automatic).
    pub transport: Option<String>,
}

/// Where a stream comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `camera.external`: always present, not removable at run time.
    Config,
    /// Added at run time, persisted.
    Runtime,
}

/// An external stream as the handle lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalStream {
    pub name: String,
    /// Prints (and serializes) with the password masked.
    pub url: SourceUrl,
    pub transport: Option<&'static str>,
    pub origin: Origin,
    pub status: CameraStatus,
    /// False until the first check finished.
    pub checked: bool,
    /// Why it is DISCONNECTED or ERROR.
    pub error: Option<String>,
    pub added_at: Option<SystemTime>,
    /// The last time it answered.
    pub last_seen: Option<SystemTime>,
    /// What the last successful check found.
    pub info: Option<StreamInfo>,
}

/// The handle to the external-stream threads. Cheap to clone. A default handle (component not started) answers
/// every call with an internal error and lists nothing.
#[derive(Clone, Default)]
pub struct ExternalStreams {
    requests: Option<Sender<monitor::Request>>,
    discovery: Option<Sender<discovery::Request>>,
    list: Arc<RwLock<Arc<Vec<ExternalStream>>>>,
    discovered: Arc<discovery::Shared>,
    enabled: bool,
    /// Bound on waiting for `add` (its first check) and `remove`.
    reply_timeout: Duration,
}

impl ExternalStreams {
    /// Add a run-time stream. Replies once the first check has finished, so the result (and the camera list)
    /// already shows whether the source answers. Invalid or clashing input → -32602 naming the field.
    pub fn add(&self, spec: NewStream) -> Result<ExternalStream> {
        let tx = self.requests.as_ref().ok_or_else(not_running)?;
        let (reply, rx) = bounded(1);
        tx.send(monitor::Request::Add { spec, reply }).map_err(|_| not_running())?;
        rx.recv_timeout(self.reply_timeout).map_err(|_| Error::internal("external streams did not answer"))?
    }

    /// Remove a run-time stream by name or URL (with or without its password). Unknown → -1000; configured
    /// ones → -32602.
    pub fn remove(&self, name_or_url: &str) -> Result<ExternalStream> {
        let tx = self.requests.as_ref().ok_or_else(not_running)?;
        let (reply, rx) = bounded(1);
        tx.send(monitor::Request::Remove { key: name_or_url.to_string(), reply }).map_err(|_| not_running())?;
        rx.recv_timeout(self.reply_timeout).map_err(|_| Error::internal("external streams did not answer"))?
    }

    /// Every external stream: configured ones first, then run-time ones in the order they were added.
    pub fn list(&self) -> Arc<Vec<ExternalStream>> {
        self.list.read().clone()
    }

    /// Run a discovery scan (or join the one running) and return its report; disabled → -32030.
    pub fn discover(&self) -> Result<Arc<Report>> {
        if !self.enabled {
            return Err(discovery::disabled());
        }
        let tx = self.discovery.as_ref().ok_or_else(not_running)?;
        let (reply, rx) = bounded(1);
        tx.send(discovery::Request::Scan { reply }).map_err(|_| not_running())?;
        let wait = discovery::SCAN_LIMIT + Duration::from_secs(10);
        rx.recv_timeout(wait).map_err(|_| Error::internal("the discovery scan did not finish"))?
    }

    /// The last scan's report, if any scan ran.
    pub fn last_discovery(&self) -> Option<Arc<Report>> {
        self.discovered.last.read().clone()
    }

    /// Streams of `report` already added, as (index in `report.found`, stream name).
    pub fn already_added(&self, report: &Report) -> Vec<(usize, String)> {
        let list = self.list();
        let known = |f: &Found| {
            let url = SourceUrl::parse(&f.url).ok()?;
            list.iter().find(|s| s.url.same_location(&url)).map(|s| s.name.clone())
        };
        report.found.iter().enumerate().filter_map(|(i, f)| known(f).map(|n| (i, n))).collect()
    }

    /// Seconds between periodic scans (0 = on demand only); persisted in `<state_dir>`.
    pub fn set_discovery_interval(&self, seconds: u64) -> Result<u64> {
        let tx = self.discovery.as_ref().ok_or_else(not_running)?;
        let (reply, rx) = bounded(1);
        tx.send(discovery::Request::SetInterval { seconds, reply }).map_err(|_| not_running())?;
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| Error::internal("discovery did not answer"))?
    }

    pub fn discovery_interval(&self) -> u64 {
        self.discovered.interval.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn discovery_enabled(&self) -> bool {
        self.enabled
    }

    /// A scan is running.
    pub fn discovery_active(&self) -> bool {
        self.discovered.scanning.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn not_running() -> Error {
    Error::internal("the external camera component is not running")
}

/// The handle and the channels of both threads; nothing runs until [`ExternalThreads::spawn`].
pub fn new(config: &Arc<Config>) -> (ExternalStreams, ExternalThreads) {
    let (tx, rx) = unbounded();
    let (dtx, drx) = unbounded();
    let list = Arc::new(RwLock::new(Arc::new(Vec::new())));
    let discovered = Arc::new(discovery::Shared::default());
    let probe = Duration::from_secs_f64(config.camera.external_probe_timeout.max(0.05));
    let handle = ExternalStreams {
        requests: Some(tx.clone()),
        discovery: Some(dtx.clone()),
        list: list.clone(),
        discovered: discovered.clone(),
        enabled: config.external_discovery.enabled,
        // Longer than the monitor's own bound on answering an `add`.
        reply_timeout: probe * 2 + Duration::from_secs(5),
    };
    let threads = ExternalThreads { config: config.clone(), tx, rx, dtx, drx, list, discovered };
    (handle, threads)
}

/// `camera-external` and `camera-ext-discovery`, not started yet.
pub struct ExternalThreads {
    config: Arc<Config>,
    tx: Sender<monitor::Request>,
    rx: Receiver<monitor::Request>,
    dtx: Sender<discovery::Request>,
    drx: Receiver<discovery::Request>,
    list: Arc<RwLock<Arc<Vec<ExternalStream>>>>,
    discovered: Arc<discovery::Shared>,
}

impl ExternalThreads {
    /// Start both threads. `publish` delivers camera changes to the registry. Returns a receiver that gets one
    /// message once every source known at start has been checked once.
    pub fn spawn(self, publish: Box<dyn Fn(Change) + Send>, supervisor: &Supervisor) -> std::io::Result<Receiver<()>> {
        let (ready_tx, ready_rx) = bounded(1);
        let m = monitor::Monitor::new(&self.config, self.tx, publish, self.list, ready_tx);
        let (rx, sd) = (self.rx, supervisor.shutdown().clone());
        supervisor.spawn("camera-external", move || m.run(rx, sd))?;
        let d = discovery::Discovery::new(&self.config, self.dtx, self.discovered);
        let (drx, sd) = (self.drx, supervisor.shutdown().clone());
        supervisor.spawn("camera-ext-discovery", move || d.run(drx, sd))?;
        Ok(ready_rx)
    }
}
