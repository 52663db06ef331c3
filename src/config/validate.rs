//! Value rules (the Python service's, the Go port's additions, and ours), checked on the merged YAML tree *before* it
//! becomes
//! typed structs, so an out-of-range number names its key instead of surfacing as a bare serde overflow. Every
//! violation is reported; a key that already failed is not checked again by a cross-key rule, so one bad key gives
//! exactly one line.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use super::schema::{describe, get};

/// The value Python falls back to when no secret is configured; never acceptable as a real secret.
pub const PYTHON_DEFAULT_SECRET: &str = "default-secret-key-change-in-production";

pub struct Checker<'a> {
    root: &'a Value,
    /// Key → environment variable that set it (error lines then read `VAR (key): reason`).
    origins: &'a BTreeMap<String, String>,
    pub errors: Vec<String>,
    failed: BTreeSet<String>,
}

impl<'a> Checker<'a> {
    pub fn new(root: &'a Value, origins: &'a BTreeMap<String, String>, already_failed: BTreeSet<String>) -> Self {
        Checker { root, origins, errors: Vec::new(), failed: already_failed }
    }

    /// `server.port`, or `CAMERA_SERVICE_SERVER_PORT (server.port)` when the environment set it.
    pub fn label(origins: &BTreeMap<String, String>, key: &str) -> String {
        match origins.get(key) {
            Some(var) => format!("{var} ({key})"),
            None => key.to_string(),
        }
    }

    pub fn fail(&mut self, key: &str, reason: impl std::fmt::Display) {
        if self.failed.insert(key.to_string()) {
            self.errors.push(format!("{}: {reason}", Self::label(self.origins, key)));
        }
    }

    /// The value at `key`, unless it is null or already failed a rule.
    pub(super) fn value(&self, key: &str) -> Option<&'a Value> {
        if self.failed.contains(key) {
            return None;
        }
        get(self.root, key).filter(|v| !v.is_null())
    }

    fn uint(&self, key: &str) -> Option<u64> {
        self.value(key).and_then(Value::as_u64)
    }

    fn float(&self, key: &str) -> Option<f64> {
        self.value(key).and_then(Value::as_f64)
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.value(key).and_then(Value::as_str)
    }

    /// Inclusive integer range.
    pub fn range(&mut self, key: &str, lo: u64, hi: u64) {
        if let Some(v) = self.uint(key) {
            if v < lo || v > hi {
                self.fail(key, format!("expected {lo}..{hi}, got {v}"));
            }
        }
    }

    pub fn at_least(&mut self, key: &str, lo: u64) {
        if let Some(v) = self.uint(key) {
            if v < lo {
                self.fail(key, format!("expected >= {lo}, got {v}"));
            }
        }
    }

    /// Number strictly above `lo`.
    pub fn above(&mut self, key: &str, lo: f64) {
        if let Some(v) = self.float(key) {
            if v.is_nan() || v <= lo {
                self.fail(key, format!("expected > {lo}, got {v}"));
            }
        }
    }

    /// Number at or above `lo`.
    pub fn min(&mut self, key: &str, lo: f64) {
        if let Some(v) = self.float(key) {
            if v.is_nan() || v < lo {
                self.fail(key, format!("expected >= {lo}, got {v}"));
            }
        }
    }

    /// Number within `lo..=hi`.
    pub fn range_f64(&mut self, key: &str, lo: f64, hi: f64) {
        if let Some(v) = self.float(key) {
            if v.is_nan() || v < lo || v > hi {
                self.fail(key, format!("expected {lo}..{hi}, got {v}"));
            }
        }
    }

    pub fn non_empty(&mut self, key: &str) {
        if let Some(s) = self.str(key) {
            if s.trim().is_empty() {
                self.fail(key, "must not be empty");
            }
        }
    }

    pub fn one_of(&mut self, key: &str, allowed: &[&str]) {
        if let Some(s) = self.str(key) {
            if !allowed.contains(&s) {
                self.fail(key, format!("expected one of {}, got {s:?}", allowed.join(", ")));
            }
        }
    }

    fn check(&mut self, key: &str, ok: impl FnOnce(&'a Value) -> bool, reason: impl FnOnce(&'a Value) -> String) {
        if let Some(v) = self.value(key) {
            if !ok(v) {
                let r = reason(v);
                self.fail(key, r);
            }
        }
    }
}

