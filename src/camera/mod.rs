//! Cameras: V4L2 discovery, hot-plug, virtual cameras, external RTSP sources, camera methods.
//!
//! Threads (started by [`Cameras::start`] through the supervisor):
//! - `camera-discovery` owns the registry ([`registry`]): examines nodes, runs the state machine, publishes.
//! - `camera-hotplug` watches the device directory with inotify and forwards `videoN` names ([`hotplug`]).
//! - `camera-probe` runs the V4L2 ioctls ([`probe`], [`v4l2`]) so a slow driver never stalls the registry.
//! - `camera-external` and `camera-ext-discovery` follow IP cameras ([`external`]) and report them to the registry.
//!
//! Everyone else reads the immutable snapshot behind [`Cameras`] or subscribes to [`CameraEvent`]s.
#![deny(unsafe_code)] // the ioctl and poll islands (v4l2.rs, hotplug.rs) opt out explicitly

pub mod external;
mod hotplug;
pub mod methods;
pub mod model;
mod probe;
mod registry;
pub mod streams;
mod sysfs;
mod v4l2;
mod wire;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::{Mutex, RwLock};

pub use external::ExternalStreams;
pub use methods::METHODS;
pub use model::{Camera, CameraEvent, CameraKind, CameraStatus, Format, FrameSize};
pub use registry::virtual_camera;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::status::{Components, State};
use crate::process::Supervisor;
use crate::rpc::notify::Hub;
use registry::{Msg, Registry};

/// State shared between the registry thread (the only writer) and readers.
#[derive(Default)]
pub(crate) struct Shared {
    snapshot: RwLock<Arc<Vec<Arc<Camera>>>>,
    subscribers: Mutex<Vec<Sender<CameraEvent>>>,
    commands: OnceLock<Sender<Msg>>,
    external: OnceLock<ExternalStreams>,
}

#[derive(Clone, Default)]
pub struct Cameras {
    shared: Arc<Shared>,
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
    /// Start the camera threads. Returns once the initial scan's probes have answered (bounded by
    /// `camera.capability_timeout` plus a second), so the first `get_camera_list` already sees plugged cameras.
    pub fn start(
        config: Arc<Config>,
        hub: Hub,
        components: Components,
        supervisor: &Supervisor,
    ) -> std::io::Result<Cameras> {
        components.set("camera_monitor", State::Starting, "Camera monitor is starting");
        let cameras = Cameras::default();
        let (tx, rx) = unbounded::<Msg>();
        let _ = cameras.shared.commands.set(tx.clone());
        let (jobs_tx, jobs_rx) = unbounded();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let shutdown = supervisor.shutdown().clone();

        let (sysfs_dir, enumerate) = (config.camera.sysfs_dir.clone(), config.camera.enable_capability_detection);
        let replies = probe::reply_sender(tx.clone(), Msg::Probed);
        let sd = shutdown.clone();
        supervisor.spawn("camera-probe", move || probe::run(jobs_rx, replies, sysfs_dir, enumerate, sd))?;

        let registry = Registry::new(config.clone(), jobs_tx, cameras.shared.clone(), hub, components);
        let sd = shutdown.clone();
        supervisor.spawn("camera-discovery", move || registry.run(rx, ready_tx, sd))?;

        let to_registry = tx.clone();
        let publish = Box::new(move |c: external::Change| drop(to_registry.send(Msg::External(c))));
        let (ext, ext_ready) = external::start(&config, publish, supervisor)?;
        let _ = cameras.shared.external.set(ext);

        let watcher = hotplug::Watcher::new(&config.camera, tx);
        supervisor.spawn("camera-hotplug", move || watcher.run(shutdown))?;

        // The first list already shows plugged cameras and whether each external source answers.
        let probes = config.camera.capability_timeout.max(2.0 * config.camera.external_probe_timeout);
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(probes.max(0.1) + 1.0);
        for (ready, what) in [(ready_rx, "camera discovery"), (ext_ready, "external camera checks")] {
            if ready.recv_deadline(deadline).is_err() {
                log::warn!("{what}: initial round not finished in time; continuing");
            }
        }
        Ok(cameras)
    }

    /// The external (IP camera) streams: add, remove, list, discover.
    pub fn external(&self) -> ExternalStreams {
        self.shared.external.get().cloned().unwrap_or_default()
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
        let c = Cameras::default();
        *c.shared.snapshot.write() = Arc::new(list.into_iter().map(Arc::new).collect());
        c
    }

    /// Re-evaluate `camera_status_update` for `device` (e.g. its MediaMTX path appeared); sends only on change.
    pub fn announce(&self, device: &str) {
        if let (Some(tx), Ok(cam)) = (self.shared.commands.get(), self.get(device)) {
            let _ = tx.send(Msg::Announce(cam.device.clone()));
        }
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
        let c = Cameras::default();
        assert!(c.list().is_empty());
        assert!(matches!(c.get("/dev/video0"), Err(Error::CameraNotFound(_))));
        assert!(matches!(c.get("bogus"), Err(Error::InvalidParams(_))));
        c.announce("/dev/video0");
    }
}
