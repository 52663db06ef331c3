//! The method table: every registered method, as data.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::Method;

/// Each component's method slice. Names not listed here answer -32601 like any unknown method.
fn slices() -> [&'static [Method]; 1] {
    [crate::files::rpc::METHODS]
}

/// All registered methods, looked up by name.
pub fn lookup(name: &str) -> Option<&'static Method> {
    static TABLE: OnceLock<HashMap<&'static str, &'static Method>> = OnceLock::new();
    TABLE.get_or_init(|| slices().into_iter().flatten().map(|m| (m.name, m)).collect()).get(name).copied()
}

/// Every registered method name (docs are checked against this list).
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<_> = slices().into_iter().flatten().map(|m| m.name).collect();
    v.sort_unstable();
    v
}
