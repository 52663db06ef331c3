//! Configuration through the real binary: `camera-service --check-config` prints the effective configuration, or
//! one stderr line per problem and exit code 2.

use std::path::Path;
use std::process::Command;

use camera_service::config::Config;
use serde_norway::{Mapping, Value};

use crate::support::{bin, TempDir};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn config(&self) -> Value {
        assert_eq!(self.code, Some(0), "check-config failed: {}", self.stderr);
        serde_norway::from_str(&self.stdout).expect("check-config prints YAML")
    }

    fn error_lines(&self) -> Vec<&str> {
        assert_eq!(self.code, Some(2), "expected exit 2; stdout: {} stderr: {}", self.stdout, self.stderr);
        assert!(self.stdout.is_empty(), "nothing on stdout on error: {}", self.stdout);
        self.stderr.lines().collect()
    }
}

/// `--check-config` in `cwd` with exactly `env` (nothing inherited) and `args`.
fn run_in(cwd: &Path, args: &[&str], env: &[(String, String)]) -> Run {
    let out = Command::new(bin())
        .arg("--check-config")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(crate::support::profile_env())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run camera-service");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `--check-config --config <file with yaml>` plus extra args and env.
fn check(yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = TempDir::new("config");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    run_in(dir.path(), &all, &env)
}

fn at<'a>(v: &'a Value, key: &str) -> &'a Value {
    key.split('.').fold(v, |v, k| v.get(k).unwrap_or_else(|| panic!("no key {key} in output")))
}

/// Dotted leaves of a tree; lists count as leaves.
fn leaves(v: &Value) -> Vec<(String, Value)> {
    fn go(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let k = k.as_str().unwrap();
                    go(&if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") }, v, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let mut out = Vec::new();
    go("", v, &mut out);
    out
}

fn set(root: &mut Value, key: &str, value: Value) {
    let mut cur = root;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !cur.is_mapping() {
            *cur = Value::Mapping(Mapping::new());
        }
        cur = cur.as_mapping_mut().unwrap().entry(Value::from(*part)).or_insert(Value::Null);
    }
    if !cur.is_mapping() {
        *cur = Value::Mapping(Mapping::new());
    }
    cur.as_mapping_mut().unwrap().insert(Value::from(parts[parts.len() - 1]), value);
}

fn env_name(key: &str) -> String {
    format!("CAMERA_SERVICE_{}", key.replace('.', "_").to_uppercase())
}

/// A valid value different from the default: (as YAML, as an environment variable, as printed back).
fn other_value(key: &str, default: &Value) -> Option<(Value, String, Value)> {
    let s = |v: &str| Some((Value::from(v), v.to_string(), Value::from(v)));
    match key {
        "logging.level" => return s("DEBUG"),
        "logging.output_format" => return s("json"),
        "recording.format" => return s("mp4"),
        "recording.quality" => return s("high"),
        "snapshots.format" => return s("png"),
        "server.websocket_path" => return s("/api/ws"),
        "mediamtx.live_frames_path" => return s("/run/changed-live-frames"),
        "mediamtx.run_on_demand_start_timeout" | "mediamtx.run_on_demand_close_after" => return s("1m30s"),
        // Set, but printed only as <redacted> (secrets.rs checks that it is the secret that signs tokens).
        "security.jwt.secret_key" => {
            return Some((Value::from("changed-secret"), "changed-secret".into(), Value::from("<redacted>")))
        }
        // HS256 is the only algorithm accepted; set it explicitly anyway.
        "security.jwt.algorithm" => return s("HS256"),
        "health_port" => return Some((Value::from(8100u64), "8100".into(), Value::from(8100u64))),
        "security.rate_limiting.max_connections" => return Some((Value::from(7u64), "7".into(), Value::from(7u64))),
        "logging.max_file_size" => return Some((Value::from("2KB"), "2KB".into(), Value::from(2048u64))),
        "camera.device_range" => {
            let v: Value = serde_norway::from_str("[1, 3, 5]").unwrap();
            return Some((v.clone(), "1,3,5".into(), v));
        }
        "mediamtx.backoff_jitter_range" => {
            let v: Value = serde_norway::from_str("[0.7, 1.3]").unwrap();
            return Some((v.clone(), "0.7,1.3".into(), v));
        }
        "camera.virtual" | "camera.external" => return None, // lists of mappings: file only, tested separately
        "external_discovery.hosts" => {
            let v: Value = serde_norway::from_str("[127.0.0.1, 10.0.0.0/30]").unwrap();
            return Some((v.clone(), "127.0.0.1,10.0.0.0/30".into(), v));
        }
        "external_discovery.ports" => {
            let v: Value = serde_norway::from_str("[8554, 9554]").unwrap();
            return Some((v.clone(), "8554,9554".into(), v));
        }
        "external_discovery.paths" => {
            let v: Value = serde_norway::from_str("[live, stream2]").unwrap();
            return Some((v.clone(), "live,stream2".into(), v));
        }
        _ => {}
    }
    match default {
        Value::Bool(b) => Some((Value::from(!b), (!b).to_string(), Value::from(!b))),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap() + 0.5;
            Some((Value::from(f), f.to_string(), Value::from(f)))
        }
        Value::Number(n) => {
            let u = n.as_u64().unwrap() + 1;
            Some((Value::from(u), u.to_string(), Value::from(u)))
        }
        Value::String(t) => s(&format!("{t}-changed")),
        Value::Null => s(&format!("changed-{}", key.replace('.', "-"))),
        other => panic!("no test value for {key} = {other:?}"),
    }
}

