//! `take_snapshot`: tiered capture with one overall deadline.
//!
//! Tiers, fastest first for the camera's state: (1) one frame from its MediaMTX stream when the path is ready (the
//! device is held by the publisher; a JPEG comes from the camera's warm reader, `grabber`, unless caching is off);
//! (2) direct capture (V4L2 device, or the lavfi source of a virtual camera); (3) activate the on-demand path and
//! grab (the RTSP read itself starts the publisher). Each tier gets `min(tier timeout, time left)`. The file is
//! written to a hidden temp name and published under a name that never overwrites an existing file.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};
use serde::Deserialize;
use serde_json::{json, Value};

use super::process::Ffmpeg;
use super::{segments, Shared};
use crate::camera::{Camera, CameraStatus};
use crate::error::{Error, Result};
use crate::files::Thresholds;
use crate::rpc::params::{Int, NonEmpty};
use crate::util::timefmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    fn ext(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        }
    }

    /// Extensions accepted as already matching this format.
    fn accepts_ext(self, ext: &str) -> bool {
        match self {
            ImageFormat::Jpeg => ext == "jpg" || ext == "jpeg",
            ImageFormat::Png => ext == "png",
        }
    }
}

/// `take_snapshot` params as the client sends them.
#[derive(Debug, Deserialize)]
pub struct SnapshotParams {
    device: NonEmpty,
    format: Option<String>,
    quality: Option<Int<1, 100>>,
    filename: Option<String>,
}

impl SnapshotParams {
    /// The camera id as the client wrote it.
    pub fn device(&self) -> &str {
        &self.device
    }
}

/// Validated `take_snapshot` params.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub device: String,
    pub format: ImageFormat,
    pub quality: u8,
    pub filename: Option<String>,
}

impl Request {
    /// `default_quality` is `snapshots.quality` (85 unless configured, the Python API default).
    pub fn new(p: SnapshotParams, default_quality: u8) -> Result<Request> {
        let format = match p.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("jpg") | Some("jpeg") => ImageFormat::Jpeg,
            Some("png") => ImageFormat::Png,
            Some(other) => return Err(Error::invalid_params(format!("format must be jpg, jpeg or png, got {other}"))),
        };
        let quality = p.quality.map_or(default_quality, |q| q.0 as u8);
        let filename = p.filename.as_deref().map(|n| normalise_name(n, format)).transpose()?;
        Ok(Request { device: p.device.0, format, quality, filename })
    }
}

pub use crate::formats::image::qscale;

/// A client-chosen name must be a bare file name (never a path that escapes the snapshots directory); the extension
/// is made to match the format.
pub fn normalise_name(name: &str, format: ImageFormat) -> Result<String> {
    let bad = name.is_empty()
        || name.len() > 200
        || name.contains(['/', '\\', '\0'])
        || name.contains("..")
        || name.starts_with('.')
        || name.chars().any(char::is_control);
    if bad {
        return Err(Error::invalid_params("filename must be a plain file name"));
    }
    let has_ext = name.rsplit_once('.').is_some_and(|(_, e)| format.accepts_ext(&e.to_ascii_lowercase()));
    Ok(if has_ext { name.to_string() } else { format!("{name}.{}", format.ext()) })
}

/// `<path>_snapshot_YYYY-MM-DD_HH-MM-SS.<ext>` in UTC.
pub fn default_name(path_name: &str, format: ImageFormat, t: SystemTime) -> String {
    format!("{path_name}_snapshot_{}.{}", timefmt::file_stamp(t), format.ext())
}

/// Bounds concurrent captures (`max_concurrent_operations`) and serialises captures of one camera.
pub struct Gate {
    max: usize,
    state: Mutex<(usize, HashSet<String>)>,
    cv: Condvar,
}

pub struct Permit<'a> {
    gate: &'a Gate,
    device: String,
}

impl Gate {
    pub fn new(max: usize) -> Gate {
        Gate { max: max.max(1), state: Mutex::new((0, HashSet::new())), cv: Condvar::new() }
    }

    /// Wait for a free slot and for the camera to be idle, until `deadline`.
    pub fn acquire(&self, device: &str, deadline: Instant) -> Option<Permit<'_>> {
        let mut st = self.state.lock();
        while st.0 >= self.max || st.1.contains(device) {
            if self.cv.wait_until(&mut st, deadline).timed_out() && (st.0 >= self.max || st.1.contains(device)) {
                return None;
            }
        }
        st.0 += 1;
        st.1.insert(device.to_string());
        Some(Permit { gate: self, device: device.to_string() })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut st = self.gate.state.lock();
        st.0 -= 1;
        st.1.remove(&self.device);
        drop(st);
        self.gate.cv.notify_all();
    }
}

