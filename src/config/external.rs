//! Configuration of external RTSP sources ("IP cameras"): `camera.external` (the configured streams, plus how often
//! and how patiently they are checked) and `external_discovery` (scanning the network for RTSP streams).

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use super::validate::Checker;
use crate::camera::external::source::{name_problem, SourceUrl, Transport};
use crate::camera::external::targets;

/// Most external streams, configured and added at run time together.
pub const MAX_EXTERNAL_STREAMS: usize = 64;
/// Most ports and candidate paths a discovery scan tries per host.
pub const MAX_DISCOVERY_PORTS: usize = 16;
pub const MAX_DISCOVERY_PATHS: usize = 32;

/// One `camera.external` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalCameraConfig {
    /// The stream name: camera id (`device`) and MediaMTX path name.
    pub name: String,
    /// `rtsp://[user:password@]host[:port]/path`.
    pub url: String,
    /// `tcp` or `udp`; unset = automatic.
    pub transport: Option<String>,
}

/// `external_discovery`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExternalDiscoveryConfig {
    pub enabled: bool,
    /// Addresses or CIDR ranges (at most 1024 addresses in all).
    pub hosts: Vec<String>,
    pub ports: Vec<u16>,
    /// Candidate stream paths tried on every host and port (`""` = the root).
    pub paths: Vec<String>,
    /// Seconds one probe (connect plus one request) may take.
    pub timeout: f64,
    /// Connections open at once during a scan.
    pub concurrency: u32,
    /// Seconds between periodic scans; 0 = only on demand. A value set at run time (persisted) wins.
    pub scan_interval: u64,
}

impl Default for ExternalDiscoveryConfig {
    fn default() -> Self {
        ExternalDiscoveryConfig {
            enabled: false,
            hosts: Vec::new(),
            ports: vec![554, 8554, 5554],
            paths: ["", "stream", "stream1", "live", "h264", "Streaming/Channels/101", "cam/realmonitor"]
                .map(String::from)
                .into(),
            timeout: 1.0,
            concurrency: 32,
            scan_interval: 0,
        }
    }
}

/// The rules for both sections (called by the configuration validator).
pub fn validate(c: &mut Checker) {
    c.range_f64("camera.external_probe_interval", 1.0, 3600.0);
    c.range_f64("camera.external_probe_timeout", 0.1, 60.0);
    streams(c);
    discovery(c);
}

fn streams(c: &mut Checker) {
    let Some(Value::Sequence(items)) = c.value("camera.external") else { return };
    if items.len() > MAX_EXTERNAL_STREAMS {
        c.fail("camera.external", format!("at most {MAX_EXTERNAL_STREAMS} streams, got {}", items.len()));
        return;
    }
    let mut seen: Vec<(String, Option<SourceUrl>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("camera.external[{i}]");
        let name = item.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(why) = name_problem(name) {
            c.fail(&format!("{p}.name"), why);
        } else if let Some(j) = seen.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
            c.fail(&format!("{p}.name"), format!("{name:?} is already used by camera.external[{j}]"));
        }
        let url = match SourceUrl::parse(item.get("url").and_then(Value::as_str).unwrap_or("")) {
            Ok(u) => Some(u),
            Err(why) => {
                c.fail(&format!("{p}.url"), why);
                None
            }
        };
        if let Some(u) = &url {
            if let Some(j) = seen.iter().position(|(_, o)| o.as_ref().is_some_and(|o| o.same_source(u))) {
                c.fail(&format!("{p}.url"), format!("the same source as camera.external[{j}]"));
            }
        }
        if let Err(why) = Transport::parse(item.get("transport").and_then(Value::as_str)) {
            c.fail(&format!("{p}.transport"), why);
        }
        seen.push((name.to_string(), url));
    }
}

fn discovery(c: &mut Checker) {
    let key = |k: &str| format!("external_discovery.{k}");
    c.range_f64(&key("timeout"), 0.05, 30.0);
    c.range(&key("concurrency"), 1, 256);
    c.range(&key("scan_interval"), 0, 7 * 86_400);
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_sequence)
            .map(|s| s.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_default()
    };
    let hosts = strings(c.value(&key("hosts")));
    // Entries are named by position, the key itself stays plain so an environment variable is named too.
    if let Err((i, why)) = targets::expand(&hosts) {
        c.fail(&key("hosts"), format!("entry {i}: {why}"));
    }
    if let Some(ports) = c.value(&key("ports")).and_then(Value::as_sequence) {
        if ports.len() > MAX_DISCOVERY_PORTS {
            c.fail(&key("ports"), format!("at most {MAX_DISCOVERY_PORTS} ports, got {}", ports.len()));
        }
        if let Some(i) = ports.iter().position(|p| !p.as_u64().is_some_and(|p| (1..=65535).contains(&p))) {
            c.fail(&key("ports"), format!("entry {i}: expected 1..65535"));
        }
    }
    let paths = strings(c.value(&key("paths")));
    if paths.len() > MAX_DISCOVERY_PATHS {
        c.fail(&key("paths"), format!("at most {MAX_DISCOVERY_PATHS} paths, got {}", paths.len()));
    }
    if let Some((i, why)) = paths.iter().enumerate().find_map(|(i, p)| path_problem(p).map(|w| (i, w))) {
        c.fail(&key("paths"), format!("entry {i}: {why}"));
    }
    if c.value(&key("enabled")).and_then(Value::as_bool) == Some(true) {
        let empty = |v: Option<&Value>| v.and_then(Value::as_sequence).is_some_and(|s| s.is_empty());
        for k in ["hosts", "ports"] {
            if empty(c.value(&key(k))) {
                c.fail(&key(k), "must not be empty while external_discovery.enabled is true");
            }
        }
    }
}