fn default_render() -> String {
    serde_norway::to_string(&Config::default()).unwrap()
}

#[test]
fn empty_file_prints_every_default() {
    let r = check("", &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, default_render());
    let v = r.config();
    let expect: &[(&str, &str)] = &[
        ("server.host", "0.0.0.0"),
        ("server.port", "8002"),
        ("server.websocket_path", "/ws"),
        ("server.max_connections", "100"),
        ("mediamtx.enabled", "true"),
        ("mediamtx.host", "localhost"),
        ("mediamtx.api_port", "9997"),
        (
            "mediamtx.codec",
            "{encoder: libx264, video_profile: baseline, video_level: '3.0', pixel_format: yuv420p, \
          bitrate: 600k, preset: ultrafast}",
        ),
        ("mediamtx.backoff_jitter_range", "[0.8, 1.2]"),
        ("mediamtx.stream_readiness.timeout", "15.0"),
        ("camera.poll_interval", "0.1"),
        ("camera.detection_timeout", "1.0"),
        ("camera.device_range", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"),
        ("camera.auto_start_streams", "true"),
        ("camera.virtual", "[]"),
        ("logging.level", "INFO"),
        ("logging.format", "'%(asctime)s - %(name)s - %(levelname)s - %(message)s'"),
        ("logging.file_enabled", "false"),
        ("logging.max_file_size", "10485760"),
        ("logging.output_format", "text"),
        ("recording.format", "fmp4"),
        ("recording.quality", "medium"),
        ("recording.rotation_minutes", "30"),
        ("recording.storage_warn_percent", "80"),
        ("recording.storage_block_percent", "90"),
        ("snapshots.format", "jpeg"),
        ("snapshots.quality", "85"),
        ("ffmpeg.recording.internal_timeout", "10000000"),
        ("notifications.websocket.max_queue_size", "1000"),
        ("performance.snapshot_tiers.tier1_usb_direct_timeout", "2.0"),
        ("security.jwt.secret_key", "null"),
        ("security.rate_limiting.requests_per_minute", "120"),
        ("security.health.port", "8003"),
        ("health_port", "null"),
        ("state_dir", "/var/lib/camera-service/state"),
    ];
    for (key, want) in expect {
        let want: Value = serde_norway::from_str(want).unwrap();
        assert_eq!(at(&v, key), &want, "default of {key}");
    }
}

#[test]
fn no_file_anywhere_means_built_in_defaults() {
    let installed = ["/etc/camera-service/config.yaml", "/opt/camera-service/config/camera-service.yaml"];
    if let Some(p) = installed.iter().find(|p| Path::new(p).exists()) {
        // An installed configuration rightly wins over the built-in defaults, so they cannot be checked here.
        crate::support::missing(&format!("no installed configuration ({p} exists)"));
        return;
    }
    let dir = TempDir::new("config-none");
    let r = run_in(dir.path(), &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout, default_render());
    assert!(r.stderr.contains("no configuration file found"), "{}", r.stderr);
}

#[test]
fn search_finds_config_default_yaml_in_working_directory_and_env_path() {
    let dir = TempDir::new("config-cwd");
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/default.yaml"), "server: {port: 9100}\n").unwrap();
    assert_eq!(at(&run_in(dir.path(), &[], &[]).config(), "server.port"), &Value::from(9100u64));
    // CAMERA_SERVICE_CONFIG names the file explicitly and wins over the search path.
    std::fs::write(dir.path().join("other.yaml"), "server: {port: 9200}\n").unwrap();
    let env = [("CAMERA_SERVICE_CONFIG".to_string(), dir.path().join("other.yaml").display().to_string())];
    assert_eq!(at(&run_in(dir.path(), &[], &env).config(), "server.port"), &Value::from(9200u64));
    let env = [("CAMERA_SERVICE_CONFIG".to_string(), "/nonexistent/x.yaml".to_string())];
    let r = run_in(dir.path(), &[], &env);
    assert_eq!(r.error_lines().len(), 1);
    assert!(r.stderr.starts_with("CAMERA_SERVICE_CONFIG: "), "{}", r.stderr);
}

#[test]
fn repository_default_yaml_is_strict_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let r = run_in(root, &["--strict-config"], &[]);
    let v = r.config();
    assert_eq!(r.stderr, "", "no warnings expected");
    assert_eq!(at(&v, "mediamtx.enabled"), &Value::from(false));
    assert_eq!(at(&v, "logging.file_enabled"), &Value::from(false));
    assert_eq!(at(&v, "state_dir"), &Value::from("./data/state"));
    assert_eq!(at(&v, "mediamtx.recordings_path"), &Value::from("./data/recordings"));
    assert_eq!(at(&v, "mediamtx.snapshots_path"), &Value::from("./data/snapshots"));
    assert_eq!(at(&v, "server.port"), &Value::from(8002u64));
    assert_eq!(at(&v, "health_port"), &Value::from(8003u64));
    let cams: Value =
        serde_norway::from_str("[{name: Test pattern, width: 640, height: 480, fps: 15, pattern: testsrc2}]").unwrap();
    assert_eq!(at(&v, "camera.virtual"), &cams);
}

