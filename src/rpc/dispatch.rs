//! The JSON-RPC 2.0 envelope and the security pipeline: parse, batch, authenticate, authorize, rate-limit, call,
//! reply. Replies are written by hand so members come in the Python order (`jsonrpc`, `result|error`, `id`), and
//! ids are echoed exactly as the client wrote them (`1E+2` stays `1E+2`, `18446744073709551616` keeps every digit).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::metrics::Metrics;
use super::notify::Notification;
use super::table::{Entry, Table};
use super::{Call, Caller, Exec};
use crate::auth::{jwt, Authenticator, Session};
use crate::error::Error;
use crate::logging;
use crate::util::ids;

/// Most requests one batch may carry; a longer batch is answered with one -32600 (documented in docs/api.md).
pub const MAX_BATCH: usize = 100;

/// Limits of one frame's work.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// See [`MAX_BATCH`].
    pub max_batch: usize,
    /// Bytes of replies one batch may produce; members after it is spent are not run and get -32600 (a larger
    /// reply could overflow the connection's bounded output queue, which drops the client).
    pub reply_budget: usize,
}

/// Runs frames against the daemon's method [`Table`]. Shared by the connection workers and the job pool.
pub struct Dispatcher {
    table: Table,
    auth: Authenticator,
    metrics: Arc<Metrics>,
    /// Metrics slot of each table entry, by entry index.
    slots: Vec<Option<usize>>,
    limits: Limits,
}

/// Connection facts the dispatcher needs besides the session.
#[derive(Debug, Clone, Default)]
pub struct ConnFacts {
    pub client_id: u64,
    pub host: Option<Arc<str>>,
}

/// What running a frame produced.
#[derive(Default)]
pub struct Outcome {
    /// The text frame to send, if any (notifications get none; a batch gets one array).
    pub reply: Option<String>,
    /// Notifications to publish after the reply is queued.
    pub after: Vec<Notification>,
}

/// One parsed frame, ready to run (on the connection worker, or on the blocking pool when any member needs it).
pub struct Work {
    body: Body,
    blocking: bool,
}

enum Body {
    /// A reply decided without running anything (parse error, empty or oversized batch).
    Immediate(String),
    Single(Member),
    Batch(Vec<Member>),
}

/// One request object of a frame, checked against the envelope rules and resolved against the table.
struct Member {
    /// `None`: a notification (never answered).
    id: Option<Box<RawValue>>,
    target: Result<usize, Error>,
    params: Value,
}

impl Dispatcher {
    pub fn new(table: Table, auth: Authenticator, metrics: Arc<Metrics>, limits: Limits) -> Dispatcher {
        let slots = table.index_names().map(|n| metrics.slot(n)).collect();
        Dispatcher { table, auth, metrics, slots, limits }
    }

