//! Method tables as data.
//!
//! A component declares its JSON-RPC methods as a `static` slice of [`Method<S>`], where `S` is the state its
//! handlers need (its own handle plus narrow seams): one [`method!`](crate::rpc::method) line per method. The
//! daemon's wiring puts each component's slice and state into one [`Table`], which is all the dispatcher sees.

use std::sync::Arc;

use serde_json::Value;

use super::{Call, Exec};
use crate::auth::{Role, Session};
use crate::error::Result;

/// An ordinary handler: the component's state, the raw params (decoded by the wrapper [`method!`] generates), the
/// call.
pub type CallFn<S> = fn(&S, &Value, &Call) -> Result<Value>;
/// A handler that also reads or changes the connection's session (`authenticate`; per-connection subscriptions).
pub type SessionFn<S> = fn(&S, &Value, &Call, &mut Session) -> Result<Value>;

/// What a method's handler receives.
pub enum Handler<S: 'static> {
    Call(CallFn<S>),
    Session(SessionFn<S>),
}

/// One entry of a component's method table.
pub struct Method<S: 'static> {
    pub name: &'static str,
    /// Minimum role; `None` = callable without authentication (only `authenticate`).
    pub role: Option<Role>,
    pub exec: Exec,
    pub handler: Handler<S>,
    /// Whether the handler looks at its params (false for [`NoParams`](crate::rpc::params::NoParams)): the
    /// dispatcher then skips building them. Set by [`method!`] from the handler's signature.
    pub reads_params: fn() -> bool,
}

impl<S> Method<S> {
    /// Run the handler outside a connection (unit tests of one component's methods): decoding, then the handler,
    /// with a throw-away session.
    pub fn invoke(&self, state: &S, params: &Value, call: &Call) -> Result<Value> {
        match self.handler {
            Handler::Call(f) => f(state, params, call),
            Handler::Session(f) => f(state, params, call, &mut Session::default()),
        }
    }
}

/// Find `name` in a component's slice and run it (unit tests; the daemon goes through [`Table`]).
pub fn invoke<S>(methods: &[Method<S>], state: &S, name: &str, params: &Value) -> Result<Value> {
    let m = methods.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no method {name} in this table"));
    m.invoke(state, params, &Call::new(&super::Caller::default()))
}

/// Declares one [`Method`]: `method!("name", Viewer, Inline, handler)` where `handler` is
/// `fn(&S, P, &Call) -> Result<Value>` and `P` its params struct; `method!(session "name", Public, Inline, handler)`
/// for `fn(&S, P, &Call, &mut Session) -> Result<Value>`. The role is `Viewer`, `Operator`, `Admin` or `Public`
/// (no authentication). The params are decoded by [`crate::rpc::params::decode`] before the handler runs.
macro_rules! method {
    ($name:literal, $role:ident, $exec:ident, $handler:path) => {
        $crate::rpc::Method {
            name: $name,
            role: $crate::rpc::role!($role),
            exec: $crate::rpc::Exec::$exec,
            handler: $crate::rpc::Handler::Call(|state, params, call| {
                $handler(state, $crate::rpc::params::decode(params)?, call)
            }),
            reads_params: || $crate::rpc::params::reads_params($handler),
        }
    };
    (session $name:literal, $role:ident, $exec:ident, $handler:path) => {
        $crate::rpc::Method {
            name: $name,
            role: $crate::rpc::role!($role),
            exec: $crate::rpc::Exec::$exec,
            handler: $crate::rpc::Handler::Session(|state, params, call, session| {
                $handler(state, $crate::rpc::params::decode(params)?, call, session)
            }),
            reads_params: || $crate::rpc::params::session_reads_params($handler),
        }
    };
}

/// `Public` → `None`, a role name → `Some(Role::…)`.
macro_rules! role {
    (Public) => {
        None
    };
    ($role:ident) => {
        Some($crate::auth::Role::$role)
    };
}

pub(crate) use {method, role};

type Run = Box<dyn Fn(&Value, &Call, &mut Session) -> Result<Value> + Send + Sync>;

/// A registered method with its component's state bound in.
pub struct Entry {
    pub name: &'static str,
    pub role: Option<Role>,
    pub exec: Exec,
    /// See [`Method::reads_params`].
    pub reads_params: bool,
    run: Run,
}

impl Entry {
    pub fn run(&self, params: &Value, call: &Call, session: &mut Session) -> Result<Value> {
        (self.run)(params, call, session)
    }
}

/// Every method of the daemon, from every component's table. Built once at start-up.
#[derive(Default)]
pub struct Table {
    entries: Vec<Entry>,
    /// (name, entry index), sorted by name: a binary search over a few dozen short names costs less per request
    /// than hashing the name with the DoS-resistant default hasher.
    by_name: Vec<(&'static str, usize)>,
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// Add a component's methods over its state. A name registered twice is a wiring bug (panics at start-up).
    pub fn with<S: Send + Sync + 'static>(mut self, state: S, methods: &'static [Method<S>]) -> Table {
        let state = Arc::new(state);
        for m in methods {
            let s = state.clone();
            let run: Run = match m.handler {
                Handler::Call(f) => Box::new(move |p, c, _| f(&s, p, c)),
                Handler::Session(f) => Box::new(move |p, c, session| f(&s, p, c, session)),
            };
            let at = match self.by_name.binary_search_by(|(n, _)| n.cmp(&m.name)) {
                Ok(_) => panic!("JSON-RPC method {} registered twice", m.name),
                Err(at) => at,
            };
            self.by_name.insert(at, (m.name, self.entries.len()));
            let reads_params = (m.reads_params)();
            self.entries.push(Entry { name: m.name, role: m.role, exec: m.exec, reads_params, run });
        }
        self
    }

    /// A registered method and its index.
    pub fn lookup(&self, name: &str) -> Option<(usize, &Entry)> {
        let at = self.by_name.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        let i = self.by_name[at].1;
        Some((i, &self.entries[i]))
    }

    /// The entry at `index` (an index [`Table::lookup`] returned).
    pub fn lookup_index(&self, index: usize) -> &Entry {
        &self.entries[index]
    }

    /// Every registered method name, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.entries.iter().map(|e| e.name).collect();
        v.sort_unstable();
        v
    }

    /// Names in index order.
    pub fn index_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|e| e.name)
    }
}

/// The names in a component's slice (the daemon's list of every method is built from these).
pub fn names_of<S>(methods: &[Method<S>]) -> impl Iterator<Item = &'static str> + '_ {
    methods.iter().map(|m| m.name)
}
