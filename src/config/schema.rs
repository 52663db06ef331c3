//! The shape of the configuration as data, derived from the serialized defaults, so that every key gets the same
//! treatment (typed walk with key-naming errors, presence tracking, environment variable) without a hand-kept list.
//!
//! Only keys whose default says nothing about their type (`null`, an empty list) or that accept two shapes carry a
//! hint ([`hint`]); a unit test makes sure no such key is missed.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_norway::{Mapping, Value};

use super::{ByteSize, Config, ExternalCameraConfig, VirtualCameraConfig};

/// What a key accepts.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Str,
    /// `null` or `""` = unset.
    OptStr,
    /// Non-negative integer (every integer key is unsigned).
    UInt,
    /// `null` = unset.
    OptUInt,
    /// Number (integers accepted).
    Float,
    Bool,
    /// Bytes as an integer or the Python size syntax (`10MB`).
    Size,
    /// List of scalars.
    List(Box<Kind>),
    /// List of mappings with these fields (merged over the record default).
    Records(Vec<(String, Kind)>, Value),
    Map(Vec<(String, Kind)>),
    /// `mediamtx.codec`: a mapping, or a bare string naming the encoder.
    Codec(Vec<(String, Kind)>),
}

impl Kind {
    pub fn children(&self) -> Option<&[(String, Kind)]> {
        match self {
            Kind::Map(c) | Kind::Codec(c) | Kind::Records(c, _) => Some(c),
            _ => None,
        }
    }

    pub fn child(&self, name: &str) -> Option<&Kind> {
        self.children()?.iter().find(|(n, _)| n == name).map(|(_, k)| k)
    }
}

/// Keys whose default does not reveal their type.
fn hint(path: &str) -> Option<Kind> {
    Some(match path {
        "health_port" | "security.rate_limiting.max_connections" => Kind::OptUInt,
        "mediamtx.public_host"
        | "mediamtx.live_frames_path"
        | "mediamtx.video_profile"
        | "mediamtx.video_level"
        | "mediamtx.pixel_format"
        | "mediamtx.bitrate"
        | "mediamtx.preset"
        | "security.jwt.secret_key"
        | "security.ssl.cert_file"
        | "security.ssl.key_file"
        | "camera.external[].transport" => Kind::OptStr,
        "external_discovery.hosts" => Kind::List(Box::new(Kind::Str)),
        "logging.max_file_size" => Kind::Size,
        "camera.virtual" => records("camera.virtual[]", VirtualCameraConfig::default()),
        "camera.external" => records("camera.external[]", ExternalCameraConfig::default()),
        _ => return None,
    })
}

/// A list of mappings, each merged over `default`.
fn records(path: &str, default: impl serde::Serialize) -> Kind {
    let def = serde_norway::to_value(default).expect("serializable default");
    match derive(path, &def) {
        Kind::Map(fields) => Kind::Records(fields, def),
        _ => unreachable!("a record default is a mapping"),
    }
}

fn derive(path: &str, v: &Value) -> Kind {
    if let Some(k) = hint(path) {
        return k;
    }
    match v {
        Value::String(_) => Kind::Str,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_f64() => Kind::Float,
        Value::Number(_) => Kind::UInt,
        Value::Sequence(s) => match s.first() {
            Some(first) => Kind::List(Box::new(derive(&format!("{path}[]"), first))),
            None => panic!("config key {path}: empty default list needs a type hint"),
        },
        Value::Mapping(m) => {
            let fields = m
                .iter()
                .map(|(k, v)| {
                    let name = k.as_str().expect("string keys").to_string();
                    let child = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                    (name, derive(&child, v))
                })
                .collect();
            if path == "mediamtx.codec" {
                Kind::Codec(fields)
            } else {
                Kind::Map(fields)
            }
        }
        Value::Null => panic!("config key {path}: null default needs a type hint"),
        Value::Tagged(_) => panic!("config key {path}: tagged default"),
    }
}

/// The serialized defaults (a mapping) and their kind tree, computed once.
pub fn defaults() -> &'static (Value, Kind) {
    static D: OnceLock<(Value, Kind)> = OnceLock::new();
    D.get_or_init(|| {
        let v = serde_norway::to_value(Config::default()).expect("serializable default");
        let k = derive("", &v);
        (v, k)
    })
}

