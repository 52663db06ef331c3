//! Snapshots and recordings (issue 7).
//!
//! - [`Media`] is the cheap, cloneable handle the rest of the daemon holds. It can exist before its threads start
//!   ([`Media::new`] + [`Media::launch`]) so wiring order does not matter.
//! - Snapshots run on the caller's (blocking-pool) thread, bounded by a gate (`max_concurrent_operations`, one at a
//!   time per camera) and an overall deadline; see `snapshot`.
//! - Recording sessions are owned by one `recorder` thread; handlers send it commands with a reply channel. It
//!   publishes a read-mostly view of the sessions (for camera listings, `get_recording_status`, file protection).
//! - JPEG snapshots of a ready stream reuse a warm per-camera reader (`grabber`) for 30 s after the last one.
//! - Every ffmpeg child goes through `process` (own process group, drained stderr, SIGINT → SIGKILL, reaped).
//!
//! The component talks to cameras and MediaMTX through two small traits ([`CameraLookup`], [`StreamServer`]) so
//! tests can drive it with plain `Camera` values and a fake stream server.

mod grabber;
pub mod process;
mod recorder;
pub mod rpc;
mod segments;
mod session;
mod snapshot;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::RwLock;
use serde_json::Value;

use crate::app::App;
use crate::camera::{Camera, CameraEvent, Cameras};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::files::{Files, Thresholds};
use crate::mediamtx::{MediaMtx, PathMetrics};
use crate::process::status::Components;
use crate::process::Supervisor;
use crate::rpc::notify::Hub;

pub use rpc::METHODS;

/// What camera listings show about a running recording.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingView {
    pub session_id: String,
    /// Newest segment file name.
    pub current_file: String,
    pub start_time: SystemTime,
}

/// Resolves client-supplied camera ids (implemented by [`Cameras`]).
pub trait CameraLookup: Send + Sync {
    /// Malformed → -32602, never seen → -1000.
    fn get(&self, id: &str) -> Result<Arc<Camera>>;
}

impl CameraLookup for Cameras {
    fn get(&self, id: &str) -> Result<Arc<Camera>> {
        Cameras::get(self, id)
    }
}

/// The parts of MediaMTX this component uses (implemented by [`MediaMtx`]).
pub trait StreamServer: Send + Sync {
    fn enabled(&self) -> bool;
    fn available(&self) -> bool;
    fn path_metrics(&self, path: &str) -> Option<PathMetrics>;
    fn ensure_path(&self, path: &str) -> Result<()>;
    fn set_record(&self, path: &str, on: bool) -> Result<()>;
    fn wait_ready(&self, path: &str, timeout: Duration) -> Result<()>;
}

impl StreamServer for MediaMtx {
    fn enabled(&self) -> bool {
        MediaMtx::enabled(self)
    }
    fn available(&self) -> bool {
        MediaMtx::available(self)
    }
    fn path_metrics(&self, path: &str) -> Option<PathMetrics> {
        MediaMtx::path_metrics(self, path)
    }
    fn ensure_path(&self, path: &str) -> Result<()> {
        MediaMtx::ensure_path(self, path)
    }
    fn set_record(&self, path: &str, on: bool) -> Result<()> {
        MediaMtx::set_record(self, path, on)
    }
    fn wait_ready(&self, path: &str, timeout: Duration) -> Result<()> {
        MediaMtx::wait_ready(self, path, timeout)
    }
}

/// Everything the component needs from the rest of the daemon.
pub struct Deps {
    pub config: Arc<Config>,
    pub cameras: Arc<dyn CameraLookup>,
    /// Camera registry changes (unplug ends a recording).
    pub camera_events: Receiver<CameraEvent>,
    pub mediamtx: Arc<dyn StreamServer>,
    /// Current storage thresholds (they can change at run time).
    pub thresholds: Arc<dyn Fn() -> Thresholds + Send + Sync>,
    pub hub: Hub,
    pub components: Components,
}

/// The read-mostly view of one session, published by the recorder thread.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub session_id: String,
    pub device: String,
    pub path_name: String,
    /// Expected first segment name, announced at start.
    pub filename: String,
    pub start: SystemTime,
    pub duration: Option<u64>,
    pub format: String,
    /// Directory the segments go to, and the names that were there before the session began.
    pub dir: PathBuf,
    pub preexisting: Arc<HashSet<String>>,
}

impl SessionInfo {
    /// The session's segment files so far: (name, size), oldest first.
    pub fn files(&self) -> Vec<(String, u64)> {
        segments::session_files(&self.dir, &self.path_name, &self.preexisting)
    }
}

pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub cameras: Arc<dyn CameraLookup>,
    pub mediamtx: Arc<dyn StreamServer>,
    pub thresholds: Arc<dyn Fn() -> Thresholds + Send + Sync>,
    pub commands: Sender<recorder::Command>,
    /// Sessions by camera device id.
    pub sessions: RwLock<HashMap<String, SessionInfo>>,
    pub gate: snapshot::Gate,
    /// Warm per-camera stream readers for JPEG snapshots (`performance.optimization.enable_caching`).
    pub grabbers: grabber::Grabbers,
}

