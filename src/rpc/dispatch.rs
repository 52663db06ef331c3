//! The JSON-RPC 2.0 envelope and the security pipeline: parse, batch, authenticate, authorize, rate-limit, call,
//! reply. Replies are written by hand so members come in the Python order (`jsonrpc`, `result|error`, `id`), and
//! ids are echoed exactly as the client wrote them (`1E+2` stays `1E+2`, `18446744073709551616` keeps every digit).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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
    /// `None`: absent.
    params: Option<ParamsText>,
}

/// How a request's `params` were kept. Either way they were checked to read as a `Value` (else the frame does not
/// parse, as when the whole frame was read into values); building that value is left to the methods that read it.
enum ParamsText {
    /// As the client wrote them: the method reads its params.
    Raw(Box<RawValue>),
    /// Dropped after the check: the method ignores its params (a `ping` carrying `auth_token`), but a per-call
    /// token may still authenticate the call.
    Skipped { token: Option<String> },
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
            Some(b'{') => match self.request(text) {
                None => Body::Immediate(error_frame(&Error::Parse, None)),
                Some(m) => Body::Single(m),
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
        self.request(raw).unwrap_or(Member { id: Some(null_id()), target: Err(Error::InvalidRequest), params: None })
    }

    /// Read and resolve one request object; `None`: it does not parse.
    fn request(&self, text: &str) -> Option<Member> {
        let m = self.resolve(self.envelope(text, true).ok()?);
        // `params` were skipped for the method named before them, but a later `method` member named one that reads
        // them (a repeated member keeps its last value): read the object again, keeping them.
        let reads = |i: &usize| self.table.lookup_index(*i).reads_params;
        if matches!(m.params, Some(ParamsText::Skipped { .. })) && m.target.as_ref().is_ok_and(reads) {
            return Some(self.resolve(self.envelope(text, false).ok()?));
        }
        Some(m)
    }

