//! Component threads: named, watched, and stopped in order.
//!
//! Every long-lived thread is started through [`Supervisor::spawn`]. A panic in one is logged and reported to the
//! supervisor, which then stops the daemon with a non-zero exit code (systemd restarts it) instead of leaving a
//! half-alive process. Threads learn about shutdown from a [`Shutdown`] token.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;

use super::Shutdown;

/// Why a component thread ended abnormally.
#[derive(Debug)]
pub struct ThreadFailure {
    pub thread: String,
    pub message: String,
}

/// Owns the component threads of the daemon.
pub struct Supervisor {
    shutdown: Shutdown,
    failures_tx: Sender<ThreadFailure>,
    failures_rx: Receiver<ThreadFailure>,
    threads: Mutex<Vec<(String, JoinHandle<()>)>>,
}

impl Supervisor {
    pub fn new(shutdown: Shutdown) -> Supervisor {
        let (failures_tx, failures_rx) = unbounded();
        Supervisor { shutdown, failures_tx, failures_rx, threads: Mutex::new(Vec::new()) }
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Failures reported by component threads (a panic, or a fatal error returned from the thread body).
    pub fn failures(&self) -> &Receiver<ThreadFailure> {
        &self.failures_rx
    }

    /// Start a named component thread. Its body returning `Err` or panicking is a fatal daemon error.
    pub fn spawn<F>(&self, name: &str, body: F) -> std::io::Result<()>
    where
        F: FnOnce() -> Result<(), String> + Send + 'static,
    {
        let handle = spawn_watched(name, self.failures_tx.clone(), body)?;
        self.threads.lock().push((name.to_string(), handle));
        Ok(())
    }

    /// Join every thread, in reverse start order, within `budget`. Returns the names of threads still running.
    pub fn join_all(&self, budget: Duration) -> Vec<String> {
        let deadline = Instant::now() + budget;
        let mut threads = std::mem::take(&mut *self.threads.lock());
        let mut stuck = Vec::new();
        while let Some((name, handle)) = threads.pop() {
            while !handle.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                log::warn!("thread {name} did not stop within the shutdown budget");
                stuck.push(name);
            }
        }
        stuck
    }
}

/// Spawn a thread whose panic or error is reported on `failures` (used for threads outside the supervisor too,
/// e.g. connection workers that are started by a component).
pub fn spawn_watched<F>(name: &str, failures: Sender<ThreadFailure>, body: F) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let thread_name = name.to_string();
    thread::Builder::new().name(name.to_string()).spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(body));
        let message = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(panic) => panic_message(&*panic),
        };
        log::error!("component thread {thread_name} failed: {message}");
        let _ = failures.send(ThreadFailure { thread: thread_name, message });
    })
}

/// Run `body`; a panic becomes an error (logged here) instead of ending the thread. For helper threads outside the
/// supervisor whose owner recovers from their failure (a recording start that panicked fails that recording; a
/// stream reader that panicked is ended and replaced on the next request; an ffmpeg stderr drain keeps draining).
pub fn guarded<T>(what: &str, body: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|panic| {
        let message = panic_message(&*panic);
        log::error!("{what} failed: {message}");
        message
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_reported() {
        let sup = Supervisor::new(Shutdown::new());
        sup.spawn("boom", || panic!("kaput")).unwrap();
        let f = sup.failures().recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(f.thread, "boom");
        assert!(f.message.contains("kaput"));
        assert!(sup.join_all(Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn guarded_turns_a_panic_into_an_error() {
        assert_eq!(guarded("t", || 7), Ok(7));
        assert_eq!(guarded("t", || -> u8 { panic!("broken {}", 1) }), Err("broken 1".to_string()));
    }
}
