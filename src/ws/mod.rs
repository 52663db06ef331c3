//! The WebSocket JSON-RPC server: one acceptor thread, a few epoll workers multiplexing non-blocking connections,
//! and a bounded pool for blocking handlers.
//!
//! Why not a thread per connection: even tuned, a thread costs ~18-26 KiB per connection, above the memory goal; here an idle connection costs its socket and a small tungstenite buffer. Requests on one connection
//! are processed strictly in order (the Python contract); a blocking handler moves the connection's session to the
//! job pool and the worker stops reading that connection until the job hands it back, while other connections on the
//! same worker go on. Notifications reach a worker through its inbox channel plus an eventfd wake-up, so an idle
//! client gets them at once.

mod conn;
mod fanout;
mod handshake;
mod worker;

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::auth::Session;
use crate::config::Config;
use crate::http::accept::{self, Acceptor};
use crate::http::server::HttpServer;
use crate::process::heartbeat::Heartbeats;
use crate::process::status::{Components, State};
use crate::process::Supervisor;
use crate::rpc::dispatch::{ConnFacts, Dispatcher, Outcome, Work};
use crate::rpc::metrics::Metrics;
use crate::rpc::notify::Hub;
use worker::{Msg, WorkerHandle};

/// What the WebSocket server's threads use: the dispatcher that runs frames, where notifications come from and go
/// after replies, connection counters, and the configuration.
pub struct Context {
    pub config: Arc<Config>,
    pub dispatcher: Dispatcher,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub components: Components,
    pub heartbeats: Heartbeats,
}

/// Kernel send buffer per WebSocket connection. Bounding it (instead of letting TCP autotune up to megabytes) bounds
/// what a client that stopped reading can pin in memory; together with tungstenite's bounded write buffer it is
/// the per-connection outbound queue, and a client that fills it is disconnected.
const SEND_BUFFER: usize = 64 * 1024;

/// A blocking handler's work, run on the job pool.
pub(crate) struct Job {
    worker: WorkerHandle,
    token: u64,
    session: Box<Session>,
    facts: ConnFacts,
    work: Work,
}

/// Bind the listener (so the caller learns about a busy port before anything else starts). The error names the
/// address.
pub fn bind(config: &Config) -> std::io::Result<TcpListener> {
    let cfg = &config.server;
    TcpListener::bind((cfg.host.as_str(), cfg.port)).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {}:{} (server.host, server.port): {e}", cfg.host, cfg.port),
        )
    })
}

/// Start workers, the job pool and the acceptor on an already bound listener.
pub fn start(
    ctx: Arc<Context>,
    listener: TcpListener,
    http: HttpServer,
    supervisor: &Supervisor,
) -> std::io::Result<()> {
    let shutdown = supervisor.shutdown().clone();
    let n_workers = match ctx.config.server.worker_threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()).min(4),
        n => n,
    };
    let (job_tx, job_rx) = unbounded::<Job>();
    let n_jobs = ctx.config.performance.optimization.max_concurrent_operations.max(2);
    for i in 0..n_jobs {
        let (ctx, rx, shutdown) = (ctx.clone(), job_rx.clone(), shutdown.clone());
        supervisor.spawn(&format!("ws-job-{i}"), move || {
            run_jobs(&ctx, &rx, &shutdown);
            Ok(())
        })?;
    }
    let mut workers = Vec::new();
    for i in 0..n_workers {
        let name = format!("ws-worker-{i}");
        let (handle, worker) =
            worker::Worker::new(&name, ctx.clone(), job_tx.clone(), http.clone(), shutdown.clone(), n_workers)?;
        ctx.hub.subscribe(Arc::new(handle.clone()));
        workers.push(handle);
        supervisor.spawn(&name, move || worker.run().map_err(|e| e.to_string()))?;
    }
    let acceptor = Acceptor::new(listener, "WebSocket port")?;
    let acceptor_ctx = ctx.clone();
    supervisor.spawn("ws-acceptor", move || {
        let r = accept_loop(&acceptor_ctx, acceptor, &workers, &shutdown);
        acceptor_ctx.components.set("websocket_server", State::Stopped, "stopped");
        for w in &workers {
            w.send(Msg::Shutdown);
        }
        r.map_err(|e| e.to_string())
    })?;
    ctx.components.set(
        "websocket_server",
        State::Running,
        format!("listening on {}:{}", ctx.config.server.host, ctx.config.server.port),
    );
    Ok(())
}

/// Deal accepted connections to the workers in turn.
fn accept_loop(
    ctx: &Context,
    acceptor: Acceptor,
    workers: &[WorkerHandle],
    shutdown: &crate::process::Shutdown,
) -> std::io::Result<()> {
    let mut next = 0usize;
    accept::run(acceptor, shutdown, |stream| {
        let _ = stream.set_nodelay(true);
        crate::sys::set_send_buffer(stream.as_raw_fd(), SEND_BUFFER);
        ctx.metrics.total_connections.fetch_add(1, Relaxed);
        workers[next % workers.len()].send(Msg::Accept(stream));
        next = next.wrapping_add(1);
    })
}

fn run_jobs(ctx: &Context, rx: &Receiver<Job>, shutdown: &crate::process::Shutdown) {
    loop {
        crossbeam_channel::select! {
            recv(rx) -> job => {
                let Ok(mut job) = job else { return };
                let outcome: Outcome = ctx.dispatcher.run(job.work, &mut job.session, &job.facts);
                job.worker.send(Msg::JobDone { token: job.token, session: job.session, outcome });
            }
            recv(shutdown.channel()) -> _ => return,
        }
    }
}

/// Submit side of the job pool, held by workers.
pub(crate) type JobSender = Sender<Job>;