    fn envelope<'a>(&self, text: &'a str, skip_unread: bool) -> serde_json::Result<Envelope<'a>> {
        let mut d = serde_json::Deserializer::from_str(text);
        let env = EnvelopeSeed { table: &self.table, skip_unread }.deserialize(&mut d)?;
        d.end()?;
        Ok(env)
    }

    /// Envelope checks in the Python order: `id`, `jsonrpc`, then `method`, then the table.
    fn resolve(&self, env: Envelope) -> Member {
        let invalid = |e: Error| Member { id: Some(null_id()), target: Err(e), params: None };
        let jsonrpc_ok = env.jsonrpc_ok;
        let id = match env.id {
            // A request without `id` is a notification, unless it is not a request at all (no string `method`,
            // e.g. `{}`): that is an invalid request, answered with id null.
            None if !matches!(env.method, Some(Text::Str(_))) => {
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
                Some(Text::Str(name)) if !name.is_empty() => env.found.ok_or(Error::MethodNotFound),
                _ => Err(Error::MissingMethod),
            }
        };
        Member { id, target, params: env.params }
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
        let _corr = match m.id.as_deref().map(RawValue::get) {
            Some("null") | None => logging::correlation(format!("req-{}", ids::short_id())),
            Some(raw) => logging::correlation_of(&["req-", raw.trim_matches('"')]),
        };
        let outcome = m.target.and_then(|index| {
            let started = Instant::now();
            let entry = self.table.lookup_index(index);
            let params = Params { text: m.params.as_ref(), value: OnceCell::new() };
            let r = self.call(entry, session, conn, &params, started, after);
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
        params: &Params,
        now: Instant,
        after: &mut Vec<Notification>,
    ) -> Result<Value, Error> {
        if !session.admit(self.auth.rate_per_minute(), now) {
            return Err(Error::RateLimited);
        }
        let ended = self.end_invalid_session(session);
        if let Some(required) = entry.role {
            if session.identity.is_none() {
                match params.per_call_token() {
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
        // A handler that takes no params ignores whatever was sent, so it gets null rather than a built value.
        let params = if entry.reads_params { params.value() } else { &Value::Null };
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
            Some(i) if self.auth.revoked(i) => "API key revoked",
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
/// last value (as `serde_json::Value` does). Nothing here builds a `serde_json::Value` (a ping would otherwise
/// allocate a map and strings for its params, `jsonrpc` and `method`), but every member it reads is checked as
/// strictly as a `Value` would be, so a frame is rejected (-32700) exactly when it was before.
#[derive(Default)]
struct Envelope<'a> {
    /// Present (even `null`) or absent: absent makes a notification.
    id: Option<Box<RawValue>>,
    /// `jsonrpc` is the string `2.0`.
    jsonrpc_ok: bool,
    method: Option<Text<'a>>,
    /// The table entry `method` names (looked up once, as the member is read).
    found: Option<usize>,
    params: Option<ParamsText>,
}

/// Reads an [`Envelope`] against the method table, so that `params` following a `method` that ignores them are
/// checked without being kept (`skip_unread`).
struct EnvelopeSeed<'t> {
    table: &'t Table,
    skip_unread: bool,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON-RPC request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
        let mut env = Envelope::default();
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Id => env.id = Some(echoable(map.next_value()?)?),
                Field::Jsonrpc => {
                    env.jsonrpc_ok = matches!(map.next_value()?, Text::Str(v) if v == "2.0");
                }
                Field::Method => {
                    let method = map.next_value()?;
                    env.found = match &method {
                        Text::Str(name) if !name.is_empty() => self.table.lookup(name).map(|(i, _)| i),
                        _ => None,
                    };
                    env.method = Some(method);
                }
                Field::Params => {
                    let unread = env.found.is_some_and(|i| !self.table.lookup_index(i).reads_params);
                    env.params = Some(if self.skip_unread && unread {
                        ParamsText::Skipped { token: map.next_value::<TokenOnly>()?.0 }
                    } else {
                        ParamsText::Raw(checked_params(map.next_value()?)?)
                    });
                }
                Field::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(env)
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

/// The reply frame, serialised straight into one buffer (through `Display`, serde_json's formatter adapter cost a
/// third of the reply's CPU).
fn result_frame(result: &Value, id: &RawValue) -> String {
    const HEAD: &str = r#"{"jsonrpc":"2.0","result":"#;
    let mut out = Vec::with_capacity(HEAD.len() + 64 + id.get().len());
    out.extend_from_slice(HEAD.as_bytes());
    serde_json::to_writer(&mut out, result).expect("a Value always serialises");
    out.extend_from_slice(br#","id":"#);
    out.extend_from_slice(id.get().as_bytes());
    out.push(b'}');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

fn error_frame(e: &Error, id: Option<&RawValue>) -> String {
    format!(r#"{{"jsonrpc":"2.0","error":{},"id":{}}}"#, e.to_wire(), id.map_or("null", RawValue::get))
}

/// A request's params as the client wrote them, made into a `Value` on first use.
struct Params<'a> {
    text: Option<&'a ParamsText>,
    value: OnceCell<Value>,
}

impl Params<'_> {
    /// Absent or skipped params read as null. Raw text was checked by [`checked_params`], so it always parses.
    fn value(&self) -> &Value {
        self.value.get_or_init(|| match self.text {
            Some(ParamsText::Raw(r)) => serde_json::from_str(r.get()).unwrap_or_default(),
            _ => Value::Null,
        })
    }

    /// `auth_token` (else `token`) when it is a non-empty string.
    fn per_call_token(&self) -> Option<&str> {
        match self.text {
            Some(ParamsText::Skipped { token }) => token.as_deref(),
            _ => per_call_token(self.value()),
        }
    }
}

/// Params a method ignores, checked like [`Check`], keeping only what [`per_call_token`] would find in them.
struct TokenOnly(Option<String>);

impl<'de> Deserialize<'de> for TokenOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TokenOnly;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TokenOnly, A::Error> {
                // Present members, the last of a repeated one winning (as in a `Value` object): `Some(None)` = not
                // a string.
                let (mut auth_token, mut token) = (None, None);
                while let Some(key) = map.next_key::<Text>()? {
                    let slot = match &key {
                        Text::Str(k) if k == "auth_token" => &mut auth_token,
                        Text::Str(k) if k == "token" => &mut token,
                        _ => {
                            map.next_value_seed(Check::NESTED)?;
                            continue;
                        }
                    };
                    *slot = Some(match map.next_value()? {
                        Text::Str(t) => Some(t.into_owned()),
                        Text::Other => None,
                    });
                }
                Ok(TokenOnly(auth_token.or(token).flatten().filter(|t| !t.is_empty())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TokenOnly, A::Error> {
                Check::NESTED.visit_seq(seq).map(|()| TokenOnly(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TokenOnly, E> {
                Ok(TokenOnly(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TokenOnly, E> {
                Ok(TokenOnly(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TokenOnly, E> {
                Ok(TokenOnly(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TokenOnly, E> {
                Ok(TokenOnly(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<TokenOnly, E> {
                Ok(TokenOnly(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TokenOnly, E> {
                Ok(TokenOnly(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A member the envelope reads only as "a string, and which" (`jsonrpc`, `method`).
enum Text<'a> {
    Str(Cow<'a, str>),
    /// Any other JSON value, checked and dropped.
    Other,
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
                Ok(Text::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
                Check::NESTED.visit_seq(seq).map(|()| Text::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
                Check::NESTED.visit_map(map).map(|()| Text::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a JSON value through `deserialize_any` and keeps nothing: the same checks building a `serde_json::Value`
/// makes (numbers in range, string escapes, nesting depth), without the allocations. serde_json's own ignore path
/// (`IgnoredAny`, `RawValue`) is more lenient: it accepts `1e400` and any depth.
#[derive(Clone, Copy)]
struct Check {
    /// Arrays and objects that may still open inside this value.
    levels: usize,
}

impl Check {
    /// Inside the frame being parsed: serde_json's own depth limit applies.
    const NESTED: Check = Check { levels: usize::MAX };
    /// `params` re-read on its own, one level shallower than inside its request object: parsed with the request,
    /// serde_json refused an array or object nested 127 levels deep inside params (the request object is the
    /// 128th); alone it would allow one level more.
    const PARAMS: Check = Check { levels: 126 };

    fn inner<E: de::Error>(self) -> Result<Check, E> {
        match self.levels.checked_sub(1) {
            Some(levels) => Ok(Check { levels }),
            None => Err(E::custom("recursion limit exceeded")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// `params` kept as text, after checking that it reads as a `Value` (else the frame does not parse, as before).
fn checked_params<E: de::Error>(raw: Box<RawValue>) -> Result<Box<RawValue>, E> {
    let mut d = serde_json::Deserializer::from_str(raw.get());
    Check::PARAMS.deserialize(&mut d).map_err(E::custom)?;
    Ok(raw)
}

fn per_call_token(params: &Value) -> Option<&str> {
    let obj = params.as_object()?;
    obj.get("auth_token").or_else(|| obj.get("token")).and_then(Value::as_str).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::Role;
    use crate::rpc::params::NoParams;
    use crate::rpc::{method, Method};

    #[derive(Deserialize)]
    struct EchoParams {
        #[serde(flatten)]
        all: serde_json::Map<String, Value>,
    }

    fn pong(_: &(), _: NoParams, _: &Call) -> crate::error::Result<Value> {
        Ok(json!("pong"))
    }

    fn echo(_: &(), p: EchoParams, _: &Call) -> crate::error::Result<Value> {
        Ok(Value::Object(p.all))
    }

    static METHODS: &[Method<()>] = &[method!("pong", Viewer, Inline, pong), method!("echo", Viewer, Inline, echo)];

    fn dispatcher() -> (Dispatcher, Authenticator) {
        let auth = Authenticator::new(b"unit-secret", "/nonexistent/keys.json".into(), 1_000_000);
        let table = Table::new().with((), METHODS);
        let metrics = Arc::new(Metrics::new(&["pong", "echo"]));
        let limits = Limits { max_batch: MAX_BATCH, reply_budget: 1 << 20 };
        (Dispatcher::new(table, auth.clone(), metrics, limits), auth)
    }

    /// The reply to one frame on a fresh session.
    fn reply(d: &Dispatcher, session: &mut Session, frame: &str) -> Value {
        let out = d.run(d.parse(frame), session, &ConnFacts::default());
        serde_json::from_str(&out.reply.expect("a reply")).unwrap()
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn frames_are_rejected_exactly_when_they_do_not_read_as_values() {
        let (d, auth) = dispatcher();
        let token = auth.issue("u", Role::Admin, 60);
        for method in ["pong", "echo"] {
            for params in [
                format!(r#"{{"auth_token":"{token}","x":1e400}}"#),
                format!(r#"{{"auth_token":"{token}","x":"\ud800"}}"#),
                format!(r#"{{"auth_token":"{token}","x":{}}}"#, nested(125)),
                format!(r#"{{"auth_token":"{token}","x":{}}}"#, nested(126)),
                format!(r#"{{"auth_token":"{token}","x":[1,{{"y":-0.5e-3,"z":[null,true,"\u00e9"]}}]}}"#),
                "1e400".into(),
            ] {
                let frame = format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{params},"id":7}}"#);
                let as_value = serde_json::from_str::<Value>(&frame).is_ok();
                let r = reply(&d, &mut Session::default(), &frame);
                assert_eq!(r["error"]["code"] != json!(-32700), as_value, "{method} {params:.80}: {r}");
                if as_value && !params.starts_with('1') {
                    assert!(r.get("result").is_some(), "{method}: {r}");
                }
            }
        }
    }

    #[test]
    fn skipped_params_still_authenticate_and_a_later_method_member_wins() {
        let (d, auth) = dispatcher();
        let token = auth.issue("u", Role::Admin, 60);
        let cases = [
            (format!(r#"{{"auth_token":"{token}"}}"#), true),
            (format!(r#"{{"token":"{token}"}}"#), true),
            (format!(r#"{{"auth_token":"","token":"{token}"}}"#), false),
            (format!(r#"{{"auth_token":null,"token":"{token}"}}"#), false),
            (format!(r#"{{"auth_token":"bad","auth_token":"{token}"}}"#), true),
            (format!(r#"["{token}"]"#), false),
        ];
        for (params, ok) in cases {
            let frame = format!(r#"{{"jsonrpc":"2.0","method":"pong","params":{params},"id":1}}"#);
            let r = reply(&d, &mut Session::default(), &frame);
            assert_eq!(r.get("result") == Some(&json!("pong")), ok, "{params:.60}: {r}");
        }
        // `params` read for `pong`, but the last `method` member is `echo`, which reads them.
        let frame = format!(
            r#"{{"jsonrpc":"2.0","method":"pong","params":{{"auth_token":"{token}","k":[1]}},"method":"echo","id":2}}"#
        );
        let r = reply(&d, &mut Session::default(), &frame);
        assert_eq!(r["result"]["k"], json!([1]), "{r}");
        assert_eq!(r["id"], json!(2));
    }
}
