//! systemd service notifications (`sd_notify(3)`) with the standard library only.
//!
//! The packaged unit runs with `Type=notify` and `WatchdogSec=`: systemd considers the service started only once
//! it sends `READY=1` (the daemon does this after the WebSocket port is open), and restarts it when the supervisor
//! loop stops sending `WATCHDOG=1` (a wedged daemon is worse than a restarted one). The protocol is one datagram
//! of `KEY=VALUE` lines to the `AF_UNIX` socket named by `$NOTIFY_SOCKET`; a name starting with `@` is an abstract
//! socket. Outside systemd (`NOTIFY_SOCKET` unset) every call is a cheap no-op, so the daemon calls these
//! unconditionally.
//!
//! The environment is read on every call rather than cached: the calls are rare (start, stop, one ping every few
//! seconds) and this keeps the functions free of global state.

#![forbid(unsafe_code)]

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go: the parsed `$NOTIFY_SOCKET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// A socket file path, e.g. `/run/systemd/notify`.
    Path(std::path::PathBuf),
    /// An abstract socket name (written with a leading `@`, which is not part of the name).
    Abstract(Vec<u8>),
}

impl NotifyTarget {
    /// Parse a `$NOTIFY_SOCKET` value. `None` for empty values and for transports we do not speak (`vsock:`).
    pub fn parse(value: &str) -> Option<NotifyTarget> {
        if let Some(name) = value.strip_prefix('@') {
            return (!name.is_empty()).then(|| NotifyTarget::Abstract(name.as_bytes().to_vec()));
        }
        value.starts_with('/').then(|| NotifyTarget::Path(value.into()))
    }

    /// The target named by `$NOTIFY_SOCKET`, if any.
    pub fn from_env() -> Option<NotifyTarget> {
        std::env::var("NOTIFY_SOCKET").ok().as_deref().and_then(NotifyTarget::parse)
    }

    fn address(&self) -> io::Result<SocketAddr> {
        match self {
            NotifyTarget::Path(p) => SocketAddr::from_pathname(p),
            NotifyTarget::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
        }
    }

    /// Send one notification datagram (`state` is newline-separated `KEY=VALUE` assignments).
    pub fn send(&self, state: &str) -> io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        let sent = socket.send_to_addr(state.as_bytes(), &self.address()?)?;
        if sent != state.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short notification datagram"));
        }
        Ok(())
    }
}

/// Send `state` to the service manager. `Ok(false)` when not running under a notifying service manager.
pub fn notify(state: &str) -> io::Result<bool> {
    match NotifyTarget::from_env() {
        Some(target) => target.send(state).map(|()| true),
        None => Ok(false),
    }
}

/// Log instead of failing: a lost notification must never stop the daemon (systemd then times the start out or
/// restarts us, which is the behaviour we want anyway).
fn notify_logged(state: &str) -> bool {
    match notify(state) {
        Ok(sent) => sent,
        Err(e) => {
            log::warn!("sd_notify {:?} failed: {e}", state.lines().next().unwrap_or(""));
            false
        }
    }
}

/// Tell systemd start-up is complete (call once the WebSocket port accepts connections).
pub fn ready() -> bool {
    notify_logged("READY=1\nSTATUS=Serving")
}

/// Tell systemd an orderly shutdown has begun (so a slow stop is not mistaken for a hang).
pub fn stopping() -> bool {
    notify_logged("STOPPING=1\nSTATUS=Stopping")
}

/// Keep-alive for `WatchdogSec=`; send at least every [`watchdog_interval`] / 2.
pub fn watchdog_ping() -> bool {
    notify_logged("WATCHDOG=1")
}

/// The watchdog timeout systemd expects pings within, if the watchdog is enabled for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// How often to call [`watchdog_ping`]: half the timeout, as `sd_watchdog_enabled(3)` recommends.
pub fn watchdog_ping_period() -> Option<Duration> {
    watchdog_interval().map(|d| d / 2)
}

/// `WATCHDOG_USEC` must be a positive integer; `WATCHDOG_PID`, when set, must name this process (otherwise the
/// variables were inherited from a parent that is the one being watched).
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_notify_socket_values() {
        assert_eq!(NotifyTarget::parse("/run/systemd/notify"), Some(NotifyTarget::Path("/run/systemd/notify".into())));
        assert_eq!(NotifyTarget::parse("@/org/systemd/x"), Some(NotifyTarget::Abstract(b"/org/systemd/x".to_vec())));
        assert_eq!(NotifyTarget::parse(""), None);
        assert_eq!(NotifyTarget::parse("@"), None);
        assert_eq!(NotifyTarget::parse("vsock:2:1234"), None);
        assert_eq!(NotifyTarget::parse("relative/path"), None);
    }

    #[test]
    fn watchdog_needs_positive_usec_and_matching_pid() {
        assert_eq!(parse_watchdog(Some("20000000"), None, 42), Some(Duration::from_secs(20)));
        assert_eq!(parse_watchdog(Some("20000000"), Some("42"), 42), Some(Duration::from_secs(20)));
        assert_eq!(parse_watchdog(Some("20000000"), Some("41"), 42), None);
        assert_eq!(parse_watchdog(Some("0"), None, 42), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 42), None);
        assert_eq!(parse_watchdog(None, Some("42"), 42), None);
    }

    fn receive(listener: &UnixDatagram) -> String {
        listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = listener.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir =
            std::env::temp_dir().join(format!("sdnotify-test-{}-{}", std::process::id(), crate::util::ids::uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let target = NotifyTarget::parse(path.to_str().unwrap()).unwrap();
        target.send("READY=1\nSTATUS=Serving").unwrap();
        assert_eq!(receive(&listener), "READY=1\nSTATUS=Serving");
        target.send("WATCHDOG=1").unwrap();
        assert_eq!(receive(&listener), "WATCHDOG=1");
        drop(listener);
        // Nobody listening any more: an error, which the public helpers log instead of propagating.
        assert!(target.send("WATCHDOG=1").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("camera-service-sdnotify-test-{}-{}", std::process::id(), crate::util::ids::uuid_v4());
        let listener = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        let target = NotifyTarget::parse(&format!("@{name}")).unwrap();
        target.send("STOPPING=1").unwrap();
        assert_eq!(receive(&listener), "STOPPING=1");
    }
}
