//! The shutdown token every thread holds: a flag for loops that poll and a channel that disconnects, for loops
//! that `select!`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::sys::poll::EventFd;

/// Cloneable shutdown token. `recv()` on [`Shutdown::channel`] returns (with an error) once shutdown begins.
#[derive(Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    rx: Receiver<()>,
    tx: Arc<Mutex<Option<Sender<()>>>>,
    /// Eventfds of epoll loops, signalled on shutdown so those loops wake at once instead of polling the flag.
    wakers: Arc<Mutex<Vec<Arc<EventFd>>>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        let (tx, rx) = bounded(0);
        Shutdown {
            flag: Arc::new(AtomicBool::new(false)),
            rx,
            tx: Arc::new(Mutex::new(Some(tx))),
            wakers: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Begin shutdown: every holder sees `is_set()` and its channel disconnects.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.tx.lock().take();
        for w in self.wakers.lock().iter() {
            w.notify();
        }
    }

    /// Signal `fd` when shutdown begins (at once if it already has), so an epoll loop that watches it learns about
    /// shutdown without a timeout.
    pub fn wake_on_trigger(&self, fd: Arc<EventFd>) {
        let mut wakers = self.wakers.lock();
        if self.is_set() {
            fd.notify();
        }
        wakers.push(fd);
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

    use std::time::Instant;

    #[test]
    fn shutdown_wakes_sleepers() {
        let s = Shutdown::new();
        let s2 = s.clone();
        let (tx, rx) = crossbeam_channel::bounded(1);
        // The sleeper reports through a channel, so a sleep that ignores the trigger fails the test at the bound
        // below instead of holding it for an hour.
        let (asleep_tx, asleep) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _ = asleep_tx.send(());
            let woke = s2.sleep(Duration::from_secs(3600));
            let _ = tx.send(woke);
        });
        // Trigger once the sleeper is (all but) asleep, so it is the early wake-up that ends its sleep.
        asleep.recv_timeout(Duration::from_secs(5)).expect("sleeper thread started");
        let t = Instant::now();
        s.trigger();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true), "sleeper not woken by the trigger");
        assert!(t.elapsed() < Duration::from_secs(5));
        // After the trigger a sleep returns at once (in a thread too, so a sleep that waits fails rather than hangs).
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _ = tx.send(s.sleep(Duration::from_secs(3600)));
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(true), "a sleep after the trigger did not return");
    }

    #[test]
    fn sleep_without_shutdown_lasts_its_duration() {
        let s = Shutdown::new();
        let t = Instant::now();
        assert!(!s.sleep(Duration::from_millis(50)));
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(!s.is_set());
    }
}
