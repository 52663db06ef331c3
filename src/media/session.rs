//! One recording session: its request, its backend (our ffmpeg, or MediaMTX's recorder plus a keep-alive reader),
//! and the JSON it reports.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use serde::Deserialize;
use serde_json::{json, Value};

use super::grabber::Feed;
use super::process::Ffmpeg;
use super::SessionInfo;
use crate::camera::Camera;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::rpc::params::{Deferred, Int, NonEmpty};
use crate::util::timefmt;

pub type Reply = Sender<Result<(Value, Value)>>;

/// `start_recording` params as the client sends them. The duration keys are checked only when used: the first one
/// present wins and the others are ignored, as the Python service does.
#[derive(Debug, Deserialize)]
pub struct StartParams {
    device: NonEmpty,
    duration: Option<Deferred<Int<1, { i64::MAX }>>>,
    duration_seconds: Option<Deferred<Int<1, 3600>>>,
    duration_minutes: Option<Deferred<Int<1, 1440>>>,
    duration_hours: Option<Deferred<Int<1, 24>>>,
    format: Option<String>,
}

/// Validated `start_recording` params.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    pub device: String,
    /// Seconds; None = until stopped.
    pub duration: Option<u64>,
    /// `mp4` or `fmp4` (both are fragmented MP4 on disk).
    pub format: String,
}

impl StartRequest {
    /// First present duration key wins; integers only; `recording.max_duration` bounds it only when the
    /// configuration sets it.
    pub fn new(p: StartParams, config: &Config) -> Result<StartRequest> {
        fn secs<const MIN: i64, const MAX: i64>(d: Deferred<Int<MIN, MAX>>, unit: u64) -> Result<u64> {
            Ok((d.get()?.0 as u64).saturating_mul(unit))
        }
        let duration = match (p.duration, p.duration_seconds, p.duration_minutes, p.duration_hours) {
            (Some(d), ..) => Some(secs(d, 1)?),
            (None, Some(d), ..) => Some(secs(d, 1)?),
            (None, None, Some(d), _) => Some(secs(d, 60)?),
            (None, None, None, Some(d)) => Some(secs(d, 3600)?),
            (None, None, None, None) => None,
        };
        let max = config.recording.max_duration;
        if let Some(d) = duration {
            if config.is_present("recording.max_duration") && max > 0 && d > max {
                return Err(Error::invalid_params(format!("duration {d}s exceeds recording.max_duration {max}s")));
            }
        }
        let format = match p.format {
            None => "mp4".to_string(),
            Some(f) if f == "mp4" || f == "fmp4" => f,
            Some(other) => return Err(Error::invalid_params(format!("format must be mp4 or fmp4, got {other}"))),
        };
        Ok(StartRequest { device: p.device.0, duration, format })
    }
}

/// A started writer: the recording ffmpeg (direct mode) or the keep-alive reader (MediaMTX mode), and in direct mode
/// of a V4L2 camera the recording's hold on the camera's reader place (its JPEG frames feed the live view and
/// snapshots). Fields drop in order: the process is killed and reaped before the feed lets another reader open the
/// device.
pub struct Writer {
    pub process: Ffmpeg,
    pub feed: Option<Feed>,
}

/// What writes the files.
pub enum Backend {
    /// Our own ffmpeg with the segment muxer (virtual cameras, or MediaMTX disabled).
    Direct(Writer),
    /// Direct mode while the start is prepared: the ffmpeg belongs to the preparing thread until it has opened its
    /// first segment.
    DirectStarting,
    /// MediaMTX's recorder; `keepalive` reads the path so the on-demand publisher stays up.
    Mtx { keepalive: Option<Ffmpeg>, restarts: u32, restart_at: Option<Instant>, not_ready_since: Option<Instant> },
}

pub struct Session {
    pub info: SessionInfo,
    pub camera: Arc<Camera>,
    pub started: Instant,
    /// Auto-stop instant for timed recordings.
    pub deadline: Option<Instant>,
    pub backend: Backend,
    /// Set while MediaMTX is being prepared: the start request's reply.
    pub starting: Option<Reply>,
    /// Stop requests that arrived while starting.
    pub pending_stops: Vec<Reply>,
    /// A failure seen while starting (e.g. unplug), acted on once the start completes.
    pub fail_after_start: Option<String>,
}

/// How a session ends.
pub enum Ending {
    Requested(Reply),
    Timer,
    Failed(String),
    Shutdown,
}

