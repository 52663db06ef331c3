//! The MediaMTX health circuit breaker, as a pure state machine: the health
//! thread feeds it check results and sleeps for the delay it returns. No clock or randomness inside, so every
//! transition is unit-tested.
//!
//! CLOSED: check every `interval`; after failure k the next check comes after `backoff(k)`; at k = threshold → OPEN.
//! OPEN: no checks for `open_timeout`, then HALF_OPEN.
//! HALF_OPEN: a probe every min(interval, 5 s); `confirmations` successes in a row → CLOSED, any failure → OPEN.

use std::time::{Duration, Instant};

use crate::config::MediaMtxConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerParams {
    pub interval: Duration,
    pub failure_threshold: u32,
    pub open_timeout: Duration,
    pub max_backoff: Duration,
    pub confirmations: u32,
    pub base: f64,
    pub jitter: (f64, f64),
}

impl BreakerParams {
    pub fn from_config(m: &MediaMtxConfig) -> BreakerParams {
        let secs = |s: f64| Duration::from_secs_f64(if s.is_finite() && s > 0.0 { s } else { 0.1 });
        let (lo, hi) = match m.backoff_jitter_range.as_slice() {
            [lo, hi] if lo <= hi && *lo > 0.0 => (*lo, *hi),
            _ => (0.8, 1.2),
        };
        BreakerParams {
            interval: secs(m.health_check_interval),
            failure_threshold: m.health_failure_threshold.max(1),
            open_timeout: secs(m.health_circuit_breaker_timeout),
            max_backoff: secs(m.health_max_backoff_interval),
            confirmations: m.health_recovery_confirmation_threshold.max(1),
            base: if m.backoff_base_multiplier >= 1.0 { m.backoff_base_multiplier } else { 2.0 },
            jitter: (lo, hi),
        }
    }
}

/// What a check result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    /// CLOSED → OPEN (or HALF_OPEN → OPEN).
    Opened,
    /// HALF_OPEN → CLOSED, or CLOSED with failures back to healthy: MediaMTX is back (paths may be lost).
    Recovered,
    /// The first successful check ever.
    FirstContact,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    pub params: BreakerParams,
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub half_open_successes: u32,
    opened_at: Option<Instant>,
    pub activations: u64,
    pub recoveries: u64,
    ever_succeeded: bool,
}

impl Breaker {
    pub fn new(params: BreakerParams) -> Breaker {
        Breaker {
            params,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            half_open_successes: 0,
            opened_at: None,
            activations: 0,
            recoveries: 0,
            ever_succeeded: false,
        }
    }

    /// OPEN → HALF_OPEN once the open timeout has passed.
    pub fn tick(&mut self, now: Instant) {
        if self.state == BreakerState::Open
            && self.opened_at.is_some_and(|t| now.duration_since(t) >= self.params.open_timeout)
        {
            self.state = BreakerState::HalfOpen;
            self.half_open_successes = 0;
        }
    }

    /// May a check run now? (Not while OPEN.)
    pub fn should_probe(&mut self, now: Instant) -> bool {
        self.tick(now);
        self.state != BreakerState::Open
    }

    pub fn on_success(&mut self) -> Transition {
        let first = !self.ever_succeeded;
        self.ever_succeeded = true;
        match self.state {
            BreakerState::HalfOpen => {
                self.half_open_successes += 1;
                if self.half_open_successes < self.params.confirmations {
                    return Transition::None;
                }
                self.state = BreakerState::Closed;
                self.consecutive_failures = 0;
                self.half_open_successes = 0;
                self.opened_at = None;
                self.recoveries += 1;
                Transition::Recovered
            }
            BreakerState::Closed | BreakerState::Open => {
                let had_failures = self.consecutive_failures > 0;
                self.consecutive_failures = 0;
                if first {
                    Transition::FirstContact
                } else if had_failures {
                    Transition::Recovered
                } else {
                    Transition::None
                }
            }
        }
    }

