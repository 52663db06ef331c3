//! The console's HTTP side against the real daemon: the page and its files on the WebSocket port only, caching and
//! security headers, `server.web_ui`, and the signed file URLs issued by `get_download_url`.

use std::time::{SystemTime, UNIX_EPOCH};

use camera_service::auth::signed_url::UrlSigner;
use serde_json::json;

use crate::support::{http_get, Daemon, JWT_SECRET};

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Every `{{ASSETS}}/...` reference of the page.
fn asset_paths(html: &str) -> Vec<String> {
    html.split(['"', '\'']).filter(|s| s.starts_with("/console/")).map(str::to_string).collect()
}

#[test]
fn the_console_is_served_on_the_websocket_port_with_strict_headers() {
    let d = Daemon::start();
    let (status, h, body) = http_get(d.port, "/", &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(header(&h, "cache-control"), Some("no-cache"));
    let csp = header(&h, "content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("style-src 'self'")
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(csp.contains(&format!("ws://127.0.0.1:{}", d.port)), "{csp}");
    assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"));
    let html = String::from_utf8(body).unwrap();
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style");
    let etag = header(&h, "etag").unwrap().to_string();
    assert_eq!(http_get(d.port, "/", &[("If-None-Match", &etag)]).0, 304);

    let assets = asset_paths(&html);
    assert!(assets.iter().any(|a| a.ends_with("/js/main.js")) && assets.iter().any(|a| a.ends_with("/app.css")));
    for a in &assets {
        let (status, h, body) = http_get(d.port, a, &[]);
        assert_eq!(status, 200, "{a}");
        assert!(!body.is_empty());
        assert_eq!(header(&h, "cache-control"), Some("public, max-age=31536000, immutable"), "{a}");
        assert!(header(&h, "content-security-policy").is_some());
    }
    let js = assets.iter().find(|a| a.ends_with("/js/main.js")).unwrap();
    assert_eq!(header(&http_get(d.port, js, &[]).1, "content-type"), Some("text/javascript; charset=utf-8"));
    // Every module the page imports is served (relative imports resolve under the same versioned directory).
    let dir = js.trim_end_matches("main.js");
    let main = String::from_utf8(http_get(d.port, js, &[]).2).unwrap();
    for import in main.split('\'').filter(|s| s.starts_with("./") && s.ends_with(".js")) {
        assert_eq!(http_get(d.port, &format!("{dir}{}", &import[2..]), &[]).0, 200, "{import}");
    }

    // The health port is for probes: no console there, and unknown paths stay 404 on both.
    assert_eq!(http_get(d.health_port, "/", &[]).0, 404);
    assert_eq!(http_get(d.health_port, js, &[]).0, 404);
    assert_eq!(http_get(d.port, "/console/nope", &[]).0, 404);
    assert_eq!(http_get(d.port, "/other", &[]).0, 404);
}

#[test]
fn web_ui_false_turns_the_console_off() {
    let d = Daemon::builder().env("CAMERA_SERVICE_SERVER_WEB_UI", "false").start();
    assert_eq!(http_get(d.port, "/", &[]).0, 404);
    let mut c = d.client_as("viewer");
    assert_eq!(c.ok("ping", serde_json::Value::Null), "pong");
}

#[test]
fn signed_urls_open_one_file_for_a_few_minutes() {
    let d = Daemon::start();
    let body: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.path("snapshots/a.jpg"), &body).unwrap();
    std::fs::write(d.path("snapshots/b.jpg"), b"other file").unwrap();
    let mut c = d.client_as("viewer");
    let r = c.ok("get_download_url", json!({"file_type": "snapshot", "filename": "a.jpg"}));
    assert_eq!(r["download_url"], "/files/snapshots/a.jpg");
    let signed = r["signed_url"].as_str().unwrap().to_string();
    let expires = camera_service::util::timefmt::parse_rfc3339(r["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires > now() && expires <= now() + 600 + 5, "minutes, not hours: {r}");
    assert!(!signed.contains("eyJ"), "the JWT never goes into a URL: {signed}");

    // Opens the file, with Range, on both ports; without it the path needs credentials.
    for port in [d.port, d.health_port] {
        let (status, _, got) = http_get(port, &signed, &[]);
        assert_eq!((status, got.as_slice()), (200, body.as_slice()));
    }
    let (status, h, got) = http_get(d.port, &signed, &[("Range", "bytes=10-19")]);
    assert_eq!((status, got.as_slice()), (206, &body[10..20]));
    assert_eq!(header(&h, "content-range"), Some("bytes 10-19/4096"));
    assert_eq!(http_get(d.port, "/files/snapshots/a.jpg", &[]).0, 401);

    // Altered, moved to another file, or expired: 401.
    let (path, query) = signed.split_once('?').unwrap();
    let flipped = {
        let mut q = query.to_string();
        let last = q.pop().unwrap();
        q.push(if last == '0' { '1' } else { '0' });
        q
    };
    assert_eq!(http_get(d.port, &format!("{path}?{flipped}"), &[]).0, 401);
    assert_eq!(http_get(d.port, &format!("/files/snapshots/b.jpg?{query}"), &[]).0, 401);
    assert_eq!(http_get(d.port, &format!("/files/recordings/a.jpg?{query}"), &[]).0, 401);
    let later = query.replace(&format!("expires={expires}"), &format!("expires={}", expires + 60));
    assert_eq!(http_get(d.port, &format!("{path}?{later}"), &[]).0, 401);
    // A URL signed with the daemon's key (the test knows the secret): valid when fresh, refused once expired.
    let signer = UrlSigner::new(JWT_SECRET.as_bytes());
    let fresh = format!("{path}?{}", signer.query(path, now() + 30));
    assert_eq!(http_get(d.port, &fresh, &[]).0, 200);
    let stale = format!("{path}?{}", signer.query(path, now() - 1));
    let (status, h, _) = http_get(d.port, &stale, &[]);
    assert_eq!((status, header(&h, "www-authenticate")), (401, Some("Bearer")));
}

#[test]
fn retention_policy_can_be_read_back() {
    let d = Daemon::start();
    let mut admin = d.client_as("admin");
    let r = admin.ok("get_retention_policy", serde_json::Value::Null);
    assert_eq!((r["source"].as_str(), r["policy_type"].as_str()), (Some("config"), Some("config")), "{r}");
    assert!(r["config"]["recordings"]["cleanup_after_days"].is_u64() && r["cleanup_interval"].is_u64(), "{r}");
    admin.ok("set_retention_policy", json!({"policy_type": "age", "max_age_days": 7, "enabled": true}));
    let r = admin.ok("get_retention_policy", serde_json::Value::Null);
    assert_eq!((r["source"].as_str(), r["policy_type"].as_str()), (Some("policy"), Some("age")), "{r}");
    assert_eq!((r["max_age_days"].as_f64(), r["enabled"].as_bool()), (Some(7.0), Some(true)));
    let mut viewer = d.client_as("viewer");
    assert_eq!(viewer.call("get_retention_policy", serde_json::Value::Null)["error"]["code"], -32003);
}