/// A candidate stream path: printable ASCII without spaces or `#`, not a whole URL.
pub fn path_problem(p: &str) -> Option<String> {
    if p.len() > 256 {
        return Some("must be at most 256 characters".into());
    }
    if p.chars().any(|c| !c.is_ascii_graphic() || c == '#') {
        return Some(format!("{p:?} may contain only printable ASCII without spaces or '#'"));
    }
    if p.contains("://") {
        return Some(format!("{p:?} is a URL; give only the path, e.g. \"stream1\""));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::load::{load_with, LoadOptions};

    /// The error lines for `yaml` with `env`, or the loaded configuration.
    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<super::super::Config, Vec<String>> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("cs-ext-config-{}-{n}.yaml", std::process::id()));
        std::fs::write(&path, yaml).unwrap();
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let r = load_with(&LoadOptions { path: Some(path.clone()), strict: true }, &env, &[]);
        let _ = std::fs::remove_file(&path);
        r.map(|l| l.config).map_err(|e| e.0.lines().map(String::from).collect())
    }

    #[test]
    fn external_streams_load_and_are_checked() {
        let c = load(
            "camera:\n  external:\n    - {name: door, url: \"rtsp://u:p@10.0.0.5/s\", transport: tcp}\n\
             \x20   - {name: yard, url: \"rtsp://10.0.0.6:8554/live\"}\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.camera.external.len(), 2);
        assert_eq!(
            (c.camera.external[0].transport.as_deref(), c.camera.external[1].transport.as_deref()),
            (Some("tcp"), None)
        );
        let e = load(
            "camera:\n  external:\n    - {name: camera0, url: \"rtsp://a/x\"}\n\
             \x20   - {name: ok, url: \"http://a:secret@b/x\", transport: quic}\n\
             \x20   - {name: OK, url: \"rtsp://a/x\"}\n    - {name: x, url: \"rtsp://b/x\", colour: red}\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(e.len(), 6, "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("camera.external[0].name: \"camera0\" is reserved")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("camera.external[1].url: only rtsp://")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("camera.external[1].transport: ")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("camera.external[2].name: \"OK\" is already used")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("camera.external[2].url: the same source as camera.external[0]")));
        assert!(e.iter().any(|l| l.starts_with("camera.external[3].colour: unknown")), "{e:?}");
        assert!(!e.iter().any(|l| l.contains("secret")), "no error line echoes a password");
    }

    #[test]
    fn discovery_keys_from_file_and_environment() {
        let c = load("external_discovery: {enabled: true, hosts: [192.168.1.0/24], concurrency: 8}", &[]).unwrap();
        let d = &c.external_discovery;
        assert_eq!((d.enabled, d.hosts.len(), d.ports.as_slice(), d.concurrency), (true, 1, &[554, 8554, 5554][..], 8));
        let env = [
            ("CAMERA_SERVICE_EXTERNAL_DISCOVERY_ENABLED", "yes"),
            ("CAMERA_SERVICE_EXTERNAL_DISCOVERY_HOSTS", "127.0.0.1,10.1.0.0/30"),
            ("CAMERA_SERVICE_EXTERNAL_DISCOVERY_PORTS", "8554"),
            ("CAMERA_SERVICE_EXTERNAL_DISCOVERY_PATHS", "live,"),
            ("CAMERA_SERVICE_EXTERNAL_DISCOVERY_SCAN_INTERVAL", "600"),
        ];
        let d = load("", &env).unwrap().external_discovery;
        assert_eq!(
            (d.hosts.len(), d.ports, d.paths, d.scan_interval),
            (2, vec![8554], vec!["live".into(), "".into()], 600)
        );
        let e = load("", &[("CAMERA_SERVICE_EXTERNAL_DISCOVERY_HOSTS", "10.0.0.0/8")]).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("CAMERA_SERVICE_EXTERNAL_DISCOVERY_HOSTS (external_discovery.hosts): entry 0: "),
            "{e:?}"
        );
        let e = load("external_discovery: {enabled: true, ports: [0], paths: [\"rtsp://x/y\"], timeout: 0}", &[]);
        let e = e.unwrap_err();
        let keys: Vec<&str> = e.iter().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "external_discovery.timeout",
                "external_discovery.ports",
                "external_discovery.paths",
                "external_discovery.hosts"
            ],
            "{e:?}"
        );
    }
}
