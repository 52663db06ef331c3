//! One recording session: its request, its backend (our ffmpeg, or MediaMTX's recorder plus a keep-alive reader),
//! and the JSON it reports (api.md §3.8/§3.9/§8.1, decisions §7).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use serde_json::{json, Value};

use super::process::Ffmpeg;
use super::SessionInfo;
use crate::camera::Camera;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::rpc::params;
use crate::util::timefmt;

pub type Reply = Sender<Result<(Value, Value)>>;

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
    /// First present duration key wins (api.md §3.8); integers only; `recording.max_duration` bounds it only when
    /// the configuration sets it.
    pub fn parse(p: &Value, config: &Config) -> Result<StartRequest> {
        let device = params::required_str(p, "device")?.to_string();
        let keys: [(&str, i64, i64, u64); 4] = [
            ("duration", 1, i64::MAX, 1),
            ("duration_seconds", 1, 3600, 1),
            ("duration_minutes", 1, 1440, 60),
            ("duration_hours", 1, 24, 3600),
        ];
        let mut duration = None;
        for (key, min, max, unit) in keys {
            if let Some(v) = params::opt_int(p, key, min, max)? {
                duration = Some((v as u64).saturating_mul(unit));
                break;
            }
        }
        let max = config.recording.max_duration;
        if let Some(d) = duration {
            if config.is_present("recording.max_duration") && max > 0 && d > max {
                return Err(Error::invalid_params(format!("duration {d}s exceeds recording.max_duration {max}s")));
            }
        }
        let format = match params::opt_str(p, "format")? {
            None => "mp4".to_string(),
            Some(f @ ("mp4" | "fmp4")) => f.to_string(),
            Some(other) => return Err(Error::invalid_params(format!("format must be mp4 or fmp4, got {other}"))),
        };
        Ok(StartRequest { device, duration, format })
    }
}

/// What writes the files.
pub enum Backend {
    /// Our own ffmpeg with the segment muxer (virtual cameras, or MediaMTX disabled).
    Direct(Ffmpeg),
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
            Backend::Direct(p) => {
                let (status, killed) = p.stop(grace, kill_wait);
                (killed || status.is_none()).then(|| "recording process had to be killed".to_string())
            }
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
        note["error"] = e.into();
    }
    (result, note)
}

/// `get_recording_status` of a running session (api.md §8.1).
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
        let p = |v: Value| StartRequest::parse(&v, &c);
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
        assert!(StartRequest::parse(&v, &cfg_with_max(None)).is_ok(), "default max_duration is not enforced");
        assert_eq!(StartRequest::parse(&v, &cfg_with_max(Some(3600))).unwrap_err().code(), -32602);
        assert!(StartRequest::parse(&v, &cfg_with_max(Some(0))).is_ok(), "0 = unlimited");
    }
}
