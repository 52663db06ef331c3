//! The `recorder` thread: sole owner of the recording sessions.
//!
//! Handlers send [`Command`]s with a reply channel; camera events and a supervision tick arrive on the same loop.
//! Every way a session ends (stop request, timer, ffmpeg death, unplug, full disk, shutdown) goes through
//! [`Recorder::end`], so state is always cleared and a notification always says what happened (in the Python service a
//! timed recording left the camera stuck "recording", and its notification carried a made-up file name).
//! Timers are part of the session they belong to, so a stale timer cannot stop a later session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, select, Receiver, Sender};
use serde_json::Value;

use super::process::{self, Ffmpeg};
use super::session::{self, Backend, Ending, Reply, Session, Writer};
use super::{segments, snapshot, RecorderWiring, SessionInfo, Shared};
use crate::camera::{Camera, CameraEvent, CameraStatus};
use crate::error::{Error, Result};
use crate::process::heartbeat::Heartbeat;
use crate::process::status::{Components, State};
use crate::process::{Shutdown, Supervisor};
use crate::rpc::notify::{Hub, Notification};

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
/// How long a direct start waits for ffmpeg to open its first segment (it does so once the first frame is encoded:
/// a V4L2 camera may take a few seconds to deliver it). ffmpeg names the file from its own clock at that moment,
/// so the reply waits for the file; an ffmpeg that exits before opening it fails the start (-1004). Past this wait
/// the name predicted at the request is announced.
const DIRECT_FIRST_FILE_WAIT: Duration = Duration::from_secs(10);
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
    /// A start finished its preparation, with the name of the first segment once it appeared. The process is the
    /// recording ffmpeg (direct mode: it has opened its output) or the keep-alive reader (MediaMTX mode: the path is
    /// ready and MediaMTX records it).
    Prepared {
        session_id: String,
        result: Result<Writer>,
        first_file: Option<String>,
    },
    /// Daemon shutdown, before connections close: finalise every recording, publish its STOPPED notification, refuse
    /// new ones; reply when done.
    Finish {
        reply: Sender<()>,
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
        closing: false,
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
    /// Set by [`Command::Finish`]: recordings are finalised and no new one starts.
    closing: bool,
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
                Ok(mut session) => {
                    session.starting = Some(reply);
                    self.insert(session);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Stop { device, reply } => self.stop_request(&device, reply),
            Command::Prepared { session_id, result, first_file } => self.prepared(&session_id, result, first_file),
            Command::Finish { reply } => {
                self.closing = true;
                self.finish_all();
                let _ = reply.send(());
            }
        }
    }

    /// Checks in the Python order (-1006, -1010, -1003), then start the backend; the reply follows once it runs.
    fn begin(&mut self, req: StartRequest) -> Result<Session> {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        if self.closing {
            return Err(Error::internal("shutting down"));
        }
        let camera = shared.cameras.get(&req.device)?;
        if let Some(s) = self.sessions.get(&camera.device) {
            return Err(Error::CameraRecording(format!("{} session {}", camera.device, s.info.session_id)));
        }
        if camera.status != CameraStatus::Connected {
            return Err(Error::CameraNotFound(format!("{} is {}", camera.device, camera.status.as_str())));
        }
        let dir = segments::session_dir(cfg, &camera.path_name);
        // A folder nothing can be written to fails the start (-1004), rather than a STARTED followed by a FAILED.
        crate::util::fs::create_shared_dir(&dir)
            .and_then(|()| crate::util::fs::check_writable(&dir))
            .map_err(|e| Error::Stream(format!("cannot write recordings to {}: {e}", dir.display())))?;
        snapshot::storage_guard(&dir, (shared.thresholds)())?;
        let direct = camera.is_virtual || !shared.mediamtx.enabled();
        if !direct && !shared.mediamtx.available() {
            return Err(Error::MediaMtx("MediaMTX is unreachable".into()));
        }
        let start = SystemTime::now();
        let filename = segments::segment_name(&camera.path_name, start);
        let info = SessionInfo {
            session_id: crate::util::ids::uuid_v4(),
            device: camera.device.clone(),
            path_name: camera.path_name.clone(),
            current_file: filename.clone(),
            filename,
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
            session.backend = Backend::DirectStarting;
        }
        self.prepare(&session);
        Ok(session)
    }

    /// The start of the writer runs on a short-lived thread so the recorder keeps answering: direct mode spawns
    /// ffmpeg and waits until it has opened its first segment (or failed to); MediaMTX mode makes HTTP round-trips and
    /// waits for stream readiness and the recorder's first segment. The result comes back as [`Command::Prepared`],
    /// also when the preparation panics (the session then fails instead of waiting forever).
    fn prepare(&self, session: &Session) {
        let (shared, tx, info) = (self.shared.clone(), self.tx.clone(), session.info.clone());
        let camera = session.camera.clone();
        let direct = matches!(session.backend, Backend::DirectStarting);
        let (id, path) = (session.info.session_id.clone(), session.info.path_name.clone());
        let spawned = std::thread::Builder::new().name("recording-start".into()).spawn(move || {
            let prepared = crate::process::guarded("recording-start", || {
                if direct {
                    return start_direct(&shared, &camera, &info);
                }
                let result = prepare_mtx(&shared, &path).map(|process| Writer { process, feed: None });
                let first_file = result.as_ref().ok().and_then(|_| first_segment(&info, FIRST_SEGMENT_WAIT));
                (result, first_file)
            });
            let (result, first_file) = prepared
                .unwrap_or_else(|panic| (Err(Error::internal(format!("recording start failed: {panic}"))), None));
            if let Err(crossbeam_channel::SendError(Command::Prepared { result: Ok(_), .. })) =
                tx.send(Command::Prepared { session_id: id, result, first_file })
            {
                // The recorder is gone (shutdown): undo; the process was dropped (killed) with the message.
                if !direct {
                    let _ = shared.mediamtx.set_record(&path, false);
                }
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

    fn prepared(&mut self, session_id: &str, result: Result<Writer>, first_file: Option<String>) {
        let Some(device) =
            self.sessions.values().find(|s| s.info.session_id == session_id).map(|s| s.info.device.clone())
        else {
            return;
        };
        let s = self.sessions.get_mut(&device).expect("session present");
        let reply = s.starting.take();
        match result {
            Ok(writer) => {
                match first_file {
                    Some(name) => {
                        s.info.current_file = name.clone();
                        s.info.filename = name;
                        self.shared.sessions.write().insert(device.clone(), s.info.clone());
                    }
                    None => log::warn!("recording {device}: no segment file yet; announcing {}", s.info.filename),
                }
                // The timer runs from now (the writer is running); a direct session's `started` stays at the request
                // (ffmpeg was spawned then), so the reported duration covers its start-up as before.
                let now = Instant::now();
                s.deadline = s.info.duration.and_then(|d| deadline(now, d));
                let mode = match &mut s.backend {
                    Backend::Mtx { keepalive, .. } => {
                        s.started = now;
                        *keepalive = Some(writer.process);
                        "MediaMTX recorder"
                    }
                    Backend::DirectStarting | Backend::Direct(_) => {
                        s.backend = Backend::Direct(writer);
                        // ffmpeg ends a timed recording itself (`-t`); the timer is a safety net.
                        s.deadline = s.deadline.and_then(|d| d.checked_add(DIRECT_TIMER_SLACK));
                        "direct ffmpeg"
                    }
                };
                log::info!("recording {device} started (session {session_id}, {mode})");
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
        // The same failure for clients that follow MediaMTX's recorder (recorder mode only).
        let mtx_failed = match (error, &s.backend) {
            (Some(e), Backend::Mtx { .. }) => Some(serde_json::json!({
                "path": s.info.path_name, "device": device, "error": e, "session_id": s.info.session_id,
            })),
            _ => None,
        };
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
            _ => {
                self.hub.publish(Notification::new("recording_status_update", note));
                if let Some(params) = mtx_failed {
                    let topic = crate::events::Topic::MediamtxRecordingFailed;
                    self.hub.publish(Notification::event(topic, Some(device), params));
                }
            }
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
        self.publish_current_files();
    }

    /// Publish each session's newest segment on the board, so camera listings (answered inline on the WebSocket
    /// workers) name the file being written without touching the disk.
    fn publish_current_files(&mut self) {
        for (device, s) in self.sessions.iter_mut().filter(|(_, s)| s.starting.is_none()) {
            let Some((newest, _)) = s.info.files().pop() else { continue };
            if newest != s.info.current_file {
                s.info.current_file = newest;
                self.shared.sessions.write().insert(device.clone(), s.info.clone());
            }
        }
    }

    /// Finalise every recording within the shutdown budget: SIGINT all at once, wait, SIGKILL the rest; each ends with
    /// its STOPPED notification. Starts still being prepared are refused (their client never saw STARTED).
    fn finish_all(&mut self) {
        let shared = self.shared.clone();
        let mut unstarted = Vec::new();
        for (device, s) in self.sessions.iter_mut() {
            match &mut s.backend {
                Backend::Direct(w) => w.process.signal(libc::SIGINT),
                Backend::Mtx { .. } => {
                    let _ = shared.mediamtx.set_record(&s.info.path_name, false);
                }
                Backend::DirectStarting => {}
            }
            if let Some(r) = s.starting.take() {
                let _ = r.send(Err(Error::internal("shutting down")));
                for r in s.pending_stops.drain(..) {
                    let _ = r.send(Err(not_recording(device)));
                }
                unstarted.push(device.clone());
            }
        }
        for device in unstarted {
            // The preparing thread's process is dropped (killed) with its message once the recorder is gone.
            self.sessions.remove(&device);
            self.shared.sessions.write().remove(&device);
        }
        let until = Instant::now() + SHUTDOWN_GRACE;
        for s in self.sessions.values_mut() {
            if let Backend::Direct(Writer { process: p, .. }) = &mut s.backend {
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
        self.report();
    }

    fn shutdown_all(&mut self, rx: &Receiver<Command>) {
        self.finish_all();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Start { reply, .. } | Command::Stop { reply, .. } => {
                    let _ = reply.send(Err(Error::internal("shutting down")));
                }
                Command::Finish { reply } => {
                    let _ = reply.send(());
                }
                Command::Prepared { .. } => {}
            }
        }
        self.components.set("recorder", State::Stopped, "stopped");
    }
}

/// The auto-stop instant `secs` after `start`; None (until stopped) when that is beyond what `Instant` can hold —
/// `duration` has no upper bound in the contract, and an overflow here would panic the recorder thread.
fn deadline(start: Instant, secs: u64) -> Option<Instant> {
    start.checked_add(Duration::from_secs(secs))
}

fn not_recording(device: &str) -> Error {
    Error::MediaMtx(format!("{device} is not recording"))
}

/// Direct start: our ffmpeg, and the name of the first segment it opened. ffmpeg names that file from its own clock
/// when the first frame is encoded, so only the file tells the real name. An ffmpeg that exits before opening its
/// output (an unwritable folder, a device that cannot be opened) fails the start with its last error line.
///
/// A V4L2 device streams for one process at a time: the recording claims the camera's reader place first (our live
/// or snapshot reader lets go of the device) and also writes JPEG frames for the live view and snapshots.
fn start_direct(shared: &Shared, camera: &Camera, info: &SessionInfo) -> (Result<Writer>, Option<String>) {
    // A new segment named like one already in the folder would overwrite it (a stop and a start within the same
    // second): wait for the next second first (at most one).
    let until = Instant::now() + Duration::from_millis(1100);
    while info.preexisting.contains(&segments::segment_name(&info.path_name, SystemTime::now()))
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let frames = segments::exclusive_device(camera).then(|| super::live::frame_output(shared, camera));
    let feed = frames.map(|f| shared.grabbers.claim(&camera.device, f.qscale, f.fps));
    let args = segments::direct_args(&shared.config, camera, &info.dir, info.duration, frames);
    let label = format!("record {}", info.path_name);
    // TZ=UTC: the segment muxer's strftime names must be UTC like every other time stamp.
    let env = [("TZ", "UTC")];
    let spawned = match &feed {
        Some(feed) => Ffmpeg::spawn_piped(&label, &args, &env).and_then(|(p, stdout)| {
            // Without a reader of its frames the recording would stall on a full pipe.
            feed.read(stdout).map_err(std::io::Error::other)?;
            Ok(p)
        }),
        None => Ffmpeg::spawn(&label, &args, &env),
    };
    let p = match spawned {
        Ok(p) => p,
        Err(e) => return (Err(Error::Stream(format!("cannot start ffmpeg: {e}"))), None),
    };
    let mut w = Writer { process: p, feed };
    let p = &mut w.process;
    let first = |info: &SessionInfo| info.files().into_iter().next().map(|(name, _)| name);
    let deadline = Instant::now() + DIRECT_FIRST_FILE_WAIT;
    loop {
        if let Some(name) = first(info) {
            return (Ok(w), Some(name));
        }
        if let Some(st) = p.try_wait() {
            // It may have written its file just before it ended (a very short timed recording).
            if let Some(name) = first(info) {
                return (Ok(w), Some(name));
            }
            let tail = p.stderr_tail();
            let last = tail.lines().last().unwrap_or("no output");
            return (Err(Error::Stream(format!("ffmpeg could not record ({}): {last}", process::describe(st)))), None);
        }
        if Instant::now() >= deadline {
            return (Ok(w), None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// MediaMTX start: path with our config, recorder on, keep-alive reader, wait for the publisher.
fn prepare_mtx(shared: &Shared, path: &str) -> Result<Ffmpeg> {
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
        Backend::DirectStarting => None,
        Backend::Direct(Writer { process: p, .. }) => {
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
