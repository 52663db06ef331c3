//! Live viewing: `start_streaming` / `stop_streaming` (operator), `get_stream_url` / `get_stream_status` (viewer).
//!
//! Every camera's MediaMTX path is on demand: its publisher (the `runOnDemand` ffmpeg, or the pulled source of an IP
//! camera) runs only while someone reads it. `start_streaming` takes a *viewing hold*: the daemon itself reads the
//! path (a `-c copy` reader, like the recorder's keep-alive), so the publisher is up and a player joins at once. The
//! hold ends on `stop_streaming`, when the camera goes away, or when nobody but the daemon has read the path for
//! `mediamtx.viewing_close_after` seconds; MediaMTX then closes the publisher after its own `runOnDemandCloseAfter`.
//!
//! The `stream-viewing` thread owns the holds (their readers are its children); handlers send it commands and read
//! the published view. The readiness wait runs on the handler's (blocking-pool) thread, never on the owner.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use parking_lot::RwLock;
use serde_json::{json, Value};

use super::process::{self, Ffmpeg};
use super::{segments, CameraLookup, StreamServer};
use crate::camera::{Camera, CameraStatus};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::{Shutdown, Supervisor};
use crate::rpc::params::DeviceParams;
use crate::rpc::{method, Call, Method};
use crate::util::timefmt;

/// How often the owner looks at its holds (readers, exits, idle time).
const TICK: Duration = Duration::from_secs(1);
/// A hold whose reader keeps dying is given up after this many restarts.
const MAX_RESTARTS: u32 = 3;

pub static METHODS: &[Method<Streaming>] = &[
    method!("start_streaming", Operator, Blocking, start_streaming),
    method!("stop_streaming", Operator, Blocking, stop_streaming),
    method!("get_stream_url", Viewer, Inline, get_stream_url),
    method!("get_stream_status", Viewer, Inline, get_stream_status),
];

/// What handlers read about one hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub device: String,
    pub path: String,
    pub start_time: SystemTime,
    /// The last time someone other than the daemon read the stream (or the hold began or was renewed).
    pub last_activity: SystemTime,
}

enum Command {
    Start { camera: Arc<Camera>, reply: Sender<Result<(Hold, bool)>> },
    Stop { device: String, reply: Sender<Option<Hold>> },
}

struct Inner {
    config: Arc<Config>,
    cameras: Arc<dyn CameraLookup>,
    mediamtx: Arc<dyn StreamServer>,
    commands: Sender<Command>,
    holds: RwLock<HashMap<String, Hold>>,
}

/// Handle to the viewing holds. Cheap to clone.
#[derive(Clone)]
pub struct Streaming {
    inner: Arc<Inner>,
}

/// The `stream-viewing` thread, not started yet.
pub struct StreamingThread {
    inner: Arc<Inner>,
    rx: Receiver<Command>,
}

impl Streaming {
    pub fn new(
        config: Arc<Config>,
        cameras: Arc<dyn CameraLookup>,
        mediamtx: Arc<dyn StreamServer>,
    ) -> (Streaming, StreamingThread) {
        let (tx, rx) = unbounded();
        let inner = Arc::new(Inner { config, cameras, mediamtx, commands: tx, holds: RwLock::new(HashMap::new()) });
        (Streaming { inner: inner.clone() }, StreamingThread { inner, rx })
    }

    /// The running hold of a camera (by device id as in responses).
    pub fn hold_of(&self, device: &str) -> Option<Hold> {
        self.inner.holds.read().get(device).cloned()
    }

    fn idle_limit(&self) -> Duration {
        Duration::from_secs_f64(self.inner.config.mediamtx.viewing_close_after.max(1.0))
    }

    /// A connected camera with a stream server to view it through.
    fn viewable(&self, device: &str) -> Result<Arc<Camera>> {
        let camera = self.inner.cameras.get(device)?;
        if !self.inner.mediamtx.enabled() {
            return Err(not_streaming());
        }
        Ok(camera)
    }
}

impl StreamingThread {
    pub fn spawn(self, supervisor: &Supervisor) -> std::io::Result<()> {
        let sd = supervisor.shutdown().clone();
        let owner = Owner { inner: self.inner, holds: HashMap::new() };
        supervisor.spawn("stream-viewing", move || owner.run(self.rx, sd))
    }
}

