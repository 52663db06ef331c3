//! Warm frame grabber: one long-running ffmpeg reader per camera producing JPEG frames, shared by repeated
//! snapshots (so they need not connect and wait for a key frame each time: ~1.2 s → a file write) and by the live
//! MJPEG view (`live`), which gets every frame.
//!
//! The first stream snapshot of a camera starts `ffmpeg … -i rtsp://… -vf fps=5 -c:v mjpeg -f image2pipe pipe:1`;
//! a reader thread splits stdout into JPEG frames and keeps only the latest one with its arrival time. Later
//! snapshots with the same quality take that frame when it is younger than [`MAX_AGE`], else wait for the next.
//! A live view attaches a [`Tap`]: the reader then runs at the live rate (the camera's, up to a cap) and offers
//! each frame to the tap's channel without ever waiting on it (a full channel drops the frame). While a tap is
//! attached, snapshots take the reader's frames whatever their quality instead of replacing the reader.
//! An owner thread per grabber stops ffmpeg [`IDLE`] after the last snapshot request and [`LIVE_LINGER`] after the
//! tap was detached (whichever is later), when the camera is no longer connected, when frames stop coming, when
//! ffmpeg exits, when a request for another quality or a higher rate replaces it, and at shutdown. The map of
//! grabbers is the one piece of shared state; its lock is never held across I/O.
//!
//! A V4L2 device streams for one opener at a time, so without MediaMTX a direct recording of a USB camera cannot
//! open the device while a reader of ours has it, nor the reverse. The recording therefore becomes the camera's
//! reader: [`Grabbers::claim`] stops our ffmpeg (waiting until it has let go of the device) and puts a *fed* grabber
//! in its place, whose frames come from a second output of the recording's ffmpeg ([`Feed::read`]). Live views and
//! snapshots use it as they would use ours; it is never replaced for another quality or rate, and it ends only when
//! the recorder drops the [`Feed`] (after the recording's ffmpeg has exited), after which the live view starts its
//! own reader again.
//!
//! Trade-off: while the reader runs it is a MediaMTX reader, so an on-demand publisher stays up for the idle
//! window. `performance.optimization.enable_caching: false` disables the grabber for snapshots (a live view still
//! uses one).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::Read;
use std::process::ChildStdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use super::process::Ffmpeg;
use super::CameraLookup;
use crate::camera::CameraStatus;
use crate::process::Shutdown;

/// The reader stops this long after the last snapshot request.
pub const IDLE: Duration = Duration::from_secs(30);
/// A kept frame at most this old is used as is.
pub const MAX_AGE: Duration = Duration::from_millis(500);
/// After the live view detached, the reader stays this long for a viewer that comes back (a page re-render, a
/// renewed URL) before the snapshot idle rule alone decides.
pub const LIVE_LINGER: Duration = Duration::from_secs(2);
/// Frames per second the reader encodes for snapshots alone (enough for `MAX_AGE`, cheap on a small box).
const FPS: u32 = 5;
/// No frame for this long (after the first one, or since start) ends the reader.
const STALL: Duration = Duration::from_secs(10);
/// How often the owner thread checks idle/stall/camera state.
const TICK: Duration = Duration::from_millis(200);
/// How long a reader that is being replaced may take to let go of the camera before the next one opens it anyway.
const RELEASE_WAIT: Duration = Duration::from_secs(3);
/// A "frame" larger than this is garbage: drop it and resynchronise.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// One complete JPEG image and when it arrived.
#[derive(Clone)]
pub struct Frame {
    pub data: Arc<Vec<u8>>,
    pub at: Instant,
}

/// What a snapshot request does with the camera's grabber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write the kept frame now.
    Use,
    /// The grabber fits but has no fresh frame yet: wait for the next one.
    Wait,
    /// There is none (or it ended): start one.
    Start,
    /// It runs with another quality: stop it and start a new one.
    Replace,
}

