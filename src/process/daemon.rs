//! The daemon's life and its wiring: create every channel and handle, give each component its method table and each
//! HTTP route its handles, start the threads, open the WebSocket port last (scripts and tests wait for it), wait for
//! a signal or a component failure, stop in reverse within the shutdown budget. This is the one module that knows
//! every component; see docs/design.md ("Start-up").

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::auth::Authenticator;
use crate::camera::external::rpc::ExternalMethods;
use crate::camera::rpc::CameraMethods;
use crate::camera::{CameraThreads, Cameras};
use crate::config::{Config, Loaded};
use crate::events::Topic;
use crate::files::rpc::FileMethods;
use crate::files::{Files, FilesOwner};
use crate::http::routes::{self, Routes};
use crate::http::server::{HttpServer, Router};
use crate::media::streaming::{Streaming, StreamingThread};
use crate::media::{LiveView, Media, RecorderThread, RecorderWiring, Recordings};
use crate::mediamtx::{CameraFeed, Hooks, MediaMtx, MediaMtxThreads};
use crate::process::heartbeat::Heartbeats;
use crate::process::status::{Components, State};
use crate::process::{Shutdown, Supervisor};
use crate::rpc::dispatch::{Dispatcher, Limits, MAX_BATCH};
use crate::rpc::events::EventMethods;
use crate::rpc::metrics::Metrics;
use crate::rpc::notify::{Hub, Notification};
use crate::rpc::system::System;
use crate::rpc::table::names_of;
use crate::rpc::Table;
use crate::ws;

/// Exit codes: 0 clean stop, 1 any other fatal error, 2 configuration error.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FATAL: i32 = 1;
pub const EXIT_CONFIG: i32 = 2;

/// Shutdown budget without running recordings (< 2 s) and with them (≤ 5 s, every file finalised).
const STOP_BUDGET: Duration = Duration::from_millis(1800);
const STOP_BUDGET_RECORDING: Duration = Duration::from_millis(4800);

/// Run until SIGTERM/SIGINT. Returns the process exit code.
pub fn run(loaded: Loaded) -> i32 {
    let mut config = loaded.config;
    if let Err(e) = prepare_dirs(&mut config) {
        return fatal(&e);
    }
    let config = Arc::new(config);
    let auth = match Authenticator::from_config(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_CONFIG;
        }
    };
    raise_fd_limit(&config);
    let supervisor = Supervisor::new(Shutdown::new());
    // Signals first, so a SIGTERM during start-up is not lost.
    let (sig_rx, signals) = match super::signals::watch(&supervisor) {
        Ok(s) => s,
        Err(e) => return fatal(&format!("cannot install signal handlers: {e}")),
    };
    let started = match start(config, auth, &supervisor) {
        Ok(s) => s,
        Err(e) => {
            supervisor.shutdown().trigger();
            signals.close();
            supervisor.join_all(STOP_BUDGET);
            return fatal(&e);
        }
    };
    let config = &started.config;
    log::info!(
        "camera-service {} ({}) ready on ws://{}:{}{}",
        crate::VERSION,
        crate::GIT_COMMIT,
        config.server.host,
        config.server.port,
        config.server.websocket_path
    );
    crate::process::sdnotify::ready();
    started.hub.publish(system_event(Topic::SystemStartup, "started", config));
    let code = wait_for_stop(&sig_rx, &supervisor, &started.heartbeats, &started.hub);
    crate::process::sdnotify::stopping();
    // Before the shutdown token: workers deliver what is in their inbox before they close connections.
    started.hub.publish(system_event(Topic::SystemShutdown, "stopping", config));
    let t = Instant::now();
    let budget = if started.recordings.count() > 0 { STOP_BUDGET_RECORDING } else { STOP_BUDGET };
    // `server.shutdown_timeout` may only shorten the budget.
    let budget = budget.min(Duration::from_secs_f64(config.server.shutdown_timeout.max(0.1)));
    // Recordings end first, while the connections are still open: every client sees its STOPPED notification.
    if started.recordings.count() > 0 {
        started.media.finish_recordings(budget);
    }
    supervisor.shutdown().trigger();
    signals.close();
    let stuck = supervisor.join_all(budget.saturating_sub(t.elapsed()).max(Duration::from_millis(300)));
    // No ffmpeg outlives the daemon (the recorder finalised recordings before its thread ended).
    crate::media::process::kill_all();
    log::info!("stopped in {} ms", t.elapsed().as_millis());
    crate::logging::flush();
    if stuck.is_empty() {
        code
    } else {
        EXIT_FATAL
    }
}

