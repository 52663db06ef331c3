//! The daemon's life: start components in order, wait for a signal or a component failure, stop in reverse.

use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::config::Loaded;
use crate::lifecycle::{Shutdown, Supervisor};

/// Exit codes (decisions §1).
pub const EXIT_OK: i32 = 0;
pub const EXIT_FATAL: i32 = 1;
pub const EXIT_CONFIG: i32 = 2;

/// Run until SIGTERM/SIGINT. Returns the process exit code.
pub fn run(loaded: Loaded) -> i32 {
    let config = Arc::new(loaded.config);
    let shutdown = Shutdown::new();
    let supervisor = Supervisor::new(shutdown.clone());
    let (sig_tx, sig_rx) = crossbeam_channel::bounded::<i32>(4);
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            return EXIT_FATAL;
        }
    };
    let handle = signals.handle();
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        for sig in signals.forever() {
            let _ = sig_tx.send(sig);
        }
    });
    // File management: persisted thresholds/retention policy, and the `retention` thread (issue 8).
    #[allow(clippy::default_constructed_unit_structs)] // Media gets fields with issue 7; the lead wires the real one.
    let _files = match crate::files::Files::start(
        config.clone(),
        crate::media::Media::default(),
        crate::notify::Hub::new(),
        crate::status::Components::default(),
        &supervisor,
    ) {
        Ok(f) => f,
        Err(e) => {
            log::error!("cannot start file management: {e}");
            return EXIT_FATAL;
        }
    };
    log::info!("camera-service {} started (config {:?})", crate::VERSION, config.server.port);
    let code = crossbeam_channel::select! {
        recv(sig_rx) -> sig => { log::info!("signal {:?}: stopping", sig.ok()); EXIT_OK }
        recv(supervisor.failures()) -> f => { log::error!("stopping after failure: {:?}", f.ok()); EXIT_FATAL }
    };
    shutdown.trigger();
    handle.close();
    let stuck = supervisor.join_all(Duration::from_secs(2));
    if stuck.is_empty() {
        code
    } else {
        EXIT_FATAL
    }
}
