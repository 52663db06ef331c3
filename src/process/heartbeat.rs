//! The heartbeat board: loops that must keep turning (the WebSocket workers, the recorder, camera discovery) tick
//! their [`Heartbeat`] every turn, and the systemd watchdog is fed only while every registered loop has ticked
//! recently. A thread that is alive but stuck (a deadlock, a handler that never returns) then gets the daemon
//! restarted, which a plain "the process still runs" ping would hide.
//!
//! A tick is one relaxed atomic store of a millisecond count; nothing is locked on the hot path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

struct Slot {
    name: String,
    max_silence: Duration,
    /// Milliseconds since the board's epoch at the last tick.
    last_ms: AtomicU64,
    /// The loop ended normally: no longer watched.
    retired: AtomicBool,
}

/// The board. Cheap to clone. The lock guards only the list of slots (changed when a loop registers).
#[derive(Clone)]
pub struct Heartbeats {
    epoch: Instant,
    slots: Arc<Mutex<Vec<Arc<Slot>>>>,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Heartbeats { epoch: Instant::now(), slots: Arc::default() }
    }
}

/// One loop's heartbeat; tick it every turn. Dropping it (the loop ended) stops watching the loop.
pub struct Heartbeat {
    epoch: Instant,
    slot: Arc<Slot>,
}

impl Heartbeat {
    pub fn tick(&self) {
        self.slot.last_ms.store(millis(self.epoch.elapsed()), Relaxed);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.slot.retired.store(true, Relaxed);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Heartbeats {
    /// Watch a loop named `name` that ticks at least every `max_silence` while healthy (it counts as ticked now).
    pub fn register(&self, name: &str, max_silence: Duration) -> Heartbeat {
        let slot = Arc::new(Slot {
            name: name.to_string(),
            max_silence,
            last_ms: AtomicU64::new(millis(self.epoch.elapsed())),
            retired: AtomicBool::new(false),
        });
        self.slots.lock().push(slot.clone());
        Heartbeat { epoch: self.epoch, slot }
    }

    /// Loops silent for longer than they may be, with how long they have been silent.
    pub fn stalled(&self) -> Vec<(String, Duration)> {
        let now = millis(self.epoch.elapsed());
        let mut slots = self.slots.lock();
        slots.retain(|s| !s.retired.load(Relaxed));
        slots
            .iter()
            .filter_map(|s| {
                let silent = Duration::from_millis(now.saturating_sub(s.last_ms.load(Relaxed)));
                (silent > s.max_silence).then(|| (s.name.clone(), silent))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_loop_stalls_the_board_until_it_ticks_or_ends() {
        let board = Heartbeats::default();
        let fast = board.register("worker", Duration::from_millis(40));
        let slow = board.register("recorder", Duration::from_secs(60));
        assert!(board.stalled().is_empty());
        std::thread::sleep(Duration::from_millis(80));
        let stalled = board.stalled();
        assert_eq!(stalled.len(), 1, "{stalled:?}");
        assert_eq!(stalled[0].0, "worker");
        assert!(stalled[0].1 >= Duration::from_millis(40));
        fast.tick();
        assert!(board.stalled().is_empty());
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(board.stalled().len(), 1);
        // A loop that ended is no longer watched.
        drop(fast);
        assert!(board.stalled().is_empty());
        slow.tick();
    }

    #[test]
    fn a_deadlocked_thread_is_seen() {
        let board = Heartbeats::default();
        let lock = Arc::new(Mutex::new(()));
        let held = lock.lock();
        let (b, l) = (board.clone(), lock.clone());
        let t = std::thread::spawn(move || {
            let beat = b.register("ws-worker-0", Duration::from_millis(30));
            for _ in 0..3 {
                beat.tick();
                drop(l.lock()); // blocks: the "deadlock"
            }
        });
        // The thread registers, ticks once and blocks; 30 ms later the board must name it.
        let names = || board.stalled().iter().map(|s| s.0.clone()).collect::<Vec<_>>();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while names().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(names(), ["ws-worker-0"]);
        drop(held);
        t.join().unwrap();
        assert!(board.stalled().is_empty());
    }
}