/// Handle to the snapshot/recording component. Cheap to clone.
#[derive(Clone, Default)]
pub struct Media {
    inner: Arc<OnceLock<Arc<Shared>>>,
}

impl Media {
    /// A handle whose threads are not started yet (every operation answers "not started" until [`Media::launch`]).
    pub fn new() -> Media {
        Media::default()
    }

    /// Create the handle and start the `recorder` thread with the daemon's real components.
    pub fn start(
        config: Arc<Config>,
        cameras: Cameras,
        mediamtx: MediaMtx,
        files: Files,
        hub: Hub,
        components: Components,
        supervisor: &Supervisor,
    ) -> std::io::Result<Media> {
        let media = Media::new();
        let deps = Deps {
            config,
            camera_events: cameras.subscribe(),
            cameras: Arc::new(cameras),
            mediamtx: Arc::new(mediamtx),
            thresholds: Arc::new(move || files.thresholds()),
            hub,
            components,
        };
        media.launch(deps, supervisor)?;
        Ok(media)
    }

    /// Start the `recorder` thread for the handle held in `app`, with the app's components.
    pub fn start_for(&self, app: &App, supervisor: &Supervisor) -> std::io::Result<()> {
        let files = app.files.clone();
        let deps = Deps {
            config: app.config.clone(),
            camera_events: app.cameras.subscribe(),
            cameras: Arc::new(app.cameras.clone()),
            mediamtx: Arc::new(app.mediamtx.clone()),
            thresholds: Arc::new(move || files.thresholds()),
            hub: app.hub.clone(),
            components: app.components.clone(),
        };
        self.launch(deps, supervisor)
    }

    /// Start the `recorder` thread for this handle (once).
    pub fn launch(&self, deps: Deps, supervisor: &Supervisor) -> std::io::Result<()> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            gate: snapshot::Gate::new(deps.config.performance.optimization.max_concurrent_operations),
            grabbers: grabber::Grabbers::new(
                deps.config.performance.optimization.enable_caching,
                supervisor.shutdown().clone(),
                deps.cameras.clone(),
            ),
            config: deps.config.clone(),
            cameras: deps.cameras.clone(),
            mediamtx: deps.mediamtx.clone(),
            thresholds: deps.thresholds.clone(),
            commands: tx.clone(),
            sessions: RwLock::new(HashMap::new()),
        });
        if self.inner.set(shared.clone()).is_err() {
            return Err(std::io::Error::other("media component already started"));
        }
        recorder::spawn(shared, deps, tx, rx, supervisor)
    }

    fn shared(&self) -> Result<&Arc<Shared>> {
        self.inner.get().ok_or_else(|| Error::internal("media component not started"))
    }

    /// `take_snapshot`: the result object (a capture failure is a result with `status: "FAILED"`).
    pub fn take_snapshot(&self, params: &Value) -> Result<Value> {
        let shared = self.shared()?;
        let req = snapshot::Request::parse(params, shared.config.snapshots.quality)?;
        snapshot::take(shared, &req)
    }

    /// `start_recording`: (result, `recording_status_update` params to publish after the reply).
    pub fn start_recording(&self, params: &Value) -> Result<(Value, Value)> {
        let shared = self.shared()?;
        let req = recorder::StartRequest::parse(params, &shared.config)?;
        recorder::request(shared, |reply| recorder::Command::Start { req, reply })
    }

    /// `stop_recording`: (result, `recording_status_update` params to publish after the reply).
    pub fn stop_recording(&self, params: &Value) -> Result<(Value, Value)> {
        let shared = self.shared()?;
        let device = crate::rpc::params::required_str(params, "device")?.to_string();
        recorder::request(shared, |reply| recorder::Command::Stop { device, reply })
    }

    /// `get_recording_status`: null when the camera is not recording.
    pub fn recording_status(&self, params: &Value) -> Result<Value> {
        let shared = self.shared()?;
        let id = crate::rpc::params::required_str(params, "device")?;
        let camera = shared.cameras.get(id)?;
        let info = shared.sessions.read().get(&camera.device).cloned();
        Ok(info.map(|s| recorder::status_json(&s)).unwrap_or(Value::Null))
    }

    /// The running recording session of a camera (`device` as in responses), if any.
    pub fn recording_of(&self, device: &str) -> Option<RecordingView> {
        let info = self.inner.get()?.sessions.read().get(device).cloned()?;
        let current_file = info.files().pop().map(|(name, _)| name).unwrap_or_else(|| info.filename.clone());
        Some(RecordingView { session_id: info.session_id, current_file, start_time: info.start })
    }

    /// Number of running recording sessions (the shutdown budget grows when there are some).
    pub fn recording_count(&self) -> usize {
        self.inner.get().map_or(0, |s| s.sessions.read().len())
    }

    /// File names that a running recording is writing (never deleted, listed or cleaned up).
    pub fn active_files(&self) -> HashSet<String> {
        let Some(shared) = self.inner.get() else {
            return HashSet::new();
        };
        let infos: Vec<SessionInfo> = shared.sessions.read().values().cloned().collect();
        let mut out: HashSet<String> = infos.iter().flat_map(|s| s.files()).map(|(name, _)| name).collect();
        // The announced name too: the first segment may not exist yet.
        out.extend(infos.into_iter().map(|s| s.filename));
        out
    }
}