/// Apply every rule; returns the error lines.
pub fn validate(root: &Value, origins: &BTreeMap<String, String>, already_failed: BTreeSet<String>) -> Vec<String> {
    let mut c = Checker::new(root, origins, already_failed);
    server(&mut c);
    mediamtx(&mut c);
    camera(&mut c);
    super::external::validate(&mut c);
    logging(&mut c);
    recording(&mut c);
    snapshots(&mut c);
    rest(&mut c);
    c.errors
}

fn server(c: &mut Checker) {
    c.non_empty("server.host");
    c.range("server.port", 1, 65535);
    c.non_empty("server.websocket_path");
    c.check(
        "server.websocket_path",
        |v| v.as_str().is_some_and(|s| s.starts_with('/')),
        |v| format!("must start with \"/\", got {}", describe(v)),
    );
    c.at_least("server.max_connections", 1);
    c.at_least("server.max_message_size", 1024);
    c.at_least("server.max_frame_size", 1024);
    for k in ["ping_interval", "ping_timeout", "auth_timeout", "shutdown_timeout"] {
        c.above(&format!("server.{k}"), 0.0);
    }
    c.range("server.worker_threads", 0, 256);
    c.range("server.live_max_fps", 1, 60);
    c.range("server.live_max_viewers", 1, 1000);
}

fn mediamtx(c: &mut Checker) {
    c.non_empty("mediamtx.host");
    for p in ["api_port", "rtsp_port", "webrtc_port", "hls_port"] {
        c.range(&format!("mediamtx.{p}"), 1, 65535);
    }
    for p in ["config_path", "recordings_path", "snapshots_path"] {
        c.non_empty(&format!("mediamtx.{p}"));
    }
    // The publisher names its frame file inside ffmpeg's `tee` syntax, which reserves `|`, `[`, `:` and more.
    c.check(
        "mediamtx.live_frames_path",
        |v| v.as_str().is_none_or(|s| s.is_empty() || (s.starts_with('/') && s.chars().all(is_plain_path_char))),
        |v| format!("expected an absolute path of letters, digits, '/', '.', '_' or '-', got {}", describe(v)),
    );
    c.above("mediamtx.api_timeout", 0.0);
    for f in ["encoder", "video_profile", "video_level", "pixel_format", "bitrate", "preset"] {
        c.non_empty(&format!("mediamtx.codec.{f}"));
    }
    for f in ["run_on_demand_start_timeout", "run_on_demand_close_after"] {
        let key = format!("mediamtx.{f}");
        c.check(
            &key,
            |v| v.as_str().is_some_and(is_go_duration),
            |v| format!("expected a duration like \"10s\" or \"1m30s\", got {}", describe(v)),
        );
    }
    for f in ["health_check_interval", "health_circuit_breaker_timeout", "health_max_backoff_interval"] {
        c.above(&format!("mediamtx.{f}"), 0.0);
    }
    c.at_least("mediamtx.health_failure_threshold", 1);
    c.at_least("mediamtx.health_recovery_confirmation_threshold", 1);
    c.min("mediamtx.backoff_base_multiplier", 1.0);
    let jitter = "mediamtx.backoff_jitter_range";
    c.check(
        jitter,
        |v| match v.as_sequence().map(|s| s.iter().map(Value::as_f64).collect::<Vec<_>>()).as_deref() {
            Some([Some(lo), Some(hi)]) => *lo > 0.0 && lo <= hi,
            _ => false,
        },
        |v| format!("expected two numbers [lo, hi] with 0 < lo <= hi, got {}", render(v)),
    );
    c.above("mediamtx.process_termination_timeout", 0.0);
    c.above("mediamtx.process_kill_timeout", 0.0);
    c.range_f64("mediamtx.viewing_close_after", 1.0, 86_400.0);
    c.above("mediamtx.stream_readiness.timeout", 0.0);
    c.above("mediamtx.stream_readiness.check_interval", 0.0);
    c.min("mediamtx.stream_readiness.retry_delay", 0.0);
}

