//! A faithful fake of the MediaMTX v1.20.1 control API, in-process.
//!
//! Hand-written HTTP/1.1 on a `std::net::TcpListener` bound to 127.0.0.1:0 (faults such as RST need the raw
//! socket), keep-alive, a request log, the config/runtime state machine with MediaMTX's exact status codes and
//! error texts, and fault knobs. Threads are bounded: one accept thread plus at most [`MAX_CONNECTIONS`]
//! connection threads, each of which notices shutdown within ~50 ms.
//!
//! Limitation: regular-expression entries (`~...`) match only when they are match-all (`~^.*$`, `~.*`), like
//! `all` / `all_others`; the daemon never relies on other regexps. `ReloadLag` is not modelled.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

#[path = "fake_mediamtx_http.rs"]
mod http;
#[path = "fake_mediamtx_rules.rs"]
mod rules;

use http::{accept_loop, pct_decode, Reply, Request};
pub use rules::Profile;
use rules::{as_shown, decode_path_conf, error_body, validate_entry};

pub const MAX_CONNECTIONS: usize = 64;

/// A fault to inject. `Down` is [`FakeMediaMtx::set_down`]; `Restart` is
/// [`FakeMediaMtx::restart`]; `Profile` is [`FakeMediaMtx::set_profile`].
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Read the request, never answer (until the knob is cleared or the client hangs up).
    Hang,
    /// Sleep before the status line.
    Slow(Duration),
    /// Send the head, sleep, then the body.
    SlowBody(Duration),
    /// Answer with this status and a JSON error body.
    Status(u16, String),
    /// Read the request, then RST.
    ResetBeforeReply,
    /// Send the head and half the body, then RST.
    ResetMidBody,
    /// `Connection: close` after every response.
    CloseAfterEachResponse,
    /// 200 with `{"items":`.
    BadJson,
    /// Every 200 without a body (pre-1.15.5 success).
    EmptyBody200,
    /// 401 after `delay`.
    Unauthorized { delay: Duration },
    /// The plain-text 404 on a known route.
    PlainNotFound,
}

/// Which requests a fault applies to: all, a route prefix, or a method plus a route prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub method: Option<String>,
    pub prefix: Option<String>,
}

impl Scope {
    pub fn all() -> Scope {
        Scope::default()
    }
    pub fn route(prefix: &str) -> Scope {
        Scope { method: None, prefix: Some(prefix.into()) }
    }
    pub fn method_route(method: &str, prefix: &str) -> Scope {
        Scope { method: Some(method.into()), prefix: Some(prefix.into()) }
    }
    fn matches(&self, req: &Request) -> bool {
        self.method.as_deref().is_none_or(|m| m == req.method)
            && self.prefix.as_deref().is_none_or(|p| req.path.starts_with(p))
    }
}

struct Rule {
    fault: Fault,
    scope: Scope,
    remaining: Option<u32>,
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl LoggedRequest {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Debug, Clone, Default)]
struct Runtime {
    conf_name: String,
    source: Option<(String, String)>,
    available_since: Option<String>,
    tracks: Vec<String>,
    readers: Vec<(String, String)>,
    in_bytes: u64,
    out_bytes: u64,
}

struct State {
    global: Map<String, Value>,
    defaults: Map<String, Value>,
    entries: BTreeMap<String, Map<String, Value>>,
    /// Entries from the "config file": they survive a restart.
    seeded: BTreeSet<String>,
    runtime: BTreeMap<String, Runtime>,
    recordings: BTreeMap<String, Vec<String>>,
    started: String,
}

struct Inner {
    addr: SocketAddr,
    state: Mutex<State>,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<LoggedRequest>>,
    profile: Mutex<Profile>,
    down: AtomicBool,
    stop: AtomicBool,
    listening: AtomicBool,
    conns: AtomicUsize,
    clear_epoch: AtomicU64,
}

/// The fake server; dropping it stops it.
pub struct FakeMediaMtx {
    inner: Arc<Inner>,
    accept: Option<thread::JoinHandle<()>>,
}

fn now_rfc3339() -> String {
    camera_service::util::timefmt::rfc3339_millis(SystemTime::now())
}

