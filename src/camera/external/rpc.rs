//! IP-camera methods: `add_external_stream`, `remove_external_stream` (operator), `get_external_streams` (viewer),
//! `discover_external_streams` (operator), `set_discovery_interval` (admin), and `get_system_status` (viewer), which
//! reports the camera side of the daemon. Result shapes follow the Go port's, which its web client reads; URLs are
//! always shown with the password masked.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ExternalStream, Found, FoundStatus, NewStream, Report, SourceUrl};
use crate::camera::rpc::RecordingLookup;
use crate::camera::{CameraStatus, Cameras};
use crate::error::{Error, Result};
use crate::process::status::{Components, State};
use crate::rpc::params::{NoParams, NonEmpty, Number};
use crate::rpc::{method, Call, Method};
use crate::util::{redact, timefmt};

/// The only stream type: a plain RTSP source (the Go port's Skydio types need a vendor protocol we do not speak).
pub const STREAM_TYPE: &str = "generic_rtsp";
/// Longest `scan_interval` (a week).
pub const MAX_SCAN_INTERVAL: u64 = 7 * 86_400;

/// The state these methods read.
pub struct ExternalMethods {
    pub cameras: Cameras,
    pub recordings: Arc<dyn RecordingLookup>,
    pub components: Components,
}

pub static METHODS: &[Method<ExternalMethods>] = &[
    method!("add_external_stream", Operator, Blocking, add_external_stream),
    method!("remove_external_stream", Operator, Blocking, remove_external_stream),
    method!("get_external_streams", Viewer, Inline, get_external_streams),
    method!("discover_external_streams", Operator, Blocking, discover_external_streams),
    method!("set_discovery_interval", Admin, Blocking, set_discovery_interval),
    method!("get_system_status", Viewer, Inline, get_system_status),
];

#[derive(Deserialize)]
struct AddParams {
    stream_url: NonEmpty,
    stream_name: NonEmpty,
    stream_type: Option<String>,
    transport: Option<String>,
}

#[derive(Deserialize)]
struct RemoveParams {
    stream_url: Option<NonEmpty>,
    stream_name: Option<NonEmpty>,
}

#[derive(Deserialize)]
struct DiscoverParams {
    skydio_enabled: Option<bool>,
    generic_enabled: Option<bool>,
    force_rescan: Option<bool>,
    include_offline: Option<bool>,
}

#[derive(Deserialize)]
struct IntervalParams {
    scan_interval: Number,
}

fn check_type(t: Option<&str>) -> Result<&'static str> {
    match t.map(str::trim) {
        None | Some("") | Some(STREAM_TYPE) | Some("generic") | Some("rtsp") => Ok(STREAM_TYPE),
        Some(other) => Err(Error::invalid_params(format!("stream_type must be {STREAM_TYPE:?}, got {other:?}"))),
    }
}

fn time_or_null(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| json!(timefmt::rfc3339(t)))
}

fn info_json(info: Option<&super::StreamInfo>) -> Value {
    match info {
        Some(i) => json!({"codec": i.codec, "width": i.width, "height": i.height, "fps": i.fps}),
        None => json!({}),
    }
}

/// One added stream as `get_external_streams` lists it.
pub fn stream_json(s: &ExternalStream) -> Value {
    json!({
        "url": s.url.redacted(),
        "type": STREAM_TYPE,
        "name": s.name,
        "device": s.name,
        "status": s.status.as_str(),
        "checked": s.checked,
        "error": s.error.as_deref().map(|e| redact::text(e).into_owned()),
        "origin": s.origin,
        "transport": s.transport,
        "added": true,
        "discovered_at": time_or_null(s.added_at),
        "last_seen": time_or_null(s.last_seen),
        "capabilities": info_json(s.info.as_ref()),
    })
}

