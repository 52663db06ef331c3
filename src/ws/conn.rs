//! One connection's state on a worker, and the slab that owns them.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use tungstenite::{Message, WebSocket};

use crate::auth::{Authenticator, Identity, Session};
use crate::events::{self, Subscription};
use crate::rpc::dispatch::ConnFacts;

/// The connection's socket, remembering whether the last read drained it.
///
/// With edge-triggered epoll, a read that returns fewer bytes than asked for means the socket was empty at that
/// moment, and any data arriving later raises a new readiness edge. So after a short read, the next read can
/// report `WouldBlock` without a syscall, until epoll says the socket is readable again: one `recv` per request
/// instead of two.
pub struct Sock {
    pub stream: TcpStream,
    pub drained: bool,
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.stream.read(buf)?;
        self.drained = n > 0 && n < buf.len();
        Ok(n)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub enum Phase {
    /// Reading the HTTP request head.
    Handshake {
        stream: TcpStream,
        buf: Vec<u8>,
    },
    Open(Box<WebSocket<Sock>>),
    /// Only while the stream moves from the handshake into the WebSocket.
    Moving,
}

pub struct Conn {
    pub phase: Phase,
    /// `None` while a blocking job holds it: the connection is busy and its next frames wait.
    pub session: Option<Box<Session>>,
    pub facts: ConnFacts,
    /// Mirror of the session's identity for notification delivery while the session is away on the job pool.
    pub auth: Option<Identity>,
    /// Mirror of the session's event subscription, for the same reason.
    pub events: Option<Arc<Subscription>>,
    /// What the connection is counted as in the hub's interest counters.
    pub counted_as: events::Role,
    pub opened: Instant,
    pub last_rx: Instant,
    pub ping_sent: Option<Instant>,
    /// Output has been waiting for the socket since then.
    pub write_blocked_since: Option<Instant>,
    /// Counted in `active_connections`.
    pub counted: bool,
    /// We sent a close frame; drop after this deadline if the peer does not finish the handshake.
    pub closing: Option<Instant>,
    /// Closing because of an oversized message the client may still be sending: after the close frame is out, our
    /// write side is shut and input is read and discarded until the peer closes or `closing` passes, so the client
    /// reads the close frame instead of a reset.
    pub draining: bool,
    /// The write side is shut (draining).
    pub write_shut: bool,
}

/// Why a connection must be dropped after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// Its outbound queue is full: the client does not keep up.
    Slow,
    /// Writing failed otherwise (peer gone, closed).
    Broken,
}

impl Conn {
    /// Queue `msg` on an open connection (nothing happens in another phase). `WouldBlock` counts as queued:
    /// tungstenite keeps the frame in its buffer and the socket takes it when writable.
    pub fn send(&mut self, msg: Message) -> Result<(), WriteFailure> {
        let Phase::Open(ws) = &mut self.phase else { return Ok(()) };
        match ws.write(msg) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Err(tungstenite::Error::WriteBufferFull(_)) => Err(WriteFailure::Slow),
            Err(_) => Err(WriteFailure::Broken),
        }
    }

    /// Push what is queued to the socket; a socket that takes no more starts (or keeps) the no-progress clock.
    pub fn flush_out(&mut self) -> Result<(), WriteFailure> {
        let Phase::Open(ws) = &mut self.phase else { return Ok(()) };
        match ws.flush() {
            Ok(()) => self.write_blocked_since = None,
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                self.write_blocked_since.get_or_insert_with(Instant::now);
            }
            Err(_) => return Err(WriteFailure::Broken),
        }
        Ok(())
    }

    pub fn new(stream: TcpStream, client_id: u64, now: Instant) -> Conn {
        Conn {
            phase: Phase::Handshake { stream, buf: Vec::new() },
            session: Some(Box::default()),
            facts: ConnFacts { client_id, host: None },
            auth: None,
            events: None,
            counted_as: events::Role::None,
            opened: now,
            last_rx: now,
            ping_sent: None,
            write_blocked_since: None,
            counted: false,
            closing: None,
            draining: false,
            write_shut: false,
        }
    }

    /// Open, not closing, and not (yet) authenticated. A connection whose session is away on the job pool counts
    /// by its last known identity.
    pub fn unauthenticated(&self) -> bool {
        matches!(self.phase, Phase::Open(_)) && self.closing.is_none() && self.auth.is_none()
    }

    pub fn busy(&self) -> bool {
        self.session.is_none()
    }

    /// The session's identity or subscription differs from the mirrors (a request changed it).
    pub fn mirror_stale(&self) -> bool {
        self.session.as_ref().is_some_and(|s| {
            s.identity != self.auth
                || match (&s.events, &self.events) {
                    (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
                    (a, b) => a.is_some() != b.is_some(),
                }
        })
    }

    pub fn refresh_auth_mirror(&mut self) {
        if let Some(s) = &self.session {
            self.auth = s.identity.clone();
            self.events = s.events.clone();
        }
    }

    /// What this connection receives now: nothing, the Python notifications, or its subscribed topics.
    pub fn event_role(&self, now_secs: i64, auth: &Authenticator) -> events::Role {
        match &self.events {
            _ if self.closing.is_some() || !self.notifiable(now_secs, auth) => events::Role::None,
            None => events::Role::Default,
            Some(s) => events::Role::Subscribed(s.topics),
        }
    }

    /// Authenticated, not expired and not revoked: eligible for notifications.
    pub fn notifiable(&self, now_secs: i64, auth: &Authenticator) -> bool {
        self.auth.as_ref().is_some_and(|i| i.expires_at.is_none_or(|e| now_secs < e) && auth.still_valid(i))
    }
}

/// Slot storage with generation-tagged tokens, so a late job result never reaches a reused slot.
#[derive(Default)]
pub struct Slab {
    slots: Vec<(u32, Option<Conn>)>,
    free: Vec<usize>,
}

pub fn token_index(token: u64) -> usize {
    (token & 0xffff_ffff) as usize
}

impl Slab {
    pub fn insert(&mut self, conn: Conn) -> u64 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[idx];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(conn);
        ((slot.0 as u64) << 32) | idx as u64
    }

    pub fn get_mut(&mut self, token: u64) -> Option<&mut Conn> {
        let (gen, conn) = self.slots.get_mut(token_index(token))?;
        if *gen as u64 == token >> 32 {
            conn.as_mut()
        } else {
            None
        }
    }

    pub fn remove(&mut self, token: u64) -> Option<Conn> {
        let idx = token_index(token);
        let (gen, slot) = self.slots.get_mut(idx)?;
        if *gen as u64 != token >> 32 || slot.is_none() {
            return None;
        }
        self.free.push(idx);
        slot.take()
    }

    pub fn tokens(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (_, c))| c.is_some())
            .map(|(i, (g, _))| ((*g as u64) << 32) | i as u64)
            .collect()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Conn)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (g, c))| c.as_mut().map(|c| (((*g as u64) << 32) | i as u64, c)))
    }
}