/// Every key that can be set from the environment (scalars and scalar lists, nested keys flattened), with its kind.
pub fn env_keys() -> &'static [(String, Kind)] {
    static K: OnceLock<Vec<(String, Kind)>> = OnceLock::new();
    K.get_or_init(|| {
        let mut out = Vec::new();
        flatten("", &defaults().1, &mut out);
        out
    })
}

fn flatten(prefix: &str, kind: &Kind, out: &mut Vec<(String, Kind)>) {
    match kind {
        Kind::Map(fields) | Kind::Codec(fields) => {
            for (name, k) in fields {
                let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                flatten(&key, k, out);
            }
        }
        Kind::Records(..) => {}
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// `server.port` → `CAMERA_SERVICE_SERVER_PORT`.
pub fn env_name(key: &str) -> String {
    format!("CAMERA_SERVICE_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// A short description of a YAML value for error messages.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// An unsubstituted installer placeholder such as `${CAMERA_SERVICE_JWT_SECRET}`: counts as unset.
pub fn is_placeholder(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let s = s.trim();
    s.len() > 3
        && s.starts_with("${")
        && s.ends_with('}')
        && s[2..s.len() - 1].chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The result of walking a user tree against the kind tree.
#[derive(Debug, Default)]
pub struct Walk {
    /// `(dotted key, reason)`.
    pub errors: Vec<(String, String)>,
    /// Dotted keys not in the model.
    pub unknown: Vec<String>,
    /// Dotted keys the tree sets.
    pub present: Vec<String>,
}

/// Check `v` against `kind`, returning the value in canonical form (or None after recording an error).
pub fn normalize(kind: &Kind, path: &str, v: &Value, w: &mut Walk) -> Option<Value> {
    let fail = |w: &mut Walk, what: &str| {
        w.errors.push((path.to_string(), format!("expected {what}, got {}", describe(v))));
        None
    };
    match kind {
        Kind::Map(fields) => match v {
            Value::Null => Some(Value::Mapping(Mapping::new())),
            Value::Mapping(m) => Some(Value::Mapping(walk_fields(fields, path, m, w))),
            _ => fail(w, "a mapping"),
        },
        Kind::Codec(fields) => match v {
            Value::Null => Some(Value::Mapping(Mapping::new())),
            Value::String(s) if !s.is_empty() => {
                w.present.push(format!("{path}.encoder"));
                let mut m = Mapping::new();
                m.insert("encoder".into(), Value::String(s.clone()));
                Some(Value::Mapping(m))
            }
            Value::Mapping(m) => Some(Value::Mapping(walk_fields(fields, path, m, w))),
            _ => fail(w, "a mapping or an encoder name"),
        },
        Kind::Records(fields, default) => {
            let Value::Sequence(items) = v else { return fail(w, "a list of mappings") };
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let Value::Mapping(m) = item else {
                    w.errors.push((p, format!("expected a mapping, got {}", describe(item))));
                    continue;
                };
                let mut inner = Walk::default();
                let fields_v = walk_fields(fields, &p, m, &mut inner);
                w.errors.extend(inner.errors);
                w.unknown.extend(inner.unknown);
                out.push(merge(default, &Value::Mapping(fields_v)));
            }
            Some(Value::Sequence(out))
        }
        Kind::List(elem) => {
            let Value::Sequence(items) = v else { return fail(w, "a list") };
            let out: Vec<Value> =
                items.iter().enumerate().filter_map(|(i, x)| normalize(elem, &format!("{path}[{i}]"), x, w)).collect();
            (out.len() == items.len()).then_some(Value::Sequence(out))
        }
        scalar => normalize_scalar(scalar, v).or_else(|| fail(w, expected(scalar))),
    }
}

fn walk_fields(fields: &[(String, Kind)], path: &str, m: &Mapping, w: &mut Walk) -> Mapping {
    let mut out = Mapping::new();
    for (k, v) in m {
        // Only plain names go out bare: an empty key, or one with a dot, a space or a line break, would make the
        // `key: reason` line ambiguous or split it, so such keys are quoted.
        let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        let name = match k {
            Value::String(s) if plain(s) => s.clone(),
            other => describe(other),
        };
        let key = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        let Some(kind) = fields.iter().find(|(n, _)| *n == name).map(|(_, k)| k) else {
            w.unknown.push(key);
            continue;
        };
        if is_placeholder(v) {
            continue;
        }
        if let Some(nv) = normalize(kind, &key, v, w) {
            if kind.children().is_none() || matches!(kind, Kind::Records(..)) {
                w.present.push(key);
            }
            out.insert(Value::String(name), nv);
        }
    }
    out
}

fn expected(kind: &Kind) -> &'static str {
    match kind {
        Kind::Str | Kind::OptStr => "a string",
        Kind::UInt | Kind::OptUInt => "a non-negative integer",
        Kind::Float => "a number",
        Kind::Bool => "true or false",
        Kind::Size => "a size like 10485760 or \"10MB\"",
        _ => "a value",
    }
}

fn normalize_scalar(kind: &Kind, v: &Value) -> Option<Value> {
    match (kind, v) {
        (Kind::OptStr | Kind::OptUInt, Value::Null) => Some(Value::Null),
        (Kind::OptStr, Value::String(s)) if s.trim().is_empty() => Some(Value::Null),
        (Kind::Str | Kind::OptStr, Value::String(_)) => Some(v.clone()),
        // `video_level: 3.0` unquoted is a number in YAML but a string to us.
        (Kind::Str | Kind::OptStr, Value::Number(n)) => Some(Value::String(n.to_string())),
        (Kind::UInt | Kind::OptUInt | Kind::Size, Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Some(Value::Number(u.into()))
            } else {
                let f = n.as_f64()?;
                (f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64).then(|| Value::Number((f as u64).into()))
            }
        }
        (Kind::Size, Value::String(s)) => ByteSize::parse(s).map(|b| Value::Number(b.0.into())),
        (Kind::Float, Value::Number(_)) => Some(v.clone()),
        (Kind::Bool, Value::Bool(_)) => Some(v.clone()),
        // YAML 1.1 (the Python loader) reads yes/no/on/off as booleans.
        (Kind::Bool, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(Value::Bool(true)),
            "false" | "no" | "off" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    }
}

/// Parse an environment variable's text as `kind`.
pub fn parse_env(kind: &Kind, raw: &str) -> Result<Value, String> {
    let t = raw.trim();
    match kind {
        Kind::Str => Ok(Value::String(raw.to_string())),
        Kind::OptStr if t.is_empty() => Ok(Value::Null),
        Kind::OptStr => Ok(Value::String(raw.to_string())),
        Kind::OptUInt if t.is_empty() => Ok(Value::Null),
        Kind::UInt | Kind::OptUInt => match t.parse::<u64>() {
            Ok(u) => Ok(Value::Number(u.into())),
            Err(_) if t.parse::<i64>().is_ok() => Err(format!("expected a non-negative integer, got {t}")),
            Err(_) => Err(format!("expected a non-negative integer, got {raw:?}")),
        },
        Kind::Float => match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Number(f.into())),
            _ => Err(format!("expected a number, got {raw:?}")),
        },
        Kind::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true/false, 1/0, yes/no or on/off, got {raw:?}")),
        },
        Kind::Size => ByteSize::parse(t)
            .map(|b| Value::Number(b.0.into()))
            .ok_or_else(|| format!("expected a size like 10485760 or \"10MB\", got {raw:?}")),
        Kind::List(elem) => {
            if t.is_empty() {
                return Ok(Value::Sequence(Vec::new()));
            }
            t.split(',').map(|part| parse_env(elem, part.trim())).collect::<Result<Vec<_>, _>>().map(Value::Sequence)
        }
        _ => Err("cannot be set from the environment".into()),
    }
}

