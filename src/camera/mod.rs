//! Cameras: V4L2 discovery, hot-plug, virtual cameras, camera methods.
//!
//! [`Cameras::new`] creates the channels and the handle; [`CameraThreads::spawn`] then starts, through the supervisor:
//! - `camera-discovery` owns the registry ([`registry`]): examines nodes, runs the state machine, publishes.
//! - `camera-hotplug` watches the device directory with inotify and forwards `videoN` names ([`hotplug`]).
//! - `camera-probe` runs the V4L2 ioctls ([`probe`], [`v4l2`]) so a slow driver never stalls the registry.
//!
//! Everyone else reads the immutable snapshot behind [`Cameras`] or subscribes to [`CameraEvent`]s.

mod hotplug;
pub mod model;
mod probe;
mod registry;
pub mod rpc;
pub mod streams;
mod sysfs;
mod v4l2;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::{Mutex, RwLock};

pub use model::{Camera, CameraEvent, CameraStatus, Format, FrameSize};
pub use registry::virtual_camera;
pub use rpc::{RecordingLookup, RecordingView, StreamFigures};
pub use wire::Metrics as StreamMetrics;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::heartbeat::Heartbeats;
use crate::process::status::{Components, State};
use crate::process::Supervisor;
use crate::rpc::notify::Hub;
use registry::{Msg, Registry};

/// State shared between the registry thread (the only writer) and readers.
#[derive(Default)]
pub(crate) struct Shared {
    /// The published camera list: replaced (never mutated) by the registry thread; readers clone the `Arc`.
    snapshot: RwLock<Arc<Vec<Arc<Camera>>>>,
    /// Where registry changes go (MediaMTX paths, recordings). Subscribing happens at wiring time, before the
    /// registry runs; the lock is held only to push or to iterate over the senders.
    subscribers: Mutex<Vec<Sender<CameraEvent>>>,
}

/// Handle to the camera registry. Cheap to clone.
#[derive(Clone)]
pub struct Cameras {
    shared: Arc<Shared>,
    commands: Sender<Msg>,
}

/// The camera component's threads, not started yet: the receivers and what the threads will own.
pub struct CameraThreads {
    config: Arc<Config>,
    shared: Arc<Shared>,
    commands: Sender<Msg>,
    rx: Receiver<Msg>,
}

/// A client-supplied camera id, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraId {
    /// `/dev/videoN` or `cameraN`.
    Real(u32),
    /// `virtualN`.
    Virtual(u32),
}

impl CameraId {
    /// `/dev/videoN`, `cameraN` or `virtualN` with N a plain decimal number (no sign, no leading zeros);
    /// anything else is malformed (-32602).
    pub fn parse(id: &str) -> Result<CameraId> {
        let number = |s: &str| -> Option<u32> {
            let ok = !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
            (ok && (s == "0" || !s.starts_with('0'))).then(|| s.parse().ok()).flatten()
        };
        let parsed = if let Some(n) = id.strip_prefix("/dev/video") {
            number(n).map(CameraId::Real)
        } else if let Some(n) = id.strip_prefix("camera") {
            number(n).map(CameraId::Real)
        } else if let Some(n) = id.strip_prefix("virtual") {
            number(n).map(CameraId::Virtual)
        } else {
            None
        };
        parsed.ok_or_else(|| {
            Error::invalid_params(format!("device must be /dev/videoN, cameraN or virtualN, got {id:?}"))
        })
    }
}

impl Cameras {
    /// The handle and its channels; nothing runs until [`CameraThreads::spawn`].
    pub fn new(config: Arc<Config>) -> (Cameras, CameraThreads) {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = unbounded::<Msg>();
        let cameras = Cameras { shared: shared.clone(), commands: tx.clone() };
        (cameras, CameraThreads { config, shared, commands: tx, rx })
    }

    /// Every camera seen since start, in discovery order (virtual cameras first, in config order).
    pub fn list(&self) -> Vec<Arc<Camera>> {
        self.shared.snapshot.read().as_ref().clone()
    }

