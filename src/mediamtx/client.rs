//! Blocking client for the MediaMTX control API (v3), one method per MediaMTX operation.
//!
//! Every call is bounded (`mediamtx.api_timeout`, connect ≤ 2 s). Replies are read whatever their status (so error
//! bodies can be shown), and every 1.x shape is accepted: an empty 200 or `{"status":"ok"}`, errors with or
//! without `"status"` or with no body at all, `available` or only `ready`, missing counters. A plain-text 404 means
//! the route does not exist (old server, protocol disabled, or a wrong method), never "object missing".

use std::fmt;
use std::io;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// Why a MediaMTX call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// JSON 404: the named object does not exist.
    NotFound(String),
    /// 400 `path already exists` on add.
    AlreadyExists,
    /// Any other 400: validation or decode error, shown verbatim.
    BadRequest(String),
    /// Plain-text 404: the route is unknown to this server.
    UnknownRoute(String),
    /// 5xx, 401, an unexpected status, or a reply we cannot parse.
    Server { status: u16, message: String },
    /// Connection refused, reset, or closed: MediaMTX down (or its API disabled).
    Unreachable(String),
    /// The call did not finish within `mediamtx.api_timeout`.
    Timeout,
}

impl ApiError {
    /// A transport failure (nothing reached MediaMTX, or it did not answer).
    pub fn is_transport(&self) -> bool {
        matches!(self, ApiError::Unreachable(_) | ApiError::Timeout)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::NotFound(m) => write!(f, "not found: {m}"),
            ApiError::AlreadyExists => f.write_str("path already exists"),
            ApiError::BadRequest(m) => write!(f, "bad request: {m}"),
            ApiError::UnknownRoute(r) => write!(f, "unknown route {r} (MediaMTX too old or feature disabled)"),
            ApiError::Server { status, message } => write!(f, "server error {status}: {message}"),
            ApiError::Unreachable(m) => write!(f, "unreachable: {m}"),
            ApiError::Timeout => f.write_str("timed out"),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// One runtime path (`/v3/paths/list` item). Every field is optional: older servers lack the newer ones.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct RuntimePath {
    pub name: String,
    pub conf_name: String,
    pub ready: Option<bool>,
    pub ready_time: Option<String>,
    pub available: Option<bool>,
    pub available_time: Option<String>,
    pub source: Option<Value>,
    pub readers: Option<Vec<Value>>,
    pub bytes_sent: Option<u64>,
    pub outbound_bytes: Option<u64>,
    pub bytes_received: Option<u64>,
    pub inbound_bytes: Option<u64>,
}

impl RuntimePath {
    /// `available` when the server has it (v1.16+), else `ready`.
    pub fn is_ready(&self) -> bool {
        self.available.or(self.ready).unwrap_or(false)
    }

    /// Since when the stream is available (RFC 3339), if it is.
    pub fn ready_since(&self) -> Option<&str> {
        self.available_time.as_deref().or(self.ready_time.as_deref())
    }

    pub fn reader_count(&self) -> u64 {
        self.readers.as_ref().map_or(0, |r| r.len() as u64)
    }

