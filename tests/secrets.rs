//! Secrets stay secret: `--check-config` and the daemon's log never show the JWT secret, a token or an API key.

use std::process::Command;

use serde_json::json;

use crate::support::{bin, token_with, Daemon, TempDir, JWT_SECRET};

fn check_config(yaml: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = TempDir::new("secrets");
    cli(dir.path(), &["--check-config"], yaml, env)
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
        .envs(crate::support::profile_env())
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

/// `camera-service <args> --config <dir>/config.yaml` (written from `yaml`) with nothing inherited but `env`:
/// (exit code, stdout, stderr).
fn cli(dir: &std::path::Path, args: &[&str], yaml: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(&path)
        .env_clear()
        .envs(crate::support::profile_env())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A configuration keeping everything the daemon writes under `dir` (state in `state`).
fn contained(dir: &std::path::Path, state: &std::path::Path) -> String {
    format!(
        "state_dir: {}\nmediamtx: {{enabled: false, recordings_path: {d}/rec, snapshots_path: {d}/snap}}\n\
         logging: {{file_enabled: false}}\n",
        state.display(),
        d = dir.display()
    )
}

/// The claims of `jwt` when it is signed with `secret`.
fn signed_with(jwt: &str, secret: &str) -> Option<serde_json::Value> {
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::decode::<serde_json::Value>(jwt.trim(), &key, &validation).ok().map(|t| t.claims)
}

#[test]
fn without_a_configured_secret_one_is_generated_in_the_state_dir_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("secrets-state");
    let state = dir.path().join("state");
    let yaml = contained(dir.path(), &state);
    let token = ["token", "--role", "viewer"];

    // Nothing configured: 32 random bytes, hex, in <state_dir>/jwt_secret, readable by the owner only.
    let (code, jwt, stderr) = cli(dir.path(), &token, &yaml, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let file = state.join("jwt_secret");
    let secret = std::fs::read_to_string(&file).unwrap();
    assert!(secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "{secret:?}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(signed_with(&jwt, &secret).expect("signed with the generated secret")["role"], "viewer");

    // The next start reuses it: tokens stay valid across restarts.
    let (code, jwt, _) = cli(dir.path(), &token, &yaml, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret, "the secret was replaced");
    assert!(signed_with(&jwt, &secret).is_some());

    // One the operator wrote there (with a trailing newline), and the running daemon uses the same.
    std::fs::write(&file, "operator-chosen-secret-0123456789\n").unwrap();
    let (code, jwt, _) = cli(dir.path(), &token, &yaml, &[]);
    assert_eq!(code, Some(0));
    assert!(signed_with(&jwt, "operator-chosen-secret-0123456789").is_some());
    let d = Daemon::builder()
        .without_env("CAMERA_SERVICE_JWT_SECRET")
        .before_start(|d| std::fs::write(d.join("state/jwt_secret"), "operator-chosen-secret-0123456789\n").unwrap())
        .start();
    let mut c = d.client();
    let ok = token_with("operator-chosen-secret-0123456789", "viewer", 60);
    assert_eq!(c.call("authenticate", json!({"auth_token": ok}))["result"]["authenticated"], true);
    let other = token_with(JWT_SECRET, "viewer", 60);
    assert_eq!(d.client().call("authenticate", json!({"auth_token": other}))["result"]["authenticated"], false);

    // A configured secret wins over the file.
    let env = [("CAMERA_SERVICE_JWT_SECRET", "env-secret-0123456789abcdef")];
    let (code, jwt, _) = cli(dir.path(), &token, &yaml, &env);
    assert_eq!(code, Some(0));
    assert!(signed_with(&jwt, "env-secret-0123456789abcdef").is_some());
}

#[test]
fn an_unusable_jwt_secret_stops_with_the_reason() {
    let dir = TempDir::new("secrets-bad");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let yaml = contained(dir.path(), &state);
    let file = state.join("jwt_secret");

    // An empty secret file is a mistake, not a reason to generate a new secret.
    std::fs::write(&file, "\n").unwrap();
    let (code, _, stderr) = cli(dir.path(), &["token", "--role", "viewer"], &yaml, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim(), format!("{}: JWT secret file is empty", file.display()));
    // The daemon refuses to start on it the same way.
    let (code, _, stderr) = cli(dir.path(), &[], &yaml, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{}: JWT secret file is empty", file.display())), "{stderr}");

    // Unreadable: the OS error is named.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let (code, _, stderr) = cli(dir.path(), &["api-key", "create", "--role", "viewer"], &yaml, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with(&format!("{}: cannot read JWT secret: ", file.display())), "{stderr}");

    // A state_dir that cannot exist (under a regular file): the path is named.
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let yaml = contained(dir.path(), &blocker.join("state"));
    let (code, _, stderr) = cli(dir.path(), &["token", "--role", "viewer"], &yaml, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&*blocker.to_string_lossy()), "{stderr}");
}

#[test]
fn the_command_line_explains_itself_and_refuses_what_it_does_not_know() {
    let run = |args: &[&str]| {
        let out = Command::new(bin()).args(args).env_clear().envs(crate::support::profile_env()).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&["--help"]);
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    assert!(stdout.starts_with("usage: camera-service [--config PATH]"), "{stdout}");
    assert!(stdout.contains("camera-service api-key create --role"), "{stdout}");
    for (args, why) in [
        (&["--frobnicate"][..], "unknown option --frobnicate"),
        (&["token"], "--role is required"),
        (&["token", "--role", "root"], "--role: expected viewer, operator or admin, got \"root\""),
        (&["token", "--role", "viewer", "--ttl", "0"], "--ttl: expected seconds > 0, got \"0\""),
        (&["api-key", "delete"], "unexpected arguments: api-key delete"),
        (&["--config"], "--config needs a value"),
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.starts_with(&format!("camera-service: {why}\nusage: ")), "{args:?}: {stderr}");
    }
    // A configuration that does not load: the same exit code for every command, with the loader's reason.
    let dir = TempDir::new("cli-bad-config");
    for args in
        [&["token", "--role", "viewer"][..], &["api-key", "create", "--role", "viewer"], &["--check-config"], &[]]
    {
        let (code, _, stderr) = cli(dir.path(), args, "server: {port: 0}\n", &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("server.port: "), "{args:?}: {stderr}");
    }
    // A log file that cannot be opened stops the daemon before it starts anything.
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let log_path = dir.path().join("a-file/camera-service.log");
    let yaml = contained(dir.path(), &dir.path().join("state")).replace(
        "logging: {file_enabled: false}",
        &format!("logging: {{file_enabled: true, file_path: {}}}", log_path.display()),
    );
    let (code, _, stderr) =
        cli(dir.path(), &[], &yaml, &[("CAMERA_SERVICE_JWT_SECRET", "cli-secret-0123456789abcdef")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("logging: logging.file_path: cannot open {}: ", log_path.display())),
        "{stderr}"
    );
    // The key file cannot be written: the key is not shown, and the path is named.
    let state = dir.path().join("state");
    let yaml = format!(
        "{}security: {{api_keys: {{storage_file: {}/nowhere/keys.json}}}}\n",
        contained(dir.path(), &state),
        dir.path().join("a-file").display()
    );
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let env = [("CAMERA_SERVICE_JWT_SECRET", "cli-secret-0123456789abcdef")];
    let (code, stdout, stderr) = cli(dir.path(), &["api-key", "create", "--role", "viewer"], &yaml, &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.starts_with("cannot store the API key in "), "{stderr}");
    // And a working one, for contrast: the key on stdout, where it is kept on stderr.
    let keys = dir.path().join("keys.json");
    let yaml =
        format!("{}security: {{api_keys: {{storage_file: {}}}}}\n", contained(dir.path(), &state), keys.display());
    let (code, stdout, stderr) = cli(dir.path(), &["api-key", "create", "--role", "viewer"], &yaml, &env);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.trim().is_empty() && stderr.contains(&*keys.to_string_lossy()), "{stdout} / {stderr}");
}
