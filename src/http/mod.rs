//! A small, bounded HTTP/1.1 layer shared by the health/download server and the WebSocket listener (which answers
//! plain GETs for downloads and 404s for wrong paths on the same port).

pub mod accept;
pub mod routes;
pub mod server;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;

/// Limits of a request head, as named constants (tungstenite's handshake uses the same figures).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// Percent-decoded path without the query string.
    pub path: String,
    /// Raw query string (without `?`).
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v).unwrap_or_default())
        })
    }

    /// True for a WebSocket upgrade request.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }
}

/// The host part of an HTTP `Host` header value (`example:8002` → `example`, `[::1]:8002` → `::1`).
pub fn host_from_header(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next().map(str::to_string);
    }
    Some(v.rsplit_once(':').map_or(v, |(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { v }).to_string())
}

/// Read what a non-blocking socket holds now into `buf`, stopping once it is past `limit` bytes. `Ok(true)`: the
/// peer has shut its write side; what is in `buf` may still be a complete request, which is answered (HTTP/1.0 tools
/// and scripts half-close right after the head).
pub fn read_available(stream: &mut impl io::Read, buf: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > limit {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum ParseError {
    /// More bytes needed.
    Incomplete,
    /// Malformed or over the limits: answer 400 (or 431) and close.
    Bad(&'static str),
}

/// Parse a request head from `buf` (with `httparse`). Returns the request and the number of bytes it used.
pub fn parse_head(buf: &[u8]) -> Result<(Request, usize), ParseError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut slots);
    let used = match head.parse(buf) {
        Ok(httparse::Status::Complete(used)) if used <= MAX_HEAD_BYTES => used,
        Ok(httparse::Status::Complete(_)) => return Err(ParseError::Bad("request head too large")),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(ParseError::Bad("request head too large"))
        }
        Ok(httparse::Status::Partial) => return Err(ParseError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::Bad("too many headers")),
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine) => {
            return Err(ParseError::Bad("malformed header"))
        }
        Err(_) => return Err(ParseError::Bad("malformed request line")),
    };
    let (Some(method), Some(target)) = (head.method, head.path) else {
        return Err(ParseError::Bad("malformed request line"));
    };
    // Origin form only: no absolute URLs, no `*`.
    if !target.starts_with('/') {
        return Err(ParseError::Bad("malformed request line"));
    }
    let (raw_path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(raw_path).ok_or(ParseError::Bad("malformed path"))?;
    let mut headers = Vec::with_capacity(head.headers.len());
    for h in head.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| ParseError::Bad("header value is not UTF-8"))?;
        headers.push((h.name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok((Request { method: method.to_string(), path, query: query.to_string(), headers }, used))
}

/// Percent-decode (`percent-encoding`); `None` for invalid UTF-8 or an encoded NUL. A `%` not followed by two hex
/// digits stays as it is.
pub fn percent_decode(s: &str) -> Option<String> {
    // The crate passes a `%` without two hex digits through as is; in a request path that is a malformed escape.
    let bytes = s.as_bytes();
    let bad_escape = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if bad_escape {
        return None;
    }
    let out = percent_encoding::percent_decode_str(s).decode_utf8().ok()?;
    (!out.contains('\0')).then(|| out.into_owned())
}

/// Takes over a connection after its response head: gets the socket in blocking mode and owns it from then on.
pub type Handoff = Box<dyn FnOnce(TcpStream) + Send>;

/// A response body: bytes in memory, a byte range of a file streamed with a fixed buffer, or a hand-off of the
/// socket to a long-lived writer (a live stream) once the head is sent.
pub enum Body {
    Bytes(Vec<u8>),
    File {
        file: File,
        offset: u64,
        len: u64,
    },
    /// A body of unknown length that someone else writes (the live MJPEG stream): the server writes the status line
    /// and headers (no `Content-Length`, `Connection: close`), then gives the socket to the closure, in blocking
    /// mode without timeouts, and forgets it, so no server thread waits on a long-lived stream. Never called for
    /// `HEAD`, nor when the head could not be written: the closure is dropped unused (whatever it holds is released
    /// by its `Drop`).
    Handoff(Handoff),
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, headers: vec![("Content-Type".into(), content_type.into())], body: Body::Bytes(body.into()) }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string())
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body's length; `None` for a hand-off (its length is unknown).
    fn body_len(&self) -> Option<u64> {
        match &self.body {
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File { len, .. } => Some(*len),
            Body::Handoff(_) => None,
        }
    }

    /// Status line and headers. Every response closes its connection (`Connection: close`): no idle keep-alive
    /// connection ever waits on the server.
    pub fn head(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (n, v) in &self.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if let Some(len) = self.body_len() {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        head.into_bytes()
    }

    /// Write status line, headers and (unless `head_only`) the body, blocking. Used for short error answers; the
    /// HTTP server itself writes without blocking. A hand-off body is dropped (the connection just closes).
    pub fn write_to(self, out: &mut impl Write, head_only: bool) -> io::Result<()> {
        out.write_all(&self.head())?;
        if head_only {
            return out.flush();
        }
        match self.body {
            Body::Bytes(b) => out.write_all(&b)?,
            Body::Handoff(_) => {}
            Body::File { mut file, offset, len } => {
                file.seek(SeekFrom::Start(offset))?;
                let mut remaining = len;
                let mut buf = vec![0u8; 64 * 1024];
                while remaining > 0 {
                    let want = remaining.min(buf.len() as u64) as usize;
                    let n = file.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while sending"));
                    }
                    out.write_all(&buf[..n])?;
                    remaining -= n as u64;
                }
            }
        }
        out.flush()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_head() {
        let raw = b"GET /files/recordings/a%20b.mp4?token=x HTTP/1.1\r\nHost: h:8002\r\nRange: bytes=0-9\r\n\r\nrest";
        let (req, used) = parse_head(raw).unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/files/recordings/a b.mp4");
        assert_eq!(req.query_param("token").as_deref(), Some("x"));
        assert_eq!(req.header("range"), Some("bytes=0-9"));
        assert_eq!(&raw[used..], b"rest");
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\n").unwrap_err(), ParseError::Incomplete);
        assert!(matches!(parse_head(b"garbage\r\n\r\n"), Err(ParseError::Bad(_))));
        assert!(percent_decode("%00").is_none());
        assert!(percent_decode("%ff").is_none(), "not UTF-8");
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert!(percent_decode("a%zz").is_none(), "not an escape");
        assert!(percent_decode("a%2").is_none(), "cut short");
        assert!(matches!(parse_head(b"GET http://x/ HTTP/1.1\r\n\r\n"), Err(ParseError::Bad(_))));
        assert!(matches!(parse_head(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"), Err(ParseError::Bad(_))));
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("h{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse_head(raw.as_bytes()).unwrap_err(), ParseError::Bad("too many headers"));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse_head(big.as_bytes()).unwrap_err(), ParseError::Bad("request head too large"));
    }

    #[test]
    fn host_header_parsing() {
        assert_eq!(host_from_header("example:8002").as_deref(), Some("example"));
        assert_eq!(host_from_header("[::1]:8002").as_deref(), Some("::1"));
        assert_eq!(host_from_header("10.0.0.2").as_deref(), Some("10.0.0.2"));
    }
}
