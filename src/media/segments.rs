//! Recording files: where segments go, which of them belong to a session, and the ffmpeg command lines that write
//! them (direct mode) or keep an on-demand MediaMTX stream alive (recorder mode).
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::camera::Camera;
use crate::config::Config;

/// `<recordings_path>/<path>`: one directory per camera, as MediaMTX's `recordPath` `%path/%path_...` lays it out.
pub fn session_dir(config: &Config, path_name: &str) -> PathBuf {
    config.mediamtx.recordings_path.join(path_name)
}

fn is_segment_name(name: &str, path_name: &str) -> bool {
    name.len() > path_name.len() + 1
        && name.starts_with(path_name)
        && name.as_bytes()[path_name.len()] == b'_'
        && name.ends_with(".mp4")
        && !name.starts_with('.')
}

/// Segment names present in `dir` now (taken at session start: anything that appears later is the session's).
pub fn existing_segments(dir: &Path, path_name: &str) -> HashSet<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return HashSet::new();
    };
    rd.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| is_segment_name(n, path_name)).collect()
}

/// The session's segments: (name, size) sorted by name (the time stamp in the name sorts chronologically).
/// A camera records one session at a time, so every segment file that was not there at start is this session's.
pub fn session_files(dir: &Path, path_name: &str, preexisting: &HashSet<String>) -> Vec<(String, u64)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, u64)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !is_segment_name(&name, path_name) || preexisting.contains(&name) {
                return None;
            }
            let meta = e.metadata().ok()?;
            meta.is_file().then_some((name, meta.len()))
        })
        .collect();
    v.sort();
    v
}

/// Whether a recording file holds any decodable video: an MP4 header (`moov`) and at least one sample after it
/// (in `moov` itself or in a fragment). A fragmented MP4 whose writer died before its first fragment is only an
/// `ftyp` and `moov`: no frames, not playable.
pub fn has_video(path: &Path) -> bool {
    crate::files::meta::probe(path).is_ok_and(|m| m.duration_secs.is_some_and(|d| d > 0.0))
}

