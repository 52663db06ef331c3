//! The method table: every registered method, as data.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::Method;

/// Each component's method slice. Names not listed here answer -32601 like any unknown method.
fn slices() -> [&'static [Method]; 5] {
    [
        super::system::METHODS,
        crate::camera::METHODS,
        crate::mediamtx::METHODS,
        crate::media::METHODS,
        crate::files::rpc::METHODS,
    ]
}

struct Table {
    all: Vec<&'static Method>,
    by_name: HashMap<&'static str, usize>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let all: Vec<&'static Method> = slices().into_iter().flatten().collect();
        let by_name = all.iter().enumerate().map(|(i, m)| (m.name, i)).collect::<HashMap<_, _>>();
        assert_eq!(by_name.len(), all.len(), "duplicate JSON-RPC method name in the table");
        Table { all, by_name }
    })
}

/// A registered method and its index (the metrics slot).
pub fn lookup(name: &str) -> Option<(usize, &'static Method)> {
    let t = table();
    t.by_name.get(name).map(|&i| (i, t.all[i]))
}

/// Every registered method, in index order.
pub fn all() -> &'static [&'static Method] {
    &table().all
}

/// Every registered method name, sorted (docs are checked against this list).
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<_> = all().iter().map(|m| m.name).collect();
    v.sort_unstable();
    v
}
