//! The configuration loader on generated files and environments: never a panic; every error line names the key
//! (or the environment variable, or the file for YAML that does not parse); a loaded configuration renders for
//! `--check-config` without the secret in it.

use std::collections::BTreeMap;

use camera_service::config::load::{load_with, LoadOptions};
use camera_service::config::schema::{env_keys, env_name};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_norway::{Mapping, Value};

use super::{cases, runner};
use crate::support::TempDir;

const SECRET: &str = "fuzz-secret-that-must-never-print-7f3a";

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..100_000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("10MB".to_string()),
            Just("${CAMERA_SERVICE_JWT_SECRET}".to_string()),
            Just("yes".to_string()),
            Just("HS256".to_string()),
            Just("rtsp://user:pw@cam/x".to_string()),
            "[a-zA-Z0-9 ._-]{0,12}",
            any::<String>(),
        ]
        .prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Mapping(m.into_iter().map(|(k, v)| (Value::String(k), v)).collect())),
        ]
    })
}

/// A dotted key: a real one (scalar or section) most of the time, sometimes an unknown one.
fn key() -> impl Strategy<Value = String> {
    let known: Vec<String> = env_keys().iter().map(|(k, _)| k.clone()).collect();
    let sections: Vec<String> = known.iter().filter_map(|k| k.split_once('.').map(|(s, _)| s.to_string())).collect();
    prop_oneof![
        6 => proptest::sample::select(known),
        1 => proptest::sample::select(sections),
        1 => Just("camera.virtual".to_string()),
        1 => "[a-z_]{1,8}(\\.[a-z_]{1,8}){0,2}",
    ]
}

fn set(root: &mut Value, key: &str, v: Value) {
    let mut cur = root;
    for part in key.split('.') {
        if !cur.is_mapping() {
            *cur = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(m) = cur else { unreachable!() };
        cur = m.entry(Value::String(part.to_string())).or_insert(Value::Null);
    }
    *cur = v;
}

fn yaml_file() -> impl Strategy<Value = String> {
    let tree = vec((key(), value()), 0..12)
        .prop_map(|pairs| {
            let mut root = Value::Mapping(Mapping::new());
            pairs.into_iter().for_each(|(k, v)| set(&mut root, &k, v));
            serde_norway::to_string(&root).unwrap()
        })
        .boxed();
    prop_oneof![
        4 => tree.clone(),
        1 => (tree, any::<prop::sample::Index>()).prop_map(|(text, cut)| {
            let at = cut.index(text.len() + 1);
            text.char_indices().map(|(i, _)| i).chain([text.len()]).find(|&i| i >= at).map_or(text.clone(), |i| text[..i].to_string())
        }),
        1 => any::<String>(),
        1 => Just("server: [1, 2\n".to_string()),
    ]
}

fn environment() -> impl Strategy<Value = BTreeMap<String, String>> {
    let mut names: Vec<String> = env_keys().iter().map(|(k, _)| env_name(k)).collect();
    names.extend(
        ["CAMERA_SERVICE_JWT_SECRET", "CAMERA_SERVICE_API_KEYS_PATH", "CAMERA_SERVICE_RATE_RPM", "LOG_FORMAT"]
            .map(String::from),
    );
    let text = prop_oneof![Just(String::new()), "-?[0-9]{1,25}", "[a-z, .]{0,10}", any::<String>()];
    btree_map(proptest::sample::select(names), text, 0..5)
}

/// True when an error line starts with what it is about: `key: ...`, `VAR (key): ...` or `<file>: ...`. A key is
/// a dotted path under a real section, or an unknown key the input itself contains.
fn names_its_subject(line: &str, file: &str, input: &str) -> bool {
    if line.starts_with(file) || line.starts_with("CAMERA_SERVICE_") || line.starts_with("LOG_FORMAT") {
        return line.contains(": ");
    }
    let Some((subject, reason)) = line.split_once(": ") else { return false };
    let first = subject.split(['.', '[']).next().unwrap_or("");
    let sections = env_keys().iter().map(|(k, _)| k.split('.').next().unwrap_or("")).any(|s| s == first);
    // Keys that are not plain names: quoted strings, or other YAML scalars and collections described.
    let scalar = ["null", "true", "false"].contains(&first) || first.parse::<f64>().is_ok();
    let described = first.starts_with('"') || scalar || first.starts_with("a ");
    !first.is_empty() && (sections || described || input.contains(first)) && !reason.trim().is_empty()
}

#[test]
fn loader_never_panics_and_errors_name_the_key() {
    let dir = TempDir::new("fuzz-config");
    let path = dir.path().join("config.yaml");
    let file = path.display().to_string();
    runner(cases())
        .run(&(yaml_file(), environment(), any::<bool>(), any::<bool>()), |(text, mut env, strict, secret)| {
            if secret {
                env.insert("CAMERA_SERVICE_JWT_SECRET".into(), SECRET.into());
            }
            std::fs::write(&path, &text).unwrap();
            match load_with(&LoadOptions { path: Some(path.clone()), strict }, &env, &[]) {
                Ok(loaded) => {
                    let dump = loaded.config.to_redacted_yaml().unwrap();
                    prop_assert!(!dump.contains(SECRET));
                    let debug = format!("{:?}", loaded.config);
                    prop_assert!(!debug.contains(SECRET));
                }
                Err(e) => {
                    prop_assert!(!e.0.trim().is_empty());
                    for line in e.0.lines() {
                        prop_assert!(names_its_subject(line, &file, &text), "{line:?} names no key (input {text:?})");
                        prop_assert!(!line.contains(SECRET), "{line:?}");
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}