    /// The credential checker (also used to stop notifications to revoked sessions).
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// Every registered method name, sorted.
    pub fn method_names(&self) -> Vec<&'static str> {
        self.table.names()
    }

    /// Parse one text frame.
    pub fn parse(&self, text: &str) -> Work {
        let body = match text.trim_start().as_bytes().first() {
            Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(text) {
                Err(_) => Body::Immediate(error_frame(&Error::Parse, None)),
                Ok(items) if items.is_empty() => Body::Immediate(error_frame(&Error::InvalidRequest, None)),
                Ok(items) if items.len() > self.limits.max_batch => {
                    let why =
                        format!("a batch may hold at most {} requests, got {}", self.limits.max_batch, items.len());
                    Body::Immediate(error_frame(&Error::InvalidBatch(why), None))
                }
                Ok(items) => Body::Batch(items.iter().map(|raw| self.member(raw.get())).collect()),
            },
            Some(b'{') => match serde_json::from_str::<Envelope>(text) {
                Err(_) => Body::Immediate(error_frame(&Error::Parse, None)),
                Ok(env) => Body::Single(self.resolve(env)),
            },
            // Valid JSON that is not an object or an array is an invalid request; anything else does not parse.
            _ => match serde_json::from_str::<de::IgnoredAny>(text) {
                Ok(_) => Body::Immediate(error_frame(&Error::InvalidRequest, None)),
                Err(_) => Body::Immediate(error_frame(&Error::Parse, None)),
            },
        };
        let blocking = match &body {
            Body::Immediate(_) => false,
            Body::Single(m) => self.is_blocking(m),
            Body::Batch(items) => items.iter().any(|m| self.is_blocking(m)),
        };
        Work { body, blocking }
    }

    fn is_blocking(&self, m: &Member) -> bool {
        m.target.as_ref().is_ok_and(|&i| self.table.lookup_index(i).exec == Exec::Blocking)
    }

    /// A batch member (any JSON value).
    fn member(&self, raw: &str) -> Member {
        match serde_json::from_str::<Envelope>(raw) {
            Ok(env) => self.resolve(env),
            Err(_) => Member { id: Some(null_id()), target: Err(Error::InvalidRequest), params: Value::Null },
        }
    }

    /// Envelope checks in the Python order: `id`, `jsonrpc`, then `method`, then the table.
    fn resolve(&self, env: Envelope) -> Member {
        let invalid = |e: Error| Member { id: Some(null_id()), target: Err(e), params: Value::Null };
        let jsonrpc_ok = env.jsonrpc_ok();
        let id = match env.id {
            // A request without `id` is a notification, unless it is not a request at all (no string `method`,
            // e.g. `{}`): that is an invalid request, answered with id null.
            None if !matches!(env.method, Some(Value::String(_))) => {
                let e = if jsonrpc_ok { Error::MissingMethod } else { Error::InvalidRequest };
                return invalid(e);
            }
            None => None,
            Some(raw) if valid_id(&raw) => Some(raw),
            Some(_) => return invalid(Error::InvalidRequest),
        };
        let target = if !jsonrpc_ok {
            Err(Error::InvalidRequest)
        } else {
            match &env.method {
                Some(Value::String(name)) if !name.is_empty() => {
                    self.table.lookup(name).map(|(i, _)| i).ok_or(Error::MethodNotFound)
                }
                _ => Err(Error::MissingMethod),
            }
        };
        Member { id, target, params: env.params.unwrap_or(Value::Null) }
    }

    /// Run a parsed frame with the connection's session.
    pub fn run(&self, work: Work, session: &mut Session, conn: &ConnFacts) -> Outcome {
        let mut out = Outcome::default();
        match work.body {
            Body::Immediate(frame) => out.reply = Some(frame),
            Body::Single(m) => out.reply = self.handle(m, session, conn, &mut out.after),
            Body::Batch(items) => {
                let mut replies: Vec<String> = Vec::new();
                let mut bytes = 0usize;
                for m in items {
                    let reply = if bytes > self.limits.reply_budget {
                        let why =
                            format!("the batch reply exceeds {} bytes: send the rest again", self.limits.reply_budget);
                        m.id.map(|id| error_frame(&Error::InvalidBatch(why), Some(&id)))
                    } else {
                        self.handle(m, session, conn, &mut out.after)
                    };
                    if let Some(r) = reply {
                        bytes += r.len() + 1;
                        replies.push(r);
                    }
                }
                if !replies.is_empty() {
                    out.reply = Some(format!("[{}]", replies.join(",")));
                }
            }
        }
        out
    }

    /// Process one request object; `None` = nothing to send (a notification).
    fn handle(
        &self,
        m: Member,
        session: &mut Session,
        conn: &ConnFacts,
        after: &mut Vec<Notification>,
    ) -> Option<String> {
        let _corr = logging::correlation(correlation_id(m.id.as_deref()));
        let outcome = m.target.and_then(|index| {
            let started = Instant::now();
            let entry = self.table.lookup_index(index);
            let r = self.call(entry, session, conn, &m.params, after);
            if let Some(slot) = self.slots[index] {
                self.metrics.record(slot, started.elapsed(), r.is_ok());
            }
            r
        });
        let id = m.id?;
        Some(match outcome {
            Ok(result) => result_frame(&result, &id),
            Err(e) => {
                if let Error::Internal(details) = &e {
                    log::error!("internal error: {details}");
                }
                error_frame(&e, Some(&id))
            }
        })
    }

    /// The security pipeline, then the handler under the panic guard.
    fn call(
        &self,
        entry: &Entry,
        session: &mut Session,
        conn: &ConnFacts,
        params: &Value,
        after: &mut Vec<Notification>,
    ) -> Result<Value, Error> {
        if !session.admit(self.auth.rate_per_minute(), Instant::now()) {
            return Err(Error::RateLimited);
        }
        let ended = self.end_invalid_session(session);
        if let Some(required) = entry.role {
            if session.identity.is_none() {
                match per_call_token(params) {
                    Some(token) => match self.auth.authenticate(token, None) {
                        Ok(identity) => {
                            session.identity = Some(identity);
                            session.session_id = Some(ids::uuid_v4());
                        }
                        Err(reason) => return Err(Error::AuthFailed(reason.into())),
                    },
                    None => match ended {
                        Some(reason) => return Err(Error::AuthFailed(reason.into())),
                        None => return Err(Error::AuthRequired { method: entry.name.into() }),
                    },
                }
            }
            let role = session.identity.as_ref().map(|i| i.role);
            if role.is_none_or(|r| r < required) {
                return Err(Error::PermissionDenied { role: required.as_str(), method: entry.name.into() });
            }
        }
        let identity = session.identity.as_ref();
        let caller = Caller {
            client_id: conn.client_id,
            host: conn.host.clone(),
            role: identity.map(|i| i.role),
            user_id: identity.map(|i| i.user_id.clone()),
        };
        let call = Call::new(&caller);
        // A bug in one handler must cost one request (-32603), not the connection worker and with it the daemon.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| entry.run(params, &call, session)))
            .unwrap_or_else(|_| Err(Error::internal(format!("handler of {} panicked", entry.name))));
        after.extend(call.into_after_reply());
        result
    }

    /// End a session whose JWT expired or whose API key was revoked; returns why (for the -32001 text).
    fn end_invalid_session(&self, session: &mut Session) -> Option<&'static str> {
        let why = match &session.identity {
            None => return None,
            Some(i) if i.expires_at.is_some_and(|exp| jwt::now_secs() >= exp) => "token expired",
            Some(i) if !self.auth.still_valid(i) => "API key revoked",
            Some(_) => return None,
        };
        session.identity = None;
        session.session_id = None;
        Some(why)
    }
}

