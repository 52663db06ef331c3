//! Ports for the servers a test starts (the daemon, MediaMTX).
//!
//! A port is picked outside the kernel's ephemeral range, so no `bind(0)` and no outgoing connection of any process
//! is handed it between our check and the server's bind; ports are taken from a random starting point and never
//! twice in one test run, and each is checked free for TCP and UDP on 127.0.0.1 at the moment it is handed out.
//! Another process choosing the same port explicitly can still win the race: whoever binds it must retry on
//! "address already in use" (the daemon and MediaMTX harnesses do).

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lowest port handed out: below it live well-known services (and the defaults of the daemon and MediaMTX).
const LOWEST: u32 = 10_000;

/// The usable ports: [LOWEST, ephemeral start) when that is wide enough, else (ephemeral end, 65535].
fn window() -> (u32, u32) {
    static W: OnceLock<(u32, u32)> = OnceLock::new();
    *W.get_or_init(|| {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        let mut it = range.split_whitespace().filter_map(|v| v.parse::<u32>().ok());
        let (lo, hi) = (it.next().unwrap_or(32_768), it.next().unwrap_or(60_999));
        if lo >= LOWEST + 2_000 {
            (LOWEST, lo)
        } else if hi < 63_000 {
            (hi + 1, 65_536)
        } else {
            // The whole space is ephemeral: fall back to a high window and rely on the bind check and retries.
            (LOWEST, 65_536)
        }
    })
}

fn cursor() -> &'static AtomicU32 {
    static C: OnceLock<AtomicU32> = OnceLock::new();
    C.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let seed = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
        AtomicU32::new(seed)
    })
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

/// One port, free for TCP and UDP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    let (lo, hi) = window();
    let span = hi - lo;
    for _ in 0..span {
        let port = (lo + cursor().fetch_add(1, Ordering::Relaxed) % span) as u16;
        if is_free(port) {
            return port;
        }
    }
    panic!("no free port in {lo}..{hi}");
}

/// Two consecutive free ports, the first even (RTP and RTCP).
pub fn free_port_pair() -> (u16, u16) {
    let (lo, hi) = window();
    let span = (hi - lo) / 2;
    for _ in 0..span {
        let even = ((lo + 1) & !1) + 2 * (cursor().fetch_add(2, Ordering::Relaxed) / 2 % span);
        let (a, b) = (even as u16, (even + 1) as u16);
        if u32::from(b) < hi && is_free(a) && is_free(b) {
            return (a, b);
        }
    }
    panic!("no free port pair in {lo}..{hi}");
}
