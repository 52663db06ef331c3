//! The `recorder` thread: sole owner of the recording sessions.
//!
//! Handlers send [`Command`]s with a reply channel; camera events and a supervision tick arrive on the same loop.
//! Every way a session ends (stop request, timer, ffmpeg death, unplug, full disk, shutdown) goes through
//! [`Recorder::end`], so state is always cleared and a notification always says what happened (fixes the Python
//! defects D4, D5, D21 of docs/migration.md).
//! Timers are part of the session they belong to, so a stale timer cannot stop a later session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, select, Receiver, Sender};
use serde_json::Value;

use super::process::{self, Ffmpeg};
use super::session::{self, Backend, Ending, Reply, Session};
use super::{segments, snapshot, RecorderWiring, SessionInfo, Shared};
use crate::camera::{CameraEvent, CameraStatus};
use crate::error::{Error, Result};
use crate::process::heartbeat::Heartbeat;
use crate::process::status::{Components, State};
use crate::process::{Shutdown, Supervisor};
use crate::rpc::notify::{Hub, Notification};
use crate::util::timefmt;

pub use session::{status_json, StartRequest};

/// Process liveness and free space are checked this often.
const TICK: Duration = Duration::from_millis(500);
/// The loop turns every [`TICK`]; ending a session may take a few seconds (ffmpeg finalising, MediaMTX calls).
/// Silent longer than this, the recorder is stuck (the systemd watchdog is then no longer fed).
const MAX_SILENCE: Duration = Duration::from_secs(20);
/// MediaMTX (HTTP) checks run every this many ticks.
const MTX_EVERY_TICKS: u32 = 4;
/// How long a MediaMTX start waits for the recorder's first segment file. MediaMTX names a segment from its own
/// clock when the first part is written (`recordPartDuration` after the first key frame), so only the file tells
/// the real name; past this wait the name predicted at the request is announced.
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(5);
/// Keep-alive reader restarts before the session fails.
const MAX_KEEPALIVE_RESTARTS: u32 = 3;
/// Direct ffmpeg ends a timed recording itself (`-t`); the timer is a safety net this much later.
const DIRECT_TIMER_SLACK: Duration = Duration::from_millis(1500);
/// At shutdown every recorder gets SIGINT at once and this long to finalise before SIGKILL (fragmented MP4 stays
/// playable either way). Fits the daemon's join budget.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);
/// How long a handler waits for the recorder (a MediaMTX start may wait for stream readiness).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

pub enum Command {
    Start {
        req: StartRequest,
        reply: Reply,
    },
    Stop {
        device: String,
        reply: Reply,
    },
    /// A MediaMTX start finished its preparation (keep-alive reader running and path ready, or an error), with
    /// the name of the recorder's first segment once it appeared.
    Prepared {
        session_id: String,
        result: Result<Ffmpeg>,
        first_file: Option<String>,
    },
}

/// Send a command and wait for its reply.
pub fn request(shared: &Shared, make: impl FnOnce(Reply) -> Command) -> Result<(Value, Value)> {
    let (tx, rx) = bounded(1);
    shared.commands.send(make(tx)).map_err(|_| Error::internal("recorder is not running"))?;
    rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| Error::internal("recorder did not answer"))?
}

pub fn spawn(
    shared: Arc<Shared>,
    wiring: RecorderWiring,
    tx: Sender<Command>,
    rx: Receiver<Command>,
    supervisor: &Supervisor,
) -> std::io::Result<()> {
    let shutdown = supervisor.shutdown().clone();
    wiring.components.set("recorder", State::Starting, "starting");
    let beat = wiring.heartbeats.register("recorder", MAX_SILENCE);
    let rec = Recorder {
        shared,
        hub: wiring.hub,
        components: wiring.components,
        tx,
        sessions: HashMap::new(),
        ticks: 0,
        beat,
    };
    let events = wiring.camera_events;
    supervisor.spawn("recorder", move || {
        rec.run(rx, events, shutdown);
        Ok(())
    })
}

struct Recorder {
    shared: Arc<Shared>,
    hub: Hub,
    components: Components,
    tx: Sender<Command>,
    /// Sessions by camera device id.
    sessions: HashMap<String, Session>,
    ticks: u32,
    beat: Heartbeat,
}

