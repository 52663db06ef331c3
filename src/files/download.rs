//! `GET`/`HEAD /files/recordings/<name>` and `/files/snapshots/<name>`: served on both
//! the WebSocket port and the health port by the HTTP layers, which call [`respond`] for paths accepted by
//! [`is_download_path`] and stream the returned `Body::File` themselves.
//!
//! Unlike the Python service, downloads require credentials: `Authorization: Bearer <jwt>` or `X-API-Key: <key>`
//! with at least viewer role, or a short-lived signed URL (`?expires=…&signature=…`, see
//! [`crate::auth::signed_url`]) for browser elements that cannot send headers. `Range` requests (single range)
//! answer 206 so players can seek.

use std::time::{SystemTime, UNIX_EPOCH};

use super::names::{self, Lookup};
use super::Files;
use crate::auth::signed_url::UrlSigner;
use crate::auth::{Authenticator, Identity, Role};
use crate::error::FileKind;
use crate::http::{Body, Request, Response};

const RECORDINGS_PREFIX: &str = "/files/recordings/";
const SNAPSHOTS_PREFIX: &str = "/files/snapshots/";

/// True for the paths [`respond`] serves.
pub fn is_download_path(path: &str) -> bool {
    path.starts_with(RECORDINGS_PREFIX) || path.starts_with(SNAPSHOTS_PREFIX)
}

/// A credential presented with a download request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Credential<'a> {
    Jwt(&'a str),
    ApiKey(&'a str),
    /// A signed URL: the percent-decoded path and the raw query carrying `expires` and `signature`.
    SignedUrl {
        path: &'a str,
        query: &'a str,
    },
}

/// Serve a download, checking credentials with `auth`.
pub fn respond(files: &Files, auth: &Authenticator, req: &Request) -> Response {
    respond_with(files, req, verifier(auth))
}

/// The identity behind a request's `Authorization` / `X-API-Key` header or signed URL, if valid, unexpired and at
/// least viewer (other authenticated HTTP routes, such as the live view, use the same rules as downloads).
pub fn request_identity(auth: &Authenticator, req: &Request) -> Option<Identity> {
    authorize(req, verifier(auth))
}

fn verifier(auth: &Authenticator) -> impl Fn(Credential) -> Option<Identity> + '_ {
    move |c| match c {
        Credential::Jwt(t) => auth.verify_jwt(t),
        Credential::ApiKey(k) => auth.verify_api_key(k),
        Credential::SignedUrl { path, query } => match auth.url_signer().verify(path, query, now_secs()) {
            Ok(()) => Some(Identity {
                user_id: "signed-url".into(),
                role: Role::Viewer,
                method: "signed_url",
                expires_at: None,
                key_id: None,
            }),
            Err(why) => {
                log::debug!("signed URL for {path} refused: {why:?}");
                None
            }
        },
    }
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Serve a download with an injectable credential check.
pub fn respond_with(files: &Files, req: &Request, verify: impl Fn(Credential) -> Option<Identity>) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "Method not allowed").with_header("Allow", "GET, HEAD");
    }
    let (kind, name) = if let Some(n) = req.path.strip_prefix(RECORDINGS_PREFIX) {
        (FileKind::Recording, n)
    } else if let Some(n) = req.path.strip_prefix(SNAPSHOTS_PREFIX) {
        (FileKind::Snapshot, n)
    } else {
        return Response::text(404, "Not found");
    };
    let Some(who) = authorize(req, verify) else {
        return Response::text(401, "Unauthorized").with_header("WWW-Authenticate", "Bearer");
    };
    if names::check(name).is_err() {
        return Response::text(400, "Invalid filename");
    }
    let path = match names::resolve(files.dir(kind), name) {
        Ok(Lookup::File(path, _)) => path,
        Ok(Lookup::Missing | Lookup::NotAFile) => return Response::text(404, "File not found"),
        Ok(Lookup::Escapes) => return Response::text(400, "Invalid filename"),
        Err(e) => return io_failure(&e),
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => return io_failure(&e),
    };
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => return io_failure(&e),
    };
    let base = Response { status: 200, headers: Vec::new(), body: Body::Bytes(Vec::new()) }
        .with_header("Content-Type", content_type(kind, name))
        .with_header("Content-Disposition", disposition(name))
        .with_header("Accept-Ranges", "bytes");
    let (status, offset, count, resp) = match parse_range(req.header("range"), len) {
        Range::Full => (200, 0, len, base),
        Range::Part(start, end) => {
            let r = base.with_header("Content-Range", format!("bytes {start}-{end}/{len}"));
            (206, start, end - start + 1, r)
        }
        Range::Unsatisfiable => {
            return Response::text(416, "Range not satisfiable").with_header("Content-Range", format!("bytes */{len}"))
        }
    };
    log::info!("download {} by {} ({} bytes, status {status})", path.display(), who.user_id, count);
    Response { status, body: Body::File { file, offset, len: count }, ..resp }
}

