//! The JSON-RPC 2.0 envelope (decisions §3, api.md §1.3, §2.2): parse, batch, authenticate, authorize, rate-limit,
//! call, reply. Replies are written by hand so members come in the Python order (`jsonrpc`, `result|error`, `id`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::{table, Call, Caller, Exec, Method};
use crate::app::App;
use crate::auth::{jwt, Session};
use crate::error::Error;
use crate::logging;
use crate::rpc::notify::Notification;
use crate::util::{ids, timefmt};

/// One parsed frame, ready to run (on the connection worker, or on the blocking pool when any member needs it).
pub struct Work {
    body: Body,
}

enum Body {
    /// A reply decided without running anything (parse error, empty batch).
    Immediate(String),
    Single(Value),
    Batch(Vec<Value>),
}

/// What running a frame produced.
#[derive(Default)]
pub struct Outcome {
    /// The text frame to send, if any (notifications get none; a batch gets one array).
    pub reply: Option<String>,
    /// Notifications to publish after the reply is queued.
    pub after: Vec<Notification>,
}

/// Connection facts the dispatcher needs besides the session.
#[derive(Debug, Clone, Default)]
pub struct ConnFacts {
    pub client_id: u64,
    pub host: Option<Arc<str>>,
}

impl Work {
    pub fn parse(text: &str) -> Work {
        let body = match serde_json::from_str::<Value>(text) {
            Err(_) => Body::Immediate(error_frame(&Error::Parse, &Value::Null)),
            Ok(Value::Array(items)) if items.is_empty() => {
                Body::Immediate(error_frame(&Error::InvalidRequest, &Value::Null))
            }
            Ok(Value::Array(items)) => Body::Batch(items),
            Ok(v) => Body::Single(v),
        };
        Work { body }
    }

    /// True when some member calls a method that must not run on the connection worker.
    pub fn is_blocking(&self) -> bool {
        let blocking = |v: &Value| {
            v.get("method")
                .and_then(Value::as_str)
                .and_then(table::lookup)
                .is_some_and(|(_, m)| m.exec == Exec::Blocking)
        };
        match &self.body {
            Body::Immediate(_) => false,
            Body::Single(v) => blocking(v),
            Body::Batch(items) => items.iter().any(blocking),
        }
    }

    pub fn run(self, app: &App, session: &mut Session, conn: &ConnFacts) -> Outcome {
        let mut out = Outcome::default();
        match self.body {
            Body::Immediate(frame) => out.reply = Some(frame),
            Body::Single(v) => out.reply = handle(app, session, conn, v, &mut out.after),
            Body::Batch(items) => {
                let replies: Vec<String> =
                    items.into_iter().filter_map(|v| handle(app, session, conn, v, &mut out.after)).collect();
                if !replies.is_empty() {
                    out.reply = Some(format!("[{}]", replies.join(",")));
                }
            }
        }
        out
    }
}

fn result_frame(result: &Value, id: &Value) -> String {
    format!(r#"{{"jsonrpc":"2.0","result":{result},"id":{id}}}"#)
}

fn error_frame(e: &Error, id: &Value) -> String {
    format!(r#"{{"jsonrpc":"2.0","error":{},"id":{id}}}"#, e.to_wire())
}

/// Process one request object; `None` = nothing to send (a notification).
fn handle(
    app: &App,
    session: &mut Session,
    conn: &ConnFacts,
    req: Value,
    after: &mut Vec<Notification>,
) -> Option<String> {
    let Value::Object(mut obj) = req else {
        return Some(error_frame(&Error::InvalidRequest, &Value::Null));
    };
    // A request without an `id` member is a notification: never answered, whatever happens (decisions §3).
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => return Some(error_frame(&Error::InvalidRequest, &Value::Null)),
    };
    let _corr = logging::correlation(match &id {
        Some(Value::String(s)) => format!("req-{s}"),
        Some(Value::Number(n)) => format!("req-{n}"),
        _ => format!("req-{}", ids::short_id()),
    });
    let params = obj.remove("params").unwrap_or(Value::Null);
    let outcome = envelope(&obj).and_then(|(index, method)| {
        let started = Instant::now();
        let r = call(app, session, conn, method, &params, after);
        app.metrics.record(index, started.elapsed(), r.is_ok());
        r
    });
    let id = id?;
    Some(match outcome {
        Ok(result) => result_frame(&result, &id),
        Err(e) => {
            if let Error::Internal(details) = &e {
                log::error!("internal error: {details}");
            }
            error_frame(&e, &id)
        }
    })
}

/// Envelope checks in the Python order: `jsonrpc`, then `method`, then the table.
fn envelope(obj: &serde_json::Map<String, Value>) -> Result<(usize, &'static Method), Error> {
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Error::InvalidRequest);
    }
    let name = match obj.get("method") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(Error::MissingMethod),
    };
    table::lookup(name).ok_or(Error::MethodNotFound)
}

