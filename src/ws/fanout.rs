//! Delivering one notification to a worker's connections, in one pass.
//!
//! Fan-out latency is the time to the LAST client, so the per-connection work is kept to what cannot be shared:
//! the subscription check and one socket write. Frames are rendered once per notification (see
//! [`Notification::text`]) and reach tungstenite as a reference-counted buffer (no allocation or copy per
//! connection); all frames a connection gets for one notification go out in one write.

use tungstenite::{Message, Utf8Bytes};

use super::conn::{Phase, Slab, WriteFailure};
use crate::auth::Authenticator;
use crate::rpc::notify::{Notification, Rendering};

/// What one pass did.
#[derive(Default)]
pub struct Delivery {
    /// Frames handed to connections.
    pub frames: u64,
    /// Connections that must go (token, why): dropped after the pass, because dropping one needs the whole worker.
    pub failed: Vec<(u64, WriteFailure)>,
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
        let host = if by_host { c.facts.host.clone() } else { None };
        let mut queued = false;
        let mut failed = None;
        for r in n.renderings(c.events.as_deref()) {
            out.frames += 1;
            if failed.is_some() {
                continue;
            }
            let text = match &last {
                Some((lr, lh, text)) if *lr == r && lh.as_deref() == host.as_deref() => text.clone(),
                _ => {
                    let text = n.text(r, host.as_deref());
                    last = Some((r, host.clone(), text.clone()));
                    text
                }
            };
            match c.send(Message::Text(text)) {
                Ok(()) => queued = true,
                Err(why) => failed = Some(why),
            }
        }
        if let Some(why) = failed {
            out.failed.push((token, why));
            continue;
        }
        if !queued {
            continue;
        }
        if let Err(why) = c.flush_out() {
            out.failed.push((token, why));
        }
    }
    out
}
