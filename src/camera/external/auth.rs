//! RTSP authentication: the server's `WWW-Authenticate` challenges and the `Authorization` header answering them —
//! Digest (MD5, SHA-256 and their `-sess` forms, with `qop=auth` or the older form without qop), else Basic.
//! Credentials are sent only to a server that asked for them.
#![forbid(unsafe_code)]

use base64::Engine;
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::util::ids::hex;

/// Longest challenge header considered.
const MAX_CHALLENGE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: Option<&str>) -> Option<Algorithm> {
        Some(match s.map(str::to_ascii_uppercase).as_deref() {
            None | Some("MD5") => Algorithm::Md5,
            Some("MD5-SESS") => Algorithm::Md5Sess,
            Some("SHA-256") => Algorithm::Sha256,
            Some("SHA-256-SESS") => Algorithm::Sha256Sess,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, s: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(s.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(s.as_bytes())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Challenge {
    Basic,
    Digest { realm: String, nonce: String, opaque: Option<String>, algorithm: Algorithm, qop_auth: bool },
}

/// Every challenge this client can answer, from all `WWW-Authenticate` values, best first (Digest before Basic).
pub fn challenges<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for v in values.filter(|v| v.len() <= MAX_CHALLENGE) {
        for (scheme, params) in split_challenges(v) {
            let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
            if scheme.eq_ignore_ascii_case("basic") {
                out.push(Challenge::Basic);
            } else if scheme.eq_ignore_ascii_case("digest") {
                let (Some(realm), Some(nonce)) = (get("realm"), get("nonce")) else { continue };
                let Some(algorithm) = Algorithm::parse(get("algorithm")) else { continue };
                let qop_auth = get("qop").is_some_and(|q| q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")));
                let (realm, nonce, opaque) = (realm.to_string(), nonce.to_string(), get("opaque").map(String::from));
                out.push(Challenge::Digest { realm, nonce, opaque, algorithm, qop_auth });
            }
        }
    }
    // Prefer SHA-256 over MD5 digests, any digest over Basic.
    out.sort_by_key(|c| match c {
        Challenge::Digest { algorithm: Algorithm::Sha256 | Algorithm::Sha256Sess, .. } => 0,
        Challenge::Digest { .. } => 1,
        Challenge::Basic => 2,
    });
    out
}

/// `Scheme k=v, k="v", Scheme2 ...` → [(scheme, params)]. A token not followed by `=` starts a new challenge.
fn split_challenges(v: &str) -> Vec<(String, Vec<(String, String)>)> {
    let b = v.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < b.len() && set.contains(&b[*i]) {
            *i += 1;
        }
    };
    while i < b.len() {
        skip(&mut i, b" \t,");
        let start = i;
        while i < b.len() && !b" \t,=".contains(&b[i]) {
            i += 1;
        }
        if start == i {
            i += 1; // a stray '='
            continue;
        }
        let token = v[start..i].to_string();
        skip(&mut i, b" \t");
        if i < b.len() && b[i] == b'=' {
            i += 1;
            skip(&mut i, b" \t");
            let value = read_value(v, &mut i);
            if let Some(last) = out.last_mut() {
                last.1.push((token, value));
            }
        } else {
            out.push((token, Vec::new()));
        }
    }
    out
}

/// A quoted string (backslash escapes) or a token, starting at `i`.
fn read_value(v: &str, i: &mut usize) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    if *i < b.len() && b[*i] == b'"' {
        *i += 1;
        while *i < b.len() && b[*i] != b'"' {
            if b[*i] == b'\\' && *i + 1 < b.len() {
                *i += 1;
            }
            out.push(b[*i]);
            *i += 1;
        }
        *i += 1;
    } else {
        while *i < b.len() && !b" \t,".contains(&b[*i]) {
            out.push(b[*i]);
            *i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers one challenge for every following request on a connection.
pub struct Authorizer {
    challenge: Challenge,
    user: String,
    password: String,
    nc: u32,
    cnonce: String,
}

impl Authorizer {
    pub fn new(challenge: Challenge, user: &str, password: &str) -> Authorizer {
        // A client nonce must be unique and unpredictable, not a stored secret: the infallible random id serves.
        let cnonce = crate::util::ids::uuid_v4().replace('-', "");
        Authorizer { challenge, user: user.to_string(), password: password.to_string(), nc: 0, cnonce }
    }

    /// The `Authorization` value for `method uri`.
    pub fn header(&mut self, method: &str, uri: &str) -> String {
        match &self.challenge {
            Challenge::Basic => {
                let raw = format!("{}:{}", self.user, self.password);
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
            }
            Challenge::Digest { realm, nonce, opaque, algorithm, qop_auth } => {
                self.nc += 1;
                let nc = format!("{:08x}", self.nc);
                let response = digest_response(
                    *algorithm,
                    (&self.user, realm, &self.password),
                    (method, uri),
                    nonce,
                    qop_auth.then_some((nc.as_str(), self.cnonce.as_str())),
                );
                let mut h = format!(
                    "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\"",
                    quote(&self.user),
                    quote(realm),
                    quote(nonce),
                    quote(uri)
                );
                if *algorithm != Algorithm::Md5 {
                    h.push_str(&format!(", algorithm={}", algorithm.name()));
                }
                if let Some(o) = opaque {
                    h.push_str(&format!(", opaque=\"{}\"", quote(o)));
                }
                if *qop_auth {
                    h.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{}\"", self.cnonce));
                }
                h
            }
        }
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// RFC 7616 `response` (RFC 2069 form when `qop` is None).
fn digest_response(
    alg: Algorithm,
    (user, realm, password): (&str, &str, &str),
    (method, uri): (&str, &str),
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let mut ha1 = alg.hash(&format!("{user}:{realm}:{password}"));
    if matches!(alg, Algorithm::Md5Sess | Algorithm::Sha256Sess) {
        let cnonce = qop.map_or("", |(_, c)| c);
        ha1 = alg.hash(&format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => alg.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples() {
        // RFC 2617 §3.5.
        let r = digest_response(
            Algorithm::Md5,
            ("Mufasa", "testrealm@host.com", "Circle Of Life"),
            ("GET", "/dir/index.html"),
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        // RFC 7616 §3.9.1, MD5 and SHA-256.
        let user = ("Mufasa", "http-auth@example.org", "Circle of Life");
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let qop = Some(("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"));
        let req = ("GET", "/dir/index.html");
        assert_eq!(digest_response(Algorithm::Md5, user, req, nonce, qop), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            digest_response(Algorithm::Sha256, user, req, nonce, qop),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn challenges_are_parsed_and_ranked() {
        let c = challenges(
            ["Basic realm=\"cam\"", "Digest realm=\"c\\\"am\", nonce=\"abc\", qop=\"auth,auth-int\", opaque=xyz"]
                .into_iter(),
        );
        assert_eq!(
            c,
            vec![
                Challenge::Digest {
                    realm: "c\"am".into(),
                    nonce: "abc".into(),
                    opaque: Some("xyz".into()),
                    algorithm: Algorithm::Md5,
                    qop_auth: true
                },
                Challenge::Basic
            ]
        );
        // Two challenges in one header; an unknown algorithm and a digest without nonce are skipped.
        let c = challenges(["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256, Basic realm=\"r\""].into_iter());
        assert!(matches!(c[0], Challenge::Digest { algorithm: Algorithm::Sha256, qop_auth: false, .. }));
        assert_eq!(c[1], Challenge::Basic);
        assert!(challenges(["Digest realm=r, nonce=n, algorithm=SHA-512-256", "Digest realm=r"].into_iter()).is_empty());
        assert!(challenges(["Negotiate", "", "=,,=\"", "Digest nonce=\"unterminated"].into_iter()).is_empty());
    }

    #[test]
    fn headers() {
        let mut b = Authorizer::new(Challenge::Basic, "user", "p:ss");
        assert_eq!(b.header("DESCRIBE", "rtsp://h/x"), "Basic dXNlcjpwOnNz");
        let ch = Challenge::Digest {
            realm: "r".into(),
            nonce: "n".into(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop_auth: false,
        };
        let h = Authorizer::new(ch, "u", "p").header("DESCRIBE", "rtsp://h/x");
        let want = digest_response(Algorithm::Md5, ("u", "r", "p"), ("DESCRIBE", "rtsp://h/x"), "n", None);
        assert_eq!(
            h,
            format!("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"rtsp://h/x\", response=\"{want}\"")
        );
    }
}