/// `system.startup` / `system.shutdown` params.
fn system_event(topic: Topic, status: &str, config: &Config) -> Notification {
    let params = json!({
        "status": status, "version": crate::VERSION, "pid": std::process::id(),
        "websocket": format!("{}:{}", config.server.host, config.server.port),
    });
    Notification::event(topic, None, params)
}

/// Component state changes become `system.health` (and `system_health_update`, the name the Go port's web client
/// subscribes to) with the overall status as `get_status` reports it.
fn watch_health(components: &Components, hub: &Hub) {
    let (all, hub) = (components.clone(), hub.clone());
    components.watch(Arc::new(move |name, now, before| {
        let overall = crate::rpc::system::overall(all.all().values().map(|c| c.state));
        let params = json!({
            "component": name, "state": now.state.as_str(), "previous_state": before.map(State::as_str),
            "details": now.details, "status": overall,
        });
        hub.publish(Notification::events(&[Topic::SystemHealth, Topic::SystemHealthUpdate], None, params));
    }));
}

/// A start-up failure: one line naming what failed (the path or address, and the OS error) on stderr and in the log,
/// written out before the process exits.
fn fatal(message: &str) -> i32 {
    crate::logging::fatal(&format!("start-up failed: {message}"));
    EXIT_FATAL
}

/// What the daemon keeps from start-up for its run and its stop.
struct Started {
    config: Arc<Config>,
    hub: Hub,
    recordings: Recordings,
    media: Media,
    heartbeats: Heartbeats,
}

/// Every component's handle, built from its channels before any thread runs.
struct Handles {
    config: Arc<Config>,
    hub: Hub,
    components: Components,
    heartbeats: Heartbeats,
    metrics: Arc<Metrics>,
    auth: Authenticator,
    started: Instant,
    cameras: Cameras,
    mediamtx: MediaMtx,
    recordings: Recordings,
    files: Files,
    media: Media,
    streaming: Streaming,
    /// Live MJPEG views over the media component's frame readers.
    live: LiveView,
    /// Subscribed before the registry runs, so no camera is missed.
    mediamtx_feed: CameraFeed,
    recorder_events: crossbeam_channel::Receiver<crate::camera::CameraEvent>,
}

/// The component threads, not started yet.
struct Threads {
    cameras: CameraThreads,
    mediamtx: MediaMtxThreads,
    recorder: RecorderThread,
    streaming: StreamingThread,
    files: FilesOwner,
}

/// Phase 1: channels and handles. Nothing runs yet, so the order here is only the order of data dependencies.
fn build(config: Arc<Config>, auth: Authenticator, shutdown: &Shutdown) -> (Handles, Threads) {
    let components = Components::default();
    let (cameras, camera_threads) = Cameras::new(config.clone());
    let (mediamtx, mediamtx_threads) = MediaMtx::new(config.clone(), components.clone());
    let recordings = Recordings::default();
    let active = recordings.clone();
    let (files, files_owner) = Files::new(config.clone(), Arc::new(move || active.active_files()));
    let thresholds = files.clone();
    let (media, recorder) = Media::new(crate::media::Deps {
        config: config.clone(),
        cameras: Arc::new(cameras.clone()),
        mediamtx: Arc::new(mediamtx.clone()),
        thresholds: Arc::new(move || thresholds.thresholds()),
        recordings: recordings.clone(),
        shutdown: shutdown.clone(),
    });
    let (streaming, streaming_thread) =
        Streaming::new(config.clone(), Arc::new(cameras.clone()), Arc::new(mediamtx.clone()));
    let live = LiveView::new(&media, auth.url_signer().clone(), shutdown.clone());
    let handles = Handles {
        hub: Hub::new(),
        components,
        heartbeats: Heartbeats::default(),
        metrics: Arc::new(Metrics::new(&method_names())),
        auth,
        started: Instant::now(),
        mediamtx_feed: CameraFeed { initial: cameras.list(), events: cameras.subscribe() },
        recorder_events: cameras.subscribe(),
        cameras,
        mediamtx,
        recordings,
        files,
        media,
        streaming,
        live,
        config,
    };
    let threads = Threads {
        cameras: camera_threads,
        mediamtx: mediamtx_threads,
        recorder,
        streaming: streaming_thread,
        files: files_owner,
    };
    (handles, threads)
}

