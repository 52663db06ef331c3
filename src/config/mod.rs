//! Configuration: the Python service's YAML format, read unchanged, plus the keys we add (docs/configuration.md).
//!
//! Every section is a plain serde struct whose `Default` is the Python *code* default (what the Python code used when
//! a key was absent), with one
//! deliberate exception: `camera.auto_start_streams` defaults to true. Loading (search order, YAML, environment
//! overrides, validation, unknown-key warnings) lives in [`load`]; this file only describes the shape.

pub mod external;
pub mod load;
pub mod schema;
pub mod secret;
pub mod validate;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use external::{ExternalCameraConfig, ExternalDiscoveryConfig};
pub use load::{load, ConfigError, LoadOptions, Loaded};
pub use secret::{Secret, REDACTED};

/// The complete effective configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub mediamtx: MediaMtxConfig,
    pub camera: CameraConfig,
    /// Scanning the network for RTSP streams (IP cameras).
    pub external_discovery: ExternalDiscoveryConfig,
    pub logging: LoggingConfig,
    pub recording: RecordingConfig,
    pub snapshots: SnapshotsConfig,
    pub ffmpeg: FfmpegConfig,
    pub notifications: NotificationsConfig,
    pub performance: PerformanceConfig,
    pub security: SecurityConfig,
    /// Top-level health port (Python `health_port`); overrides `security.health.port` when set.
    pub health_port: Option<u16>,
    /// Where the daemon keeps its own state (JWT secret, retention policy, thresholds).
    pub state_dir: PathBuf,
    /// Dotted keys set by the config file or an environment variable (not by a default). Some behaviour depends on
    /// presence, e.g. `recording.segment_duration` wins over `rotation_minutes` only when present.
    #[serde(skip)]
    pub present: BTreeSet<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            mediamtx: MediaMtxConfig::default(),
            camera: CameraConfig::default(),
            external_discovery: ExternalDiscoveryConfig::default(),
            logging: LoggingConfig::default(),
            recording: RecordingConfig::default(),
            snapshots: SnapshotsConfig::default(),
            ffmpeg: FfmpegConfig::default(),
            notifications: NotificationsConfig::default(),
            performance: PerformanceConfig::default(),
            security: SecurityConfig::default(),
            health_port: None,
            state_dir: PathBuf::from("/var/lib/camera-service/state"),
            present: BTreeSet::new(),
        }
    }
}

impl Config {
    /// True when the config file or an environment variable set this dotted key.
    pub fn is_present(&self, key: &str) -> bool {
        self.present.contains(key)
    }

    /// The port of the health/metrics/download HTTP server.
    pub fn health_port(&self) -> u16 {
        self.health_port.unwrap_or(self.security.health.port)
    }

    /// Recording segment length in seconds: `recording.segment_duration` when present, else `rotation_minutes`.
    pub fn segment_seconds(&self) -> u64 {
        if self.is_present("recording.segment_duration") {
            self.recording.segment_duration
        } else {
            self.recording.rotation_minutes * 60
        }
    }