/// The error of every streaming method while MediaMTX is switched off.
fn not_streaming() -> Error {
    Error::Unsupported("live streaming needs MediaMTX (mediamtx.enabled: false)".into())
}

struct Running {
    hold: Hold,
    reader: Option<Ffmpeg>,
    restarts: u32,
}

struct Owner {
    inner: Arc<Inner>,
    holds: HashMap<String, Running>,
}

impl Owner {
    fn run(mut self, rx: Receiver<Command>, shutdown: Shutdown) -> std::result::Result<(), String> {
        let ticker = crossbeam_channel::tick(TICK);
        loop {
            crossbeam_channel::select! {
                recv(rx) -> cmd => match cmd {
                    Ok(cmd) => self.handle(cmd),
                    Err(_) => break,
                },
                recv(ticker) -> _ => self.tick(),
                recv(shutdown.channel()) -> _ => break,
            }
        }
        // Dropping a reader kills it; MediaMTX closes what it no longer needs.
        self.holds.clear();
        self.publish();
        Ok(())
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Start { camera, reply } => {
                let r = self.start(&camera);
                let _ = reply.send(r);
            }
            Command::Stop { device, reply } => {
                let ended = self.end(&device, "stop_streaming");
                let _ = reply.send(ended);
            }
        }
    }

    /// A new hold with its reader, or the existing one renewed. `bool`: it already ran.
    fn start(&mut self, camera: &Camera) -> Result<(Hold, bool)> {
        let now = SystemTime::now();
        if let Some(r) = self.holds.get_mut(&camera.device) {
            r.hold.last_activity = now;
            let hold = r.hold.clone();
            self.publish();
            return Ok((hold, true));
        }
        let reader = spawn_reader(&self.inner.config, &camera.path_name)
            .map_err(|e| Error::Stream(format!("cannot start the viewing reader: {e}")))?;
        let hold =
            Hold { device: camera.device.clone(), path: camera.path_name.clone(), start_time: now, last_activity: now };
        log::info!("viewing {} started (stream {})", camera.device, camera.path_name);
        self.holds.insert(camera.device.clone(), Running { hold: hold.clone(), reader: Some(reader), restarts: 0 });
        self.publish();
        Ok((hold, false))
    }

    fn end(&mut self, device: &str, why: &str) -> Option<Hold> {
        let r = self.holds.remove(device)?;
        log::info!("viewing {device} ended ({why})");
        self.publish();
        Some(r.hold)
    }

    fn tick(&mut self) {
        let idle_limit = Duration::from_secs_f64(self.inner.config.mediamtx.viewing_close_after.max(1.0));
        let now = SystemTime::now();
        let mut ending = Vec::new();
        for (device, r) in self.holds.iter_mut() {
            let camera = self.inner.cameras.get(device);
            if !camera.as_ref().is_ok_and(|c| c.status == CameraStatus::Connected) {
                ending.push((device.clone(), "camera not connected".to_string()));
                continue;
            }
            if let Some(st) = r.reader.as_mut().and_then(Ffmpeg::try_wait) {
                r.reader = None;
                if r.restarts >= MAX_RESTARTS {
                    ending.push((device.clone(), format!("reader kept failing ({})", process::describe(st))));
                    continue;
                }
                r.restarts += 1;
                log::warn!("viewing {device}: reader {}; restarting", process::describe(st));
                r.reader = spawn_reader(&self.inner.config, &r.hold.path).ok();
            }
            // MediaMTX counts our reader too: anyone beyond it is a viewer.
            let ours = u64::from(r.reader.is_some());
            if self.inner.mediamtx.path_metrics(&r.hold.path).is_some_and(|m| m.readers > ours) {
                r.hold.last_activity = now;
            }
            let idle = now.duration_since(r.hold.last_activity).unwrap_or_default();
            if idle >= idle_limit {
                ending.push((device.clone(), format!("nobody watched for {} s", idle.as_secs())));
            }
        }
        let changed = self.holds.values().any(|r| self.inner.holds.read().get(&r.hold.device) != Some(&r.hold));
        for (device, why) in ending {
            self.end(&device, &why);
        }
        if changed {
            self.publish();
        }
    }

    fn publish(&self) {
        let view = self.holds.iter().map(|(d, r)| (d.clone(), r.hold.clone())).collect();
        *self.inner.holds.write() = view;
    }
}

