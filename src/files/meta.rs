//! Media metadata of a listed file (MP4 duration and video size, JPEG/PNG image size), chosen by extension and
//! read with the parsers in [`crate::formats`]. This module holds the policy around them: which files to open,
//! and that a file which does not parse costs its own metadata, never the listing it appears in.

use std::fs::File;
use std::io::{self, BufReader};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::formats::{image, mp4};

/// What we learn about a media file. Every field is optional: unreadable or foreign files simply lack them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaInfo {
    pub duration_secs: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Metadata of `path`, chosen by extension (other extensions: no metadata, no error). An `Err` means the file
/// claims a format it does not hold, or could not be read.
pub fn probe(path: &Path) -> io::Result<MediaInfo> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let read: fn(File) -> io::Result<MediaInfo> = match ext.as_str() {
        "mp4" | "m4v" | "mov" | "fmp4" | "m4s" => |f| {
            let m = mp4::info(BufReader::new(f))?;
            Ok(MediaInfo { duration_secs: Some(m.duration_secs), width: m.width, height: m.height })
        },
        "jpg" | "jpeg" | "png" => |f| {
            let (w, h) = image::read_dimensions(f)?;
            Ok(MediaInfo { duration_secs: None, width: Some(w), height: Some(h) })
        },
        _ => return Ok(MediaInfo::default()),
    };
    let file = File::open(path)?;
    // The parsers never panic on any input (fuzzed in tests/fuzz); should one ever do, it costs this file's
    // metadata instead of the whole listing.
    catch_unwind(AssertUnwindSafe(|| read(file))).unwrap_or_else(|_| Err(io::Error::other("metadata reader panicked")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_extensions_have_no_metadata_and_bad_files_are_errors() {
        let d = std::env::temp_dir().join(format!("cs-meta-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.txt"), b"hello").unwrap();
        assert_eq!(probe(&d.join("a.txt")).unwrap(), MediaInfo::default());
        std::fs::write(d.join("b.mp4"), b"\0\0\0\x08ftyp").unwrap();
        assert_eq!(probe(&d.join("b.mp4")).unwrap_err().kind(), io::ErrorKind::InvalidData);
        std::fs::write(d.join("c.jpg"), b"GIF89a").unwrap();
        assert_eq!(probe(&d.join("c.jpg")).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(probe(&d.join("missing.mp4")).unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