fn camera(c: &mut Checker) {
    c.min("camera.poll_interval", 0.01);
    c.min("camera.detection_timeout", 0.1);
    c.check(
        "camera.device_range",
        |v| v.as_sequence().is_some_and(|s| s.len() <= 100),
        |v| format!("expected at most 100 device numbers, got {}", v.as_sequence().map_or(0, Vec::len)),
    );
    c.above("camera.capability_timeout", 0.0);
    c.min("camera.capability_retry_interval", 0.0);
    c.non_empty("camera.device_dir");
    c.non_empty("camera.sysfs_dir");
    let Some(Value::Sequence(items)) = get(c.root, "camera.virtual") else { return };
    for (i, item) in items.iter().enumerate() {
        let p = format!("camera.virtual[{i}]");
        let field = |f: &str| item.get(f);
        if !matches!(field("name").and_then(Value::as_str), Some(s) if !s.trim().is_empty()) {
            c.fail(&format!("{p}.name"), "must not be empty");
        }
        for f in ["width", "height", "fps"] {
            let v = field(f).and_then(Value::as_u64).unwrap_or(0);
            let limit = if f == "fps" { 240 } else { 8192 };
            if v == 0 || v > limit {
                c.fail(&format!("{p}.{f}"), format!("expected 1..{limit}, got {v}"));
            }
        }
        let pattern = field("pattern").and_then(Value::as_str).unwrap_or("");
        if pattern.is_empty() || !pattern.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            c.fail(
                &format!("{p}.pattern"),
                format!("expected an ffmpeg lavfi source name such as \"testsrc2\" ([A-Za-z0-9_]+), got {pattern:?}"),
            );
        }
    }
}

fn logging(c: &mut Checker) {
    c.one_of("logging.level", &["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]);
    c.non_empty("logging.format");
    c.non_empty("logging.file_path");
    c.at_least("logging.max_file_size", 1);
    c.range("logging.backup_count", 0, 1000);
    c.one_of("logging.output_format", &["text", "json"]);
}

fn recording(c: &mut Checker) {
    c.one_of("recording.format", &["mp4", "fmp4", "mkv", "avi"]);
    c.one_of("recording.quality", &["low", "medium", "high"]);
    for k in ["segment_duration", "max_segment_size", "cleanup_interval", "max_age", "max_size"] {
        c.at_least(&format!("recording.{k}"), 1);
    }
    c.range("recording.rotation_minutes", 1, 1440);
    c.range("recording.storage_warn_percent", 0, 100);
    c.range("recording.storage_block_percent", 1, 100);
    let (w, b) = ("recording.storage_warn_percent", "recording.storage_block_percent");
    if let (Some(warn), Some(block)) = (c.uint(w), c.uint(b)) {
        if warn >= block {
            let block_label = Checker::label(c.origins, b);
            c.fail(w, format!("must be below {block_label} ({block}), got {warn}"));
        }
    }
}

fn snapshots(c: &mut Checker) {
    c.one_of("snapshots.format", &["jpg", "jpeg", "png", "bmp"]);
    c.range("snapshots.quality", 1, 100);
    c.range("snapshots.max_width", 1, 16384);
    c.range("snapshots.max_height", 1, 16384);
    c.at_least("snapshots.cleanup_interval", 1);
    c.at_least("snapshots.max_age", 1);
    c.at_least("snapshots.max_count", 1);
}

fn rest(c: &mut Checker) {
    for stage in ["snapshot", "recording"] {
        c.above(&format!("ffmpeg.{stage}.process_creation_timeout"), 0.0);
        c.above(&format!("ffmpeg.{stage}.execution_timeout"), 0.0);
        c.at_least(&format!("ffmpeg.{stage}.internal_timeout"), 1);
        c.min(&format!("ffmpeg.{stage}.retry_delay"), 0.0);
    }
    c.above("notifications.websocket.delivery_timeout", 0.0);
    c.at_least("notifications.websocket.max_queue_size", 1);
    c.min("notifications.websocket.retry_delay", 0.0);
    c.above("notifications.websocket.cleanup_interval", 0.0);
    for k in ["camera_status_interval", "recording_progress_interval", "connection_health_check"] {
        c.above(&format!("notifications.real_time.{k}"), 0.0);
    }
    for k in ["snapshot_capture", "recording_start", "recording_stop", "file_listing"] {
        c.above(&format!("performance.response_time_targets.{k}"), 0.0);
    }
    if let Some(Value::Mapping(tiers)) = get(c.root, "performance.snapshot_tiers") {
        for k in tiers.keys().filter_map(Value::as_str) {
            c.above(&format!("performance.snapshot_tiers.{k}"), 0.0);
        }
    }
    c.at_least("performance.optimization.max_concurrent_operations", 1);
    c.at_least("performance.optimization.connection_pool_size", 1);
    c.check(
        "security.jwt.secret_key",
        |v| v.as_str() != Some(PYTHON_DEFAULT_SECRET),
        |_| "the Python built-in default secret is not allowed; set a real secret or remove the key".into(),
    );
    c.check(
        "security.jwt.secret_key",
        |v| v.as_str() != Some(super::secret::REDACTED),
        |_| "\"<redacted>\" is what --check-config prints in place of the secret; set the real secret".into(),
    );
    c.at_least("security.jwt.expiry_hours", 1);
    c.one_of("security.jwt.algorithm", &["HS256"]);
    c.non_empty("security.api_keys.storage_file");
    c.at_least("security.rate_limiting.requests_per_minute", 1);
    c.at_least("security.rate_limiting.max_connections", 1);
    c.range("security.health.port", 1, 65535);
    c.non_empty("security.health.bind_address");
    c.range("health_port", 1, 65535);
    c.non_empty("state_dir");
}

/// Characters a path may have inside ffmpeg's `tee` output list.
pub fn is_plain_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/._-".contains(c)
}

fn render(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| describe(v))
}