fn spawn_reader(config: &Config, path: &str) -> std::io::Result<Ffmpeg> {
    Ffmpeg::spawn(&format!("viewing {path}"), &segments::keepalive_args(config, path), &[])
}

fn rtsp_url(s: &Streaming, camera: &Camera, call: &Call) -> String {
    let urls = crate::camera::streams::urls(&s.inner.config.mediamtx, call.caller.host.as_deref(), &camera.path_name);
    urls["rtsp"].as_str().unwrap_or_default().to_string()
}

fn time_or_null(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| json!(timefmt::rfc3339(t)))
}

/// Keep the camera's stream up for viewing; the reply comes once the stream is ready.
fn start_streaming(s: &Streaming, p: DeviceParams, call: &Call) -> Result<Value> {
    let camera = s.viewable(&p.device)?;
    if camera.status != CameraStatus::Connected {
        return Err(Error::CameraNotFound(format!("{} is {}", camera.device, camera.status.as_str())));
    }
    let mtx = &s.inner.mediamtx;
    if !mtx.available() {
        return Err(Error::MediaMtx("MediaMTX is unreachable".into()));
    }
    mtx.ensure_path(&camera.path_name)?;
    let (reply, rx) = bounded(1);
    s.inner.commands.send(Command::Start { camera: camera.clone(), reply }).map_err(|_| owner_gone())?;
    let (hold, renewed) = rx.recv().map_err(|_| owner_gone())??;
    let timeout = Duration::from_secs_f64(s.inner.config.mediamtx.stream_readiness.timeout.max(0.1));
    if let Err(e) = mtx.wait_ready(&camera.path_name, timeout) {
        if !renewed {
            let (reply, rx) = bounded(1);
            if s.inner.commands.send(Command::Stop { device: camera.device.clone(), reply }).is_ok() {
                let _ = rx.recv();
            }
        }
        return Err(e);
    }
    let close = s.idle_limit().as_secs();
    Ok(json!({
        "device": camera.device,
        "stream_name": camera.path_name,
        "stream_url": rtsp_url(s, &camera, call),
        "streams": crate::camera::streams::urls(&s.inner.config.mediamtx, call.caller.host.as_deref(), &camera.path_name),
        "status": "STARTED",
        "start_time": timefmt::rfc3339(hold.start_time),
        "auto_close_after": format!("{close}s"),
        "format": "rtsp",
        "message": if renewed {
            format!("already streaming; kept up while watched, closed after {close} s without viewers")
        } else {
            format!("stream is up; kept up while watched, closed after {close} s without viewers")
        },
    }))
}

fn stop_streaming(s: &Streaming, p: DeviceParams, _: &Call) -> Result<Value> {
    let camera = s.viewable(&p.device)?;
    let (reply, rx) = bounded(1);
    s.inner.commands.send(Command::Stop { device: camera.device.clone(), reply }).map_err(|_| owner_gone())?;
    let ended = rx.recv().map_err(|_| owner_gone())?;
    let end = SystemTime::now();
    // Other readers (players, a recording) keep the publisher running.
    let continues = s.inner.mediamtx.path_metrics(&camera.path_name).is_some_and(|m| m.ready && m.readers > 1);
    let start = ended.as_ref().map(|h| h.start_time);
    Ok(json!({
        "device": camera.device,
        "stream_name": camera.path_name,
        "status": "STOPPED",
        "was_streaming": ended.is_some(),
        "start_time": time_or_null(start),
        "end_time": timefmt::rfc3339(end),
        "duration": start.map_or(0, |t| end.duration_since(t).unwrap_or_default().as_secs()),
        "stream_continues": continues,
    }))
}