/// Every component's method table over its own state (the dispatcher sees only this).
fn method_table(h: &Handles) -> Table {
    let system = System {
        config: h.config.clone(),
        started: h.started,
        components: h.components.clone(),
        metrics: h.metrics.clone(),
    };
    let cameras = CameraMethods {
        cameras: h.cameras.clone(),
        config: h.config.clone(),
        recordings: Arc::new(h.recordings.clone()),
        streams: Arc::new(h.mediamtx.clone()),
    };
    // A `device` filter takes every camera id form; events carry the id as responses do.
    let device_id: crate::rpc::events::DeviceId = Arc::new(|id: &str| {
        Ok(match crate::camera::CameraId::parse(id)? {
            crate::camera::CameraId::Real(n) => format!("/dev/video{n}"),
            crate::camera::CameraId::Virtual(n) => format!("virtual{n}"),
            crate::camera::CameraId::Name(name) => name,
        })
    });
    let events = EventMethods { hub: h.hub.clone(), device_id };
    let external = ExternalMethods {
        cameras: h.cameras.clone(),
        recordings: Arc::new(h.recordings.clone()),
        components: h.components.clone(),
    };
    Table::new()
        .with(system, crate::rpc::system::METHODS)
        .with(h.auth.clone(), crate::rpc::session::METHODS)
        .with(events, crate::rpc::events::METHODS)
        .with(cameras, crate::camera::rpc::METHODS)
        .with(h.mediamtx.clone(), crate::mediamtx::rpc::METHODS)
        .with(h.media.clone(), crate::media::rpc::METHODS)
        .with(h.streaming.clone(), crate::media::streaming::METHODS)
        .with(external, crate::camera::external::rpc::METHODS)
        .with(h.live.clone(), crate::media::live::METHODS)
        .with(FileMethods { files: h.files.clone(), urls: h.auth.url_signer().clone() }, crate::files::rpc::METHODS)
}

/// Every JSON-RPC method name, sorted (request metrics get a slot each; docs are checked against this list).
pub fn method_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = names_of(crate::rpc::system::METHODS)
        .chain(names_of(crate::rpc::session::METHODS))
        .chain(names_of(crate::rpc::events::METHODS))
        .chain(names_of(crate::camera::rpc::METHODS))
        .chain(names_of(crate::mediamtx::rpc::METHODS))
        .chain(names_of(crate::media::rpc::METHODS))
        .chain(names_of(crate::media::streaming::METHODS))
        .chain(names_of(crate::camera::external::rpc::METHODS))
        .chain(names_of(crate::media::live::METHODS))
        .chain(names_of(crate::files::rpc::METHODS))
        .collect();
    v.sort_unstable();
    v
}

/// The HTTP routes over narrow handles: (health port, WebSocket port). The WebSocket port also serves the web
/// console, then the same routes as the health port (of which its listener forwards only `/files/` and `/live/`).
fn routers(h: &Handles) -> (Router, Router) {
    let health = routes::Health {
        components: h.components.clone(),
        cameras: h.cameras.clone(),
        metrics: h.metrics.clone(),
        started: h.started,
    };
    let (files, auth) = (h.files.clone(), h.auth.clone());
    let (live, live_auth) = (h.live.clone(), h.auth.clone());
    let routes = Arc::new(
        Routes::new(health)
            .prefix("/files/", move |req| crate::files::download::respond(&files, &auth, req))
            .prefix(crate::media::live::PREFIX, move |req| live.respond(&live_auth, req)),
    );
    let site = crate::web::Site::new(&h.config);
    let for_ws = routes.clone();
    let ws: Router =
        Arc::new(move |req| if crate::web::is_web_path(&req.path) { site.serve(req) } else { for_ws.route(req) });
    (Arc::new(move |req| routes.route(req)), ws)
}

