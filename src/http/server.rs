//! The health / metrics / download HTTP server: an acceptor and a bounded pool of blocking workers (tiny_http's
//! split, without its unbounded pool and queue: limits are named constants). The WebSocket listener hands plain
//! `/files/...` GETs to the same pool.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use super::{parse_head, ParseError, Request, Response, MAX_HEAD_BYTES};
use crate::process::status::{Components, State};
use crate::process::{Shutdown, Supervisor};

/// Worker threads serving HTTP requests (health checks are tiny; downloads stream with a fixed buffer).
pub const HTTP_WORKERS: usize = 4;
/// Connections waiting for a worker; beyond this a client gets 503 at once.
pub const HTTP_QUEUE: usize = 64;
/// Time a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a write may block (a stalled download client is dropped after this).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

enum Task {
    Raw(TcpStream),
    /// A request another listener parsed, with that listener's routes (`None`: the pool's own).
    Parsed(Request, TcpStream, Option<Router>),
}

/// What answers a parsed request: the daemon's route table.
pub type Router = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// Submit side of the HTTP worker pool.
#[derive(Clone)]
pub struct HttpPool {
    tx: Sender<Task>,
    /// Routes for requests submitted through this handle (`None`: the pool's own).
    router: Option<Router>,
}

impl HttpPool {
    /// Start the pool's workers.
    pub fn start(router: Router, supervisor: &Supervisor) -> std::io::Result<HttpPool> {
        let (tx, rx) = bounded::<Task>(HTTP_QUEUE);
        for i in 0..HTTP_WORKERS {
            let (router, rx, shutdown) = (router.clone(), rx.clone(), supervisor.shutdown().clone());
            supervisor.spawn(&format!("http-{i}"), move || {
                serve_tasks(&*router, &rx, &shutdown);
                Ok(())
            })?;
        }
        Ok(HttpPool { tx, router: None })
    }

    /// A handle to the same workers whose submitted requests are answered by `router` instead (the WebSocket port
    /// serves the web console, which the health port does not).
    pub fn with_router(&self, router: Router) -> HttpPool {
        HttpPool { tx: self.tx.clone(), router: Some(router) }
    }

    /// A request whose head the WebSocket listener already read (the stream is in blocking mode).
    pub fn submit_parsed(&self, req: Request, stream: TcpStream) {
        self.submit(Task::Parsed(req, stream, self.router.clone()));
    }

    fn submit(&self, task: Task) {
        if let Err(TrySendError::Full(task) | TrySendError::Disconnected(task)) = self.tx.try_send(task) {
            let mut stream = match task {
                Task::Raw(s) | Task::Parsed(_, s, _) => s,
            };
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = Response::text(503, "Server busy\n").write_to(&mut stream, false);
        }
    }
}

/// Start the health server's acceptor on `addr` (`security.health.bind_address`, `health_port`).
pub fn start_health_server(
    addr: (&str, u16),
    pool: HttpPool,
    components: Components,
    supervisor: &Supervisor,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let shutdown = supervisor.shutdown().clone();
    components.set("health_server", State::Running, format!("listening on {}:{}", addr.0, addr.1));
    supervisor.spawn("http-acceptor", move || {
        accept_loop(&listener, &pool, &shutdown);
        components.set("health_server", State::Stopped, "stopped");
        Ok(())
    })
}

fn accept_loop(listener: &TcpListener, pool: &HttpPool, shutdown: &Shutdown) {
    while !shutdown.is_set() {
        if !crate::sys::poll::wait_readable(listener.as_raw_fd(), Duration::from_millis(200)) {
            continue;
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(false).is_ok() {
                        pool.submit(Task::Raw(stream));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::warn!("health server accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            }
        }
    }
}

fn serve_tasks(router: &(dyn Fn(&Request) -> Response + Send + Sync), rx: &Receiver<Task>, shutdown: &Shutdown) {
    loop {
        crossbeam_channel::select! {
            recv(rx) -> task => match task {
                Ok(Task::Raw(stream)) => serve_raw(router, stream),
                Ok(Task::Parsed(req, stream, own)) => respond(own.as_deref().unwrap_or(router), &req, stream),
                Err(_) => return,
            },
            recv(shutdown.channel()) -> _ => return,
        }
    }
}

fn serve_raw(router: &(dyn Fn(&Request) -> Response + Send + Sync), mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(HEAD_TIMEOUT));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let req = loop {
        match parse_head(&buf) {
            Ok((req, _)) => break req,
            Err(ParseError::Bad(why)) => {
                let _ = Response::text(400, why).write_to(&mut stream, false);
                return;
            }
            Err(ParseError::Incomplete) if buf.len() >= MAX_HEAD_BYTES => return,
            Err(ParseError::Incomplete) => match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
        }
    };
    respond(router, &req, stream);
}

fn respond(router: &(dyn Fn(&Request) -> Response + Send + Sync), req: &Request, stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let head_only = req.method == "HEAD";
    let resp = if req.method != "GET" && !head_only {
        Response::text(405, "Method Not Allowed\n").with_header("Allow", "GET, HEAD")
    } else {
        router(req)
    };
    let status = resp.status;
    if let Err(e) = resp.send(stream, head_only) {
        log::debug!("HTTP {} {} -> {status}: client went away: {e}", req.method, req.path);
    }
}
