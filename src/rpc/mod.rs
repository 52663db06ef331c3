//! JSON-RPC 2.0: the method table (as data), the envelope rules, and the system methods.
//!
//! Components register their methods as a `&'static [Method]` slice in their own module; [`table`] concatenates
//! the slices. Adding a method is one line in a slice plus its handler.

pub mod params;
pub mod table;

use serde_json::Value;

use crate::app::App;
use crate::auth::Role;
use crate::error::Result;

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
    /// Host part of the `Host` header the client used (stream URLs are built with it).
    pub host: Option<String>,
    pub role: Option<Role>,
    pub user_id: Option<String>,
}

/// Everything a handler gets.
pub struct Call<'a> {
    pub app: &'a App,
    pub params: &'a Value,
    pub caller: &'a Caller,
}
