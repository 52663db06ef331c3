//! The HTTP server of the health port, which also answers the plain GETs the WebSocket port forwards (downloads, the
//! web console, live views). Slow and idle clients cost a file descriptor, never a thread:
//!
//! * one epoll thread (`http-io`) owns every HTTP connection: it accepts on the health port, reads request heads
//!   without blocking under a deadline for the whole head, and writes responses without blocking (a download is
//!   read from its file a chunk at a time, as the socket takes it) under a deadline for progress;
//! * a small pool (`http-N`) runs the route handlers on complete requests only, so a handler never waits for a
//!   client.
//!
//! Every response closes its connection (`Connection: close`), so no idle keep-alive connection waits on the
//! server. The limits are named constants below and listed in docs/operations.md ("Security and robustness").

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown as Both, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};

use super::accept::Acceptor;
use super::{parse_head, read_available, Body, Handoff, ParseError, Request, Response, MAX_HEAD_BYTES};
use crate::process::status::{Components, State};
use crate::process::{guarded, Shutdown, Supervisor};
use crate::sys::poll::{Epoll, EventFd, Events, HANGUP, WRITABLE};

/// Worker threads running route handlers (health checks are tiny; a download handler only opens the file).
pub const HTTP_WORKERS: usize = 4;
/// Requests waiting for a worker; beyond this a client gets 503 at once.
pub const HTTP_QUEUE: usize = 64;
/// Time a client has to send its whole request head, counted from the connection (not per read).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A response whose client takes no byte for this long is abandoned (the connection is closed).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Open HTTP connections (both ports together). At the limit, the connection that has been waiting longest for
/// its request head is closed to make room, so a flood of idle sockets cannot lock out a health probe.
pub const MAX_HTTP_CONNECTIONS: usize = 1024;
/// Bytes of a file read per step of a download.
const CHUNK: usize = 64 * 1024;
/// Housekeeping period (deadlines).
const TICK: Duration = Duration::from_millis(250);
/// Epoll tokens of the listener and of the inbox eventfd; connections count up from 0.
const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;

/// What answers a parsed request: a route table.
pub type Router = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Messages to the `http-io` thread.
enum Inbound {
    /// A connection whose request head another listener read (the WebSocket port); the stream is non-blocking.
    Parsed { req: Request, stream: TcpStream, router: Router },
    /// A worker's response to the request of connection `token`.
    Answer { token: u64, resp: Response },
}

/// Work for the `http-N` pool.
enum Task {
    Route {
        token: u64,
        req: Request,
        router: Router,
    },
    /// A response head was sent: give the socket to its new owner.
    Handoff {
        stream: TcpStream,
        handoff: Handoff,
    },
}

/// How other threads reach the HTTP server: hand it a parsed request with its socket.
#[derive(Clone)]
pub struct HttpServer {
    tx: Sender<Inbound>,
    wake: Arc<EventFd>,
    /// Routes for requests submitted through this handle.
    router: Router,
}

impl HttpServer {
    /// Start the `http-io` thread on `listener` (the health port, answered by `router`) and the worker pool.
    pub fn start(
        listener: TcpListener,
        router: Router,
        components: Components,
        supervisor: &Supervisor,
    ) -> std::io::Result<HttpServer> {
        let (task_tx, task_rx) = bounded::<Task>(HTTP_QUEUE);
        let (tx, rx) = unbounded::<Inbound>();
        let wake = Arc::new(EventFd::new()?);
        let shutdown = supervisor.shutdown().clone();
        for i in 0..HTTP_WORKERS {
            let (rx, tx, wake, shutdown) = (task_rx.clone(), tx.clone(), wake.clone(), shutdown.clone());
            supervisor.spawn(&format!("http-{i}"), move || {
                run_tasks(&rx, &tx, &wake, &shutdown);
                Ok(())
            })?;
        }
        let epoll = Epoll::new()?;
        epoll.add(wake.raw(), WAKE)?;
        shutdown.wake_on_trigger(wake.clone());
        let what = "health port";
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let acceptor = Acceptor::new(listener, what)?;
        acceptor.register(&epoll, LISTENER)?;
        let engine = Engine {
            epoll,
            wake: wake.clone(),
            rx,
            acceptor,
            router: router.clone(),
            tasks: task_tx,
            conns: HashMap::new(),
            next_token: 0,
            shutdown,
        };
        components.set("health_server", State::Running, format!("listening on {addr}"));
        supervisor.spawn("http-io", move || {
            let r = engine.run();
            components.set("health_server", State::Stopped, "stopped");
            r.map_err(|e| e.to_string())
        })?;
        Ok(HttpServer { tx, wake, router })
    }

