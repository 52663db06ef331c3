//! Cameras: V4L2 discovery, hot-plug, virtual cameras, camera methods (issue 5).
//!
//! Threads (started by [`Cameras::start`] through the supervisor):
//! - `camera-discovery` owns the registry ([`registry`]): examines nodes, runs the state machine, publishes.
//! - `camera-hotplug` watches the device directory with inotify and forwards `videoN` names ([`hotplug`]).
//! - `camera-probe` runs the V4L2 ioctls ([`probe`], [`v4l2`]) so a slow driver never stalls the registry.
//!
//! Everyone else reads the immutable snapshot behind [`Cameras`] or subscribes to [`CameraEvent`]s.
#![deny(unsafe_code)] // the ioctl and poll islands (v4l2.rs, hotplug.rs) opt out explicitly

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

pub use methods::METHODS;
pub use model::{Camera, CameraEvent, CameraStatus, Format, FrameSize};
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
}

#[derive(Clone, Default)]
pub struct Cameras {
    shared: Arc<Shared>,
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

        let watcher = hotplug::Watcher::new(&config.camera, tx);
        supervisor.spawn("camera-hotplug", move || watcher.run(shutdown))?;

        let wait = Duration::from_secs_f64(config.camera.capability_timeout.max(0.1) + 1.0);
        if ready_rx.recv_timeout(wait).is_err() {
            log::warn!("camera discovery: initial scan not finished after {wait:?}; continuing");
        }
        Ok(cameras)
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
        for bad in
            ["", "video0", "/dev/video", "/dev/video-1", "camera01", "camera+1", "cam0", "virtual", "/dev/videoX"]
        {
            assert!(matches!(CameraId::parse(bad), Err(Error::InvalidParams(_))), "{bad}");
        }
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
