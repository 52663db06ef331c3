//! Start-up failures say why (one stderr line naming the path or address and the OS error, exit 1), and the systemd
//! notifications of a healthy start: READY=1, then watchdog pings while every watched loop keeps turning.

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, free_port, stop_child, TempDir, JWT_SECRET};

/// A complete config for a daemon in `dir`, with `extra` YAML appended (later keys win).
fn config(dir: &Path, port: u16, health_port: u16, state: &Path, recordings: &Path) -> String {
    format!(
        "server:\n  host: 127.0.0.1\n  port: {port}\nhealth_port: {health_port}\nstate_dir: {}\n\
         mediamtx:\n  enabled: false\n  recordings_path: {}\n  snapshots_path: {}\n\
         camera:\n  device_dir: {d}/dev\n  sysfs_dir: {d}/sys\n\
         security:\n  health:\n    bind_address: 127.0.0.1\n\
         logging:\n  level: INFO\n  file_enabled: false\n",
        state.display(),
        recordings.display(),
        dir.join("snapshots").display(),
        d = dir.display(),
    )
}

/// The daemon on `yaml` (written to `dir/config.yaml`), with the test secret and a key file in `dir`.
fn daemon_command(dir: &Path, yaml: &str) -> Command {
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(&path)
        .env("CAMERA_SERVICE_JWT_SECRET", JWT_SECRET)
        .env("CAMERA_SERVICE_API_KEYS_PATH", dir.join("keys.json"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Run the daemon to its exit (bounded); returns (exit code, stderr).
fn run_to_exit(dir: &Path, yaml: &str) -> (Option<i32>, String) {
    let mut child = daemon_command(dir, yaml).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            stop_child(&mut child, Duration::from_secs(5));
            panic!("the daemon did not exit on a start-up failure");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

/// The one stderr line that says why start-up failed.
fn failure_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("start-up failed")).collect();
    assert_eq!(lines.len(), 1, "exactly one failure line expected in:\n{stderr}");
    lines[0]
}

#[test]
fn unusable_data_directories_name_the_path_and_the_os_error() {
    let t = TempDir::new("startup-dirs");
    let blocker = t.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let (port, health) = (free_port(), free_port());
    let good = t.path().join("recordings");
    let cases = [
        ("state_dir", config(t.path(), port, health, &blocker.join("state"), &good)),
        ("mediamtx.recordings_path", config(t.path(), port, health, &t.path().join("state"), &blocker.join("rec"))),
    ];
    for (key, yaml) in cases {
        let (code, stderr) = run_to_exit(t.path(), &yaml);
        assert_eq!(code, Some(1), "{key}: {stderr}");
        let line = failure_line(&stderr);
        assert!(line.contains(key) && line.contains(&*blocker.to_string_lossy()), "{key}: {line}");
        assert!(line.contains("Not a directory") || line.contains("os error"), "{key}: {line}");
    }
}

#[test]
fn busy_ports_name_the_address() {
    let t = TempDir::new("startup-ports");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let state = t.path().join("state");
    let rec = t.path().join("recordings");
    for (what, yaml) in [
        ("websocket", config(t.path(), busy, free_port(), &state, &rec)),
        ("health", config(t.path(), free_port(), busy, &state, &rec)),
    ] {
        let (code, stderr) = run_to_exit(t.path(), &yaml);
        assert_eq!(code, Some(1), "{what}: {stderr}");
        let line = failure_line(&stderr);
        assert!(line.contains(&format!("127.0.0.1:{busy}")), "{what}: {line}");
        assert!(line.contains("Address already in use"), "{what}: {line}");
    }
    drop(taken);
}

#[test]
fn a_start_up_failure_reaches_stderr_whatever_the_logging_settings() {
    let t = TempDir::new("startup-quiet");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let base = config(t.path(), busy, free_port(), &t.path().join("state"), &t.path().join("rec"));
    // Console logging off: the line is written to stderr directly. Only errors logged (ERROR, or CRITICAL, which
    // `log` has no level of its own for): the line goes through the log. Either way exactly once.
    for (what, yaml) in [
        ("console off", format!("{base}  console_enabled: false\n")),
        ("ERROR", base.replace("level: INFO", "level: ERROR")),
        ("CRITICAL", base.replace("level: INFO", "level: CRITICAL")),
    ] {
        let (code, stderr) = run_to_exit(t.path(), &yaml);
        assert_eq!(code, Some(1), "{what}: {stderr}");
        let line = failure_line(&stderr);
        assert!(
            line.contains(&format!("127.0.0.1:{busy}")) && line.contains("Address already in use"),
            "{what}: {line}"
        );
        if what != "console off" {
            assert!(!stderr.contains(" INFO "), "{what}: INFO lines logged: {stderr}");
        }
    }
    drop(taken);
}

#[test]
fn ready_then_watchdog_pings_under_systemd() {
    let t = TempDir::new("startup-notify");
    let socket_path = t.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let stderr_path = t.path().join("stderr.log");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    // A port picked free may be taken before the daemon binds it: it then exits naming the address, and the test
    // starts it again on other ports.
    let mut attempt = 0;
    let mut child = loop {
        attempt += 1;
        let yaml = config(t.path(), free_port(), free_port(), &t.path().join("state"), &t.path().join("rec"));
        let mut child = daemon_command(t.path(), &yaml)
            .env("NOTIFY_SOCKET", &socket_path)
            // One ping per half period: 400 ms.
            .env("WATCHDOG_USEC", "800000")
            .env_remove("WATCHDOG_PID")
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let first = loop {
            if let Ok(n) = socket.recv(&mut buf) {
                break Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break None;
            }
        };
        match first {
            Some(m) => {
                got.push(m);
                break child;
            }
            None => {
                stop_child(&mut child, Duration::from_secs(5));
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                assert!(attempt < 5 && log.contains("Address already in use"), "no READY notification: {log}");
            }
        }
    };
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    while got.iter().filter(|m: &&String| m.as_str() == "WATCHDOG=1").count() < 3 {
        match socket.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) => {
                stop_child(&mut child, Duration::from_secs(5));
                panic!("no notification ({e}); got {got:?}");
            }
        }
    }
    assert!(stop_child(&mut child, Duration::from_secs(10)), "the daemon did not stop on SIGTERM");
    assert!(got[0].starts_with("READY=1"), "{got:?}");
}
