//! ffmpeg child processes.
//!
//! Every child: stdin null (`-nostdin` is passed too), stdout null unless the caller reads it, stderr drained by a
//! thread into a bounded tail (the last 4 KiB, for error messages) and logged, its own process group (so a signal
//! reaches the whole group and a Ctrl-C on the daemon's terminal does not hit it), hard timeouts, stop = SIGINT (ffmpeg finalises its output)
//! then SIGKILL after a grace period, and always reaped.
//!
//! None outlives the daemon: children are spawned by one long-lived `ffmpeg-spawner` thread with
//! `PR_SET_PDEATHSIG = SIGKILL` (the kernel ties that signal to the *thread* that forked, hence the dedicated thread
//! that lives as long as the process), and [`kill_all`] at shutdown kills whatever is still registered.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use parking_lot::Mutex;

/// The ffmpeg binary (found on `PATH`).
pub const FFMPEG: &str = "ffmpeg";
/// Bytes of stderr kept for error messages.
const TAIL_BYTES: usize = 4096;

/// Process groups of live children, killed by [`kill_all`].
static LIVE: StdMutex<BTreeSet<i32>> = StdMutex::new(BTreeSet::new());

type SpawnRequest = (Command, Sender<io::Result<Child>>);

/// The spawner thread: it never exits, so `PR_SET_PDEATHSIG` fires only when the daemon process dies. It must not
/// die early either (every running ffmpeg would get SIGKILL with it), so a panic while spawning fails that one
/// spawn (reported to its caller and logged) and the thread goes on.
fn spawner() -> &'static Sender<SpawnRequest> {
    static SPAWNER: OnceLock<Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<SpawnRequest>();
        thread::Builder::new()
            .name("ffmpeg-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let spawned = crate::process::guarded("ffmpeg-spawner", || cmd.spawn())
                        .unwrap_or_else(|panic| Err(io::Error::other(format!("spawning ffmpeg panicked: {panic}"))));
                    let _ = reply.send(spawned);
                }
            })
            .expect("start ffmpeg-spawner thread");
        tx
    })
}

/// A running (or finished, not yet dropped) ffmpeg.
pub struct Ffmpeg {
    label: String,
    child: Child,
    status: Option<ExitStatus>,
    tail: Arc<Mutex<Vec<u8>>>,
    drain: Option<JoinHandle<()>>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Option<ExitStatus>,
    /// The hard timeout fired and the process was stopped.
    pub timed_out: bool,
    /// Last stderr line(s), trimmed.
    pub stderr: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }
}

impl Ffmpeg {
    /// Start `ffmpeg <args>` with extra environment variables; `label` names it in logs.
    pub fn spawn(label: &str, args: &[String], env: &[(&str, &str)]) -> io::Result<Ffmpeg> {
        Ffmpeg::spawn_with(label, args, env, Stdio::null())
    }

    /// Like [`Ffmpeg::spawn`], with stdout piped (for `pipe:1` outputs); the caller reads it.
    pub fn spawn_piped(label: &str, args: &[String], env: &[(&str, &str)]) -> io::Result<(Ffmpeg, ChildStdout)> {
        let mut p = Ffmpeg::spawn_with(label, args, env, Stdio::piped())?;
        let out = p.child.stdout.take().ok_or_else(|| io::Error::other("no stdout pipe"))?;
        Ok((p, out))
    }

    fn spawn_with(label: &str, args: &[String], env: &[(&str, &str)], stdout: Stdio) -> io::Result<Ffmpeg> {
        let mut cmd = Command::new(FFMPEG);
        cmd.args(args).stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped()).process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        crate::sys::process::die_with_parent(&mut cmd);
        let (tx, rx) = bounded(1);
        spawner().send((cmd, tx)).map_err(|_| io::Error::other("ffmpeg spawner is gone"))?;
        let mut child = rx.recv().map_err(|_| io::Error::other("ffmpeg spawner is gone"))??;
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).insert(child.id() as i32);
        let tail = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take();
        let drain = stderr.and_then(|s| spawn_drain(label, s, tail.clone()));
        log::debug!("{label}: started ffmpeg pid {} {}", child.id(), args.join(" "));
        Ok(Ffmpeg { label: label.to_string(), child, status: None, tail, drain })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended (reaps it).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.reaped(st);
            }
        }
        self.status
    }

    /// Wait at most `timeout` for the process to end.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut step = Duration::from_millis(1);
        loop {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            thread::sleep(step.min(deadline - now));
            step = (step * 2).min(Duration::from_millis(20));
        }
    }

    /// Send `sig` to the process group (no-op once reaped, so a recycled pid is never signalled).
    pub fn signal(&self, sig: i32) {
        if self.status.is_none() {
            signal_group(self.child.id() as i32, sig);
        }
    }

    /// SIGINT (ffmpeg finishes its output), then SIGKILL after `grace`; waits at most `kill_wait` more.
    /// Returns the exit status and whether SIGKILL was needed.
    pub fn stop(&mut self, grace: Duration, kill_wait: Duration) -> (Option<ExitStatus>, bool) {
        if let Some(st) = self.try_wait() {
            return (Some(st), false);
        }
        self.signal(libc::SIGINT);
        if let Some(st) = self.wait_for(grace) {
            return (Some(st), false);
        }
        log::warn!("{}: ffmpeg pid {} ignored SIGINT for {grace:?}, killing", self.label, self.pid());
        self.signal(libc::SIGKILL);
        (self.wait_for(kill_wait), true)
    }

    /// Wait for the process to end by itself within `timeout`; past it, stop it (`grace`, `kill_wait`).
    pub fn finish(mut self, timeout: Duration, grace: Duration, kill_wait: Duration) -> Outcome {
        let mut timed_out = false;
        let status = match self.wait_for(timeout) {
            Some(st) => Some(st),
            None => {
                timed_out = true;
                self.stop(grace, kill_wait).0
            }
        };
        Outcome { status, timed_out, stderr: self.stderr_tail() }
    }

    /// The last stderr output (complete once the process has ended and its pipe is drained).
    pub fn stderr_tail(&mut self) -> String {
        if self.status.is_some() {
            if let Some(h) = self.drain.take() {
                let _ = h.join();
            }
        }
        String::from_utf8_lossy(&self.tail.lock()).trim().to_string()
    }

    fn reaped(&mut self, st: ExitStatus) {
        self.status = Some(st);
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).remove(&(self.child.id() as i32));
        log::debug!("{}: ffmpeg pid {} exited: {}", self.label, self.child.id(), describe(st));
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.signal(libc::SIGKILL);
            if let Ok(st) = self.child.wait() {
                self.reaped(st);
            }
        }
    }
}

