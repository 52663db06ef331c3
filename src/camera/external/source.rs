//! What identifies an external RTSP source: its stream name (the camera id and MediaMTX path name), its URL
//! (credentials allowed, never shown: `Display` and `Debug` mask the password) and the RTP transport to use.
#![forbid(unsafe_code)]

use std::fmt;

use percent_encoding::percent_decode_str;
use serde::{Serialize, Serializer};

use crate::util::redact;

/// Longest stream name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest source URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// The RTSP port when the URL names none.
pub const DEFAULT_RTSP_PORT: u16 = 554;

/// Why a stream name is not acceptable, or None when it is: letters, digits, `_` and `-`, at most 64, and not one of
/// the id forms of other cameras (`cameraN`, `videoN`, `virtualN`, also with leading zeros or in another case, and
/// the bare words), so an id always names one camera.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!("must be at most {MAX_NAME_LEN} characters, got {}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        return Some(format!("may contain only letters, digits, '_' and '-', got {c:?} in {name:?}"));
    }
    if is_reserved(name) {
        return Some(format!("{name:?} is reserved for USB and virtual cameras (cameraN, videoN, virtualN)"));
    }
    None
}

/// `camera`, `video`, `virtual`, optionally followed by digits, in any case.
fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["camera", "video", "virtual"]
        .iter()
        .any(|p| lower.strip_prefix(p).is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit())))
}

/// How the RTP media of a source travels (RTSP control always uses TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    /// Whatever the reader negotiates (MediaMTX and ffmpeg try UDP, then TCP).
    #[default]
    Auto,
    Tcp,
    Udp,
}

impl Transport {
    /// `None` or `""` → automatic; `tcp` / `udp`.
    pub fn parse(s: Option<&str>) -> Result<Transport, String> {
        match s.map(str::trim) {
            None | Some("") => Ok(Transport::Auto),
            Some("tcp") => Ok(Transport::Tcp),
            Some("udp") => Ok(Transport::Udp),
            Some(other) => Err(format!("expected \"tcp\" or \"udp\", got {other:?}")),
        }
    }

    /// The configured word, None for automatic.
    pub fn as_option(self) -> Option<&'static str> {
        match self {
            Transport::Auto => None,
            Transport::Tcp => Some("tcp"),
            Transport::Udp => Some("udp"),
        }
    }
}

/// An `rtsp://` source URL, parsed. `Display`/`Debug`/`Serialize` show it with the password masked; only
/// [`SourceUrl::expose`] gives the real text, for the places that must connect with it.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceUrl {
    raw: String,
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    /// `rtsp://host[:port]/path?query`: the URL without user information, as sent in requests.
    request_uri: String,
}

impl SourceUrl {
    pub fn parse(s: &str) -> Result<SourceUrl, String> {
        if s.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
            return Err("must not contain spaces, control or non-ASCII characters (percent-encode them)".into());
        }
        let (scheme, rest) = s.split_once("://").ok_or("expected rtsp://host[:port]/path")?;
        if !scheme.eq_ignore_ascii_case("rtsp") {
            return Err(format!("only rtsp:// sources are supported, got {scheme}://"));
        }
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_len);
        if tail.contains('#') {
            return Err("must not contain a fragment (#); percent-encode '#' as %23".into());
        }
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => parse_userinfo(u)?,
            None => (None, None),
        };
        let (host, port) = parse_hostport(hostport)?;
        let path = if tail.is_empty() { "/" } else { tail };
        let request_uri = format!("rtsp://{hostport}{path}");
        Ok(SourceUrl { raw: s.to_string(), host, port, user, password, request_uri })
    }

    /// The real URL, credentials included: only for MediaMTX `source`, ffmpeg inputs and the private store.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL with the password masked (what replies, logs and notifications show).
    pub fn redacted(&self) -> String {
        redact::url(&self.raw).into_owned()
    }

    /// The host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL as sent in RTSP requests: no user information.
    pub fn request_uri(&self) -> &str {
        &self.request_uri
    }

    /// User name and password (percent-decoded) when the URL carries them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.user.as_deref().map(|u| (u, self.password.as_deref().unwrap_or("")))
    }

    /// True when both name the same stream as the same user (host case, default port and password do not
    /// matter).
    pub fn same_source(&self, other: &SourceUrl) -> bool {
        self.same_location(other) && self.user == other.user
    }

    /// True when both point at the same host, port, path and query, whoever the user.
    pub fn same_location(&self, other: &SourceUrl) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
            && self.path_and_query() == other.path_and_query()
    }

    fn path_and_query(&self) -> &str {
        let after_scheme = &self.request_uri["rtsp://".len()..];
        after_scheme.find(['/', '?']).map_or("/", |i| &after_scheme[i..])
    }
}

/// `user[:password]`, each percent-decoded; characters that would make the URL ambiguous must be encoded.
/// Errors never quote the URL: a malformed one may hold a password in any of its parts.
fn parse_userinfo(u: &str) -> Result<(Option<String>, Option<String>), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:%".contains(c);
    if !u.chars().all(allowed) {
        return Err("the user name or password holds a character that must be percent-encoded \
                    (e.g. '@' as %40, '/' as %2F, '\"' as %22)"
            .into());
    }
    let decode = |part: &str| -> Result<String, String> {
        check_percent(part)?;
        percent_decode_str(part)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| "user name and password must be UTF-8 once percent-decoded".to_string())
    };
    match u.split_once(':') {
        Some((user, pass)) => Ok((Some(decode(user)?), Some(decode(pass)?))),
        None => Ok((Some(decode(u)?), None)),
    }
}

