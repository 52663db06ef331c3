//! Per-connection authentication state and rate limit. A session belongs to the connection that authenticated: the
//! Python service gave the role to the most recently opened connection instead, so with several clients the wrong
//! one got it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Identity;
use crate::events::Subscription;

/// The fixed rate-limit window.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Session {
    pub identity: Option<Identity>,
    pub session_id: Option<String>,
    /// Event subscription (`subscribe_events`); `None` = the Python notifications. Dies with the connection.
    pub events: Option<Arc<Subscription>>,
    window_start: Option<Instant>,
    window_count: u64,
}

impl Session {
    /// Count one request against `limit` per window; false = over the limit (rejected requests are not counted).
    pub fn admit(&mut self, limit: u64, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.duration_since(start) < RATE_WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.window_count = 0;
            }
        }
        if self.window_count >= limit {
            return false;
        }
        self.window_count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window() {
        let mut s = Session::default();
        let t0 = Instant::now();
        assert!((0..5).all(|_| s.admit(5, t0)));
        assert!(!s.admit(5, t0));
        assert!(!s.admit(5, t0 + Duration::from_secs(59)));
        assert!(s.admit(5, t0 + Duration::from_secs(61)));
    }
}
