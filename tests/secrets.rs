//! Secrets stay secret: `--check-config` and the daemon's log never show the JWT secret, a token or an API key.

use std::process::Command;

use serde_json::json;

use crate::support::{bin, token_with, Daemon, TempDir, JWT_SECRET};

fn check_config(yaml: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = TempDir::new("secrets");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(bin())
        .args(["--check-config", "--config"])
        .arg(&path)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn check_config_never_prints_the_secret() {
    let file_secret = "file-secret-4b1d9a0e7c2f";
    let env_secret = "env-secret-83c5e2f10a9d";
    let yaml = format!("security: {{jwt: {{secret_key: {file_secret}}}}}\n");
    for env in [vec![], vec![("CAMERA_SERVICE_JWT_SECRET", env_secret)]] {
        let (code, stdout, stderr) = check_config(&yaml, &env);
        assert_eq!(code, Some(0), "{stderr}");
        for s in [file_secret, env_secret] {
            assert!(!stdout.contains(s) && !stderr.contains(s), "secret printed:\n{stdout}\n{stderr}");
        }
        let v: serde_norway::Value = serde_norway::from_str(&stdout).unwrap();
        assert_eq!(v["security"]["jwt"]["secret_key"], serde_norway::Value::from("<redacted>"));
    }
    // Fed back as a configuration, the placeholder is refused by name instead of becoming the secret.
    let (code, _, stderr) = check_config("security: {jwt: {secret_key: <redacted>}}\n", &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("security.jwt.secret_key: "), "{stderr}");
}

#[test]
fn the_environment_secret_signs_tokens_though_it_is_never_shown() {
    let dir = TempDir::new("secrets-token");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        format!("state_dir: {}\nsecurity: {{jwt: {{secret_key: from-file}}}}\n", dir.path().display()),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["token", "--role", "viewer", "--config"])
        .arg(&path)
        .env_clear()
        .env("CAMERA_SERVICE_JWT_SECRET", "from-env-secret-0123456789")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jwt = String::from_utf8(out.stdout).unwrap();
    let key = jsonwebtoken::DecodingKey::from_secret(b"from-env-secret-0123456789");
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::decode::<serde_json::Value>(jwt.trim(), &key, &validation).expect("signed with the env secret");
}

#[test]
fn daemon_logs_never_contain_credentials() {
    let d = Daemon::start();
    let key = d.create_api_key("operator");
    let mut c = d.client();
    let jwt = crate::support::token("admin", 600);
    assert_eq!(c.call("authenticate", json!({"auth_token": jwt}))["result"]["authenticated"], true);
    assert_eq!(
        c.call("authenticate", json!({"auth_token": key, "auth_type": "api_key"}))["result"]["authenticated"],
        true
    );
    let forged = token_with("wrong-secret-wrong-secret-wrong", "admin", 600);
    assert_eq!(c.call("authenticate", json!({"auth_token": forged}))["result"]["authenticated"], false);
    c.call("list_recordings", json!({"auth_token": jwt}));
    let (status, _, _) = crate::support::http_get(d.port, "/files/recordings/none.mp4", &[("X-API-Key", &key)]);
    assert_eq!(status, 404);
    let log = crate::outside_input::log_once(&d, |log| log.contains("authenticated"));
    assert!(log.contains("authenticated"), "the log is at DEBUG and saw the logins: {log}");
    for secret in [JWT_SECRET, key.as_str(), jwt.as_str(), forged.as_str()] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
