//! JSON-RPC 2.0: method tables (as data), typed params, the envelope rules and the security pipeline, and the
//! methods that belong to the protocol itself (`ping`, `authenticate`, server status).
//!
//! Components declare their methods in their own `rpc` module as a `static` slice of [`Method`] over their own
//! state; the daemon's wiring puts them into one [`Table`]; the [`dispatch::Dispatcher`] runs frames against it.
//! Nothing here knows which components exist. See docs/design.md ("Method tables").

pub mod dispatch;
pub mod events;
pub mod metrics;
pub mod notify;
pub mod params;
pub mod session;
pub mod system;
pub mod table;

use std::cell::RefCell;
use std::sync::Arc;

use crate::auth::Role;
use crate::rpc::notify::Notification;

pub(crate) use table::{method, role};
pub use table::{Handler, Method, Table};

/// Where a handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    /// On the connection worker itself: fast, never blocks on I/O beyond a file stat or a lock.
    Inline,
    /// On the bounded blocking pool (ffmpeg, MediaMTX round-trips, directory walks): the connection's next request
    /// waits, other connections on the same worker do not.
    Blocking,
}

/// Who is calling: a copy of the connection's state that a handler may read.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Connection id (internal, never sent to clients).
    pub client_id: u64,
    /// Host part of the `Host` header the client used (stream URLs are built with it). Shared, not copied, per call.
    pub host: Option<Arc<str>>,
    pub role: Option<Role>,
    pub user_id: Option<Arc<str>>,
}

/// What every handler gets besides its state and params: the caller, and a way to publish notifications that must
/// follow the reply.
pub struct Call<'a> {
    pub caller: &'a Caller,
    after_reply: RefCell<Vec<Notification>>,
}

impl<'a> Call<'a> {
    pub fn new(caller: &'a Caller) -> Call<'a> {
        Call { caller, after_reply: RefCell::new(Vec::new()) }
    }

    /// Publish `n` to clients once the reply to this call is on its way (e.g. `recording_status_update` STARTED
    /// follows the `start_recording` reply, so a client never sees the notification first).
    pub fn publish_after_reply(&self, n: Notification) {
        self.after_reply.borrow_mut().push(n);
    }

    /// The notifications queued with [`Call::publish_after_reply`].
    pub fn into_after_reply(self) -> Vec<Notification> {
        self.after_reply.into_inner()
    }
}
