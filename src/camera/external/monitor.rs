//! The `camera-external` thread: it owns the set of external sources (configured ones and those added at run
//! time, the latter persisted), checks each one periodically, and hands the registry a [`Camera`] whenever what it
//! knows about a source changes.
//!
//! Checks run on short-lived `rtsp-check` threads, at most [`MAX_CHECKS_IN_FLIGHT`] at once, each bounded by
//! `camera.external_probe_timeout` (twice when ffprobe must fill in size or rate), so this thread never blocks on
//! the network and stops at once on shutdown. A source that answered and then fails is checked again after
//! [`RECHECK_AFTER`] and reported down only if that fails too, so one lost packet does not flap its status.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::RwLock;

use super::probe::{self, Outcome};
use super::source::{name_problem, SourceUrl, Transport};
use super::store::{Store, Stored};
use super::{Change, ExternalStream, NewStream, Origin};
use crate::camera::model::{Camera, CameraKind, CameraStatus, ExternalSource, Format, FrameSize};
use crate::config::external::MAX_EXTERNAL_STREAMS;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::process::Shutdown;
use crate::util::{redact, timefmt};

pub const MAX_CHECKS_IN_FLIGHT: usize = 8;
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// Messages to the `camera-external` thread.
pub enum Request {
    Add {
        spec: NewStream,
        reply: Sender<Result<ExternalStream>>,
    },
    Remove {
        key: String,
        reply: Sender<Result<ExternalStream>>,
    },
    /// A check finished (sent by its worker).
    Checked {
        name: String,
        generation: u64,
        outcome: Outcome,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Health {
    Unchecked,
    Up(super::sdp::StreamInfo),
    Down(String),
    Unauthorized(String),
}

struct Source {
    name: String,
    url: SourceUrl,
    transport: Transport,
    origin: Origin,
    added_at: Option<SystemTime>,
    generation: u64,
    health: Health,
    last_seen: Option<SystemTime>,
    last_checked: Option<SystemTime>,
    /// Consecutive failed checks.
    failures: u32,
    next_check: Instant,
    checking: bool,
    /// `add` waits for the first check so its caller sees the real status, but no longer than this.
    pending_add: Option<(Sender<Result<ExternalStream>>, Instant)>,
}

pub struct Monitor {
    sources: Vec<Source>,
    store: Store,
    interval: Duration,
    timeout: Duration,
    in_flight: usize,
    next_generation: u64,
    requests: Sender<Request>,
    publish: Box<dyn Fn(Change) + Send>,
    list: Arc<RwLock<Arc<Vec<ExternalStream>>>>,
    ready: Option<Sender<()>>,
}

impl Monitor {
    /// The configured sources, then the stored ones that do not clash with them.
    pub fn new(
        config: &Config,
        requests: Sender<Request>,
        publish: Box<dyn Fn(Change) + Send>,
        list: Arc<RwLock<Arc<Vec<ExternalStream>>>>,
        ready: Sender<()>,
    ) -> Monitor {
        let mut m = Monitor {
            sources: Vec::new(),
            store: Store::new(&config.state_dir),
            interval: Duration::from_secs_f64(config.camera.external_probe_interval.max(0.1)),
            timeout: Duration::from_secs_f64(config.camera.external_probe_timeout.max(0.05)),
            in_flight: 0,
            next_generation: 0,
            requests,
            publish,
            list,
            ready: Some(ready),
        };
        for c in &config.camera.external {
            // Validated with the configuration; an entry that still fails is skipped, never a panic.
            let spec = NewStream { name: c.name.clone(), url: c.url.clone(), transport: c.transport.clone() };
            match m.admit(&spec, Origin::Config, None) {
                Ok(s) => m.sources.push(s),
                Err(e) => log::warn!("camera.external {:?}: {e}", c.name),
            }
        }
        let (stored, problem) = m.store.load();
        if let Some(p) = problem {
            log::warn!("external streams: {p}");
        }
        for s in stored {
            let spec = NewStream { name: s.name.clone(), url: s.url.clone(), transport: s.transport.clone() };
            let added = timefmt::parse_rfc3339(&s.added_at)
                .and_then(|t| u64::try_from(t).ok())
                .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t));
            match m.admit(&spec, Origin::Runtime, added) {
                Ok(src) => m.sources.push(src),
                Err(e) => log::warn!("stored external stream {:?} ignored: {e}", s.name),
            }
        }
        m
    }

