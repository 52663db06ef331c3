//! Snapshots and recordings.
//!
//! - [`Media`] is the cheap, cloneable handle the rest of the daemon holds; [`Media::new`] builds it with the
//!   recorder's command channel, and [`RecorderThread::spawn`] starts the `recorder` thread that owns the sessions.
//! - Snapshots run on the caller's (blocking-pool) thread, bounded by a gate (`max_concurrent_operations`, one at a
//!   time per camera) and an overall deadline; see `snapshot`.
//! - Recording sessions are owned by the `recorder` thread; handlers send it commands with a reply channel. It
//!   publishes a read-mostly view of the sessions on the [`Recordings`] board (camera listings,
//!   `get_recording_status`, file protection, the shutdown budget).
//! - JPEG snapshots of a ready stream reuse a warm per-camera reader (`grabber`) for 30 s after the last one.
//! - The live MJPEG view (`live`) feeds every viewer of a camera from that same reader, at the live rate. Without
//!   MediaMTX, a direct recording of a V4L2 camera becomes that reader (its ffmpeg also writes the JPEG frames).
//! - Every ffmpeg child goes through `process` (own process group, drained stderr, SIGINT → SIGKILL, reaped).
//!
//! The component talks to cameras and MediaMTX through two small traits ([`CameraLookup`], [`StreamServer`]) so
//! tests can drive it with plain `Camera` values and a fake stream server.

mod grabber;
pub mod live;
pub mod process;
mod progress;
mod recorder;
pub mod rpc;
mod segments;
mod session;
mod snapshot;
pub mod streaming;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde_json::Value;

use crate::camera::{Camera, CameraEvent, Cameras, RecordingLookup, RecordingView};
use crate::config::Config;
use crate::error::Result;
use crate::files::Thresholds;
use crate::mediamtx::{MediaMtx, PathMetrics};
use crate::process::heartbeat::Heartbeats;
use crate::process::status::Components;
use crate::process::{Shutdown, Supervisor};
use crate::rpc::notify::Hub;

pub use live::LiveView;
pub use session::StartParams;
pub use snapshot::SnapshotParams;

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

/// Everything the handle needs from the rest of the daemon.
pub struct Deps {
    pub config: Arc<Config>,
    pub cameras: Arc<dyn CameraLookup>,
    pub mediamtx: Arc<dyn StreamServer>,
    /// Current storage thresholds (they can change at run time).
    pub thresholds: Arc<dyn Fn() -> Thresholds + Send + Sync>,
    /// Where the recorder publishes its sessions (created first: file management reads it too).
    pub recordings: Recordings,
    /// Ends the warm stream readers.
    pub shutdown: Shutdown,
}

/// What the `recorder` thread needs besides the handle's state.
pub struct RecorderWiring {
    /// Camera registry changes (unplug ends a recording).
    pub camera_events: Receiver<CameraEvent>,
    pub hub: Hub,
    pub components: Components,
    pub heartbeats: Heartbeats,
}

/// The read-mostly view of one session, published by the recorder thread.
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub session_id: String,
    pub device: String,
    pub path_name: String,
    /// First segment name, announced at start.
    pub filename: String,
    /// The segment being written, as of the recorder's last look (every half second): camera listings read it
    /// here instead of listing the folder.
    pub current_file: String,
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

/// The recorder's published sessions, by camera device id. Created before the recorder (other components hold it
/// from the start); only the `recorder` thread writes it, everyone else reads. The lock guards a small map and is
/// never held across I/O.
#[derive(Clone, Default)]
pub struct Recordings {
    sessions: Arc<RwLock<HashMap<String, SessionInfo>>>,
}

impl Recordings {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, HashMap<String, SessionInfo>> {
        self.sessions.read()
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, SessionInfo>> {
        self.sessions.write()
    }

    /// Number of running recording sessions (the shutdown budget grows when there are some).
    pub fn count(&self) -> usize {
        self.sessions.read().len()
    }

    /// Is `device` (as in responses) recording?
    pub fn is_recording(&self, device: &str) -> bool {
        self.sessions.read().contains_key(device)
    }