    pub fn on_failure(&mut self, now: Instant) -> Transition {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.state {
            BreakerState::Closed if self.consecutive_failures >= self.params.failure_threshold => {
                self.open(now);
                Transition::Opened
            }
            BreakerState::HalfOpen => {
                self.open(now);
                Transition::Opened
            }
            _ => Transition::None,
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.half_open_successes = 0;
        self.activations += 1;
    }

    /// How long to wait before the next check. `unit` is a uniform random number in [0, 1) for the jitter.
    pub fn next_delay(&self, now: Instant, unit: f64) -> Duration {
        let p = &self.params;
        match self.state {
            BreakerState::Closed if self.consecutive_failures == 0 => p.interval,
            BreakerState::Closed => self.backoff(self.consecutive_failures, unit),
            BreakerState::Open => {
                let until = self.opened_at.map(|t| (t + p.open_timeout).saturating_duration_since(now));
                until.unwrap_or(p.open_timeout)
            }
            BreakerState::HalfOpen => p.interval.min(Duration::from_secs(5)),
        }
    }

    /// `max(0.1, min(interval × base^min(n,20), max_backoff) × U(lo, hi))` seconds.
    pub fn backoff(&self, n: u32, unit: f64) -> Duration {
        let p = &self.params;
        let raw = (p.interval.as_secs_f64() * p.base.powi(n.min(20) as i32)).min(p.max_backoff.as_secs_f64());
        let jitter = p.jitter.0 + (p.jitter.1 - p.jitter.0) * unit.clamp(0.0, 1.0);
        Duration::from_secs_f64((raw * jitter).max(0.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BreakerParams {
        BreakerParams {
            interval: Duration::from_secs(30),
            failure_threshold: 3,
            open_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(120),
            confirmations: 2,
            base: 2.0,
            jitter: (0.8, 1.2),
        }
    }

    #[test]
    fn opens_after_threshold_and_recovers_after_confirmations() {
        let t0 = Instant::now();
        let mut b = Breaker::new(params());
        assert_eq!(b.on_success(), Transition::FirstContact);
        assert_eq!(b.next_delay(t0, 0.5), Duration::from_secs(30));
        assert_eq!(b.on_failure(t0), Transition::None);
        assert_eq!(b.on_failure(t0), Transition::None);
        assert_eq!(b.state, BreakerState::Closed);
        assert_eq!(b.on_failure(t0), Transition::Opened);
        assert_eq!(b.state, BreakerState::Open);
        assert_eq!(b.activations, 1);
        assert!(!b.should_probe(t0 + Duration::from_secs(59)));
        assert_eq!(b.next_delay(t0 + Duration::from_secs(50), 0.5), Duration::from_secs(10));
        assert!(b.should_probe(t0 + Duration::from_secs(60)));
        assert_eq!(b.state, BreakerState::HalfOpen);
        assert_eq!(b.next_delay(t0, 0.5), Duration::from_secs(5));
        assert_eq!(b.on_success(), Transition::None);
        assert_eq!(b.state, BreakerState::HalfOpen);
        assert_eq!(b.on_success(), Transition::Recovered);
        assert_eq!(b.state, BreakerState::Closed);
        assert_eq!((b.consecutive_failures, b.recoveries), (0, 1));
    }

    #[test]
    fn half_open_failure_reopens() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerParams { failure_threshold: 1, ..params() });
        assert_eq!(b.on_failure(t0), Transition::Opened);
        let t1 = t0 + Duration::from_secs(61);
        assert!(b.should_probe(t1));
        assert_eq!(b.on_success(), Transition::None);
        assert_eq!(b.on_failure(t1), Transition::Opened);
        assert_eq!(b.state, BreakerState::Open);
        assert_eq!(b.activations, 2);
        assert!(!b.should_probe(t1 + Duration::from_secs(30)));
    }

    #[test]
    fn recovery_below_threshold_is_reported() {
        let t0 = Instant::now();
        let mut b = Breaker::new(params());
        b.on_success();
        b.on_failure(t0);
        assert_eq!(b.on_success(), Transition::Recovered);
        assert_eq!(b.on_success(), Transition::None);
    }

    #[test]
    fn backoff_formula() {
        let b = Breaker::new(params());
        // 30 × 2 = 60 s × jitter 0.8 .. 1.2
        assert_eq!(b.backoff(1, 0.0), Duration::from_secs(48));
        assert_eq!(b.backoff(1, 1.0), Duration::from_secs(72));
        // capped at 120 s
        assert_eq!(b.backoff(5, 0.5), Duration::from_secs(120));
        let tiny = Breaker::new(BreakerParams { interval: Duration::from_millis(1), ..params() });
        assert_eq!(tiny.backoff(1, 0.0), Duration::from_millis(100));
    }
}
