//! Property ("fuzz") tests of every parser that sees outside bytes: the MP4 box walker and the JPEG/PNG size
//! reader, file-name validation, the HTTP request head and `Range` header, the configuration loader (YAML and environment), and
//! the JSON-RPC envelope and params through a real daemon.
//!
//! Budget: `CAMERA_SERVICE_FUZZ_CASES` cases per property (default [`DEFAULT_CASES`], sized for CI). A long run:
//! `CAMERA_SERVICE_FUZZ_CASES=100000 cargo test --release --test integration fuzz::`. A failure prints the
//! smallest input proptest found; add it as a regression test next to the parser, then fix the parser.

mod config;
mod formats;
mod http_head;
mod jsonrpc;
mod names;
mod range;

use proptest::test_runner::{Config, TestRunner};

/// Cases per property when `CAMERA_SERVICE_FUZZ_CASES` is not set.
pub const DEFAULT_CASES: u32 = 256;

/// Cases per property: `CAMERA_SERVICE_FUZZ_CASES`, else [`DEFAULT_CASES`].
pub fn cases() -> u32 {
    match std::env::var("CAMERA_SERVICE_FUZZ_CASES") {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("CAMERA_SERVICE_FUZZ_CASES: expected a number, got {v:?}")),
        Err(_) => DEFAULT_CASES,
    }
}

/// A runner with the budget above. No regression files are written (they would land in the source tree):
/// crashes found become explicit regression tests instead.
pub fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}