    /// File names that a running recording is writing (never deleted, listed or cleaned up).
    pub fn active_files(&self) -> HashSet<String> {
        let infos: Vec<SessionInfo> = self.sessions.read().values().cloned().collect();
        let mut out: HashSet<String> = infos.iter().flat_map(|s| s.files()).map(|(name, _)| name).collect();
        // The announced names too: the first segment may not exist yet.
        out.extend(infos.into_iter().flat_map(|s| [s.filename, s.current_file]));
        out
    }
}

impl RecordingLookup for Recordings {
    fn recording_of(&self, device: &str) -> Option<RecordingView> {
        // No I/O here: camera listings call this on the WebSocket workers.
        let sessions = self.sessions.read();
        let info = sessions.get(device)?;
        Some(RecordingView {
            session_id: info.session_id.clone(),
            current_file: info.current_file.clone(),
            start_time: info.start,
        })
    }
}

pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub cameras: Arc<dyn CameraLookup>,
    pub mediamtx: Arc<dyn StreamServer>,
    pub thresholds: Arc<dyn Fn() -> Thresholds + Send + Sync>,
    pub commands: Sender<recorder::Command>,
    /// Sessions by camera device id, as published by the recorder.
    pub sessions: Recordings,
    pub gate: snapshot::Gate,
    /// Warm per-camera stream readers for JPEG snapshots (`performance.optimization.enable_caching`).
    pub grabbers: grabber::Grabbers,
}

/// Handle to the snapshot/recording component. Cheap to clone.
#[derive(Clone)]
pub struct Media {
    shared: Arc<Shared>,
}

/// The `recorder` thread, not started yet.
pub struct RecorderThread {
    shared: Arc<Shared>,
    tx: Sender<recorder::Command>,
    rx: Receiver<recorder::Command>,
}

impl Media {
    /// The handle and the recorder's command channel; nothing runs until [`RecorderThread::spawn`].
    pub fn new(deps: Deps) -> (Media, RecorderThread) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            gate: snapshot::Gate::new(deps.config.performance.optimization.max_concurrent_operations),
            grabbers: grabber::Grabbers::new(
                deps.config.performance.optimization.enable_caching,
                deps.shutdown,
                deps.cameras.clone(),
            ),
            config: deps.config,
            cameras: deps.cameras,
            mediamtx: deps.mediamtx,
            thresholds: deps.thresholds,
            commands: tx.clone(),
            sessions: deps.recordings,
        });
        (Media { shared: shared.clone() }, RecorderThread { shared, tx, rx })
    }

    /// `take_snapshot`: the result object (a capture failure is a result with `status: "FAILED"`).
    pub fn take_snapshot(&self, params: SnapshotParams) -> Result<Value> {
        let req = snapshot::Request::new(params, self.shared.config.snapshots.quality)?;
        snapshot::take(&self.shared, &req)
    }

    /// `start_recording`: (result, `recording_status_update` params to publish after the reply).
    pub fn start_recording(&self, params: StartParams) -> Result<(Value, Value)> {
        let req = session::StartRequest::new(params, &self.shared.config)?;
        recorder::request(&self.shared, |reply| recorder::Command::Start { req, reply })
    }

    /// `stop_recording`: (result, `recording_status_update` params to publish after the reply).
    pub fn stop_recording(&self, device: &str) -> Result<(Value, Value)> {
        let device = device.to_string();
        recorder::request(&self.shared, |reply| recorder::Command::Stop { device, reply })
    }

    /// `get_recording_status`: null when the camera is not recording.
    pub fn recording_status(&self, device: &str) -> Result<Value> {
        let camera = self.shared.cameras.get(device)?;
        let info = self.shared.sessions.read().get(&camera.device).cloned();
        Ok(info.map(|s| recorder::status_json(&s)).unwrap_or(Value::Null))
    }

    /// Daemon shutdown, before connections close: finalise every recording (each sends its STOPPED notification)
    /// and refuse new ones. Waits at most `within`.
    pub fn finish_recordings(&self, within: Duration) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.shared.commands.send(recorder::Command::Finish { reply: tx }).is_ok() {
            let _ = rx.recv_timeout(within);
        }
    }

    /// The recorder's published sessions.
    pub fn recordings(&self) -> &Recordings {
        &self.shared.sessions
    }
}

impl RecorderThread {
    /// Start the `recorder` thread (and `recording-progress`, which reports on its sessions).
    pub fn spawn(self, wiring: RecorderWiring, supervisor: &Supervisor) -> std::io::Result<()> {
        progress::spawn(self.shared.sessions.clone(), wiring.hub.clone(), supervisor)?;
        recorder::spawn(self.shared, wiring, self.tx, self.rx, supervisor)
    }
}