/// A name a client could add a discovered stream under: `<host>_<port>[_<path>]` in the allowed characters.
pub fn suggested_name(f: &Found) -> String {
    let raw =
        if f.path.is_empty() { format!("{}_{}", f.host, f.port) } else { format!("{}_{}_{}", f.host, f.port, f.path) };
    let mut name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(64).collect();
    if super::source::name_problem(&name).is_some() {
        name = format!("ip_{}", name.chars().take(61).collect::<String>());
    }
    name
}

/// One discovered stream; `added` is the stream name it was added under, if it was.
fn found_json(f: &Found, report: &Report, added: Option<&str>) -> Value {
    let seen = timefmt::rfc3339(report.started_at + report.duration);
    json!({
        "url": f.url,
        "type": STREAM_TYPE,
        "name": added.map_or_else(|| suggested_name(f), str::to_string),
        "host": f.host,
        "port": f.port,
        "path": f.path,
        "status": match f.status { FoundStatus::Available => "AVAILABLE", FoundStatus::AuthRequired => "AUTH_REQUIRED" },
        "added": added.is_some(),
        "discovered_at": timefmt::rfc3339(report.started_at),
        "last_seen": seen,
        "capabilities": info_json(f.info.as_ref()),
    })
}

fn add_external_stream(m: &ExternalMethods, p: AddParams, _: &Call) -> Result<Value> {
    let stream_type = check_type(p.stream_type.as_deref())?;
    let spec = NewStream { name: p.stream_name.0, url: p.stream_url.0, transport: p.transport };
    let s = m.cameras.external().add(spec)?;
    Ok(json!({
        "stream_url": s.url.redacted(),
        "stream_name": s.name,
        "stream_type": stream_type,
        "status": "ADDED",
        "timestamp": timefmt::now_rfc3339(),
        "device": s.name,
        "camera_status": s.status.as_str(),
        "transport": s.transport,
    }))
}

/// The stream `key` names: its stream name, its URL (with or without the password), or its masked URL.
fn find<'a>(list: &'a [ExternalStream], key: &str) -> Option<&'a ExternalStream> {
    let parsed = SourceUrl::parse(key).ok();
    list.iter()
        .find(|s| s.name == key || s.url.redacted() == key || parsed.as_ref().is_some_and(|u| u.same_source(&s.url)))
}

/// A stream that records cannot be removed (its file would be cut off): -1006, as deleting a live file.
fn remove_external_stream(m: &ExternalMethods, p: RemoveParams, _: &Call) -> Result<Value> {
    let key = match (p.stream_url, p.stream_name) {
        (Some(u), _) => u.0,
        (None, Some(n)) => n.0,
        (None, None) => return Err(Error::invalid_params("stream_url is required")),
    };
    let key = key.trim();
    let external = m.cameras.external();
    if let Some(s) = find(&external.list(), key) {
        if let Some(r) = m.recordings.recording_of(&s.name) {
            return Err(Error::CameraRecording(format!(
                "{} is recording (session {}); stop_recording first",
                s.name, r.session_id
            )));
        }
    }
    let s = external.remove(key)?;
    Ok(json!({
        "stream_url": s.url.redacted(),
        "stream_name": s.name,
        "status": "REMOVED",
        "timestamp": timefmt::now_rfc3339(),
    }))
}

fn get_external_streams(m: &ExternalMethods, _: NoParams, _: &Call) -> Result<Value> {
    let external = m.cameras.external();
    let list = external.list();
    let mut streams: Vec<Value> = list.iter().map(stream_json).collect();
    if let Some(report) = external.last_discovery() {
        let added = external.already_added(&report);
        let not_added = report.found.iter().enumerate().filter(|(i, _)| !added.iter().any(|(j, _)| j == i));
        streams.extend(not_added.map(|(_, f)| found_json(f, &report, None)));
    }
    Ok(json!({
        "external_streams": streams,
        "skydio_streams": [],
        "generic_streams": streams,
        "total_count": streams.len(),
        "timestamp": timefmt::now_rfc3339(),
    }))
}

