//! A connection worker: an epoll loop over many non-blocking connections.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::conn::{Conn, Phase, Slab, WriteFailure};
use super::fanout;
use super::handshake::{self, Route};
use super::{Context, Job, JobSender};
use crate::auth::{jwt, Session};
use crate::http::server::{HttpServer, HEAD_TIMEOUT};
use crate::http::{Response, MAX_HEAD_BYTES};
use crate::process::heartbeat::Heartbeat;
use crate::process::Shutdown;
use crate::rpc::dispatch::Outcome;
use crate::rpc::notify::{Notification, Subscriber};
use crate::sys::poll::{Epoll, EventFd, Events, HANGUP, READABLE, WRITABLE};

/// Token of the worker's own eventfd in its epoll set.
const WAKE: u64 = u64::MAX;
/// Housekeeping period: pings, handshake and delivery timeouts.
const TICK: Duration = Duration::from_millis(500);
/// After we send a close frame, the peer has this long to answer it (and, after an oversized message, to stop
/// sending: its input is drained meanwhile).
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Replies are collected up to this size before a write (one syscall per batch of pipelined requests).
const WRITE_BATCH: usize = 16 * 1024;
/// Initial tungstenite read buffer: small, because an idle connection should cost little (it grows when needed).
const READ_BUFFER: usize = 1024;
/// The loop turns at least every [`TICK`] and inline handlers are fast: silent longer than this, the worker is
/// stuck (the systemd watchdog is then no longer fed).
const MAX_SILENCE: Duration = Duration::from_secs(10);

pub enum Msg {
    Accept(TcpStream),
    JobDone { token: u64, session: Box<Session>, outcome: Outcome },
    Notify(Arc<Notification>),
    Shutdown,
}

/// How other threads reach a worker.
#[derive(Clone)]
pub struct WorkerHandle {
    tx: Sender<Msg>,
    wake: Arc<EventFd>,
}

impl WorkerHandle {
    pub fn send(&self, msg: Msg) {
        if self.tx.send(msg).is_ok() {
            self.wake.notify();
        }
    }
}

impl Subscriber for WorkerHandle {
    fn deliver(&self, n: &Arc<Notification>) {
        self.send(Msg::Notify(n.clone()));
    }
}

pub struct Worker {
    ctx: Arc<Context>,
    epoll: Epoll,
    wake: Arc<EventFd>,
    rx: Receiver<Msg>,
    me: WorkerHandle,
    jobs: JobSender,
    http: HttpServer,
    shutdown: Shutdown,
    conns: Slab,
    /// This worker's share of the limits on connections still in the handshake and on unauthenticated
    /// connections (connections are dealt to the workers in turn, so each holds about an equal share).
    handshake_cap: usize,
    unauth_cap: usize,
    ws_config: WebSocketConfig,
    next_client: u64,
    beat: Heartbeat,
}

impl Worker {
    pub fn new(
        name: &str,
        ctx: Arc<Context>,
        jobs: JobSender,
        http: HttpServer,
        shutdown: Shutdown,
        n_workers: usize,
    ) -> std::io::Result<(WorkerHandle, Worker)> {
        let epoll = Epoll::new()?;
        let wake = Arc::new(EventFd::new()?);
        epoll.add(wake.raw(), WAKE)?;
        let (tx, rx) = unbounded();
        let me = WorkerHandle { tx, wake: wake.clone() };
        let s = &ctx.config.server;
        let queue_bytes = ctx.config.notifications.websocket.max_queue_size.saturating_mul(1024);
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(WRITE_BATCH)
            .max_write_buffer_size(queue_bytes.max(2 * s.max_message_size).max(2 * WRITE_BATCH))
            .max_message_size(Some(s.max_message_size))
            .max_frame_size(Some(s.max_frame_size));
        let beat = ctx.heartbeats.register(name, MAX_SILENCE);
        let max = s.max_connections as usize;
        let handshake_cap = max.div_ceil(n_workers.max(1)).max(1);
        let unauth_cap = unauthenticated_limit(s.max_connections).div_ceil(n_workers.max(1)).max(1);
        let worker = Worker {
            ctx,
            epoll,
            wake,
            rx,
            me: me.clone(),
            jobs,
            http,
            shutdown,
            conns: Slab::default(),
            handshake_cap,
            unauth_cap,
            ws_config,
            next_client: 0,
            beat,
        };
        Ok((me, worker))
    }