fn is_regexp(name: &str) -> bool {
    name.starts_with('~') || name == "all" || name == "all_others"
}

impl FakeMediaMtx {
    /// A fake with no path entries (a `mediamtx.yml` without `paths`).
    pub fn start() -> FakeMediaMtx {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake MediaMTX");
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            addr,
            state: Mutex::new(State {
                global: rules::seed_global(),
                defaults: rules::seed_path_defaults(),
                entries: BTreeMap::new(),
                seeded: BTreeSet::new(),
                runtime: BTreeMap::new(),
                recordings: BTreeMap::new(),
                started: now_rfc3339(),
            }),
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            profile: Mutex::new(Profile::V1_20_1),
            down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            listening: AtomicBool::new(true),
            conns: AtomicUsize::new(0),
            clear_epoch: AtomicU64::new(0),
        });
        let i = inner.clone();
        let accept =
            thread::Builder::new().name("fake-mediamtx".into()).spawn(move || accept_loop(i, listener)).unwrap();
        FakeMediaMtx { inner, accept: Some(accept) }
    }

    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    // ---- knobs ----

    /// Inject `fault` for requests in `scope`: the next `count` of them, or all until cleared.
    pub fn inject(&self, fault: Fault, scope: Scope, count: Option<u32>) {
        self.inner.rules.lock().push(Rule { fault, scope, remaining: count });
    }

    /// Inject `fault` for every request until cleared.
    pub fn fault(&self, fault: Fault) {
        self.inject(fault, Scope::all(), None);
    }

    /// Remove every fault (hanging requests are released without an answer).
    pub fn clear_faults(&self) {
        self.inner.rules.lock().clear();
        self.inner.clear_epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub fn set_profile(&self, p: Profile) {
        *self.inner.profile.lock() = p;
    }

    /// Down: stop listening (connection refused) and close open connections. Up: listen again on the same port.
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.inner.addr, Duration::from_millis(200));
        for _ in 0..400 {
            if self.inner.listening.load(Ordering::SeqCst) != down {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        panic!("fake MediaMTX could not switch down={down}");
    }

    /// MediaMTX restarted: entries added through the API are forgotten, runtime paths reset, new `started`.
    pub fn restart(&self) {
        let mut st = self.inner.state.lock();
        let seeded = st.seeded.clone();
        st.entries.retain(|k, _| seeded.contains(k));
        st.runtime.clear();
        let names: Vec<String> = st.entries.keys().filter(|k| !is_regexp(k)).cloned().collect();
        for n in names {
            let rt = idle_runtime(&st, &n);
            st.runtime.insert(n, rt);
        }
        thread::sleep(Duration::from_millis(2));
        st.started = now_rfc3339();
    }

    // ---- state setters ----

    /// Add an entry as if it came from `mediamtx.yml` (survives [`restart`](Self::restart)).
    pub fn seed_entry(&self, name: &str, conf: Value) {
        let mut st = self.inner.state.lock();
        st.entries.insert(name.into(), conf.as_object().cloned().unwrap_or_default());
        st.seeded.insert(name.into());
        if !is_regexp(name) {
            let rt = idle_runtime(&st, name);
            st.runtime.insert(name.into(), rt);
        }
    }

    /// A publisher (RTSP session) is up on `name` with these codecs. False when no publisher entry matches.
    pub fn publish(&self, name: &str, tracks: &[&str]) -> bool {
        let mut st = self.inner.state.lock();
        let Some(conf) = resolve(&st, name) else { return false };
        if effective(&st, &conf).get("source").and_then(Value::as_str) != Some("publisher") {
            return false;
        }
        let rt = st.runtime.entry(name.into()).or_default();
        rt.conf_name = conf;
        rt.source = Some(("rtspSession".into(), camera_service::util::ids::uuid_v4()));
        rt.available_since = Some(now_rfc3339());
        rt.tracks = tracks.iter().map(|t| t.to_string()).collect();
        true
    }

    /// A static URL source connected.
    pub fn set_source_ready(&self, name: &str) -> bool {
        let mut st = self.inner.state.lock();
        let Some(rt) = st.runtime.get_mut(name) else { return false };
        rt.source = Some(("rtspSource".into(), String::new()));
        rt.available_since = Some(now_rfc3339());
        true
    }

    pub fn unpublish(&self, name: &str) {
        let mut st = self.inner.state.lock();
        let regexp = st.runtime.get(name).is_some_and(|r| r.conf_name != name);
        if regexp {
            st.runtime.remove(name);
        } else if let Some(rt) = st.runtime.get_mut(name) {
            let idle = Runtime { conf_name: rt.conf_name.clone(), ..Runtime::default() };
            *rt = idle;
        }
    }

    /// A reader (RTSP session) attached; returns its id.
    pub fn add_reader(&self, name: &str) -> Option<String> {
        let mut st = self.inner.state.lock();
        let id = camera_service::util::ids::uuid_v4();
        st.runtime.get_mut(name)?.readers.push(("rtspSession".into(), id.clone()));
        Some(id)
    }

    pub fn add_bytes(&self, name: &str, inbound: u64, outbound: u64) {
        if let Some(rt) = self.inner.state.lock().runtime.get_mut(name) {
            rt.in_bytes += inbound;
            rt.out_bytes += outbound;
        }
    }

    pub fn add_segment(&self, name: &str, start: &str) {
        self.inner.state.lock().recordings.entry(name.into()).or_default().push(start.into());
    }

    // ---- introspection ----

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.inner.log.lock().clone()
    }

    pub fn clear_log(&self) {
        self.inner.log.lock().clear();
    }

    /// Requests with this method whose path starts with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.inner.log.lock().iter().filter(|r| r.method == method && r.path.starts_with(prefix)).count()
    }

    /// The entry's own keys.
    pub fn entry(&self, name: &str) -> Option<Value> {
        self.inner.state.lock().entries.get(name).map(|m| Value::Object(m.clone()))
    }

    /// The effective config (defaults + own keys + name).
    pub fn effective(&self, name: &str) -> Option<Value> {
        let st = self.inner.state.lock();
        st.entries.contains_key(name).then(|| Value::Object(effective(&st, name)))
    }

    pub fn entry_names(&self) -> Vec<String> {
        self.inner.state.lock().entries.keys().cloned().collect()
    }

    pub fn runtime_names(&self) -> Vec<String> {
        self.inner.state.lock().runtime.keys().cloned().collect()
    }

    pub fn open_connections(&self) -> usize {
        self.inner.conns.load(Ordering::SeqCst)
    }
}

