//! One integration-test binary (build and link cost paid once); modules are sibling files.

mod fake_mediamtx;
mod mediamtx;
mod server;
mod support;
