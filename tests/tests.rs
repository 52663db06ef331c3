//! One integration-test binary (build and link cost paid once); modules are sibling files.
// Test helpers call libc (mknod, setsockopt, geteuid); each unsafe block documents why it is sound.
#![allow(unsafe_code)]

mod support;

mod architecture;
mod cameras;
mod config;
mod contract;
mod docs;
mod fake_mediamtx;
mod files;
mod media;
mod mediamtx;
mod rpc_envelope;
mod server;
mod startup;
