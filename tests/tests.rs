//! One integration-test binary (build and link cost paid once); modules are sibling files.

mod files;
mod server;
mod support;
