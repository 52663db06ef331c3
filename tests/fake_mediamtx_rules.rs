//! The fake MediaMTX's rules: seeds, strict JSON decoding of path configs, validation texts copied from
//! `internal/conf/path.go`, and the differences between versions.

use serde_json::{json, Map, Value};

/// Which MediaMTX release the fake imitates (ordered oldest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Profile {
    /// No `/v3/info`, empty 200 bodies, errors without `status`.
    V1_15_1,
    /// Empty 200 bodies, errors `{"error":...}` without `status`.
    V1_15_4,
    /// No `tracks2` / `inboundBytes` / `outboundBytes`.
    V1_16,
    /// Rejects `runOnAvailable` (and the other v1.19.3 names) as unknown fields.
    V1_19_2,
    V1_20_1,
}

impl Profile {
    pub fn version(self) -> &'static str {
        match self {
            Profile::V1_15_1 => "v1.15.1",
            Profile::V1_15_4 => "v1.15.4",
            Profile::V1_16 => "v1.16.0",
            Profile::V1_19_2 => "v1.19.2",
            Profile::V1_20_1 => "v1.20.1",
        }
    }
}

pub fn error_body(profile: Profile, msg: &str) -> Value {
    if profile <= Profile::V1_15_4 {
        json!({ "error": msg })
    } else {
        json!({"status": "error", "error": msg})
    }
}

pub fn seed_global() -> Map<String, Value> {
    let v = json!({
        "logLevel": "info", "readTimeout": "10s", "writeTimeout": "10s", "writeQueueSize": 512,
        "authMethod": "internal",
        "authInternalUsers": [
            {"user": "any", "pass": "", "ips": [], "permissions": [{"action": "publish", "path": ""},
                {"action": "read", "path": ""}, {"action": "playback", "path": ""}]},
            {"user": "admin", "pass": "<redacted>", "ips": ["127.0.0.1/32", "::1/128"],
             "permissions": [{"action": "api", "path": ""}]}
        ],
        "api": true, "apiAddress": ":9997", "metrics": false, "pprof": false, "playback": false,
        "rtsp": true, "rtspAddress": ":8554", "rtmp": true, "rtmpAddress": ":1935",
        "hls": true, "hlsAddress": ":8888", "webrtc": true, "webrtcAddress": ":8889", "srt": true, "srtAddress": ":8890"
    });
    v.as_object().cloned().unwrap()
}

/// MediaMTX's path defaults, as the API returns them.
pub fn seed_path_defaults() -> Map<String, Value> {
    let v = json!({
        "source": "publisher", "sourceFingerprint": "", "sourceOnDemand": false,
        "sourceOnDemandStartTimeout": "10s", "sourceOnDemandCloseAfter": "10s", "maxReaders": 0,
        "sourceRedirect": "", "overridePublisher": true, "rtspTransport": "automatic",
        "record": false, "recordPath": "./recordings/%path/%Y-%m-%d_%H-%M-%S-%f", "recordFormat": "fmp4",
        "recordPartDuration": "1s", "recordMaxPartSize": "50M", "recordSegmentDuration": "1h0m0s",
        "recordDeleteAfter": "1d",
        "runOnInit": "", "runOnInitRestart": false, "runOnDemand": "", "runOnDemandRestart": false,
        "runOnDemandStartTimeout": "10s", "runOnDemandCloseAfter": "10s", "runOnUnDemand": "",
        "runOnReady": "", "runOnReadyRestart": false, "runOnNotReady": "",
        "runOnAvailable": "", "runOnAvailableRestart": false, "runOnUnavailable": "",
        "runOnOnline": "", "runOnOnlineRestart": false, "runOnOffline": "",
        "runOnRead": "", "runOnReadRestart": false, "runOnUnread": "",
        "runOnRecordSegmentCreate": "", "runOnRecordSegmentComplete": ""
    });
    v.as_object().cloned().unwrap()
}

