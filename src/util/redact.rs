//! Credentials in URLs never leave the daemon: one place that hides them, used for every reply, log line and
//! notification that could carry a source URL (IP-camera URLs such as `rtsp://user:pass@host/stream`).
//!
//! [`url`] masks the password of one URL (`rtsp://user:***@host/stream`) and the values of query parameters that
//! carry secrets (`?password=...`); [`text`] does the same for every URL inside free text (an ffmpeg error line, a
//! log message). The logger runs every line through [`text`], so even a careless log call cannot leak a password.
#![forbid(unsafe_code)]

use std::borrow::Cow;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Query parameters whose values are secrets (compared case-insensitively).
const SECRET_PARAMS: [&str; 7] = ["password", "passwd", "pass", "pwd", "secret", "token", "auth"];

/// `url` with its password and secret query values masked. Anything that is not `scheme://...` comes back as is.
pub fn url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else { return Cow::Borrowed(url) };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let mut out: Option<String> = None;
    if let Some(at) = authority.rfind('@') {
        if let Some(colon) = authority[..at].find(':') {
            if colon + 1 < at {
                let mut s = String::with_capacity(url.len());
                s.push_str(&url[..rest_start + colon + 1]);
                s.push_str(MASK);
                s.push_str(&url[rest_start + at..]);
                out = Some(s);
            }
        }
    }
    let current = out.as_deref().unwrap_or(url);
    match mask_query(current) {
        Some(masked) => Cow::Owned(masked),
        None => out.map_or(Cow::Borrowed(url), Cow::Owned),
    }
}

/// The query string with secret values masked, or None when nothing changed.
fn mask_query(url: &str) -> Option<String> {
    let q = url.find('?')?;
    let end = url[q..].find('#').map_or(url.len(), |i| q + i);
    let mut changed = false;
    let pairs: Vec<String> = url[q + 1..end]
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() && SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) => {
                changed = true;
                format!("{k}={MASK}")
            }
            _ => pair.to_string(),
        })
        .collect();
    changed.then(|| format!("{}?{}{}", &url[..q], pairs.join("&"), &url[end..]))
}

/// `s` with every URL in it passed through [`url`]. A URL ends at whitespace, a quote or an angle bracket.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains("://") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        // The scheme: the letters (and `+.-`) right before `://`.
        let start = rest[..i]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
            .last()
            .map_or(i, |(j, _)| j);
        let len = rest[i..].find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'));
        let end = len.map_or(rest.len(), |l| i + l);
        let token = &rest[start..end];
        let masked = url(token);
        changed |= matches!(masked, Cow::Owned(_));
        out.push_str(&rest[..start]);
        out.push_str(&masked);
        rest = &rest[end..];
    }
    if !changed {
        return Cow::Borrowed(s);
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(url("rtsp://admin:secret@10.0.0.5:554/stream1"), "rtsp://admin:***@10.0.0.5:554/stream1");
        assert_eq!(url("rtsp://admin:p%40ss@cam/x"), "rtsp://admin:***@cam/x");
        // The last `@` of the authority ends the user information, as URL parsers read it.
        assert_eq!(url("rtsp://a:b@c@host/p@th"), "rtsp://a:***@host/p@th");
        assert_eq!(url("rtsp://[::1]:8554/cam"), "rtsp://[::1]:8554/cam");
        assert!(matches!(url("rtsp://user@host/s"), Cow::Borrowed(_)), "a user name alone is no secret");
        assert!(matches!(url("rtsp://user:@host/s"), Cow::Borrowed(_)));
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn secret_query_values_are_masked() {
        assert_eq!(
            url("rtsp://cam/live?user=admin&Password=hunter2&channel=1#x"),
            "rtsp://cam/live?user=admin&Password=***&channel=1#x"
        );
        assert_eq!(url("rtsp://u:p@cam/l?pwd=z"), "rtsp://u:***@cam/l?pwd=***");
        assert!(matches!(url("rtsp://cam/live?channel=1&password="), Cow::Borrowed(_)));
    }

    #[test]
    fn text_masks_every_url_inside() {
        let line = "Could not open rtsp://u:topsecret@127.0.0.1:9/x: refused; retry 'rtsp://v:other@h/y'";
        let out = text(line);
        assert_eq!(out, "Could not open rtsp://u:***@127.0.0.1:9/x: refused; retry 'rtsp://v:***@h/y'");
        assert!(!out.contains("topsecret") && !out.contains("other@"));
        assert!(matches!(text("nothing to see at http://host/x"), Cow::Borrowed(_)));
        assert_eq!(text("://a:b@c"), "://a:***@c");
        assert_eq!(text("x rtsp://a:b@"), "x rtsp://a:***@");
    }
}