impl Drop for FakeMediaMtx {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.inner.addr, Duration::from_millis(200));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn effective(st: &State, name: &str) -> Map<String, Value> {
    let mut m = st.defaults.clone();
    if let Some(own) = st.entries.get(name) {
        m.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    m.insert("name".into(), Value::String(name.into()));
    m
}

/// The entry a runtime name resolves to: its static entry, else a match-all regexp entry (`all`/`all_others` last).
fn resolve(st: &State, name: &str) -> Option<String> {
    if st.entries.contains_key(name) && !is_regexp(name) {
        return Some(name.into());
    }
    let match_all = |k: &str| matches!(k, "~^.*$" | "~.*" | "~^.*" | "~.*$");
    st.entries
        .keys()
        .find(|k| match_all(k))
        .or_else(|| st.entries.keys().find(|k| matches!(k.as_str(), "all" | "all_others")))
        .cloned()
}

fn idle_runtime(st: &State, name: &str) -> Runtime {
    let source = effective(st, name).get("source").and_then(Value::as_str).unwrap_or("publisher").to_string();
    let src = source.starts_with("rtsp").then(|| ("rtspSource".to_string(), String::new()));
    Runtime { conf_name: name.into(), source: src, ..Runtime::default() }
}

// ---------------------------------------------------------------------------------------------------------------
// Routes

fn ok(profile: Profile) -> Reply {
    if profile <= Profile::V1_15_4 {
        Reply::json(200, &Value::Null).empty()
    } else {
        Reply::json(200, &json!({"status": "ok"}))
    }
}

impl Reply {
    fn empty(mut self) -> Reply {
        self.body.clear();
        self
    }
}

fn err(profile: Profile, status: u16, msg: impl AsRef<str>) -> Reply {
    Reply::json(status, &error_body(profile, msg.as_ref()))
}

/// A handler of a route with a path name after its prefix.
type Handler = fn(&mut State, &str, &Request, Profile) -> Reply;

fn route(inner: &Inner, req: &Request, profile: Profile) -> Reply {
    if req.method == "OPTIONS" && req.header("access-control-request-method").is_some() {
        let mut r = Reply::json(204, &Value::Null).empty();
        r.headers.push(("Access-Control-Allow-Methods".into(), "OPTIONS, GET, POST, PATCH, DELETE".into()));
        r.headers.push(("Access-Control-Allow-Headers".into(), "Authorization, Content-Type".into()));
        return r;
    }
    const LISTS: &[&str] = &["/v3/paths/list", "/v3/config/paths/list", "/v3/recordings/list", "/v3/info"];
    if let Some(trimmed) = req.path.strip_suffix('/').filter(|t| LISTS.contains(t)) {
        let mut r = Reply::json(if req.method == "GET" { 301 } else { 307 }, &Value::Null).empty();
        r.headers.push(("Location".into(), trimmed.into()));
        return r;
    }
    let mut st = inner.state.lock();
    let m = req.method.as_str();
    let p = req.path.as_str();
    let named = |prefix: &str| p.strip_prefix(prefix).map(pct_decode);
    match m {
        "GET" if p == "/v3/info" && profile > Profile::V1_15_1 => {
            Reply::json(200, &json!({"version": profile.version(), "started": st.started}))
        }
        "GET" if p == "/v3/config/global/get" => Reply::json(200, &Value::Object(st.global.clone())),
        "PATCH" if p == "/v3/config/global/patch" => patch_global(&mut st, req, profile),
        "GET" if p == "/v3/config/pathdefaults/get" => {
            Reply::json(200, &Value::Object(as_shown(st.defaults.clone(), profile)))
        }
        "PATCH" if p == "/v3/config/pathdefaults/patch" => match decode_path_conf(&req.body, profile) {
            Ok(keys) => {
                let old = st.defaults.clone();
                st.defaults.extend(keys);
                let bad = st.entries.keys().find_map(|n| validate_entry(n, &effective(&st, n)).err());
                match bad {
                    Some(e) => {
                        st.defaults = old;
                        err(profile, 400, e)
                    }
                    None => ok(profile),
                }
            }
            Err(e) => err(profile, 400, e),
        },
        "GET" if p == "/v3/config/paths/list" => {
            let items: Vec<Value> =
                st.entries.keys().map(|n| Value::Object(as_shown(effective(&st, n), profile))).collect();
            paginate(req, profile, items)
        }
        "GET" if p == "/v3/paths/list" => {
            let items: Vec<Value> = st.runtime.iter().map(|(n, rt)| runtime_json(n, rt, profile)).collect();
            paginate(req, profile, items)
        }
        "GET" if p == "/v3/recordings/list" => {
            let items: Vec<Value> = st
                .recordings
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(n, s)| json!({"name": n, "segments": s.iter().map(|x| json!({"start": x})).collect::<Vec<_>>()}))
                .collect();
            paginate(req, profile, items)
        }
        "DELETE" if p == "/v3/recordings/deletesegment" => delete_segment(&mut st, req, profile),
        _ => {
            let routes: [(&str, &str, Handler); 9] = [
                ("GET", "/v3/config/paths/get/", conf_get),
                ("POST", "/v3/config/paths/add/", conf_add),
                ("PATCH", "/v3/config/paths/patch/", conf_patch),
                ("POST", "/v3/config/paths/replace/", conf_replace),
                ("DELETE", "/v3/config/paths/delete/", conf_delete),
                ("GET", "/v3/paths/get/", runtime_get),
                ("GET", "/v3/recordings/get/", recordings_get),
                ("GET", "/v3/info/", |_, _, _, _| Reply::plain_404()),
                ("GET", "/v3/config/global/get/", |_, _, _, _| Reply::plain_404()),
            ];
            for (method, prefix, handler) in routes {
                if method == m {
                    if let Some(name) = named(prefix) {
                        if name.is_empty() {
                            return err(profile, 400, "invalid name");
                        }
                        return handler(&mut st, &name, req, profile);
                    }
                }
            }
            Reply::plain_404()
        }
    }
}

