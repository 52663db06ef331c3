//! The `log-writer` thread: component threads hand finished lines to a bounded channel and never wait on a
//! terminal, the journal or a disk; this thread writes them to stderr and/or a size-rotated file.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::Level;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Lines queued at most; DEBUG/INFO stop being accepted at three quarters so WARNING/ERROR keep room.
pub const CAPACITY: usize = 4096;

pub enum Msg {
    Line(String),
    /// Write everything queued before this, then answer.
    Flush(Sender<()>),
}

/// Queue a finished line without blocking. Returns false (and counts the drop) when there is no room for it.
pub fn offer(tx: &Sender<Msg>, capacity: usize, level: Level, line: String, dropped: &AtomicU64) -> bool {
    let low_priority = level >= Level::Info;
    if low_priority && tx.len() >= capacity * 3 / 4 {
        dropped.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    match tx.try_send(Msg::Line(line)) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            dropped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// A log file rotated by size: `<file>.1` is the newest backup, `<file>.N` the oldest (Python's scheme).
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    backups: u32,
    file: File,
    size: u64,
}

impl RotatingFile {
    /// Opens for append, creating parent directories.
    pub fn open(path: &Path, max_bytes: u64, backups: u32) -> io::Result<RotatingFile> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile { path: path.to_path_buf(), max_bytes: max_bytes.max(1), backups, file, size })
    }

    /// Write whole lines, rotating before a line that would take the file past its size (a line longer than the
    /// limit still goes into a file of its own rather than being cut).
    pub fn write_lines(&mut self, lines: &[&[u8]]) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        for line in lines {
            let pending = self.size + buf.len() as u64;
            if pending > 0 && pending + line.len() as u64 > self.max_bytes {
                self.file.write_all(&buf)?;
                buf.clear();
                self.rotate()?;
            }
            buf.extend_from_slice(line);
        }
        self.file.write_all(&buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn backup(&self, n: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    /// With `backup_count: 0` the file is truncated instead (Python would let it grow forever).
    fn rotate(&mut self) -> io::Result<()> {
        if self.backups > 0 {
            let _ = std::fs::remove_file(self.backup(self.backups));
            for n in (1..self.backups).rev() {
                let from = self.backup(n);
                if from.exists() {
                    std::fs::rename(&from, self.backup(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.backup(1))?;
            self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        } else {
            self.file = OpenOptions::new().create(true).write(true).truncate(true).open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

pub struct Sinks {
    pub console: bool,
    pub file: Option<RotatingFile>,
}

/// The writer loop, until every sender is gone; `drop_notice(n)` formats the WARNING line reporting `n` newly
/// dropped lines. Takes its channel and sinks by reference so that the thread can restart it after a panic.
pub fn run(rx: &Receiver<Msg>, sinks: &mut Sinks, dropped: &AtomicU64, drop_notice: &dyn Fn(u64) -> String) {
    let mut reported = 0u64;
    let mut file_failed = false;
    while let Ok(first) = rx.recv() {
        let mut lines: Vec<String> = Vec::new();
        let mut acks: Vec<Sender<()>> = Vec::new();
        let mut take = |m: Msg| match m {
            Msg::Line(l) => lines.push(l),
            Msg::Flush(ack) => acks.push(ack),
        };
        take(first);
        // Batch whatever else is queued: one write per batch instead of one per line.
        for m in rx.try_iter().take(512) {
            take(m);
        }
        let now_dropped = dropped.load(Ordering::Relaxed);
        if now_dropped > reported {
            lines.push(drop_notice(now_dropped - reported));
            reported = now_dropped;
        }
        if sinks.console {
            let mut err = io::stderr().lock();
            for l in &lines {
                let _ = err.write_all(l.as_bytes());
            }
            let _ = err.flush();
        }
        if let Some(f) = sinks.file.as_mut() {
            let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            if let Err(e) = f.write_lines(&refs) {
                // Nowhere better to say it; say it once.
                if !file_failed {
                    eprintln!("camera-service: cannot write log file {}: {e}", f.path.display());
                    file_failed = true;
                }
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cs-logwriter-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn rotates_by_size_keeping_backup_count() {
        let dir = tmp("rotate");
        let path = dir.join("sub/app.log");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..12 {
            let line = format!("line {i:02} {}\n", "x".repeat(30)); // 39 bytes: two per file
            f.write_lines(&[line.as_bytes()]).unwrap();
        }
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert!(read(path.clone()).starts_with("line 10"));
        assert!(read(dir.join("sub/app.log.1")).starts_with("line 08"));
        assert!(read(dir.join("sub/app.log.2")).starts_with("line 06"));
        assert!(!dir.join("sub/app.log.3").exists());
        for p in [path.clone(), dir.join("sub/app.log.1"), dir.join("sub/app.log.2")] {
            assert!(std::fs::metadata(p).unwrap().len() <= 100);
        }
        // Reopening appends and keeps counting from the existing size.
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        f.write_lines(&[b"tail\n"]).unwrap();
        assert!(read(path.clone()).ends_with("tail\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn zero_backups_truncates() {
        let dir = tmp("zero");
        let path = dir.join("app.log");
        let mut f = RotatingFile::open(&path, 10, 0).unwrap();
        f.write_lines(&[b"12345678\n", b"abcdefgh\n"]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "abcdefgh\n");
        assert!(!dir.join("app.log.1").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn overflow_drops_low_levels_first_and_counts() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let dropped = AtomicU64::new(0);
        let accepted_info = (0..10).filter(|_| offer(&tx, 8, Level::Info, "i".into(), &dropped)).count();
        assert_eq!(accepted_info, 6);
        let accepted_err = (0..10).filter(|_| offer(&tx, 8, Level::Error, "e".into(), &dropped)).count();
        assert_eq!(accepted_err, 2);
        assert_eq!(dropped.load(Ordering::Relaxed), 12);
        drop(rx);
    }

    #[test]
    fn writer_thread_writes_flushes_and_reports_drops() {
        let dir = tmp("thread");
        let path = dir.join("w.log");
        let file = RotatingFile::open(&path, 1 << 20, 1).unwrap();
        let (tx, rx) = crossbeam_channel::bounded(16);
        let dropped = Arc::new(AtomicU64::new(3));
        let d = dropped.clone();
        let h = std::thread::spawn(move || {
            let mut sinks = Sinks { console: false, file: Some(file) };
            run(&rx, &mut sinks, &d, &|n| format!("dropped {n}\n"))
        });
        tx.send(Msg::Line("one\n".into())).unwrap();
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        tx.send(Msg::Flush(ack_tx)).unwrap();
        ack_rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ndropped 3\n");
        drop(tx);
        h.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
