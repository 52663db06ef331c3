//! One integration-test binary (build and link cost paid once); modules are sibling files.
// Test helpers call libc (mknod, setsockopt, geteuid); each unsafe block documents why it is sound.
#![allow(unsafe_code)]

mod support;

mod architecture;
mod cameras;
mod config;
mod contract;
mod cross;
mod docs;
mod events;
mod external_cameras;
mod fake_mediamtx;
mod files;
mod fuzz;
mod hardening_net;
mod http_edges;
mod media;
mod mediamtx;
mod outside_input;
mod real_mediamtx;
mod real_vs_fake;
mod rpc_envelope;
mod secrets;
mod server;
mod startup;
mod usb_sharing;
mod web;