/// Every key of the OpenAPI `PathConf` schema (v1.20.1).
const PATH_KEYS: &[&str] = &[
    "alwaysAvailable",
    "alwaysAvailableFile",
    "alwaysAvailableTracks",
    "disablePublisherOverride",
    "fallback",
    "forward",
    "maxReaders",
    "moqTransport",
    "mpegtsUDPReadBufferSize",
    "name",
    "overridePublisher",
    "playback",
    "publishIPs",
    "publishPass",
    "publishUser",
    "readIPs",
    "readPass",
    "readUser",
    "record",
    "recordDeleteAfter",
    "recordFormat",
    "recordMaxPartSize",
    "recordPartDuration",
    "recordPath",
    "recordSegmentDuration",
    "rpiCameraAWB",
    "rpiCameraAWBGains",
    "rpiCameraAfMode",
    "rpiCameraAfRange",
    "rpiCameraAfSpeed",
    "rpiCameraAfWindow",
    "rpiCameraBitrate",
    "rpiCameraBrightness",
    "rpiCameraCamID",
    "rpiCameraCodec",
    "rpiCameraContrast",
    "rpiCameraDenoise",
    "rpiCameraEV",
    "rpiCameraExposure",
    "rpiCameraFPS",
    "rpiCameraFlickerPeriod",
    "rpiCameraGain",
    "rpiCameraH264Level",
    "rpiCameraH264Profile",
    "rpiCameraHDR",
    "rpiCameraHFlip",
    "rpiCameraHardwareH264Level",
    "rpiCameraHardwareH264Profile",
    "rpiCameraHeight",
    "rpiCameraIDRPeriod",
    "rpiCameraJPEGQuality",
    "rpiCameraLensPosition",
    "rpiCameraLevel",
    "rpiCameraMJPEGQuality",
    "rpiCameraMetering",
    "rpiCameraMode",
    "rpiCameraProfile",
    "rpiCameraROI",
    "rpiCameraSaturation",
    "rpiCameraSecondary",
    "rpiCameraSharpness",
    "rpiCameraShutter",
    "rpiCameraSoftwareH264Level",
    "rpiCameraSoftwareH264Profile",
    "rpiCameraTextOverlay",
    "rpiCameraTextOverlayEnable",
    "rpiCameraTuningFile",
    "rpiCameraVFlip",
    "rpiCameraWidth",
    "rtpSDP",
    "rtpUDPReadBufferSize",
    "rtspAnyPort",
    "rtspDemuxMpegts",
    "rtspRangeStart",
    "rtspRangeType",
    "rtspScale",
    "rtspTransport",
    "rtspUDPReadBufferSize",
    "rtspUDPSourcePortRange",
    "runOnAvailable",
    "runOnAvailableRestart",
    "runOnDemand",
    "runOnDemandCloseAfter",
    "runOnDemandRestart",
    "runOnDemandStartTimeout",
    "runOnInit",
    "runOnInitRestart",
    "runOnNotReady",
    "runOnOffline",
    "runOnOnline",
    "runOnOnlineRestart",
    "runOnRead",
    "runOnReadRestart",
    "runOnReady",
    "runOnReadyRestart",
    "runOnRecordSegmentComplete",
    "runOnRecordSegmentCreate",
    "runOnUnDemand",
    "runOnUnavailable",
    "runOnUnread",
    "source",
    "sourceAnyPortEnable",
    "sourceFingerprint",
    "sourceOnDemand",
    "sourceOnDemandCloseAfter",
    "sourceOnDemandStartTimeout",
    "sourceProtocol",
    "sourceRedirect",
    "srtPublishPassphrase",
    "srtReadPassphrase",
    "useAbsoluteTimestamp",
    "whepBearerToken",
    "whepHandshakeTimeout",
    "whepSTUNGatherTimeout",
    "whepTrackGatherTimeout",
];

/// A path config as a server of `profile` shows it: without the keys it does not know yet.
pub fn as_shown(mut conf: Map<String, Value>, profile: Profile) -> Map<String, Value> {
    if profile <= Profile::V1_19_2 {
        conf.retain(|k, _| !V1_19_3_KEYS.contains(&k.as_str()));
    }
    conf
}