/// Go `time.ParseDuration` syntax as MediaMTX reads it: one or more `<number><unit>` (`10s`, `1m30s`, `500ms`).
pub fn is_go_duration(s: &str) -> bool {
    let mut rest = s.trim();
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 || rest[..num_len].parse::<f64>().is_err() {
            return false;
        }
        rest = &rest[num_len..];
        let unit =
            ["ns", "us", "µs", "ms", "s", "m", "h"].iter().filter(|u| rest.starts_with(**u)).max_by_key(|u| u.len());
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        let (defaults, _) = super::super::schema::defaults();
        let user: Value = serde_norway::from_str(yaml).unwrap();
        let merged = super::super::schema::merge(defaults, &user);
        validate(&merged, &BTreeMap::new(), BTreeSet::new())
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(errors("{}"), Vec::<String>::new());
    }

    #[test]
    fn one_line_per_bad_key() {
        assert_eq!(errors("server: {port: 70000}"), vec!["server.port: expected 1..65535, got 70000"]);
        assert_eq!(errors("recording: {storage_warn_percent: 150}").len(), 1);
        assert_eq!(
            errors("recording: {storage_warn_percent: 95}"),
            vec!["recording.storage_warn_percent: must be below recording.storage_block_percent (90), got 95"]
        );
        let e = errors("camera: {virtual: [{name: x, width: 0, height: 10, fps: 5, pattern: \"testsrc2,x=1\"}]}");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("camera.virtual[0].width: "));
        assert!(e[1].starts_with("camera.virtual[0].pattern: "));
    }

    #[test]
    fn live_frames_path_is_absolute_and_plain() {
        assert!(errors("mediamtx: {live_frames_path: /run/camera-service/live}").is_empty());
        assert!(errors("mediamtx: {live_frames_path: null}").is_empty());
        assert!(errors("mediamtx: {live_frames_path: \"\"}").is_empty());
        for bad in ["live", "/run/a|b", "/run/a:b"] {
            let e = errors(&format!("mediamtx: {{live_frames_path: \"{bad}\"}}"));
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            assert!(e[0].starts_with("mediamtx.live_frames_path: expected an absolute path"), "{e:?}");
        }
    }

    #[test]
    fn env_origin_is_named() {
        let (defaults, _) = super::super::schema::defaults();
        let merged = super::super::schema::merge(defaults, &serde_norway::from_str("server: {port: 0}").unwrap());
        let origins = BTreeMap::from([("server.port".to_string(), "CAMERA_SERVICE_SERVER_PORT".to_string())]);
        assert_eq!(
            validate(&merged, &origins, BTreeSet::new()),
            vec!["CAMERA_SERVICE_SERVER_PORT (server.port): expected 1..65535, got 0"]
        );
    }

    #[test]
    fn durations() {
        for ok in ["10s", "1m30s", "500ms", "1.5h", "0"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "10", "s", "10x", "-1s"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }
}
