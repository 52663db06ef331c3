//! The live MJPEG view: `GET /live/<camera>.mjpg` answers `multipart/x-mixed-replace` JPEG frames, on the WebSocket
//! port (the web console's fallback when there is no WebRTC) and on the health port, for any `<img>` tag, VLC or
//! home-automation dashboard.
//!
//! - **One reader per camera**: the camera's warm frame grabber (`grabber`), attached at the live rate (the
//!   camera's frame rate, at most `server.live_max_fps`). Never one encoder per viewer. Its input is the camera's
//!   MediaMTX stream when MediaMTX is enabled and reachable, else the camera itself (V4L2 device, the paced lavfi
//!   source of a virtual camera, an IP camera's URL). While a direct recording reads a V4L2 camera, its ffmpeg is
//!   that reader (the device opens once; see `grabber`): the thread re-attaches when the reader changes, and its
//!   viewers stay connected.
//! - **One `live` thread per watched camera** owns the viewers' sockets. The HTTP server writes the response head and
//!   hands the socket over (`Body::Handoff`), so no HTTP worker is held by a stream. Sockets are non-blocking; each
//!   frame is made into one multipart part shared by every viewer. A viewer still sending an older part skips
//!   frames (only the newest waiting part is kept); one that makes no progress for [`VIEWER_STALL`] is dropped. The
//!   reader offers frames to the thread without waiting (a full channel drops them), so nothing a viewer does can
//!   slow the reader or the other viewers.
//! - At most `server.live_max_viewers` viewers per camera (one more gets 503). When the last viewer leaves, the
//!   thread detaches from the reader, which then stops after the grabber's idle rules (a couple of seconds, or the
//!   snapshot idle window if snapshots used it), and the thread ends [`THREAD_LINGER`] later.
//! - Credentials as for downloads: `Authorization: Bearer <jwt>`, `X-API-Key`, or a signed URL from `get_live_url`
//!   (HMAC over the path and expiry, so a URL for one camera never opens another). They are checked when the stream
//!   opens; a stream that outlives its URL's expiry keeps going (the page asks for a fresh URL to reconnect).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::grabber::{Frame, Tap};
use super::segments::FrameOutput;
use super::{segments, snapshot, Media, Shared};
use crate::auth::signed_url::UrlSigner;
use crate::auth::Authenticator;
use crate::camera::{Camera, CameraStatus};
use crate::error::Result;
use crate::http::{Body, Request, Response};
use crate::process::Shutdown;
use crate::rpc::params::DeviceParams;
use crate::rpc::{method, Call, Method};
use crate::util::timefmt;

/// Route prefix of the live views (`/live/<camera>.mjpg`, `<camera>` as in `cameraN` / `virtualN`).
pub const PREFIX: &str = "/live/";
const SUFFIX: &str = ".mjpg";
const BOUNDARY: &str = "frame";
/// A viewer whose socket takes nothing for this long is dropped.
pub const VIEWER_STALL: Duration = Duration::from_secs(10);
/// A camera's thread ends this long after its last viewer left (a viewer that comes back reuses it).
const THREAD_LINGER: Duration = Duration::from_secs(5);
/// Wait between attempts to (re)start the reader.
const RETRY: Duration = Duration::from_secs(1);
/// Failed reader starts in a row (including readers that ended before their first frame) after which the viewers
/// are closed (their pages retry with a fresh URL).
const MAX_START_FAILURES: u32 = 5;
/// Turn of the thread when nothing happens; closed sockets are noticed within this.
const TICK: Duration = Duration::from_millis(200);
/// Turn while some viewer has bytes the socket did not take yet.
const FLUSH_TICK: Duration = Duration::from_millis(5);
/// Frames the reader may queue for the thread before it drops them.
const FRAME_QUEUE: usize = 2;

pub static METHODS: &[Method<LiveView>] = &[method!("get_live_url", Viewer, Inline, get_live_url)];