/// A live frame older than this is stale (its publisher is gone or its output stopped): the other tiers run. The
/// publisher replaces it every 0.5 s.
const LIVE_FRAME_MAX_AGE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tier {
    /// The latest frame our publisher keeps in its live frame file; counts as tier 1.
    LiveFrame,
    StreamReady,
    /// A frame kept by the camera's warm stream reader (`grabber`); counts as tier 1.
    StreamWarm,
    Direct,
    Activate,
}

impl Tier {
    fn number(self) -> u8 {
        match self {
            Tier::LiveFrame | Tier::StreamReady | Tier::StreamWarm => 1,
            Tier::Direct => 2,
            Tier::Activate => 3,
        }
    }
    fn method(self, camera: &Camera) -> &'static str {
        match self {
            Tier::LiveFrame => "publisher_frame",
            Tier::StreamReady => "rtsp_ready",
            Tier::StreamWarm => "rtsp_warm_reader",
            Tier::Direct if camera.is_virtual => "lavfi_direct",
            Tier::Direct if camera.external.is_some() => "rtsp_direct",
            Tier::Direct => "v4l2_direct",
            Tier::Activate => "rtsp_activation",
        }
    }
}

/// Refuse at the critical threshold (-1010); log at the warning threshold.
pub fn storage_guard(dir: &Path, t: Thresholds) -> Result<()> {
    let Ok(u) = crate::files::disk_usage(dir) else {
        return Ok(());
    };
    if u.used_percent >= f64::from(t.critical) {
        return Err(Error::StorageCritical(format!("{:.1}% used (critical at {}%)", u.used_percent, t.critical)));
    }
    if u.used_percent >= f64::from(t.warning) {
        log::warn!("storage {:.1}% used on {} (warning at {}%)", u.used_percent, dir.display(), t.warning);
    }
    Ok(())
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

pub fn take(shared: &Shared, req: &Request) -> Result<Value> {
    let started = Instant::now();
    let now = SystemTime::now();
    let camera = shared.cameras.get(&req.device)?;
    let dir = shared.config.mediamtx.snapshots_path.clone();
    std::fs::create_dir_all(&dir).map_err(|e| Error::internal(format!("snapshots dir {}: {e}", dir.display())))?;
    storage_guard(&dir, (shared.thresholds)())?;
    let base = req.filename.clone().unwrap_or_else(|| default_name(&camera.path_name, req.format, now));
    let failed = |error: String| {
        // The reason may quote an ffmpeg line naming an IP camera's URL: never with its password.
        let error = crate::util::redact::text(&error).into_owned();
        json!({"device": camera.device, "filename": base, "status": "FAILED", "timestamp": timefmt::rfc3339(now),
               "file_size": 0, "file_path": "", "error": error,
               "capture_time_ms": started.elapsed().as_millis() as u64})
    };
    let deadline = started + secs(shared.config.performance.snapshot_tiers.total_operation_timeout);
    let Some(_permit) = shared.gate.acquire(&camera.device, deadline) else {
        return Ok(failed(format!("snapshot capacity busy for {} (deadline reached)", camera.path_name)));
    };
    if camera.status != CameraStatus::Connected {
        return Ok(failed(format!("Camera {} is {}", camera.device, camera.status.as_str())));
    }
    let tmp = dir.join(format!(".{base}.{}.part", crate::util::ids::short_id()));
    let tier = match capture(shared, &camera, req, &tmp, deadline) {
        Ok(t) => t,
        Err(why) => {
            let _ = std::fs::remove_file(&tmp);
            let took = started.elapsed().as_secs_f64();
            return Ok(failed(format!(
                "All snapshot capture methods failed for {} after {took:.2}s: {why}",
                camera.path_name
            )));
        }
    };
    let (filename, path) = match publish(&dir, &base, &tmp) {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Ok(failed(format!("cannot store snapshot: {e}")));
        }
    };
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (w, h) = std::fs::File::open(&path)
        .and_then(crate::formats::image::read_dimensions)
        .map_or((Value::Null, Value::Null), |(w, h)| (w.into(), h.into()));
    Ok(json!({
        "device": camera.device, "filename": filename, "status": "completed", "timestamp": timefmt::rfc3339(now),
        "file_size": size, "file_path": path.to_string_lossy(), "tier_used": tier.number(),
        "capture_method": tier.method(&camera), "capture_time_ms": started.elapsed().as_millis() as u64,
        "width": w, "height": h,
    }))
}