/// Deep merge: mappings key by key, anything else replaced.
pub fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(bv) => merge(bv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Mapping(out)
        }
        _ => over.clone(),
    }
}

/// The value at a dotted key (no list indexing).
pub fn get<'a>(root: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(root, |v, part| v.as_mapping()?.get(part))
}

/// Set a dotted key, creating mappings on the way. A string at `mediamtx.codec` becomes `{encoder: <string>}` so
/// `CAMERA_SERVICE_MEDIAMTX_CODEC_*` works with either file shape. Returns false when a non-mapping value is in the
/// way (the typed walk reports that value).
pub fn set(root: &mut Value, key: &str, value: Value) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = root;
    for (i, part) in parts.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Mapping(Mapping::new());
        }
        if let Value::String(s) = cur {
            if parts[..i].join(".") == "mediamtx.codec" {
                let mut m = Mapping::new();
                m.insert("encoder".into(), Value::String(s.clone()));
                *cur = Value::Mapping(m);
            }
        }
        let Value::Mapping(m) = cur else { return false };
        if i == parts.len() - 1 {
            m.insert(Value::String(part.to_string()), value);
            return true;
        }
        cur = m.entry(Value::String(part.to_string())).or_insert(Value::Null);
    }
    false
}

/// Every dotted leaf of a tree with its value (lists are leaves), for tests and documentation.
pub fn leaves(v: &Value) -> BTreeMap<String, Value> {
    fn go(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Mapping(m) if !m.is_empty() || prefix.is_empty() => {
                for (k, v) in m {
                    let name = describe(k).trim_matches('"').to_string();
                    let key = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
                    go(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    go("", v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_has_a_kind_and_env_names_are_unique() {
        let keys = env_keys();
        assert!(keys.len() > 130, "{}", keys.len());
        let mut names: Vec<String> = keys.iter().map(|(k, _)| env_name(k)).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "two keys share an environment variable");
        assert!(keys.iter().any(|(k, kind)| k == "mediamtx.codec.bitrate" && *kind == Kind::Str));
        assert!(keys.iter().any(|(k, kind)| k == "health_port" && *kind == Kind::OptUInt));
        assert!(keys.iter().any(|(k, _)| k == "mediamtx.stream_readiness.timeout"));
        assert!(!keys.iter().any(|(k, _)| k == "camera.virtual"));
        assert_eq!(env_name("mediamtx.stream_readiness.timeout"), "CAMERA_SERVICE_MEDIAMTX_STREAM_READINESS_TIMEOUT");
    }

    #[test]
    fn normalizes_shapes_and_reports_keys() {
        let (_, kind) = defaults();
        let v: Value = serde_norway::from_str(
            "server: {port: \"x\", foo: 1}\nmediamtx: {codec: h264_v4l2m2m, video_level: 3.0}\n\
             logging: {max_file_size: 10MB, file_enabled: yes}\nbar: 1\n\
             security: {jwt: {secret_key: \"${CAMERA_SERVICE_JWT_SECRET}\"}}\n",
        )
        .unwrap();
        let mut w = Walk::default();
        let out = normalize(kind, "", &v, &mut w).unwrap();
        assert_eq!(w.errors, vec![("server.port".to_string(), "expected a non-negative integer, got \"x\"".into())]);
        assert_eq!(w.unknown, vec!["server.foo".to_string(), "bar".into()]);
        assert_eq!(get(&out, "mediamtx.codec.encoder").unwrap().as_str(), Some("h264_v4l2m2m"));
        assert_eq!(get(&out, "mediamtx.video_level").unwrap().as_str(), Some("3.0"));
        assert_eq!(get(&out, "logging.max_file_size").unwrap().as_u64(), Some(10 << 20));
        assert_eq!(get(&out, "logging.file_enabled").unwrap().as_bool(), Some(true));
        assert!(get(&out, "security.jwt.secret_key").is_none());
        assert!(w.present.contains(&"mediamtx.codec.encoder".to_string()));
        assert!(!w.present.iter().any(|k| k.starts_with("security")));
    }

    #[test]
    fn env_values() {
        assert_eq!(parse_env(&Kind::Bool, "On").unwrap(), Value::Bool(true));
        assert!(parse_env(&Kind::Bool, "maybe").is_err());
        assert_eq!(parse_env(&Kind::UInt, "-3").unwrap_err(), "expected a non-negative integer, got -3");
        let l = parse_env(&Kind::List(Box::new(Kind::UInt)), "0, 2,4").unwrap();
        assert_eq!(l, serde_norway::from_str::<Value>("[0, 2, 4]").unwrap());
        assert_eq!(parse_env(&Kind::OptStr, "").unwrap(), Value::Null);
    }

    #[test]
    fn set_creates_and_converts_codec_string() {
        let mut v: Value = serde_norway::from_str("mediamtx: {codec: libx265}").unwrap();
        assert!(set(&mut v, "mediamtx.codec.bitrate", Value::String("1M".into())));
        assert_eq!(get(&v, "mediamtx.codec.encoder").unwrap().as_str(), Some("libx265"));
        assert!(set(&mut v, "server.port", Value::Number(1u64.into())));
        let mut bad: Value = serde_norway::from_str("server: 5").unwrap();
        assert!(!set(&mut bad, "server.port", Value::Null));
    }
}