/// `get_live_url {device}` → `{device, url, expires_at}`: a signed, relative URL of the camera's MJPEG view.
fn get_live_url(live: &LiveView, p: DeviceParams, _: &Call) -> Result<Value> {
    let camera = live.inner.shared.cameras.get(&p.device)?;
    let path = format!("{PREFIX}{}{SUFFIX}", camera.path_name);
    let url = format!("{PREFIX}{}{SUFFIX}", encode_segment(&camera.path_name));
    let (signed, expires) = live.inner.urls.sign(&url, &path, crate::auth::jwt::now_secs());
    let expires_at = timefmt::rfc3339(UNIX_EPOCH + Duration::from_secs(expires.max(0) as u64));
    Ok(json!({ "device": camera.device, "url": signed, "expires_at": expires_at }))
}

/// Percent-encode one path segment (camera path names are plain, but an IP camera's name is chosen by a user).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The live views of every camera. Cheap to clone.
#[derive(Clone)]
pub struct LiveView {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    urls: UrlSigner,
    shutdown: Shutdown,
    max_viewers: usize,
    /// Cameras with a live thread, by device id.
    streams: Mutex<HashMap<String, Stream>>,
}

/// A camera's live thread as the request side sees it.
struct Stream {
    viewers: Sender<Viewer>,
    /// Admitted viewers (handed over, or about to be). The thread ends only when this is zero, checked under the
    /// map's lock, so a viewer admitted here always finds the thread alive.
    count: Arc<AtomicUsize>,
}