impl Session {
    /// Stop whatever writes the files so they are final. Returns a note when the stop was not clean.
    pub fn stop_backend(&mut self, config: &Config, mtx: &dyn super::StreamServer) -> Option<String> {
        let grace = Duration::from_secs_f64(config.mediamtx.process_termination_timeout.max(0.1));
        let kill_wait = Duration::from_secs_f64(config.mediamtx.process_kill_timeout.max(0.1));
        match &mut self.backend {
            Backend::Direct(w) => {
                let (status, killed) = w.process.stop(grace, kill_wait);
                // ffmpeg has let go of the device: the live view and snapshots may read it themselves again.
                w.feed = None;
                (killed || status.is_none()).then(|| "recording process had to be killed".to_string())
            }
            Backend::DirectStarting => None,
            Backend::Mtx { keepalive, .. } => {
                // record:false first: MediaMTX closes the segment; then the reader may go.
                let note = mtx.set_record(&self.info.path_name, false).err().map(|e| format!("record off: {e}"));
                if let Some(k) = keepalive.as_mut() {
                    k.stop(grace.min(Duration::from_secs(1)), kill_wait);
                }
                note
            }
        }
    }
}

/// `start_recording` result and the STARTED notification params.
pub fn started_json(info: &SessionInfo) -> (Value, Value) {
    let result = json!({
        "device": info.device, "session_id": info.session_id, "filename": info.filename, "status": "STARTED",
        "start_time": timefmt::rfc3339(info.start), "duration": info.duration, "format": info.format,
    });
    let note = json!({
        "device": info.device, "status": "STARTED", "filename": info.filename, "duration": info.duration,
        "session_id": info.session_id,
    });
    (result, note)
}

/// What a finished session reports: (stop result, notification params).
pub fn ended_json(info: &SessionInfo, elapsed: Duration, error: Option<&str>) -> (Value, Value) {
    let files = info.files();
    let filename = files.first().map(|f| f.0.clone()).unwrap_or_else(|| info.filename.clone());
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    let size: u64 = files.iter().map(|f| f.1).sum();
    let duration = elapsed.as_secs();
    let status = if error.is_some() { "FAILED" } else { "STOPPED" };
    let result = json!({
        "device": info.device, "session_id": info.session_id, "filename": filename, "status": status,
        "start_time": timefmt::rfc3339(info.start), "end_time": timefmt::now_rfc3339(), "duration": duration,
        "file_size": size, "files": names, "format": info.format,
    });
    let mut note = json!({
        "device": info.device, "status": status, "filename": filename, "duration": duration,
        "session_id": info.session_id, "files": names,
    });
    if let Some(e) = error {
        // An ffmpeg line may name an IP camera's URL: never with its password.
        note["error"] = crate::util::redact::text(e).into();
    }
    (result, note)
}

/// `get_recording_status` of a running session.
pub fn status_json(info: &SessionInfo) -> Value {
    let files: Vec<String> = info.files().into_iter().map(|f| f.0).collect();
    let elapsed = SystemTime::now().duration_since(info.start).unwrap_or_default().as_secs();
    json!({
        "device": info.device, "recording_id": info.session_id, "session_id": info.session_id,
        "filename": info.filename, "start_time": timefmt::rfc3339(info.start), "duration": info.duration,
        "elapsed_time": elapsed, "status": "RECORDING", "format": info.format, "files": files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decoded as the dispatcher decodes them, then validated.
    fn parse(p: &Value, config: &Config) -> Result<StartRequest> {
        StartRequest::new(crate::rpc::params::decode(p)?, config)
    }

    fn cfg_with_max(max: Option<u64>) -> Config {
        let mut c = Config::default();
        if let Some(m) = max {
            c.recording.max_duration = m;
            c.present.insert("recording.max_duration".into());
        }
        c
    }

    #[test]
    fn durations_first_present_wins() {
        let c = cfg_with_max(None);
        let p = |v: Value| parse(&v, &c);
        assert_eq!(p(json!({"device": "virtual0"})).unwrap().duration, None);
        assert_eq!(p(json!({"device": "v", "duration": 100000})).unwrap().duration, Some(100000));
        assert_eq!(p(json!({"device": "v", "duration_minutes": 2, "duration_hours": 99})).unwrap().duration, Some(120));
        assert_eq!(p(json!({"device": "v", "duration_hours": 24})).unwrap().duration, Some(86400));
        assert_eq!(p(json!({"device": "v", "format": "fmp4"})).unwrap().format, "fmp4");
        for bad in [
            json!({"device": "v", "duration": 0}),
            json!({"device": "v", "duration": 1.5}),
            json!({"device": "v", "duration": "10"}),
            json!({"device": "v", "duration_seconds": 3601}),
            json!({"device": "v", "duration_minutes": 1441}),
            json!({"device": "v", "duration_hours": 25}),
            json!({"device": "v", "format": "mkv"}),
            json!({"device": "v", "format": 4}),
            json!({"duration": 5}),
        ] {
            assert_eq!(p(bad.clone()).unwrap_err().code(), -32602, "{bad}");
        }
    }

    #[test]
    fn max_duration_only_when_configured() {
        let v = json!({"device": "v", "duration": 7200});
        assert!(parse(&v, &cfg_with_max(None)).is_ok(), "default max_duration is not enforced");
        assert_eq!(parse(&v, &cfg_with_max(Some(3600))).unwrap_err().code(), -32602);
        assert!(parse(&v, &cfg_with_max(Some(0))).is_ok(), "0 = unlimited");
    }
}
