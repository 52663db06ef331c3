//! Small file-system helpers shared by the components that persist state.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replace `path` with `bytes` atomically: write a temp file beside it with `mode`, fsync, rename, fsync the
/// directory. A crash leaves either the old or the new content, never a truncated file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fail unless this process can create (and remove) a file in `dir`: a probe file with a name no one else uses.
pub fn check_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".camera-service-write-test-{}", std::process::id()));
    fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&probe)?;
    fs::remove_file(&probe)
}

/// Create `dir` (and parents) so that the group may write into it: mode 2775 set explicitly, because the
/// service's umask (0027 under the packaged unit) would otherwise strip group write. MediaMTX's recorder runs in
/// the service's group and writes per-camera recording folders (deployment: recordings directory 2775).
pub fn create_shared_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o2775))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_with_mode_and_replaces() {
        let d = std::env::temp_dir().join(format!("fsutil-test-{}", std::process::id()));
        let p = d.join("x.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temp file left behind");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn shared_dirs_are_group_writable_whatever_the_umask() {
        let d = std::env::temp_dir().join(format!("fsutil-shared-{}", std::process::id()));
        let sub = d.join("camera0");
        create_shared_dir(&sub).unwrap();
        assert_eq!(fs::metadata(&sub).unwrap().permissions().mode() & 0o7777, 0o2775);
        let _ = fs::remove_dir_all(&d);
    }
}