fn patch_global(st: &mut State, req: &Request, profile: Profile) -> Reply {
    if req.body.trim().is_empty() {
        return err(profile, 400, "unexpected end of JSON input");
    }
    let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(&req.body) else {
        return err(profile, 400, "invalid character looking for beginning of value");
    };
    if let Some(k) = keys.keys().find(|k| *k == "paths" || *k == "pathDefaults") {
        return err(profile, 400, format!("json: unknown field \"{k}\""));
    }
    st.global.extend(keys.into_iter().filter(|(_, v)| !v.is_null()));
    ok(profile)
}

fn conf_get(st: &mut State, name: &str, _: &Request, profile: Profile) -> Reply {
    match st.entries.contains_key(name) {
        true => Reply::json(200, &Value::Object(as_shown(effective(st, name), profile))),
        false => err(profile, 404, "path configuration not found"),
    }
}

/// Store `keys` as the entry's own keys after validating the result; reset its runtime path unless only hot keys
/// changed.
fn store_entry(st: &mut State, name: &str, keys: Map<String, Value>, profile: Profile) -> Reply {
    let old = st.entries.insert(name.into(), keys);
    if let Err(e) = validate_entry(name, &effective(st, name)) {
        match old {
            Some(o) => st.entries.insert(name.into(), o),
            None => st.entries.remove(name),
        };
        return err(profile, 400, e);
    }
    if !is_regexp(name) {
        let hot_only = old.as_ref().is_some_and(|o| only_hot_changes(o, &st.entries[name]));
        if !hot_only || !st.runtime.contains_key(name) {
            let rt = idle_runtime(st, name);
            st.runtime.insert(name.into(), rt);
        }
    }
    ok(profile)
}