fn check_percent(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let ok = b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit();
        if !ok {
            return Err("malformed percent-encoding in the user information".into());
        }
    }
    Ok(())
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn parse_hostport(hp: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("unterminated IPv6 address")?;
        v6.parse::<std::net::Ipv6Addr>().map_err(|_| "the host in brackets is not an IPv6 address")?;
        match after {
            "" => (v6, None),
            p => (v6, Some(p.strip_prefix(':').ok_or("expected ':' and a port after the IPv6 address")?)),
        }
    } else {
        match hp.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    if !hp.starts_with('[') && !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
        return Err(
            "the host is not a valid host name (an unencoded '/' in a password ends the host part early)".into()
        );
    }
    let port = match port {
        None | Some("") => DEFAULT_RTSP_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.len() <= 5 => n,
            _ => return Err("the port is not a number in 1..65535".into()),
        },
    };
    Ok((host.to_string(), port))
}

impl fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact::url(&self.raw))
    }
}

impl fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceUrl({self})")
    }
}

impl Serialize for SourceUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["front_door", "Cam-2", "x", "cameras", "camera_0", "videos1", "a".repeat(64).as_str()] {
            assert_eq!(name_problem(ok), None, "{ok}");
        }
        for bad in ["", "camera0", "Camera12", "video3", "virtual0", "camera01", "VIRTUAL", "camera", "a b", "a/b"] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
        assert!(name_problem("/dev/video0").is_some());
        assert!(name_problem(&"a".repeat(65)).unwrap().contains("at most 64"));
        assert!(name_problem("über").is_some());
    }

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let u = SourceUrl::parse("rtsp://admin:s%40cret@192.168.1.20/Streaming/Channels/101?tr=1").unwrap();
        assert_eq!((u.host(), u.port()), ("192.168.1.20", 554));
        assert_eq!(u.credentials(), Some(("admin", "s@cret")));
        assert_eq!(u.request_uri(), "rtsp://192.168.1.20/Streaming/Channels/101?tr=1");
        assert_eq!(u.to_string(), "rtsp://admin:***@192.168.1.20/Streaming/Channels/101?tr=1");
        assert!(!format!("{u:?}").contains("cret"));
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"rtsp://admin:***@192.168.1.20/Streaming/Channels/101?tr=1\"");
        assert!(u.expose().contains("s%40cret"));

        let v6 = SourceUrl::parse("RTSP://[::1]:8554").unwrap();
        assert_eq!((v6.host(), v6.port(), v6.request_uri()), ("::1", 8554, "rtsp://[::1]:8554/"));
        assert_eq!(SourceUrl::parse("rtsp://user@cam:7000/x").unwrap().credentials(), Some(("user", "")));
    }

    #[test]
    fn bad_urls_say_why() {
        for (bad, why) in [
            ("http://cam/x", "only rtsp://"),
            ("rtsps://cam/x", "only rtsp://"),
            ("cam/x", "expected rtsp://"),
            ("rtsp://", "no host"),
            ("rtsp://:554/x", "no host"),
            ("rtsp://cam:0/x", "port"),
            ("rtsp://cam:70000/x", "port"),
            ("rtsp://cam:x/x", "port"),
            ("rtsp://a:b/c@cam/x", "port"), // '/' in the password must be encoded: the host part is then `a:b`
            ("rtsp://a:b#c@cam/x", "fragment"),
            ("rtsp://a:b%4@cam/x", "percent"),
            ("rtsp://a:b c@cam/x", "spaces"),
            ("rtsp://ca m/x", "spaces"),
            ("rtsp://[::1/x", "IPv6"),
            ("rtsp://[zz]/x", "IPv6"),
            ("rtsp://a\"b@cam/x", "percent-encoded"),
            ("rtsp://cam!/x", "host name"),
        ] {
            let e = SourceUrl::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // No error quotes the URL: with an unencoded '/', "pw" reads as the port and "c" starts the path.
        for leaky in ["rtsp://user:pw/c@cam/x", "rtsp://user:p\"w@cam/x", "rtsp://pw!x@[zz]/x", "rtsp://u:pw@ho$t/"] {
            let e = SourceUrl::parse(leaky).unwrap_err();
            assert!(!e.contains("pw") && !e.contains("zz") && !e.contains("ho$t"), "{leaky}: {e}");
        }
        assert!(SourceUrl::parse(&format!("rtsp://cam/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn same_source_ignores_password_and_case() {
        let a = SourceUrl::parse("rtsp://u:one@CAM.local/live").unwrap();
        let b = SourceUrl::parse("rtsp://u:two@cam.local:554/live").unwrap();
        let c = SourceUrl::parse("rtsp://u:one@cam.local/live2").unwrap();
        assert!(a.same_source(&b) && !a.same_source(&c));
    }

    #[test]
    fn transports() {
        assert_eq!(Transport::parse(None), Ok(Transport::Auto));
        assert_eq!(Transport::parse(Some("udp")), Ok(Transport::Udp));
        assert!(Transport::parse(Some("http")).is_err());
        assert_eq!(Transport::Tcp.as_option(), Some("tcp"));
    }
}
