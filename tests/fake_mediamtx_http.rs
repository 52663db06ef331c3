//! The fake MediaMTX's HTTP/1.1 layer: accept loop, keep-alive connections, request parsing, fault injection
//! at the socket level (hang, RST, slow, close) and response writing.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::rules::error_body;
use super::{route, Fault, Inner, LoggedRequest, MAX_CONNECTIONS};
pub(super) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub(super) fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| pct_decode(v))
    }
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
    pub(super) headers: Vec<(String, String)>,
}

impl Reply {
    pub(super) fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=utf-8",
            body: v.to_string().into_bytes(),
            headers: vec![],
        }
    }
    pub(super) fn plain_404() -> Reply {
        Reply { status: 404, content_type: "text/plain", body: b"404 page not found".to_vec(), headers: vec![] }
    }
}

pub(super) fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn accept_loop(inner: Arc<Inner>, first: TcpListener) {
    let mut listener = Some(first);
    loop {
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        if inner.down.load(Ordering::SeqCst) {
            listener = None;
            inner.listening.store(false, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        let Some(l) = listener.as_ref() else {
            // SO_REUSEADDR (set by std on Unix) lets us take the same port again.
            match TcpListener::bind(inner.addr) {
                Ok(l) => {
                    listener = Some(l);
                    inner.listening.store(true, Ordering::SeqCst);
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
            continue;
        };
        let Ok((stream, _)) = l.accept() else { continue };
        if inner.stop.load(Ordering::SeqCst) || inner.down.load(Ordering::SeqCst) {
            continue;
        }
        if inner.conns.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            inner.conns.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let i = inner.clone();
        let spawned = thread::Builder::new().name("fake-mediamtx-conn".into()).spawn(move || {
            serve(&i, stream);
            i.conns.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            inner.conns.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve(inner: &Inner, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    while let Some(req) = read_request(inner, &mut stream, &mut buf) {
        inner.log.lock().push(LoggedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            body: req.body.clone(),
            headers: req.headers.clone(),
        });
        if !respond(inner, &mut stream, &req) {
            return;
        }
    }
}

fn read_request(inner: &Inner, stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                buf.drain(..end + 4 + len);
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_string(), q.to_string()),
                    None => (target, String::new()),
                };
                return Some(Request { method, path, query, headers, body });
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                if inner.stop.load(Ordering::SeqCst) || inner.down.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

fn take_faults(inner: &Inner, req: &Request) -> Vec<Fault> {
    let mut rules = inner.rules.lock();
    let mut out = Vec::new();
    for r in rules.iter_mut().filter(|r| r.scope.matches(req)) {
        if r.remaining != Some(0) {
            out.push(r.fault.clone());
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
        }
    }
    rules.retain(|r| r.remaining != Some(0));
    out
}

/// Answer one request. False: close the connection.
fn respond(inner: &Inner, stream: &mut TcpStream, req: &Request) -> bool {
    let faults = take_faults(inner, req);
    let has = |f: &dyn Fn(&Fault) -> bool| faults.iter().any(f);
    if has(&|f| *f == Fault::Hang) {
        hang(inner, stream);
        return false;
    }
    if has(&|f| *f == Fault::ResetBeforeReply) {
        reset(stream);
        return false;
    }
    for f in &faults {
        if let Fault::Slow(d) = f {
            thread::sleep(*d);
        }
    }
    let profile = *inner.profile.lock();
    let mut reply = if let Some(Fault::Status(code, msg)) = faults.iter().find(|f| matches!(f, Fault::Status(..))) {
        Reply::json(*code, &error_body(profile, msg))
    } else if let Some(Fault::Unauthorized { delay }) = faults.iter().find(|f| matches!(f, Fault::Unauthorized { .. }))
    {
        thread::sleep(*delay);
        let mut r = Reply::json(401, &error_body(profile, "authentication error"));
        if req.header("authorization").is_none() {
            r.headers.push(("WWW-Authenticate".into(), "Basic realm=\"mediamtx\"".into()));
        }
        r
    } else if has(&|f| *f == Fault::PlainNotFound) {
        Reply::plain_404()
    } else if has(&|f| *f == Fault::BadJson) {
        Reply {
            status: 200,
            content_type: "application/json; charset=utf-8",
            body: b"{\"items\":".to_vec(),
            headers: vec![],
        }
    } else {
        route(inner, req, profile)
    };
    if has(&|f| *f == Fault::EmptyBody200) && reply.status == 200 {
        reply.body.clear();
    }
    let close = has(&|f| *f == Fault::CloseAfterEachResponse)
        || req.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let slow_body = faults.iter().find_map(|f| if let Fault::SlowBody(d) = f { Some(*d) } else { None });
    write_reply(stream, &reply, close, has(&|f| *f == Fault::ResetMidBody), slow_body) && !close
}

fn write_reply(stream: &mut TcpStream, r: &Reply, close: bool, reset_mid: bool, slow: Option<Duration>) -> bool {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    if !r.body.is_empty() || r.status != 204 {
        head.push_str(&format!("Content-Type: {}\r\n", r.content_type));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nServer: mediamtx\r\nAccess-Control-Allow-Origin: *\r\n",
        r.body.len()
    ));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return false;
    }
    if reset_mid {
        let _ = stream.write_all(&r.body[..r.body.len() / 2]);
        let _ = stream.flush();
        thread::sleep(Duration::from_millis(20));
        reset(stream);
        return false;
    }
    if let Some(d) = slow {
        let _ = stream.flush();
        thread::sleep(d);
    }
    stream.write_all(&r.body).and_then(|_| stream.flush()).is_ok()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

/// Hold the request unanswered until the client hangs up, the knob is cleared, or the fake stops.
fn hang(inner: &Inner, stream: &mut TcpStream) {
    let epoch = inner.clear_epoch.load(Ordering::SeqCst);
    let mut b = [0u8; 256];
    loop {
        if inner.stop.load(Ordering::SeqCst) || inner.clear_epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        match stream.read(&mut b) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Close with RST instead of FIN (SO_LINGER 0).
fn reset(stream: &mut TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on a valid, open socket fd with a correctly sized `linger` value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
