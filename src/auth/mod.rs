//! Authentication and authorization: JWT, API keys, roles, per-connection sessions, rate limits.

mod role;

pub use role::Role;
