//! The shutdown token every thread holds: a flag for loops that poll and a channel that disconnects, for loops
//! that `select!`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

/// Cloneable shutdown token. `recv()` on [`Shutdown::channel`] returns (with an error) once shutdown begins.
#[derive(Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    rx: Receiver<()>,
    tx: Arc<Mutex<Option<Sender<()>>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, rx) = bounded(0);
        Shutdown { flag: Arc::new(AtomicBool::new(false)), rx, tx: Arc::new(Mutex::new(Some(tx))) }
    }

    /// Begin shutdown: every holder sees `is_set()` and its channel disconnects.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.tx.lock().take();
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// A receiver that never yields a value and disconnects on shutdown; put it in a `select!`.
    pub fn channel(&self) -> &Receiver<()> {
        &self.rx
    }

    /// Sleep up to `d`, waking early on shutdown. Returns true when shutdown began.
    pub fn sleep(&self, d: Duration) -> bool {
        let _ = self.rx.recv_timeout(d);
        self.is_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_wakes_sleepers() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.sleep(Duration::from_secs(30)));
        s.trigger();
        assert!(t.join().unwrap());
    }
}