/// What the request knows about an existing grabber.
#[derive(Debug, Clone, Copy)]
pub struct Existing {
    pub qscale: u8,
    pub ended: bool,
    /// Age of the kept frame, None before the first one.
    pub frame_age: Option<Duration>,
    /// A live view is attached: never replace it for a snapshot's quality (its viewers would lose the stream).
    pub live: bool,
}

pub fn decide(existing: Option<Existing>, qscale: u8) -> Decision {
    match existing {
        None => Decision::Start,
        Some(e) if e.ended => Decision::Start,
        Some(e) if e.qscale != qscale && !e.live => Decision::Replace,
        Some(e) if e.frame_age.is_some_and(|a| a <= MAX_AGE) => Decision::Use,
        Some(_) => Decision::Wait,
    }
}

/// The latest frame, or why the reader ended.
#[derive(Default)]
struct Slot {
    frame: Option<Frame>,
    ended: Option<String>,
    /// Its ffmpeg has exited (or never ran): the camera is free for the next reader.
    released: bool,
}

/// The live view's attachment to a reader.
#[derive(Default)]
struct LiveLink {
    /// Where every frame is offered (never waited on).
    tx: Option<Sender<Frame>>,
    /// When the last tap was detached.
    detached_at: Option<Instant>,
}

impl LiveLink {
    /// Neither attached nor recently detached.
    fn idle(&self) -> bool {
        self.tx.is_none() && self.detached_at.is_none_or(|t| t.elapsed() >= LIVE_LINGER)
    }
}

struct Grabber {
    device: String,
    qscale: u8,
    /// Frames per second ffmpeg encodes.
    fps: u32,
    /// The frames come from a recording's ffmpeg (see the module docs), not from an ffmpeg of ours.
    fed: bool,
    slot: Mutex<Slot>,
    cv: Condvar,
    /// The last snapshot request.
    last_request: Mutex<Instant>,
    live: Mutex<LiveLink>,
    /// Set to end the grabber early (replaced by another quality or rate).
    stop: AtomicBool,
}

impl Grabber {
    fn new(device: &str, qscale: u8, fps: u32, fed: bool, last_request: Instant) -> Grabber {
        Grabber {
            device: device.to_string(),
            qscale,
            fps,
            fed,
            // A fed grabber owns no process: the recorder frees the camera when its recording ends.
            slot: Mutex::new(Slot { released: fed, ..Slot::default() }),
            cv: Condvar::new(),
            last_request: Mutex::new(last_request),
            live: Mutex::default(),
            stop: AtomicBool::new(false),
        }
    }

    fn existing(&self) -> Existing {
        // A recording's frames are the only ones there are while it runs: treat them as pinned like a live view's.
        let live = self.fed || self.live.lock().tx.is_some();
        let slot = self.slot.lock();
        Existing {
            qscale: self.qscale,
            ended: slot.ended.is_some(),
            frame_age: slot.frame.as_ref().map(|f| f.at.elapsed()),
            live,
        }
    }

    fn ended(&self) -> bool {
        self.slot.lock().ended.is_some()
    }

    fn publish(&self, frame: Frame) {
        if let Some(tx) = &self.live.lock().tx {
            // A full channel means the live view is behind: it misses this frame, the reader never waits.
            let _ = tx.try_send(frame.clone());
        }
        self.slot.lock().frame = Some(frame);
        self.cv.notify_all();
    }

    fn end(&self, why: String) {
        let mut slot = self.slot.lock();
        if slot.ended.is_none() {
            slot.ended = Some(why);
        }
        drop(slot);
        self.cv.notify_all();
    }

    /// Its ffmpeg is gone: the next reader may open the camera.
    fn release(&self) {
        self.slot.lock().released = true;
        self.cv.notify_all();
    }

    /// Stop this reader and wait (at most until `deadline`) until its ffmpeg has let go of the camera.
    fn stop_and_wait(&self, deadline: Instant) {
        self.stop.store(true, Ordering::SeqCst);
        let mut slot = self.slot.lock();
        while !slot.released {
            if self.cv.wait_until(&mut slot, deadline).timed_out() {
                log::warn!("grabber {}: the old reader did not stop in time", self.device);
                return;
            }
        }
    }

