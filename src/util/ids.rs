//! Random identifiers: session and recording UUIDs, API keys, the generated JWT secret, correlation ids.
//!
//! Bytes come from the kernel's CSPRNG through the `getrandom(2)` system call (the `getrandom` crate), which needs
//! no file descriptor: at the open-file limit, where opening `/dev/urandom` fails, ids keep working. On Linux 3.17
//! and later the call blocks only until the pool is seeded at boot and then does not fail for a valid buffer
//! (EINTR is retried by the crate; EAGAIN needs `GRND_NONBLOCK`, which is not used). Only where the system call is
//! missing (older kernels) or blocked by a seccomp filter does the crate fall back to reading `/dev/urandom`, and
//! only there can the functions below see an error.
//!
//! Secrets ([`random_bytes`], [`random_alnum`]) return that error to their caller. Labels that need to be unique
//! but not secret ([`uuid_v4`], [`short_id`], [`nonsecret_bytes`]) keep an infallible signature: should the kernel
//! ever refuse, a value from the clock and a process-wide counter stands in and one ERROR is logged, rather than a
//! request failing or a worker thread panicking.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Fills `buf` from the kernel's CSPRNG (for secrets: keys, the JWT secret).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|e| match e.raw_os_error() {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::other(format!("no random bytes from the kernel: {e}")),
    })
}

/// Random bytes for values that must be unique but need not be secret (ids, backoff jitter). Never fails.
pub fn nonsecret_bytes(buf: &mut [u8]) {
    if let Err(e) = random_bytes(buf) {
        static LOGGED: AtomicBool = AtomicBool::new(false);
        if !LOGGED.swap(true, Ordering::Relaxed) {
            log::error!("the kernel refused random bytes ({e}); ids fall back to clock and counter values");
        }
        unique_fallback(buf);
    }
}

/// Bytes that differ on every call in this process (a counter) and across processes (clock and pid).
fn unique_fallback(buf: &mut [u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = DefaultHasher::new();
        (t, n, std::process::id(), i).hash(&mut h);
        let len = chunk.len();
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..len]);
    }
}

/// A random (version 4) UUID in its canonical text form.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    nonsecret_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// `n` random characters from `[A-Za-z0-9]` (the Python API key alphabet), without modulo bias.
pub fn random_alnum(n: usize) -> io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        random_bytes(&mut buf)?;
        for &b in &buf {
            // 248 = 4 * 62: reject the tail so every character is equally likely.
            if b < 248 && out.len() < n {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// A short random hex id for correlation ids and temporary file names (`8` hex chars).
pub fn short_id() -> String {
    let mut b = [0u8; 4];
    nonsecret_bytes(&mut b);
    hex(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid_v4());
    }

    #[test]
    fn alnum_key() {
        let k = random_alnum(32).unwrap();
        assert_eq!(k.len(), 32);
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn fallback_values_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        unique_fallback(&mut a);
        unique_fallback(&mut b);
        assert_ne!(a, b);
        let mut odd = [0u8; 5];
        unique_fallback(&mut odd);
        assert_ne!(odd, [0u8; 5]);
    }
}
