//! What our MediaMTX paths look like: the `runOnDemand` ffmpeg commands and the path-config body,
//! plus the comparison that decides between "leave", "replace" and "add" (docs/design.md, "MediaMTX paths").
//!
//! The body is always built from our configuration, never from values read back from MediaMTX (which may be
//! redacted or normalised), so converging can never write a `<redacted>` password or a stale value.

use serde_json::{json, Map, Value};

use crate::camera::Camera;
use crate::config::{CodecConfig, Config};

/// Path-config keys whose values are Go durations (compared by value: MediaMTX answers `"1h0m0s"` for our
/// `"3600s"` and `""` for `"0s"`).
const DURATION_KEYS: &[&str] = &[
    "runOnDemandStartTimeout",
    "runOnDemandCloseAfter",
    "recordPartDuration",
    "recordSegmentDuration",
    "recordDeleteAfter",
    "sourceOnDemandStartTimeout",
    "sourceOnDemandCloseAfter",
];

/// MediaMTX caps `recordSegmentDuration` at one day.
const MAX_SEGMENT_SECONDS: u64 = 86_400;

/// The path body for `camera` (`record` = MediaMTX recorder on).
pub fn desired(config: &Config, camera: &Camera, record: bool) -> Value {
    let m = &config.mediamtx;
    if let Some(ext) = &camera.external {
        // An IP camera: MediaMTX pulls its URL itself, only while someone reads the path (one connection to the
        // camera however many viewers). The URL carries the credentials MediaMTX needs to log in.
        let body = json!({
            "source": ext.url.expose(),
            "sourceOnDemand": true,
            "sourceOnDemandStartTimeout": m.run_on_demand_start_timeout,
            "sourceOnDemandCloseAfter": m.run_on_demand_close_after,
            "rtspTransport": ext.transport.as_option().unwrap_or("automatic"),
        });
        return with_recorder(body, config, record);
    }
    let body = json!({
        "source": "publisher",
        "runOnDemand": command(config, camera),
        "runOnDemandRestart": true,
        "runOnDemandStartTimeout": m.run_on_demand_start_timeout,
        "runOnDemandCloseAfter": m.run_on_demand_close_after,
    });
    with_recorder(body, config, record)
}

/// The MediaMTX recorder's fields, the same for every kind of path: fragmented MP4 with 1 s parts (a crash loses at
/// most the part being written), our segment length, and no deletion by MediaMTX (retention is ours).
fn with_recorder(mut body: Value, config: &Config, record: bool) -> Value {
    let m = &config.mediamtx;
    let record_path = format!("{}/%path/%path_%Y-%m-%d_%H-%M-%S", m.recordings_path.display());
    let segment = config.segment_seconds().clamp(1, MAX_SEGMENT_SECONDS);
    let fields = json!({
        "record": record,
        "recordPath": record_path,
        "recordFormat": "fmp4",
        "recordPartDuration": "1s",
        "recordSegmentDuration": format!("{segment}s"),
        "recordDeleteAfter": "0s",
    });
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    body
}

