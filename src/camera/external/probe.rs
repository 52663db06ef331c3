//! Checking one external source: RTSP OPTIONS + DESCRIBE within a deadline, the SDP read for codec, size and rate,
//! and — only when the SDP leaves size or rate open — one bounded `ffprobe` of the stream.
#![forbid(unsafe_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rtsp::{Failure, Session};
use super::sdp::{self, StreamInfo};
use super::source::{SourceUrl, Transport};
use crate::util::redact;

/// The result of one check.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The source answered DESCRIBE with a video stream.
    Up(StreamInfo),
    /// It did not answer, or not with a stream (the reason, for logs).
    Down(String),
    /// It rejected our credentials (or asked for some and the URL has none).
    Unauthorized(String),
}

/// What one DESCRIBE told about a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Described {
    Stream(StreamInfo),
    /// 200 with an SDP that holds no video.
    NoVideo,
    /// 401/403.
    Unauthorized,
    /// Any other status.
    Status(u16, String),
}

/// OPTIONS then DESCRIBE of `url` on one connection, all before `deadline`.
pub fn describe(url: &SourceUrl, deadline: Instant) -> Result<Described, Failure> {
    let mut s = Session::connect(url.host(), url.port(), deadline)?.with_credentials(url.credentials());
    let options = s.request("OPTIONS", url.request_uri())?;
    if matches!(options.status, 401 | 403) {
        return Ok(Described::Unauthorized);
    }
    describe_on(&mut s, url.request_uri())
}

/// DESCRIBE `uri` on an open session.
pub fn describe_on(s: &mut Session, uri: &str) -> Result<Described, Failure> {
    let r = s.request("DESCRIBE", uri)?;
    Ok(match r.status {
        200 => match sdp::parse(&String::from_utf8_lossy(&r.body)) {
            Some(info) => Described::Stream(info),
            None => Described::NoVideo,
        },
        401 | 403 => Described::Unauthorized,
        code => Described::Status(code, r.reason),
    })
}

/// Check a source: DESCRIBE bounded by `timeout`; then, if size or rate are still unknown and `ffprobe` is
/// allowed, ffprobe bounded by `timeout` again.
pub fn check(url: &SourceUrl, transport: Transport, timeout: Duration, ffprobe: bool) -> Outcome {
    let outcome = match describe(url, Instant::now() + timeout) {
        Ok(Described::Stream(info)) => Outcome::Up(info),
        Ok(Described::NoVideo) => Outcome::Down("the stream has no video".into()),
        Ok(Described::Unauthorized) if url.credentials().is_some() => {
            Outcome::Unauthorized("the source rejected the credentials".into())
        }
        Ok(Described::Unauthorized) => Outcome::Unauthorized("the source requires credentials".into()),
        Ok(Described::Status(code, reason)) => Outcome::Down(format!("DESCRIBE answered {code} {reason}")),
        Err(f) => Outcome::Down(f.to_string()),
    };
    match outcome {
        Outcome::Up(mut info) if ffprobe && !info.complete() => {
            match ffprobe_info(url, transport, timeout) {
                Ok(more) => info.merge(more),
                Err(e) => log::debug!("external source {url}: ffprobe: {e}"),
            }
            Outcome::Up(info)
        }
        other => other,
    }
}

/// Codec, size and rate of the first video stream as ffprobe reads them, killed after `timeout`.
pub fn ffprobe_info(url: &SourceUrl, transport: Transport, timeout: Duration) -> Result<StreamInfo, String> {
    let micros = timeout.as_micros().max(1).to_string();
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-rtsp_transport", transport.as_option().unwrap_or("tcp"), "-timeout", &micros]);
    cmd.args(["-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height,avg_frame_rate,r_frame_rate"]);
    cmd.args(["-of", "json", "-i", url.expose()]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    crate::sys::process::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run ffprobe: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |r: Option<&mut dyn Read>| {
        let mut s = String::new();
        if let Some(r) = r {
            let _ = r.take(64 * 1024).read_to_string(&mut s);
        }
        s
    };
    let out = read(child.stdout.as_mut().map(|s| s as &mut dyn Read));
    if !status.success() {
        let err = read(child.stderr.as_mut().map(|s| s as &mut dyn Read));
        return Err(redact::text(err.trim()).into_owned());
    }
    parse_ffprobe(&out).ok_or_else(|| "no video stream in ffprobe's answer".to_string())
}

/// `{"streams": [{"codec_name": "h264", "width": 320, "height": 240, "avg_frame_rate": "10/1"}]}`.
fn parse_ffprobe(json: &str) -> Option<StreamInfo> {
    let v: Value = serde_json::from_str(json).ok()?;
    let s = v.get("streams")?.get(0)?;
    let dim = |k: &str| s.get(k).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
    // RTSP streams often report no average rate ("0/0"); the base rate is then the best estimate.
    let rate = |k: &str| {
        let (n, d) = s.get(k)?.as_str()?.split_once('/')?;
        let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
        (d > 0.0 && n > 0.0 && n / d <= 1000.0).then(|| (n / d * 1000.0).round() / 1000.0)
    };
    let fps = rate("avg_frame_rate").or_else(|| rate("r_frame_rate"));
    let codec = s.get("codec_name").and_then(Value::as_str).map(|c| match c {
        "h264" => "H264".to_string(),
        "hevc" => "H265".to_string(),
        "mjpeg" => "JPEG".to_string(),
        "mpeg4" => "MP4V-ES".to_string(),
        other => other.to_ascii_uppercase(),
    });
    Some(StreamInfo { codec, width: dim("width"), height: dim("height"), fps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffprobe_json() {
        let i = parse_ffprobe(
            r#"{"programs": [], "streams": [{"codec_name": "mpeg4", "width": 320, "height": 240,
                "avg_frame_rate": "30000/1001"}]}"#,
        )
        .unwrap();
        assert_eq!(
            i,
            StreamInfo { codec: Some("MP4V-ES".into()), width: Some(320), height: Some(240), fps: Some(29.97) }
        );
        let none = parse_ffprobe(r#"{"streams": [{"codec_name": "h264", "avg_frame_rate": "0/0"}]}"#).unwrap();
        assert_eq!((none.width, none.fps), (None, None));
        let base = r#"{"streams": [{"avg_frame_rate": "0/0", "r_frame_rate": "10/1", "width": 8, "height": 6}]}"#;
        assert_eq!(parse_ffprobe(base).unwrap().fps, Some(10.0));
        assert!(parse_ffprobe(r#"{"streams": []}"#).is_none());
        assert!(parse_ffprobe("garbage").is_none());
    }

    #[test]
    fn nothing_listening_is_down_quickly() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = SourceUrl::parse(&format!("rtsp://u:pw@127.0.0.1:{port}/x")).unwrap();
        let t = Instant::now();
        assert!(matches!(check(&url, Transport::Auto, Duration::from_secs(2), true), Outcome::Down(_)));
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
