//! Pure parsers of bytes that come from outside the daemon: the ISO-BMFF (MP4) box walker with its duration and
//! video-size reader ([`mp4`]), and the JPEG/PNG size reader ([`image`]).
//!
//! Anyone who can write into the recordings or snapshots folder controls these bytes, so every offset and size is
//! checked arithmetic (release builds do not trap on overflow), every allocation is bounded, and malformed input is
//! an `InvalidData` error, never a panic. No file-opening or logging policy here: callers decide what to open,
//! how much to read and what to say about a file that does not parse.
#![forbid(unsafe_code)]

pub mod image;
pub mod mp4;

use std::io;

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// The error for input that is not the format it claims to be.
fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}