/// Phase 2: start every component thread, in dependency order, and open the WebSocket port last.
fn start(config: Arc<Config>, auth: Authenticator, supervisor: &Supervisor) -> Result<Started, String> {
    let (h, threads) = build(config, auth, supervisor.shutdown());
    watch_health(&h.components, &h.hub);
    let thread_error = |e: std::io::Error| e.to_string();
    threads.cameras.spawn(h.hub.clone(), h.components.clone(), &h.heartbeats, supervisor).map_err(thread_error)?;
    let (recordings, cameras) = (h.recordings.clone(), h.cameras.clone());
    let hooks = Hooks {
        is_recording: Arc::new(move |device| recordings.is_recording(device)),
        announce: Arc::new(move |device| cameras.announce(device)),
        hub: h.hub.clone(),
    };
    let feed = CameraFeed { initial: h.mediamtx_feed.initial.clone(), events: h.mediamtx_feed.events.clone() };
    threads.mediamtx.spawn(feed, hooks, supervisor).map_err(thread_error)?;
    let wiring = RecorderWiring {
        camera_events: h.recorder_events.clone(),
        hub: h.hub.clone(),
        components: h.components.clone(),
        heartbeats: h.heartbeats.clone(),
    };
    threads.recorder.spawn(wiring, supervisor).map_err(thread_error)?;
    threads.streaming.spawn(supervisor).map_err(thread_error)?;
    threads.files.spawn(h.components.clone(), supervisor).map_err(thread_error)?;
    let (health_router, ws_router) = routers(&h);
    let health = &h.config.security.health;
    let addr = (health.bind_address.as_str(), h.config.health_port());
    let health_listener = std::net::TcpListener::bind(addr).map_err(|e| {
        format!("cannot listen on {}:{} (security.health.bind_address, health_port): {e}", addr.0, addr.1)
    })?;
    let http =
        HttpServer::start(health_listener, health_router, h.components.clone(), supervisor).map_err(thread_error)?;
    let http = http.with_router(ws_router);
    let listener = ws::bind(&h.config).map_err(thread_error)?;
    let limits = Limits { max_batch: MAX_BATCH, reply_budget: h.config.server.max_message_size };
    let ctx = Arc::new(ws::Context {
        config: h.config.clone(),
        dispatcher: Dispatcher::new(method_table(&h), h.auth.clone(), h.metrics.clone(), limits),
        hub: h.hub.clone(),
        metrics: h.metrics.clone(),
        components: h.components.clone(),
        heartbeats: h.heartbeats.clone(),
    });
    ws::start(ctx, listener, http, supervisor).map_err(thread_error)?;
    Ok(Started {
        config: h.config.clone(),
        hub: h.hub.clone(),
        recordings: h.recordings.clone(),
        media: h.media.clone(),
        heartbeats: h.heartbeats.clone(),
    })
}

/// How often the heartbeats are looked at when systemd asks for no watchdog (a stalled loop is still reported to
/// clients).
const HEARTBEAT_CHECK: Duration = Duration::from_secs(1);

