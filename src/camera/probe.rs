//! Probing one device node: open, QUERYCAP, qualify as a video-capture node, enumerate formats / sizes / rates, and
//! read its identity from sysfs. Runs on the `camera-probe` thread so a slow or stuck driver never stalls the
//! registry; the registry bounds each probe by `camera.capability_timeout`.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::model::Format;
use super::model::FrameSize;
use super::sysfs;
use super::v4l2::{fourcc_text, Node, RawInterval, RawSize};
use crate::process::Shutdown;

/// Common sizes offered for stepwise/continuous frame sizes (record the range, choose ≤ 1080p).
const COMMON_SIZES: [(u32, u32); 10] = [
    (1920, 1080),
    (1280, 960),
    (1280, 720),
    (1024, 768),
    (800, 600),
    (640, 480),
    (352, 288),
    (320, 240),
    (176, 144),
    (160, 120),
];
/// The largest size we pick from a stepwise range.
const STEPWISE_LIMIT: (u32, u32) = (1920, 1080);
/// Common rates offered for stepwise/continuous frame intervals.
const COMMON_RATES: [f64; 9] = [60.0, 50.0, 30.0, 25.0, 24.0, 20.0, 15.0, 10.0, 5.0];

/// A video-capture node, as probed.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureInfo {
    pub driver: String,
    pub card: String,
    pub bus_info: String,
    pub formats: Vec<Format>,
    /// False when capability detection is switched off (`camera.enable_capability_detection: false`).
    pub enumerated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeError {
    /// EACCES / EPERM on open (udev may not have applied permissions yet).
    PermissionDenied,
    /// The node vanished while we probed it.
    Gone,
    /// Anything else: the node is listed as ERROR with this reason.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Probed {
    Capture(CaptureInfo),
    /// Not a video-capture node (e.g. the UVC metadata node): ignored.
    NotCapture,
}

/// The full answer for one node: the probe result plus what sysfs says about the device behind it.
#[derive(Debug, Clone)]
pub struct Report {
    pub result: Result<Probed, ProbeError>,
    pub usb: sysfs::UsbInfo,
}

/// A job for the prober; `token` comes back with the reply so the registry can match it.
pub struct Job {
    pub number: u32,
    pub path: PathBuf,
    pub token: u64,
    pub deadline: Instant,
}

pub struct Reply {
    pub number: u32,
    pub token: u64,
    pub report: Report,
}

/// Body of the `camera-probe` thread.
pub fn run(
    jobs: Receiver<Job>,
    replies: impl Fn(Reply),
    sysfs_dir: PathBuf,
    enumerate: bool,
    shutdown: Shutdown,
) -> Result<(), String> {
    loop {
        crossbeam_channel::select! {
            recv(jobs) -> job => match job {
                Ok(job) => {
                    let report = probe(&job.path, job.number, &sysfs_dir, enumerate, job.deadline);
                    replies(Reply { number: job.number, token: job.token, report });
                }
                Err(_) => return Ok(()),
            },
            recv(shutdown.channel()) -> _ => return Ok(()),
        }
    }
}

/// Sends replies to the registry as its message type.
pub fn reply_sender<M: Send + 'static>(tx: Sender<M>, wrap: fn(Reply) -> M) -> impl Fn(Reply) {
    move |r| {
        let _ = tx.send(wrap(r));
    }
}

pub fn probe(path: &Path, number: u32, sysfs_dir: &Path, enumerate: bool, deadline: Instant) -> Report {
    let result = probe_node(path, enumerate, deadline);
    Report { result, usb: sysfs::usb_info(sysfs_dir, number) }
}

fn probe_node(path: &Path, enumerate: bool, deadline: Instant) -> Result<Probed, ProbeError> {
    let node = Node::open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => ProbeError::PermissionDenied,
        Some(libc::ENOENT) => ProbeError::Gone,
        _ => ProbeError::Failed(format!("open failed: {e}")),
    })?;
    let caps = node.query_caps().map_err(|e| ProbeError::Failed(format!("VIDIOC_QUERYCAP failed: {e}")))?;
    let Some(buf_type) = caps.capture_type() else {
        return Ok(Probed::NotCapture);
    };
    let formats = if enumerate {
        read_formats(&node, buf_type, deadline).map_err(|e| ProbeError::Failed(format!("format enumeration: {e}")))?
    } else {
        Vec::new()
    };
    Ok(Probed::Capture(CaptureInfo {
        driver: caps.driver,
        card: caps.card,
        bus_info: caps.bus_info,
        formats,
        enumerated: enumerate,
    }))
}

fn read_formats(node: &Node, buf_type: u32, deadline: Instant) -> io::Result<Vec<Format>> {
    let mut out = Vec::new();
    for raw in node.formats(buf_type)? {
        let mut sizes = Vec::new();
        // A driver that cannot enumerate sizes still offers the format (ffmpeg negotiates a size itself).
        for (width, height) in expand_sizes(&node.frame_sizes(raw.pixelformat).unwrap_or_default()) {
            if Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "capability_timeout exceeded"));
            }
            let fps = rates(&node.frame_intervals(raw.pixelformat, width, height).unwrap_or_default());
            sizes.push(FrameSize { width, height, fps });
        }
        out.push(Format { fourcc: fourcc_text(raw.pixelformat), description: raw.description, sizes });
    }
    Ok(out)
}

