//! One integration-test binary (build and link cost paid once); modules are sibling files.

mod support;

mod cameras;
mod config;
mod contract;
mod docs;
mod fake_mediamtx;
mod files;
mod media;
mod mediamtx;
mod server;
mod web;
