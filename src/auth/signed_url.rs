//! Short-lived signed URLs for browser elements (`<img>`, `<video>`, `<a download>`), which cannot send an
//! `Authorization` header.
//!
//! A signed URL is the resource path plus `?expires=<unix seconds>&signature=<hex>`, where the signature is
//! HMAC-SHA256 over `"<percent-decoded path>\n<expires>"`. The key is derived from the daemon's JWT secret with a
//! fixed label, so a URL signature can never be replayed as (or confused with) a JWT signature, and rotating the
//! JWT secret invalidates every URL too. The JWT itself never appears in a URL (it would end up in proxy logs and
//! browser history with its full lifetime); a signed URL opens exactly one path for a few minutes.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How long an issued URL stays valid: long enough to start a download or play a clip (a player that outlives it
/// asks for a fresh URL), short enough that a leaked URL is soon useless.
pub const TTL_SECS: i64 = 600;

/// Label mixed into the key derivation (domain separation from the JWT signatures made with the same secret).
const KEY_LABEL: &[u8] = b"camera-service signed-url v1";

/// Why a signed URL was refused (all answer 401; the reason is for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `expires` or `signature` missing or malformed.
    Malformed,
    /// Past its expiry.
    Expired,
    /// Valid longer than any URL this daemon issues: not one of ours.
    TooLong,
    /// The signature does not match the path and expiry.
    BadSignature,
}

/// Signs and verifies URLs with a key derived from the JWT secret. Cheap to clone.
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

impl UrlSigner {
    pub fn new(secret: &[u8]) -> UrlSigner {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(KEY_LABEL);
        UrlSigner { key: mac.finalize().into_bytes().into() }
    }

    fn mac(&self, path: &str, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query string (without `?`) that makes `path` (percent-decoded, as the HTTP layer hands it to routes)
    /// accessible until `expires` (seconds since the epoch).
    pub fn query(&self, path: &str, expires: i64) -> String {
        let sig = crate::util::ids::hex(&self.mac(path, expires).finalize().into_bytes());
        format!("expires={expires}&signature={sig}")
    }

    /// `url` (the encoded form of `path`) with a signature valid for [`TTL_SECS`] from `now`; returns the URL and
    /// its expiry.
    pub fn sign(&self, url: &str, path: &str, now: i64) -> (String, i64) {
        let expires = now + TTL_SECS;
        (format!("{url}?{}", self.query(path, expires)), expires)
    }

    /// Checks the `expires` and `signature` parameters of a raw query string against `path` at time `now`.
    pub fn verify(&self, path: &str, query: &str, now: i64) -> Result<(), Refusal> {
        let param =
            |name: &str| query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v));
        let expires: i64 = param("expires").and_then(|v| v.parse().ok()).ok_or(Refusal::Malformed)?;
        let sig = param("signature").and_then(unhex).ok_or(Refusal::Malformed)?;
        if expires <= now {
            return Err(Refusal::Expired);
        }
        if expires - now > TTL_SECS {
            return Err(Refusal::TooLong);
        }
        // Constant-time comparison.
        self.mac(path, expires).verify_slice(&sig).map_err(|_| Refusal::BadSignature)
    }

    /// True when the query carries signature parameters at all (requests without them need other credentials).
    pub fn is_signed(query: &str) -> bool {
        query.split('&').any(|kv| kv.starts_with("signature="))
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const PATH: &str = "/files/recordings/camera0_2025-01-15_14-30-00.mp4";

    #[test]
    fn a_fresh_signature_opens_its_path() {
        let s = UrlSigner::new(b"secret");
        let (url, exp) = s.sign(PATH, PATH, NOW);
        assert_eq!(exp, NOW + TTL_SECS);
        let query = url.split_once('?').unwrap().1;
        assert!(UrlSigner::is_signed(query));
        assert_eq!(s.verify(PATH, query, NOW), Ok(()));
        assert_eq!(s.verify(PATH, query, exp - 1), Ok(()));
    }

    #[test]
    fn expired_altered_foreign_and_malformed_signatures_are_refused() {
        let s = UrlSigner::new(b"secret");
        let q = s.query(PATH, NOW + 60);
        assert_eq!(s.verify(PATH, &q, NOW + 60), Err(Refusal::Expired));
        assert_eq!(s.verify(PATH, &q, NOW + 61), Err(Refusal::Expired));
        // A signature for one file does not open another.
        assert_eq!(s.verify("/files/recordings/other.mp4", &q, NOW), Err(Refusal::BadSignature));
        assert_eq!(s.verify("/files/snapshots/camera0_2025-01-15_14-30-00.mp4", &q, NOW), Err(Refusal::BadSignature));
        // A longer validity cannot be bought by editing `expires`.
        let pushed = q.replace(&format!("expires={}", NOW + 60), &format!("expires={}", NOW + 120));
        assert_eq!(s.verify(PATH, &pushed, NOW), Err(Refusal::BadSignature));
        // One flipped hex digit.
        let sig_at = q.find("signature=").unwrap() + "signature=".len();
        let mut altered = q.clone().into_bytes();
        altered[sig_at] = if altered[sig_at] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.verify(PATH, std::str::from_utf8(&altered).unwrap(), NOW), Err(Refusal::BadSignature));
        // Another daemon's secret.
        assert_eq!(UrlSigner::new(b"other").verify(PATH, &q, NOW), Err(Refusal::BadSignature));
        for bad in ["", "expires=x&signature=00", "signature=abc", &format!("expires={}", NOW + 60)] {
            assert_eq!(s.verify(PATH, bad, NOW), Err(Refusal::Malformed), "{bad}");
        }
    }

    #[test]
    fn validity_longer_than_issued_is_refused_even_when_signed() {
        let s = UrlSigner::new(b"secret");
        let q = s.query(PATH, NOW + TTL_SECS + 3600);
        assert_eq!(s.verify(PATH, &q, NOW), Err(Refusal::TooLong));
    }
}
