//! The camera registry and its owner thread (`camera-discovery`).
//!
//! Only this thread mutates camera state. It examines device nodes when the hot-plug watcher reports a name and on
//! a cheap `stat()` sweep every `camera.poll_interval`, hands probes to the `camera-probe` thread, and on every
//! change publishes: an immutable snapshot for readers, a [`CameraEvent`] to subscribers and, when the notification
//! params differ from the last ones sent for that device, one `camera_status_update`.
//!
//! Coalescing: a node is identified by (dev, inode, rdev, ctime); an event for a node whose identity did not change
//! is a no-op, and a probe in flight absorbs further events (its reply triggers one more probe if the node changed
//! meanwhile). The first event of a plug is acted on at once, so coalescing never delays the first notification.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Value};

use super::external::Change;
use super::model::{ffmpeg_input_format, preferred_mode, Camera, CameraEvent, CameraKind, CameraStatus, DEFAULT_FPS};
use super::model::{Format, FrameSize, DEFAULT_RESOLUTION};
use super::probe::{self, CaptureInfo, ProbeError, Probed};
use super::{sysfs, wire, Shared};
use crate::config::{Config, VirtualCameraConfig};
use crate::events::Topic;
use crate::process::heartbeat::Heartbeat;
use crate::process::status::{Components, State};
use crate::process::Shutdown;
use crate::rpc::notify::{Hub, Notification};

/// How long a permission error right after a node appears is retried before it counts (udev may still be fixing the
/// node's group).
const PERMISSION_GRACE: Duration = Duration::from_secs(2);
const PERMISSION_RETRY: Duration = Duration::from_millis(100);
/// The registry loop turns at least this often, to tick its heartbeat whatever `camera.poll_interval` is.
const TURN: Duration = Duration::from_secs(1);
/// Silent longer than this, the registry loop is stuck (the systemd watchdog is then no longer fed).
pub const MAX_SILENCE: Duration = Duration::from_secs(20);
/// A second probe this long after a successful one turns `provisional` into `confirmed`.
const CONFIRM_AFTER: Duration = Duration::from_secs(2);

/// Messages to the registry thread.
pub enum Msg {
    /// Something happened to `<device_dir>/videoN`.
    Node(u32),
    /// Examine every node (watch (re)established, inotify queue overflow).
    Rescan,
    Probed(probe::Reply),
    /// Re-evaluate `camera_status_update` for a device id.
    Announce(String),
    /// An external camera appeared, changed or was removed.
    External(Change),
}

/// What identifies one incarnation of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeId {
    dev: u64,
    ino: u64,
    rdev: u64,
    ctime: (i64, i64),
}

