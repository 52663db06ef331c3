//! Request statistics with fixed memory (the Python service kept every latency in a list that grew without bound)
//! and process figures from /proc.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;

/// Latency histogram buckets: bucket i holds latencies in [2^(i-1), 2^i) microseconds; the last is open-ended.
const BUCKETS: usize = 32;

#[derive(Default)]
pub struct MethodStats {
    pub count: AtomicU64,
    pub errors: AtomicU64,
    pub total_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl MethodStats {
    fn record(&self, dur: Duration, ok: bool) {
        let us = dur.as_micros().min(u64::MAX as u128) as u64;
        self.count.fetch_add(1, Relaxed);
        if !ok {
            self.errors.fetch_add(1, Relaxed);
        }
        self.total_us.fetch_add(us, Relaxed);
        let idx = (64 - us.leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[idx].fetch_add(1, Relaxed);
    }

    /// Upper bound (µs) of the bucket holding quantile `q` (0..1).
    pub fn quantile_us(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        quantile(&counts, q)
    }
}

fn quantile(counts: &[u64], q: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let target = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= target {
            return 1u64 << i;
        }
    }
    1u64 << (counts.len() - 1)
}

/// Process-wide counters. Per-method slots are indexed by the method table's index.
pub struct Metrics {
    methods: Vec<(&'static str, MethodStats)>,
    pub active_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub dropped_slow_clients: AtomicU64,
    pub notifications_sent: AtomicU64,
    cpu: Mutex<CpuSample>,
}

#[derive(Default, Clone, Copy)]
struct CpuSample {
    at: Option<std::time::Instant>,
    ticks: u64,
    percent: f64,
}

impl Metrics {
    pub fn new(method_names: &[&'static str]) -> Metrics {
        Metrics {
            methods: method_names.iter().map(|n| (*n, MethodStats::default())).collect(),
            active_connections: AtomicU64::new(0),
            total_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            dropped_slow_clients: AtomicU64::new(0),
            notifications_sent: AtomicU64::new(0),
            cpu: Mutex::new(CpuSample::default()),
        }
    }

    /// The slot of a method's statistics (methods not named at construction have none).
    pub fn slot(&self, method: &str) -> Option<usize> {
        self.methods.iter().position(|(n, _)| *n == method)
    }

    pub fn record(&self, slot: usize, dur: Duration, ok: bool) {
        if let Some((_, s)) = self.methods.get(slot) {
            s.record(dur, ok);
        }
    }

    pub fn methods(&self) -> impl Iterator<Item = (&'static str, &MethodStats)> {
        self.methods.iter().map(|(n, s)| (*n, s))
    }

    /// (requests, errors, total µs) over all methods.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.methods.iter().fold((0, 0, 0), |(c, e, t), (_, s)| {
            (c + s.count.load(Relaxed), e + s.errors.load(Relaxed), t + s.total_us.load(Relaxed))
        })
    }

    /// Latency quantile over all methods, µs (bucket upper bound).
    pub fn overall_quantile_us(&self, q: f64) -> u64 {
        let mut counts = [0u64; BUCKETS];
        for (_, s) in &self.methods {
            for (i, b) in s.buckets.iter().enumerate() {
                counts[i] += b.load(Relaxed);
            }
        }
        quantile(&counts, q)
    }

    /// Process CPU % (100 = one core) since the previous call (or since start on the first call).
    pub fn cpu_percent(&self) -> f64 {
        let Some(ticks) = proc_cpu_ticks() else { return 0.0 };
        let now = std::time::Instant::now();
        let mut s = self.cpu.lock();
        let hz = crate::sys::clock_ticks_per_sec();
        let (since, prev_ticks) = match s.at {
            Some(at) => (now.duration_since(at).as_secs_f64(), s.ticks),
            None => (process_uptime_secs().unwrap_or(0.0), 0),
        };
        // Sample windows shorter than 1 s are too coarse at 100 Hz: keep the last figure.
        if since >= 1.0 {
            s.percent = (ticks.saturating_sub(prev_ticks)) as f64 / hz / since * 100.0;
            s.at = Some(now);
            s.ticks = ticks;
        }
        s.percent
    }
}

/// utime + stime of this process, in clock ticks.
pub fn proc_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn process_uptime_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let start_ticks: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    Some(uptime - start_ticks / crate::sys::clock_ticks_per_sec())
}

/// A field of /proc/self/status in kB (e.g. `VmRSS`), or `Threads`.
pub fn proc_status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Resident set size in bytes.
pub fn rss_bytes() -> u64 {
    proc_status_field("VmRSS").unwrap_or(0) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let m = Metrics::new(&["ping"]);
        for _ in 0..99 {
            m.record(0, Duration::from_micros(10), true);
        }
        m.record(0, Duration::from_micros(5000), false);
        assert_eq!(m.totals().0, 100);
        assert_eq!(m.totals().1, 1);
        assert!(m.overall_quantile_us(0.5) <= 16);
        assert!(m.overall_quantile_us(1.0) >= 4096);
        assert!(rss_bytes() > 0);
        assert!(proc_cpu_ticks().is_some());
    }
}