    /// A handle whose submitted requests are answered by `router` instead (the WebSocket port serves the web
    /// console, which the health port does not).
    pub fn with_router(&self, router: Router) -> HttpServer {
        HttpServer { tx: self.tx.clone(), wake: self.wake.clone(), router }
    }

    /// A request whose head the WebSocket port already read; `stream` is non-blocking and no longer watched by
    /// its epoll set.
    pub fn submit_parsed(&self, req: Request, stream: TcpStream) {
        if self.tx.send(Inbound::Parsed { req, stream, router: self.router.clone() }).is_ok() {
            self.wake.notify();
        }
    }
}

fn run_tasks(rx: &Receiver<Task>, tx: &Sender<Inbound>, wake: &EventFd, shutdown: &Shutdown) {
    loop {
        crossbeam_channel::select! {
            recv(rx) -> task => match task {
                Ok(Task::Route { token, req, router }) => {
                    let resp = guarded(&format!("HTTP {} {}", req.method, req.path), || router(&req))
                        .unwrap_or_else(|_| Response::text(500, "Internal Server Error\n"));
                    if tx.send(Inbound::Answer { token, resp }).is_ok() {
                        wake.notify();
                    }
                }
                Ok(Task::Handoff { stream, handoff }) => {
                    let _ = guarded("HTTP hand-off", || handoff(stream));
                }
                Err(_) => return,
            },
            recv(shutdown.channel()) -> _ => return,
        }
    }
}

/// One HTTP connection on the `http-io` thread.
struct Conn {
    stream: TcpStream,
    opened: Instant,
    /// A `HEAD` request: the response goes without its body.
    head_only: bool,
    state: Phase,
}

enum Phase {
    /// Reading the request head.
    Head { buf: Vec<u8> },
    /// A worker is running the route handler.
    Routing,
    /// Writing the response: `out[pos..]`, then `remaining` bytes of `file`, then the hand-off if any.
    Sending { out: Vec<u8>, pos: usize, file: Option<(File, u64)>, handoff: Option<Handoff>, progress: Instant },
}

struct Engine {
    epoll: Epoll,
    wake: Arc<EventFd>,
    rx: Receiver<Inbound>,
    acceptor: Acceptor,
    router: Router,
    tasks: Sender<Task>,
    conns: HashMap<u64, Conn>,
    next_token: u64,
    shutdown: Shutdown,
}

impl Engine {
    fn run(mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(256);
        let mut next_tick = Instant::now() + TICK;
        self.accept_ready();
        while !self.shutdown.is_set() {
            let now = Instant::now();
            let mut timeout = next_tick.saturating_duration_since(now);
            if let Some(t) = self.acceptor.timeout(now) {
                timeout = timeout.min(t);
            }
            let n = self.epoll.wait(&mut events, Some(timeout))?;
            for i in 0..n {
                let (token, bits) = events.get(i);
                match token {
                    WAKE => {
                        self.wake.drain();
                        self.drain_inbox();
                    }
                    LISTENER => self.accept_ready(),
                    _ => self.on_io(token, bits),
                }
            }
            let now = Instant::now();
            if self.acceptor.retry_due(now) {
                self.accept_ready();
            }
            if now >= next_tick {
                self.housekeeping(now);
                next_tick = now + TICK;
            }
        }
        Ok(())
    }

    fn accept_ready(&mut self) {
        let mut accepted = Vec::new();
        self.acceptor.accept_ready(|s| accepted.push(s));
        for stream in accepted {
            if let Some(token) = self.insert(stream, Phase::Head { buf: Vec::new() }) {
                // Data may already be waiting (edge-triggered: read now rather than wait for a new edge).
                self.read_head(token);
            }
        }
    }