/// Every key the defaults have, set to a valid non-default value in the file: each one comes back.
#[test]
fn every_key_is_read_from_the_file() {
    let defaults: Value = serde_norway::from_str(&default_render()).unwrap();
    let mut file = Value::Mapping(Mapping::new());
    let mut expected = Vec::new();
    for (key, default) in leaves(&defaults) {
        if let Some((yaml, _, back)) = other_value(&key, &default) {
            set(&mut file, &key, yaml);
            expected.push((key, back));
        }
    }
    assert!(expected.len() > 130, "{}", expected.len());
    let r = check(&serde_norway::to_string(&file).unwrap(), &["--strict-config"], &[]);
    let out = r.config();
    // The only expected remark: TLS is left to a reverse proxy.
    assert_eq!(
        r.stderr.lines().collect::<Vec<_>>(),
        ["WARNING: security.ssl.enabled: TLS is not built in; terminate TLS in a reverse proxy (ignored)"]
    );
    for (key, want) in &expected {
        assert_eq!(at(&out, key), want, "{key}");
    }
}

/// Every scalar key through its CAMERA_SERVICE_<SECTION>_<KEY> variable, over a file that sets nothing.
#[test]
fn every_key_is_overridden_by_its_environment_variable() {
    let defaults: Value = serde_norway::from_str(&default_render()).unwrap();
    let mut env = Vec::new();
    let mut expected = Vec::new();
    for (key, default) in leaves(&defaults) {
        if let Some((_, text, back)) = other_value(&key, &default) {
            env.push((env_name(&key), text));
            expected.push((key, back));
        }
    }
    assert!(env.iter().any(|(k, _)| k == "CAMERA_SERVICE_MEDIAMTX_CODEC_BITRATE"));
    assert!(env.iter().any(|(k, _)| k == "CAMERA_SERVICE_MEDIAMTX_STREAM_READINESS_TIMEOUT"));
    assert!(env.iter().any(|(k, _)| k == "CAMERA_SERVICE_HEALTH_PORT"));
    assert!(env.iter().any(|(k, _)| k == "CAMERA_SERVICE_STATE_DIR"));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = check("", &[], &env_ref);
    let out = r.config();
    assert!(!r.stderr.contains("unknown environment variable"), "{}", r.stderr);
    for (key, want) in &expected {
        assert_eq!(at(&out, key), want, "{key} via {}", env_name(key));
    }
    // The environment beats the file.
    let r = check(
        "server: {port: 9000}\nmediamtx: {codec: h264_v4l2m2m}\n",
        &[],
        &[("CAMERA_SERVICE_SERVER_PORT", "9001"), ("CAMERA_SERVICE_MEDIAMTX_CODEC_PRESET", "fast")],
    );
    let out = r.config();
    assert_eq!(at(&out, "server.port"), &Value::from(9001u64));
    assert_eq!(at(&out, "mediamtx.codec.encoder"), &Value::from("h264_v4l2m2m"));
    assert_eq!(at(&out, "mediamtx.codec.preset"), &Value::from("fast"));
}