/// The `runOnDemand` command: V4L2 → RTSP for a real camera, a paced lavfi pattern for a virtual one.
pub fn command(config: &Config, camera: &Camera) -> String {
    let m = &config.mediamtx;
    let codec = m.effective_codec(&config.present);
    let mut args: Vec<String> = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"].map(String::from).into();
    let fps = match &camera.virtual_source {
        Some(v) => {
            let fps = v.fps.max(1);
            let src = format!("{}=size={}x{}:rate={fps}", v.pattern, v.width, v.height);
            args.extend(["-re", "-f", "lavfi", "-i"].map(String::from));
            args.push(src);
            fps
        }
        None => {
            args.extend(["-f", "v4l2"].map(String::from));
            let probed = !camera.formats.is_empty();
            if let Some(fmt) = camera.input_format.as_deref().filter(|f| !f.is_empty()) {
                args.extend(["-input_format".into(), fmt.to_string()]);
            }
            if probed && parse_size(&camera.resolution).is_some() {
                args.extend(["-video_size".into(), camera.resolution.clone()]);
            }
            if probed && camera.fps > 0 {
                args.extend(["-framerate".into(), camera.fps.to_string()]);
            }
            // The node in `camera.device_dir` (what the camera monitor opened), not the `/dev/videoN` id.
            let node = config.camera.device_dir.join(format!("video{}", camera.number));
            args.extend(["-i".into(), node.to_string_lossy().into_owned()]);
            if camera.fps > 0 {
                camera.fps
            } else {
                30
            }
        }
    };
    encoder_args(&mut args, &codec, fps);
    args.extend(["-f", "rtsp", "-rtsp_transport", "tcp"].map(String::from));
    args.push(format!("rtsp://127.0.0.1:{}/{}", m.rtsp_port, camera.path_name));
    live_frame_args(&mut args, config, camera);
    args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// JPEG frames per second the publisher keeps in its live frame file.
pub const LIVE_FRAME_FPS: u32 = 2;

/// Where the publisher of `path_name` keeps its latest frame, in [`live_frame_dir`].
pub fn live_frame_path(config: &Config, path_name: &str) -> std::path::PathBuf {
    live_frame_dir(config).join(format!("{path_name}.jpg"))
}

/// The folder of the publishers' latest frames, created at start-up when MediaMTX is enabled (group-writable: the
/// publishers run as MediaMTX's user, in the service's group): `mediamtx.live_frames_path`, else a hidden folder of
/// the snapshots directory (never listed or cleaned up).
pub fn live_frame_dir(config: &Config) -> std::path::PathBuf {
    match &config.mediamtx.live_frames_path {
        Some(dir) => dir.clone(),
        None => config.mediamtx.snapshots_path.join(".live"),
    }
}

/// A second output of the publisher: [`LIVE_FRAME_FPS`] JPEG frames a second, each replacing the last (written to a
/// temp name and renamed, so a reader never sees half a frame), at the default snapshot quality. A snapshot of a ready
/// stream copies that file instead of connecting a reader and waiting for a key frame; no decoder runs for it (the
/// publisher encodes these frames from the ones it already has). Through the `tee` muxer with `onfail=ignore` and a
/// null sink: if the file cannot be written (folder removed, disk full), that output stops and the stream goes on
/// (a plain second output would end the publisher). Left out when the path has characters the tee syntax reserves.
fn live_frame_args(args: &mut Vec<String>, config: &Config, camera: &Camera) {
    let file = live_frame_path(config, &camera.path_name).to_string_lossy().into_owned();
    if !file.chars().all(crate::config::validate::is_plain_path_char) {
        return;
    }
    let q = crate::formats::image::qscale(config.snapshots.quality).to_string();
    let fps = format!("fps={LIVE_FRAME_FPS}");
    args.extend(["-map", "0:v", "-an", "-vf", &fps, "-c:v", "mjpeg", "-q:v", &q, "-f", "tee"].map(String::from));
    args.push(format!("[f=image2:update=1:atomic_writing=1:onfail=ignore]{file}|[f=null]-"));
}

/// The Python encoder flags filled from config, in their order, plus low-latency GOP settings (one keyframe per
/// second so readers and snapshots join fast).
fn encoder_args(args: &mut Vec<String>, c: &CodecConfig, fps: u32) {
    for (flag, value) in [
        ("-c:v", &c.encoder),
        ("-profile:v", &c.video_profile),
        ("-level", &c.video_level),
        ("-pix_fmt", &c.pixel_format),
        ("-preset", &c.preset),
    ] {
        args.extend([flag.to_string(), value.clone()]);
    }
    args.extend(["-tune".into(), "zerolatency".into(), "-b:v".into(), c.bitrate.clone()]);
    args.extend(["-g".into(), fps.to_string(), "-bf".into(), "0".into()]);
}

fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// Quote one argument for MediaMTX's shell-like splitting (go-shellquote): plain words stay as they are.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=%@+,".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Does the effective config MediaMTX returned already hold every key of `desired` with the same value?
pub fn matches(desired: &Value, actual: &Value) -> bool {
    let (Some(want), Some(have)) = (desired.as_object(), actual.as_object()) else {
        return false;
    };
    want.iter().all(|(k, v)| match have.get(k) {
        Some(h) if DURATION_KEYS.contains(&k.as_str()) => same_duration(v, h),
        Some(h) => h == v,
        None => false,
    })
}

/// The keys of `desired` that differ from `actual` (for logs).
pub fn differences(desired: &Value, actual: &Value) -> Vec<String> {
    let empty = Map::new();
    let have = actual.as_object().unwrap_or(&empty);
    desired
        .as_object()
        .map(|want| {
            want.iter()
                .filter(|(k, v)| !matches(&json!({ k.as_str(): v }), &Value::Object(have.clone())))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn same_duration(a: &Value, b: &Value) -> bool {
    match (a.as_str().and_then(parse_go_duration), b.as_str().and_then(parse_go_duration)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A Go duration string with MediaMTX's optional leading day count (`"1d"`, `"7d18h53m20s"`, `"1.5s"`, `""` = 0),
/// in nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<u128> {
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut total: u128 = 0;
    if let Some(idx) = rest.find('d') {
        let days: u128 = rest[..idx].parse().ok()?;
        total += days * 86_400 * 1_000_000_000;
        rest = &rest[idx + 1..];
        if rest.is_empty() {
            return Some(total);
        }
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).filter(|&i| i > 0)?;
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        let value: f64 = num.parse().ok()?;
        total += (value * scale).round() as u128;
        rest = next;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{CameraStatus, Format, FrameSize};
    use crate::config::VirtualCameraConfig;

    pub(crate) fn camera(n: u32) -> Camera {
        Camera {
            identity: format!("usb-{n}"),
            resolution: "1920x1080".into(),
            fps: 30,
            ..Camera::unprobed(n, CameraStatus::Connected)
        }
    }

    #[test]
    fn v4l2_command_with_defaults() {
        let cfg = Config::default();
        assert_eq!(
            command(&cfg, &camera(0)),
            "ffmpeg -hide_banner -loglevel error -nostdin -f v4l2 -i /dev/video0 -c:v libx264 -profile:v baseline \
             -level 3.0 -pix_fmt yuv420p -preset ultrafast -tune zerolatency -b:v 600k -g 30 -bf 0 -f rtsp \
             -rtsp_transport tcp rtsp://127.0.0.1:8554/camera0 -map 0:v -an -vf fps=2 -c:v mjpeg -q:v 6 -f tee \
             '[f=image2:update=1:atomic_writing=1:onfail=ignore]/opt/camera-service/snapshots/.live/camera0.jpg|[f=null]-'"
        );
    }

    #[test]
    fn live_frame_output_only_for_plain_paths() {
        let mut cfg = Config::default();
        cfg.snapshots.quality = 100;
        cfg.mediamtx.snapshots_path = "/srv/snaps".into();
        let cmd = command(&cfg, &camera(3));
        assert!(cmd.ends_with("-q:v 2 -f tee '[f=image2:update=1:atomic_writing=1:onfail=ignore]/srv/snaps/.live/camera3.jpg|[f=null]-'"), "{cmd}");
        assert_eq!(live_frame_path(&cfg, "camera3"), std::path::Path::new("/srv/snaps/.live/camera3.jpg"));
        // A folder of its own (e.g. on tmpfs) replaces the hidden one.
        cfg.mediamtx.live_frames_path = Some("/run/camera-service/live".into());
        let cmd = command(&cfg, &camera(3));
        assert!(cmd.ends_with("onfail=ignore]/run/camera-service/live/camera3.jpg|[f=null]-'"), "{cmd}");
        cfg.mediamtx.live_frames_path = None;
        // `|`, `[` or `:` would be read as tee syntax: no live frame then, the stream itself is unchanged.
        cfg.mediamtx.snapshots_path = "/srv/a|b".into();
        let cmd = command(&cfg, &camera(3));
        assert!(cmd.ends_with("rtsp://127.0.0.1:8554/camera3"), "{cmd}");
    }

    #[test]
    fn probed_camera_gets_input_options() {
        let mut cfg = Config::default();
        cfg.mediamtx.rtsp_port = 18554;
        cfg.camera.device_dir = "/run/cams".into();
        cfg.mediamtx.codec.bitrate = "2M".into();
        cfg.present.insert("mediamtx.codec.bitrate".into());
        let mut cam = camera(2);
        cam.formats = vec![Format {
            fourcc: "MJPG".into(),
            description: "Motion-JPEG".into(),
            sizes: vec![FrameSize { width: 1280, height: 720, fps: vec![15.0] }],
        }];
        cam.resolution = "1280x720".into();
        cam.fps = 15;
        cam.input_format = Some("mjpeg".into());
        let cmd = command(&cfg, &cam);
        assert!(
            cmd.contains("-f v4l2 -input_format mjpeg -video_size 1280x720 -framerate 15 -i /run/cams/video2"),
            "{cmd}"
        );
        assert!(cmd.contains("-b:v 2M -g 15 -bf 0"), "{cmd}");
        assert!(cmd.contains(" rtsp://127.0.0.1:18554/camera2 -map 0:v "), "{cmd}");
    }

    #[test]
    fn virtual_command_uses_lavfi() {
        let cfg = Config::default();
        let mut cam = camera(0);
        cam.device = "virtual0".into();
        cam.path_name = "virtual0".into();
        cam.is_virtual = true;
        cam.virtual_source = Some(VirtualCameraConfig::default());
        let cmd = command(&cfg, &cam);
        assert!(cmd.starts_with(
            "ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=640x480:rate=15 "
        ));
        assert!(cmd.contains("-f rtsp -rtsp_transport tcp rtsp://127.0.0.1:8554/virtual0 -map 0:v"), "{cmd}");
    }

    #[test]
    fn body_has_our_publisher_and_recorder_fields() {
        let mut cfg = Config::default();
        cfg.mediamtx.recordings_path = "/data/rec".into();
        let body = desired(&cfg, &camera(1), false);
        assert_eq!(body["recordPath"], "/data/rec/%path/%path_%Y-%m-%d_%H-%M-%S");
        assert_eq!(body["recordSegmentDuration"], "1800s");
        assert_eq!(body["recordDeleteAfter"], "0s");
        assert_eq!(body["source"], "publisher");
        assert_eq!(body["runOnDemandRestart"], true);
        assert_eq!(body["record"], false);
    }

    #[test]
    fn ip_camera_is_pulled_on_demand_with_its_credentials() {
        use crate::camera::external::{SourceUrl, Transport};
        use crate::camera::model::ExternalSource;
        let mut cam = camera(0);
        cam.path_name = "door".into();
        let url = SourceUrl::parse("rtsp://u:s3cret@10.0.0.5:8554/live").unwrap();
        cam.external = Some(ExternalSource { url, transport: Transport::Tcp });
        let body = desired(&Config::default(), &cam, true);
        assert_eq!(body["source"], "rtsp://u:s3cret@10.0.0.5:8554/live");
        assert_eq!((body["sourceOnDemand"].clone(), body["rtspTransport"].clone()), (json!(true), json!("tcp")));
        assert_eq!(body["record"], true);
        assert!(body.get("runOnDemand").is_none(), "a pulled source has no publisher command: {body}");
    }

    #[test]
    fn durations_compare_by_value() {
        assert_eq!(parse_go_duration("1h0m0s"), parse_go_duration("3600s"));
        assert_eq!(parse_go_duration(""), Some(0));
        assert_eq!(parse_go_duration("0s"), Some(0));
        assert_eq!(parse_go_duration("1d"), Some(86_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("7d18h53m20s"), Some((7 * 86_400 + 18 * 3600 + 53 * 60 + 20) * 1_000_000_000));
        assert_eq!(parse_go_duration("abc"), None);
        let want = json!({"recordDeleteAfter": "0s", "recordSegmentDuration": "3600s", "record": false});
        let have = json!({"recordDeleteAfter": "", "recordSegmentDuration": "1h0m0s", "record": false, "x": 1});
        assert!(matches(&want, &have));
        assert!(!matches(
            &want,
            &json!({"recordDeleteAfter": "1d", "recordSegmentDuration": "1h0m0s", "record": false})
        ));
        assert_eq!(differences(&want, &json!({"recordDeleteAfter": ""})), vec!["record", "recordSegmentDuration"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("/dev/video0"), "/dev/video0");
    }
}