    /// Watch a new connection, making room at the connection limit. `None` when it was refused.
    fn insert(&mut self, stream: TcpStream, state: Phase) -> Option<u64> {
        if self.conns.len() >= MAX_HTTP_CONNECTIONS {
            let oldest = self
                .conns
                .iter()
                .filter(|(_, c)| matches!(c.state, Phase::Head { .. }))
                .min_by_key(|(_, c)| c.opened)
                .map(|(t, _)| *t);
            match oldest {
                Some(t) => {
                    log::debug!(
                        "HTTP connection limit ({MAX_HTTP_CONNECTIONS}): closing the oldest waiting for its head"
                    );
                    self.close(t);
                }
                None => {
                    log::warn!("HTTP connection limit ({MAX_HTTP_CONNECTIONS}) reached: refusing a connection");
                    return None;
                }
            }
        }
        let token = self.next_token;
        self.next_token += 1;
        if let Err(e) = self.epoll.add(stream.as_raw_fd(), token) {
            log::warn!("cannot watch an HTTP connection: {e}");
            return None;
        }
        self.conns.insert(token, Conn { stream, opened: Instant::now(), head_only: false, state });
        Some(token)
    }

    fn drain_inbox(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Inbound::Parsed { req, stream, router } => {
                    if let Some(token) = self.insert(stream, Phase::Routing) {
                        self.dispatch(token, req, router);
                    }
                }
                Inbound::Answer { token, resp } => self.start_send(token, resp),
            }
        }
    }

    fn on_io(&mut self, token: u64, bits: u32) {
        let Some(conn) = self.conns.get(&token) else { return };
        match conn.state {
            Phase::Head { .. } => self.read_head(token),
            Phase::Routing => {}
            Phase::Sending { .. } if bits & (WRITABLE | HANGUP) != 0 => self.write_some(token),
            Phase::Sending { .. } => {}
        }
    }

    fn read_head(&mut self, token: u64) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let Phase::Head { buf } = &mut conn.state else { return };
        // The client may shut its write side right after the head (HTTP/1.0 tools do): still answer it.
        let Ok(eof) = read_available(&mut conn.stream, buf, MAX_HEAD_BYTES) else { return self.close(token) };
        match parse_head(buf) {
            Err(ParseError::Incomplete) if eof => self.close(token),
            Err(ParseError::Incomplete) => {}
            Err(ParseError::Bad(why)) => self.start_send(token, Response::text(400, why)),
            Ok((req, _)) => {
                conn.state = Phase::Routing;
                let router = self.router.clone();
                self.dispatch(token, req, router);
            }
        }
    }

    /// Hand a complete request to the workers (or answer at once what needs no handler).
    fn dispatch(&mut self, token: u64, req: Request, router: Router) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        conn.head_only = req.method == "HEAD";
        if req.method != "GET" && req.method != "HEAD" {
            let resp = Response::text(405, "Method Not Allowed\n").with_header("Allow", "GET, HEAD");
            return self.start_send(token, resp);
        }
        match self.tasks.try_send(Task::Route { token, req, router }) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                log::warn!("HTTP workers busy ({HTTP_QUEUE} requests waiting): answering 503");
                self.start_send(token, Response::text(503, "Server busy\n"));
            }
        }
    }

    fn start_send(&mut self, token: u64, resp: Response) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let mut out = resp.head();
        let (mut file, mut handoff) = (None, None);
        if !conn.head_only {
            match resp.body {
                Body::Bytes(b) => out.extend_from_slice(&b),
                Body::File { file: mut f, offset, len } => match f.seek(SeekFrom::Start(offset)) {
                    Ok(_) => file = Some((f, len)),
                    Err(e) => {
                        log::warn!("download: cannot seek: {e}");
                        return self.close(token);
                    }
                },
                Body::Handoff(h) => handoff = Some(h),
            }
        }
        conn.state = Phase::Sending { out, pos: 0, file, handoff, progress: Instant::now() };
        self.write_some(token);
    }

    /// Write as much as the socket takes; finish the connection when everything is sent.
    fn write_some(&mut self, token: u64) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let Phase::Sending { out, pos, file, progress, .. } = &mut conn.state else { return };
        loop {
            if *pos < out.len() {
                match conn.stream.write(&out[*pos..]) {
                    Ok(0) => return self.close(token),
                    Ok(n) => {
                        *pos += n;
                        *progress = Instant::now();
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::debug!("HTTP client went away: {e}");
                        return self.close(token);
                    }
                }
                continue;
            }
            match file {
                Some((f, remaining)) if *remaining > 0 => {
                    out.resize(CHUNK.min(*remaining as usize), 0);
                    match f.read(out) {
                        Ok(0) | Err(_) => {
                            log::warn!("download: the file shrank or failed while being sent");
                            return self.close(token);
                        }
                        Ok(n) => {
                            out.truncate(n);
                            *pos = 0;
                            *remaining -= n as u64;
                        }
                    }
                }
                _ => return self.finish(token),
            }
        }
    }

    /// The response is out: hand the socket over, or close it.
    fn finish(&mut self, token: u64) {
        let Some(conn) = self.conns.remove(&token) else { return };
        self.epoll.delete(conn.stream.as_raw_fd());
        let Phase::Sending { handoff, .. } = conn.state else { return };
        match handoff {
            Some(handoff) => {
                if conn.stream.set_nonblocking(false).is_err() {
                    return;
                }
                if let Err(TrySendError::Full(task) | TrySendError::Disconnected(task)) =
                    self.tasks.try_send(Task::Handoff { stream: conn.stream, handoff })
                {
                    // The pool is saturated: a hand-off only passes the socket on, so run it here.
                    if let Task::Handoff { stream, handoff } = task {
                        let _ = guarded("HTTP hand-off", || handoff(stream));
                    }
                }
            }
            None => close_gracefully(conn.stream),
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        let mut late_heads = Vec::new();
        let mut stalled = Vec::new();
        for (t, c) in &self.conns {
            match &c.state {
                Phase::Head { .. } if now.duration_since(c.opened) > HEAD_TIMEOUT => late_heads.push(*t),
                Phase::Sending { progress, .. } if now.duration_since(*progress) > SEND_TIMEOUT => stalled.push(*t),
                _ => {}
            }
        }
        for t in late_heads {
            if let Some(mut conn) = self.conns.remove(&t) {
                self.epoll.delete(conn.stream.as_raw_fd());
                // Best effort, never blocking: a short answer fits in a fresh socket's buffer.
                let _ = Response::text(408, "Request head not received in time\n").write_to(&mut conn.stream, false);
                close_gracefully(conn.stream);
            }
        }
        for t in stalled {
            log::debug!("HTTP client took no data for {} s: closing", SEND_TIMEOUT.as_secs());
            self.close(t);
        }
    }

    fn close(&mut self, token: u64) {
        if let Some(conn) = self.conns.remove(&token) {
            self.epoll.delete(conn.stream.as_raw_fd());
        }
    }
}