/// Block until a signal or a component failure; meanwhile feed systemd's watchdog (when it asks for one) while every
/// watched loop shows a recent heartbeat, so that a stuck thread gets the daemon restarted. Both a failed thread and
/// a stalled loop are `system.error` events for clients.
fn wait_for_stop(
    sig_rx: &crossbeam_channel::Receiver<i32>,
    supervisor: &Supervisor,
    beats: &Heartbeats,
    hub: &Hub,
) -> i32 {
    let period = crate::process::sdnotify::watchdog_ping_period();
    let mut watch = Stalls { watchdog: period.is_some(), reported: Vec::new() };
    let check = crossbeam_channel::tick(period.unwrap_or(HEARTBEAT_CHECK));
    loop {
        crossbeam_channel::select! {
            recv(sig_rx) -> sig => {
                log::info!("signal {}: stopping", sig.unwrap_or(0));
                return EXIT_OK;
            }
            recv(supervisor.failures()) -> f => {
                if let Ok(f) = f {
                    log::error!("stopping: thread {} failed: {}", f.thread, f.message);
                    hub.publish(system_error(&f.thread, &f.message, "stopping"));
                }
                return EXIT_FATAL;
            }
            recv(check) -> _ => watch.check(beats, hub),
        }
    }
}

/// `system.error` params: the thread or loop, what went wrong, and what the daemon does about it (`stopping`: it
/// exits with code 1 and its service manager restarts it; `watchdog_withheld`: systemd's watchdog is not fed, so
/// systemd restarts it if the loop stays stuck; `none`: no watchdog, only reported).
fn system_error(component: &str, error: &str, action: &str) -> Notification {
    let error = crate::util::redact::text(error);
    Notification::event(Topic::SystemError, None, json!({"component": component, "error": error, "action": action}))
}

/// The watched loops' heartbeats, looked at every watchdog period (or [`HEARTBEAT_CHECK`]).
struct Stalls {
    /// systemd asked for watchdog pings.
    watchdog: bool,
    /// Loops already reported as stalled; one that ticks again leaves the list, so its next stall is new.
    reported: Vec<String>,
}

impl Stalls {
    /// Ping systemd only while no watched loop is stalled; log and publish each stall once.
    fn check(&mut self, beats: &Heartbeats, hub: &Hub) {
        let stalled = beats.stalled();
        self.reported.retain(|name| stalled.iter().any(|(n, _)| n == name));
        if stalled.is_empty() {
            if self.watchdog {
                crate::process::sdnotify::watchdog_ping();
            }
            return;
        }
        let action = if self.watchdog { "watchdog_withheld" } else { "none" };
        let mut new = Vec::new();
        for (name, silent) in &stalled {
            if !self.reported.contains(name) {
                let error = format!("no heartbeat for {} s", silent.as_secs());
                hub.publish(system_error(name, &error, action));
                self.reported.push(name.clone());
                new.push(format!("{name} ({} s)", silent.as_secs()));
            }
        }
        if !new.is_empty() {
            let why = if self.watchdog { "watchdog: not telling systemd we are alive" } else { "stalled" };
            log::error!("{why}: no heartbeat from {}", new.join(", "));
        }
    }
}