    /// Body of the `camera-external` thread.
    pub fn run(mut self, rx: Receiver<Request>, shutdown: Shutdown) -> std::result::Result<(), String> {
        let names: Vec<String> = self.sources.iter().map(|s| format!("{} ({})", s.name, s.url)).collect();
        log::info!("external cameras: {}", if names.is_empty() { "none".into() } else { names.join(", ") });
        self.publish_list();
        loop {
            self.start_due_checks(Instant::now());
            self.answer_overdue_adds(Instant::now());
            let wake = self.next_wake();
            crossbeam_channel::select! {
                recv(rx) -> m => match m {
                    Ok(m) => self.handle(m),
                    Err(_) => return Ok(()),
                },
                recv(shutdown.channel()) -> _ => return Ok(()),
                default(wake.saturating_duration_since(Instant::now())) => {}
            }
        }
    }

    fn handle(&mut self, m: Request) {
        match m {
            Request::Add { spec, reply } => {
                if let Err(e) = self.add(spec, reply.clone()) {
                    let _ = reply.send(Err(e));
                }
            }
            Request::Remove { key, reply } => {
                let _ = reply.send(self.remove(&key));
            }
            Request::Checked { name, generation, outcome } => self.on_checked(&name, generation, outcome),
        }
    }

    /// Validate a stream against the rules and the current set; the new source is due for a check at once.
    fn admit(&mut self, spec: &NewStream, origin: Origin, added_at: Option<SystemTime>) -> Result<Source> {
        let name = spec.name.trim();
        if let Some(why) = name_problem(name) {
            return Err(Error::invalid_params(format!("stream_name: {why}")));
        }
        let url =
            SourceUrl::parse(spec.url.trim()).map_err(|why| Error::invalid_params(format!("stream_url: {why}")))?;
        let transport = Transport::parse(spec.transport.as_deref())
            .map_err(|w| Error::invalid_params(format!("transport: {w}")))?;
        if let Some(other) = self.sources.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
            return Err(Error::invalid_params(format!("stream_name {:?} is already in use", other.name)));
        }
        if let Some(other) = self.sources.iter().find(|s| s.url.same_source(&url)) {
            return Err(Error::invalid_params(format!("stream_url {url} is already added as {:?}", other.name)));
        }
        if self.sources.len() >= MAX_EXTERNAL_STREAMS {
            return Err(Error::invalid_params(format!("at most {MAX_EXTERNAL_STREAMS} external streams")));
        }
        self.next_generation += 1;
        Ok(Source {
            name: name.to_string(),
            url,
            transport,
            origin,
            added_at,
            generation: self.next_generation,
            health: Health::Unchecked,
            last_seen: None,
            last_checked: None,
            failures: 0,
            next_check: Instant::now(),
            checking: false,
            pending_add: None,
        })
    }

    fn add(&mut self, spec: NewStream, reply: Sender<Result<ExternalStream>>) -> Result<()> {
        let mut source = self.admit(&spec, Origin::Runtime, Some(SystemTime::now()))?;
        let mut stored = self.stored();
        stored.push(stored_form(&source));
        self.store.save(&stored).map_err(|e| Error::internal(format!("cannot save external streams: {e}")))?;
        log::info!("external camera {} added: {}", source.name, source.url);
        // A check is bounded by the timeout (twice with ffprobe); a name lookup that hangs is not.
        source.pending_add = Some((reply, Instant::now() + self.timeout * 2 + Duration::from_secs(1)));
        self.sources.push(source);
        self.publish_list();
        Ok(())
    }

    /// Remove a run-time stream by name or URL (a URL may be given with its password masked).
    fn remove(&mut self, key: &str) -> Result<ExternalStream> {
        let key = key.trim();
        let by_url = SourceUrl::parse(key).ok();
        let found = self.sources.iter().position(|s| {
            s.name == key || s.url.redacted() == key || by_url.as_ref().is_some_and(|u| u.same_source(&s.url))
        });
        let Some(i) = found else { return Err(Error::CameraNotFound(redact::url(key).into_owned())) };
        if self.sources[i].origin == Origin::Config {
            let name = &self.sources[i].name;
            return Err(Error::invalid_params(format!(
                "{name:?} is configured in camera.external; remove it from the configuration file"
            )));
        }
        let stored: Vec<Stored> = self.stored().into_iter().filter(|s| s.name != self.sources[i].name).collect();
        self.store.save(&stored).map_err(|e| Error::internal(format!("cannot save external streams: {e}")))?;
        let source = self.sources.remove(i);
        log::info!("external camera {} removed ({})", source.name, source.url);
        if let Some((waiting, _)) = &source.pending_add {
            let _ = waiting.send(Ok(view(&source)));
        }
        (self.publish)(Change::Remove(source.name.clone()));
        self.publish_list();
        Ok(view(&source))
    }

    fn stored(&self) -> Vec<Stored> {
        self.sources.iter().filter(|s| s.origin == Origin::Runtime).map(stored_form).collect()
    }

    fn start_due_checks(&mut self, now: Instant) {
        let (interval, timeout) = (self.interval, self.timeout);
        for s in self.sources.iter_mut() {
            if self.in_flight >= MAX_CHECKS_IN_FLIGHT {
                return;
            }
            if s.checking || s.next_check > now {
                continue;
            }
            s.checking = true;
            self.in_flight += 1;
            // ffprobe only when the stream (re)appears: later checks keep what it found.
            let ffprobe = !matches!(s.health, Health::Up(_));
            let (name, generation, url, transport) = (s.name.clone(), s.generation, s.url.clone(), s.transport);
            let tx = self.requests.clone();
            let spawned =
                std::thread::Builder::new().name("rtsp-check".into()).stack_size(256 * 1024).spawn(move || {
                    let outcome = probe::check(&url, transport, timeout, ffprobe);
                    let _ = tx.send(Request::Checked { name, generation, outcome });
                });
            if let Err(e) = spawned {
                log::warn!("cannot start a check of {}: {e}", s.name);
                s.checking = false;
                s.next_check = now + interval;
                self.in_flight -= 1;
            }
        }
    }

    /// An `add` whose first check overruns is answered with what is known (not yet checked).
    fn answer_overdue_adds(&mut self, now: Instant) {
        for s in self.sources.iter_mut().filter(|s| s.pending_add.as_ref().is_some_and(|(_, until)| now >= *until)) {
            if let Some((w, _)) = s.pending_add.take() {
                let _ = w.send(Ok(view(s)));
            }
        }
    }

    fn next_wake(&self) -> Instant {
        let idle = Instant::now() + Duration::from_secs(3600);
        let overdue = self.sources.iter().filter_map(|s| s.pending_add.as_ref().map(|(_, until)| *until)).min();
        if self.in_flight >= MAX_CHECKS_IN_FLIGHT {
            return overdue.unwrap_or(idle); // a finishing check wakes the loop
        }
        let due = self.sources.iter().filter(|s| !s.checking).map(|s| s.next_check).min();
        due.into_iter().chain(overdue).min().unwrap_or(idle)
    }

    fn on_checked(&mut self, name: &str, generation: u64, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let now = Instant::now();
        let interval = self.interval;
        let Some(s) = self.sources.iter_mut().find(|s| s.name == name && s.generation == generation) else { return };
        s.checking = false;
        s.last_checked = Some(SystemTime::now());
        s.next_check = now + interval;
        let failure = match outcome {
            Outcome::Up(info) => Ok(info),
            Outcome::Down(why) => Err(Health::Down(why)),
            Outcome::Unauthorized(why) => Err(Health::Unauthorized(why)),
        };
        match failure {
            Ok(mut info) => {
                if let Health::Up(before) = &s.health {
                    if before.codec == info.codec {
                        info.merge(before.clone());
                    }
                }
                if !matches!(s.health, Health::Up(_)) {
                    log::info!("external camera {} ({}) answers: {}", s.name, s.url, describe(&info));
                }
                s.failures = 0;
                s.last_seen = s.last_checked;
                s.health = Health::Up(info);
            }
            // One failure after success: look again soon before calling it down.
            Err(_) if matches!(s.health, Health::Up(_)) && s.failures == 0 => {
                s.failures = 1;
                s.next_check = now + RECHECK_AFTER.min(interval);
            }
            Err(health) => {
                s.failures += 1;
                if health != s.health {
                    if let Health::Down(why) | Health::Unauthorized(why) = &health {
                        log::warn!("external camera {} ({}) does not answer: {why}", s.name, s.url);
                    }
                }
                s.health = health;
            }
        }
        let cam = camera(s);
        let waiting = s.pending_add.take().map(|(w, _)| (w, view(s)));
        (self.publish)(Change::Upsert(Box::new(cam)));
        if let Some((w, v)) = waiting {
            let _ = w.send(Ok(v));
        }
        self.publish_list();
    }

    fn publish_list(&mut self) {
        let list: Vec<ExternalStream> = self.sources.iter().map(view).collect();
        *self.list.write() = Arc::new(list);
        if self.sources.iter().all(|s| s.last_checked.is_some()) {
            if let Some(r) = self.ready.take() {
                let _ = r.send(());
            }
        }
    }
}