fn io_failure(e: &std::io::Error) -> Response {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return Response::text(403, "Permission denied");
    }
    log::warn!("download failed: {e}");
    Response::text(500, "Internal server error")
}

/// The identity behind the request's credentials, if valid, unexpired and at least viewer.
fn authorize(req: &Request, verify: impl Fn(Credential) -> Option<Identity>) -> Option<Identity> {
    let bearer = req.header("authorization").and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
    });
    let api_key = req.header("x-api-key").map(str::trim).filter(|k| !k.is_empty());
    let now = now_secs();
    let valid = |id: &Identity| id.role >= Role::Viewer && id.expires_at.is_none_or(|exp| exp > now);
    let signed =
        UrlSigner::is_signed(&req.query).then_some(Credential::SignedUrl { path: &req.path, query: &req.query });
    bearer
        .and_then(|t| verify(Credential::Jwt(t)))
        .filter(valid)
        .or_else(|| api_key.and_then(|k| verify(Credential::ApiKey(k))).filter(valid))
        .or_else(|| signed.and_then(&verify).filter(valid))
}

fn content_type(kind: FileKind, name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" | "fmp4" | "m4s" => "video/mp4",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "mov" => "video/quicktime",
        "ts" => "video/mp2t",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "bmp" => "image/bmp",
        "gif" => "image/gif",
        "tif" | "tiff" => "image/tiff",
        _ => match kind {
            FileKind::Recording => "video/mp4",
            FileKind::Snapshot => "image/jpeg",
        },
    }
}

/// `attachment; filename="<name>"`, with an RFC 5987 `filename*` when the name is not plain ASCII.
fn disposition(name: &str) -> String {
    let plain: String = name.chars().map(|c| if c.is_ascii() && c != '"' { c } else { '_' }).collect();
    if plain == name {
        return format!("attachment; filename=\"{name}\"");
    }
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
}

/// What a `Range` header asks of a body of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// No (usable) range: the whole body, 200.
    Full,
    /// Inclusive byte positions, `start <= end < len`: 206.
    Part(u64, u64),
    /// A well-formed range that starts at or beyond the end: 416.
    Unsatisfiable,
}

/// One `bytes=` range (RFC 9110 §14.1.2). Malformed or multi-range headers are ignored (full body).
pub fn parse_range(header: Option<&str>, len: u64) -> Range {
    let Some(spec) = header.map(str::trim) else { return Range::Full };
    let Some((unit, set)) = spec.split_once('=') else { return Range::Full };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return Range::Full;
    }
    let Some((a, b)) = set.trim().split_once('-') else { return Range::Full };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match num(b) {
            Some(0) => Range::Unsatisfiable,
            Some(_) if len == 0 => Range::Unsatisfiable,
            Some(n) => Range::Part(len.saturating_sub(n), len - 1),
            None => Range::Full,
        },
        (false, _) => {
            let Some(start) = num(a) else { return Range::Full };
            let end = if b.is_empty() { Some(u64::MAX) } else { num(b) };
            match end {
                None => Range::Full,
                Some(end) if end < start => Range::Full,
                Some(_) if start >= len => Range::Unsatisfiable,
                Some(end) => Range::Part(start, end.min(len - 1)),
            }
        }
        (true, true) => Range::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Range::Part(0, 3));
        assert_eq!(parse_range(Some("bytes=4-"), 10), Range::Part(4, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Range::Part(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Range::Part(0, 9));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Range::Part(5, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Range::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Range::Full);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), Range::Full);
    }

    #[test]
    fn headers_for_names() {
        assert_eq!(content_type(FileKind::Snapshot, "a.PNG"), "image/png");
        assert_eq!(content_type(FileKind::Recording, "noext"), "video/mp4");
        assert_eq!(disposition("a.mp4"), "attachment; filename=\"a.mp4\"");
        assert_eq!(disposition("ä\".jpg"), "attachment; filename=\"__.jpg\"; filename*=UTF-8''%C3%A4%22.jpg");
    }
}