/// One admitted viewer's place in the count; given back when dropped (also when the hand-off never happens).
struct Seat(Arc<AtomicUsize>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LiveView {
    /// `urls` signs `get_live_url`'s URLs; `shutdown` ends the live threads.
    pub fn new(media: &Media, urls: UrlSigner, shutdown: Shutdown) -> LiveView {
        let server = &media.shared.config.server;
        LiveView {
            inner: Arc::new(Inner {
                shared: media.shared.clone(),
                urls,
                shutdown,
                max_viewers: server.live_max_viewers.max(1),
                streams: Mutex::default(),
            }),
        }
    }

    /// Viewers of `device` right now (admitted and not yet gone).
    pub fn viewers(&self, device: &str) -> usize {
        self.inner.streams.lock().get(device).map_or(0, |s| s.count.load(Ordering::SeqCst))
    }

    /// Answer `GET`/`HEAD /live/<camera>.mjpg`, checking credentials with `auth`.
    pub fn respond(&self, auth: &Authenticator, req: &Request) -> Response {
        if req.method != "GET" && req.method != "HEAD" {
            return Response::text(405, "Method not allowed\n").with_header("Allow", "GET, HEAD");
        }
        let Some(id) = req.path.strip_prefix(PREFIX).and_then(|r| r.strip_suffix(SUFFIX)) else {
            return Response::text(404, "Not found\n");
        };
        if crate::files::download::request_identity(auth, req).is_none() {
            return Response::text(401, "Unauthorized\n").with_header("WWW-Authenticate", "Bearer");
        }
        let Ok(camera) = self.inner.shared.cameras.get(id) else {
            return Response::text(404, "Camera not found\n");
        };
        if camera.status != CameraStatus::Connected {
            return Response::text(503, &format!("Camera {} is {}\n", camera.path_name, camera.status.as_str()));
        }
        let head = Response {
            status: 200,
            headers: vec![
                ("Content-Type".into(), format!("multipart/x-mixed-replace; boundary={BOUNDARY}")),
                ("X-Content-Type-Options".into(), "nosniff".into()),
            ],
            body: Body::Bytes(Vec::new()),
        };
        if req.method == "HEAD" {
            return head;
        }
        let Some((seat, tx)) = self.admit(&camera) else {
            let limit = self.inner.max_viewers;
            return Response::text(503, &format!("Too many live viewers of {} (limit {limit})\n", camera.path_name))
                .with_header("Retry-After", "5");
        };
        let handoff = move |stream: TcpStream| {
            // The thread is alive while the seat is counted; if it is not, dropping the viewer closes the socket.
            let _ = tx.send(Viewer::new(stream, seat));
        };
        Response { body: Body::Handoff(Box::new(handoff)), ..head }
    }

    /// A seat among `camera`'s viewers and the channel to its thread (started here when needed); `None` when full.
    fn admit(&self, camera: &Camera) -> Option<(Seat, Sender<Viewer>)> {
        let mut streams = self.inner.streams.lock();
        if let Some(s) = streams.get(&camera.device) {
            if s.count.load(Ordering::SeqCst) >= self.inner.max_viewers {
                return None;
            }
            s.count.fetch_add(1, Ordering::SeqCst);
            return Some((Seat(s.count.clone()), s.viewers.clone()));
        }
        let (tx, rx) = unbounded();
        let count = Arc::new(AtomicUsize::new(1));
        let (frames_tx, frames_rx) = bounded(FRAME_QUEUE);
        let thread = CameraThread {
            inner: self.inner.clone(),
            device: camera.device.clone(),
            path_name: camera.path_name.clone(),
            rx,
            count: count.clone(),
            frames_tx,
            frames_rx,
            viewers: Vec::new(),
            tap: None,
            got_frame: false,
            last_start: None,
            failures: 0,
            empty_since: Instant::now(),
            last_check: Instant::now(),
        };
        let spawned = thread::Builder::new().name("live".into()).spawn(move || {
            let (inner, device, count) = (thread.inner.clone(), thread.device.clone(), thread.count.clone());
            // A thread that panicked dropped its viewers (their sockets close, pages retry); forget it.
            if crate::process::guarded("live", || thread.run()).is_err() {
                forget(&inner, &device, &count);
            }
        });
        if let Err(e) = spawned {
            log::warn!("live {}: cannot start its thread: {e}", camera.path_name);
            return None;
        }
        streams.insert(camera.device.clone(), Stream { viewers: tx.clone(), count: count.clone() });
        Some((Seat(count), tx))
    }
}

/// Remove `device`'s entry if it is still the one counted by `count`.
fn forget(inner: &Inner, device: &str, count: &Arc<AtomicUsize>) {
    let mut streams = inner.streams.lock();
    if streams.get(device).is_some_and(|s| Arc::ptr_eq(&s.count, count)) {
        streams.remove(device);
    }
}

/// One camera's live thread: its viewers and its hold on the reader.
struct CameraThread {
    inner: Arc<Inner>,
    device: String,
    path_name: String,
    rx: Receiver<Viewer>,
    count: Arc<AtomicUsize>,
    frames_tx: Sender<Frame>,
    frames_rx: Receiver<Frame>,
    viewers: Vec<Viewer>,
    tap: Option<Tap>,
    /// A frame arrived since the reader was attached.
    got_frame: bool,
    last_start: Option<Instant>,
    failures: u32,
    empty_since: Instant,
    last_check: Instant,
}

impl CameraThread {
    fn run(mut self) {
        let shutdown = self.inner.shutdown.clone();
        loop {
            if shutdown.is_set() {
                break;
            }
            self.keep_reader();
            let wait = if self.viewers.iter().any(Viewer::behind) { FLUSH_TICK } else { TICK };
            crossbeam_channel::select! {
                recv(self.rx) -> v => if let Ok(v) = v { self.join(v) },
                recv(self.frames_rx) -> f => if let Ok(f) = f { self.broadcast(&f) },
                recv(shutdown.channel()) -> _ => break,
                default(wait) => {}
            }
            self.service();
            if !self.viewers.is_empty() {
                self.empty_since = Instant::now();
                continue;
            }
            // Detach: the reader stops after the grabber's idle rules unless a viewer comes back.
            self.tap = None;
            if self.empty_since.elapsed() >= THREAD_LINGER && self.try_end() {
                return;
            }
        }
        forget(&self.inner, &self.device, &self.count);
        log::debug!("live {}: stopped at shutdown", self.path_name);
    }

    /// End the thread if no viewer is admitted (under the map's lock, so none can be admitted meanwhile).
    fn try_end(&self) -> bool {
        let mut streams = self.inner.streams.lock();
        if self.count.load(Ordering::SeqCst) > 0 {
            return false;
        }
        if streams.get(&self.device).is_some_and(|s| Arc::ptr_eq(&s.count, &self.count)) {
            streams.remove(&self.device);
        }
        log::debug!("live {}: no viewers, thread ends", self.path_name);
        true
    }

    fn join(&mut self, viewer: Viewer) {
        self.viewers.push(viewer);
        log::info!("live {}: viewer joined ({} watching)", self.path_name, self.viewers.len());
    }

    /// Keep a running reader attached while there are viewers.
    fn keep_reader(&mut self) {
        if self.tap.as_ref().is_some_and(Tap::ended) {
            self.tap = None;
            if !self.got_frame {
                self.failures += 1;
                log::warn!(
                    "live {}: the reader ended before its first frame ({} in a row)",
                    self.path_name,
                    self.failures
                );
            }
        }
        if self.failures >= MAX_START_FAILURES {
            log::warn!("live {}: no picture; closing {} viewer(s)", self.path_name, self.viewers.len());
            self.viewers.clear();
            self.failures = 0;
        }
        if self.viewers.is_empty() || self.tap.is_some() {
            return;
        }
        if self.last_start.is_some_and(|t| t.elapsed() < RETRY) {
            return;
        }
        self.last_start = Some(Instant::now());
        let shared = &self.inner.shared;
        let camera = match shared.cameras.get(&self.device) {
            Ok(c) if c.status == CameraStatus::Connected => c,
            _ => {
                log::info!("live {}: camera not connected, closing {} viewer(s)", self.path_name, self.viewers.len());
                self.viewers.clear();
                return;
            }
        };
        let FrameOutput { fps, qscale } = frame_output(shared, &camera);
        let attached = live_input(shared, &camera)
            .and_then(|input| shared.grabbers.attach_live(&self.device, &input, qscale, fps, self.frames_tx.clone()));
        match attached {
            Ok(tap) => {
                self.tap = Some(tap);
                self.got_frame = false;
            }
            Err(e) => {
                self.failures += 1;
                log::warn!("live {}: cannot start the reader ({} in a row): {e}", self.path_name, self.failures);
            }
        }
    }

    /// Offer one frame to every viewer (one shared multipart part).
    fn broadcast(&mut self, frame: &Frame) {
        self.got_frame = true;
        self.failures = 0;
        if self.viewers.is_empty() {
            return;
        }
        let mut part = Vec::with_capacity(frame.data.len() + 96);
        let head = format!("--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", frame.data.len());
        part.extend_from_slice(head.as_bytes());
        part.extend_from_slice(&frame.data);
        part.extend_from_slice(b"\r\n");
        let part = Arc::new(part);
        for v in &mut self.viewers {
            v.offer(&part);
        }
    }

    /// Write what each socket takes; drop viewers that left or stalled.
    fn service(&mut self) {
        let check = self.last_check.elapsed() >= TICK;
        if check {
            self.last_check = Instant::now();
        }
        let before = self.viewers.len();
        self.viewers.retain_mut(|v| v.pump() && !(check && (v.closed() || v.stalled())));
        if self.viewers.len() != before {
            log::info!("live {}: viewer left ({} watching)", self.path_name, self.viewers.len());
        }
    }
}

/// The rate and quality of the live view's frames: the camera's rate, at most `server.live_max_fps`; the default
/// snapshot quality. A recording that reads the camera for the live view makes its frames with these too.
pub(super) fn frame_output(shared: &Shared, camera: &Camera) -> FrameOutput {
    FrameOutput {
        fps: camera_fps(camera).clamp(1, shared.config.server.live_max_fps.max(1)),
        qscale: snapshot::qscale(shared.config.snapshots.quality),
    }
}

/// The camera's frame rate (a virtual camera's configured one); 0 when unknown.
fn camera_fps(camera: &Camera) -> u32 {
    match (&camera.virtual_source, camera.fps) {
        (Some(v), _) => v.fps,
        (None, 0) => u32::MAX,
        (None, fps) => fps,
    }
}

/// ffmpeg input options for the live reader: the MediaMTX stream when MediaMTX is enabled and reachable (the camera
/// device is its publisher's), else the camera itself.
fn live_input(shared: &Shared, camera: &Camera) -> std::result::Result<Vec<String>, String> {
    let mtx = &shared.mediamtx;
    if mtx.enabled() && mtx.available() {
        mtx.ensure_path(&camera.path_name).map_err(|e| format!("MediaMTX path {}: {e}", camera.path_name))?;
        let url = segments::rtsp_url(&shared.config, &camera.path_name);
        return Ok(["-rtsp_transport", "tcp", "-fflags", "nobuffer", "-flags", "low_delay", "-i", &url]
            .map(String::from)
            .to_vec());
    }
    // The V4L2 device, an IP camera's URL, or a virtual camera's lavfi source (which keeps `-re`: the stream is
    // paced at the camera's rate).
    Ok(segments::direct_input(&shared.config, camera))
}

/// One viewer's socket and the parts it is sending.
struct Viewer {
    stream: TcpStream,
    _seat: Seat,
    /// The part being written and how much of it went out.
    sending: Option<(Arc<Vec<u8>>, usize)>,
    /// The newest part that arrived meanwhile (older ones were skipped).
    waiting: Option<Arc<Vec<u8>>>,
    last_progress: Instant,
}

impl Viewer {
    fn new(stream: TcpStream, seat: Seat) -> Viewer {
        let _ = stream.set_nonblocking(true);
        let _ = stream.set_nodelay(true);
        Viewer { stream, _seat: seat, sending: None, waiting: None, last_progress: Instant::now() }
    }

    fn behind(&self) -> bool {
        self.sending.is_some()
    }

    fn offer(&mut self, part: &Arc<Vec<u8>>) {
        if self.sending.is_none() {
            self.sending = Some((part.clone(), 0));
            self.last_progress = Instant::now();
        } else {
            self.waiting = Some(part.clone());
        }
    }

    /// Write what the socket takes now; false when the viewer is gone.
    fn pump(&mut self) -> bool {
        while let Some((part, sent)) = &mut self.sending {
            match self.stream.write(&part[*sent..]) {
                Ok(0) => return false,
                Ok(n) => {
                    *sent += n;
                    self.last_progress = Instant::now();
                    if *sent == part.len() {
                        self.sending = self.waiting.take().map(|p| (p, 0));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// The client closed its side (a viewer sends nothing after its request).
    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 256];
        match self.stream.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted),
        }
    }

    fn stalled(&self) -> bool {
        self.sending.is_some() && self.last_progress.elapsed() >= VIEWER_STALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_segment("virtual0"), "virtual0");
        assert_eq!(encode_segment("front door/1"), "front%20door%2F1");
    }

    /// A viewer whose socket is full skips to the newest part, and one that reads again gets it whole.
    #[test]
    fn a_slow_viewer_skips_frames_and_never_blocks() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let count = Arc::new(AtomicUsize::new(1));
        let mut v = Viewer::new(server, Seat(count.clone()));
        const PART: usize = 4 << 20;
        let big = |tag: u8| Arc::new(vec![tag; PART]);
        // Offer parts until the socket refuses more; pump never blocks.
        let started = Instant::now();
        for tag in 0..8u8 {
            v.offer(&big(tag));
            assert!(v.pump());
        }
        assert!(started.elapsed() < Duration::from_secs(2), "pump never waits on a full socket");
        assert!(v.behind(), "32 MiB did not fit into the socket buffers");
        assert_eq!(v.waiting.as_ref().map(|p| p[0]), Some(7), "only the newest waiting part is kept");
        // The reader drains: the part in flight finishes, then the newest one follows.
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while v.behind() {
            v.pump();
            if let Ok(n) = client.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        client.set_nonblocking(true).unwrap();
        loop {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got.len() % PART, 0);
        assert_eq!(got.last(), Some(&7));
        assert!(got.len() < 8 * PART, "skipped parts were never sent");
        assert!(!v.closed());
        drop(client);
        let end = Instant::now() + Duration::from_secs(5);
        while !v.closed() {
            assert!(Instant::now() < end, "a closed client is noticed");
            thread::sleep(Duration::from_millis(10));
        }
        drop(v);
        assert_eq!(count.load(Ordering::SeqCst), 0, "the seat is given back");
    }
}
