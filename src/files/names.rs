//! File names as API identifiers: validation (separators, `..`, leading dots, NUL and absolute names are refused:
//! the Python service joined client names to its directories unchecked) and resolution inside a storage directory.
//!
//! A name is a bare file name. It is looked up at the top level of the directory and then in its first-level
//! sub-directories (MediaMTX writes `<recordings_path>/<path>/<name>`, the Python service wrote flat files).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Longest name a Linux filesystem accepts (bytes).
const MAX_NAME_BYTES: usize = 255;

/// Why a name is refused (the reason goes to `data.reason` / the log; clients only see -32602 or 400).
pub fn check(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("filename must not be empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Err("filename is too long");
    }
    if name.contains('/') || name.contains('\\') {
        return Err("filename must not contain a path separator");
    }
    if name.contains("..") {
        return Err("filename must not contain '..'");
    }
    if name.starts_with('.') {
        return Err("filename must not start with '.'");
    }
    if name.chars().any(char::is_control) {
        return Err("filename must not contain control characters");
    }
    Ok(())
}

/// Where a validated name was found.
#[derive(Debug)]
pub enum Lookup {
    /// A regular file (or a symlink to one inside the directory): the path of the name itself (deleting it removes
    /// the link, not its target) and the metadata of the file it designates.
    File(PathBuf, fs::Metadata),
    /// Not there.
    Missing,
    /// A directory or other non-regular file.
    NotAFile,
    /// A symlink whose target leaves the directory.
    Escapes,
}

/// Finds `name` (already validated with [`check`]) in `dir` or one of its first-level sub-directories.
pub fn resolve(dir: &Path, name: &str) -> io::Result<Lookup> {
    let top = examine(dir, &dir.join(name))?;
    if !matches!(top, Lookup::Missing) {
        return Ok(top);
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Missing),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || !entry.file_type()?.is_dir() {
            continue;
        }
        let found = examine(dir, &entry.path().join(name))?;
        if !matches!(found, Lookup::Missing) {
            return Ok(found);
        }
    }
    Ok(Lookup::Missing)
}

fn examine(root: &Path, candidate: &Path) -> io::Result<Lookup> {
    let meta = match fs::symlink_metadata(candidate) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Ok(Lookup::Missing)
        }
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        let target = match fs::canonicalize(candidate) {
            Ok(t) => t,
            // Dangling link: nothing to serve.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Missing),
            Err(e) => return Err(e),
        };
        if !target.starts_with(fs::canonicalize(root)?) {
            return Ok(Lookup::Escapes);
        }
        let meta = fs::metadata(&target)?;
        return Ok(if meta.is_file() { Lookup::File(candidate.to_path_buf(), meta) } else { Lookup::NotAFile });
    }
    Ok(if meta.is_file() { Lookup::File(candidate.to_path_buf(), meta) } else { Lookup::NotAFile })
}

/// True for names the listings and retention leave alone: hidden files and files still being written.
pub fn is_in_progress_or_hidden(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".part") || name.ends_with(".tmp") || name.ends_with('~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_odd_names() {
        for bad in ["", "  ", "a/b", "a\\b", "..", "../x", "x..y", ".hidden", "a\0b", "a\nb", &"x".repeat(256)] {
            assert!(check(bad).is_err(), "{bad:?} must be rejected");
        }
        for good in ["camera0_2025-01-15_14-30-00.mp4", "snap shot.jpg", "ünïcode.png", "a.b.c"] {
            assert!(check(good).is_ok(), "{good:?} must be accepted");
        }
    }
}
