//! Logging on `log`, filtered by `env_logger`'s directive syntax: the level from `logging.level` (or `RUST_LOG`),
//! text lines in the Python `logging.format` or JSON lines (`logging.output_format: json`), a correlation id per
//! unit of work, console (stderr) and/or a size-rotated file.
//!
//! Lines are formatted on the calling thread (thread name and correlation id are thread-local) and handed to the
//! `log-writer` thread through a bounded channel: a slow terminal or disk never blocks a component thread; when the
//! queue fills, DEBUG/INFO lines are dropped first and the drops are counted and reported.
//!
//! Contract: `init` once at start; `correlation(id)` scopes a correlation id to the current thread until the guard
//! drops (one JSON-RPC request, one camera event, one health check); `flush()` before exiting.

mod format;
mod writer;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crossbeam_channel::Sender;
use log::{Level, Log, Metadata, Record};

use crate::config::LoggingConfig;

pub use format::{level_name, logger_name, Fields, Pattern};
pub use writer::RotatingFile;

thread_local! {
    static CORRELATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The buffer of the last id whose scope ended, reused by [`correlation_of`]: a connection worker sets an id per
    /// request, and this way does not allocate for it.
    static SPARE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Restores the previous correlation id when dropped.
pub struct CorrelationGuard {
    previous: Option<String>,
}

impl Drop for CorrelationGuard {
    fn drop(&mut self) {
        let prev = self.previous.take();
        let ended = CORRELATION.with(|c| std::mem::replace(&mut *c.borrow_mut(), prev));
        if let Some(buf) = ended {
            SPARE.with(|s| *s.borrow_mut() = buf);
        }
    }
}

/// Set the correlation id for log lines on this thread until the guard drops.
pub fn correlation(id: impl Into<String>) -> CorrelationGuard {
    let previous = CORRELATION.with(|c| c.borrow_mut().replace(id.into()));
    CorrelationGuard { previous }
}

/// [`correlation`] with the id given as pieces to concatenate, written into a reused buffer.
pub fn correlation_of(pieces: &[&str]) -> CorrelationGuard {
    let mut id = SPARE.with(|s| std::mem::take(&mut *s.borrow_mut()));
    id.clear();
    pieces.iter().for_each(|p| id.push_str(p));
    correlation(id)
}

/// The current thread's correlation id.
pub fn current_correlation() -> Option<String> {
    CORRELATION.with(|c| c.borrow().clone())
}

static DROPPED: AtomicU64 = AtomicU64::new(0);
static WRITER: OnceLock<Sender<writer::Msg>> = OnceLock::new();
/// Whether log lines go to stderr (`logging.console_enabled`), for [`fatal`].
static CONSOLE: AtomicBool = AtomicBool::new(false);

/// How lines look.
#[derive(Debug, Clone)]
pub enum Style {
    Text(Pattern),
    Json,
}

impl Style {
    pub fn from_config(cfg: &LoggingConfig) -> Style {
        if cfg.output_format == "json" {
            Style::Json
        } else {
            Style::Text(Pattern::parse(&cfg.format))
        }
    }

    /// One complete line, newline included.
    pub fn line(&self, f: &Fields) -> String {
        let mut s = String::with_capacity(128 + f.message.len());
        match self {
            Style::Text(p) => p.render(f, &mut s),
            Style::Json => format::json(f, &mut s),
        }
        s.push('\n');
        s
    }
}

/// The filter directives: `RUST_LOG` when set, else the configured level (Python names). At DEBUG the chattier
/// dependencies stay at INFO so the daemon's own debug lines remain readable.
pub fn filter_spec(cfg_level: &str, rust_log: Option<&str>) -> String {
    if let Some(spec) = rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        return spec.to_string();
    }
    match cfg_level {
        "DEBUG" => "debug,tungstenite=info,ureq=info,ureq_proto=info,rustls=info".into(),
        "WARNING" => "warn".into(),
        "ERROR" | "CRITICAL" => "error".into(),
        _ => "info".into(),
    }
}

struct Logger {
    filter: env_logger::Logger,
    style: Style,
    tx: Sender<writer::Msg>,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.filter.matches(record) {
            return;
        }
        // Source URLs may carry credentials: no log line ever shows a password, whoever logged it.
        let raw = record.args().to_string();
        let message = if raw.contains("://") { crate::util::redact::text(&raw).into_owned() } else { raw };
        let thread = std::thread::current();
        let line = CORRELATION.with(|c| {
            let c = c.borrow();
            self.style.line(&Fields {
                time: SystemTime::now(),
                level: record.level(),
                target: record.target(),
                module: record.module_path(),
                file: record.file(),
                line: record.line(),
                thread: thread.name().unwrap_or("unnamed"),
                correlation: c.as_deref(),
                message: &message,
            })
        });
        writer::offer(&self.tx, writer::CAPACITY, record.level(), line, &DROPPED);
    }

    fn flush(&self) {
        flush();
    }
}