/// Discrete sizes as reported; a stepwise/continuous range becomes the common sizes inside it plus the largest
/// step-aligned size within 1920x1080. Largest first.
pub fn expand_sizes(raw: &[RawSize]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for s in raw {
        match *s {
            RawSize::Discrete { width, height } if width > 0 && height > 0 => out.push((width, height)),
            RawSize::Discrete { .. } => {}
            RawSize::Stepwise { min_w, max_w, step_w, min_h, max_h, step_h } => {
                let fits = |w: u32, h: u32| {
                    (min_w..=max_w).contains(&w)
                        && (min_h..=max_h).contains(&h)
                        && (w - min_w) % step_w == 0
                        && (h - min_h) % step_h == 0
                };
                out.extend(COMMON_SIZES.iter().copied().filter(|&(w, h)| fits(w, h)));
                let w = max_w.min(STEPWISE_LIMIT.0);
                let h = max_h.min(STEPWISE_LIMIT.1);
                if w >= min_w && h >= min_h {
                    let w = min_w + (w - min_w) / step_w * step_w;
                    let h = min_h + (h - min_h) / step_h * step_h;
                    if w > 0 && h > 0 {
                        out.push((w, h));
                    }
                }
            }
        }
    }
    out.sort_unstable_by(|a, b| (u64::from(b.0) * u64::from(b.1), b.0).cmp(&(u64::from(a.0) * u64::from(a.1), a.0)));
    out.dedup();
    out
}

/// Frame rates (fps, 3 decimals) from intervals, highest first. A range yields its maximum plus common rates in it.
pub fn rates(raw: &[RawInterval]) -> Vec<f64> {
    let fps = |num: u32, den: u32| if num == 0 { None } else { Some(f64::from(den) / f64::from(num)) };
    let mut out = Vec::new();
    for iv in raw {
        match *iv {
            RawInterval::Discrete { num, den } => out.extend(fps(num, den)),
            RawInterval::Range { min_num, min_den, max_num, max_den } => {
                let (Some(hi), lo) = (fps(min_num, min_den), fps(max_num, max_den).unwrap_or(0.0)) else { continue };
                out.push(hi);
                out.extend(COMMON_RATES.iter().copied().filter(|r| *r <= hi + 1e-9 && *r >= lo - 1e-9));
            }
        }
    }
    let mut out: Vec<f64> = out.into_iter().filter(|f| *f > 0.0).map(|f| (f * 1000.0).round() / 1000.0).collect();
    out.sort_unstable_by(|a, b| b.total_cmp(a));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepwise_sizes_are_tolerated() {
        // `Size: Stepwise 16x16 - 4096x2160 with step 16/16`.
        let s = expand_sizes(&[RawSize::Stepwise {
            min_w: 16,
            max_w: 4096,
            step_w: 16,
            min_h: 16,
            max_h: 2160,
            step_h: 16,
        }]);
        assert_eq!(s[0], (1920, 1072)); // largest 16-aligned size within 1920x1080
        assert!(s.contains(&(1280, 720)) && s.contains(&(640, 480)));
        assert!(!s.contains(&(1920, 1080))); // 1080 is not on the 16-step grid
        let c = expand_sizes(&[RawSize::Stepwise { min_w: 1, max_w: 800, step_w: 1, min_h: 1, max_h: 600, step_h: 1 }]);
        assert_eq!(c[0], (800, 600));
        assert_eq!(expand_sizes(&[RawSize::Discrete { width: 640, height: 480 }]), vec![(640, 480)]);
    }

    #[test]
    fn intervals_become_rates() {
        let r = rates(&[
            RawInterval::Discrete { num: 1, den: 30 },
            RawInterval::Discrete { num: 1001, den: 30000 },
            RawInterval::Discrete { num: 1, den: 30 },
            RawInterval::Discrete { num: 0, den: 30 },
        ]);
        assert_eq!(r, vec![30.0, 29.97]);
        let r = rates(&[RawInterval::Range { min_num: 1, min_den: 30, max_num: 1, max_den: 10 }]);
        assert_eq!(r, vec![30.0, 25.0, 24.0, 20.0, 15.0, 10.0]);
    }

    #[test]
    fn a_node_that_is_not_a_device_fails_without_panicking() {
        let dir = std::env::temp_dir().join(format!("cam-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("video0");
        std::fs::write(&f, b"not a device").unwrap();
        let far = Instant::now() + std::time::Duration::from_secs(5);
        // A regular file opens but QUERYCAP fails (ENOTTY): an ERROR reason, not a panic.
        match probe(&f, 0, &dir, true, far).result {
            Err(ProbeError::Failed(r)) => assert!(r.contains("QUERYCAP"), "{r}"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(probe(&dir.join("video1"), 1, &dir, true, far).result, Err(ProbeError::Gone));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
