//! Stream URLs: one builder used by every method and notification; the host comes from `mediamtx.public_host`, else
//! the client's `Host` header.

use serde_json::{json, Map, Value};

use crate::config::MediaMtxConfig;

/// The host to put into URLs: `mediamtx.public_host`, else the client's Host header, else `mediamtx.host`.
pub fn url_host<'a>(cfg: &'a MediaMtxConfig, client_host: Option<&'a str>) -> &'a str {
    match cfg.public_host.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h,
        None => client_host.filter(|h| !h.is_empty()).unwrap_or(&cfg.host),
    }
}

/// `{"rtsp", "webrtc", "hls"}` for MediaMTX path `path`.
pub fn urls(cfg: &MediaMtxConfig, client_host: Option<&str>, path: &str) -> Value {
    let h = url_host(cfg, client_host);
    let h = if h.contains(':') && !h.starts_with('[') { format!("[{h}]") } else { h.to_string() };
    json!({
        "rtsp": format!("rtsp://{h}:{}/{path}", cfg.rtsp_port),
        "webrtc": format!("http://{h}:{}/{path}", cfg.webrtc_port),
        "hls": format!("http://{h}:{}/{path}/index.m3u8", cfg.hls_port),
    })
}

/// `{}`: what `streams` holds when a camera has no MediaMTX path.
pub fn none() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_decisions() {
        let mut cfg = MediaMtxConfig::default();
        assert_eq!(
            urls(&cfg, Some("cam.local"), "camera0"),
            json!({"rtsp": "rtsp://cam.local:8554/camera0", "webrtc": "http://cam.local:8889/camera0",
                   "hls": "http://cam.local:8888/camera0/index.m3u8"})
        );
        assert_eq!(urls(&cfg, None, "camera1")["rtsp"], "rtsp://localhost:8554/camera1");
        cfg.public_host = Some("pub.example".into());
        assert_eq!(urls(&cfg, Some("cam.local"), "camera0")["hls"], "http://pub.example:8888/camera0/index.m3u8");
    }
}
