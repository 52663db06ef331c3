//! JSON-RPC envelope edges against the real daemon: objects without `method`, ids echoed byte for byte, batch limits,
//! positional params, JWT `user_id`, and API keys revoked while their sessions are open.

use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::Message;

use crate::support::{token_with, Client, Daemon, JWT_SECRET};

const VIRTUAL: &str = "camera:\n  virtual:\n  - {name: T, width: 320, height: 240, fps: 10, pattern: testsrc2}";

/// Send `text` as one frame and return the next text frame as the server wrote it.
fn raw_exchange(c: &mut Client, text: &str) -> String {
    c.send_text(text);
    loop {
        match c.ws.read().expect("read") {
            Message::Text(t) => return t.as_str().to_string(),
            Message::Close(f) => panic!("closed by server: {f:?}"),
            _ => {}
        }
    }
}

fn error_of(v: &Value) -> (i64, String) {
    let e = v.get("error").unwrap_or_else(|| panic!("expected an error reply: {v}"));
    (e["code"].as_i64().unwrap(), e["message"].as_str().unwrap().to_string())
}

#[test]
fn objects_without_method_are_invalid_requests_not_notifications() {
    let d = Daemon::builder().yaml(VIRTUAL).start();
    let mut c = d.client_as("viewer");
    for (text, message) in [
        ("{}", "Invalid Request"),
        (r#"{"jsonrpc":"2.0"}"#, "Invalid Request - missing method"),
        (r#"{"jsonrpc":"2.0","method":7}"#, "Invalid Request - missing method"),
        (r#"{"jsonrpc":"2.0","params":{}}"#, "Invalid Request - missing method"),
    ] {
        let v: Value = serde_json::from_str(&raw_exchange(&mut c, text)).unwrap();
        assert_eq!(error_of(&v), (-32600, message.to_string()), "{text}: {v}");
        assert_eq!(v["id"], Value::Null, "{text}: {v}");
    }
    let v: Value = serde_json::from_str(&raw_exchange(&mut c, "[{}]")).unwrap();
    assert_eq!((v[0]["error"]["code"].clone(), v[0]["id"].clone()), (json!(-32600), Value::Null), "{v}");
    // A real notification (a string `method`, no id) is still never answered.
    c.send_text(r#"{"jsonrpc":"2.0","method":"ping"}"#);
    c.send_text(r#"{"jsonrpc":"2.0","method":"no_such_method"}"#);
    let v: Value =
        serde_json::from_str(&raw_exchange(&mut c, r#"{"jsonrpc":"2.0","method":"ping","id":"after"}"#)).unwrap();
    assert_eq!(v["id"], "after", "the notifications got no reply: {v}");
}

#[test]
fn ids_are_echoed_byte_for_byte() {
    let d = Daemon::builder().yaml(VIRTUAL).start();
    let mut c = d.client_as("viewer");
    for id in ["18446744073709551616", "-0", "1E+2", "1.50", "0.1e-3", r#""\u00e9t\u00e9""#, r#""a\"b""#, "null", "7"] {
        let reply = raw_exchange(&mut c, &format!(r#"{{"jsonrpc":"2.0","method":"ping","id":{id}}}"#));
        assert_eq!(reply, format!(r#"{{"jsonrpc":"2.0","result":"pong","id":{id}}}"#));
        let reply = raw_exchange(&mut c, &format!(r#"{{"jsonrpc":"2.0","method":"nope","id":{id}}}"#));
        assert!(reply.ends_with(&format!(r#","id":{id}}}"#)), "{reply}");
    }
    // Whitespace around the id is not part of it; ids that are not strings, numbers or null are refused.
    let reply = raw_exchange(&mut c, r#"{"jsonrpc":"2.0","method":"ping","id":   12  }"#);
    assert!(reply.ends_with(r#","id":12}"#), "{reply}");
    // A number beyond what a JSON reader can hold cannot be echoed: the frame is a parse error, as before.
    let v: Value =
        serde_json::from_str(&raw_exchange(&mut c, r#"{"jsonrpc":"2.0","method":"ping","id":1e400}"#)).unwrap();
    assert_eq!((error_of(&v).0, v["id"].clone()), (-32700, Value::Null), "{v}");
    for bad in ["true", "{}", "[1]"] {
        let v: Value =
            serde_json::from_str(&raw_exchange(&mut c, &format!(r#"{{"jsonrpc":"2.0","method":"ping","id":{bad}}}"#)))
                .unwrap();
        assert_eq!((error_of(&v).0, v["id"].clone()), (-32600, Value::Null), "{bad}: {v}");
    }
}

#[test]
fn batches_are_bounded_in_count_and_reply_size() {
    // The smallest allowed message size keeps the reply budget small: a few camera lists fill it.
    let d = Daemon::builder()
        .yaml(VIRTUAL)
        .yaml("server:\n  max_message_size: 16384\nsecurity:\n  rate_limiting:\n    requests_per_minute: 100000")
        .start();
    let mut c = d.client_as("viewer");
    let batch = |n: usize, method: &str| {
        let items: Vec<Value> = (0..n).map(|i| json!({"jsonrpc": "2.0", "method": method, "id": i})).collect();
        Value::Array(items).to_string()
    };
    // 100 requests: 100 replies.
    let v: Value = serde_json::from_str(&raw_exchange(&mut c, &batch(100, "ping"))).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 100);
    assert!(v.as_array().unwrap().iter().all(|r| r["result"] == "pong"));
    // 101: one error object, nothing runs.
    let v: Value = serde_json::from_str(&raw_exchange(&mut c, &batch(101, "ping"))).unwrap();
    assert_eq!((error_of(&v).0, v["id"].clone()), (-32600, Value::Null), "{v}");
    assert!(v["error"]["data"]["reason"].as_str().unwrap().contains("100"), "{v}");
    // Replies beyond the budget: the first members answer, the rest get -32600 with a reason; the connection stays.
    let v: Value = serde_json::from_str(&raw_exchange(&mut c, &batch(60, "get_camera_list"))).unwrap();
    let replies = v.as_array().unwrap();
    assert_eq!(replies.len(), 60);
    let answered = replies.iter().take_while(|r| r.get("result").is_some()).count();
    assert!((1..60).contains(&answered), "answered {answered}");
    for r in &replies[answered..] {
        assert_eq!(error_of(r).0, -32600, "{r}");
        assert!(r["error"]["data"]["reason"].as_str().unwrap().contains("16384"), "{r}");
    }
    let ids: Vec<u64> = replies.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (0..60).collect::<Vec<u64>>(), "every request is answered, in order");
    assert_eq!(c.ok("ping", Value::Null), "pong", "the connection is still served");
}

#[test]
fn positional_params_and_jwt_user_ids() {
    let d = Daemon::builder().yaml(VIRTUAL).start();
    let mut c = d.client_as("admin");
    // A method with named params refuses an array or a scalar, naming why.
    for params in [json!(["virtual0"]), json!("virtual0"), json!(5)] {
        let r = c.call("get_camera_status", params.clone());
        assert_eq!(error_of(&r).0, -32602, "{params}: {r}");
        assert_eq!(r["error"]["data"]["reason"], "params must be an object", "{r}");
    }
    // A method without params ignores them, whatever they are.
    for params in [json!([1, 2]), json!("x"), json!({"anything": 1})] {
        assert_eq!(c.ok("ping", params.clone()), "pong", "{params}");
        assert!(c.ok("get_storage_threshold", params.clone())["warning_threshold"].is_u64(), "{params}");
    }
    // Reasons name the member.
    let r = c.call("take_snapshot", json!({"device": "virtual0", "quality": 0}));
    assert_eq!(r["error"]["data"]["reason"], "quality must be between 1 and 100, got 0", "{r}");
    let r = c.call("get_camera_status", json!({}));
    assert_eq!(r["error"]["data"]["reason"], "device is required", "{r}");
    // JWT user_id must be a non-empty string.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for user in [json!(""), json!(42), json!(null)] {
        let claims = json!({"user_id": user, "role": "admin", "iat": now, "exp": now + 60});
        let t = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap();
        let r = d.client().ok("authenticate", json!({"auth_token": t}));
        assert_eq!(r["authenticated"], false, "user_id {user}: {r}");
    }
    assert_eq!(
        d.client().ok("authenticate", json!({"auth_token": token_with(JWT_SECRET, "viewer", 60)}))["authenticated"],
        true
    );
}

/// Rewrite the keys file with `change` applied to its records, and make sure its mtime moves.
fn edit_keys(d: &Daemon, change: impl FnOnce(&mut Vec<Value>)) {
    let path = d.path("keys/api_keys.json");
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    change(file["keys"].as_array_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(2);
    std::fs::File::options().append(true).open(&path).unwrap().set_modified(later).unwrap();
}

#[test]
fn a_revoked_api_key_ends_sessions_already_open() {
    let d = Daemon::builder().yaml(VIRTUAL).start();
    for revoke in ["deactivate", "remove"] {
        let key = d.create_api_key("operator");
        let mut c = d.client();
        assert_eq!(c.ok("authenticate", json!({"auth_token": key, "auth_type": "api_key"}))["authenticated"], true);
        assert_eq!(c.ok("ping", Value::Null), "pong");
        let mut watcher = d.client_as("admin");
        edit_keys(&d, |keys| {
            let last = keys.len() - 1;
            if revoke == "deactivate" {
                keys[last]["is_active"] = json!(false);
            } else {
                keys.remove(last);
            }
        });
        // The file is looked at no more than once a second: calls go on succeeding until the change is seen.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let r = loop {
            let r = c.call("ping", Value::Null);
            if r.get("error").is_some() || std::time::Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(error_of(&r), (-32001, "Authentication failed: API key revoked".into()), "{revoke}: {r}");
        let r = c.call("ping", Value::Null);
        assert_eq!(error_of(&r).0, -32001, "{revoke}: still refused: {r}");
        // No notifications for the revoked session; the admin's connection gets them.
        watcher.ok("start_recording", json!({"device": "virtual0", "duration": 1}));
        let started = watcher.wait_notification("recording_status_update", Duration::from_secs(10), |_| true);
        assert!(started.is_some(), "the admin is notified");
        assert!(c.recv_timeout(Duration::from_millis(800)).is_none(), "{revoke}: a revoked session got a notification");
        watcher
            .wait_notification("recording_status_update", Duration::from_secs(15), |p| p["status"] == "STOPPED")
            .expect("recording ends");
        // The same connection may authenticate again with a valid credential.
        assert_eq!(
            c.ok("authenticate", json!({"auth_token": crate::support::token("viewer", 60)}))["authenticated"],
            true
        );
        assert_eq!(c.ok("ping", Value::Null), "pong");
    }
}
