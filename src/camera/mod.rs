//! Cameras: V4L2 discovery, hot-plug, virtual cameras, external RTSP sources, camera methods.
//!
//! [`Cameras::new`] creates the channels and the handle; [`CameraThreads::spawn`] then starts, through the supervisor:
//! - `camera-discovery` owns the registry ([`registry`]): examines nodes, runs the state machine, publishes.
//! - `camera-hotplug` watches the device directory with inotify and forwards `videoN` names ([`hotplug`]).
//! - `camera-probe` runs the V4L2 ioctls ([`probe`], [`v4l2`]) so a slow driver never stalls the registry.
//! - `camera-external` and `camera-ext-discovery` follow IP cameras ([`external`]) and report them to the registry.
//!
//! (`ps -T` shows the first 15 bytes of a name: `camera-discover`, `camera-ext-disc`.)
//!
//! Everyone else reads the immutable snapshot behind [`Cameras`] or subscribes to [`CameraEvent`]s.

pub mod external;
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

pub use external::ExternalStreams;
pub use model::{Camera, CameraEvent, CameraKind, CameraStatus, Format, FrameSize};
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
    external: ExternalStreams,
}

/// The camera component's threads, not started yet: the receivers and what the threads will own.
pub struct CameraThreads {
    config: Arc<Config>,
    shared: Arc<Shared>,
    commands: Sender<Msg>,
    rx: Receiver<Msg>,
    external: external::ExternalThreads,
}

/// A client-supplied camera id, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraId {
    /// `/dev/videoN` or `cameraN`.
    Real(u32),
    /// `virtualN`.
    Virtual(u32),
    /// A stream name (letters, digits, `_`, `-`): an external camera, if one has that name.
    Name(String),
}

impl CameraId {
    /// `/dev/videoN`, `cameraN` or `virtualN` with N a plain decimal number (no sign, no leading zeros), or a
    /// valid stream name; anything else is malformed (-32602).
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
        parsed
            .or_else(|| external::source::name_problem(id).is_none().then(|| CameraId::Name(id.to_string())))
            .ok_or_else(|| {
                Error::invalid_params(format!(
                    "device must be /dev/videoN, cameraN, virtualN or an external stream name, got {id:?}"
                ))
            })
    }
}

impl Cameras {
    /// The handle and its channels; nothing runs until [`CameraThreads::spawn`].
    pub fn new(config: Arc<Config>) -> (Cameras, CameraThreads) {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = unbounded::<Msg>();
        let (external, external_threads) = external::new(&config);
        let cameras = Cameras { shared: shared.clone(), commands: tx.clone(), external };
        (cameras, CameraThreads { config, shared, commands: tx, rx, external: external_threads })
    }

    /// The external (IP camera) streams: add, remove, list, discover.
    pub fn external(&self) -> ExternalStreams {
        self.external.clone()
    }

    /// Every camera seen since start, in discovery order (virtual cameras first, in config order).
    pub fn list(&self) -> Vec<Arc<Camera>> {
        self.shared.snapshot.read().as_ref().clone()
    }

    /// Resolve a client-supplied id (`/dev/videoN`, `cameraN`, `virtualN`, an external stream name): malformed →
    /// -32602, never seen → -1000. A name that is no external camera's is not a camera id at all: -32602, as
    /// before external cameras existed.
    pub fn get(&self, id: &str) -> Result<Arc<Camera>> {
        let wanted = CameraId::parse(id)?;
        let snapshot = self.shared.snapshot.read().clone();
        let found = snapshot.iter().find(|c| match (&wanted, c.kind) {
            (CameraId::Real(n), CameraKind::V4l2) | (CameraId::Virtual(n), CameraKind::Virtual) => c.number == *n,
            (CameraId::Name(name), CameraKind::External) => c.device == *name,
            _ => false,
        });
        match (found, wanted) {
            (Some(c), _) => Ok(c.clone()),
            (None, CameraId::Name(_)) => Err(Error::invalid_params(format!(
                "device {id:?} is not a camera: expected /dev/videoN, cameraN, virtualN or the name of an external stream"
            ))),
            (None, _) => Err(Error::CameraNotFound(id.to_string())),
        }
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
    /// Start `camera-probe`, `camera-discovery`, the external-camera threads and `camera-hotplug`. Returns once the
    /// initial scan's probes and the first check of every external source have answered (bounded by the probe
    /// timeouts plus a second), so the first `get_camera_list` already shows plugged cameras and whether each
    /// external source answers.
    pub fn spawn(
        self,
        hub: Hub,
        components: Components,
        heartbeats: &Heartbeats,
        supervisor: &Supervisor,
    ) -> std::io::Result<()> {
        let CameraThreads { config, shared, commands, rx, external } = self;
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

        let to_registry = commands.clone();
        let publish = Box::new(move |c: external::Change| drop(to_registry.send(Msg::External(c))));
        let ext_ready = external.spawn(publish, supervisor)?;

        let watcher = hotplug::Watcher::new(&config.camera, commands);
        supervisor.spawn("camera-hotplug", move || watcher.run(shutdown))?;

        let probes = config.camera.capability_timeout.max(2.0 * config.camera.external_probe_timeout);
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(probes.max(0.1) + 1.0);
        for (ready, what) in [(ready_rx, "camera discovery"), (ext_ready, "external camera checks")] {
            if ready.recv_deadline(deadline).is_err() {
                log::warn!("{what}: initial round not finished in time; continuing");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_in_every_accepted_form() {
        assert_eq!(CameraId::parse("/dev/video0").unwrap(), CameraId::Real(0));
        assert_eq!(CameraId::parse("camera12").unwrap(), CameraId::Real(12));
        assert_eq!(CameraId::parse("virtual1").unwrap(), CameraId::Virtual(1));
        assert_eq!(CameraId::parse("front_door-2").unwrap(), CameraId::Name("front_door-2".into()));
        for bad in
            ["", "video0", "/dev/video", "/dev/video-1", "camera01", "camera+1", "virtual", "/dev/videoX", "a b", "x/y"]
        {
            assert!(matches!(CameraId::parse(bad), Err(Error::InvalidParams(_))), "{bad}");
        }
    }

    #[test]
    fn external_ids_resolve_and_unknown_names_stay_malformed() {
        let mut ext = Camera::unprobed(external::NO_DEVICE_NODE, CameraStatus::Connected);
        (ext.device, ext.path_name, ext.kind) = ("door".into(), "door".into(), CameraKind::External);
        let v = registry::virtual_camera(0, &Default::default());
        let c = Cameras::fixed(vec![v, Camera::unprobed(0, CameraStatus::Connected), ext]);
        assert_eq!(c.get("door").unwrap().device, "door");
        assert_eq!(c.get("camera0").unwrap().device, "/dev/video0");
        assert_eq!(c.get("virtual0").unwrap().device, "virtual0");
        assert!(matches!(c.get("nonsense"), Err(Error::InvalidParams(_))), "unknown names are not camera ids");
        assert!(matches!(c.get("Door"), Err(Error::InvalidParams(_))));
        assert!(matches!(c.get("camera1"), Err(Error::CameraNotFound(_))));
        assert!(matches!(c.get("virtual1"), Err(Error::CameraNotFound(_))));
        // An external camera never answers to a device-number id, however its number is set.
        assert!(c.get(&format!("/dev/video{}", external::NO_DEVICE_NODE)).is_err());
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