fn get_stream_url(s: &Streaming, p: DeviceParams, call: &Call) -> Result<Value> {
    let camera = s.viewable(&p.device)?;
    let mtx = &s.inner.mediamtx;
    let connected = camera.status == CameraStatus::Connected;
    let metrics = if connected { mtx.path_metrics(&camera.path_name) } else { None };
    let stream_status = match &metrics {
        _ if camera.status == CameraStatus::Error || !mtx.available() => "ERROR",
        Some(m) if m.ready => "READY",
        _ => "NOT_READY",
    };
    Ok(json!({
        "device": camera.device,
        "stream_name": camera.path_name,
        "stream_url": rtsp_url(s, &camera, call),
        "streams": crate::camera::streams::urls(&s.inner.config.mediamtx, call.caller.host.as_deref(), &camera.path_name),
        "available": connected && mtx.available() && metrics.is_some(),
        "active_consumers": metrics.as_ref().map_or(0, |m| m.readers),
        "stream_status": stream_status,
    }))
}

fn get_stream_status(s: &Streaming, p: DeviceParams, call: &Call) -> Result<Value> {
    let camera = s.viewable(&p.device)?;
    let mtx = &s.inner.mediamtx;
    let metrics = if camera.status == CameraStatus::Connected { mtx.path_metrics(&camera.path_name) } else { None };
    let ready = metrics.as_ref().is_some_and(|m| m.ready);
    let status = if camera.status == CameraStatus::Error || !mtx.available() {
        "ERROR"
    } else if ready {
        "ACTIVE"
    } else {
        "INACTIVE"
    };
    // When the publisher came up, from MediaMTX's own ready time; nothing is invented for a stream that is down.
    let since =
        metrics.as_ref().filter(|m| m.ready).and_then(|m| SystemTime::now().checked_sub(Duration::from_secs(m.uptime)));
    let hold = s.hold_of(&camera.device);
    Ok(json!({
        "device": camera.device,
        "stream_name": camera.path_name,
        "stream_url": rtsp_url(s, &camera, call),
        "status": status,
        "ready": ready,
        "viewers": metrics.as_ref().map_or(0, |m| m.readers),
        "start_time": time_or_null(since),
        "last_activity": time_or_null(hold.as_ref().map(|h| h.last_activity)),
        "bytes_sent": metrics.as_ref().map_or(0, |m| m.bytes_sent),
        "viewing": {
            "active": hold.is_some(),
            "start_time": time_or_null(hold.as_ref().map(|h| h.start_time)),
            "auto_close_after": format!("{}s", s.idle_limit().as_secs()),
        },
    }))
}

fn owner_gone() -> Error {
    Error::internal("the stream-viewing thread is not running")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mediamtx::PathMetrics;
    use crate::rpc::table::invoke;

    struct NoMtx;
    impl StreamServer for NoMtx {
        fn enabled(&self) -> bool {
            false
        }
        fn available(&self) -> bool {
            false
        }
        fn path_metrics(&self, _: &str) -> Option<PathMetrics> {
            None
        }
        fn ensure_path(&self, _: &str) -> Result<()> {
            Err(Error::MediaMtx("disabled".into()))
        }
        fn set_record(&self, _: &str, _: bool) -> Result<()> {
            Err(Error::MediaMtx("disabled".into()))
        }
        fn wait_ready(&self, _: &str, _: Duration) -> Result<()> {
            Err(Error::MediaMtx("disabled".into()))
        }
    }

    struct OneCamera;
    impl CameraLookup for OneCamera {
        fn get(&self, id: &str) -> Result<Arc<Camera>> {
            match id {
                "camera0" | "/dev/video0" => Ok(Arc::new(Camera::unprobed(0, CameraStatus::Connected))),
                "camera1" => Err(Error::CameraNotFound(id.into())),
                _ => Err(Error::invalid_params("device")),
            }
        }
    }

    #[test]
    fn without_mediamtx_every_method_says_unsupported_and_ids_are_checked_first() {
        let (s, _thread) = Streaming::new(Arc::new(Config::default()), Arc::new(OneCamera), Arc::new(NoMtx));
        for name in ["start_streaming", "stop_streaming", "get_stream_url", "get_stream_status"] {
            let e = invoke(METHODS, &s, name, &json!({"device": "camera0"})).unwrap_err();
            assert_eq!(e.code(), -32030, "{name}");
            assert!(e.data().unwrap()["reason"].as_str().unwrap().contains("mediamtx.enabled"));
            assert_eq!(invoke(METHODS, &s, name, &json!({"device": "camera1"})).unwrap_err().code(), -1000);
            assert_eq!(invoke(METHODS, &s, name, &json!({})).unwrap_err().code(), -32602);
        }
    }
}