#[test]
fn python_environment_names() {
    let out = check(
        "security: {jwt: {secret_key: from-file-secret}}\n",
        &[],
        &[
            ("CAMERA_SERVICE_JWT_SECRET", "from-env-secret"),
            ("CAMERA_SERVICE_API_KEYS_PATH", "/tmp/keys.json"),
            ("CAMERA_SERVICE_RATE_RPM", "30"),
            ("LOG_FORMAT", "json"),
        ],
    )
    .config();
    // Set (by the environment, which wins: see secrets.rs), and never printed.
    assert_eq!(at(&out, "security.jwt.secret_key"), &Value::from("<redacted>"));
    assert_eq!(at(&out, "security.api_keys.storage_file"), &Value::from("/tmp/keys.json"));
    assert_eq!(at(&out, "security.rate_limiting.requests_per_minute"), &Value::from(30u64));
    assert_eq!(at(&out, "logging.output_format"), &Value::from("json"));
    let out = check("", &[], &[("CAMERA_SERVICE_ENV", "production")]).config();
    assert_eq!(at(&out, "logging.output_format"), &Value::from("json"));
    let out = check("", &[], &[("CAMERA_SERVICE_ENV", "production"), ("LOG_FORMAT", "console")]).config();
    assert_eq!(at(&out, "logging.output_format"), &Value::from("text"));
    // An explicit output_format wins over the Python switches.
    let out = check("logging: {output_format: text}\n", &[], &[("LOG_FORMAT", "json")]).config();
    assert_eq!(at(&out, "logging.output_format"), &Value::from("text"));
    // An unsubstituted installer placeholder is unset, not a secret.
    let out = check("security: {jwt: {secret_key: \"${CAMERA_SERVICE_JWT_SECRET}\"}}\n", &[], &[]).config();
    assert_eq!(at(&out, "security.jwt.secret_key"), &Value::Null);
}