/// The tiers to try, in order, for the camera's current state.
fn plan(shared: &Shared, camera: &Camera, req: &Request) -> Vec<Tier> {
    // The camera's reader holds it (a V4L2 device opens once): take its frame, the device itself only last (for a
    // reader that ended meanwhile). A live view's reader serves JPEGs; while a recording reads the device its frames
    // are the only ones to be had, so a PNG is made from one too.
    let live_jpeg = req.format == ImageFormat::Jpeg && shared.grabbers.is_live(&camera.device);
    if live_jpeg || shared.grabbers.is_fed(&camera.device) {
        return vec![Tier::StreamWarm, Tier::Direct];
    }
    let mtx = &shared.mediamtx;
    if !(mtx.enabled() && mtx.available()) {
        return vec![Tier::Direct];
    }
    let ready = mtx.path_metrics(&camera.path_name).is_some_and(|m| m.ready);
    let mut tiers = Vec::with_capacity(3);
    if ready && fresh_live_frame(shared, camera).is_some() {
        tiers.push(Tier::LiveFrame);
    }
    if ready && shared.grabbers.enabled() && req.format == ImageFormat::Jpeg {
        tiers.extend([Tier::StreamWarm, Tier::Direct]);
    } else if ready {
        tiers.extend([Tier::StreamReady, Tier::Direct]);
    } else if camera.external.is_some() {
        // An IP camera is read through MediaMTX first (its on-demand source is one connection to the camera,
        // shared with every viewer), and directly only when that fails.
        tiers.extend([Tier::Activate, Tier::Direct]);
    } else {
        tiers.extend([Tier::Direct, Tier::Activate]);
    }
    tiers
}

/// The camera publisher's live frame file, when it was replaced within [`LIVE_FRAME_MAX_AGE`].
fn fresh_live_frame(shared: &Shared, camera: &Camera) -> Option<PathBuf> {
    let path = crate::mediamtx::pathconf::live_frame_path(&shared.config, &camera.path_name);
    let meta = std::fs::metadata(&path).ok()?;
    let age = SystemTime::now().duration_since(meta.modified().ok()?).unwrap_or_default();
    (meta.len() > 0 && age <= LIVE_FRAME_MAX_AGE).then_some(path)
}

/// Write the publisher's latest frame to `tmp`: copied as it is for a JPEG of the default quality (the quality it
/// was encoded with), re-encoded by ffmpeg from that still image otherwise.
fn live_frame(shared: &Shared, camera: &Camera, req: &Request, tmp: &Path, limit: Duration) -> Result<(), String> {
    let src = fresh_live_frame(shared, camera).ok_or("no fresh frame")?;
    if req.format == ImageFormat::Jpeg && qscale(req.quality) == qscale(shared.config.snapshots.quality) {
        let n = std::fs::copy(&src, tmp).map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
        return if n > 0 { Ok(()) } else { Err("empty frame".into()) };
    }
    let input = vec!["-i".to_string(), src.to_string_lossy().into_owned()];
    run_capture(&shared.config, input, req, tmp, limit)
}