/// Remove the session's segments that hold no frames (cut off before their first fragment), so no unplayable
/// file is left behind or reported. Every file with any decodable video is kept. Returns the names removed.
pub fn prune_frameless(dir: &Path, path_name: &str, preexisting: &HashSet<String>) -> Vec<String> {
    let mut removed = Vec::new();
    for (name, _) in session_files(dir, path_name, preexisting) {
        let p = dir.join(&name);
        if !has_video(&p) && std::fs::remove_file(&p).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// The name the next segment would get if it started at `t` (ffmpeg's strftime pattern and MediaMTX's `recordPath`
/// both name a segment after its first second, in UTC).
pub fn segment_name(path_name: &str, t: std::time::SystemTime) -> String {
    format!("{path_name}_{}.mp4", crate::util::timefmt::file_stamp(t))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// ffmpeg input for a camera recorded directly: a paced lavfi source (virtual cameras behave as live cameras: frames
/// at their rate, not as fast as ffmpeg can encode), an IP camera's RTSP URL, or the V4L2 device.
pub fn direct_input(config: &Config, camera: &Camera) -> Vec<String> {
    if let Some(ext) = &camera.external {
        return rtsp_source_input(ext);
    }
    if let Some(v) = &camera.virtual_source {
        let src = format!("{}=size={}x{}:rate={}", v.pattern, v.width, v.height, v.fps.max(1));
        return s(&["-re", "-f", "lavfi", "-i", &src]);
    }
    let mut a = s(&["-f", "v4l2"]);
    if let Some(f) = &camera.input_format {
        a.extend(s(&["-input_format", f]));
    }
    if camera.resolution.contains('x') {
        a.extend(s(&["-video_size", &camera.resolution]));
    }
    if camera.fps > 0 {
        a.extend(s(&["-framerate", &camera.fps.to_string()]));
    }
    let node = config.camera.device_dir.join(format!("video{}", camera.number));
    a.extend(s(&["-i", &node.to_string_lossy()]));
    a
}

/// Seconds without data before ffmpeg gives up on an IP camera (so a source that dies ends the capture or the
/// recording instead of hanging it).
const RTSP_IO_TIMEOUT_US: &str = "5000000";

/// ffmpeg input options for an IP camera read directly: its transport when configured, an I/O timeout, and the URL
/// with its credentials (ffmpeg must log in; our log lines and replies mask them).
fn rtsp_source_input(ext: &crate::camera::model::ExternalSource) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(t) = ext.transport.as_option() {
        a.extend(s(&["-rtsp_transport", t]));
    }
    a.extend(s(&["-timeout", RTSP_IO_TIMEOUT_US, "-i", ext.url.expose()]));
    a
}

/// Whether the camera is a device that streams for one opener at a time (a V4L2 node), as opposed to a virtual
/// camera's test pattern or an IP camera's URL, which any number of readers may open.
pub fn exclusive_device(camera: &Camera) -> bool {
    !camera.is_virtual && camera.virtual_source.is_none() && camera.external.is_none()
}

/// The JPEG frames a direct recording also makes for the live view and snapshots, when it is the camera's one reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameOutput {
    pub fps: u32,
    pub qscale: u8,
}

/// Longest `-t` handed to ffmpeg (about 100 years).
const MAX_FFMPEG_SECONDS: u64 = 100 * 365 * 86_400;

/// Fragments of at most this long (microseconds): a crash of the writer loses at most about this much video.
pub const FRAGMENT_MICROS: u32 = 1_000_000;

/// The complete direct-mode recording command: H.264 into the segment muxer with fragmented MP4 (a fragment per key
/// frame, one per second, and at most [`FRAGMENT_MICROS`] long), every packet flushed to the file as it is written.
/// A segment cut off by SIGKILL, a power loss or a full disk therefore stays playable up to its last fragment, and a
/// recording killed in its first seconds still keeps its first fragments (without the flush the muxer's 32 KiB
/// buffer held them). `-t` sits before the output so it limits the recording, not the input (the Python service's durations were
/// not enforced by ffmpeg).
///
/// With `frames`, a second output writes JPEG frames to stdout (`pipe:1`) at that rate and quality, for the live view
/// and snapshots of a camera whose device only one process can read. It goes through the `tee` muxer with
/// `onfail=ignore` next to a null sink: if our end of the pipe closes, that output stops and the recording goes on
/// (a plain second output that fails would end ffmpeg, and with it the recording).
pub fn direct_args(
    config: &Config,
    camera: &Camera,
    dir: &Path,
    duration: Option<u64>,
    frames: Option<FrameOutput>,
) -> Vec<String> {
    // A rate not known (an IP camera whose stream does not say) counts as 30 for the key-frame interval.
    let fps = camera.virtual_source.as_ref().map(|v| v.fps).unwrap_or(camera.fps);
    let fps = if fps == 0 { 30 } else { fps };
    let mut a = s(&["-hide_banner", "-loglevel", "error", "-nostdin"]);
    a.extend(direct_input(config, camera));
    // ffmpeg keeps times in i64 microseconds and refuses a larger `-t`; past this the recorder's timer ends it.
    let limit: Vec<String> = match duration.filter(|&d| d <= MAX_FFMPEG_SECONDS) {
        Some(d) => s(&["-t", &d.to_string()]),
        None => Vec::new(),
    };
    a.extend(limit.iter().cloned());
    // A key frame every second so short segments really rotate on time.
    a.extend(s(&["-an", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"]));
    a.extend(s(&["-g", &fps.to_string(), "-keyint_min", &fps.to_string(), "-sc_threshold", "0"]));
    a.extend(s(&["-f", "segment", "-segment_time", &config.segment_seconds().max(1).to_string()]));
    a.extend(s(&["-segment_format", "mp4"]));
    let options =
        format!("movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration={FRAGMENT_MICROS}:flush_packets=1");
    a.extend(s(&["-segment_format_options", &options]));
    a.extend(s(&["-reset_timestamps", "1", "-strftime", "1"]));
    let pattern = dir.join(format!("{}_%Y-%m-%d_%H-%M-%S.mp4", camera.path_name));
    a.push(pattern.to_string_lossy().into_owned());
    if let Some(f) = frames {
        // Output options apply to the output they precede: the time limit again, so both outputs end together.
        a.extend(limit);
        let (fps, q) = (format!("fps={}", f.fps.max(1)), f.qscale.to_string());
        a.extend(s(&["-map", "0:v", "-an", "-vf", &fps, "-c:v", "mjpeg", "-q:v", &q, "-f", "tee"]));
        a.push("[f=image2pipe:onfail=ignore]pipe:1|[f=null]-".into());
    }
    a
}

/// `rtsp://<mediamtx.host>:<rtsp_port>/<path>`, the daemon's own view of a stream (not a client URL).
pub fn rtsp_url(config: &Config, path_name: &str) -> String {
    format!("rtsp://{}:{}/{}", config.mediamtx.host, config.mediamtx.rtsp_port, path_name)
}

/// A reader that keeps an on-demand path published while MediaMTX records it (the recorder is not a reader).
pub fn keepalive_args(config: &Config, path_name: &str) -> Vec<String> {
    let url = rtsp_url(config, path_name);
    s(&["-hide_banner", "-loglevel", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", &url, "-c", "copy"])
        .into_iter()
        .chain(s(&["-f", "null", "-"]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_camera_is_read_from_its_url() {
        use crate::camera::external::{SourceUrl, Transport};
        use crate::camera::model::ExternalSource;
        let mut cam = Camera::unprobed(crate::camera::external::NO_DEVICE_NODE, crate::camera::CameraStatus::Connected);
        cam.path_name = "porch".into();
        let url = SourceUrl::parse("rtsp://u:pw@10.0.0.9/live").unwrap();
        cam.external = Some(ExternalSource { url, transport: Transport::Udp });
        let cfg = Config::default();
        assert_eq!(
            direct_input(&cfg, &cam),
            s(&["-rtsp_transport", "udp", "-timeout", "5000000", "-i", "rtsp://u:pw@10.0.0.9/live"])
        );
        // Rate unknown: a key frame every 30 frames, not every frame.
        let args = direct_args(&cfg, &cam, Path::new("/rec/porch"), Some(3), None);
        let g = args.iter().position(|a| a == "-g").unwrap();
        assert_eq!(args[g + 1], "30");
        assert!(args.last().unwrap().starts_with("/rec/porch/porch_"));
    }

    #[test]
    fn a_device_recording_also_writes_live_frames_that_may_fail_alone() {
        let cfg = Config::default();
        let mut cam = Camera::unprobed(0, crate::camera::CameraStatus::Connected);
        assert!(exclusive_device(&cam));
        let frames = FrameOutput { fps: 15, qscale: 6 };
        let args = direct_args(&cfg, &cam, Path::new("/rec/camera0"), Some(3), Some(frames)).join(" ");
        let second = args.split_once("/rec/camera0/camera0_%Y-%m-%d_%H-%M-%S.mp4 ").expect("segments first").1;
        assert_eq!(
            second,
            "-t 3 -map 0:v -an -vf fps=15 -c:v mjpeg -q:v 6 -f tee [f=image2pipe:onfail=ignore]pipe:1|[f=null]-",
            "both outputs end together; a closed pipe stops only the frames"
        );
        let plain = direct_args(&cfg, &cam, Path::new("/rec/camera0"), None, None);
        assert!(plain.last().unwrap().ends_with(".mp4"));
        cam.is_virtual = true;
        assert!(!exclusive_device(&cam));
    }

    #[test]
    fn session_files_skip_preexisting_and_foreign_names() {
        let dir = std::env::temp_dir().join(format!("media-seg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for n in ["virtual0_2025-01-01_00-00-00.mp4", "virtual0_2025-01-01_00-00-02.mp4", "other.mp4", ".x.mp4"] {
            std::fs::write(dir.join(n), b"abc").unwrap();
        }
        let pre = existing_segments(&dir, "virtual0");
        assert_eq!(pre.len(), 2);
        std::fs::write(dir.join("virtual0_2025-01-01_00-00-04.mp4"), b"abcd").unwrap();
        std::fs::write(dir.join("virtual00_2025-01-01_00-00-04.mp4"), b"abcd").unwrap();
        let files = session_files(&dir, "virtual0", &pre);
        assert_eq!(files, vec![("virtual0_2025-01-01_00-00-04.mp4".to_string(), 4)]);
        std::fs::write(dir.join("virtual0_2025-01-01_00-00-06.mp4"), b"\0\0\0\x08ftyp").unwrap();
        // A header without a single sample (the writer died before its first fragment), and one with 2.5 s.
        let movie = |duration: u32| {
            let mut mvhd = vec![0u8; 20];
            mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
            mvhd[16..20].copy_from_slice(&duration.to_be_bytes());
            let mut f = b"\0\0\0\x08ftyp\0\0\0\x24moov\0\0\0\x1cmvhd".to_vec();
            f.extend_from_slice(&mvhd);
            f
        };
        std::fs::write(dir.join("virtual0_2025-01-01_00-00-08.mp4"), movie(0)).unwrap();
        std::fs::write(dir.join("virtual0_2025-01-01_00-00-10.mp4"), movie(2500)).unwrap();
        assert_eq!(
            prune_frameless(&dir, "virtual0", &pre),
            [
                "virtual0_2025-01-01_00-00-04.mp4",
                "virtual0_2025-01-01_00-00-06.mp4",
                "virtual0_2025-01-01_00-00-08.mp4"
            ]
        );
        let kept: Vec<String> = session_files(&dir, "virtual0", &pre).into_iter().map(|f| f.0).collect();
        assert_eq!(kept, ["virtual0_2025-01-01_00-00-10.mp4"]);
        assert_eq!(segment_name("virtual0", std::time::UNIX_EPOCH), "virtual0_1970-01-01_00-00-00.mp4");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