impl Recorder {
    fn run(mut self, rx: Receiver<Command>, mut events: Receiver<CameraEvent>, shutdown: Shutdown) {
        self.components.set("recorder", State::Running, "no active recordings");
        let mut next_tick = Instant::now() + TICK;
        while !shutdown.is_set() {
            self.beat.tick();
            let wake = self.sessions.values().filter_map(|s| s.deadline).fold(next_tick, Instant::min);
            let timeout = wake.saturating_duration_since(Instant::now());
            select! {
                recv(rx) -> cmd => match cmd {
                    Ok(cmd) => self.handle(cmd),
                    Err(_) => break,
                },
                recv(events) -> ev => match ev {
                    Ok(ev) => self.on_camera(ev),
                    Err(_) => events = crossbeam_channel::never(),
                },
                recv(shutdown.channel()) -> _ => break,
                default(timeout) => {},
            }
            self.fire_timers();
            if Instant::now() >= next_tick {
                self.supervise();
                next_tick = Instant::now() + TICK;
            }
        }
        self.shutdown_all(&rx);
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Start { req, reply } => match self.begin(req) {
                Ok(Begin::Now(session)) => {
                    let values = session::started_json(&session.info);
                    self.insert(session);
                    let _ = reply.send(Ok(values));
                }
                Ok(Begin::Later(mut session)) => {
                    session.starting = Some(reply);
                    self.insert(session);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Stop { device, reply } => self.stop_request(&device, reply),
            Command::Prepared { session_id, result, first_file } => self.prepared(&session_id, result, first_file),
        }
    }

    /// Checks in the Python order (-1006, -1010, -1003), then start the backend.
    fn begin(&mut self, req: StartRequest) -> Result<Begin> {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        let camera = shared.cameras.get(&req.device)?;
        if let Some(s) = self.sessions.get(&camera.device) {
            return Err(Error::CameraRecording(format!("{} session {}", camera.device, s.info.session_id)));
        }
        if camera.status != CameraStatus::Connected {
            return Err(Error::CameraNotFound(format!("{} is {}", camera.device, camera.status.as_str())));
        }
        let dir = segments::session_dir(cfg, &camera.path_name);
        crate::util::fs::create_shared_dir(&dir)
            .map_err(|e| Error::internal(format!("recordings dir {}: {e}", dir.display())))?;
        snapshot::storage_guard(&dir, (shared.thresholds)())?;
        let direct = camera.is_virtual || !shared.mediamtx.enabled();
        if !direct && !shared.mediamtx.available() {
            return Err(Error::MediaMtx("MediaMTX is unreachable".into()));
        }
        let start = SystemTime::now();
        let info = SessionInfo {
            session_id: crate::util::ids::uuid_v4(),
            device: camera.device.clone(),
            path_name: camera.path_name.clone(),
            filename: format!("{}_{}.mp4", camera.path_name, timefmt::file_stamp(start)),
            start,
            duration: req.duration,
            format: req.format,
            preexisting: Arc::new(segments::existing_segments(&dir, &camera.path_name)),
            dir,
        };
        let started = Instant::now();
        let mut session = Session {
            deadline: None,
            camera,
            started,
            backend: Backend::Mtx { keepalive: None, restarts: 0, restart_at: None, not_ready_since: None },
            starting: None,
            pending_stops: Vec::new(),
            fail_after_start: None,
            info,
        };
        if direct {
            let args = segments::direct_args(cfg, &session.camera, &session.info.dir, req.duration);
            let label = format!("record {}", session.info.path_name);
            // TZ=UTC: the segment muxer's strftime names must be UTC like every other time stamp.
            let mut p = Ffmpeg::spawn(&label, &args, &[("TZ", "UTC")])
                .map_err(|e| Error::Stream(format!("cannot start ffmpeg: {e}")))?;
            if let Some(st) = p.try_wait() {
                return Err(Error::Stream(format!("ffmpeg exited at once ({})", process::describe(st))));
            }
            session.deadline = req.duration.and_then(|d| deadline(started, d)?.checked_add(DIRECT_TIMER_SLACK));
            session.backend = Backend::Direct(p);
            log::info!(
                "recording {} started (session {}, direct ffmpeg)",
                session.info.device,
                session.info.session_id
            );
            return Ok(Begin::Now(session));
        }
        self.prepare_mtx(&session);
        Ok(Begin::Later(session))
    }

    /// MediaMTX start (HTTP round-trips and a readiness wait) runs on a short-lived thread so the recorder keeps
    /// answering; the result comes back as [`Command::Prepared`], also when the preparation panics (the session then
    /// fails instead of waiting forever).
    fn prepare_mtx(&self, session: &Session) {
        let (shared, tx, info) = (self.shared.clone(), self.tx.clone(), session.info.clone());
        let (id, path) = (session.info.session_id.clone(), session.info.path_name.clone());
        let spawned = std::thread::Builder::new().name("recording-start".into()).spawn(move || {
            let prepared = crate::process::guarded("recording-start", || {
                let result = prepare(&shared, &path);
                let first_file = result.as_ref().ok().and_then(|_| first_segment(&info, FIRST_SEGMENT_WAIT));
                (result, first_file)
            });
            let (result, first_file) = prepared
                .unwrap_or_else(|panic| (Err(Error::internal(format!("recording start failed: {panic}"))), None));
            if let Err(crossbeam_channel::SendError(Command::Prepared { result: Ok(_), .. })) =
                tx.send(Command::Prepared { session_id: id, result, first_file })
            {
                // The recorder is gone (shutdown): undo; the keep-alive was dropped (killed) with the message.
                let _ = shared.mediamtx.set_record(&path, false);
            }
        });
        if let Err(e) = spawned {
            let _ = self.tx.send(Command::Prepared {
                session_id: session.info.session_id.clone(),
                result: Err(Error::internal(format!("cannot start thread: {e}"))),
                first_file: None,
            });
        }
    }

    fn insert(&mut self, session: Session) {
        self.shared.sessions.write().insert(session.info.device.clone(), session.info.clone());
        self.sessions.insert(session.info.device.clone(), session);
        self.report();
    }

    fn report(&self) {
        let n = self.sessions.len();
        let details = if n == 0 { "no active recordings".to_string() } else { format!("{n} active recordings") };
        self.components.set("recorder", State::Running, details);
    }

    fn prepared(&mut self, session_id: &str, result: Result<Ffmpeg>, first_file: Option<String>) {
        let Some(device) =
            self.sessions.values().find(|s| s.info.session_id == session_id).map(|s| s.info.device.clone())
        else {
            return;
        };
        let s = self.sessions.get_mut(&device).expect("session present");
        let reply = s.starting.take();
        match result {
            Ok(keepalive) => {
                match first_file {
                    Some(name) => {
                        s.info.filename = name;
                        self.shared.sessions.write().insert(device.clone(), s.info.clone());
                    }
                    None => log::warn!("recording {device}: no segment file yet; announcing {}", s.info.filename),
                }
                s.started = Instant::now();
                s.deadline = s.info.duration.and_then(|d| deadline(s.started, d));
                if let Backend::Mtx { keepalive: k, .. } = &mut s.backend {
                    *k = Some(keepalive);
                }
                log::info!("recording {} started (session {}, MediaMTX recorder)", device, session_id);
                if let Some(r) = reply {
                    let _ = r.send(Ok(session::started_json(&s.info)));
                }
                let stops = std::mem::take(&mut s.pending_stops);
                if let Some(reason) = s.fail_after_start.take() {
                    self.end(&device, Ending::Failed(reason));
                    for r in stops {
                        let _ = r.send(Err(not_recording(&device)));
                    }
                } else if let Some((first, rest)) = stops.split_first() {
                    self.end(&device, Ending::Requested(first.clone()));
                    for r in rest {
                        let _ = r.send(Err(not_recording(&device)));
                    }
                }
            }
            Err(e) => {
                log::warn!("recording {device} could not start: {e}");
                let stops = std::mem::take(&mut s.pending_stops);
                self.sessions.remove(&device);
                self.shared.sessions.write().remove(&device);
                self.report();
                if let Some(r) = reply {
                    let _ = r.send(Err(e));
                }
                for r in stops {
                    let _ = r.send(Err(not_recording(&device)));
                }
            }
        }
    }

    fn stop_request(&mut self, id: &str, reply: Reply) {
        let camera = match self.shared.cameras.get(id) {
            Ok(c) => c,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        match self.sessions.get_mut(&camera.device) {
            None => {
                let _ = reply.send(Err(not_recording(&camera.device)));
            }
            Some(s) if s.starting.is_some() => s.pending_stops.push(reply),
            Some(_) => self.end(&camera.device, Ending::Requested(reply)),
        }
    }

    /// The one way a session ends: stop the backend, clear state, report.
    fn end(&mut self, device: &str, how: Ending) {
        let Some(mut s) = self.sessions.remove(device) else {
            return;
        };
        self.shared.sessions.write().remove(device);
        self.report();
        let shared = self.shared.clone();
        if let Some(note) = s.stop_backend(&shared.config, shared.mediamtx.as_ref()) {
            log::warn!("recording {device}: {note}");
        }
        let removed = segments::prune_frameless(&s.info.dir, &s.info.path_name, &s.info.preexisting);
        if !removed.is_empty() {
            log::warn!("recording {device}: removed segments cut off before their first frame: {removed:?}");
        }
        let error = match &how {
            Ending::Failed(reason) => Some(reason.as_str()),
            _ => None,
        };
        let (result, note) = session::ended_json(&s.info, s.started.elapsed(), error);
        log::info!(
            "recording {device} session {} {} ({} files){}",
            s.info.session_id,
            if error.is_some() { "failed" } else { "stopped" },
            note["files"].as_array().map_or(0, Vec::len),
            error.map(|e| format!(": {e}")).unwrap_or_default()
        );
        match how {
            Ending::Requested(reply) => {
                // The handler publishes the notification after its reply (docs/design.md, "Compatibility choices").
                let _ = reply.send(Ok((result, note)));
            }
            _ => self.hub.publish(Notification::new("recording_status_update", note)),
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.starting.is_none() && s.deadline.is_some_and(|d| d <= now))
            .map(|s| s.info.device.clone())
            .collect();
        for device in due {
            self.end(&device, Ending::Timer);
        }
    }

    fn on_camera(&mut self, ev: CameraEvent) {
        if ev.camera.status == CameraStatus::Connected {
            return;
        }
        let device = ev.camera.device.clone();
        match self.sessions.get_mut(&device) {
            Some(s) if s.starting.is_some() => s.fail_after_start = Some("device_disconnected".into()),
            Some(_) => self.end(&device, Ending::Failed("device_disconnected".into())),
            None => {}
        }
    }

    /// Periodic checks: process alive, free space, MediaMTX stream health.
    fn supervise(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        let check_mtx = self.ticks % MTX_EVERY_TICKS == 0;
        let shared = self.shared.clone();
        let critical = (shared.thresholds)().critical;
        let mut endings = Vec::new();
        for (device, s) in self.sessions.iter_mut().filter(|(_, s)| s.starting.is_none()) {
            if let Some(ending) = check_backend(&shared, s, check_mtx) {
                endings.push((device.clone(), ending));
                continue;
            }
            if let Ok(u) = crate::files::disk_usage(&s.info.dir) {
                if u.used_percent >= f64::from(critical) {
                    let why = format!("storage_full: {:.1}% used (critical at {critical}%)", u.used_percent);
                    endings.push((device.clone(), Ending::Failed(why)));
                }
            }
        }
        for (device, ending) in endings {
            self.end(&device, ending);
        }
    }

    /// Finalise every recording within the shutdown budget: SIGINT all at once, wait, SIGKILL the rest.
    fn shutdown_all(&mut self, rx: &Receiver<Command>) {
        let shared = self.shared.clone();
        for s in self.sessions.values_mut() {
            match &mut s.backend {
                Backend::Direct(p) => p.signal(libc::SIGINT),
                Backend::Mtx { .. } => {
                    let _ = shared.mediamtx.set_record(&s.info.path_name, false);
                }
            }
            if let Some(r) = s.starting.take() {
                let _ = r.send(Err(Error::internal("shutting down")));
            }
        }
        let until = Instant::now() + SHUTDOWN_GRACE;
        for s in self.sessions.values_mut() {
            if let Backend::Direct(p) = &mut s.backend {
                if p.wait_for(until.saturating_duration_since(Instant::now())).is_none() {
                    p.signal(libc::SIGKILL);
                    p.wait_for(Duration::from_millis(500));
                }
            }
        }
        let devices: Vec<String> = self.sessions.keys().cloned().collect();
        for device in devices {
            self.end(&device, Ending::Shutdown);
        }
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Start { reply, .. } | Command::Stop { reply, .. } => {
                    let _ = reply.send(Err(Error::internal("shutting down")));
                }
                Command::Prepared { .. } => {}
            }
        }
        self.components.set("recorder", State::Stopped, "stopped");
    }
}