/// Each invalid configuration stops with exit 2 and exactly one stderr line that starts with the key.
#[test]
fn invalid_configurations_name_the_key() {
    let big_range =
        format!("camera: {{device_range: [{}]}}", (0..101).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
    let cases: &[(&str, &str)] = &[
        ("server: {port: 70000}", "server.port: expected 1..65535, got 70000"),
        ("server: {port: abc}", "server.port: "),
        ("server: 5", "server: "),
        ("server: {websocket_path: ws}", "server.websocket_path: "),
        ("server: {max_connections: 0}", "server.max_connections: "),
        ("logging: {level: info}", "logging.level: "),
        ("logging: {output_format: xml}", "logging.output_format: "),
        ("logging: {max_file_size: lots}", "logging.max_file_size: "),
        ("recording: {storage_warn_percent: 95}", "recording.storage_warn_percent: "),
        ("recording: {storage_block_percent: 101}", "recording.storage_block_percent: "),
        ("recording: {rotation_minutes: 2000}", "recording.rotation_minutes: "),
        ("recording: {format: mov}", "recording.format: "),
        ("snapshots: {quality: 0}", "snapshots.quality: "),
        ("snapshots: {format: gif}", "snapshots.format: "),
        ("camera: {poll_interval: 0.001}", "camera.poll_interval: "),
        ("camera: {detection_timeout: 0.01}", "camera.detection_timeout: "),
        (&big_range, "camera.device_range: "),
        ("camera: {enable_capability_detection: maybe}", "camera.enable_capability_detection: "),
        ("camera: {virtual: [{name: x, pattern: \"testsrc2,size=9999x9999\"}]}", "camera.virtual[0].pattern: "),
        ("camera: {virtual: [{name: x, fps: 0}]}", "camera.virtual[0].fps: "),
        ("mediamtx: {backoff_jitter_range: [1.5, 1.0]}", "mediamtx.backoff_jitter_range: "),
        ("mediamtx: {codec: {bitrate: \"\"}}", "mediamtx.codec.bitrate: "),
        ("mediamtx: {rtsp_port: 0}", "mediamtx.rtsp_port: "),
        ("mediamtx: {health_check_interval: 0}", "mediamtx.health_check_interval: "),
        ("security: {jwt: {algorithm: RS256}}", "security.jwt.algorithm: "),
        ("health_port: 99999", "health_port: "),
    ];
    for (yaml, prefix) in cases {
        let r = check(yaml, &[], &[]);
        let lines = r.error_lines();
        assert_eq!(lines.len(), 1, "{yaml}: {lines:?}");
        assert!(lines[0].starts_with(prefix), "{yaml}: {:?} should start with {prefix:?}", lines[0]);
    }
}

#[test]
fn invalid_environment_values_name_variable_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("CAMERA_SERVICE_SERVER_PORT", "abc", "CAMERA_SERVICE_SERVER_PORT (server.port): "),
        ("CAMERA_SERVICE_SERVER_PORT", "0", "CAMERA_SERVICE_SERVER_PORT (server.port): expected 1..65535, got 0"),
        ("CAMERA_SERVICE_CAMERA_AUTO_START_STREAMS", "maybe", "CAMERA_SERVICE_CAMERA_AUTO_START_STREAMS (camera."),
        ("CAMERA_SERVICE_CAMERA_DEVICE_RANGE", "1,x", "CAMERA_SERVICE_CAMERA_DEVICE_RANGE (camera.device_range): "),
        ("CAMERA_SERVICE_RATE_RPM", "fast", "CAMERA_SERVICE_RATE_RPM (security.rate_limiting.requests_per_minute): "),
        ("CAMERA_SERVICE_LOGGING_LEVEL", "verbose", "CAMERA_SERVICE_LOGGING_LEVEL (logging.level): "),
    ];
    for (var, value, prefix) in cases {
        let r = check("", &[], &[(var, value)]);
        let lines = r.error_lines();
        assert_eq!(lines.len(), 1, "{var}={value}: {lines:?}");
        assert!(lines[0].starts_with(prefix), "{var}={value}: {:?}", lines[0]);
    }
}

#[test]
fn every_violation_is_reported() {
    let r = check("server: {port: 0}\nsnapshots: {quality: 500}\nlogging: {level: loud}\n", &[], &[]);
    let lines = r.error_lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for key in ["server.port: ", "snapshots.quality: ", "logging.level: "] {
        assert!(lines.iter().any(|l| l.starts_with(key)), "{key} missing in {lines:?}");
    }
}

#[test]
fn unknown_keys_warn_or_fail_with_strict() {
    let yaml = "server: {port: 8002, foo: 1}\nstorage: {warn_percent: 80}\n";
    let r = check(yaml, &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let warnings: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("unknown configuration key 'server.foo'")));
    assert!(warnings.iter().any(|w| w.contains("unknown configuration key 'storage'")));
    let r = check(yaml, &["--strict-config"], &[]);
    let lines = r.error_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("server.foo: "));
    assert!(lines[1].starts_with("storage: "));
}

