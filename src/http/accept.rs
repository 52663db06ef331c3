//! The one acceptor pattern of both listeners (the WebSocket port and the health port): a non-blocking listener
//! registered in an epoll set next to an eventfd that shutdown signals, so an acceptor sleeps until a client
//! arrives or the daemon stops (no polling), and a back-off when the process runs out of file descriptors.

use std::io::{self, ErrorKind};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::process::Shutdown;
use crate::sys::poll::{Epoll, EventFd, Events};

/// After `accept` fails for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), wait this long before trying
/// again. Waiting clients stay in the kernel's backlog meanwhile and are served once descriptors are free again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A listener and its back-off state.
pub struct Acceptor {
    listener: TcpListener,
    /// What it accepts for, in log lines ("WebSocket port", "health port").
    what: &'static str,
    /// Resources ran out: try again at this time (the edge-triggered listener raises no new event for clients
    /// already waiting).
    retry_at: Option<Instant>,
    /// A resource shortage was logged and has not ended yet (one WARNING per episode, not one per attempt).
    short: bool,
}

impl Acceptor {
    pub fn new(listener: TcpListener, what: &'static str) -> io::Result<Acceptor> {
        listener.set_nonblocking(true)?;
        Ok(Acceptor { listener, what, retry_at: None, short: false })
    }

    /// Watch the listener in `epoll` under `token`.
    pub fn register(&self, epoll: &Epoll, token: u64) -> io::Result<()> {
        epoll.add(self.listener.as_raw_fd(), token)
    }

    /// How long an epoll wait may last before [`Acceptor::accept_ready`] must run again (`None`: until an event).
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.retry_at.map(|t| t.saturating_duration_since(now))
    }

    /// True when a back-off ended and waiting clients should be accepted now.
    pub fn retry_due(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| now >= t)
    }

    /// Accept every waiting client (the listener is edge-triggered) and hand each, non-blocking, to `f`.
    pub fn accept_ready(&mut self, mut f: impl FnMut(TcpStream)) {
        self.retry_at = None;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.short {
                        self.short = false;
                        log::info!("{}: accepting connections again", self.what);
                    }
                    if stream.set_nonblocking(true).is_ok() {
                        f(stream);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // The peer gave up between SYN and accept: nothing to do, go on with the next.
                Err(e) if matches!(e.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset) => continue,
                Err(e) => {
                    if !self.short {
                        self.short = true;
                        log::warn!(
                            "{}: cannot accept connections: {e}; retrying every {} ms (clients wait in the backlog)",
                            self.what,
                            ACCEPT_BACKOFF.as_millis()
                        );
                    }
                    self.retry_at = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }
}

/// Token of the listener in [`run`]'s epoll set.
const LISTENER: u64 = 0;
/// Token of the shutdown eventfd in [`run`]'s epoll set.
const STOP: u64 = 1;

/// An acceptor thread's loop: sleep in epoll until a client arrives or shutdown begins; hand every client to `f`.
pub fn run(mut acceptor: Acceptor, shutdown: &Shutdown, mut f: impl FnMut(TcpStream)) -> io::Result<()> {
    let epoll = Epoll::new()?;
    let stop = Arc::new(EventFd::new()?);
    epoll.add(stop.raw(), STOP)?;
    shutdown.wake_on_trigger(stop.clone());
    acceptor.register(&epoll, LISTENER)?;
    // Clients that connected before the registration raised their edge already.
    acceptor.accept_ready(&mut f);
    let mut events = Events::with_capacity(4);
    while !shutdown.is_set() {
        let n = epoll.wait(&mut events, acceptor.timeout(Instant::now()))?;
        let listener_ready = (0..n).any(|i| events.get(i).0 == LISTENER);
        if listener_ready || acceptor.retry_due(Instant::now()) {
            acceptor.accept_ready(&mut f);
        }
    }
    Ok(())
}