fn only_hot_changes(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let hot = |k: &str| k.starts_with("record") || k == "forward";
    a.keys().chain(b.keys()).filter(|k| !hot(k)).all(|k| a.get(k) == b.get(k))
}

fn conf_add(st: &mut State, name: &str, req: &Request, profile: Profile) -> Reply {
    let keys = match decode_path_conf(&req.body, profile) {
        Ok(k) => k,
        Err(e) => return err(profile, 400, e),
    };
    if st.entries.contains_key(name) {
        return err(profile, 400, "path already exists");
    }
    store_entry(st, name, keys, profile)
}

fn conf_patch(st: &mut State, name: &str, req: &Request, profile: Profile) -> Reply {
    let keys = match decode_path_conf(&req.body, profile) {
        Ok(k) => k,
        Err(e) => return err(profile, 400, e),
    };
    let Some(mut merged) = st.entries.get(name).cloned() else {
        return err(profile, 404, "path not found");
    };
    merged.extend(keys);
    store_entry(st, name, merged, profile)
}

fn conf_replace(st: &mut State, name: &str, req: &Request, profile: Profile) -> Reply {
    match decode_path_conf(&req.body, profile) {
        Ok(keys) => store_entry(st, name, keys, profile),
        Err(e) => err(profile, 400, e),
    }
}

fn conf_delete(st: &mut State, name: &str, _: &Request, profile: Profile) -> Reply {
    if st.entries.remove(name).is_none() {
        return err(profile, 404, "path not found");
    }
    st.seeded.remove(name);
    st.runtime.retain(|_, rt| rt.conf_name != name);
    ok(profile)
}

fn runtime_get(st: &mut State, name: &str, _: &Request, profile: Profile) -> Reply {
    match st.runtime.get(name) {
        Some(rt) => Reply::json(200, &runtime_json(name, rt, profile)),
        None => err(profile, 404, "path not found"),
    }
}