    /// Resolve a client-supplied id (`/dev/videoN`, `cameraN`, `virtualN`): malformed → -32602, never seen → -1000.
    pub fn get(&self, id: &str) -> Result<Arc<Camera>> {
        let wanted = CameraId::parse(id)?;
        let snapshot = self.shared.snapshot.read().clone();
        snapshot
            .iter()
            .find(|c| {
                let have = if c.is_virtual { CameraId::Virtual(c.number) } else { CameraId::Real(c.number) };
                have == wanted
            })
            .cloned()
            .ok_or_else(|| Error::CameraNotFound(id.to_string()))
    }

    /// Registry changes, for components that follow cameras (MediaMTX paths, recordings).
    pub fn subscribe(&self) -> Receiver<CameraEvent> {
        let (tx, rx) = unbounded();
        self.shared.subscribers.lock().push(tx);
        rx
    }

    /// A handle serving a fixed list (unit tests of code that reads cameras).
    #[cfg(test)]
    pub(crate) fn fixed(list: Vec<Camera>) -> Cameras {
        let (c, _) = Cameras::new(Arc::new(Config::default()));
        *c.shared.snapshot.write() = Arc::new(list.into_iter().map(Arc::new).collect());
        c
    }

    /// Re-evaluate `camera_status_update` for `device` (e.g. its MediaMTX path appeared); sends only on change.
    pub fn announce(&self, device: &str) {
        if let Ok(cam) = self.get(device) {
            let _ = self.commands.send(Msg::Announce(cam.device.clone()));
        }
    }
}

impl CameraThreads {
    /// Start `camera-probe`, `camera-discovery` and `camera-hotplug`. Returns once the initial scan's probes have
    /// answered (bounded by `camera.capability_timeout` plus a second), so the first `get_camera_list` already
    /// sees plugged cameras.
    pub fn spawn(
        self,
        hub: Hub,
        components: Components,
        heartbeats: &Heartbeats,
        supervisor: &Supervisor,
    ) -> std::io::Result<()> {
        let CameraThreads { config, shared, commands, rx } = self;
        components.set("camera_monitor", State::Starting, "Camera monitor is starting");
        let (jobs_tx, jobs_rx) = unbounded();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let shutdown = supervisor.shutdown().clone();

        let (sysfs_dir, enumerate) = (config.camera.sysfs_dir.clone(), config.camera.enable_capability_detection);
        let replies = probe::reply_sender(commands.clone(), Msg::Probed);
        let sd = shutdown.clone();
        supervisor.spawn("camera-probe", move || probe::run(jobs_rx, replies, sysfs_dir, enumerate, sd))?;

        let beat = heartbeats.register("camera-discovery", registry::MAX_SILENCE);
        let registry = Registry::new(config.clone(), jobs_tx, shared, hub, components, beat);
        let sd = shutdown.clone();
        supervisor.spawn("camera-discovery", move || registry.run(rx, ready_tx, sd))?;

        let watcher = hotplug::Watcher::new(&config.camera, commands);
        supervisor.spawn("camera-hotplug", move || watcher.run(shutdown))?;

        let wait = Duration::from_secs_f64(config.camera.capability_timeout.max(0.1) + 1.0);
        if ready_rx.recv_timeout(wait).is_err() {
            log::warn!("camera discovery: initial scan not finished after {wait:?}; continuing");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_per_decisions() {
        assert_eq!(CameraId::parse("/dev/video0").unwrap(), CameraId::Real(0));
        assert_eq!(CameraId::parse("camera12").unwrap(), CameraId::Real(12));
        assert_eq!(CameraId::parse("virtual1").unwrap(), CameraId::Virtual(1));
        for bad in
            ["", "video0", "/dev/video", "/dev/video-1", "camera01", "camera+1", "cam0", "virtual", "/dev/videoX"]
        {
            assert!(matches!(CameraId::parse(bad), Err(Error::InvalidParams(_))), "{bad}");
        }
    }

    #[test]
    fn unstarted_handle_knows_no_camera() {
        let (c, _threads) = Cameras::new(Arc::new(Config::default()));
        assert!(c.list().is_empty());
        assert!(matches!(c.get("/dev/video0"), Err(Error::CameraNotFound(_))));
        assert!(matches!(c.get("bogus"), Err(Error::InvalidParams(_))));
        c.announce("/dev/video0");
    }
}
