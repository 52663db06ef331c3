//! The live MJPEG view (`/live/<camera>.mjpg`) against the real daemon with virtual cameras: frames on both ports
//! with every kind of credential, one shared reader that stops after the last viewer, refusals of missing, altered,
//! expired and other-camera signatures, the viewer limit; and in headless Chromium, a card whose picture moves.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camera_service::auth::signed_url::UrlSigner;
use camera_service::formats::image::jpeg_dimensions;
use serde_json::json;

use super::{browser_prerequisites, one_browser_at_a_time, sign_in, text_of, Browser, VIRTUAL_CAMERA};
use crate::support::mediamtx::children_of;
use crate::support::mjpeg::MjpegStream;
use crate::support::{http_get, require, token, wait_until, Daemon, Prereq, JWT_SECRET};

const TWO_CAMERAS: &str = "camera:\n  virtual:\n\
    \x20   - name: A\n      width: 320\n      height: 240\n      fps: 15\n      pattern: testsrc2\n\
    \x20   - name: B\n      width: 320\n      height: 240\n      fps: 15\n      pattern: testsrc\n";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The daemon's running ffmpeg children (frame readers; nothing else runs in these tests).
fn ffmpeg_children(d: &Daemon) -> usize {
    children_of(d.child.id())
        .into_iter()
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "ffmpeg"))
        .count()
}

