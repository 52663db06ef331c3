//! A minimal RTSP/1.0 client for probing: one TCP connection, requests with `CSeq`, answers to Digest/Basic
//! challenges, strict deadlines, bounded replies. It never sets up media (no SETUP/PLAY): OPTIONS and DESCRIBE
//! tell whether a source answers and what it streams.
//!
//! Replies come from cameras and from whatever listens on a scanned port, so the parser assumes hostility: the
//! head is at most [`MAX_HEAD`] bytes with at most [`MAX_HEADERS`] lines, a body at most [`MAX_BODY`], every read
//! is bounded by the deadline, and malformed input is an error, never a panic.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::auth::{self, Authorizer};

pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_BODY: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 64;
/// Most bytes buffered while waiting for one reply (interleaved data included).
const MAX_BUFFER: usize = MAX_HEAD + MAX_BODY + 64 * 1024;
const USER_AGENT: &str = concat!("camera-service/", env!("CARGO_PKG_VERSION"));

/// Why a request got no usable reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Name resolution or TCP connect failed.
    Connect(String),
    Timeout,
    /// The peer closed the connection before a complete reply.
    Closed,
    /// The reply is not RTSP or breaks a limit.
    Protocol(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "cannot connect: {e}"),
            Failure::Timeout => f.write_str("no answer in time"),
            Failure::Closed => f.write_str("connection closed by the source"),
            Failure::Protocol(e) => write!(f, "not a valid RTSP reply: {e}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers_named(name).next()
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parse one reply from the front of `buf`: `Ok(None)` = incomplete, `Ok(Some((reply, bytes used)))`. Interleaved
/// binary data (`$`, channel, length) before a reply is skipped and counted in the bytes used.
pub fn parse_response(buf: &[u8]) -> Result<Option<(Response, usize)>, Failure> {
    let mut skip = 0;
    while buf.get(skip) == Some(&b'$') {
        let Some(len) = buf.get(skip + 2..skip + 4) else { return Ok(None) };
        skip += 4 + usize::from(u16::from_be_bytes([len[0], len[1]]));
    }
    let Some(rest) = buf.get(skip..) else { return Ok(None) };
    let Some(head_len) = head_end(rest) else {
        return if rest.len() > MAX_HEAD { Err(Failure::Protocol("header too large".into())) } else { Ok(None) };
    };
    if head_len > MAX_HEAD {
        return Err(Failure::Protocol("header too large".into()));
    }
    let head = String::from_utf8_lossy(&rest[..head_len]);
    let mut lines = head.lines();
    let (status, reason) = status_line(lines.next().unwrap_or(""))?;
    let headers = header_lines(lines)?;
    let length = match headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
        Some((_, v)) => v.trim().parse::<usize>().map_err(|_| Failure::Protocol("bad Content-Length".into()))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(Failure::Protocol(format!("body of {length} bytes is over the {MAX_BODY} byte limit")));
    }
    let Some(body) = rest.get(head_len..head_len + length) else { return Ok(None) };
    let reply = Response { status, reason, headers, body: body.to_vec() };
    Ok(Some((reply, skip + head_len + length)))
}