enum Begin {
    /// Committed: reply now.
    Now(Session),
    /// MediaMTX preparation running; reply on [`Command::Prepared`].
    Later(Session),
}

/// The auto-stop instant `secs` after `start`; None (until stopped) when that is beyond what `Instant` can hold —
/// `duration` has no upper bound in the contract, and an overflow here would panic the recorder thread.
fn deadline(start: Instant, secs: u64) -> Option<Instant> {
    start.checked_add(Duration::from_secs(secs))
}

fn not_recording(device: &str) -> Error {
    Error::MediaMtx(format!("{device} is not recording"))
}

/// MediaMTX start: path with our config, recorder on, keep-alive reader, wait for the publisher.
fn prepare(shared: &Shared, path: &str) -> Result<Ffmpeg> {
    let mtx = &shared.mediamtx;
    mtx.ensure_path(path)?;
    mtx.set_record(path, true)?;
    let undo = |e: Error| {
        let _ = mtx.set_record(path, false);
        e
    };
    let args = segments::keepalive_args(&shared.config, path);
    let keepalive = Ffmpeg::spawn(&format!("keepalive {path}"), &args, &[])
        .map_err(|e| undo(Error::MediaMtx(format!("cannot start keep-alive reader: {e}"))))?;
    let timeout = Duration::from_secs_f64(shared.config.mediamtx.stream_readiness.timeout.max(0.1));
    mtx.wait_ready(path, timeout).map_err(|e| match e {
        Error::MediaMtx(r) => undo(Error::MediaMtx(r)),
        other => undo(Error::MediaMtx(other.to_string())),
    })?;
    Ok(keepalive)
}