/// Keys added in v1.19.3 (unknown to older servers).
const V1_19_3_KEYS: &[&str] = &[
    "runOnAvailable",
    "runOnAvailableRestart",
    "runOnUnavailable",
    "runOnOnline",
    "runOnOnlineRestart",
    "runOnOffline",
];

const BOOL_KEYS: &[&str] = &[
    "sourceOnDemand",
    "overridePublisher",
    "disablePublisherOverride",
    "record",
    "runOnInitRestart",
    "runOnDemandRestart",
    "runOnReadyRestart",
    "runOnAvailableRestart",
    "runOnOnlineRestart",
    "runOnReadRestart",
    "sourceAnyPortEnable",
    "rtspAnyPort",
    "rtspDemuxMpegts",
    "useAbsoluteTimestamp",
    "playback",
    "alwaysAvailable",
];

const DURATION_KEYS: &[&str] = &[
    "sourceOnDemandStartTimeout",
    "sourceOnDemandCloseAfter",
    "runOnDemandStartTimeout",
    "runOnDemandCloseAfter",
    "recordPartDuration",
    "recordSegmentDuration",
    "recordDeleteAfter",
    "whepHandshakeTimeout",
    "whepSTUNGatherTimeout",
    "whepTrackGatherTimeout",
];

const STRING_KEYS: &[&str] = &[
    "source",
    "sourceRedirect",
    "sourceFingerprint",
    "rtspTransport",
    "recordPath",
    "recordFormat",
    "recordMaxPartSize",
    "runOnInit",
    "runOnDemand",
    "runOnUnDemand",
    "runOnReady",
    "runOnNotReady",
    "runOnAvailable",
    "runOnUnavailable",
    "runOnOnline",
    "runOnOffline",
    "runOnRead",
    "runOnUnread",
    "runOnRecordSegmentCreate",
    "runOnRecordSegmentComplete",
    "name",
];

/// Go's name for a JSON value's type in `cannot unmarshal X into ...`.
pub fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Strict decoding as `internal/conf/jsonwrapper`: unknown keys, wrong types and bad durations fail; `null`
/// means "not given". Durations come back normalised as MediaMTX prints them.
pub fn decode_path_conf(body: &str, profile: Profile) -> Result<Map<String, Value>, String> {
    if body.trim().is_empty() {
        return Err("unexpected end of JSON input".into());
    }
    let v: Value = serde_json::from_str(body).map_err(|e| format!("invalid character in JSON input: {e}"))?;
    let Value::Object(obj) = v else {
        return Err(format!("json: cannot unmarshal {} into Go value of type conf.OptionalPath", go_type(&v)));
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let known =
            PATH_KEYS.contains(&k.as_str()) && !(profile <= Profile::V1_19_2 && V1_19_3_KEYS.contains(&k.as_str()));
        if !known {
            return Err(format!("json: unknown field \"{k}\""));
        }
        if v.is_null() {
            continue;
        }
        let want = if BOOL_KEYS.contains(&k.as_str()) {
            "bool"
        } else if DURATION_KEYS.contains(&k.as_str()) || STRING_KEYS.contains(&k.as_str()) {
            "string"
        } else if k == "maxReaders" {
            "number"
        } else {
            go_type(&v)
        };
        if go_type(&v) != want {
            let go = if want == "number" { "int" } else { want };
            return Err(format!("json: cannot unmarshal {} into Go value of type {go}", go_type(&v)));
        }
        let v = if DURATION_KEYS.contains(&k.as_str()) {
            let s = v.as_str().unwrap_or_default();
            let nanos = camera_service::mediamtx::pathconf::parse_go_duration(s)
                .ok_or_else(|| format!("time: invalid duration \"{s}\""))?;
            Value::String(format_duration(nanos))
        } else {
            v
        };
        out.insert(k, v);
    }
    Ok(out)
}