fn describe(i: &super::sdp::StreamInfo) -> String {
    let size = match (i.width, i.height) {
        (Some(w), Some(h)) => format!("{w}x{h}"),
        _ => "size unknown".into(),
    };
    let fps = i.fps.map_or("rate unknown".into(), |f| format!("{f} fps"));
    format!("{} {size} {fps}", i.codec.as_deref().unwrap_or("unknown codec"))
}

fn stored_form(s: &Source) -> Stored {
    Stored {
        name: s.name.clone(),
        url: s.url.expose().to_string(),
        transport: s.transport.as_option().map(String::from),
        added_at: s.added_at.map(timefmt::rfc3339).unwrap_or_default(),
    }
}

fn status_of(h: &Health) -> CameraStatus {
    match h {
        Health::Up(_) => CameraStatus::Connected,
        Health::Unauthorized(_) => CameraStatus::Error,
        Health::Unchecked | Health::Down(_) => CameraStatus::Disconnected,
    }
}

/// What `get_external_streams` and the handle's `list` show.
fn view(s: &Source) -> ExternalStream {
    ExternalStream {
        name: s.name.clone(),
        url: s.url.clone(),
        transport: s.transport.as_option(),
        origin: s.origin,
        status: status_of(&s.health),
        checked: !matches!(s.health, Health::Unchecked),
        error: match &s.health {
            Health::Down(w) | Health::Unauthorized(w) => Some(w.clone()),
            _ => None,
        },
        added_at: s.added_at,
        last_seen: s.last_seen,
        info: match &s.health {
            Health::Up(i) => Some(i.clone()),
            _ => None,
        },
    }
}

