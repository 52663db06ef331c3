//! The daemon's life: start components in order, open the WebSocket port last (decisions §1: scripts wait for
//! it), wait for a signal or a component failure, stop in reverse within the shutdown budget.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::app::App;
use crate::auth::Authenticator;
use crate::camera::Cameras;
use crate::config::{Config, Loaded};
use crate::files::Files;
use crate::http::server::{self, HttpPool};
use crate::media::Media;
use crate::mediamtx::MediaMtx;
use crate::process::status::Components;
use crate::process::{Shutdown, Supervisor};
use crate::rpc::metrics::Metrics;
use crate::rpc::notify::Hub;
use crate::rpc::table;
use crate::ws;

/// Exit codes (decisions §1).
pub const EXIT_OK: i32 = 0;
pub const EXIT_FATAL: i32 = 1;
pub const EXIT_CONFIG: i32 = 2;

/// Shutdown budget without running recordings (decisions §7: < 2 s) and with them (≤ 5 s).
const STOP_BUDGET: Duration = Duration::from_millis(1800);
const STOP_BUDGET_RECORDING: Duration = Duration::from_millis(4800);

/// Run until SIGTERM/SIGINT. Returns the process exit code.
pub fn run(loaded: Loaded) -> i32 {
    let mut config = loaded.config;
    if let Err(e) = prepare_dirs(&mut config) {
        log::error!("{e}");
        return EXIT_FATAL;
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
    let (sig_rx, signals) = match super::signals::watch() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            return EXIT_FATAL;
        }
    };
    let app = match start(config, auth, &supervisor) {
        Ok(app) => app,
        Err(e) => {
            log::error!("start-up failed: {e}");
            supervisor.shutdown().trigger();
            supervisor.join_all(STOP_BUDGET);
            return EXIT_FATAL;
        }
    };
    log::info!(
        "camera-service {} ({}) ready on ws://{}:{}{}",
        crate::VERSION,
        crate::GIT_COMMIT,
        app.config.server.host,
        app.config.server.port,
        app.config.server.websocket_path
    );
    crate::process::sdnotify::ready();
    let code = wait_for_stop(&sig_rx, &supervisor);
    crate::process::sdnotify::stopping();
    let t = Instant::now();
    let budget = if app.media.recording_count() > 0 { STOP_BUDGET_RECORDING } else { STOP_BUDGET };
    // `server.shutdown_timeout` may only shorten the budget: decisions §7 bounds it from above.
    let budget = budget.min(Duration::from_secs_f64(app.config.server.shutdown_timeout.max(0.1)));
    supervisor.shutdown().trigger();
    signals.close();
    let stuck = supervisor.join_all(budget);
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

/// Block until a signal or a component failure; meanwhile feed systemd's watchdog (when it asks for one).
fn wait_for_stop(sig_rx: &crossbeam_channel::Receiver<i32>, supervisor: &Supervisor) -> i32 {
    let watchdog = crate::process::sdnotify::watchdog_ping_period()
        .map(crossbeam_channel::tick)
        .unwrap_or_else(crossbeam_channel::never);
    loop {
        crossbeam_channel::select! {
            recv(sig_rx) -> sig => {
                log::info!("signal {}: stopping", sig.unwrap_or(0));
                return EXIT_OK;
            }
            recv(supervisor.failures()) -> f => {
                if let Ok(f) = f {
                    log::error!("stopping: thread {} failed: {}", f.thread, f.message);
                }
                return EXIT_FATAL;
            }
            recv(watchdog) -> _ => {
                crate::process::sdnotify::watchdog_ping();
            }
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
/// results such as `take_snapshot.file_path` name the real server path (as the Python service does) whatever the
/// working directory a relative configuration was written for.
fn prepare_dirs(config: &mut Config) -> Result<(), String> {
    for dir in [&mut config.mediamtx.recordings_path, &mut config.mediamtx.snapshots_path, &mut config.state_dir] {
        std::fs::create_dir_all(&*dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if let Ok(abs) = std::fs::canonicalize(&*dir) {
            *dir = abs;
        }
    }
    Ok(())
}

/// Start every component, in order, and open the WebSocket port last.
#[allow(clippy::default_constructed_unit_structs)]
fn start(config: Arc<Config>, auth: Authenticator, supervisor: &Supervisor) -> std::io::Result<Arc<App>> {
    let hub = Hub::new();
    let components = Components::default();
    let cameras = Cameras::start(config.clone(), hub.clone(), components.clone(), supervisor)?;
    let media = Media::default();
    let mediamtx = MediaMtx::start(config.clone(), cameras.clone(), media.clone(), components.clone(), supervisor)?;
    let names: Vec<&'static str> = table::all().iter().map(|m| m.name).collect();
    let files = Files::start(config.clone(), media.clone(), hub.clone(), components.clone(), supervisor)?;
    let app = Arc::new(App {
        config: config.clone(),
        started: Instant::now(),
        started_at: SystemTime::now(),
        hub,
        shutdown: supervisor.shutdown().clone(),
        components,
        auth,
        metrics: Arc::new(Metrics::new(&names)),
        cameras,
        mediamtx,
        media,
        files,
    });
    app.media.start_for(&app, supervisor)?;
    let router_app = app.clone();
    let http = HttpPool::start(Arc::new(move |req| crate::http::routes::route(&router_app, req)), supervisor)?;
    let health = &app.config.security.health;
    let addr = (health.bind_address.as_str(), app.config.health_port());
    server::start_health_server(addr, http.clone(), app.components.clone(), supervisor)?;
    // The WebSocket port also answers plain GETs: the web console, then the same routes as the health port
    // (of which its listener forwards only `/files/`).
    let site = Arc::new(crate::web::Site::new(&app.config));
    let ws_app = app.clone();
    let ws_http = http.with_router(Arc::new(move |req| {
        if crate::web::is_web_path(&req.path) {
            site.serve(req)
        } else {
            crate::http::routes::route(&ws_app, req)
        }
    }));
    let listener = ws::bind(&app)?;
    ws::start(app.clone(), listener, ws_http, supervisor)?;
    Ok(app)
}
