//! One integration-test binary (build and link cost paid once); modules are sibling files.

mod server;
mod support;

mod cameras;