/// Close after a response: end our side, discard what the client sent meanwhile (closing with unread input would
/// reset the connection and could destroy the response in flight), then close.
fn close_gracefully(mut stream: TcpStream) {
    let _ = stream.shutdown(Both::Write);
    let mut sink = [0u8; 1024];
    for _ in 0..16 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: std::net::SocketAddr, head: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn answers_and_hands_sockets_over() {
        let supervisor = Supervisor::new(Shutdown::new());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let router: Router = Arc::new(|req: &Request| match req.path.as_str() {
            "/live" => Response {
                status: 200,
                headers: vec![("Content-Type".into(), "text/plain".into())],
                body: Body::Handoff(Box::new(|mut s: TcpStream| {
                    std::thread::spawn(move || {
                        // Blocking mode: a write larger than the socket buffer must simply wait.
                        for _ in 0..64 {
                            s.write_all(&[b'x'; 16 * 1024]).unwrap();
                        }
                        s.write_all(b"end").unwrap();
                    });
                })),
            },
            p => Response::text(200, p),
        });
        let _server = HttpServer::start(listener, router, Components::default(), &supervisor).unwrap();
        let r = get(addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n/hello"), "{r}");
        assert!(r.contains("Content-Length: 6\r\n") && r.contains("Connection: close\r\n"), "{r}");
        let r = get(addr, "HEAD /hello HTTP/1.1\r\n\r\n");
        assert!(r.ends_with("\r\n\r\n"), "HEAD has no body: {r}");
        let r = get(addr, "POST /hello HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /half-closed HTTP/1.0\r\n\r\n").unwrap();
        s.shutdown(Both::Write).unwrap();
        let mut r = String::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.read_to_string(&mut r).unwrap();
        assert!(r.ends_with("\r\n\r\n/half-closed"), "a client that half-closed after its head is answered: {r}");
        let r = get(addr, "garbage\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
        let r = get(addr, "GET /live HTTP/1.1\r\n\r\n");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK") && !head.contains("Content-Length"), "{head}");
        assert_eq!(body.len(), 64 * 16 * 1024 + 3);
        assert!(body.ends_with("xend"));
        supervisor.shutdown().trigger();
    }
}
