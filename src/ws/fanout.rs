//! Delivering one notification to a worker's connections, in one pass.
//!
//! Fan-out latency is the time to the LAST client, so the per-connection work is kept to what cannot be shared:
//! the subscription check and one socket write. Frames are rendered once per notification (see
//! [`Notification::text`]) and reach tungstenite as a reference-counted buffer (no allocation or copy per
//! connection); all frames a connection gets for one notification go out in one write.

use std::io::ErrorKind;
use std::time::Instant;

use tungstenite::{Message, Utf8Bytes};

use super::conn::{Phase, Slab};
use crate::auth::Authenticator;
use crate::rpc::notify::{Notification, Rendering};

/// A connection that must go: after the pass, because dropping one needs the whole worker.
pub enum Failed {
    /// Its outbound queue is full: the client does not keep up.
    Slow(u64),
    /// Writing failed otherwise (peer gone, closed).
    Broken(u64),
}

/// What one pass did.
#[derive(Default)]
pub struct Delivery {
    /// Frames handed to connections.
    pub frames: u64,
    pub failed: Vec<Failed>,
}

/// Write `n` to every connection of `conns` that receives it: connections without a subscription get the Python
/// notification, subscribed ones their topics (filtered by device).
pub fn deliver(conns: &mut Slab, n: &Notification, now_secs: i64, auth: &Authenticator) -> Delivery {
    let mut out = Delivery::default();
    // Consecutive connections almost always get the same frame: remember the last one and skip the shared lookup.
    let mut last: Option<(Rendering, Option<std::sync::Arc<str>>, Utf8Bytes)> = None;
    let by_host = n.depends_on_host();
    for (token, c) in conns.iter_mut() {
        if c.closing.is_some() || !matches!(c.phase, Phase::Open(_)) || !c.notifiable(now_secs, auth) {
            continue;
        }
        let host = if by_host { c.facts.host.as_ref() } else { None };
        let Phase::Open(ws) = &mut c.phase else { continue };
        let mut queued = false;
        let mut failed = None;
        for r in n.renderings(c.events.as_deref()) {
            out.frames += 1;
            if failed.is_some() {
                continue;
            }
            let text = match &last {
                Some((lr, lh, text)) if *lr == r && lh.as_deref() == host.map(|h| &**h) => text.clone(),
                _ => {
                    let text = n.text(r, host.map(|h| &**h));
                    last = Some((r, host.cloned(), text.clone()));
                    text
                }
            };
            match ws.write(Message::Text(text)) {
                Ok(()) => queued = true,
                // Queued in tungstenite's buffer; the socket takes it when writable.
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => queued = true,
                Err(tungstenite::Error::WriteBufferFull(_)) => failed = Some(Failed::Slow(token)),
                Err(_) => failed = Some(Failed::Broken(token)),
            }
        }
        if let Some(f) = failed {
            out.failed.push(f);
            continue;
        }
        if !queued {
            continue;
        }
        match ws.flush() {
            Ok(()) => c.write_blocked_since = None,
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                c.write_blocked_since.get_or_insert_with(Instant::now);
            }
            Err(_) => out.failed.push(Failed::Broken(token)),
        }
    }
    out
}