/// The camera the registry lists for a source.
fn camera(s: &Source) -> Camera {
    let status = status_of(&s.health);
    let mut cam = Camera::unprobed(super::NO_DEVICE_NODE, status);
    cam.device = s.name.clone();
    cam.path_name = s.name.clone();
    cam.name = s.name.clone();
    cam.identity = format!("external:{}", s.name);
    cam.kind = CameraKind::External;
    cam.external = Some(ExternalSource { url: s.url.clone(), transport: s.transport });
    match &s.health {
        Health::Up(info) => {
            let size = info.width.zip(info.height);
            if let Some(fourcc) = info.fourcc() {
                let sizes =
                    size.map(|(width, height)| FrameSize { width, height, fps: info.fps.into_iter().collect() });
                let description = format!("{} over RTSP", info.codec.as_deref().unwrap_or("video"));
                cam.formats = vec![Format { fourcc, description, sizes: sizes.into_iter().collect() }];
            }
            cam.resolution = size.map(|(w, h)| format!("{w}x{h}")).unwrap_or_default();
            cam.fps = info.fps.map_or(0, |f| f.round() as u32);
            cam.validation_status = if info.complete() { "confirmed" } else { "provisional" }.into();
        }
        Health::Unauthorized(why) => {
            cam.validation_status = "error".into();
            cam.error = Some(why.clone());
        }
        Health::Unchecked | Health::Down(_) => cam.validation_status = "disconnected".into(),
    }
    cam
}

#[cfg(test)]
mod tests;