/// Each connection is a descriptor: lift the soft `RLIMIT_NOFILE` (often 1024) towards the hard limit so
/// `server.max_connections` can actually be reached.
fn raise_fd_limit(config: &Config) {
    let wanted = u64::from(config.server.max_connections) + 256;
    match crate::sys::raise_nofile_limit(wanted) {
        Ok(got) if got < wanted => log::warn!(
            "open-file limit {got} is below server.max_connections {} + 256: raise LimitNOFILE",
            config.server.max_connections
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Data directories must exist and be writable before anything records into them. They are then made absolute, so
/// results such as `take_snapshot.file_path` name the real server path whatever the working directory a relative
/// configuration was written for. The error names the key, the path and the OS error.
fn prepare_dirs(config: &mut Config) -> Result<(), String> {
    let dirs = [
        ("mediamtx.recordings_path", &mut config.mediamtx.recordings_path),
        ("mediamtx.snapshots_path", &mut config.mediamtx.snapshots_path),
        ("state_dir", &mut config.state_dir),
    ];
    for (key, dir) in dirs {
        std::fs::create_dir_all(&*dir).map_err(|e| format!("{key} {}: cannot create: {e}", dir.display()))?;
        crate::util::fs::check_writable(dir).map_err(|e| format!("{key} {}: not writable: {e}", dir.display()))?;
        if let Ok(abs) = std::fs::canonicalize(&*dir) {
            *dir = abs;
        }
    }
    // Our stream publishers (run by MediaMTX, in the service's group) keep their latest frame here.
    let live = crate::mediamtx::pathconf::live_frame_dir(config);
    if config.mediamtx.enabled {
        if let Err(e) = crate::util::fs::create_shared_dir(&live) {
            log::warn!("{}: cannot create: {e}; snapshots of ready streams connect a reader instead", live.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles are built without starting a thread, and the table holds exactly the methods the metrics know.
    #[test]
    fn every_handle_exists_before_any_thread_and_the_table_is_complete() {
        let dir = std::env::temp_dir().join(format!("daemon-wiring-{}", std::process::id()));
        let mut config = Config { state_dir: dir.join("state"), ..Config::default() };
        config.mediamtx.recordings_path = dir.join("rec");
        config.mediamtx.snapshots_path = dir.join("snap");
        let auth = Authenticator::new(b"unit-secret", dir.join("keys.json"), 0);
        let (h, _threads) = build(Arc::new(config), auth, &Shutdown::new());
        let table = method_table(&h);
        assert_eq!(table.names(), method_names());
        assert!(method_names().iter().all(|n| h.metrics.slot(n).is_some()));
        assert!(table.lookup("authenticate").is_some_and(|(_, e)| e.role.is_none()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A hub with one subscriber to `system.error`, and what reaches it.
    fn system_errors() -> (Hub, crossbeam_channel::Receiver<serde_json::Value>) {
        struct Collect(crossbeam_channel::Sender<serde_json::Value>);
        impl crate::rpc::notify::Subscriber for Collect {
            fn deliver(&self, n: &Arc<Notification>) {
                let _ = self.0.send(json!({"method": n.method(), "params": n.params(None)}));
            }
        }
        let hub = Hub::new();
        let (tx, rx) = crossbeam_channel::unbounded();
        hub.subscribe(Arc::new(Collect(tx)));
        let topics = crate::events::TopicSet::of(&[Topic::SystemError]);
        hub.interest().change(crate::events::Role::None, crate::events::Role::Subscribed(topics));
        (hub, rx)
    }

    #[test]
    fn a_failed_thread_is_a_system_error_and_stops_the_daemon() {
        let (hub, errors) = system_errors();
        let supervisor = Supervisor::new(Shutdown::new());
        supervisor.spawn("recorder", || panic!("session table corrupt")).unwrap();
        let never = crossbeam_channel::never();
        assert_eq!(wait_for_stop(&never, &supervisor, &Heartbeats::default(), &hub), EXIT_FATAL);
        let e = errors.try_recv().expect("system.error published");
        assert_eq!(e["method"], "system.error");
        assert_eq!(
            e["params"],
            json!({"component": "recorder", "error": "session table corrupt", "action": "stopping"})
        );
        assert!(errors.try_recv().is_err(), "once");
        assert!(supervisor.join_all(Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn a_stalled_loop_is_one_system_error_per_stall() {
        let (hub, errors) = system_errors();
        let beats = Heartbeats::default();
        let beat = beats.register("camera-discovery", Duration::from_millis(500));
        let mut stalls = Stalls { watchdog: false, reported: Vec::new() };
        let stall = || {
            let deadline = Instant::now() + Duration::from_secs(5);
            while beats.stalled().is_empty() {
                assert!(Instant::now() < deadline, "the board never saw the stall");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        stall();
        stalls.check(&beats, &hub);
        let e = errors.try_recv().expect("system.error published");
        assert_eq!(
            (e["params"]["component"].as_str(), e["params"]["action"].as_str()),
            (Some("camera-discovery"), Some("none"))
        );
        assert!(e["params"]["error"].as_str().unwrap().starts_with("no heartbeat for"), "{e}");
        // Still stalled: not again.
        stalls.check(&beats, &hub);
        assert!(errors.try_recv().is_err());
        // It ticks (the stall is over), then stalls again: a new stall.
        beat.tick();
        stalls.check(&beats, &hub);
        assert!(errors.try_recv().is_err());
        stall();
        stalls.check(&beats, &hub);
        assert_eq!(errors.try_recv().expect("second stall")["params"]["component"], "camera-discovery");
    }
}