/// The first segment file of the session, waiting for it at most `within`.
fn first_segment(info: &SessionInfo, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some((name, _)) = info.files().into_iter().next() {
            return Some(name);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Is the session's writer still healthy? Some(ending) when it is not.
fn check_backend(shared: &Shared, s: &mut Session, check_mtx: bool) -> Option<Ending> {
    let timed = s.info.duration.is_some();
    match &mut s.backend {
        Backend::Direct(p) => {
            let st = p.try_wait()?;
            if st.success() && timed {
                // `-t` reached: a normal end of a timed recording.
                return Some(Ending::Timer);
            }
            let tail = p.stderr_tail();
            let last = tail.lines().last().unwrap_or("");
            let why = if tail.contains("No space left") {
                format!("storage_full: {last}")
            } else {
                format!("process_exited: ffmpeg {} {last}", process::describe(st)).trim().to_string()
            };
            Some(Ending::Failed(why))
        }
        Backend::Mtx { keepalive, restarts, restart_at, not_ready_since } => {
            let path = &s.info.path_name;
            if let Some(st) = keepalive.as_mut().and_then(Ffmpeg::try_wait) {
                *keepalive = None;
                if *restarts >= MAX_KEEPALIVE_RESTARTS {
                    return Some(Ending::Failed(format!("stream_lost: keep-alive reader {}", process::describe(st))));
                }
                *restarts += 1;
                *restart_at = Some(Instant::now() + Duration::from_secs(1 << (*restarts - 1)));
            }
            if keepalive.is_none() && restart_at.is_some_and(|t| t <= Instant::now()) {
                *restart_at = None;
                let args = segments::keepalive_args(&shared.config, path);
                *keepalive = Ffmpeg::spawn(&format!("keepalive {path}"), &args, &[]).ok();
            }
            if !check_mtx {
                return None;
            }
            let metrics = shared.mediamtx.path_metrics(path);
            if metrics.as_ref().is_some_and(|m| m.ready) {
                *not_ready_since = None;
                return None;
            }
            let since = *not_ready_since.get_or_insert_with(Instant::now);
            let limit = Duration::from_secs_f64(shared.config.mediamtx.stream_readiness.timeout.max(1.0));
            (since.elapsed() > limit)
                .then(|| Ending::Failed(if metrics.is_none() { "mediamtx_unavailable" } else { "stream_lost" }.into()))
        }
    }
}