/// Run the tiers until one writes a non-empty file to `tmp`; Err lists why each failed.
fn capture(shared: &Shared, camera: &Camera, req: &Request, tmp: &Path, deadline: Instant) -> Result<Tier, String> {
    let cfg = &shared.config;
    let tiers_cfg = &cfg.performance.snapshot_tiers;
    let exec = secs(cfg.ffmpeg.snapshot.execution_timeout);
    let mut errors = Vec::new();
    for tier in plan(shared, camera, req) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            errors.push(format!("{}: deadline reached", tier.method(camera)));
            break;
        }
        let (input, limit) = match tier {
            Tier::LiveFrame => match live_frame(shared, camera, req, tmp, exec.min(left)) {
                Ok(()) => return Ok(tier),
                Err(e) => {
                    log::info!("snapshot of {} via {} failed: {e}", camera.path_name, tier.method(camera));
                    errors.push(format!("{}: {e}", tier.method(camera)));
                    continue;
                }
            },
            Tier::StreamWarm => match warm_frame(shared, camera, req, tmp, Instant::now() + exec.min(left)) {
                Ok(()) => return Ok(tier),
                Err(e) => {
                    log::info!("snapshot of {} via {} failed: {e}", camera.path_name, tier.method(camera));
                    errors.push(format!("{}: {e}", tier.method(camera)));
                    continue;
                }
            },
            Tier::StreamReady => (rtsp_input(shared, camera), exec),
            Tier::Direct if camera.is_virtual || camera.external.is_some() => {
                (segments::direct_input(cfg, camera), exec)
            }
            Tier::Direct => (segments::direct_input(cfg, camera), secs(tiers_cfg.tier1_usb_direct_timeout)),
            Tier::Activate => {
                if let Err(e) = shared.mediamtx.ensure_path(&camera.path_name) {
                    errors.push(format!("{}: {e}", tier.method(camera)));
                    continue;
                }
                let t = tiers_cfg.tier3_activation_trigger_timeout + tiers_cfg.tier3_activation_timeout;
                (rtsp_input(shared, camera), secs(t))
            }
        };
        // A lavfi source is not paced here: one frame is wanted as fast as possible.
        let input: Vec<String> = input.into_iter().filter(|a| a != "-re").collect();
        match run_capture(cfg, input, req, tmp, limit.min(left)) {
            Ok(()) => return Ok(tier),
            Err(e) => {
                log::info!("snapshot of {} via {} failed: {e}", camera.path_name, tier.method(camera));
                errors.push(format!("{}: {e}", tier.method(camera)));
            }
        }
    }
    Err(errors.join("; "))
}

/// Input options for one frame from an RTSP stream. The stream's parameters come with the SDP, so a short probe
/// (200 ms instead of ffmpeg's 5 s budget) and no input buffering are enough: measured 2.05 s → 1.24 s per
/// snapshot against a 15 fps, 1 key frame/s H.264 stream; what remains is mostly the wait for a key frame.
fn rtsp_input(shared: &Shared, camera: &Camera) -> Vec<String> {
    let timeout_us = shared.config.ffmpeg.snapshot.internal_timeout.to_string();
    let url = segments::rtsp_url(&shared.config, &camera.path_name);
    let opts = ["-rtsp_transport", "tcp", "-timeout", &timeout_us, "-fflags", "nobuffer", "-flags", "low_delay"];
    opts.iter().chain(&["-analyzeduration", "200000", "-i", &url]).map(|s| s.to_string()).collect()
}

/// Write a fresh frame of the camera's warm stream reader (started on first use) to `tmp`; a PNG is re-encoded
/// from that JPEG frame.
fn warm_frame(shared: &Shared, camera: &Camera, req: &Request, tmp: &Path, deadline: Instant) -> Result<(), String> {
    let input = rtsp_input(shared, camera);
    let frame = shared.grabbers.frame(&camera.device, &input, qscale(req.quality), deadline)?;
    if req.format == ImageFormat::Jpeg {
        return std::fs::write(tmp, &*frame.data).map_err(|e| format!("cannot write {}: {e}", tmp.display()));
    }
    let src = tmp.with_extension("src.jpg");
    std::fs::write(&src, &*frame.data).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
    let input = vec!["-i".to_string(), src.to_string_lossy().into_owned()];
    let made = run_capture(&shared.config, input, req, tmp, deadline.saturating_duration_since(Instant::now()));
    let _ = std::fs::remove_file(&src);
    made
}

fn run_capture(
    cfg: &crate::config::Config,
    input: Vec<String>,
    req: &Request,
    tmp: &Path,
    limit: Duration,
) -> Result<(), String> {
    let mut a: Vec<String> = ["-hide_banner", "-loglevel", "error", "-nostdin"].iter().map(|s| s.to_string()).collect();
    a.extend(input);
    a.extend(["-frames:v", "1", "-an"].iter().map(|s| s.to_string()));
    match req.format {
        ImageFormat::Jpeg => a.extend(["-c:v".into(), "mjpeg".into(), "-q:v".into(), qscale(req.quality).to_string()]),
        ImageFormat::Png => a.extend(["-c:v".to_string(), "png".to_string()]),
    }
    // `-f image2` because the temp name has no image extension.
    a.extend(["-f", "image2", "-update", "1", "-y"].iter().map(|s| s.to_string()));
    a.push(tmp.to_string_lossy().into_owned());
    let p = Ffmpeg::spawn("snapshot", &a, &[]).map_err(|e| format!("cannot start ffmpeg: {e}"))?;
    let grace = secs(cfg.mediamtx.process_termination_timeout).min(Duration::from_secs(1));
    let out = p.finish(limit, grace, secs(cfg.mediamtx.process_kill_timeout));
    let size = std::fs::metadata(tmp).map(|m| m.len()).unwrap_or(0);
    if out.success() && size > 0 {
        return Ok(());
    }
    let last = out.stderr.lines().last().unwrap_or("").to_string();
    Err(if out.timed_out {
        format!("timed out after {:.1}s", limit.as_secs_f64())
    } else if size == 0 && out.success() {
        "no frame written".into()
    } else {
        format!("{} {last}", out.status.map(super::process::describe).unwrap_or_default()).trim().to_string()
    })
}