/// Install the global logger and start the `log-writer` thread. Later calls are ignored. Fails (naming the key)
/// only when the log file cannot be opened.
pub fn init(cfg: &LoggingConfig) -> Result<(), String> {
    if WRITER.get().is_some() {
        return Ok(());
    }
    let spec = filter_spec(&cfg.level, std::env::var("RUST_LOG").ok().as_deref());
    let filter = env_logger::Builder::new().parse_filters(&spec).build();
    let file = if cfg.file_enabled {
        let f = RotatingFile::open(&cfg.file_path, cfg.max_file_size.0, cfg.backup_count)
            .map_err(|e| format!("logging.file_path: cannot open {}: {e}", cfg.file_path.display()))?;
        Some(f)
    } else {
        None
    };
    let (tx, rx) = crossbeam_channel::bounded(writer::CAPACITY);
    if WRITER.set(tx.clone()).is_err() {
        return Ok(());
    }
    let style = Style::from_config(cfg);
    let notice_style = style.clone();
    CONSOLE.store(cfg.console_enabled, Ordering::Relaxed);
    let sinks = writer::Sinks { console: cfg.console_enabled, file };
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_until_closed(rx, sinks, notice_style))
        .map_err(|e| format!("cannot start the log-writer thread: {e}"))?;
    let max = filter.filter();
    if log::set_boxed_logger(Box::new(Logger { filter, style, tx })).is_ok() {
        log::set_max_level(max);
    }
    Ok(())
}

/// Body of the `log-writer` thread. It runs outside the supervisor (it starts before it and must outlive every other
/// thread), so it watches itself: a panic is reported on stderr (the logger cannot log about itself) and the loop
/// restarts with the same queue and sinks, so the daemon never goes silent.
fn write_until_closed(rx: crossbeam_channel::Receiver<writer::Msg>, mut sinks: writer::Sinks, style: Style) {
    let notice = move |n| drop_notice(&style, n);
    loop {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            writer::run(&rx, &mut sinks, &DROPPED, &notice);
        }));
        match run {
            Ok(()) => return,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                eprintln!("camera-service: the log-writer thread panicked ({what}); restarting it");
            }
        }
    }
}

fn drop_notice(style: &Style, n: u64) -> String {
    style.line(&Fields {
        time: SystemTime::now(),
        level: Level::Warn,
        target: "camera_service::logging",
        module: Some(module_path!()),
        file: Some(file!()),
        line: Some(line!()),
        thread: "log-writer",
        correlation: None,
        message: &format!("{n} log lines dropped (log queue full)"),
    })
}

/// Wait (at most 2 s) until every line logged before this call has been written. No-op before `init`.
pub fn flush() {
    let Some(tx) = WRITER.get() else { return };
    let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
    if tx.send_timeout(writer::Msg::Flush(ack_tx), Duration::from_secs(1)).is_ok() {
        let _ = ack_rx.recv_timeout(Duration::from_secs(2));
    }
}

/// A fatal error before exit: exactly one line on stderr (through the log when it writes to stderr, else directly)
/// and the line in the log file, written out before this returns.
pub fn fatal(message: &str) {
    let logging_to_stderr =
        WRITER.get().is_some() && CONSOLE.load(Ordering::Relaxed) && log::log_enabled!(Level::Error);
    log::error!("{message}");
    flush();
    if !logging_to_stderr {
        eprintln!("camera-service: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_lines_are_reported_as_a_warning_from_the_writer() {
        let json = drop_notice(&Style::Json, 17);
        let v: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
        assert_eq!(v["level"], "WARNING", "{json}");
        assert_eq!(v["message"], "17 log lines dropped (log queue full)", "{json}");
        assert!(json.ends_with('\n'));
        let cfg = LoggingConfig::default();
        let text = drop_notice(&Style::from_config(&cfg), 3);
        assert!(text.contains("WARNING") && text.contains("3 log lines dropped (log queue full)"), "{text}");
    }

    #[test]
    fn correlation_is_scoped_and_nested() {
        assert_eq!(current_correlation(), None);
        {
            let _a = correlation_of(&["req-", "1"]);
            {
                let _b = correlation("cam-video0-1234abcd");
                assert_eq!(current_correlation().as_deref(), Some("cam-video0-1234abcd"));
            }
            assert_eq!(current_correlation().as_deref(), Some("req-1"));
            let other = std::thread::spawn(current_correlation).join().unwrap();
            assert_eq!(other, None);
        }
        assert_eq!(current_correlation(), None);
        // The next id reuses the ended one's buffer: nothing of it may remain.
        let _c = correlation_of(&["req-", "2"]);
        assert_eq!(current_correlation().as_deref(), Some("req-2"));
    }

    #[test]
    fn filter_spec_prefers_rust_log() {
        assert_eq!(filter_spec("WARNING", None), "warn");
        assert_eq!(filter_spec("CRITICAL", Some("  ")), "error");
        assert_eq!(filter_spec("INFO", Some("camera_service=trace")), "camera_service=trace");
        assert!(filter_spec("DEBUG", None).starts_with("debug,"));
    }

    #[test]
    fn style_from_config() {
        let mut cfg = LoggingConfig::default();
        let f = Fields {
            time: SystemTime::UNIX_EPOCH,
            level: Level::Info,
            target: "camera_service",
            module: None,
            file: None,
            line: None,
            thread: "main",
            correlation: Some("req-9"),
            message: "started",
        };
        assert_eq!(Style::from_config(&cfg).line(&f), "1970-01-01T00:00:00.000Z - main - INFO - [req-9] started\n");
        cfg.output_format = "json".into();
        let line = Style::from_config(&cfg).line(&f);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["correlation_id"], "req-9");
        assert_eq!(v["logger"], "main");
    }
}