/// Only character devices count; regular files and anything else in the device directory are ignored.
fn node_id(path: &std::path::Path) -> Option<NodeId> {
    let m = std::fs::metadata(path).ok()?;
    m.file_type().is_char_device().then(|| NodeId {
        dev: m.dev(),
        ino: m.ino(),
        rdev: m.rdev(),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

struct InFlight {
    token: u64,
    node: NodeId,
    deadline: Instant,
    timed_out: bool,
    confirming: bool,
}

struct Entry {
    node: Option<NodeId>,
    appeared: Instant,
    probing: Option<InFlight>,
    retry_at: Option<Instant>,
    retries_left: u32,
    confirm_at: Option<Instant>,
    /// The published camera; None while the node has never been visible (e.g. a metadata node).
    camera: Option<Arc<Camera>>,
}

pub struct Registry {
    config: Arc<Config>,
    dir: PathBuf,
    numbers: Vec<u32>,
    entries: BTreeMap<u32, Entry>,
    /// Real cameras in the order they first became visible.
    order: Vec<u32>,
    virtuals: Vec<Arc<Camera>>,
    /// External cameras, in the order their monitor first reported them.
    externals: Vec<Arc<Camera>>,
    last_sent: HashMap<String, Value>,
    /// The last capability event published per device (`camera.capability_detected` or `_error`); cleared when the
    /// camera's capabilities are no longer known (unplugged, detection off), so the next ones are announced again.
    capabilities_sent: HashMap<String, (Topic, Value)>,
    next_token: u64,
    jobs: Sender<probe::Job>,
    shared: Arc<Shared>,
    hub: Hub,
    components: Components,
    beat: Heartbeat,
}

impl Registry {
    pub fn new(
        config: Arc<Config>,
        jobs: Sender<probe::Job>,
        shared: Arc<Shared>,
        hub: Hub,
        components: Components,
        beat: Heartbeat,
    ) -> Registry {
        let virtuals =
            config.camera.virtual_cameras.iter().enumerate().map(|(i, v)| Arc::new(virtual_camera(i, v))).collect();
        Registry {
            dir: config.camera.device_dir.clone(),
            numbers: config.camera.device_numbers(),
            config,
            entries: BTreeMap::new(),
            order: Vec::new(),
            virtuals,
            externals: Vec::new(),
            last_sent: HashMap::new(),
            capabilities_sent: HashMap::new(),
            next_token: 0,
            jobs,
            shared,
            hub,
            components,
            beat,
        }
    }

    /// Body of the `camera-discovery` thread. `ready` gets one message once the first sweep's probes are answered.
    pub fn run(mut self, rx: Receiver<Msg>, ready: Sender<()>, shutdown: Shutdown) -> Result<(), String> {
        let poll = Duration::from_secs_f64(self.config.camera.poll_interval.max(0.01));
        log::info!("camera discovery: watching {} for video{:?}", self.dir.display(), self.numbers);
        for cam in self.virtuals.clone() {
            self.notify(&cam);
            let _ = self.send_event(&cam, None);
        }
        self.sweep(Instant::now());
        self.publish_snapshot();
        let mut ready = Some(ready);
        let mut next_sweep = Instant::now() + poll;
        loop {
            self.beat.tick();
            if ready.is_some() && self.entries.values().all(|e| e.probing.as_ref().is_none_or(|p| p.timed_out)) {
                let _ = ready.take().map(|r| r.send(()));
            }
            let now = Instant::now();
            let wake = self.next_timer().map_or(next_sweep, |t| t.min(next_sweep)).min(now + TURN);
            crossbeam_channel::select! {
                recv(rx) -> m => match m {
                    Ok(m) => self.handle(m),
                    Err(_) => break,
                },
                recv(shutdown.channel()) -> _ => break,
                default(wake.saturating_duration_since(now)) => {}
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + poll;
            }
            self.run_timers(now);
        }
        self.components.set("camera_monitor", State::Stopped, "Camera monitor stopped");
        Ok(())
    }

    fn handle(&mut self, m: Msg) {
        let now = Instant::now();
        match m {
            Msg::Node(n) => self.examine(n, now),
            Msg::Rescan => self.sweep(now),
            Msg::Probed(r) => self.on_probe(r, now),
            Msg::Announce(device) => {
                let cam = self.shared.snapshot.read().iter().find(|c| c.device == device).cloned();
                if let Some(cam) = cam {
                    self.notify(&cam);
                }
            }
            Msg::External(change) => self.on_external(change),
        }
    }

    /// External cameras are examined by their own thread; the registry publishes what it reports.
    fn on_external(&mut self, change: Change) {
        match change {
            Change::Upsert(cam) => {
                let i = self.externals.iter().position(|c| c.device == cam.device);
                let prev = i.map(|i| self.externals[i].clone());
                if prev.as_deref() == Some(&*cam) {
                    return;
                }
                let cam = Arc::new(*cam);
                match i {
                    Some(i) => self.externals[i] = cam.clone(),
                    None => self.externals.push(cam.clone()),
                }
                self.announce(&cam, prev.map(|p| p.status));
            }
            Change::Remove(device) => {
                let Some(i) = self.externals.iter().position(|c| c.device == device) else { return };
                let prev = self.externals.remove(i);
                // Followers (MediaMTX paths, recordings) and clients see it disconnect once; then it is unlisted.
                let gone = Arc::new(disconnected_camera(&prev));
                self.publish_snapshot();
                self.send_event(&gone, Some(prev.status));
                self.notify(&gone);
                self.last_sent.remove(&device);
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        for n in self.numbers.clone() {
            self.examine(n, now);
        }
    }

    fn path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("video{n}"))
    }

    /// Compare the node on disk with what we know; act only on a change.
    fn examine(&mut self, n: u32, now: Instant) {
        let id = node_id(&self.path(n));
        let max_retries = self.config.camera.capability_max_retries;
        let e = self.entries.entry(n).or_insert_with(|| Entry {
            node: None,
            appeared: now,
            probing: None,
            retry_at: None,
            retries_left: max_retries,
            confirm_at: None,
            camera: None,
        });
        if e.node == id {
            return;
        }
        let fresh = e.node.is_none();
        e.node = id;
        e.retry_at = None;
        e.confirm_at = None;
        if id.is_none() {
            self.disconnect(n);
        } else {
            if fresh {
                e.appeared = now;
                e.retries_left = max_retries;
            }
            self.start_probe(n, now, false);
        }
    }

    fn start_probe(&mut self, n: u32, now: Instant, confirming: bool) {
        let timeout = Duration::from_secs_f64(self.config.camera.capability_timeout.max(0.1));
        let path = self.path(n);
        let Some(e) = self.entries.get_mut(&n) else { return };
        let Some(node) = e.node else { return };
        if e.probing.is_some() {
            return; // the reply re-probes if the node changed meanwhile
        }
        self.next_token += 1;
        let token = self.next_token;
        let deadline = now + timeout;
        e.probing = Some(InFlight { token, node, deadline, timed_out: false, confirming });
        if self.jobs.send(probe::Job { number: n, path, token, deadline }).is_err() {
            log::error!("camera prober is gone; video{n} cannot be probed");
        }
    }

    fn on_probe(&mut self, r: probe::Reply, now: Instant) {
        let Some(e) = self.entries.get_mut(&r.number) else { return };
        if e.probing.as_ref().map(|p| p.token) != Some(r.token) {
            return;
        }
        let flight = e.probing.take().expect("checked above");
        let Some(current) = e.node else { return }; // removed meanwhile: already announced
        let n = r.number;
        match r.report.result {
            Ok(Probed::Capture(info)) => {
                e.retry_at = None;
                e.retries_left = self.config.camera.capability_max_retries;
                if !flight.confirming && info.enumerated {
                    e.confirm_at = Some(now + CONFIRM_AFTER);
                }
                let prev = e.camera.clone();
                let cam = connected_camera(n, info, &r.report.usb, prev.as_deref(), flight.confirming);
                self.commit(n, cam);
            }
            Ok(Probed::NotCapture) => {
                log::debug!("video{n} is not a video-capture node: ignored");
                self.disconnect(n);
            }
            Err(ProbeError::PermissionDenied) if now < e.appeared + PERMISSION_GRACE => {
                e.retry_at = Some((now + PERMISSION_RETRY).min(e.appeared + PERMISSION_GRACE));
            }
            Err(ProbeError::PermissionDenied) => self.fail(n, "permission_denied".into(), &r.report.usb, now),
            Err(ProbeError::Gone) => {}
            Err(ProbeError::Failed(reason)) => self.fail(n, reason, &r.report.usb, now),
        }
        if current != flight.node {
            self.start_probe(n, now, false);
        }
    }

    fn fail(&mut self, n: u32, reason: String, usb: &sysfs::UsbInfo, now: Instant) {
        let retry = Duration::from_secs_f64(self.config.camera.capability_retry_interval.max(0.01));
        let Some(e) = self.entries.get_mut(&n) else { return };
        if e.retries_left > 0 {
            e.retries_left -= 1;
            e.retry_at = Some(now + retry);
        }
        log::warn!("/dev/video{n}: {reason}");
        let cam = error_camera(n, reason, usb, e.camera.as_deref());
        self.commit(n, cam);
    }

    fn disconnect(&mut self, n: u32) {
        let Some(prev) = self.entries.get(&n).and_then(|e| e.camera.clone()) else { return };
        if prev.status != CameraStatus::Disconnected {
            self.commit(n, disconnected_camera(&prev));
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.entries
            .values()
            .flat_map(|e| [e.retry_at, e.confirm_at, e.probing.as_ref().filter(|p| !p.timed_out).map(|p| p.deadline)])
            .flatten()
            .min()
    }

    fn run_timers(&mut self, now: Instant) {
        let numbers: Vec<u32> = self.entries.keys().copied().collect();
        for n in numbers {
            let e = self.entries.get_mut(&n).expect("listed above");
            if let Some(p) = e.probing.as_mut().filter(|p| !p.timed_out && now >= p.deadline) {
                p.timed_out = true;
                let secs = self.config.camera.capability_timeout;
                let usb = sysfs::UsbInfo::default();
                self.fail(n, format!("probe timed out after {secs} s"), &usb, now);
                continue;
            }
            if e.retry_at.is_some_and(|t| now >= t) {
                e.retry_at = None;
                self.start_probe(n, now, false);
            } else if e.confirm_at.is_some_and(|t| now >= t) {
                e.confirm_at = None;
                self.start_probe(n, now, true);
            }
        }
    }

    /// Publish a changed camera: snapshot, event, notification (if its params changed), component status.
    fn commit(&mut self, n: u32, cam: Camera) {
        let Some(e) = self.entries.get_mut(&n) else { return };
        let prev = e.camera.clone();
        if prev.as_deref() == Some(&cam) {
            return;
        }
        let cam = Arc::new(cam);
        e.camera = Some(cam.clone());
        if prev.is_none() {
            self.order.push(n);
        }
        self.announce(&cam, prev.map(|p| p.status));
    }

    /// Snapshot, event and (when its params changed) notification for a camera that changed.
    fn announce(&mut self, cam: &Arc<Camera>, previous: Option<CameraStatus>) {
        self.publish_snapshot();
        self.send_event(cam, previous);
        self.notify(cam);
    }

    fn publish_snapshot(&mut self) {
        let mut list = self.virtuals.clone();
        list.extend(self.order.iter().filter_map(|n| self.entries.get(n).and_then(|e| e.camera.clone())));
        list.extend(self.externals.iter().cloned());
        let connected = list.iter().filter(|c| c.status == CameraStatus::Connected).count();
        *self.shared.snapshot.write() = Arc::new(list);
        let details = format!("Camera monitor is running with {connected} cameras");
        if self.components.get("camera_monitor").is_none_or(|c| c.details != details || c.state != State::Running) {
            self.components.set("camera_monitor", State::Running, details);
        }
    }

    fn send_event(&self, cam: &Arc<Camera>, previous: Option<CameraStatus>) -> usize {
        let mut subs = self.shared.subscribers.lock();
        subs.retain(|s| s.send(CameraEvent { camera: cam.clone(), previous }).is_ok());
        subs.len()
    }

    /// Tell clients what changed about `cam`: its status ([`Registry::notify_status`]) and its capabilities
    /// ([`Registry::notify_capabilities`]); each says nothing when nothing changed.
    fn notify(&mut self, cam: &Arc<Camera>) {
        self.notify_status(cam);
        self.notify_capabilities(cam);
    }

    /// Send `camera_status_update` unless the params equal the last ones sent for this device.
    fn notify_status(&mut self, cam: &Arc<Camera>) {
        let params = wire::status_update(cam, &self.config.mediamtx, None);
        if self.last_sent.get(&cam.device) == Some(&params) {
            return;
        }
        let previous = self.last_sent.insert(cam.device.clone(), params);
        let topics = status_topics(previous.as_ref().and_then(|p| p["status"].as_str()), cam.status);
        let (cam, config, device) = (cam.clone(), self.config.clone(), cam.device.clone());
        self.hub.publish(Notification::per_host(&topics, Some(&device), move |host| {
            wire::status_update(&cam, &config.mediamtx, host)
        }));
    }

    /// `camera.capability_detected` when a camera's capabilities become known or change (first probe, a confirming
    /// re-probe, an IP camera's resolution or frame rate learned), `camera.capability_error` when probing it fails.
    /// Each once per change: a retry that fails the same way, or a re-probe that finds the same modes, is silent.
    fn notify_capabilities(&mut self, cam: &Camera) {
        let Some(event) = capability_event(cam) else {
            self.capabilities_sent.remove(&cam.device);
            return;
        };
        if self.capabilities_sent.get(&cam.device) == Some(&event) {
            return;
        }
        self.capabilities_sent.insert(cam.device.clone(), event.clone());
        let (topic, params) = event;
        self.hub.publish(Notification::event(topic, Some(&cam.device), params));
    }
}

/// The capability event a camera stands for, if any: its `get_camera_capabilities` result plus the preferred mode
/// while its modes are known, its error while probing fails, nothing while its modes are unknown (unplugged, not
/// checked yet, capability detection switched off).
fn capability_event(cam: &Camera) -> Option<(Topic, Value)> {
    let error = match cam.status {
        CameraStatus::Error => cam.error.as_deref().unwrap_or("probe failed"),
        CameraStatus::Connected if cam.validation_status == "error" => "the device reports no video formats",
        CameraStatus::Connected if !cam.formats.is_empty() => {
            let mut params = wire::capabilities(cam);
            params["resolution"] = json!(cam.resolution);
            params["fps"] = json!(cam.fps);
            return Some((Topic::CameraCapabilityDetected, params));
        }
        _ => return None,
    };
    // An IP camera's error may quote its source URL.
    let error = crate::util::redact::text(error);
    let params = json!({"device": cam.device, "error": error, "validation_status": cam.validation_status});
    Some((Topic::CameraCapabilityError, params))
}

/// The topics of a `camera_status_update` after `previous` (the status last announced, if any).
fn status_topics(previous: Option<&str>, now: CameraStatus) -> Vec<Topic> {
    let mut topics = vec![Topic::CameraStatusUpdate];
    if previous != Some(now.as_str()) {
        topics.push(Topic::CameraStatusChange);
        match now {
            CameraStatus::Connected => topics.push(Topic::CameraConnected),
            CameraStatus::Disconnected if previous.is_some() => topics.push(Topic::CameraDisconnected),
            _ => {}
        }
    }
    topics
}

pub(super) fn base_camera(n: u32, status: CameraStatus) -> Camera {
    Camera::unprobed(n, status)
}

fn connected_camera(
    n: u32,
    info: CaptureInfo,
    usb: &sysfs::UsbInfo,
    prev: Option<&Camera>,
    confirming: bool,
) -> Camera {
    let mut cam = base_camera(n, CameraStatus::Connected);
    if !info.card.is_empty() {
        cam.name = info.card.clone();
    }
    let bus = Some(info.bus_info.clone()).filter(|b| !b.is_empty());
    cam.identity = sysfs::identity(usb, bus.as_deref(), n);
    cam.serial = usb.serial.clone();
    cam.bus_info = bus;
    cam.driver = Some(info.driver.clone()).filter(|d| !d.is_empty());
    let (resolution, fps, input) = match preferred_mode(&info.formats) {
        Some((f, s, fps)) => (format!("{}x{}", s.width, s.height), fps, ffmpeg_input_format(&f.fourcc)),
        None => (DEFAULT_RESOLUTION.to_string(), DEFAULT_FPS, None),
    };
    cam.resolution = resolution;
    cam.fps = fps;
    cam.input_format = input.map(str::to_string);
    let same_as_before = prev.is_some_and(|p| p.status == CameraStatus::Connected && p.formats == info.formats);
    let was_confirmed = prev.is_some_and(|p| p.validation_status == "confirmed");
    cam.validation_status = if !info.enumerated {
        "none"
    } else if info.formats.is_empty() {
        "error"
    } else if same_as_before && (confirming || was_confirmed) {
        "confirmed"
    } else {
        "provisional"
    }
    .into();
    cam.formats = info.formats;
    cam
}

fn error_camera(n: u32, reason: String, usb: &sysfs::UsbInfo, prev: Option<&Camera>) -> Camera {
    let mut cam = base_camera(n, CameraStatus::Error);
    match prev.filter(|p| p.status != CameraStatus::Disconnected) {
        // The same node failing again (timeout, failed retry): it is still the camera we knew.
        Some(p) => {
            cam.name = p.name.clone();
            cam.identity = p.identity.clone();
            cam.serial = p.serial.clone();
            cam.bus_info = p.bus_info.clone();
            cam.driver = p.driver.clone();
        }
        None => {
            cam.identity = sysfs::identity(usb, None, n);
            cam.serial = usb.serial.clone();
        }
    }
    cam.validation_status = "error".into();
    cam.error = Some(reason);
    cam
}

pub(super) fn disconnected_camera(prev: &Camera) -> Camera {
    Camera {
        status: CameraStatus::Disconnected,
        formats: Vec::new(),
        resolution: String::new(),
        fps: 0,
        validation_status: "disconnected".into(),
        error: None,
        input_format: None,
        ..prev.clone()
    }
}

/// A virtual camera: what ffmpeg's lavfi source produces, described as one mode in planar YUV 4:2:0 (`YU12`,
/// ffmpeg `yuv420p`), the pixel format the pipelines convert test patterns to before encoding.
pub fn virtual_camera(i: usize, v: &VirtualCameraConfig) -> Camera {
    let name = format!("virtual{i}");
    Camera {
        device: name.clone(),
        path_name: name,
        number: i as u32,
        kind: CameraKind::Virtual,
        status: CameraStatus::Connected,
        name: v.name.clone(),
        identity: format!("virtual:{i}:{}", v.pattern),
        serial: None,
        bus_info: None,
        driver: None,
        is_virtual: true,
        formats: vec![Format {
            fourcc: "YU12".into(),
            description: format!("Planar YUV 4:2:0 (ffmpeg lavfi {})", v.pattern),
            sizes: vec![FrameSize { width: v.width, height: v.height, fps: vec![f64::from(v.fps)] }],
        }],
        resolution: format!("{}x{}", v.width, v.height),
        fps: v.fps,
        validation_status: "confirmed".into(),
        error: None,
        virtual_source: Some(v.clone()),
        input_format: None,
        external: None,
    }
}