#[test]
fn missing_config_file_and_malformed_yaml() {
    let dir = TempDir::new("config-missing");
    let r = run_in(dir.path(), &["--config", "/nonexistent/camera.yaml"], &[]);
    let lines = r.error_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("--config: ") && lines[0].contains("/nonexistent/camera.yaml"), "{}", lines[0]);
    for bad in ["server: {port: 8002\n", "server:\n  port: 1\n port: 2\n", "- just\n- a list\n", "a: b: c\n"] {
        let r = check(bad, &[], &[]);
        let lines = r.error_lines();
        assert_eq!(lines.len(), 1, "{bad:?}: {lines:?}");
        assert!(lines[0].contains("config.yaml: "), "{bad:?}: {}", lines[0]);
    }
}

#[test]
fn python_service_file_loads_unchanged() {
    let text = include_str!("fixtures/python-config-used.yaml");
    let r = check(text, &["--strict-config"], &[]);
    let out = r.config();
    assert_eq!(r.stderr, "", "no warnings expected for the Python file");
    assert_eq!(at(&out, "server.host"), &Value::from("127.0.0.1"));
    assert_eq!(at(&out, "health_port"), &Value::from(8003u64));
    assert_eq!(at(&out, "mediamtx.codec.bitrate"), &Value::from("600k"));
    assert_eq!(at(&out, "mediamtx.codec.encoder"), &Value::from("libx264"));
    assert_eq!(at(&out, "performance.snapshot_tiers.tier1_usb_direct_timeout"), &Value::from(0.5));
    assert_eq!(at(&out, "snapshots.quality"), &Value::from(90u64));
    // Other Python shapes: codec as a bare encoder name, sizes with units, YAML 1.1 booleans, unquoted level.
    let out = check(
        "mediamtx: {codec: libx265, video_level: 4.1}\nlogging: {max_file_size: 10MB, file_enabled: yes}\n",
        &[],
        &[],
    )
    .config();
    assert_eq!(at(&out, "mediamtx.codec.encoder"), &Value::from("libx265"));
    assert_eq!(at(&out, "mediamtx.codec.preset"), &Value::from("ultrafast"));
    assert_eq!(at(&out, "mediamtx.video_level"), &Value::from("4.1"));
    assert_eq!(at(&out, "logging.max_file_size"), &Value::from(10u64 << 20));
    assert_eq!(at(&out, "logging.file_enabled"), &Value::from(true));
}

/// The daemon itself: JSON lines to a log file (and stderr), with the request's correlation id on lines logged
/// while handling it; text lines in the Python format by default.
#[test]
fn daemon_logs_json_to_file_and_text_by_default() {
    use crate::support::Daemon;
    let logs = TempDir::new("config-logs");
    let file = logs.path().join("nested/service.log");
    let mut d = Daemon::builder()
        .env("CAMERA_SERVICE_LOGGING_FILE_ENABLED", "true")
        .env("CAMERA_SERVICE_LOGGING_FILE_PATH", file.to_str().unwrap())
        .env("CAMERA_SERVICE_LOGGING_OUTPUT_FORMAT", "json")
        .start();
    let _admin = d.client_as("admin");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0), "{}", d.stderr());
    let text = std::fs::read_to_string(&file).expect("log file written");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.len() >= 3, "{text}");
    for l in &lines {
        assert!(l["timestamp"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24), "{l}");
        assert!(["DEBUG", "INFO", "WARNING", "ERROR"].contains(&l["level"].as_str().unwrap()), "{l}");
        assert!(l["logger"].is_string() && l["message"].is_string() && l["thread"].is_string(), "{l}");
    }
    let auth = lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with("authenticated")))
        .unwrap_or_else(|| panic!("no authentication line in {text}"));
    assert_eq!(auth["correlation_id"], "req-1", "{auth}");
    assert!(lines.iter().any(|l| l["message"].as_str().is_some_and(|m| m.contains("configuration loaded from"))));
    // Console (stderr) carries the same JSON lines.
    assert!(d.stderr().lines().any(|l| l.starts_with("{\"timestamp\":")), "{}", d.stderr());

    let mut d = Daemon::start();
    let _admin = d.client_as("admin");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let err = d.stderr();
    assert!(err.lines().any(|l| l.contains(" - INFO - [req-1] authenticated")), "{err}");
}