    /// The first frame that arrived at or after `since`, waiting until `deadline`.
    fn wait_frame(&self, since: Instant, deadline: Instant) -> Result<Frame, String> {
        let mut slot = self.slot.lock();
        loop {
            if let Some(f) = slot.frame.as_ref().filter(|f| f.at >= since) {
                return Ok(f.clone());
            }
            if let Some(why) = &slot.ended {
                return Err(format!("stream reader ended: {why}"));
            }
            if self.cv.wait_until(&mut slot, deadline).timed_out() {
                return Err("no frame from the stream reader in time".into());
            }
        }
    }
}

type Map = Arc<Mutex<HashMap<String, Arc<Grabber>>>>;

/// The per-camera grabbers (one per camera device id).
pub struct Grabbers {
    enabled: bool,
    shutdown: Shutdown,
    cameras: Arc<dyn CameraLookup>,
    map: Map,
}

impl Grabbers {
    pub fn new(enabled: bool, shutdown: Shutdown, cameras: Arc<dyn CameraLookup>) -> Grabbers {
        Grabbers { enabled, shutdown, cameras, map: Arc::default() }
    }

    pub fn enabled(&self) -> bool {
        self.enabled && !self.shutdown.is_set()
    }

    /// A fresh JPEG frame of `device`'s stream at `qscale`: the kept one, or the next one from a (new) reader.
    /// `input` is the ffmpeg input options (`… -i rtsp://…`).
    pub fn frame(&self, device: &str, input: &[String], qscale: u8, deadline: Instant) -> Result<Frame, String> {
        let requested = Instant::now();
        let current = self.map.lock().get(device).cloned();
        let grabber = match decide(current.as_ref().map(|g| g.existing()), qscale) {
            Decision::Use | Decision::Wait => current.expect("decided on an existing grabber"),
            Decision::Replace | Decision::Start => self.start(device, input, qscale, FPS, Instant::now())?,
        };
        *grabber.last_request.lock() = Instant::now();
        grabber.wait_frame(requested.checked_sub(MAX_AGE).unwrap_or(requested), deadline)
    }

    /// Attach the live view of `device` to its reader, starting one at `fps` (or replacing a slower one) when
    /// needed; every frame is then offered to `tx` until the returned [`Tap`] is dropped. `input` is the ffmpeg input
    /// options (`… -i …`), `qscale` the quality of a reader started here.
    pub fn attach_live(
        &self,
        device: &str,
        input: &[String],
        qscale: u8,
        fps: u32,
        tx: Sender<Frame>,
    ) -> Result<Tap, String> {
        let current = self.map.lock().get(device).cloned();
        let g = match current {
            Some(g) if !g.ended() && (g.fed || g.fps >= fps) => g,
            _ => {
                // No snapshot asked for this reader: only the live view keeps it running.
                let never = Instant::now().checked_sub(IDLE).unwrap_or_else(Instant::now);
                self.start(device, input, qscale, fps, never)?
            }
        };
        g.live.lock().tx = Some(tx);
        Ok(Tap(g))
    }

    /// True while a live view is attached to `device`'s reader (a snapshot then takes its frames).
    pub fn is_live(&self, device: &str) -> bool {
        self.map.lock().get(device).is_some_and(|g| g.live.lock().tx.is_some() && !g.ended())
    }

    /// True while a recording is `device`'s reader (a snapshot then takes its frames: the device is busy).
    pub fn is_fed(&self, device: &str) -> bool {
        self.map.lock().get(device).is_some_and(|g| g.fed && !g.ended())
    }