/// "exit code 1" / "signal 9".
pub fn describe(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => st.to_string(),
    }
}

/// One `ffmpeg-stderr` thread per child. If the drain panics it keeps reading into nothing: a child whose stderr
/// pipe fills up would block and stall its recording.
fn spawn_drain(
    label: &str,
    mut stderr: std::process::ChildStderr,
    tail: Arc<Mutex<Vec<u8>>>,
) -> Option<JoinHandle<()>> {
    let label = label.to_string();
    thread::Builder::new()
        .name("ffmpeg-stderr".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            if crate::process::guarded("ffmpeg-stderr", || drain(&label, &mut stderr, &tail)).is_err() {
                let _ = io::copy(&mut stderr, &mut io::sink());
            }
        })
        .ok()
}

/// Read stderr to its end: keep the last [`TAIL_BYTES`] and log each line.
fn drain(label: &str, stderr: &mut std::process::ChildStderr, tail: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 1024];
    let mut line = Vec::new();
    while let Ok(n) = stderr.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut t = tail.lock();
        t.extend_from_slice(&buf[..n]);
        if t.len() > TAIL_BYTES {
            let cut = t.len() - TAIL_BYTES;
            t.drain(..cut);
        }
        drop(t);
        for &b in &buf[..n] {
            if b == b'\n' || b == b'\r' {
                log_line(label, &line);
                line.clear();
            } else if line.len() < 512 {
                line.push(b);
            }
        }
    }
    log_line(label, &line);
}

fn log_line(label: &str, line: &[u8]) {
    let s = String::from_utf8_lossy(line);
    if !s.trim().is_empty() {
        // ffmpeg runs with `-loglevel error`: whatever it prints is worth a warning.
        log::warn!("{label}: ffmpeg: {}", s.trim());
    }
}

fn signal_group(pgid: i32, sig: i32) {
    crate::sys::process::signal_group(pgid, sig);
}

/// Kill every ffmpeg still registered (daemon shutdown). Owners reap them.
pub fn kill_all() -> usize {
    let live: Vec<i32> = LIVE.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
    for pgid in &live {
        signal_group(*pgid, libc::SIGKILL);
    }
    live.len()
}

/// Number of live (unreaped) ffmpeg children.
pub fn live_count() -> usize {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn failing_ffmpeg_reports_its_stderr() {
        let p = Ffmpeg::spawn("t", &args("-hide_banner -loglevel error -nostdin -i /nonexistent/x.mp4"), &[]).unwrap();
        let out = p.finish(Duration::from_secs(20), Duration::from_secs(1), Duration::from_secs(1));
        assert!(!out.success());
        assert!(!out.timed_out);
        assert!(out.stderr.contains("No such file"), "{}", out.stderr);
    }

    #[test]
    fn timeout_stops_a_live_source_with_sigint() {
        let a = args("-hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=64x48:rate=5 -f null -");
        let p = Ffmpeg::spawn("t", &a, &[]).unwrap();
        let pid = p.pid();
        let out = p.finish(Duration::from_millis(300), Duration::from_secs(5), Duration::from_secs(2));
        assert!(out.timed_out);
        assert!(out.status.is_some(), "reaped");
        assert!(!LIVE.lock().unwrap().contains(&(pid as i32)));
    }

    #[test]
    fn drop_kills_and_reaps() {
        let a = args("-hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=64x48:rate=5 -f null -");
        let p = Ffmpeg::spawn("t", &a, &[]).unwrap();
        let pid = p.pid() as i32;
        drop(p);
        let alive = crate::sys::process::exists(pid);
        assert!(!alive, "child {pid} still exists after drop");
    }
}