/// MediaMTX's duration marshalling: `""` for zero, a day count for whole days, then Go's `1h0m0s` style.
pub fn format_duration(nanos: u128) -> String {
    if nanos == 0 {
        return String::new();
    }
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if secs == 0 {
        return if frac % 1_000_000 == 0 { format!("{}ms", frac / 1_000_000) } else { format!("{frac}ns") };
    }
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let s = if frac == 0 { format!("{s}s") } else { format!("{}s", s as f64 + frac as f64 / 1e9) };
    let go = if h > 0 {
        format!("{h}h{m}m{s}")
    } else if m > 0 {
        format!("{m}m{s}")
    } else {
        s
    };
    match days {
        0 => go,
        d if rest == 0 && frac == 0 => format!("{d}d"),
        d => format!("{d}d{go}"),
    }
}

fn dur(conf: &Map<String, Value>, key: &str) -> u128 {
    conf.get(key).and_then(Value::as_str).and_then(camera_service::mediamtx::pathconf::parse_go_duration).unwrap_or(0)
}

fn check_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        Some("cannot be empty")
    } else if name.starts_with('/') {
        Some("can't begin with a slash")
    } else if name.ends_with('/') {
        Some("can't end with a slash")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-/.".contains(c)) {
        Some("can contain only alphanumeric characters, underscore, dot, minus, slash")
    } else if name.split('/').any(|s| s == "." || s == "..") {
        Some("can't contain dot path segments")
    } else {
        None
    };
    why.map_or(Ok(()), |w| Err(format!("invalid path name '{name}': {w}")))
}

/// `(*Path).validate` for the checks the daemon can meet; anything else is accepted.
pub fn validate_entry(name: &str, conf: &Map<String, Value>) -> Result<(), String> {
    let regexp = name.starts_with('~') || name == "all" || name == "all_others";
    if !regexp {
        check_name(name)?;
    }
    let s = |k: &str| conf.get(k).and_then(Value::as_str).unwrap_or("");
    let source = s("source");
    const SCHEMES: &[&str] = &[
        "rtsp://",
        "rtsps://",
        "rtsp+http://",
        "rtsps+http://",
        "rtsp+ws://",
        "rtsps+ws://",
        "rtmp://",
        "rtmps://",
        "http://",
        "https://",
        "udp+mpegts://",
        "udp+rtp://",
        "srt://",
        "whep://",
        "wheps://",
        "moqt://",
    ];
    if !matches!(source, "publisher" | "redirect" | "rpiCamera") && !SCHEMES.iter().any(|p| source.starts_with(p)) {
        return Err(format!("invalid source: '{source}'"));
    }
    let on_demand = conf.get("sourceOnDemand").and_then(Value::as_bool).unwrap_or(false);
    if source == "publisher" && on_demand {
        return Err("'sourceOnDemand' is useless when source is 'publisher'".into());
    }
    if source != "publisher" && (!s("runOnDemand").is_empty() || !s("runOnUnDemand").is_empty()) {
        return Err("'runOnDemand' and 'runOnUnDemand' can be used only when source is 'publisher'".into());
    }
    let rp = s("recordPath");
    if !rp.contains("%path") {
        return Err("'recordPath' must contain %path".into());
    }
    if !rp.contains("%s") && !["%Y", "%m", "%d", "%H", "%M", "%S"].iter().all(|f| rp.contains(f)) {
        return Err("'recordPath' must contain either %s or %Y %m %d %H %M %S".into());
    }
    if !matches!(s("recordFormat"), "fmp4" | "mpegts") {
        return Err(format!("invalid record format '{}'", s("recordFormat")));
    }
    let (seg, del) = (dur(conf, "recordSegmentDuration"), dur(conf, "recordDeleteAfter"));
    if seg > 86_400 * 1_000_000_000 {
        return Err("maximum segment duration is 1 day".into());
    }
    if del != 0 && del < seg {
        return Err("'recordDeleteAfter' cannot be lower than 'recordSegmentDuration'".into());
    }
    Ok(())
}
