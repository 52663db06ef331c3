//! What an RTSP DESCRIBE's SDP says about a stream's video: codec, picture size and frame rate. Sizes come from
//! the H.264 SPS in `sprop-parameter-sets`, else `a=framesize` / `a=x-dimensions` / `a=cliprect`; rates from
//! `a=framerate` / `a=x-framerate`, else the SPS timing. Input is untrusted: malformed lines are skipped.
#![forbid(unsafe_code)]

use base64::Engine;
use serde::Serialize;

use super::h264;

/// The video of a stream, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamInfo {
    /// The RTP encoding name (`H264`, `H265`, `JPEG`, `MP4V-ES`, ...), upper case.
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
}

impl StreamInfo {
    /// Size and rate both known.
    pub fn complete(&self) -> bool {
        self.width.is_some() && self.height.is_some() && self.fps.is_some()
    }

    /// Fill what `self` lacks from `other`.
    pub fn merge(&mut self, other: StreamInfo) {
        self.codec = self.codec.take().or(other.codec);
        if self.width.is_none() || self.height.is_none() {
            (self.width, self.height) = (other.width, other.height);
        }
        self.fps = self.fps.or(other.fps);
    }

    /// The V4L2-style FourCC camera capabilities use for this codec.
    pub fn fourcc(&self) -> Option<String> {
        let codec = self.codec.as_deref()?;
        Some(
            match codec {
                "H264" => "H264",
                "H265" | "HEVC" => "HEVC",
                "JPEG" | "MJPEG" => "MJPG",
                "MP4V-ES" | "MPEG4" => "MP4V",
                "VP8" => "VP80",
                "VP9" => "VP90",
                "AV1" => "AV01",
                other => return Some(other.chars().take(8).collect()),
            }
            .to_string(),
        )
    }
}

/// Size and rate hints found in one section (session level or the video media).
#[derive(Default)]
struct Hints {
    size: Option<(u32, u32)>,
    fps: Option<f64>,
}

/// The first video media of an SDP, or None when there is none.
pub fn parse(sdp: &str) -> Option<StreamInfo> {
    let mut session = Hints::default();
    let mut video: Option<(Vec<String>, Hints)> = None;
    let mut in_video = false;
    let mut seen_media = false;
    let (mut rtpmap, mut sps): (Option<String>, Option<h264::SpsInfo>) = (None, None);
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            seen_media = true;
            let mut f = m.split_whitespace();
            in_video = video.is_none() && f.next() == Some("video");
            if in_video {
                video = Some((f.skip(2).map(str::to_string).collect(), Hints::default()));
            }
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else { continue };
        if !seen_media {
            hint(attr, &mut session);
            continue;
        }
        let Some((pts, hints)) = video.as_mut().filter(|_| in_video) else { continue };
        hint(attr, hints);
        let pt = pts.first().map(String::as_str).unwrap_or("");
        if let Some(v) = attr.strip_prefix("rtpmap:").and_then(|v| v.strip_prefix(pt)) {
            rtpmap = v.trim().split('/').next().map(|c| c.to_ascii_uppercase()).filter(|c| !c.is_empty());
        } else if let Some(v) = attr.strip_prefix("fmtp:").and_then(|v| v.strip_prefix(pt)) {
            sps = sps.or_else(|| sprop_sps(v));
        }
    }
    let (pts, hints) = video?;
    let codec = rtpmap.or_else(|| (pts.first().map(String::as_str) == Some("26")).then(|| "JPEG".to_string()));
    let size = sps.map(|s| (s.width, s.height)).or(hints.size).or(session.size);
    let fps = hints.fps.or(session.fps).or(sps.and_then(|s| s.fps));
    Some(StreamInfo { codec, width: size.map(|s| s.0), height: size.map(|s| s.1), fps: fps.map(round_fps) })
}

fn round_fps(f: f64) -> f64 {
    (f * 1000.0).round() / 1000.0
}