fn discover_external_streams(m: &ExternalMethods, p: DiscoverParams, _: &Call) -> Result<Value> {
    let external = m.cameras.external();
    let report = external.discover()?;
    let added = external.already_added(&report);
    let found: Vec<Value> = report
        .found
        .iter()
        .enumerate()
        .map(|(i, f)| found_json(f, &report, added.iter().find(|(j, _)| *j == i).map(|(_, n)| n.as_str())))
        .collect();
    Ok(json!({
        "discovered_streams": found,
        "skydio_streams": [],
        "generic_streams": found,
        "scan_timestamp": timefmt::rfc3339(report.started_at),
        "total_found": found.len(),
        "discovery_options": {
            "skydio_enabled": p.skydio_enabled.unwrap_or(false),
            "generic_enabled": p.generic_enabled.unwrap_or(true),
            "force_rescan": p.force_rescan.unwrap_or(false),
            "include_offline": p.include_offline.unwrap_or(false),
        },
        "scan_duration": report.duration.as_secs_f64(),
        "targets_probed": report.targets,
        "errors": report.errors.iter().map(|e| redact::text(e).into_owned()).collect::<Vec<_>>(),
    }))
}

fn set_discovery_interval(m: &ExternalMethods, p: IntervalParams, _: &Call) -> Result<Value> {
    let v = p.scan_interval.value;
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SCAN_INTERVAL as f64) {
        return Err(Error::invalid_params(format!(
            "scan_interval must be whole seconds from 0 to {MAX_SCAN_INTERVAL}, got {}",
            p.scan_interval.raw
        )));
    }
    let external = m.cameras.external();
    if !external.discovery_enabled() {
        return Err(super::discovery::disabled());
    }
    let seconds = external.set_discovery_interval(v as u64)?;
    let message = match seconds {
        0 => "discovery runs only on request".to_string(),
        s => format!("discovery runs every {s} s"),
    };
    Ok(json!({"scan_interval": seconds, "status": "UPDATED", "message": message, "timestamp": timefmt::now_rfc3339()}))
}