fn recordings_get(st: &mut State, name: &str, _: &Request, profile: Profile) -> Reply {
    if resolve(st, name).is_none() {
        return err(profile, 400, format!("path '{name}' is not configured"));
    }
    let segs: Vec<Value> = st.recordings.get(name).into_iter().flatten().map(|s| json!({"start": s})).collect();
    Reply::json(200, &json!({"name": name, "segments": segs}))
}

fn delete_segment(st: &mut State, req: &Request, profile: Profile) -> Reply {
    let path = req.query_param("path").unwrap_or_default();
    let start = req.query_param("start").unwrap_or_default();
    if camera_service::util::timefmt::parse_rfc3339(&start).is_none() {
        return err(
            profile,
            400,
            format!(
                "invalid 'start' parameter: parsing time \"{start}\" as \"2006-01-02T15:04:05Z07:00\": cannot parse"
            ),
        );
    }
    let Some(conf) = resolve(st, &path) else {
        return err(profile, 400, format!("path '{path}' is not configured"));
    };
    let segs = st.recordings.entry(path.clone()).or_default();
    if let Some(i) = segs.iter().position(|s| *s == start) {
        segs.remove(i);
        return ok(profile);
    }
    let pattern =
        effective(st, &conf).get("recordPath").and_then(Value::as_str).unwrap_or_default().replace("%path", &path);
    err(profile, 400, format!("remove {pattern}.mp4: no such file or directory"))
}

fn runtime_json(name: &str, rt: &Runtime, profile: Profile) -> Value {
    let avail = rt.available_since.is_some();
    let time = rt.available_since.clone().map_or(Value::Null, Value::String);
    let tracks: Vec<String> = if avail { rt.tracks.clone() } else { Vec::new() };
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("confName".into(), json!(rt.conf_name));
    m.insert("ready".into(), json!(avail));
    m.insert("readyTime".into(), time.clone());
    if profile >= Profile::V1_16 {
        for k in ["available", "online"] {
            m.insert(k.into(), json!(avail));
        }
        for k in ["availableTime", "onlineTime"] {
            m.insert(k.into(), time.clone());
        }
    }
    m.insert("source".into(), rt.source.as_ref().map_or(Value::Null, |(t, id)| json!({"type": t, "id": id})));
    m.insert("tracks".into(), json!(tracks));
    if profile >= Profile::V1_19_2 {
        let t2: Vec<Value> = tracks.iter().map(|c| json!({"codec": c, "codecProps": null})).collect();
        m.insert("tracks2".into(), json!(t2));
        m.insert("inboundBytes".into(), json!(rt.in_bytes));
        m.insert("outboundBytes".into(), json!(rt.out_bytes));
        m.insert("inboundFramesInError".into(), json!(0));
    }
    let readers: Vec<Value> = rt.readers.iter().map(|(t, id)| json!({"type": t, "id": id})).collect();
    m.insert("readers".into(), json!(readers));
    m.insert("bytesReceived".into(), json!(rt.in_bytes));
    m.insert("bytesSent".into(), json!(rt.out_bytes));
    Value::Object(m)
}

fn parse_u31(raw: Option<String>, default: u64) -> Result<u64, String> {
    let Some(s) = raw else { return Ok(default) };
    let bad = |why: &str| format!("strconv.ParseUint: parsing \"{s}\": {why}");
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("invalid syntax"));
    }
    match s.parse::<u64>() {
        Ok(v) if v <= i32::MAX as u64 => Ok(v),
        _ => Err(bad("value out of range")),
    }
}

fn paginate(req: &Request, profile: Profile, items: Vec<Value>) -> Reply {
    let ipp = match parse_u31(req.query_param("itemsPerPage"), 100) {
        Ok(0) => return err(profile, 400, "invalid items per page"),
        Ok(v) => v as usize,
        Err(e) => return err(profile, 400, e),
    };
    let page = match parse_u31(req.query_param("page"), 0) {
        Ok(v) => v as usize,
        Err(e) => return err(profile, 400, e),
    };
    let count = items.len();
    let page_items: Vec<Value> = items.into_iter().skip(page.saturating_mul(ipp)).take(ipp).collect();
    Reply::json(200, &json!({"itemCount": count, "pageCount": count.div_ceil(ipp), "items": page_items}))
}