    pub fn run(mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(256);
        let mut next_tick = Instant::now() + TICK;
        loop {
            self.beat.tick();
            let timeout = next_tick.saturating_duration_since(Instant::now());
            let n = self.epoll.wait(&mut events, Some(timeout))?;
            for i in 0..n {
                let (token, bits) = events.get(i);
                if token == WAKE {
                    self.wake.drain();
                    if self.drain_inbox() {
                        self.close_all();
                        return Ok(());
                    }
                } else {
                    self.on_io(token, bits);
                }
            }
            if Instant::now() >= next_tick {
                self.housekeeping();
                next_tick = Instant::now() + TICK;
            }
            if self.shutdown.is_set() && self.rx.is_empty() {
                self.close_all();
                return Ok(());
            }
        }
    }

    /// Returns true on shutdown.
    fn drain_inbox(&mut self) -> bool {
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Accept(stream) => self.accept(stream),
                Msg::JobDone { token, session, outcome } => self.job_done(token, session, outcome),
                Msg::Notify(n) => self.notify(&n),
                Msg::Shutdown => return true,
            }
        }
        false
    }

    fn accept(&mut self, stream: TcpStream) {
        // Connections still sending their request head count against a limit: at the limit the oldest of them
        // makes room (a flood of half-open sockets then costs only its own connections).
        let pending: Vec<(Instant, u64)> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| matches!(c.phase, Phase::Handshake { .. }))
            .map(|(t, c)| (c.opened, t))
            .collect();
        if pending.len() >= self.handshake_cap {
            if let Some(&(_, oldest)) = pending.iter().min() {
                log::debug!("handshake limit ({}) on this worker: dropping the oldest", self.handshake_cap);
                self.drop_conn(oldest);
            }
        }
        let fd = stream.as_raw_fd();
        self.next_client += 1;
        let token = self.conns.insert(Conn::new(stream, self.next_client, Instant::now()));
        if let Err(e) = self.epoll.add(fd, token) {
            log::warn!("cannot watch connection: {e}");
            self.conns.remove(token);
            return;
        }
        // Data may already be waiting (edge-triggered: read now rather than wait for a new edge).
        self.on_io(token, READABLE);
    }

    fn on_io(&mut self, token: u64, bits: u32) {
        let Some(conn) = self.conns.get_mut(token) else { return };
        match &mut conn.phase {
            Phase::Handshake { .. } => self.read_head(token),
            Phase::Moving => {}
            Phase::Open(_) if conn.draining => self.drain(token, bits),
            Phase::Open(ws) => {
                if bits & (READABLE | HANGUP) != 0 {
                    ws.get_mut().drained = false;
                }
                if bits & WRITABLE != 0 {
                    self.flush(token);
                }
                if bits & (READABLE | HANGUP) != 0 {
                    self.pump(token);
                }
            }
        }
    }

    fn read_head(&mut self, token: u64) {
        let Some(conn) = self.conns.get_mut(token) else { return };
        let Phase::Handshake { stream, buf } = &mut conn.phase else { return };
        // A plain GET may be followed by the client shutting its write side: still answer it.
        let Ok(eof) = crate::http::read_available(stream, buf, MAX_HEAD_BYTES) else { return self.drop_conn(token) };
        match handshake::parse(buf) {
            Ok(None) if eof => self.drop_conn(token),
            Ok(None) => {}
            Ok(Some((req, used))) => {
                let rest = buf[used..].to_vec();
                self.route(token, req, rest);
            }
            Err(resp) => self.reject(token, resp),
        }
    }

    fn route(&mut self, token: u64, req: crate::http::Request, rest: Vec<u8>) {
        let host = req.header("host").and_then(crate::http::host_from_header);
        match handshake::route(req, &self.ctx.config.server.websocket_path) {
            Route::Reject(resp) => self.reject(token, resp),
            Route::Http(req) => {
                let Some(conn) = self.conns.remove(token) else { return };
                let Phase::Handshake { stream, .. } = conn.phase else { return };
                self.epoll.delete(stream.as_raw_fd());
                self.http.submit_parsed(req, stream);
            }
            Route::Upgrade(response) => self.upgrade(token, response, rest, host),
        }
    }

    fn upgrade(&mut self, token: u64, response: String, rest: Vec<u8>, host: Option<String>) {
        let Some(conn) = self.conns.get_mut(token) else { return };
        let Phase::Handshake { stream, .. } = &mut conn.phase else { return };
        // 129 bytes always fit in a fresh socket's send buffer; a short write means the peer is broken.
        if !matches!(stream.write(response.as_bytes()), Ok(n) if n == response.len()) {
            return self.drop_conn(token);
        }
        let Phase::Handshake { stream, .. } = std::mem::replace(&mut conn.phase, Phase::Moving) else { return };
        let sock = super::conn::Sock { stream, drained: false };
        let ws = WebSocket::from_partially_read(sock, rest, Role::Server, Some(self.ws_config));
        conn.phase = Phase::Open(Box::new(ws));
        conn.facts.host = host.map(Arc::from);
        conn.last_rx = Instant::now();
        let active = self.ctx.metrics.active_connections.fetch_add(1, Relaxed) + 1;
        conn.counted = true;
        if active > u64::from(self.ctx.config.server.max_connections) {
            // The Python service accepts, then closes with 1013; existing clients are unaffected.
            self.ctx.metrics.rejected_connections.fetch_add(1, Relaxed);
            log::warn!("connection limit reached ({}): refusing a client", self.ctx.config.server.max_connections);
            return self.close_with(token, CloseCode::Again, "Connection limit reached");
        }
        log::debug!("client {} connected", conn.facts.client_id);
        self.make_room_for_unauthenticated(token);
        self.pump(token);
    }

    /// Read and process frames until the socket would block or the connection becomes busy.
    fn pump(&mut self, token: u64) {
        loop {
            let Some(conn) = self.conns.get_mut(token) else { return };
            if conn.busy() {
                break;
            }
            let Phase::Open(ws) = &mut conn.phase else { return };
            match ws.read() {
                Ok(Message::Text(text)) => {
                    conn.last_rx = Instant::now();
                    conn.ping_sent = None;
                    if conn.closing.is_some() {
                        continue;
                    }
                    self.on_text(token, text.as_str());
                }
                Ok(Message::Binary(_)) => {
                    conn.last_rx = Instant::now();
                    log::debug!("client {}: binary frame ignored", conn.facts.client_id);
                }
                Ok(_) => {
                    conn.last_rx = Instant::now();
                    conn.ping_sent = None;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::Capacity(e)) => {
                    log::info!("client {}: {e}", conn.facts.client_id);
                    return self.close_oversized(token);
                }
                Err(tungstenite::Error::Utf8(_)) => return self.close_with(token, CloseCode::Invalid, "Invalid UTF-8"),
                Err(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {
                    return self.drop_conn(token)
                }
                Err(tungstenite::Error::Protocol(e)) => {
                    log::debug!("client {}: protocol error: {e}", conn.facts.client_id);
                    return self.close_with(token, CloseCode::Protocol, "Protocol error");
                }
                Err(_) => return self.drop_conn(token),
            }
        }
        self.flush(token);
    }

    fn on_text(&mut self, token: u64, text: &str) {
        let work = self.ctx.dispatcher.parse(text);
        let Some(conn) = self.conns.get_mut(token) else { return };
        if work.is_blocking() {
            let session = conn.session.take().expect("not busy");
            let job = Job { worker: self.me.clone(), token, session, facts: conn.facts.clone(), work };
            let _ = self.jobs.send(job);
            return;
        }
        let mut session = conn.session.take().expect("not busy");
        let outcome = self.ctx.dispatcher.run(work, &mut session, &conn.facts);
        conn.session = Some(session);
        // Most requests change neither who the connection is nor what it subscribed to: then the mirrors and the
        // hub's counters stay as they are (a session that expires meanwhile is recounted by housekeeping, and
        // delivery checks every connection anyway).
        if conn.mirror_stale() {
            conn.refresh_auth_mirror();
            self.recount(token);
        }
        self.deliver_outcome(token, outcome);
    }

    fn job_done(&mut self, token: u64, session: Box<Session>, outcome: Outcome) {
        match self.conns.get_mut(token) {
            Some(conn) => {
                conn.session = Some(session);
                conn.refresh_auth_mirror();
                self.recount(token);
                self.deliver_outcome(token, outcome);
                // Frames that arrived meanwhile wait in tungstenite's buffer or the socket: go on with them.
                self.pump(token);
            }
            None => {
                for n in outcome.after {
                    self.ctx.hub.publish(n);
                }
            }
        }
    }

    /// Queue the reply, then publish the notifications that must follow it.
    fn deliver_outcome(&mut self, token: u64, outcome: Outcome) {
        if let Some(reply) = outcome.reply {
            self.write(token, Message::text(reply));
        }
        for n in outcome.after {
            self.ctx.hub.publish(n);
        }
    }

    fn write(&mut self, token: u64, msg: Message) {
        let Some(conn) = self.conns.get_mut(token) else { return };
        if let Err(why) = conn.send(msg) {
            self.write_failed(token, why);
        }
    }

    fn flush(&mut self, token: u64) {
        let Some(conn) = self.conns.get_mut(token) else { return };
        if let Err(why) = conn.flush_out() {
            self.write_failed(token, why);
        }
    }

    /// Drop a connection a write failed on.
    fn write_failed(&mut self, token: u64, why: WriteFailure) {
        if why == WriteFailure::Slow {
            let Some(conn) = self.conns.get_mut(token) else { return };
            self.ctx.metrics.dropped_slow_clients.fetch_add(1, Relaxed);
            log::warn!("client {} cannot keep up (outbound queue full): disconnecting", conn.facts.client_id);
        }
        self.drop_conn(token)
    }

    /// Write `n` to every connection that receives it (see [`fanout::deliver`]), then drop the ones that failed.
    fn notify(&mut self, n: &Arc<Notification>) {
        let delivery = fanout::deliver(&mut self.conns, n, jwt::now_secs(), self.ctx.dispatcher.auth());
        self.ctx.metrics.notifications_sent.fetch_add(delivery.frames, Relaxed);
        for (token, why) in delivery.failed {
            self.write_failed(token, why);
        }
    }

    /// Bring the hub's interest counters up to date with what connection `token` receives now.
    fn recount(&mut self, token: u64) {
        let now_secs = jwt::now_secs();
        let auth = self.ctx.dispatcher.auth();
        let Some(conn) = self.conns.get_mut(token) else { return };
        let role = conn.event_role(now_secs, auth);
        let old = std::mem::replace(&mut conn.counted_as, role);
        self.ctx.hub.interest().change(old, role);
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        let s = &self.ctx.config.server;
        let ping_interval = Duration::from_secs_f64(s.ping_interval.max(0.1));
        let ping_timeout = Duration::from_secs_f64(s.ping_timeout.max(0.1));
        let delivery = Duration::from_secs_f64(self.ctx.config.notifications.websocket.delivery_timeout.max(0.1));
        let auth_timeout = Duration::from_secs_f64(s.auth_timeout.max(0.1));
        let mut to_drop = Vec::new();
        let mut to_ping = Vec::new();
        let mut late_auth = Vec::new();
        for (token, c) in self.conns.iter_mut() {
            if c.unauthenticated() && !c.busy() && now.duration_since(c.opened) > auth_timeout {
                late_auth.push(token);
                continue;
            }
            match &c.phase {
                Phase::Handshake { .. } if now.duration_since(c.opened) > HEAD_TIMEOUT => to_drop.push(token),
                Phase::Handshake { .. } | Phase::Moving => {}
                Phase::Open(_) => {
                    if c.closing.is_some_and(|d| now >= d)
                        || c.ping_sent.is_some_and(|p| now.duration_since(p) > ping_timeout)
                        || c.write_blocked_since.is_some_and(|w| now.duration_since(w) > delivery)
                    {
                        to_drop.push(token);
                    } else if c.closing.is_none()
                        && c.ping_sent.is_none()
                        && !c.busy()
                        && now.duration_since(c.last_rx) > ping_interval
                    {
                        c.ping_sent = Some(now);
                        to_ping.push(token);
                    }
                }
            }
        }
        for token in to_drop {
            self.drop_conn(token);
        }
        for token in late_auth {
            log::info!("closing a connection that did not authenticate within {} s", auth_timeout.as_secs_f64());
            self.close_with(token, CloseCode::Policy, "Authentication timeout");
        }
        // Sessions expire and API keys are revoked without a request: keep the counters true (only a connection
        // counted as receiving notifications can stop receiving them without a request of its own).
        let counted: Vec<u64> =
            self.conns.iter_mut().filter(|(_, c)| c.counted_as != crate::events::Role::None).map(|(t, _)| t).collect();
        for token in counted {
            self.recount(token);
        }
        for token in to_ping {
            self.write(token, Message::Ping(Default::default()));
            self.flush(token);
        }
    }

    /// At this worker's share of the unauthenticated-connection limit, close the oldest unauthenticated connection
    /// other than `newcomer` (1013), so clients that never authenticate cannot keep real users out.
    fn make_room_for_unauthenticated(&mut self, newcomer: u64) {
        let waiting: Vec<(Instant, u64)> = self
            .conns
            .iter_mut()
            .filter(|(t, c)| *t != newcomer && c.unauthenticated())
            .map(|(t, c)| (c.opened, t))
            .collect();
        if waiting.len() < self.unauth_cap {
            return;
        }
        if let Some(&(_, oldest)) = waiting.iter().min() {
            log::info!("unauthenticated connection limit ({} on this worker): closing the oldest", self.unauth_cap);
            self.close_with(oldest, CloseCode::Again, "Too many unauthenticated connections");
        }
    }

    /// An oversized message: send close 1009, then shut our write side and discard input for a bounded time, so a
    /// client still sending the message reads the close frame instead of a connection reset.
    fn close_oversized(&mut self, token: u64) {
        self.close_with(token, CloseCode::Size, "Message too big");
        let Some(conn) = self.conns.get_mut(token) else { return };
        conn.draining = true;
        self.drain(token, READABLE | WRITABLE);
    }

    fn drain(&mut self, token: u64, bits: u32) {
        let Some(conn) = self.conns.get_mut(token) else { return };
        let Phase::Open(ws) = &mut conn.phase else { return };
        if !conn.write_shut && bits & WRITABLE != 0 {
            match ws.flush() {
                Ok(()) => {
                    let _ = ws.get_ref().stream.shutdown(std::net::Shutdown::Write);
                    conn.write_shut = true;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return self.drop_conn(token),
            }
        }
        let mut sink = [0u8; 16 * 1024];
        loop {
            match ws.get_mut().stream.read(&mut sink) {
                Ok(0) => return self.drop_conn(token),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return self.drop_conn(token),
            }
        }
    }

    fn close_with(&mut self, token: u64, code: CloseCode, reason: &str) {
        let Some(conn) = self.conns.get_mut(token) else { return };
        let Phase::Open(ws) = &mut conn.phase else { return self.drop_conn(token) };
        let _ = ws.close(Some(CloseFrame { code, reason: reason.to_string().into() }));
        conn.closing = Some(Instant::now() + CLOSE_GRACE);
        self.recount(token);
        let Some(conn) = self.conns.get_mut(token) else { return };
        // A closing connection no longer holds a slot of the connection limit.
        if std::mem::take(&mut conn.counted) {
            self.ctx.metrics.active_connections.fetch_sub(1, Relaxed);
        }
        self.flush(token);
    }

    fn reject(&mut self, token: u64, resp: Response) {
        if let Some(conn) = self.conns.remove(token) {
            if let Phase::Handshake { mut stream, .. } = conn.phase {
                self.epoll.delete(stream.as_raw_fd());
                // Best effort: a short error response fits in the socket buffer.
                let _ = resp.write_to(&mut stream, false);
            }
        }
    }

    fn drop_conn(&mut self, token: u64) {
        if let Some(conn) = self.conns.remove(token) {
            let fd = match &conn.phase {
                Phase::Handshake { stream, .. } => Some(stream.as_raw_fd()),
                Phase::Open(ws) => Some(ws.get_ref().stream.as_raw_fd()),
                Phase::Moving => None,
            };
            if let Some(fd) = fd {
                self.epoll.delete(fd);
            }
            if conn.counted {
                self.ctx.metrics.active_connections.fetch_sub(1, Relaxed);
            }
            // Its subscription goes with it.
            self.ctx.hub.interest().change(conn.counted_as, crate::events::Role::None);
            log::debug!("client {} disconnected", conn.facts.client_id);
        }
    }

    /// Shutdown: tell every client (1000), flush what we can, close.
    fn close_all(&mut self) {
        for token in self.conns.tokens() {
            self.close_with(token, CloseCode::Normal, "Server shutting down");
        }
        for token in self.conns.tokens() {
            self.drop_conn(token);
        }
    }
}

/// The limit on unauthenticated WebSocket connections: a quarter of `server.max_connections` (at least 1), well
/// below it, so connections that never authenticate cannot take every slot.
pub fn unauthenticated_limit(max_connections: u32) -> usize {
    (max_connections as usize / 4).max(1)
}