/// `starting` while a component has not started, `partial` while one is degraded or stopped, else `ready`.
fn get_system_status(m: &ExternalMethods, _: NoParams, _: &Call) -> Result<Value> {
    let all = m.components.all();
    let starting: Vec<&str> = all.iter().filter(|(_, c)| c.state == State::Starting).map(|(n, _)| *n).collect();
    let failing: Vec<String> = all
        .iter()
        .filter(|(_, c)| matches!(c.state, State::Degraded | State::Stopped))
        .map(|(n, c)| format!("{n}: {}", c.details))
        .collect();
    let cameras = m.cameras.list();
    let available: Vec<&str> =
        cameras.iter().filter(|c| c.status == CameraStatus::Connected).map(|c| c.device.as_str()).collect();
    let (status, message) = if !starting.is_empty() {
        ("starting", format!("starting: {}", starting.join(", ")))
    } else if !failing.is_empty() {
        ("partial", format!("reduced function: {}", failing.join("; ")))
    } else {
        ("ready", format!("{} of {} cameras available", available.len(), cameras.len()))
    };
    let external = m.cameras.external();
    Ok(json!({
        "status": status,
        "message": redact::text(&message),
        "available_cameras": available,
        "total_cameras": cameras.len(),
        "discovery_active": external.discovery_active(),
        "discovery_enabled": external.discovery_enabled(),
        "discovery_interval": external.discovery_interval(),
        "timestamp": timefmt::now_rfc3339(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::external::FoundStatus;
    use crate::camera::rpc::RecordingView;
    use crate::rpc::table::invoke;
    use std::time::Duration;

    struct Recording(&'static str);
    impl RecordingLookup for Recording {
        fn recording_of(&self, device: &str) -> Option<RecordingView> {
            (device == self.0).then(|| RecordingView {
                session_id: "s1".into(),
                current_file: "f.mp4".into(),
                start_time: SystemTime::now(),
            })
        }
    }

    fn state() -> ExternalMethods {
        let components = Components::default();
        components.set("camera_monitor", State::Running, "ok");
        ExternalMethods { cameras: Cameras::fixed(vec![]), recordings: Arc::new(Recording("door")), components }
    }

    #[test]
    fn params_are_checked_before_the_component_is_asked() {
        let m = state();
        for (name, bad) in [
            ("add_external_stream", json!({"stream_url": "rtsp://h/x"})),
            ("add_external_stream", json!({"stream_name": "door"})),
            ("add_external_stream", json!({"stream_url": "rtsp://h/x", "stream_name": "d", "stream_type": "skydio"})),
            ("remove_external_stream", json!({})),
            ("set_discovery_interval", json!({})),
            ("set_discovery_interval", json!({"scan_interval": -1})),
            ("set_discovery_interval", json!({"scan_interval": 1.5})),
            ("set_discovery_interval", json!({"scan_interval": "60"})),
            ("set_discovery_interval", json!({"scan_interval": 8 * 86_400})),
            ("discover_external_streams", json!({"force_rescan": "yes"})),
        ] {
            assert_eq!(invoke(METHODS, &m, name, &bad).unwrap_err().code(), -32602, "{name} {bad}");
        }
        // Discovery is off by default: a clear -32030, for scanning and for its schedule.
        for (name, p) in
            [("discover_external_streams", json!({})), ("set_discovery_interval", json!({"scan_interval": 0}))]
        {
            let e = invoke(METHODS, &m, name, &p).unwrap_err();
            assert_eq!((e.code(), e.message()), (-32030, "Unsupported".to_string()), "{name}");
            assert!(e.data().unwrap()["reason"].as_str().unwrap().contains("external_discovery.enabled"));
        }
    }

    #[test]
    fn listing_shape_and_system_status() {
        let m = state();
        let r = invoke(METHODS, &m, "get_external_streams", &Value::Null).unwrap();
        assert_eq!((r["total_count"].clone(), r["external_streams"].clone()), (json!(0), json!([])));
        assert_eq!(r["skydio_streams"], json!([]));
        let s = invoke(METHODS, &m, "get_system_status", &json!({})).unwrap();
        assert_eq!((s["status"].clone(), s["available_cameras"].clone()), (json!("ready"), json!([])));
        assert_eq!(s["discovery_active"], false);
        m.components.set("mediamtx", State::Degraded, "unreachable");
        let s = invoke(METHODS, &m, "get_system_status", &Value::Null).unwrap();
        assert_eq!(s["status"], "partial");
        assert!(s["message"].as_str().unwrap().contains("mediamtx: unreachable"), "{s}");
        m.components.set("recorder", State::Starting, "");
        assert_eq!(invoke(METHODS, &m, "get_system_status", &Value::Null).unwrap()["status"], "starting");
    }

    #[test]
    fn discovered_streams_get_a_valid_name() {
        let f = |host: &str, path: &str| Found {
            url: format!("rtsp://{host}:554/{path}"),
            host: host.into(),
            port: 554,
            path: path.into(),
            status: FoundStatus::Available,
            info: None,
        };
        assert_eq!(
            suggested_name(&f("192.168.1.20", "Streaming/Channels/101")),
            "192_168_1_20_554_Streaming_Channels_101"
        );
        assert_eq!(suggested_name(&f("fe80::1", "")), "fe80__1_554");
        for found in [f("camera1", ""), f(&"h".repeat(80), "x")] {
            assert!(super::super::source::name_problem(&suggested_name(&found)).is_none(), "{found:?}");
        }
        let report = Report {
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(1500),
            targets: 1,
            found: vec![],
            errors: vec![],
        };
        let j = found_json(&f("10.0.0.2", "live"), &report, Some("porch"));
        assert_eq!((j["name"].clone(), j["added"].clone()), (json!("porch"), json!(true)));
        assert_eq!(
            (j["discovered_at"].clone(), j["last_seen"].clone()),
            (json!("1970-01-01T00:00:00Z"), json!("1970-01-01T00:00:01Z"))
        );
    }
}