    /// Make a recording the reader of `device`: stop our reader of it, if any, and wait until its ffmpeg has let go
    /// of the device, so the recording's ffmpeg can open it. Frames read by [`Feed::read`] at `qscale` and `fps`
    /// then go to the live view and snapshots, until the feed is dropped.
    pub fn claim(&self, device: &str, qscale: u8, fps: u32) -> Feed {
        let never = Instant::now().checked_sub(IDLE).unwrap_or_else(Instant::now);
        let g = Arc::new(Grabber::new(device, qscale, fps, true, never));
        let old = self.map.lock().insert(device.to_string(), g.clone());
        if let Some(old) = old {
            old.stop_and_wait(Instant::now() + RELEASE_WAIT);
        }
        log::info!("grabber {device}: the recording reads the camera now");
        Feed { g, map: self.map.clone() }
    }

    fn start(
        &self,
        device: &str,
        input: &[String],
        qscale: u8,
        fps: u32,
        last_request: Instant,
    ) -> Result<Arc<Grabber>, String> {
        let g = Arc::new(Grabber::new(device, qscale, fps, false, last_request));
        // Take the camera's place before ffmpeg opens it, so a recording that claims the camera meanwhile waits for
        // this reader to let go; while a recording is the reader, its frames are used instead.
        let old = {
            let mut map = self.map.lock();
            if let Some(fed) = map.get(device).filter(|c| c.fed && !c.ended()) {
                return Ok(fed.clone());
            }
            map.insert(device.to_string(), g.clone())
        };
        if let Some(old) = old {
            if opens_device(input) {
                old.stop_and_wait(Instant::now() + RELEASE_WAIT);
            } else {
                // A stream any number of readers may open: the new reader starts at once, next to the old one.
                old.stop.store(true, Ordering::SeqCst);
            }
        }
        let started = self.spawn_reader(&g, input);
        if let Err(e) = &started {
            forget(&self.map, &g);
            g.end(e.clone());
            g.release();
        }
        started.map(|()| g)
    }

    /// Start `g`'s ffmpeg, its reader thread and its owner thread.
    fn spawn_reader(&self, g: &Arc<Grabber>, input: &[String]) -> Result<(), String> {
        let (device, qscale, fps) = (g.device.as_str(), g.qscale, g.fps);
        let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin"].map(String::from).to_vec();
        args.extend_from_slice(input);
        let fps_filter = format!("fps={fps}");
        let q = qscale.to_string();
        args.extend(
            ["-an", "-vf", &fps_filter, "-c:v", "mjpeg", "-q:v", &q, "-f", "image2pipe", "pipe:1"].map(String::from),
        );
        let label = format!("grabber {device}");
        let (process, stdout) =
            Ffmpeg::spawn_piped(&label, &args, &[]).map_err(|e| format!("cannot start ffmpeg: {e}"))?;
        let reader = {
            let g = g.clone();
            thread::Builder::new()
                .name("grabber-read".into())
                .spawn(move || {
                    // A reader that panicked ends the grabber; the next snapshot starts a new one.
                    if crate::process::guarded("grabber-read", || read_frames(&g, stdout)).is_err() {
                        g.end("stream reader failed".into());
                    }
                    g.end("stream closed".into());
                })
                .map_err(|e| format!("cannot start reader thread: {e}"))?
        };
        let owner = Owner {
            g: g.clone(),
            map: self.map.clone(),
            shutdown: self.shutdown.clone(),
            cameras: self.cameras.clone(),
        };
        let (mine, map) = (g.clone(), self.map.clone());
        let spawned = thread::Builder::new().name("grabber".into()).spawn(move || {
            // An owner that panicked has already killed its ffmpeg (dropped while unwinding): forget the grabber
            // and wake its waiters, so the next snapshot starts a new one.
            if crate::process::guarded("grabber", || owner.run(process, reader)).is_err() {
                forget(&map, &mine);
                mine.end("stream reader owner failed".into());
                mine.release();
            }
        });
        // On failure the closure (and with it the process, killed on drop) is gone.
        spawned.map_err(|e| format!("cannot start owner thread: {e}"))?;
        log::info!("{label}: warm stream reader started (q:v {qscale}, {fps} fps)");
        Ok(())
    }

    /// Number of running grabbers.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.map.lock().len()
    }
}

