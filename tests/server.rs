//! The WebSocket JSON-RPC server end to end: envelope rules, authentication, authorization, rate limits,
//! connection limits, robustness, HTTP routes and lifecycle (issues 3 and 4).

use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::Message;

use crate::support::{http_get, require, token, token_with, Client, Daemon, Prereq};

fn err_code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error: {v}"))
}

#[test]
fn jsonrpc_envelope_rules() {
    let d = Daemon::start();
    let mut c = d.client_as("admin");
    c.send_text("{not json");
    assert_eq!(c.recv(), json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}));
    c.send_text(r#"{"method":"ping","id":7}"#);
    let r = c.recv();
    assert_eq!((err_code(&r), r["id"].clone()), (-32600, json!(7)));
    c.send_text(r#"{"jsonrpc":"2.0","id":8}"#);
    let r = c.recv();
    assert_eq!(r["error"]["message"], "Invalid Request - missing method");
    c.send_text(r#"{"jsonrpc":"2.0","method":"no_such_method","id":"x"}"#);
    assert_eq!(c.recv(), json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"x"}));
    // ids are echoed exactly, whatever their JSON type
    for id in [json!(0), json!(1.5), json!("abc"), json!(null), json!(-3)] {
        c.send_text(&json!({"jsonrpc":"2.0","method":"ping","id":id}).to_string());
        assert_eq!(c.recv(), json!({"jsonrpc":"2.0","result":"pong","id":id}));
    }
    c.send_text(r#"{"jsonrpc":"2.0","method":"ping","id":{"a":1}}"#);
    let r = c.recv();
    assert_eq!((err_code(&r), r["id"].clone()), (-32600, Value::Null));
    // notifications (no id member) are never answered, even when they fail
    c.send_text(r#"{"jsonrpc":"2.0","method":"ping"}"#);
    c.send_text(r#"{"jsonrpc":"2.0","method":"no_such_method"}"#);
    c.send_text(r#"{"jsonrpc":"1.0","method":"ping"}"#);
    c.send_text(r#"[]"#);
    assert_eq!(err_code(&c.recv()), -32600, "an empty batch is one Invalid Request");
    // batches: replies for the requests only, in one array
    c.send_text(r#"[{"jsonrpc":"2.0","method":"ping","id":1},{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","method":"nope","id":2},5]"#);
    let r = c.recv();
    let arr = r.as_array().expect("batch reply is an array");
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[0], json!({"jsonrpc":"2.0","result":"pong","id":1}));
    assert_eq!(err_code(&arr[1]), -32601);
    assert_eq!((err_code(&arr[2]), arr[2]["id"].clone()), (-32600, Value::Null));
    c.send_text(r#"[{"jsonrpc":"2.0","method":"ping"}]"#);
    // binary frames are ignored
    c.ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(c.ok("ping", Value::Null), "pong", "nothing was queued before this reply");
    // invalid params shape on authenticate
    let r = c.call("authenticate", json!({"auth_token": 5}));
    assert_eq!(err_code(&r), -32602);
    assert_eq!(r["error"]["message"], "Invalid parameters");
}

#[test]
fn sessions_belong_to_one_connection() {
    let d = Daemon::start();
    let mut a = d.client();
    let mut b = d.client();
    let r = a.ok("authenticate", json!({"auth_token": token("viewer", 600)}));
    assert_eq!(r["authenticated"], true);
    assert_eq!(r["role"], "viewer");
    assert_eq!(r["permissions"], json!(["view"]));
    assert!(r["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r["session_id"].as_str().unwrap().len(), 36);
    assert_eq!(a.ok("ping", Value::Null), "pong");
    let r = b.call("ping", Value::Null);
    assert_eq!(err_code(&r), -32001);
    assert_eq!(r["error"]["message"], "Authentication required for ping - call authenticate or provide auth_token");
}

#[test]
fn roles_gate_methods() {
    let d = Daemon::start();
    let names = camera_service::process::daemon::method_names();
    let operator_method =
        ["take_snapshot", "start_recording", "delete_snapshot"].into_iter().find(|m| names.contains(m));
    for (role, can_admin) in [("viewer", false), ("operator", false), ("admin", true)] {
        let mut c = d.client_as(role);
        assert_eq!(c.ok("ping", Value::Null), "pong", "{role} may ping");
        let r = c.call("get_metrics", Value::Null);
        if can_admin {
            assert!(r.get("result").is_some(), "{r}");
        } else {
            assert_eq!(err_code(&r), -32003);
            assert_eq!(r["error"]["message"], "Insufficient permissions - admin role required for get_metrics");
        }
        if let Some(m) = operator_method {
            let r = c.call(m, json!({"device": "/dev/video99", "filename": "x.jpg"}));
            if role == "viewer" {
                assert_eq!(r["error"]["message"], format!("Insufficient permissions - operator role required for {m}"));
            } else {
                assert_ne!(r["error"]["code"], -32003, "{role} may call {m}: {r}");
            }
        }
    }
}

#[test]
fn bad_tokens_are_rejected_as_results() {
    let d = Daemon::start();
    let mut c = d.client();
    let forged = token_with("not-the-secret-not-the-secret-not-the-secret", "admin", 600);
    let expired = token("admin", -10);
    let alg_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjoieCIsInJvbGUiOiJhZG1pbiIsImlhdCI6MSwiZXhwIjo0MTAyNDQ0ODAwfQ.";
    for t in [forged.as_str(), expired.as_str(), alg_none, "garbage", "a.b.c"] {
        let r = c.ok("authenticate", json!({"auth_token": t}));
        assert_eq!(r, json!({"authenticated": false, "error": "Invalid or expired JWT token"}), "token {t}");
    }
    let r = c.ok("authenticate", json!({"token": "x".repeat(32), "auth_type": "api_key"}));
    assert_eq!(r, json!({"authenticated": false, "error": "Invalid or expired API key"}));
    // An auth_type the service does not know: both credential kinds are tried, and the failure says so.
    let r = c.ok("authenticate", json!({"token": "garbage", "auth_type": "oauth"}));
    assert_eq!(r, json!({"authenticated": false, "error": "Invalid authentication token"}));
    assert_eq!(err_code(&c.call("ping", Value::Null)), -32001, "still unauthenticated");
    let r = d.client().ok("authenticate", json!({"token": token("viewer", 600), "auth_type": "oauth"}));
    assert_eq!((r["authenticated"].clone(), r["role"].clone()), (json!(true), json!("viewer")), "{r}");
    // per-call tokens authenticate the connection, bad ones fail with -32001
    let r = c.call("ping", json!({"auth_token": forged}));
    assert_eq!(r["error"]["message"], "Authentication failed: Invalid or expired JWT token");
    assert_eq!(c.ok("ping", json!({"auth_token": token("viewer", 600)})), "pong");
    assert_eq!(c.ok("ping", Value::Null), "pong", "per-call token authenticated the connection");
}

#[test]
fn expired_session_can_reauthenticate() {
    let d = Daemon::start();
    let mut c = d.client();
    assert_eq!(c.ok("authenticate", json!({"auth_token": token("viewer", 2)}))["authenticated"], true);
    // Ping until the session's token has expired (a few calls, well under the rate limit).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = c.call("ping", Value::Null);
        if r.get("error").is_some() || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(r["error"]["message"], "Authentication failed: token expired");
    assert_eq!(c.ok("authenticate", json!({"auth_token": token("viewer", 600)}))["authenticated"], true);
    assert_eq!(c.ok("ping", Value::Null), "pong");
}

#[test]
fn api_keys_from_the_cli_work_and_others_do_not() {
    let d = Daemon::start();
    let key = d.create_api_key("operator");
    assert_eq!(key.len(), 32);
    let stored = std::fs::read_to_string(d.path("keys/api_keys.json")).unwrap();
    assert!(!stored.contains(&key), "only the hash is stored");
    assert!(stored.contains("sha256:"));
    let mut c = d.client();
    let mut wrong = key.clone().into_bytes();
    wrong[5] = if wrong[5] == b'Z' { b'Y' } else { b'Z' };
    let r = c.ok("authenticate", json!({"auth_token": String::from_utf8(wrong).unwrap(), "auth_type": "api_key"}));
    assert_eq!(r["authenticated"], false);
    let r = c.ok("authenticate", json!({"auth_token": key, "auth_type": "api_key"}));
    assert_eq!((r["authenticated"].clone(), r["role"].clone()), (json!(true), json!("operator")));
    let mut c2 = d.client();
    assert_eq!(c2.ok("authenticate", json!({"token": key}))["role"], "operator", "auto tries API keys too");
}

#[test]
fn rate_limit_per_connection() {
    let d = Daemon::builder().env("CAMERA_SERVICE_RATE_RPM", "5").start();
    let mut c = d.client();
    assert_eq!(c.ok("authenticate", json!({"auth_token": token("viewer", 600)}))["authenticated"], true);
    for _ in 0..4 {
        assert_eq!(c.ok("ping", Value::Null), "pong");
    }
    let r = c.call("ping", Value::Null);
    assert_eq!(r["error"], json!({"code": -32002, "message": "Rate limit exceeded"}));
    // a new connection has its own window
    let mut c2 = d.client_as("viewer");
    assert_eq!(c2.ok("ping", Value::Null), "pong");
}

#[test]
fn connection_limit_refuses_extra_clients_only() {
    let d = Daemon::builder().yaml("server:\n  max_connections: 3").start();
    let mut clients: Vec<Client> = (0..3).map(|_| d.client_as("viewer")).collect();
    let mut extra = d.client();
    extra.set_read_timeout(Duration::from_secs(5));
    match extra.ws.read() {
        Ok(Message::Close(Some(f))) => {
            assert_eq!(u16::from(f.code), 1013);
            assert_eq!(f.reason.as_str(), "Connection limit reached");
        }
        other => panic!("expected close 1013, got {other:?}"),
    }
    for c in &mut clients {
        assert_eq!(c.ok("ping", Value::Null), "pong", "existing clients are unaffected");
    }
    drop(clients.pop());
    crate::support::wait_until("the server has seen the close", Duration::from_secs(10), || {
        let (_, _, body) = http_get(d.health_port, "/metrics", &[]);
        let text = String::from_utf8_lossy(&body).into_owned();
        let open = text.lines().find_map(|l| l.strip_prefix("camera_service_websocket_connections "));
        open.and_then(|v| v.parse::<f64>().ok()).is_some_and(|n| n < 3.0)
    });
    let mut again = d.client_as("viewer");
    assert_eq!(again.ok("ping", Value::Null), "pong", "a freed slot can be used");
}

#[test]
fn garbage_frames_do_not_break_the_server() {
    let d = Daemon::builder().env("CAMERA_SERVICE_RATE_RPM", "100000").start();
    let mut c = d.client_as("viewer");
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let samples = [
        "",
        "null",
        "[",
        "{\"jsonrpc\":\"2.0\"",
        "{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}",
        "[[]]",
        "\"str\"",
        "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"params\":[1,2]}",
        "{\"a\":",
        "1e999999",
    ];
    let mut expected_replies = 0;
    for i in 0..10_000 {
        let text = if i % 3 == 0 {
            samples[(next() % samples.len() as u64) as usize].to_string()
        } else {
            let len = (next() % 64) as usize;
            (0..len).map(|_| char::from(32 + (next() % 95) as u8)).collect()
        };
        c.ws.write(Message::text(text.clone())).unwrap();
        if i % 500 == 0 {
            c.ws.flush().unwrap();
        }
        let _ = &mut expected_replies;
    }
    c.ws.flush().unwrap();
    // Drain until our ping's reply arrives: the server answered (or ignored) every garbage frame in order.
    c.send_text(r#"{"jsonrpc":"2.0","method":"ping","id":"final"}"#);
    loop {
        let v = c.recv();
        if v.get("id") == Some(&json!("final")) {
            assert_eq!(v["result"], "pong");
            break;
        }
    }
    let mut fresh = d.client_as("viewer");
    assert_eq!(fresh.ok("ping", Value::Null), "pong");
}

#[test]
fn invalid_utf8_and_oversized_messages_close_the_connection() {
    let d = Daemon::builder().yaml("server:\n  max_message_size: 4096\n  max_frame_size: 4096").start();
    let mut c = d.client_as("viewer");
    c.ws.send(Message::text("x".repeat(10_000))).unwrap();
    match read_close(&mut c) {
        Some(code) => assert_eq!(code, 1009),
        None => panic!("expected close 1009"),
    }
    // Raw invalid UTF-8 in a text frame: hand-built masked frame.
    let mut c = d.client_as("viewer");
    let payload = [0xffu8, 0xfe, 0x41];
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = c.ws.get_mut() {
        use std::io::Write;
        s.write_all(&frame).unwrap();
    }
    assert_eq!(read_close(&mut c), Some(1007));
}

fn read_close(c: &mut Client) -> Option<u16> {
    c.set_read_timeout(Duration::from_secs(5));
    loop {
        match c.ws.read() {
            Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

#[test]
fn http_routes_on_both_ports() {
    let d = Daemon::start();
    let (status, _, body) = http_get(d.port, "/not-the-ws-path", &[]);
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = http_get(d.port, "/ws", &[]);
    assert_eq!(status, 426, "a plain GET on the WebSocket path asks for an upgrade");
    let (status, _, body) = http_get(d.health_port, "/health/live", &[]);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "alive");
    let (status, headers, body) = http_get(d.health_port, "/health/system", &[]);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"));
    for key in ["mediamtx", "camera_monitor", "service_manager"] {
        assert!(v["components"][key]["status"].is_string(), "{v}");
        assert!(v["components"][key]["details"].is_string(), "{v}");
    }
    assert_eq!(status, if v["status"] == "unhealthy" { 503 } else { 200 });
    assert_eq!(v["components"]["mediamtx"]["status"], "disabled", "mediamtx.enabled: false is not a failure");
    let (status, _, body) = http_get(d.health_port, "/metrics", &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("camera_service_uptime_seconds"));
    assert!(text.contains("camera_service_requests_total{method=\"ping\"}"));
    let (status, _, _) = http_get(d.health_port, "/nope", &[]);
    assert_eq!(status, 404);
}

#[test]
fn system_methods_report_real_figures() {
    let d = Daemon::start();
    let mut c = d.client_as("admin");
    for _ in 0..5 {
        c.ok("ping", Value::Null);
    }
    let _ = c.call("no_such", Value::Null);
    let m = c.ok("get_metrics", Value::Null);
    assert_eq!(m["active_connections"], 1);
    assert!(m["total_requests"].as_u64().unwrap() >= 6, "{m}");
    assert!(m["memory_usage"].as_f64().unwrap() > 0.5, "RSS in MiB: {m}");
    let er = m["error_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&er));
    assert!(m["methods"]["ping"]["count"].as_u64().unwrap() >= 5);
    let s = c.ok("get_status", Value::Null);
    assert_eq!(s["components"]["websocket_server"], "running");
    assert!(s["uptime"].is_u64());
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    let i = c.ok("get_server_info", Value::Null);
    assert_eq!(i["name"], "MediaMTX Camera Service");
    assert!(i["capabilities"].as_array().unwrap().contains(&json!("recordings")));
}

#[test]
fn sigterm_stops_quickly_with_exit_code_zero() {
    let mut d = Daemon::start();
    let mut c = d.client_as("viewer");
    assert_eq!(c.ok("ping", Value::Null), "pong");
    let (code, took) = d.terminate();
    assert_eq!(code, Some(0), "{}", d.stderr());
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}

#[test]
fn version_names_the_commit() {
    let out = std::process::Command::new(crate::support::bin()).arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.contains(env!("CARGO_PKG_VERSION")) && text.contains("commit"), "{text}");
}

/// `mknod <dir>/video<n> c 81 <n>`: on a machine without a V4L2 driver the node cannot be opened, so the camera
/// monitor lists it as ERROR and announces it; removing it announces DISCONNECTED. Needs root (as CI runs).
fn plug_unopenable(dir: &std::path::Path, n: u32) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let path = dir.join(format!("video{n}"));
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o660, libc::makedev(81, n)) == 0 }
}

#[test]
fn a_notification_reaches_100_idle_clients_and_only_authenticated_ones() {
    if !require(Prereq::Root) {
        return;
    }
    let d = Daemon::start();
    let mut clients: Vec<Client> = (0..100).map(|_| d.client_as("viewer")).collect();
    let mut anonymous = d.client();
    assert!(plug_unopenable(&d.path("dev"), 3), "mknod: {}", std::io::Error::last_os_error());
    for (i, c) in clients.iter_mut().enumerate() {
        let n = c.wait_notification("camera_status_update", Duration::from_secs(10), |p| p["device"] == "/dev/video3");
        let n = n.unwrap_or_else(|| panic!("client {i} got no notification"));
        assert_eq!(n["params"]["status"], "ERROR");
        assert!(n.get("id").is_none());
    }
    assert!(anonymous.recv_timeout(Duration::from_millis(500)).is_none(), "unauthenticated clients get nothing");
}

#[test]
fn a_client_that_stops_reading_is_disconnected_and_others_go_on() {
    if !require(Prereq::Root) {
        return;
    }
    let d = Daemon::builder()
        .yaml("notifications:\n  websocket:\n    max_queue_size: 8\n    delivery_timeout: 0.5")
        .yaml("server:\n  max_message_size: 4096\n  max_frame_size: 4096")
        .start();
    // The slow client: a tiny receive buffer (set before connecting, so the TCP window stays small) and it never
    // reads.
    let slow = {
        let s = small_window_connect(d.port);
        let (mut ws, _) = tungstenite::client(d.url(), s).unwrap();
        let auth = json!({"jsonrpc":"2.0","method":"authenticate","params":{"auth_token":token("viewer",600)},"id":1});
        ws.send(Message::text(auth.to_string())).unwrap();
        let _ = ws.read().unwrap();
        ws
    };
    let mut good = d.client_as("admin");
    let dev = d.path("dev");
    for round in 0..2000u32 {
        assert!(plug_unopenable(&dev, 3), "mknod: {}", std::io::Error::last_os_error());
        good.wait_notification("camera_status_update", Duration::from_secs(10), |p| p["status"] == "ERROR")
            .unwrap_or_else(|| panic!("round {round}: no ERROR notification"));
        std::fs::remove_file(dev.join("video3")).unwrap();
        good.wait_notification("camera_status_update", Duration::from_secs(10), |p| p["status"] == "DISCONNECTED")
            .unwrap_or_else(|| panic!("round {round}: no DISCONNECTED notification"));
        if round % 20 == 19 {
            let m = good.ok("get_metrics", Value::Null);
            if m["dropped_slow_clients"].as_u64().unwrap_or(0) >= 1 {
                assert_eq!(m["active_connections"], 1, "only the good client is left: {m}");
                assert_eq!(good.ok("ping", Value::Null), "pong");
                drop(slow);
                return;
            }
        }
    }
    panic!("the slow client was never disconnected");
}

/// A TCP connection to 127.0.0.1:port whose receive buffer is 2 KiB from the SYN on.
fn small_window_connect(port: u16) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket syscalls on a descriptor this function owns; on success it is handed to TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let v: libc::c_int = 2048;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&v as *const libc::c_int).cast(), 4);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) },
            sin_zero: [0; 8],
        };
        let r = libc::connect(fd, (&addr as *const libc::sockaddr_in).cast(), std::mem::size_of_val(&addr) as u32);
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        std::net::TcpStream::from_raw_fd(fd)
    }
}