    /// The effective configuration as YAML with every secret redacted: the JWT secret, and the password of any
    /// URL (`--check-config` prints this).
    pub fn to_redacted_yaml(&self) -> Result<String, serde_norway::Error> {
        let mut tree = serde_norway::to_value(self)?;
        secret::redact_urls(&mut tree);
        serde_norway::to_string(&tree)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub websocket_path: String,
    pub max_connections: u32,
    /// Largest accepted WebSocket message, bytes (Python: 1 MiB hard-coded).
    pub max_message_size: usize,
    /// Largest accepted WebSocket frame, bytes.
    pub max_frame_size: usize,
    /// Seconds between server pings on an idle connection.
    pub ping_interval: f64,
    /// Seconds to wait for a pong before dropping the connection.
    pub ping_timeout: f64,
    /// Seconds a WebSocket client has to authenticate after connecting; then it is closed with 1008.
    pub auth_timeout: f64,
    /// Seconds the whole graceful shutdown may take before remaining children are killed.
    pub shutdown_timeout: f64,
    /// WebSocket worker threads; 0 = one per CPU (at most 4).
    pub worker_threads: usize,
    /// Serve the built-in web console at `/` on the WebSocket port.
    pub web_ui: bool,
    /// Highest frame rate of a live MJPEG view (`/live/<camera>.mjpg`); a camera slower than this keeps its rate.
    pub live_max_fps: u32,
    /// Live MJPEG viewers of one camera at once; one more gets 503.
    pub live_max_viewers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "0.0.0.0".into(),
            port: 8002,
            websocket_path: "/ws".into(),
            max_connections: 100,
            max_message_size: 1024 * 1024,
            max_frame_size: 1024 * 1024,
            ping_interval: 30.0,
            ping_timeout: 10.0,
            auth_timeout: 30.0,
            shutdown_timeout: 30.0,
            worker_threads: 0,
            web_ui: true,
            live_max_fps: 15,
            live_max_viewers: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MediaMtxConfig {
    /// When false the daemon never talks to MediaMTX and nothing reports it as a failure.
    pub enabled: bool,
    pub host: String,
    /// Host put into client stream URLs; unset = the client's Host header, else `host`.
    pub public_host: Option<String>,
    pub api_port: u16,
    pub rtsp_port: u16,
    pub webrtc_port: u16,
    pub hls_port: u16,
    pub config_path: String,
    pub recordings_path: PathBuf,
    pub snapshots_path: PathBuf,
    /// Where stream publishers keep each camera's latest JPEG frame; unset = `<snapshots_path>/.live`. A tmpfs folder
    /// here spares flash storage those writes.
    pub live_frames_path: Option<PathBuf>,
    /// Seconds per MediaMTX HTTP request.
    pub api_timeout: f64,
    /// Encoder settings; the Python shipped file writes a mapping, the Python code a bare encoder string.
    pub codec: CodecConfig,
    /// Flat legacy codec keys (Python dataclass fields); the `codec` mapping wins when both are present.
    pub video_profile: Option<String>,
    pub video_level: Option<String>,
    pub pixel_format: Option<String>,
    pub bitrate: Option<String>,
    pub preset: Option<String>,
    pub run_on_demand_start_timeout: String,
    pub run_on_demand_close_after: String,
    /// Seconds a `start_streaming` viewing hold stays without anyone watching before it ends.
    pub viewing_close_after: f64,
    pub health_check_interval: f64,
    pub health_failure_threshold: u32,
    pub health_circuit_breaker_timeout: f64,
    pub health_max_backoff_interval: f64,
    pub health_recovery_confirmation_threshold: u32,
    pub backoff_base_multiplier: f64,
    pub backoff_jitter_range: Vec<f64>,
    pub process_termination_timeout: f64,
    pub process_kill_timeout: f64,
    pub stream_readiness: StreamReadinessConfig,
}

impl Default for MediaMtxConfig {
    fn default() -> Self {
        MediaMtxConfig {
            enabled: true,
            host: "localhost".into(),
            public_host: None,
            api_port: 9997,
            rtsp_port: 8554,
            webrtc_port: 8889,
            hls_port: 8888,
            config_path: "/etc/mediamtx/mediamtx.yml".into(),
            recordings_path: PathBuf::from("/opt/camera-service/recordings"),
            snapshots_path: PathBuf::from("/opt/camera-service/snapshots"),
            live_frames_path: None,
            api_timeout: 5.0,
            codec: CodecConfig::default(),
            video_profile: None,
            video_level: None,
            pixel_format: None,
            bitrate: None,
            preset: None,
            run_on_demand_start_timeout: "10s".into(),
            run_on_demand_close_after: "10s".into(),
            viewing_close_after: 300.0,
            health_check_interval: 30.0,
            health_failure_threshold: 10,
            health_circuit_breaker_timeout: 60.0,
            health_max_backoff_interval: 120.0,
            health_recovery_confirmation_threshold: 3,
            backoff_base_multiplier: 2.0,
            backoff_jitter_range: vec![0.8, 1.2],
            process_termination_timeout: 3.0,
            process_kill_timeout: 2.0,
            stream_readiness: StreamReadinessConfig::default(),
        }
    }
}

impl MediaMtxConfig {
    /// The codec settings actually used: each field from the `codec` mapping when the file/env set it there, else
    /// from the flat legacy key, else the default.
    pub fn effective_codec(&self, present: &BTreeSet<String>) -> CodecConfig {
        let pick = |field: &str, mapped: &String, flat: &Option<String>| -> String {
            if present.contains(&format!("mediamtx.codec.{field}")) {
                mapped.clone()
            } else {
                flat.clone().unwrap_or_else(|| mapped.clone())
            }
        };
        CodecConfig {
            encoder: self.codec.encoder.clone(),
            video_profile: pick("video_profile", &self.codec.video_profile, &self.video_profile),
            video_level: pick("video_level", &self.codec.video_level, &self.video_level),
            pixel_format: pick("pixel_format", &self.codec.pixel_format, &self.pixel_format),
            bitrate: pick("bitrate", &self.codec.bitrate, &self.bitrate),
            preset: pick("preset", &self.codec.preset, &self.preset),
        }
    }
}

/// `mediamtx.codec`: a mapping (Go/Python shipped file) or a bare encoder name (Python code default).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CodecConfig {
    pub encoder: String,
    pub video_profile: String,
    pub video_level: String,
    pub pixel_format: String,
    pub bitrate: String,
    pub preset: String,
}

impl Default for CodecConfig {
    fn default() -> Self {
        CodecConfig {
            encoder: "libx264".into(),
            video_profile: "baseline".into(),
            video_level: "3.0".into(),
            pixel_format: "yuv420p".into(),
            bitrate: "600k".into(),
            preset: "ultrafast".into(),
        }
    }
}

impl<'de> Deserialize<'de> for CodecConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(default)]
        struct Mapping {
            encoder: String,
            video_profile: String,
            video_level: String,
            pixel_format: String,
            bitrate: String,
            preset: String,
        }
        impl Default for Mapping {
            fn default() -> Self {
                let c = CodecConfig::default();
                Mapping {
                    encoder: c.encoder,
                    video_profile: c.video_profile,
                    video_level: c.video_level,
                    pixel_format: c.pixel_format,
                    bitrate: c.bitrate,
                    preset: c.preset,
                }
            }
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Encoder(String),
            Mapping(Mapping),
        }
        Ok(match Shape::deserialize(d)? {
            Shape::Encoder(encoder) => CodecConfig { encoder, ..CodecConfig::default() },
            Shape::Mapping(m) => CodecConfig {
                encoder: m.encoder,
                video_profile: m.video_profile,
                video_level: m.video_level,
                pixel_format: m.pixel_format,
                bitrate: m.bitrate,
                preset: m.preset,
            },
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StreamReadinessConfig {
    pub timeout: f64,
    pub retry_attempts: u32,
    pub retry_delay: f64,
    pub check_interval: f64,
    pub enable_progress_notifications: bool,
    pub graceful_fallback: bool,
}

impl Default for StreamReadinessConfig {
    fn default() -> Self {
        StreamReadinessConfig {
            timeout: 15.0,
            retry_attempts: 3,
            retry_delay: 2.0,
            check_interval: 0.5,
            enable_progress_notifications: true,
            graceful_fallback: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CameraConfig {
    pub poll_interval: f64,
    pub detection_timeout: f64,
    /// Two elements `[a, b]` with a < b = the inclusive range a..=b; any other list is an explicit set.
    pub device_range: Vec<u32>,
    pub enable_capability_detection: bool,
    pub auto_start_streams: bool,
    pub capability_timeout: f64,
    pub capability_retry_interval: f64,
    pub capability_max_retries: u32,
    /// Directory holding the `videoN` nodes (tests point it at a temp dir).
    pub device_dir: PathBuf,
    /// sysfs root, for USB serial numbers and bus paths.
    pub sysfs_dir: PathBuf,
    /// Virtual test-pattern cameras (`virtual0`, `virtual1`, ... in this order).
    #[serde(rename = "virtual")]
    pub virtual_cameras: Vec<VirtualCameraConfig>,
    /// External RTSP sources (IP cameras); more can be added at run time.
    pub external: Vec<ExternalCameraConfig>,
    /// Seconds between checks of each external source.
    pub external_probe_interval: f64,
    /// Seconds one check of an external source may take.
    pub external_probe_timeout: f64,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            poll_interval: 0.1,
            detection_timeout: 1.0,
            device_range: (0..10).collect(),
            enable_capability_detection: true,
            auto_start_streams: true,
            capability_timeout: 5.0,
            capability_retry_interval: 1.0,
            capability_max_retries: 3,
            device_dir: PathBuf::from("/dev"),
            sysfs_dir: PathBuf::from("/sys"),
            virtual_cameras: Vec::new(),
            external: Vec::new(),
            external_probe_interval: 5.0,
            external_probe_timeout: 3.0,
        }
    }
}

impl CameraConfig {
    /// The device numbers to watch: `[a, b]` with `a < b` is the range a..=b; any other list is taken as the numbers
    /// themselves (sorted, duplicates removed).
    pub fn device_numbers(&self) -> Vec<u32> {
        match self.device_range.as_slice() {
            [a, b] if a < b => (*a..=*b).collect(),
            other => {
                let mut v = other.to_vec();
                v.sort_unstable();
                v.dedup();
                v
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VirtualCameraConfig {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Any ffmpeg `lavfi` video source, e.g. `testsrc2` or `smptebars`.
    pub pattern: String,
}

impl Default for VirtualCameraConfig {
    fn default() -> Self {
        VirtualCameraConfig {
            name: "Test pattern".into(),
            width: 640,
            height: 480,
            fps: 15,
            pattern: "testsrc2".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LoggingConfig {
    pub level: String,
    pub format: String,
    pub console_enabled: bool,
    pub file_enabled: bool,
    pub file_path: PathBuf,
    /// Bytes; the Python size syntax (`10MB`, `1.5GB`) is accepted too.
    pub max_file_size: ByteSize,
    pub backup_count: u32,
    /// `text` (default) or `json` (the Python production format).
    pub output_format: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "INFO".into(),
            format: "%(asctime)s - %(name)s - %(levelname)s - %(message)s".into(),
            console_enabled: true,
            file_enabled: false,
            file_path: PathBuf::from("/var/log/camera-service/camera-service.log"),
            max_file_size: ByteSize(10 * 1024 * 1024),
            backup_count: 5,
            output_format: "text".into(),
        }
    }
}

/// A byte count written as an integer or as the Python size syntax (`123`, `10MB`, `1.5GB`, 1024-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Option<ByteSize> {
        let t = s.trim().to_ascii_uppercase();
        let t = t.strip_suffix('B').unwrap_or(&t).trim_end();
        let (num, mult) = match t.chars().last()? {
            'K' => (&t[..t.len() - 1], 1u64 << 10),
            'M' => (&t[..t.len() - 1], 1 << 20),
            'G' => (&t[..t.len() - 1], 1 << 30),
            'T' => (&t[..t.len() - 1], 1 << 40),
            _ => (t, 1),
        };
        let n: f64 = num.trim().parse().ok()?;
        (n.is_finite() && n >= 0.0).then_some(ByteSize((n * mult as f64) as u64))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!("expected a size like 10485760 or \"10MB\", got {s:?}"))
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RecordingConfig {
    /// Informational only: the Python shipped files say false while recording works; it never gates the API.
    pub enabled: bool,
    pub auto_record: bool,
    pub format: String,
    pub quality: String,
    pub segment_duration: u64,
    pub max_segment_size: u64,
    pub auto_cleanup: bool,
    pub cleanup_interval: u64,
    pub max_age: u64,
    pub max_size: u64,
    pub max_duration: u64,
    pub cleanup_after_days: u64,
    pub rotation_minutes: u64,
    pub storage_warn_percent: u8,
    pub storage_block_percent: u8,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: false,
            auto_record: false,
            format: "fmp4".into(),
            quality: "medium".into(),
            segment_duration: 3600,
            max_segment_size: 524_288_000,
            auto_cleanup: true,
            cleanup_interval: 86_400,
            max_age: 604_800,
            max_size: 10_737_418_240,
            max_duration: 3600,
            cleanup_after_days: 30,
            rotation_minutes: 30,
            storage_warn_percent: 80,
            storage_block_percent: 90,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SnapshotsConfig {
    pub enabled: bool,
    pub format: String,
    pub quality: u8,
    pub max_width: u32,
    pub max_height: u32,
    pub auto_cleanup: bool,
    pub cleanup_interval: u64,
    pub max_age: u64,
    pub max_count: u64,
    pub cleanup_after_days: u64,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            enabled: true,
            format: "jpeg".into(),
            quality: 85,
            max_width: 1920,
            max_height: 1080,
            auto_cleanup: true,
            cleanup_interval: 3600,
            max_age: 86_400,
            max_count: 1000,
            cleanup_after_days: 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FfmpegConfig {
    pub snapshot: FfmpegStageConfig,
    pub recording: FfmpegStageConfig,
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        FfmpegConfig {
            snapshot: FfmpegStageConfig {
                process_creation_timeout: 5.0,
                execution_timeout: 8.0,
                internal_timeout: 5_000_000,
                retry_attempts: 2,
                retry_delay: 1.0,
            },
            recording: FfmpegStageConfig {
                process_creation_timeout: 10.0,
                execution_timeout: 15.0,
                internal_timeout: 10_000_000,
                retry_attempts: 3,
                retry_delay: 2.0,
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FfmpegStageConfig {
    pub process_creation_timeout: f64,
    pub execution_timeout: f64,
    /// Microseconds, passed as ffmpeg `-timeout` on RTSP inputs.
    pub internal_timeout: u64,
    pub retry_attempts: u32,
    pub retry_delay: f64,
}

impl Default for FfmpegStageConfig {
    fn default() -> Self {
        FfmpegConfig::default().snapshot
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct NotificationsConfig {
    pub websocket: WsNotificationsConfig,
    pub real_time: RealTimeConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct WsNotificationsConfig {
    /// Seconds a message may wait to be written before the client is considered stuck.
    pub delivery_timeout: f64,
    pub retry_attempts: u32,
    pub retry_delay: f64,
    /// Per-connection outbound queue bound; a client that falls this far behind is disconnected.
    pub max_queue_size: usize,
    pub cleanup_interval: f64,
}

impl Default for WsNotificationsConfig {
    fn default() -> Self {
        WsNotificationsConfig {
            delivery_timeout: 5.0,
            retry_attempts: 3,
            retry_delay: 1.0,
            max_queue_size: 1000,
            cleanup_interval: 30.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RealTimeConfig {
    pub camera_status_interval: f64,
    pub recording_progress_interval: f64,
    pub connection_health_check: f64,
}

impl Default for RealTimeConfig {
    fn default() -> Self {
        RealTimeConfig { camera_status_interval: 1.0, recording_progress_interval: 0.5, connection_health_check: 10.0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct PerformanceConfig {
    pub response_time_targets: ResponseTimeTargets,
    pub snapshot_tiers: SnapshotTiersConfig,
    pub optimization: OptimizationConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ResponseTimeTargets {
    pub snapshot_capture: f64,
    pub recording_start: f64,
    pub recording_stop: f64,
    pub file_listing: f64,
}

impl Default for ResponseTimeTargets {
    fn default() -> Self {
        ResponseTimeTargets { snapshot_capture: 2.0, recording_start: 2.0, recording_stop: 2.0, file_listing: 1.0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SnapshotTiersConfig {
    pub tier1_usb_direct_timeout: f64,
    pub tier2_rtsp_ready_check_timeout: f64,
    pub tier3_activation_timeout: f64,
    pub tier3_activation_trigger_timeout: f64,
    pub total_operation_timeout: f64,
    pub immediate_response_threshold: f64,
    pub acceptable_response_threshold: f64,
    pub slow_response_threshold: f64,
}

impl Default for SnapshotTiersConfig {
    fn default() -> Self {
        SnapshotTiersConfig {
            tier1_usb_direct_timeout: 2.0,
            tier2_rtsp_ready_check_timeout: 1.0,
            tier3_activation_timeout: 3.0,
            tier3_activation_trigger_timeout: 1.0,
            total_operation_timeout: 10.0,
            immediate_response_threshold: 0.5,
            acceptable_response_threshold: 2.0,
            slow_response_threshold: 5.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OptimizationConfig {
    pub enable_caching: bool,
    pub cache_ttl: u64,
    /// Bound on concurrent slow operations (snapshots, ffprobe) run off the connection workers.
    pub max_concurrent_operations: usize,
    pub connection_pool_size: usize,
}

impl Default for OptimizationConfig {
    fn default() -> Self {
        OptimizationConfig {
            enable_caching: true,
            cache_ttl: 300,
            max_concurrent_operations: 5,
            connection_pool_size: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SecurityConfig {
    pub jwt: JwtConfig,
    pub api_keys: ApiKeysConfig,
    pub rate_limiting: RateLimitConfig,
    pub ssl: SslConfig,
    pub health: HealthServerConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JwtConfig {
    /// Overridden by `CAMERA_SERVICE_JWT_SECRET`; unset = `<state_dir>/jwt_secret` (generated on first start).
    /// Printed and logged only as `<redacted>`.
    pub secret_key: Option<Secret>,
    pub expiry_hours: u64,
    pub algorithm: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig { secret_key: None, expiry_hours: 24, algorithm: "HS256".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ApiKeysConfig {
    /// Overridden by `CAMERA_SERVICE_API_KEYS_PATH`.
    pub storage_file: PathBuf,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        ApiKeysConfig { storage_file: PathBuf::from("/opt/camera-service/keys/api_keys.json") }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Requests per connection per 60 s window; overridden by `CAMERA_SERVICE_RATE_RPM`.
    pub requests_per_minute: u64,
    pub max_connections: Option<u32>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { requests_per_minute: 120, max_connections: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SslConfig {
    /// TLS is left to a reverse proxy; these keys are accepted so Python files load.
    pub enabled: bool,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HealthServerConfig {
    pub port: u16,
    pub bind_address: String,
}

impl Default for HealthServerConfig {
    fn default() -> Self {
        HealthServerConfig { port: 8003, bind_address: "0.0.0.0".into() }
    }
}
