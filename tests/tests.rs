//! One integration-test binary (build and link cost paid once); modules are sibling files.

mod support;

mod cameras;
mod config;
mod contract;
mod docs;
mod external_cameras;
mod fake_mediamtx;
mod files;
mod fuzz;
mod media;
mod mediamtx;
mod outside_input;
mod real_mediamtx;
mod real_vs_fake;
mod secrets;
mod server;
mod web;