    pub fn sent(&self) -> u64 {
        self.outbound_bytes.or(self.bytes_sent).unwrap_or(0)
    }
}

#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[derive(Default)]
struct Page<T> {
    page_count: u64,
    items: Option<Vec<T>>,
}

/// Items per page for list calls (the default 100 would cut long lists).
const PAGE_SIZE: u32 = 1000;
/// Bound on pages followed (a broken `pageCount` must not loop forever).
const MAX_PAGES: u64 = 100;

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

/// A raw reply: status, whether it was plain text, body.
struct Reply {
    status: u16,
    text: bool,
    body: String,
}

impl Client {
    /// `base` like `http://127.0.0.1:9997`; `timeout` bounds each whole call.
    pub fn new(base: &str, timeout: Duration) -> Client {
        let timeout = timeout.max(Duration::from_millis(50));
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(2))))
            .http_status_as_error(false)
            // MediaMTX is on this box (or the LAN): an HTTP(S)_PROXY from the environment must not apply.
            .proxy(None)
            .max_redirects(0)
            .max_idle_connections_per_host(4)
            .user_agent("camera-service")
            .build();
        Client { agent: config.into(), base: base.trim_end_matches('/').to_string() }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /v3/config/global/get` (the health probe). The object is only looked at, never written back.
    pub fn get_global_config(&self) -> ApiResult<Value> {
        self.json(self.request("GET", "/v3/config/global/get", None)?)
    }

    /// `GET /v3/info` (v1.15.2+; older servers answer `UnknownRoute`).
    pub fn get_info(&self) -> ApiResult<Value> {
        self.json(self.request("GET", "/v3/info", None)?)
    }

    /// `GET /v3/paths/list`, every page.
    pub fn list_paths(&self) -> ApiResult<Vec<RuntimePath>> {
        let mut all = Vec::new();
        let mut page = 0;
        loop {
            let route = format!("/v3/paths/list?itemsPerPage={PAGE_SIZE}&page={page}");
            let reply = self.request("GET", &route, None)?;
            let parsed: Page<RuntimePath> = self.parse(&reply)?;
            all.extend(parsed.items.unwrap_or_default());
            page += 1;
            if page >= parsed.page_count || page >= MAX_PAGES {
                return Ok(all);
            }
        }
    }

    /// `GET /v3/paths/get/{name}`: the runtime path (`NotFound` = not present right now).
    pub fn get_path(&self, name: &str) -> ApiResult<RuntimePath> {
        let reply = self.request("GET", &format!("/v3/paths/get/{}", encode(name)), None)?;
        self.parse(&reply)
    }

    /// `GET /v3/config/paths/get/{name}`: the effective path config.
    pub fn get_path_config(&self, name: &str) -> ApiResult<Value> {
        self.json(self.request("GET", &format!("/v3/config/paths/get/{}", encode(name)), None)?)
    }

    /// `POST /v3/config/paths/add/{name}`. Not retried: a lost reply must be resolved by re-reading.
    pub fn add_path(&self, name: &str, body: &Value) -> ApiResult<()> {
        self.ok(self.request("POST", &format!("/v3/config/paths/add/{}", encode(name)), Some(body))?)
    }

    /// `PATCH /v3/config/paths/patch/{name}`: merge keys into the entry.
    pub fn patch_path(&self, name: &str, body: &Value) -> ApiResult<()> {
        self.ok(self.request("PATCH", &format!("/v3/config/paths/patch/{}", encode(name)), Some(body))?)
    }

    /// `POST /v3/config/paths/replace/{name}`: swap the entry's keys (an upsert).
    pub fn replace_path(&self, name: &str, body: &Value) -> ApiResult<()> {
        self.ok(self.request("POST", &format!("/v3/config/paths/replace/{}", encode(name)), Some(body))?)
    }

    /// `DELETE /v3/config/paths/delete/{name}`.
    pub fn delete_path(&self, name: &str) -> ApiResult<()> {
        self.ok(self.request("DELETE", &format!("/v3/config/paths/delete/{}", encode(name)), None)?)
    }

    fn ok(&self, reply: Reply) -> ApiResult<()> {
        check(&reply).map(|_| ())
    }

    fn json(&self, reply: Reply) -> ApiResult<Value> {
        self.parse(&reply)
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, reply: &Reply) -> ApiResult<T> {
        check(reply)?;
        serde_json::from_str(&reply.body)
            .map_err(|e| ApiError::Server { status: reply.status, message: format!("unreadable reply: {e}") })
    }

    /// One call; idempotent ones (everything but add) are retried once on a transport error that a stale
    /// pooled keep-alive connection produces (MediaMTX restarts its API listener on some config changes).
    fn request(&self, method: &str, route: &str, body: Option<&Value>) -> ApiResult<Reply> {
        let idempotent = !route.starts_with("/v3/config/paths/add/");
        match self.send(method, route, body) {
            Err(Transport::Stale(e)) if idempotent => {
                log::debug!("MediaMTX {method} {route}: {e}; retrying on a fresh connection");
                self.send(method, route, body).map_err(Transport::into_api)
            }
            other => other.map_err(Transport::into_api),
        }
    }

    fn send(&self, method: &str, route: &str, body: Option<&Value>) -> Result<Reply, Transport> {
        let url = format!("{}{}", self.base, route);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            // MediaMTX rejects an empty body: always send at least `{}`.
            ("POST", b) => self.agent.post(&url).send_json(b.unwrap_or(&Value::Object(Default::default()))),
            ("PATCH", b) => self.agent.patch(&url).send_json(b.unwrap_or(&Value::Object(Default::default()))),
            _ => unreachable!("unsupported method {method}"),
        };
        let mut resp = result.map_err(Transport::from)?;
        let status = resp.status().as_u16();
        let text = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"));
        let body = resp.body_mut().with_config().limit(64 * 1024 * 1024).read_to_string().map_err(Transport::from)?;
        Ok(Reply { status, text, body })
    }
}

/// Classify a reply by status first (MediaMTX's API answers errors with a status and a JSON body whose shape varies
/// by version).
fn check(reply: &Reply) -> ApiResult<()> {
    let message = || error_message(&reply.body).unwrap_or_else(|| format!("HTTP {}", reply.status));
    match reply.status {
        200..=299 => Ok(()),
        404 if reply.text || reply.body.trim() == "404 page not found" => {
            Err(ApiError::UnknownRoute(reply.body.trim().to_string()))
        }
        404 => Err(ApiError::NotFound(message())),
        400 if message().contains("already exists") => Err(ApiError::AlreadyExists),
        400 => Err(ApiError::BadRequest(message())),
        status => Err(ApiError::Server { status, message: message() }),
    }
}

/// `error` of a JSON error body (with or without `"status"`).
fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v.get("error").and_then(Value::as_str).map(str::to_string)
}

enum Transport {
    /// Reset/EOF/broken pipe: possibly a stale pooled connection.
    Stale(String),
    Other(ApiError),
}

impl Transport {
    fn into_api(self) -> ApiError {
        match self {
            Transport::Stale(e) => ApiError::Unreachable(e),
            Transport::Other(e) => e,
        }
    }
}

impl From<ureq::Error> for Transport {
    fn from(e: ureq::Error) -> Transport {
        match e {
            ureq::Error::Timeout(_) => Transport::Other(ApiError::Timeout),
            ureq::Error::Io(io) => match io.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Transport::Other(ApiError::Timeout),
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => Transport::Stale(io.to_string()),
                _ => Transport::Other(ApiError::Unreachable(io.to_string())),
            },
            ureq::Error::Protocol(p) => Transport::Stale(p.to_string()),
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
                Transport::Other(ApiError::Unreachable(e.to_string()))
            }
            other => Transport::Other(ApiError::Server { status: 0, message: other.to_string() }),
        }
    }
}

/// Percent-encode a path name for the URL (slashes stay: names may contain them).
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, text: bool, body: &str) -> Reply {
        Reply { status, text, body: body.into() }
    }

    #[test]
    fn reply_shapes() {
        assert_eq!(check(&reply(200, false, "")), Ok(()));
        assert_eq!(check(&reply(200, false, r#"{"status":"ok"}"#)), Ok(()));
        assert_eq!(
            check(&reply(404, true, "404 page not found")),
            Err(ApiError::UnknownRoute("404 page not found".into()))
        );
        assert_eq!(
            check(&reply(404, false, r#"{"status":"error","error":"path not found"}"#)),
            Err(ApiError::NotFound("path not found".into()))
        );
        assert_eq!(
            check(&reply(404, false, r#"{"error":"path not found"}"#)),
            Err(ApiError::NotFound("path not found".into()))
        );
        assert_eq!(check(&reply(400, false, r#"{"error":"path already exists"}"#)), Err(ApiError::AlreadyExists));
        assert_eq!(check(&reply(400, false, "")), Err(ApiError::BadRequest("HTTP 400".into())));
        assert_eq!(
            check(&reply(500, false, r#"{"status":"error","error":"terminated"}"#)),
            Err(ApiError::Server { status: 500, message: "terminated".into() })
        );
    }

    #[test]
    fn runtime_path_versions() {
        let old: RuntimePath =
            serde_json::from_str(r#"{"name":"camera0","ready":true,"readers":[{}],"bytesSent":5}"#).unwrap();
        assert!(old.is_ready());
        assert_eq!((old.reader_count(), old.sent()), (1, 5));
        let new: RuntimePath = serde_json::from_str(
            r#"{"name":"camera0","ready":true,"available":false,"readers":[],"outboundBytes":7,"bytesSent":5}"#,
        )
        .unwrap();
        assert!(!new.is_ready());
        assert_eq!(new.sent(), 7);
    }

    #[test]
    fn encodes_names() {
        assert_eq!(encode("camera0"), "camera0");
        assert_eq!(encode("~^cam$"), "%7E%5Ecam%24");
    }
}