/// A recording's hold on a camera's reader place (see [`Grabbers::claim`]); dropping it ends the fed grabber, so
/// live views and snapshots go back to a reader of their own. Drop it only once the recording's ffmpeg has exited:
/// the next reader opens the device at once.
pub struct Feed {
    g: Arc<Grabber>,
    map: Map,
}

impl Feed {
    /// Read the recording's JPEG output (`pipe:1`) on a `grabber-read` thread. The end of the pipe does not end the
    /// feed: the recorder does, once ffmpeg has exited and released the device. A reader that fails drops the pipe;
    /// the recording goes on (its JPEG output ignores a closed pipe) and only the live picture stops.
    pub fn read(&self, stdout: ChildStdout) -> Result<(), String> {
        let g = self.g.clone();
        thread::Builder::new()
            .name("grabber-read".into())
            .spawn(move || {
                if crate::process::guarded("grabber-read", || read_frames(&g, stdout)).is_err() {
                    log::warn!("grabber {}: reading the recording's frames failed", g.device);
                }
            })
            .map(drop)
            .map_err(|e| format!("cannot start reader thread: {e}"))
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        forget(&self.map, &self.g);
        self.g.end("recording stopped".into());
        log::info!("grabber {}: the recording no longer reads the camera", self.g.device);
    }
}

/// The live view's hold on a reader: frames go to its channel until it is dropped.
pub struct Tap(Arc<Grabber>);

impl Tap {
    /// The reader ended (ffmpeg exited, the camera went away, shutdown): attach again for a new one.
    pub fn ended(&self) -> bool {
        self.0.ended()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let mut live = self.0.live.lock();
        live.tx = None;
        live.detached_at = Some(Instant::now());
    }
}

/// Owns one grabber's ffmpeg and reader thread until the grabber ends.
struct Owner {
    g: Arc<Grabber>,
    map: Map,
    shutdown: Shutdown,
    cameras: Arc<dyn CameraLookup>,
}

impl Owner {
    fn run(self, mut process: Ffmpeg, reader: thread::JoinHandle<()>) {
        let started = Instant::now();
        let why = loop {
            if self.shutdown.sleep(TICK) {
                break "shutdown".to_string();
            }
            if self.g.stop.load(Ordering::SeqCst) {
                break "replaced".to_string();
            }
            if self.g.live.lock().idle() && self.g.last_request.lock().elapsed() >= IDLE {
                break "idle".to_string();
            }
            if let Some(st) = process.try_wait() {
                break format!("ffmpeg ended ({}) {}", super::process::describe(st), process.stderr_tail());
            }
            let last = self.g.slot.lock().frame.as_ref().map_or(started, |f| f.at);
            if last.elapsed() >= STALL {
                break format!("no frame for {}s", STALL.as_secs());
            }
            let connected = self.cameras.get(&self.g.device).is_ok_and(|c| c.status == CameraStatus::Connected);
            if !connected {
                break "camera disconnected".to_string();
            }
        };
        forget(&self.map, &self.g);
        self.g.end(why.trim().to_string());
        process.stop(Duration::from_millis(500), Duration::from_secs(2));
        drop(process);
        self.g.release();
        let _ = reader.join();
        log::info!("grabber {}: warm stream reader stopped: {}", self.g.device, why.trim());
    }
}

/// Whether ffmpeg `input` opens a V4L2 device, which streams for one process at a time.
fn opens_device(input: &[String]) -> bool {
    input.windows(2).any(|w| w[0] == "-f" && w[1] == "v4l2")
}

/// Remove `g` from the map unless a newer grabber already replaced it.
fn forget(map: &Map, g: &Arc<Grabber>) {
    let mut map = map.lock();
    if map.get(&g.device).is_some_and(|current| Arc::ptr_eq(current, g)) {
        map.remove(&g.device);
    }
}

