//! The JSON-RPC envelope and every method's params, black-box through a real daemon over WebSocket: generated
//! frames (valid and broken envelopes, batches, odd ids, params of every type for every method) never cost the
//! connection or the daemon, every reply is a well-formed JSON-RPC 2.0 response, and no handler panics.

use std::cell::RefCell;
use std::time::Duration;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{json, Value};
use tungstenite::Message;

use super::{cases, runner};
use crate::docs::DOCUMENTED_METHODS;
use crate::support::{token, Client, Daemon};

/// The param names the methods read (the envelope generator also sends methods from the documented contract).
const PARAMS: &[&str] = &[
    "device",
    "filename",
    "limit",
    "offset",
    "duration",
    "duration_seconds",
    "duration_minutes",
    "duration_hours",
    "format",
    "quality",
    "policy_type",
    "enabled",
    "max_age_days",
    "max_size_gb",
    "warning_threshold",
    "critical_threshold",
    "file_type",
    "auth_token",
    "token",
    "auth_type",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-5i64..200).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("camera0"),
            Just("/dev/video0"),
            Just("virtual0"),
            Just("../../etc/passwd"),
            Just("x.mp4"),
            Just("age"),
            Just("size"),
            Just("manual"),
            Just("recording"),
            Just("snapshot"),
            Just("fmp4"),
            Just(""),
        ]
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-z_]{1,8}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn params() -> impl Strategy<Value = String> {
    let named = btree_map(proptest::sample::select(PARAMS), leaf(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    prop_oneof![4 => named, 1 => json_value()].prop_map(|v| v.to_string())
}

/// Ids as raw JSON text, so numbers serde_json would re-format (big, negative zero, exponents) go out as typed.
fn id() -> impl Strategy<Value = String> {
    const RAW: &[&str] = &["1", "-0", "1E+2", "0.5", "18446744073709551616", "-9223372036854775809", "1e400", "null"];
    prop_oneof![
        proptest::sample::select(RAW).prop_map(String::from),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z0-9-]{0,8}".prop_map(|s| format!("\"{s}\"")),
        json_value().prop_map(|v| v.to_string()),
    ]
}

/// One request object as text: any subset of the members, in any order, with right and wrong types.
fn envelope() -> impl Strategy<Value = String> {
    let method = prop_oneof![
        6 => proptest::sample::select(&DOCUMENTED_METHODS[..]).prop_map(|m| format!("\"{m}\"")),
        1 => "[a-z_]{0,12}".prop_map(|m| format!("\"{m}\"")),
        1 => json_value().prop_map(|v| v.to_string()),
    ];
    let version = prop_oneof![4 => Just("\"2.0\"".to_string()), 1 => json_value().prop_map(|v| v.to_string())];
    let member = |name: &'static str, value: BoxedStrategy<String>| {
        proptest::option::weighted(0.8, value).prop_map(move |v| v.map(|v| format!("\"{name}\":{v}")))
    };
    (
        member("jsonrpc", version.boxed()),
        member("method", method.boxed()),
        member("params", params().boxed()),
        member("id", id().boxed()),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(a, b, c, d, rotate)| {
            let mut members: Vec<String> = [a, b, c, d].into_iter().flatten().collect();
            if !members.is_empty() {
                let n = rotate.index(members.len());
                members.rotate_left(n);
            }
            format!("{{{}}}", members.join(","))
        })
}

fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => envelope(),
        2 => vec(envelope(), 0..5).prop_map(|items| format!("[{}]", items.join(","))),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => (envelope(), any::<prop::sample::Index>()).prop_map(|(text, cut)| {
            let at = cut.index(text.len());
            text[..floor_char_boundary(&text, at)].to_string()
        }),
        1 => any::<String>(),
    ]
}