#[test]
fn viewers_on_both_ports_with_any_credential_share_one_reader() {
    if !require(Prereq::Ffmpeg) {
        return;
    }
    let d = Daemon::builder().yaml(VIRTUAL_CAMERA).start();
    let mut c = d.client_as("viewer");
    let r = c.ok("get_live_url", json!({"device": "virtual0"}));
    let url = r["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("/live/virtual0.mjpg?expires="), "{r}");
    assert!(!url.contains("eyJ"), "the JWT never goes into a URL: {url}");
    let expires = camera_service::util::timefmt::parse_rfc3339(r["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires > now() && expires <= now() + 600 + 5, "minutes, not hours: {r}");
    assert_eq!(ffmpeg_children(&d), 0, "nothing reads the camera before a viewer comes");

    let bearer = format!("Bearer {}", token("viewer", 600));
    let key = d.create_api_key("viewer");
    let mut viewers = vec![
        MjpegStream::open(d.port, &url, &[]),
        MjpegStream::open(d.health_port, &url, &[]),
        MjpegStream::open(d.health_port, "/live/virtual0.mjpg", &[("Authorization", &bearer)]),
        MjpegStream::open(d.port, "/live/virtual0.mjpg", &[("X-API-Key", &key)]),
    ];
    for v in &mut viewers {
        assert_eq!(v.status, 200);
        assert_eq!(v.header("content-type"), Some("multipart/x-mixed-replace; boundary=frame"));
        assert!(v.header("content-length").is_none());
        let first = v.next_frame().expect("a first frame");
        let second = v.next_frame().expect("a second frame");
        assert_eq!(jpeg_dimensions(&first), Some((640, 480)));
        assert_eq!(jpeg_dimensions(&second), Some((640, 480)));
        assert_ne!(first, second, "the test pattern moves");
    }
    assert_eq!(ffmpeg_children(&d), 1, "one reader for every viewer of the camera");

    // Viewers leave one by one: the others keep their frames, the reader keeps running.
    let mut last = viewers.pop().unwrap();
    drop(viewers);
    for _ in 0..5 {
        last.next_frame().expect("the remaining viewer still gets frames");
    }
    assert_eq!(ffmpeg_children(&d), 1);
    // A snapshot while the live view runs takes the reader's frame (no second reader of the camera).
    let mut op = d.client_as("operator");
    let shot = op.ok("take_snapshot", json!({"device": "virtual0"}));
    assert_eq!((shot["status"].as_str(), shot["width"].as_u64()), (Some("completed"), Some(640)), "{shot}");
    assert_eq!(shot["tier_used"], 1, "{shot}");
    assert_eq!(ffmpeg_children(&d), 1);
}

#[test]
fn closing_the_last_viewer_stops_the_reader() {
    if !require(Prereq::Ffmpeg) {
        return;
    }
    let d = Daemon::builder().yaml(VIRTUAL_CAMERA).start();
    let url =
        d.client_as("viewer").ok("get_live_url", json!({"device": "virtual0"}))["url"].as_str().unwrap().to_string();
    for round in 0..2 {
        let mut v = MjpegStream::open(d.port, &url, &[]);
        assert_eq!(v.status, 200, "round {round}");
        v.next_frame().expect("frames");
        v.next_frame().expect("frames");
        assert_eq!(ffmpeg_children(&d), 1);
        drop(v);
        wait_until("the reader to stop after the last viewer left", Duration::from_secs(20), || {
            ffmpeg_children(&d) == 0
        });
    }
}

#[test]
fn missing_altered_expired_and_other_camera_signatures_are_refused() {
    if !require(Prereq::Ffmpeg) {
        return;
    }
    let d = Daemon::builder().yaml(TWO_CAMERAS).env("CAMERA_SERVICE_SERVER_LIVE_MAX_VIEWERS", "1").start();
    let mut c = d.client_as("viewer");
    let url = c.ok("get_live_url", json!({"device": "virtual0"}))["url"].as_str().unwrap().to_string();
    let (path, query) = url.split_once('?').unwrap();
    let unauthorized = |target: &str, headers: &[(&str, &str)]| {
        let (status, h, _) = http_get(d.port, target, headers);
        assert_eq!(status, 401, "{target}");
        assert!(h.iter().any(|(n, v)| n == "www-authenticate" && v == "Bearer"), "{target}");
    };
    unauthorized(path, &[]);
    let flipped = {
        let mut q = query.to_string();
        let last = q.pop().unwrap();
        q.push(if last == '0' { '1' } else { '0' });
        q
    };
    unauthorized(&format!("{path}?{flipped}"), &[]);
    // A signature for one camera does not open another, nor a download.
    unauthorized(&format!("/live/virtual1.mjpg?{query}"), &[]);
    unauthorized(&format!("/files/snapshots/virtual0.mjpg?{query}"), &[]);
    let expires: i64 = query.split('&').find_map(|kv| kv.strip_prefix("expires=")).unwrap().parse().unwrap();
    unauthorized(&format!("{path}?{}", query.replace(&expires.to_string(), &(expires + 60).to_string())), &[]);
    // Signed with the daemon's key (the test knows the secret) but expired; an expired JWT; a wrong API key.
    let signer = UrlSigner::new(JWT_SECRET.as_bytes());
    unauthorized(&format!("{path}?{}", signer.query(path, now() - 1)), &[]);
    let stale = format!("Bearer {}", token("viewer", -10));
    unauthorized(path, &[("Authorization", &stale)]);
    unauthorized(path, &[("X-API-Key", "not-a-key")]);

    // Unknown cameras: 404 for a valid credential; JSON-RPC errors as every camera method.
    let bearer = format!("Bearer {}", token("viewer", 600));
    assert_eq!(http_get(d.port, "/live/virtual7.mjpg", &[("Authorization", &bearer)]).0, 404);
    assert_eq!(http_get(d.port, "/live/virtual0.jpg", &[("Authorization", &bearer)]).0, 404);
    assert_eq!(c.call("get_live_url", json!({"device": "virtual7"}))["error"]["code"], -1000);
    assert_eq!(c.call("get_live_url", json!({"device": "nope"}))["error"]["code"], -32602);
    assert_eq!(c.call("get_live_url", json!({}))["error"]["code"], -32602);

    // Only GET and HEAD (the health port routes every method; the WebSocket port forwards only GETs); HEAD answers
    // the head a viewer would get, without taking a seat or starting a reader.
    let raw = |method: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.health_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "{method} /live/virtual1.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {bearer}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        std::io::Write::write_all(&mut s, head.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
        out
    };
    let post = raw("POST");
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    assert!(post.to_ascii_lowercase().contains("\r\nallow: get, head\r\n"), "{post}");
    let head = raw("HEAD");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: multipart/x-mixed-replace; boundary="), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD got a body: {head}");

    // The other camera's own URL opens it; one viewer per camera here, so a second one gets 503 at once.
    let other = c.ok("get_live_url", json!({"device": "virtual1"}))["url"].as_str().unwrap().to_string();
    let mut v = MjpegStream::open(d.port, &other, &[]);
    assert_eq!(v.status, 200);
    assert_eq!(jpeg_dimensions(&v.next_frame().unwrap()), Some((320, 240)));
    let (status, h, _) = http_get(d.port, &other, &[]);
    assert_eq!(status, 503);
    assert!(h.iter().any(|(n, _)| n == "retry-after"));
}

const CARD: &str = "[data-device='virtual0']";

/// A small digest of what the card's live `<img>` shows now (drawn into a canvas; same origin, so readable).
const SAMPLE: &str = "(() => { const i = document.querySelector(\"[data-device='virtual0'] img[data-live='mjpeg']\"); \
    const c = document.createElement('canvas'); c.width = 160; c.height = 120; const x = c.getContext('2d'); \
    x.drawImage(i, 0, 0, 160, 120); const d = x.getImageData(0, 0, 160, 120).data; let h = 0; \
    for (let k = 0; k < d.length; k++) h = (Math.imul(h, 31) + d[k]) >>> 0; return h; })()";

#[test]
fn the_mjpeg_live_view_shows_moving_frames() {
    let Some(chromium) = browser_prerequisites() else { return };
    let _one = one_browser_at_a_time();
    let d = Daemon::builder().yaml(VIRTUAL_CAMERA).start();
    let mut b = Browser::launch(&chromium, 1200, 820);
    sign_in(&mut b, &d, "viewer", false);
    let wait = Duration::from_secs(30);
    b.wait_for(&format!("document.querySelector(\"{CARD} img[data-live='mjpeg']\")?.naturalWidth === 640"), wait);
    assert_eq!(text_of(&mut b, &format!("{CARD} .tag")), "MJPEG");
    let first = b.eval(SAMPLE).as_u64().expect("a digest of the picture");
    // Two samples of the picture differ: the view is live, not a still.
    b.wait_for(&format!("{SAMPLE} !== {first}"), wait);
    let second = b.eval(SAMPLE).as_u64().unwrap();
    b.wait_for(&format!("{SAMPLE} !== {second}"), wait);
    assert_eq!(ffmpeg_children(&d), 1, "the page's view is one reader");
}