impl Work {
    /// True when some member calls a method that must not run on the connection worker.
    pub fn is_blocking(&self) -> bool {
        self.blocking
    }
}

/// The members of a request object the envelope needs; every other member is ignored. A repeated member keeps its
/// last value (as `serde_json::Value` does).
#[derive(Default)]
struct Envelope {
    /// Present (even `null`) or absent: absent makes a notification.
    id: Option<Box<RawValue>>,
    jsonrpc: Option<Value>,
    method: Option<Value>,
    params: Option<Value>,
}

impl Envelope {
    fn jsonrpc_ok(&self) -> bool {
        matches!(&self.jsonrpc, Some(Value::String(v)) if v == "2.0")
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON-RPC request object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
                let mut env = Envelope::default();
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Id => env.id = Some(echoable(map.next_value()?)?),
                        Field::Jsonrpc => env.jsonrpc = Some(map.next_value()?),
                        Field::Method => env.method = Some(map.next_value()?),
                        Field::Params => env.params = Some(map.next_value()?),
                        Field::Other => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(env)
            }
        }
        d.deserialize_map(V)
    }
}

/// The envelope's member names (read without allocating).
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Id,
    Jsonrpc,
    Method,
    Params,
    #[serde(other)]
    Other,
}

/// An id is echoed as written; a number no JSON reader can hold (`1e400`) makes the frame unreadable, as it did when
/// the whole frame was parsed into values (-32700), instead of a reply that clients cannot parse.
fn echoable<E: de::Error>(raw: Box<RawValue>) -> Result<Box<RawValue>, E> {
    if matches!(raw.get().as_bytes().first(), Some(b'-' | b'0'..=b'9')) {
        serde_json::from_str::<serde_json::Number>(raw.get()).map_err(E::custom)?;
    }
    Ok(raw)
}

/// A string, a number or null.
fn valid_id(raw: &RawValue) -> bool {
    matches!(raw.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9' | b'n'))
}

fn null_id() -> Box<RawValue> {
    RawValue::from_string("null".to_string()).expect("null is JSON")
}

fn correlation_id(id: Option<&RawValue>) -> String {
    match id.map(RawValue::get) {
        Some("null") | None => format!("req-{}", ids::short_id()),
        Some(raw) => format!("req-{}", raw.trim_matches('"')),
    }
}

fn result_frame(result: &Value, id: &RawValue) -> String {
    format!(r#"{{"jsonrpc":"2.0","result":{result},"id":{}}}"#, id.get())
}

fn error_frame(e: &Error, id: Option<&RawValue>) -> String {
    format!(r#"{{"jsonrpc":"2.0","error":{},"id":{}}}"#, e.to_wire(), id.map_or("null", RawValue::get))
}

fn per_call_token(params: &Value) -> Option<&str> {
    let obj = params.as_object()?;
    obj.get("auth_token").or_else(|| obj.get("token")).and_then(Value::as_str).filter(|t| !t.is_empty())
}