/// A JSON-RPC 2.0 response object: `jsonrpc: "2.0"`, an `id`, and exactly one of `result` / `error{code,message}`.
fn check_response(v: &Value) -> Result<(), String> {
    let o = v.as_object().ok_or("response is not an object")?;
    if o.get("jsonrpc") != Some(&json!("2.0")) {
        return Err("jsonrpc is not \"2.0\"".into());
    }
    if !o.contains_key("id") {
        return Err("no id".into());
    }
    match (o.get("result"), o.get("error")) {
        (Some(_), None) => Ok(()),
        (None, Some(e)) => {
            let code_ok = e.get("code").is_some_and(|c| c.is_i64());
            let message_ok = e.get("message").is_some_and(Value::is_string);
            let data_ok = e.get("data").is_none_or(Value::is_object);
            (code_ok && message_ok && data_ok).then_some(()).ok_or_else(|| format!("malformed error {e}"))
        }
        _ => Err("not exactly one of result and error".into()),
    }
}

/// A message the daemon sent: a response, a batch of responses, or a server notification.
fn check_message(text: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match &v {
        Value::Array(items) if !items.is_empty() => items.iter().try_for_each(check_response),
        Value::Object(o) if o.contains_key("method") && !o.contains_key("id") => Ok(()),
        Value::Object(_) => check_response(&v),
        _ => Err("neither a response, a batch of responses nor a notification".into()),
    }
}

struct Session {
    client: Client,
    sentinel: u64,
}

impl Session {
    fn open(daemon: &Daemon) -> Session {
        let client = daemon.client();
        client.set_read_timeout(Duration::from_secs(20));
        let mut s = Session { client, sentinel: 0 };
        s.authenticate();
        s
    }

    fn authenticate(&mut self) {
        let r = self.client.call("authenticate", json!({"auth_token": token("admin", 3600)}));
        assert_eq!(r["result"]["authenticated"], true, "{r}");
    }

    /// Sends `frame`, then a `ping` with a fresh id; checks every message up to the ping's reply.
    fn exchange(&mut self, frame: &str) -> Result<(), String> {
        self.sentinel += 1;
        let sentinel = format!("sentinel-{}", self.sentinel);
        let ws = &mut self.client.ws;
        ws.send(Message::text(frame.to_string())).map_err(|e| format!("send: {e}"))?;
        let ping = json!({"jsonrpc": "2.0", "method": "ping", "id": sentinel}).to_string();
        ws.send(Message::text(ping)).map_err(|e| format!("send: {e}"))?;
        loop {
            let text = match ws.read().map_err(|e| format!("connection lost: {e}"))? {
                Message::Text(t) => t.to_string(),
                Message::Close(c) => return Err(format!("closed by the daemon: {c:?}")),
                _ => continue,
            };
            check_message(&text).map_err(|e| format!("{e}: {text}"))?;
            if serde_json::from_str::<Value>(&text).is_ok_and(|v| v["id"] == json!(sentinel)) {
                return Ok(());
            }
        }
    }
}

#[test]
fn any_frame_gets_a_well_formed_answer_and_costs_nothing() {
    let daemon = Daemon::builder()
        .yaml("security:\n  rate_limiting:\n    requests_per_minute: 100000000")
        .yaml("recording:\n  auto_cleanup: false\nsnapshots:\n  auto_cleanup: false")
        .start();
    let session = RefCell::new(Session::open(&daemon));
    let result = runner(cases()).run(&frame(), |text| {
        let mut s = session.borrow_mut();
        if let Err(e) = s.exchange(&text) {
            // A fresh connection for the next (shrinking) attempt, so it tests its own frame only.
            *s = Session::open(&daemon);
            return Err(TestCaseError::fail(format!("frame {text:?}: {e}")));
        }
        if text.contains("authenticate") {
            s.authenticate();
        }
        Ok(())
    });
    let stderr = daemon.stderr();
    result.unwrap_or_else(|e| panic!("{e}\ndaemon log tail: {}", tail(&stderr)));
    assert!(!stderr.contains("panicked"), "a handler panicked: {}", tail(&stderr));
    // Still serving: a new connection works.
    let mut fresh = daemon.client_as("viewer");
    assert_eq!(fresh.call("ping", Value::Null)["result"], "pong");
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

fn tail(s: &str) -> &str {
    &s[floor_char_boundary(s, s.len().saturating_sub(4000))..]
}