/// Bytes up to and including the blank line ending the head (CRLF CRLF, or bare LF LF from sloppy servers).
fn head_end(b: &[u8]) -> Option<usize> {
    let limit = b.len().min(MAX_HEAD + 4);
    (0..limit).find_map(|i| {
        if b[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if b[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

fn status_line(line: &str) -> Result<(u16, String), Failure> {
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("RTSP/") {
        return Err(Failure::Protocol("no RTSP status line".into()));
    }
    let code = parts.next().unwrap_or("");
    let status = match code.parse::<u16>() {
        Ok(c) if code.len() == 3 && (100..=999).contains(&c) => c,
        _ => return Err(Failure::Protocol("bad status code".into())),
    };
    let reason: String = parts.next().unwrap_or("").chars().take(128).collect();
    Ok((status, reason))
}

fn header_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<(String, String)>, Failure> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if headers.len() == MAX_HEADERS {
            return Err(Failure::Protocol(format!("more than {MAX_HEADERS} header lines")));
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(headers)
}

/// One connection to an RTSP server.
pub struct Session {
    stream: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
    deadline: Instant,
    credentials: Option<(String, String)>,
    authorizer: Option<Authorizer>,
}

impl Session {
    /// Connect to `host:port` before `deadline` (name resolution included).
    pub fn connect(host: &str, port: u16, deadline: Instant) -> Result<Session, Failure> {
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| Failure::Connect(format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut last = Failure::Connect(format!("no address for {host}"));
        for addr in addrs {
            let Some(left) = remaining(deadline) else { return Err(Failure::Timeout) };
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => return Ok(Session::over(stream, deadline)),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => last = Failure::Timeout,
                Err(e) => last = Failure::Connect(e.to_string()),
            }
        }
        Err(last)
    }

    fn over(stream: TcpStream, deadline: Instant) -> Session {
        let _ = stream.set_nodelay(true);
        Session { stream, buf: Vec::new(), cseq: 0, deadline, credentials: None, authorizer: None }
    }

    /// Credentials to answer challenges with (never sent unasked).
    pub fn with_credentials(mut self, creds: Option<(&str, &str)>) -> Session {
        self.credentials = creds.map(|(u, p)| (u.to_string(), p.to_string()));
        self
    }

    /// Move the deadline (one session may serve several probes, each with its own bound).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Send `method uri` and read its reply. A 401 is answered once with the credentials, if there are any.
    pub fn request(&mut self, method: &str, uri: &str) -> Result<Response, Failure> {
        let reply = self.exchange(method, uri)?;
        if reply.status != 401 || self.authorizer.is_some() {
            return Ok(reply);
        }
        let Some((user, password)) = self.credentials.clone() else { return Ok(reply) };
        let Some(challenge) = auth::challenges(reply.headers_named("www-authenticate")).into_iter().next() else {
            return Ok(reply);
        };
        self.authorizer = Some(Authorizer::new(challenge, &user, &password));
        self.exchange(method, uri)
    }

    fn exchange(&mut self, method: &str, uri: &str) -> Result<Response, Failure> {
        self.cseq += 1;
        let mut req = format!("{method} {uri} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: {USER_AGENT}\r\n", self.cseq);
        if method == "DESCRIBE" {
            req.push_str("Accept: application/sdp\r\n");
        }
        if let Some(a) = self.authorizer.as_mut() {
            req.push_str(&format!("Authorization: {}\r\n", a.header(method, uri)));
        }
        req.push_str("\r\n");
        self.write_all(req.as_bytes())?;
        loop {
            let reply = self.read_reply()?;
            // A late reply to an earlier request (after its deadline) is not this one's.
            match reply.header("cseq").map(|c| c.trim().parse::<u32>()) {
                Some(Ok(n)) if n != self.cseq => continue,
                _ => return Ok(reply),
            }
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let left = remaining(self.deadline).ok_or(Failure::Timeout)?;
        self.stream.set_write_timeout(Some(left)).map_err(|e| Failure::Connect(e.to_string()))?;
        self.stream.write_all(bytes).map_err(io_failure)
    }

    fn read_reply(&mut self) -> Result<Response, Failure> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((reply, used)) = parse_response(&self.buf)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            if self.buf.len() > MAX_BUFFER {
                return Err(Failure::Protocol(format!("no complete reply in {MAX_BUFFER} bytes")));
            }
            let left = remaining(self.deadline).ok_or(Failure::Timeout)?;
            self.stream.set_read_timeout(Some(left)).map_err(|e| Failure::Connect(e.to_string()))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Failure::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failure(e)),
            }
        }
    }
}

fn io_failure(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure::Timeout,
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Failure::Closed,
        _ => Failure::Connect(e.to_string()),
    }
}

/// Time left before `deadline`, None when it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests;
