//! Loading: find the file, read YAML into a value tree, apply environment overrides, walk the tree
//! against the model (typed errors and unknown keys named by dotted key), merge over the defaults, validate every
//! rule, and only then build the typed [`Config`]. Precedence: defaults < file < environment.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::schema::{self, env_keys, env_name, Kind, Walk};
use super::validate::{validate, Checker};
use super::Config;

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config PATH`: must exist.
    pub path: Option<PathBuf>,
    /// `--strict-config`: unknown keys are errors.
    pub strict: bool,
}

/// A configuration error: one line per problem, each naming the key, e.g.
/// `server.port: expected 1..65535, got 70000`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file read, if any.
    pub source: Option<PathBuf>,
    /// Lines to log at WARN once logging is up (unknown keys, ...).
    pub warnings: Vec<String>,
}

/// The standard locations, first existing wins (relative paths against the working directory).
pub const SEARCH_PATH: &[&str] =
    &["config/default.yaml", "/etc/camera-service/config.yaml", "/opt/camera-service/config/camera-service.yaml"];

/// Environment variables with a meaning of their own (not `CAMERA_SERVICE_<SECTION>_<KEY>`).
const PYTHON_ALIASES: &[(&str, &str)] = &[
    ("CAMERA_SERVICE_JWT_SECRET", "security.jwt.secret_key"),
    ("CAMERA_SERVICE_API_KEYS_PATH", "security.api_keys.storage_file"),
    ("CAMERA_SERVICE_RATE_RPM", "security.rate_limiting.requests_per_minute"),
];
const OTHER_KNOWN_VARS: &[&str] = &["CAMERA_SERVICE_CONFIG", "CAMERA_SERVICE_ENV", "CAMERA_SERVICE_ENABLE_HOT_RELOAD"];

/// Load from the process environment and the standard search path.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("CAMERA_SERVICE_") || k == "LOG_FORMAT")
        .collect();
    let search: Vec<PathBuf> = SEARCH_PATH.iter().map(PathBuf::from).collect();
    load_with(opts, &env, &search)
}

/// Load with an explicit environment and search path (the seam unit tests use).
pub fn load_with(
    opts: &LoadOptions,
    env: &BTreeMap<String, String>,
    search: &[PathBuf],
) -> Result<Loaded, ConfigError> {
    let source = find_file(opts, env, search)?;
    let mut raw = match &source {
        Some(path) => read_yaml(path)?,
        None => Value::Null,
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if source.is_none() {
        warnings.push("no configuration file found in standard locations, using built-in defaults".to_string());
    }
    // Keys whose environment value was invalid: reported once, as the env error, and not checked again.
    let mut failed = BTreeSet::new();
    let origins = apply_env(&mut raw, env, &mut errors, &mut warnings, &mut failed);

    let (defaults, kind) = schema::defaults();
    let mut walk = Walk::default();
    let user = schema::normalize(kind, "", &raw, &mut walk).unwrap_or(Value::Null);
    for (key, reason) in &walk.errors {
        if !failed.insert(key.clone()) {
            continue;
        }
        errors.push(format!("{}: {reason}", Checker::label(&origins, key)));
    }
    for key in &walk.unknown {
        if opts.strict {
            errors.push(format!("{key}: unknown configuration key (--strict-config)"));
        } else {
            warnings.push(format!("unknown configuration key '{key}' (ignored)"));
        }
    }
    let merged = schema::merge(defaults, &user);
    errors.extend(validate(&merged, &origins, failed));
    if !errors.is_empty() {
        return Err(ConfigError(errors.join("\n")));
    }
    let mut config: Config =
        serde_norway::from_value(merged.clone()).map_err(|e| name_serde_error(&merged, &origins, e))?;
    config.present = walk.present.into_iter().collect();
    if config.security.ssl.enabled {
        warnings.push("security.ssl.enabled: TLS is not built in; terminate TLS in a reverse proxy (ignored)".into());
    }
    Ok(Loaded { config, source, warnings })
}

/// `--config PATH`, else `CAMERA_SERVICE_CONFIG`, both of which must exist; else the first existing search entry.
fn find_file(
    opts: &LoadOptions,
    env: &BTreeMap<String, String>,
    search: &[PathBuf],
) -> Result<Option<PathBuf>, ConfigError> {
    let explicit = |path: &Path, what: &str| -> Result<Option<PathBuf>, ConfigError> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some(path.to_path_buf())),
            Ok(_) => Err(ConfigError(format!("{what}: {} is not a regular file", path.display()))),
            Err(e) => Err(ConfigError(format!("{what}: cannot read configuration file {}: {e}", path.display()))),
        }
    };
    if let Some(p) = &opts.path {
        return explicit(p, "--config");
    }
    if let Some(p) = env.get("CAMERA_SERVICE_CONFIG").filter(|p| !p.trim().is_empty()) {
        return explicit(Path::new(p), "CAMERA_SERVICE_CONFIG");
    }
    Ok(search.iter().find(|p| p.is_file()).cloned())
}

/// The file as a YAML tree; empty or comment-only files are an empty configuration.
fn read_yaml(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: cannot read configuration file: {e}", path.display())))?;
    let mut v: Value = serde_norway::from_str(&text)
        .map_err(|e| ConfigError(format!("{}: malformed YAML: {}", path.display(), one_line(&e.to_string()))))?;
    v.apply_merge()
        .map_err(|e| ConfigError(format!("{}: malformed YAML: {}", path.display(), one_line(&e.to_string()))))?;
    match v {
        Value::Null | Value::Mapping(_) => Ok(v),
        other => Err(ConfigError(format!(
            "{}: expected a mapping of configuration sections at the top level, got {}",
            path.display(),
            schema::describe(&other)
        ))),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Put every environment override into the raw tree. Returns key → variable for the keys the environment set.
fn apply_env(
    raw: &mut Value,
    env: &BTreeMap<String, String>,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
    failed: &mut BTreeSet<String>,
) -> BTreeMap<String, String> {
    let output_format_in_file =
        schema::get(raw, "logging.output_format").is_some_and(|v| !v.is_null() && !schema::is_placeholder(v));
    let mut origins = BTreeMap::new();
    let mut known: BTreeSet<String> = OTHER_KNOWN_VARS.iter().map(|s| s.to_string()).collect();
    let generic = env_keys().iter().map(|(key, kind)| (env_name(key), key.as_str(), kind));
    let aliases = PYTHON_ALIASES.iter().map(|(var, key)| {
        let kind = &env_keys().iter().find(|(k, _)| k == key).expect("alias targets a modelled key").1;
        (var.to_string(), *key, kind)
    });
    // Aliases come last so they win over the generic name of the same key.
    for (var, key, kind) in generic.chain(aliases).collect::<Vec<(String, &str, &Kind)>>() {
        let Some(text) = env.get(&var) else {
            known.insert(var);
            continue;
        };
        match schema::parse_env(kind, text) {
            Ok(v) => {
                if schema::set(raw, key, v) {
                    origins.insert(key.to_string(), var.clone());
                }
            }
            Err(reason) => {
                if failed.insert(key.to_string()) {
                    errors.push(format!("{var} ({key}): {reason}"));
                }
            }
        }
        known.insert(var);
    }
    if !output_format_in_file && !origins.contains_key("logging.output_format") {
        python_log_format(raw, env, &mut origins);
    }
    for var in env.keys().filter(|k| k.starts_with("CAMERA_SERVICE_") && !known.contains(*k)) {
        warnings.push(format!("unknown environment variable {var} (ignored)"));
    }
    origins
}

/// Python's switches: text when `CAMERA_SERVICE_ENV=development` or `LOG_FORMAT=console`, JSON when either is set
/// to anything else (Python's production default). Neither set: our default (text).
fn python_log_format(raw: &mut Value, env: &BTreeMap<String, String>, origins: &mut BTreeMap<String, String>) {
    let log_format = env.get("LOG_FORMAT").map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
    let service_env = env.get("CAMERA_SERVICE_ENV").map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
    let (format, var) = if log_format.as_deref() == Some("console") {
        ("text", "LOG_FORMAT")
    } else if service_env.as_deref() == Some("development") {
        ("text", "CAMERA_SERVICE_ENV")
    } else if log_format.is_some() {
        ("json", "LOG_FORMAT")
    } else if service_env.is_some() {
        ("json", "CAMERA_SERVICE_ENV")
    } else {
        return;
    };
    if schema::set(raw, "logging.output_format", Value::String(format.into())) {
        origins.insert("logging.output_format".into(), var.into());
    }
}

/// Serde failed after validation passed (an integer too wide for its field): find the leaf responsible by trying
/// each one alone over the defaults, so the message still names the key.
fn name_serde_error(merged: &Value, origins: &BTreeMap<String, String>, e: serde_norway::Error) -> ConfigError {
    let defaults = &schema::defaults().0;
    for (key, value) in schema::leaves(merged) {
        let mut probe = defaults.clone();
        schema::set(&mut probe, &key, value);
        if let Err(err) = serde_norway::from_value::<Config>(probe) {
            return ConfigError(format!("{}: {}", Checker::label(origins, &key), one_line(&err.to_string())));
        }
    }
    ConfigError(format!("configuration: {}", one_line(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(tag: &str) -> Tmp {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p = std::env::temp_dir().join(format!("cs-load-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Tmp(p)
        }
        fn file(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            p
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn load_text(text: &str, pairs: &[(&str, &str)], strict: bool) -> Result<Loaded, ConfigError> {
        let t = Tmp::new("text");
        let p = t.file("c.yaml", text);
        load_with(&LoadOptions { path: Some(p), strict }, &env(pairs), &[])
    }

    #[test]
    fn search_order_and_missing_files() {
        let t = Tmp::new("search");
        let second = t.file("b.yaml", "server: {port: 9001}");
        let search = vec![t.0.join("missing.yaml"), second.clone(), t.file("c.yaml", "server: {port: 9002}")];
        let l = load_with(&LoadOptions::default(), &env(&[]), &search).unwrap();
        assert_eq!(l.source, Some(second));
        assert_eq!(l.config.server.port, 9001);
        assert!(l.config.is_present("server.port"));
        let none = load_with(&LoadOptions::default(), &env(&[]), &[t.0.join("nope.yaml")]).unwrap();
        assert_eq!(none.source, None);
        assert_eq!(none.config, Config::default());
        let e = load_with(&LoadOptions { path: Some(t.0.join("x.yaml")), strict: false }, &env(&[]), &search);
        assert!(e.unwrap_err().0.starts_with("--config: cannot read configuration file "));
        let via_env = env(&[("CAMERA_SERVICE_CONFIG", t.0.join("y.yaml").to_str().unwrap())]);
        let e = load_with(&LoadOptions::default(), &via_env, &search).unwrap_err();
        assert!(e.0.starts_with("CAMERA_SERVICE_CONFIG: "), "{e}");
    }

    #[test]
    fn env_overrides_file_and_names_bad_values() {
        let l = load_text(
            "server: {port: 9000}\n",
            &[("CAMERA_SERVICE_SERVER_PORT", "9100"), ("CAMERA_SERVICE_MEDIAMTX_CODEC_BITRATE", "2M")],
            false,
        )
        .unwrap();
        assert_eq!(l.config.server.port, 9100);
        assert_eq!(l.config.mediamtx.codec.bitrate, "2M");
        assert!(l.config.is_present("mediamtx.codec.bitrate"));
        let e = load_text("", &[("CAMERA_SERVICE_SERVER_PORT", "70000")], false).unwrap_err();
        assert_eq!(e.0, "CAMERA_SERVICE_SERVER_PORT (server.port): expected 1..65535, got 70000");
        let e = load_text("server: {port: 0}", &[("CAMERA_SERVICE_SERVER_PORT", "x")], false).unwrap_err();
        assert_eq!(e.0, "CAMERA_SERVICE_SERVER_PORT (server.port): expected a non-negative integer, got \"x\"");
        let e = load_text("", &[("CAMERA_SERVICE_CAMERA_AUTO_START_STREAMS", "perhaps")], false).unwrap_err();
        assert!(e.0.starts_with("CAMERA_SERVICE_CAMERA_AUTO_START_STREAMS (camera.auto_start_streams): "), "{e}");
    }

    #[test]
    fn python_names_and_log_format_switches() {
        let l = load_text(
            "security: {jwt: {secret_key: \"${CAMERA_SERVICE_JWT_SECRET}\"}}",
            &[("CAMERA_SERVICE_RATE_RPM", "30"), ("LOG_FORMAT", "json")],
            false,
        )
        .unwrap();
        assert_eq!(l.config.security.jwt.secret_key, None);
        assert_eq!(l.config.security.rate_limiting.requests_per_minute, 30);
        assert_eq!(l.config.logging.output_format, "json");
        let l = load_text("logging: {output_format: text}", &[("CAMERA_SERVICE_ENV", "production")], false).unwrap();
        assert_eq!(l.config.logging.output_format, "text");
        let l = load_text("", &[("CAMERA_SERVICE_ENV", "development"), ("LOG_FORMAT", "json")], false).unwrap();
        assert_eq!(l.config.logging.output_format, "text");
        let e = load_text("", &[("CAMERA_SERVICE_JWT_SECRET", super::super::validate::PYTHON_DEFAULT_SECRET)], false);
        assert!(e.unwrap_err().0.starts_with("CAMERA_SERVICE_JWT_SECRET (security.jwt.secret_key): "));
    }

    #[test]
    fn unknown_keys_warn_or_fail() {
        let l = load_text("server: {foo: 1}\nstorage: {}\n", &[("CAMERA_SERVICE_BOGUS", "1")], false).unwrap();
        let mut w = l.warnings.clone();
        w.sort();
        assert_eq!(
            w,
            [
                "unknown configuration key 'server.foo' (ignored)",
                "unknown configuration key 'storage' (ignored)",
                "unknown environment variable CAMERA_SERVICE_BOGUS (ignored)",
            ]
        );
        let e = load_text("server: {foo: 1}\n", &[], true).unwrap_err();
        assert_eq!(e.0, "server.foo: unknown configuration key (--strict-config)");
        // Odd keys are quoted, so every line still starts with the key it is about (found by the config fuzz test).
        let e = load_text("\".\": 1\nserver: {\"\": 2, \"a\\nb\": 3}\n", &[], true).unwrap_err();
        let mut lines: Vec<&str> = e.0.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "\".\": unknown configuration key (--strict-config)",
                "server.\"\": unknown configuration key (--strict-config)",
                "server.\"a\\nb\": unknown configuration key (--strict-config)",
            ]
        );
    }

    #[test]
    fn all_errors_reported_and_wide_ints_named() {
        let e = load_text("server: {port: abc}\nsnapshots: {quality: 0}\nlogging: {level: info}\n", &[], false)
            .unwrap_err();
        let lines: Vec<&str> = e.0.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(lines[0].starts_with("server.port: expected a non-negative integer"));
        let e = load_text("camera: {capability_max_retries: 5000000000}", &[], false).unwrap_err();
        assert!(e.0.starts_with("camera.capability_max_retries: "), "{e}");
        let e = load_text("server: [1, 2", &[], false).unwrap_err();
        assert!(e.0.contains("malformed YAML") && !e.0.contains('\n'), "{e}");
    }

    #[test]
    fn python_sample_loads_without_warnings() {
        let text = include_str!("../../tests/fixtures/python-config-used.yaml");
        let l = load_text(text, &[], true).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config.health_port(), 8003);
        assert_eq!(l.config.camera.device_numbers(), (0..=9).collect::<Vec<_>>());
        assert_eq!(l.config.performance.snapshot_tiers.tier1_usb_direct_timeout, 0.5);
    }
}
