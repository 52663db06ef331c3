//! The `camera-hotplug` thread: inotify on the device directory (create, delete, attribute change — udev sets
//! permissions after creating a node —, moves), forwarding the number N of every `videoN` name in the configured set
//! to the registry at once. The registry's `stat()` sweep every `camera.poll_interval` is the safety net for
//! anything inotify misses (a directory that did not exist yet, a queue overflow).
//!
//! The thread waits with `poll(2)` on the inotify descriptor, so it can still notice shutdown: the `inotify` crate's
//! blocking read cannot be interrupted.

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::Sender;
use inotify::{EventMask, Inotify, WatchMask};

use super::registry::Msg;
use crate::config::CameraConfig;
use crate::process::Shutdown;

/// How often a blocked wait checks for shutdown.
const WAKE: Duration = Duration::from_millis(200);
/// How often a missing device directory is looked for again.
const REWATCH: Duration = Duration::from_secs(1);

pub struct Watcher {
    dir: PathBuf,
    numbers: BTreeSet<u32>,
    tx: Sender<Msg>,
}

impl Watcher {
    pub fn new(cfg: &CameraConfig, tx: Sender<Msg>) -> Watcher {
        Watcher { dir: cfg.device_dir.clone(), numbers: cfg.device_numbers().into_iter().collect(), tx }
    }

    pub fn run(self, shutdown: Shutdown) -> Result<(), String> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut warned = false;
        while !shutdown.is_set() {
            let mut inotify = match self.watch() {
                Ok(i) => i,
                Err(e) => {
                    if !warned {
                        log::warn!("camera hot-plug: cannot watch {}: {e}; polling only", self.dir.display());
                        warned = true;
                    }
                    shutdown.sleep(REWATCH);
                    continue;
                }
            };
            warned = false;
            // Anything that happened before the watch existed is found by one full examination.
            let _ = self.tx.send(Msg::Rescan);
            if !self.pump(&mut inotify, &mut buf, &shutdown) {
                return Ok(());
            }
        }
        Ok(())
    }

    fn watch(&self) -> std::io::Result<Inotify> {
        let inotify = Inotify::init()?;
        let mask = WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::ATTRIB
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        inotify.watches().add(&self.dir, mask)?;
        Ok(inotify)
    }

    /// Forward events until the watch is lost (returns true: re-watch) or the registry/shutdown ends (false).
    fn pump(&self, inotify: &mut Inotify, buf: &mut [u8], shutdown: &Shutdown) -> bool {
        loop {
            if shutdown.is_set() {
                return false;
            }
            if !crate::sys::poll::wait_readable(inotify.as_raw_fd(), WAKE) {
                continue;
            }
            let events = match inotify.read_events(buf) {
                Ok(ev) => ev,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    log::warn!("camera hot-plug: inotify read failed: {e}");
                    return true;
                }
            };
            // One message per name per batch: a plug's CREATE and ATTRIB often arrive together.
            let mut names = Vec::new();
            let mut lost = false;
            for ev in events {
                if ev.mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED) {
                    lost = true;
                }
                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                    names.clear();
                    if self.tx.send(Msg::Rescan).is_err() {
                        return false;
                    }
                }
                if let Some(n) = ev.name.and_then(|s| s.to_str()).and_then(video_number) {
                    if self.numbers.contains(&n) && !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
            for n in names {
                if self.tx.send(Msg::Node(n)).is_err() {
                    return false;
                }
            }
            if lost {
                let _ = self.tx.send(Msg::Rescan);
                return true;
            }
        }
    }
}

/// `video12` → 12.
fn video_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("video")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(video_number("video0"), Some(0));
        assert_eq!(video_number("video17"), Some(17));
        assert_eq!(video_number("video"), None);
        assert_eq!(video_number("video1.tmp"), None);
        assert_eq!(video_number("vbi0"), None);
    }
}
