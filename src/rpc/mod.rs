//! JSON-RPC 2.0: the method table (as data), the envelope rules, and the system methods.
//!
//! Components register their methods as a `&'static [Method]` slice in their own module; [`table`] concatenates
//! the slices. Adding a method is one line in a slice plus its handler.

pub mod dispatch;
pub mod metrics;
pub mod notify;
pub mod params;
pub mod system;
pub mod table;

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::Value;

use crate::app::App;
use crate::auth::Role;
use crate::error::Result;
use crate::rpc::notify::Notification;

/// A handler: params in (`Value::Null` when omitted), result out.
pub type Handler = fn(&Call) -> Result<Value>;

/// Where a handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    /// On the connection worker itself: fast, never blocks on I/O beyond a file stat or a lock.
    Inline,
    /// On the bounded blocking pool (ffmpeg, MediaMTX round-trips, directory walks): the connection's next request
    /// waits, other connections on the same worker do not.
    Blocking,
}

/// One entry of the method table.
pub struct Method {
    pub name: &'static str,
    /// Minimum role; `None` = callable without authentication (only `authenticate`).
    pub role: Option<Role>,
    pub handler: Handler,
    pub exec: Exec,
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

/// Everything a handler gets.
pub struct Call<'a> {
    pub app: &'a App,
    pub params: &'a Value,
    pub caller: &'a Caller,
    /// Notifications to publish only after this call's reply has been queued to the client (e.g.
    /// `recording_status_update` STARTED must follow the `start_recording` reply, decisions §7).
    pub after_reply: RefCell<Vec<Notification>>,
}

impl<'a> Call<'a> {
    pub fn new(app: &'a App, params: &'a Value, caller: &'a Caller) -> Call<'a> {
        Call { app, params, caller, after_reply: RefCell::new(Vec::new()) }
    }

    /// Publish `n` to clients once the reply to this call is on its way.
    pub fn publish_after_reply(&self, n: Notification) {
        self.after_reply.borrow_mut().push(n);
    }
}