/// Security pipeline then handler (api.md §2.2 with decisions §4 fixes).
fn call(
    app: &App,
    session: &mut Session,
    conn: &ConnFacts,
    method: &'static Method,
    params: &Value,
    after: &mut Vec<Notification>,
) -> Result<Value, Error> {
    if !session.admit(app.auth.rate_per_minute(), Instant::now()) {
        return Err(Error::RateLimited);
    }
    let just_expired = session.expire_if_due(jwt::now_secs());
    if method.name == "authenticate" {
        return authenticate(app, session, params);
    }
    if let Some(required) = method.role {
        if session.identity.is_none() {
            match per_call_token(params) {
                Some(token) => match app.auth.authenticate(token, None) {
                    Ok(identity) => {
                        session.identity = Some(identity);
                        session.session_id = Some(ids::uuid_v4());
                    }
                    Err(reason) => return Err(Error::AuthFailed(reason.into())),
                },
                None if just_expired => return Err(Error::AuthFailed("token expired".into())),
                None => return Err(Error::AuthRequired { method: method.name.into() }),
            }
        }
        let role = session.identity.as_ref().map(|i| i.role);
        if role.is_none_or(|r| r < required) {
            return Err(Error::PermissionDenied { role: required.as_str(), method: method.name.into() });
        }
    }
    let identity = session.identity.as_ref();
    let caller = Caller {
        client_id: conn.client_id,
        host: conn.host.clone(),
        role: identity.map(|i| i.role),
        user_id: identity.map(|i| i.user_id.clone()),
    };
    let call = Call::new(app, params, &caller);
    // A bug in one handler must cost one request (-32603), not the connection worker and with it the daemon.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| (method.handler)(&call)))
        .unwrap_or_else(|_| Err(Error::internal(format!("handler of {} panicked", method.name))));
    after.extend(call.after_reply.into_inner());
    result
}

fn per_call_token(params: &Value) -> Option<&str> {
    let obj = params.as_object()?;
    obj.get("auth_token").or_else(|| obj.get("token")).and_then(Value::as_str).filter(|t| !t.is_empty())
}

/// `authenticate` (api.md §3.2, decisions §4): bad credentials are a *result* with `authenticated: false`.
fn authenticate(app: &App, session: &mut Session, params: &Value) -> Result<Value, Error> {
    let token = params.as_object().and_then(|o| o.get("auth_token").or_else(|| o.get("token")));
    let token = match token {
        Some(Value::String(t)) if !t.trim().is_empty() => t.as_str(),
        _ => return Err(Error::invalid_params("auth_token (or token) must be a non-empty string")),
    };
    let auth_type = match params.get("auth_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Error::invalid_params("auth_type must be a string")),
    };
    Ok(match app.auth.authenticate(token, auth_type) {
        Err(reason) => {
            log::info!("authentication failed: {reason}");
            json!({"authenticated": false, "error": reason})
        }
        Ok(identity) => {
            let session_id = ids::uuid_v4();
            let expires = identity.expires_at.unwrap_or_else(|| jwt::now_secs() + 24 * 3600);
            let result = json!({
                "authenticated": true,
                "role": identity.role.as_str(),
                "permissions": identity.role.permissions(),
                "expires_at": timefmt::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires.max(0) as u64)),
                "session_id": session_id,
                "user_id": &*identity.user_id,
                "auth_method": identity.method,
            });
            log::info!("authenticated {} as {}", identity.user_id, identity.role);
            session.identity = Some(identity);
            session.session_id = Some(session_id);
            result
        }
    })
}