/// Read ffmpeg's stdout until EOF (or a read error), publishing each complete JPEG.
fn read_frames(g: &Grabber, mut stdout: ChildStdout) {
    let mut splitter = Splitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stdout.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                splitter.push(&buf[..n]);
                // Only the newest of several frames in one read matters.
                if let Some(data) = std::iter::from_fn(|| splitter.next_frame()).last() {
                    g.publish(Frame { data: Arc::new(data), at: Instant::now() });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// Splits a byte stream of concatenated JPEG images (image2pipe) into complete images.
///
/// It walks the marker segments by their lengths and scans entropy-coded data only after SOS, where `FF 00`
/// (stuffing) and `FF D0`–`FF D7` (restart markers) are data, so an `FF D9` can only be the real end of image.
/// Bytes before an SOI, and a frame whose structure breaks, are discarded.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Parse position inside the frame that starts at `buf[0]`; 0 = no SOI found yet.
    pos: usize,
    /// `pos` is inside entropy-coded data.
    in_scan: bool,
}

impl Splitter {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete image, if the buffered bytes hold one.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.pos == 0 && !self.find_soi() {
                return None;
            }
            if self.pos > MAX_FRAME {
                self.resync();
                continue;
            }
            let step = if self.in_scan { self.scan_entropy() } else { self.scan_marker() };
            match step {
                Step::More => return None,
                Step::Continue => {}
                Step::Broken => self.resync(),
                Step::End(len) => {
                    let rest = self.buf.split_off(len);
                    let frame = std::mem::replace(&mut self.buf, rest);
                    self.pos = 0;
                    self.in_scan = false;
                    return Some(frame);
                }
            }
        }
    }

    /// Drop bytes up to the next SOI; true when one is at `buf[0]`.
    fn find_soi(&mut self) -> bool {
        match self.buf.windows(2).position(|w| w == [0xFF, 0xD8]) {
            Some(i) => {
                self.buf.drain(..i);
                self.pos = 2;
                self.in_scan = false;
                true
            }
            None => {
                // Keep a trailing 0xFF: it may be the first half of an SOI.
                let keep = usize::from(self.buf.last() == Some(&0xFF));
                let cut = self.buf.len() - keep;
                self.buf.drain(..cut);
                false
            }
        }
    }

    /// Abandon the current frame: look for the next SOI after its own.
    fn resync(&mut self) {
        self.buf.drain(..1);
        self.pos = 0;
        self.in_scan = false;
    }

    fn scan_marker(&mut self) -> Step {
        let b = &self.buf;
        let p = self.pos;
        if p + 2 > b.len() {
            return Step::More;
        }
        if b[p] != 0xFF {
            return Step::Broken;
        }
        match b[p + 1] {
            0xFF => self.pos += 1,
            0xD9 => return Step::End(p + 2),
            0xD8 => {
                // A new image before this one ended: start over from it.
                self.buf.drain(..p);
                self.pos = 2;
            }
            0x01 | 0xD0..=0xD7 => self.pos += 2,
            marker => {
                if p + 4 > b.len() {
                    return Step::More;
                }
                let len = usize::from(u16::from_be_bytes([b[p + 2], b[p + 3]]));
                if len < 2 {
                    return Step::Broken;
                }
                self.pos = p + 2 + len;
                self.in_scan = marker == 0xDA;
            }
        }
        Step::Continue
    }

    fn scan_entropy(&mut self) -> Step {
        let b = &self.buf;
        let mut i = self.pos;
        while i < b.len() {
            if b[i] != 0xFF {
                i += 1;
                continue;
            }
            let Some(&next) = b.get(i + 1) else {
                break;
            };
            match next {
                0x00 | 0xD0..=0xD7 => i += 2,
                0xFF => i += 1,
                _ => {
                    // A real marker ends the scan: EOI, or another segment (progressive/multi-scan).
                    self.pos = i;
                    self.in_scan = false;
                    return Step::Continue;
                }
            }
        }
        self.pos = i;
        Step::More
    }
}

enum Step {
    More,
    Continue,
    Broken,
    End(usize),
}

#[cfg(test)]
mod tests;
