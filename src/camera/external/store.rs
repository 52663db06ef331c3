//! External streams added at run time, kept in `<state_dir>/external_streams.json` (mode 0600: the URLs carry
//! credentials) so they come back after a restart. Written atomically; a file that cannot be read is moved aside
//! (never silently overwritten) and the daemon starts without it.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE: &str = "external_streams.json";
const VERSION: u32 = 1;

/// One stored stream, with its real URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// When it was added (UTC, RFC 3339).
    #[serde(default)]
    pub added_at: String,
}

#[derive(Serialize, Deserialize)]
struct Contents {
    version: u32,
    streams: Vec<Stored>,
}

pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store { path: state_dir.join(FILE) }
    }

    /// The stored streams; none when the file is absent. An unreadable file is renamed to
    /// `external_streams.json.unreadable-<unix time>` and reported as the error text.
    pub fn load(&self) -> (Vec<Stored>, Option<String>) {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (Vec::new(), None),
            Err(e) => return (Vec::new(), Some(format!("cannot read {}: {e}", self.path.display()))),
        };
        match serde_json::from_slice::<Contents>(&bytes) {
            Ok(c) if c.version == VERSION => (c.streams, None),
            Ok(c) => (Vec::new(), Some(self.set_aside(&format!("unknown version {}", c.version)))),
            Err(e) => (Vec::new(), Some(self.set_aside(&e.to_string()))),
        }
    }

    fn set_aside(&self, why: &str) -> String {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = self.path.with_file_name(format!("{FILE}.unreadable-{secs}"));
        match std::fs::rename(&self.path, &aside) {
            Ok(()) => format!("{} is unreadable ({why}); moved to {}", self.path.display(), aside.display()),
            Err(e) => format!("{} is unreadable ({why}) and could not be moved aside: {e}", self.path.display()),
        }
    }

    pub fn save(&self, streams: &[Stored]) -> io::Result<()> {
        let c = Contents { version: VERSION, streams: streams.to_vec() };
        let mut body = serde_json::to_vec_pretty(&c).map_err(io::Error::other)?;
        body.push(b'\n');
        crate::util::fs::write_atomic(&self.path, &body, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_private_and_unreadable_set_aside() {
        let d = std::env::temp_dir().join(format!("cs-ext-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s = Store::new(&d);
        assert_eq!(s.load(), (vec![], None));
        let one = Stored { name: "door".into(), url: "rtsp://u:p@h/x".into(), transport: None, added_at: "t".into() };
        s.save(std::slice::from_ref(&one)).unwrap();
        assert_eq!(s.load(), (vec![one], None));
        assert_eq!(std::fs::metadata(d.join(FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(d.join(FILE), "{oops").unwrap();
        let (streams, err) = s.load();
        assert!(streams.is_empty() && err.unwrap().contains("moved to"));
        let names: Vec<String> =
            std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.len() == 1 && names[0].starts_with("external_streams.json.unreadable-"), "{names:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