/// Size and rate attributes understood by common cameras and servers.
fn hint(attr: &str, h: &mut Hints) {
    let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
    let value = value.trim();
    match name {
        "framerate" | "x-framerate" => {
            if let Ok(f) = value.parse::<f64>() {
                if f.is_finite() && f > 0.0 && f <= 1000.0 {
                    h.fps = Some(f);
                }
            }
        }
        // `a=framesize:96 1280-720`
        "framesize" => {
            let dims = value.split_whitespace().nth(1).and_then(|d| d.split_once('-'));
            h.size = h.size.or_else(|| dims.and_then(|(w, ht)| size(w, ht)));
        }
        // `a=x-dimensions:1280,720`
        "x-dimensions" => h.size = h.size.or_else(|| value.split_once(',').and_then(|(w, ht)| size(w, ht))),
        // `a=cliprect:0,0,720,1280` (top, left, bottom, right)
        "cliprect" => {
            let v: Vec<&str> = value.split(',').collect();
            if let [_, _, bottom, right] = v.as_slice() {
                h.size = h.size.or_else(|| size(right, bottom));
            }
        }
        _ => {}
    }
}

fn size(w: &str, h: &str) -> Option<(u32, u32)> {
    let (w, h) = (w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?);
    (w > 0 && h > 0 && w <= 16384 && h <= 16384).then_some((w, h))
}

/// The SPS in `sprop-parameter-sets=<base64>,<base64>` of an H.264 `fmtp`.
fn sprop_sps(fmtp: &str) -> Option<h264::SpsInfo> {
    let sets = fmtp.split(';').find_map(|p| p.trim().strip_prefix("sprop-parameter-sets="))?;
    sets.split(',').take(8).find_map(|b64| {
        let b64 = b64.trim();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
            .ok()?;
        h264::parse_sps(&raw)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What MediaMTX answers for a path published by ffmpeg/libx264 at 320x240, 10 fps.
    const MEDIAMTX: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Stream\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
        m=video 0 RTP/AVP 96\r\na=control:rtsp://127.0.0.1:8554/cam/trackID=0\r\na=rtpmap:96 H264/90000\r\n\
        a=fmtp:96 packetization-mode=1; profile-level-id=42C00B; sprop-parameter-sets=Z0LAC9kBQfsBEAAAAwAQAAADAUDxQqSA,aMuDyyA=\r\n";

    #[test]
    fn h264_from_sps() {
        let i = parse(MEDIAMTX).unwrap();
        assert_eq!(i, StreamInfo { codec: Some("H264".into()), width: Some(320), height: Some(240), fps: Some(10.0) });
        assert!(i.complete());
        assert_eq!(i.fourcc().as_deref(), Some("H264"));
    }

    #[test]
    fn attribute_hints_and_first_video_only() {
        let sdp = "v=0\na=framerate:12.5\nm=audio 0 RTP/AVP 0\na=framesize:0 10-10\n\
                   m=video 0 RTP/AVP 97\na=rtpmap:97 H265/90000\na=x-dimensions:1280,720\n\
                   m=video 0 RTP/AVP 26\na=framesize:26 640-480\n";
        let i = parse(sdp).unwrap();
        assert_eq!((i.codec.as_deref(), i.width, i.height, i.fps), (Some("H265"), Some(1280), Some(720), Some(12.5)));
        assert_eq!(i.fourcc().as_deref(), Some("HEVC"));
        let mjpeg = parse("m=video 0 RTP/AVP 26\na=cliprect:0,0,480,640\na=framerate:25").unwrap();
        assert_eq!((mjpeg.codec.as_deref(), mjpeg.width, mjpeg.height), (Some("JPEG"), Some(640), Some(480)));
        assert_eq!(mjpeg.fps, Some(25.0));
        let partial = parse("m=video 0 RTP/AVP 96\na=rtpmap:96 MP4V-ES/90000\na=framesize:96 x-y").unwrap();
        assert!(!partial.complete() && partial.width.is_none());
        assert!(parse("m=audio 0 RTP/AVP 0\n").is_none());
        assert!(parse("").is_none());
    }

    #[test]
    fn merge_fills_gaps_only() {
        let mut a = StreamInfo { codec: Some("H264".into()), fps: Some(30.0), ..Default::default() };
        a.merge(StreamInfo { codec: Some("x".into()), width: Some(2), height: Some(3), fps: Some(1.0) });
        assert_eq!(a, StreamInfo { codec: Some("H264".into()), width: Some(2), height: Some(3), fps: Some(30.0) });
    }
}