/// `name`, or `stem_1.ext`, `stem_2.ext`… — the first that does not exist. Hard links never overwrite; where the
/// filesystem has none (vfat), rename after an existence check.
fn publish(dir: &Path, base: &str, tmp: &Path) -> io::Result<(String, PathBuf)> {
    let (stem, ext) = base.rsplit_once('.').unwrap_or((base, ""));
    for n in 0..10_000u32 {
        let name = if n == 0 { base.to_string() } else { format!("{stem}_{n}.{ext}") };
        let path = dir.join(&name);
        match std::fs::hard_link(tmp, &path) {
            Ok(()) => {
                let _ = std::fs::remove_file(tmp);
                return Ok((name, path));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if !path.exists() => {
                std::fs::rename(tmp, &path)?;
                return Ok((name, path));
            }
            Err(_) => continue,
        }
    }
    Err(io::Error::other("no free file name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_maps_to_qscale() {
        assert_eq!(qscale(100), 2);
        assert_eq!(qscale(1), 31);
        assert_eq!(qscale(85), 6);
        assert_eq!(qscale(50), 17);
    }

    /// Decoded as the dispatcher decodes them, then validated.
    fn parse(p: &Value, default_quality: u8) -> Result<Request> {
        Request::new(crate::rpc::params::decode(p)?, default_quality)
    }

    #[test]
    fn params_are_validated() {
        let r = parse(&json!({"device": "virtual0"}), 85).unwrap();
        assert_eq!((r.format, r.quality, r.filename), (ImageFormat::Jpeg, 85, None));
        let r = parse(&json!({"device": "virtual0", "format": "png", "filename": "a"}), 85).unwrap();
        assert_eq!(r.filename.as_deref(), Some("a.png"));
        let r = parse(&json!({"device": "v", "format": "jpeg", "filename": "x.JPEG"}), 85).unwrap();
        assert_eq!(r.filename.as_deref(), Some("x.JPEG"));
        let r = parse(&json!({"device": "v", "filename": "x.png"}), 85).unwrap();
        assert_eq!(r.filename.as_deref(), Some("x.png.jpg"));
        for bad in [
            json!({"device": "v", "format": "bmp"}),
            json!({"device": "v", "quality": 0}),
            json!({"device": "v", "quality": 101}),
            json!({"device": "v", "quality": 1.5}),
            json!({"device": "v", "filename": "../x"}),
            json!({"device": "v", "filename": "a/b"}),
            json!({"device": "v", "filename": ".hidden"}),
            json!({"device": "v", "filename": "a\u{0}b"}),
            json!({"device": "v", "filename": ""}),
            json!({"format": "jpg"}),
        ] {
            assert_eq!(parse(&bad, 85).unwrap_err().code(), -32602, "{bad}");
        }
    }

    #[test]
    fn publish_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("media-pub-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..3 {
            let tmp = dir.join(format!(".t{i}.part"));
            std::fs::write(&tmp, format!("{i}")).unwrap();
            publish(&dir, "a.jpg", &tmp).unwrap();
            assert!(!tmp.exists());
        }
        assert_eq!(std::fs::read_to_string(dir.join("a.jpg")).unwrap(), "0");
        assert_eq!(std::fs::read_to_string(dir.join("a_1.jpg")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(dir.join("a_2.jpg")).unwrap(), "2");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn gate_serialises_one_camera() {
        let g = Gate::new(2);
        let soon = Instant::now() + Duration::from_millis(50);
        let p = g.acquire("a", soon).unwrap();
        assert!(g.acquire("a", soon).is_none());
        let q = g.acquire("b", soon).unwrap();
        assert!(g.acquire("c", Instant::now() + Duration::from_millis(20)).is_none(), "bounded by max");
        drop(p);
        drop(q);
        assert!(g.acquire("a", Instant::now() + Duration::from_millis(20)).is_some());
    }
}
