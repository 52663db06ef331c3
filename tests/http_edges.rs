//! The HTTP side of the daemon from outside: requests the servers must refuse (malformed, over the limits, wrong
//! method, a WebSocket handshake gone wrong), `HEAD`, and the health routes while MediaMTX cannot be reached.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{free_port, http_get, wait_until, Daemon};

/// Send `raw` as is on a fresh connection to 127.0.0.1:`port` and read until the server closes: (status line,
/// headers lower-cased, body). The status line is empty when the server closed without answering.
fn exchange(port: u16, raw: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (String::from_utf8_lossy(&out).into_owned(), Vec::new(), Vec::new());
    };
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, out[end + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn the_health_port_refuses_what_it_does_not_serve() {
    let d = Daemon::start();
    let port = d.health_port;

    // Only GET and HEAD.
    let (status, headers, body) =
        exchange(port, b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
    assert_eq!(body, b"Method Not Allowed\n");

    // HEAD: the GET's status and headers, no body.
    let (_, get_headers, get_body) = http_get(port, "/health/live", &[]);
    let (status, headers, body) = exchange(port, b"HEAD /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.is_empty(), "HEAD got a body: {}", String::from_utf8_lossy(&body));
    assert_eq!(header(&headers, "content-type"), header(&get_headers, "content-type"));
    assert_eq!(header(&headers, "content-length").map(|v| v.parse::<usize>().unwrap()), Some(get_body.len()));

    // Malformed heads: 400 naming the fault, and the connection closed.
    for (raw, why) in [
        (&b"garbage\r\n\r\n"[..], "malformed request line"),
        (b"GET health HTTP/1.1\r\n\r\n", "malformed request line"),
        (b"GET /health FTP/1.0\r\n\r\n", "malformed request line"),
        (b"GET /he%zzlth HTTP/1.1\r\n\r\n", "malformed path"),
        (b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n", "malformed header"),
        (b"GET /health HTTP/1.1\r\nX: \xff\xfe\r\n\r\n", "header value is not UTF-8"),
    ] {
        let (status, _, body) = exchange(port, raw);
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{}", String::from_utf8_lossy(raw));
        assert_eq!(String::from_utf8_lossy(&body), why, "{}", String::from_utf8_lossy(raw));
    }
    let mut many = b"GET /health/live HTTP/1.1\r\n".to_vec();
    for i in 0..65 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let (status, _, body) = exchange(port, &many);
    assert_eq!((status.as_str(), &body[..]), ("HTTP/1.1 400 Bad Request", &b"too many headers"[..]));
    // A head that has not ended within 16 KiB (exactly that much is sent, so the server reads it all and closes
    // cleanly after answering).
    let mut huge = b"GET /health/live HTTP/1.1\r\nX-Pad: ".to_vec();
    huge.resize(16 * 1024, b'a');
    let (status, _, body) = exchange(port, &huge);
    assert_eq!((status.as_str(), &body[..]), ("HTTP/1.1 400 Bad Request", &b"request head too large"[..]));

    // A client that leaves before finishing its head costs nothing: the next one is served.
    {
        let mut early = TcpStream::connect(("127.0.0.1", port)).unwrap();
        early.write_all(b"GET /health/li").unwrap();
    }
    let (status, _, _) = http_get(port, "/health/live", &[]);
    assert_eq!(status, 200);
    // Every answer, refusals included, forbids caching of health data.
    let (_, headers, _) = http_get(port, "/no/such/route", &[]);
    assert_eq!(header(&headers, "cache-control"), Some("no-cache, no-store, must-revalidate"));
}

#[test]
fn a_broken_websocket_handshake_is_refused_with_the_reason() {
    let d = Daemon::start();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = |method: &str, connection: &str, version: &str, key_line: &str| {
        format!(
            "{method} /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: {connection}\r\n\
             Sec-WebSocket-Version: {version}\r\n{key_line}Content-Length: 0\r\n\r\n"
        )
    };
    let key_line = format!("Sec-WebSocket-Key: {key}\r\n");
    for (raw, why) in [
        (req("POST", "Upgrade", "13", &key_line), "WebSocket handshake must use GET\n"),
        (req("GET", "keep-alive", "13", &key_line), "missing Connection: Upgrade\n"),
        (req("GET", "Upgrade", "8", &key_line), "unsupported Sec-WebSocket-Version (13 required)\n"),
        (req("GET", "Upgrade", "13", ""), "missing Sec-WebSocket-Key\n"),
    ] {
        let (status, _, body) = exchange(d.port, raw.as_bytes());
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{raw}");
        assert_eq!(String::from_utf8_lossy(&body), why, "{raw}");
    }
    // A malformed head on the WebSocket port: 400 as well.
    let (status, _, body) = exchange(d.port, b"GET /ws HTTP/1.1\r\nbroken header\r\n\r\n");
    assert_eq!((status.as_str(), &body[..]), ("HTTP/1.1 400 Bad Request", &b"malformed header"[..]));
    // "Connection: keep-alive, Upgrade" is an upgrade (RFC 6455 allows a token list): the handshake completes.
    let (status, headers, _) = {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req("GET", "keep-alive, Upgrade", "13", &key_line).as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines.next().unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, ())
    };
    assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
    // The accept key of RFC 6455's example.
    assert_eq!(header(&headers, "sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    // The daemon still serves WebSocket clients afterwards.
    assert_eq!(d.client_as("viewer").ok("ping", Value::Null), "pong");
}

#[test]
fn an_unreachable_mediamtx_degrades_health_and_the_api_goes_on() {
    // Nothing listens on the control API port.
    let api_port = free_port();
    let d = Daemon::builder()
        .yaml(&format!(
            "mediamtx:\n  enabled: true\n  host: 127.0.0.1\n  api_port: {api_port}\n  health_check_interval: 0.2\n  \
             api_timeout: 1.0\n"
        ))
        .start();
    let hp = d.health_port;
    let json_of = |path: &str| {
        let (status, _, body) = http_get(hp, path, &[]);
        (status, serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
    };
    wait_until("/health/mediamtx to report the failure", Duration::from_secs(20), || {
        json_of("/health/mediamtx").0 == 503
    });
    let (status, body) = json_of("/health/mediamtx");
    assert_eq!((status, body["status"].clone()), (503, json!("unhealthy")), "{body}");
    assert!(body["details"].as_str().unwrap().starts_with("MediaMTX controller is unhealthy"), "{body}");

    // Not ready (load balancers stop sending streams), yet the daemon as a whole only degrades.
    let (status, body) = json_of("/health/ready");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["details"], json!({"mediamtx": "unhealthy", "service_manager": "healthy"}));
    let (status, body) = json_of("/health/system");
    assert_eq!((status, body["status"].clone()), (200, json!("degraded")), "{body}");
    assert_eq!(body["components"]["mediamtx"]["status"], "unhealthy");
    assert_eq!(body["components"]["camera_monitor"]["status"], "healthy");

    // The same over JSON-RPC and in the metrics.
    let mut admin = d.client_as("admin");
    let s = admin.ok("get_status", Value::Null);
    assert_eq!(
        (s["status"].clone(), s["components"]["mediamtx_controller"].clone()),
        (json!("degraded"), json!("unhealthy"))
    );
    assert!(s["details"]["mediamtx"].as_str().unwrap().contains("unreachable"), "{s}");
    let (status, _, metrics) = http_get(hp, "/metrics", &[]);
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("camera_service_component_up{component=\"mediamtx\",state=\"degraded\"} 0"), "{metrics}");
    assert!(metrics.contains("camera_service_component_up{component=\"websocket_server\",state=\"running\"} 1"));
    assert_eq!(admin.ok("ping", Value::Null), "pong");
}
