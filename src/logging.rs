//! Logging (foundation placeholder: env_logger defaults; the full text/JSON/file implementation replaces this).
//!
//! Contract: `init` once at start; `correlation(id)` scopes a correlation id to the current thread until the guard
//! drops (one JSON-RPC request, one camera event, one health check).

use std::cell::RefCell;

use crate::config::LoggingConfig;

thread_local! {
    static CORRELATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Restores the previous correlation id when dropped.
pub struct CorrelationGuard {
    previous: Option<String>,
}

impl Drop for CorrelationGuard {
    fn drop(&mut self) {
        let prev = self.previous.take();
        CORRELATION.with(|c| *c.borrow_mut() = prev);
    }
}

/// Set the correlation id for log lines on this thread until the guard drops.
pub fn correlation(id: impl Into<String>) -> CorrelationGuard {
    let previous = CORRELATION.with(|c| c.borrow_mut().replace(id.into()));
    CorrelationGuard { previous }
}

/// The current thread's correlation id.
pub fn current_correlation() -> Option<String> {
    CORRELATION.with(|c| c.borrow().clone())
}

/// Install the global logger. Safe to call once; later calls are ignored.
pub fn init(cfg: &LoggingConfig) -> Result<(), String> {
    let level = match cfg.level.as_str() {
        "DEBUG" => "debug",
        "WARNING" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => "info",
    };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).try_init();
    Ok(())
}

/// Write out buffered log lines (shutdown).
pub fn flush() {
    log::logger().flush();
}
