//! The sorted file index of one storage directory (top level + first-level sub-directories), cached.
//!
//! Listing 10 000 recordings must not cost 10 000 `stat` calls per request. The sorted index is kept until a
//! directory's mtime changes (a file was created, renamed or removed) or [`FULL_REVALIDATE`] passes; in between,
//! only "hot" files (modified shortly before the scan, so possibly still growing) are re-examined. Container
//! metadata is cached per file keyed by (path, size, mtime).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use super::meta::{self, MediaInfo};
use super::names::is_in_progress_or_hidden;

/// Longest time a cached index is trusted without a full rescan (catches in-place changes to old files).
const FULL_REVALIDATE: Duration = Duration::from_secs(10);
/// Files modified this recently before a scan may still be written: re-stat them on every listing.
const HOT_WINDOW: Duration = Duration::from_secs(15);

/// One listed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
    /// Birth time where the filesystem records it, else the inode change time.
    pub created: SystemTime,
}

impl Entry {
    pub fn from_metadata(name: String, path: PathBuf, m: &fs::Metadata) -> Entry {
        use std::os::unix::fs::MetadataExt;
        let modified = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let ctime = SystemTime::UNIX_EPOCH + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec().max(0) as u32);
        Entry { name, path, size: m.len(), modified, created: m.created().unwrap_or(ctime) }
    }

    pub fn stat(name: String, path: PathBuf) -> io::Result<Entry> {
        let m = fs::metadata(&path)?;
        Ok(Entry::from_metadata(name, path, &m))
    }
}

struct Scan {
    entries: Arc<Vec<Arc<Entry>>>,
    /// Every scanned directory and its mtime at scan time.
    dirs: Vec<(PathBuf, SystemTime)>,
    at: Instant,
    wall: SystemTime,
}

/// Cached index of one directory. Locks are held only to swap `Arc`s, never across I/O.
pub struct DirIndex {
    dir: PathBuf,
    scan: Mutex<Option<Arc<Scan>>>,
    meta: Mutex<HashMap<PathBuf, (u64, SystemTime, MediaInfo)>>,
    /// Files whose metadata could not be read and that were logged: one WARN per file, not one per listing.
    unparsable: Mutex<HashSet<PathBuf>>,
}

impl DirIndex {
    pub fn new(dir: PathBuf) -> DirIndex {
        DirIndex {
            dir,
            scan: Mutex::new(None),
            meta: Mutex::new(HashMap::new()),
            unparsable: Mutex::new(HashSet::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Forget the cached index (after we delete files ourselves the directory mtime changes anyway; this also
    /// covers coarse-mtime filesystems).
    pub fn invalidate(&self) {
        *self.scan.lock() = None;
    }

    /// All listable files, newest first (mtime desc, then name asc). A missing directory is empty.
    pub fn entries(&self) -> io::Result<Arc<Vec<Arc<Entry>>>> {
        let cached = self.scan.lock().clone();
        if let Some(scan) = cached {
            if scan.at.elapsed() < FULL_REVALIDATE && dirs_unchanged(&scan.dirs) {
                return Ok(self.refresh_hot(&scan));
            }
        }
        let scan = Arc::new(self.full_scan()?);
        let entries = scan.entries.clone();
        let live: HashSet<&Path> = entries.iter().map(|e| e.path.as_path()).collect();
        self.meta.lock().retain(|p, _| live.contains(p.as_path()));
        self.unparsable.lock().retain(|p| live.contains(p.as_path()));
        *self.scan.lock() = Some(scan);
        Ok(entries)
    }

    fn full_scan(&self) -> io::Result<Scan> {
        let (at, wall) = (Instant::now(), SystemTime::now());
        let mut entries = Vec::new();
        let mut dirs = Vec::new();
        let top_mtime = match fs::metadata(&self.dir) {
            Ok(m) => m.modified()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Scan { entries: Arc::new(Vec::new()), dirs, at, wall })
            }
            Err(e) => return Err(e),
        };
        dirs.push((self.dir.clone(), top_mtime));
        let subdirs = scan_dir(&self.dir, &mut entries, true)?;
        for sub in subdirs {
            // A sub-directory that vanished or cannot be read must not hide the rest of the listing.
            match fs::metadata(&sub).and_then(|m| m.modified()) {
                Ok(mtime) => dirs.push((sub.clone(), mtime)),
                Err(_) => continue,
            }
            if let Err(e) = scan_dir(&sub, &mut entries, false) {
                log::warn!("cannot list {}: {e}", sub.display());
            }
        }
        sort(&mut entries);
        Ok(Scan { entries: Arc::new(entries), dirs, at, wall })
    }

    /// Re-stat files that were hot at scan time; returns the (possibly updated) index.
    fn refresh_hot(&self, scan: &Arc<Scan>) -> Arc<Vec<Arc<Entry>>> {
        let hot_since = scan.wall.checked_sub(HOT_WINDOW).unwrap_or(SystemTime::UNIX_EPOCH);
        // Sorted newest first: hot entries form a prefix (unless clocks moved; then a full scan comes soon).
        let hot = scan.entries.iter().take_while(|e| e.modified >= hot_since).count();
        let mut changed: Vec<(usize, Option<Entry>)> = Vec::new();
        for (i, e) in scan.entries[..hot].iter().enumerate() {
            match Entry::stat(e.name.clone(), e.path.clone()) {
                Ok(now) if now == **e => {}
                Ok(now) => changed.push((i, Some(now))),
                Err(_) => changed.push((i, None)),
            }
        }
        if changed.is_empty() {
            return scan.entries.clone();
        }
        let mut entries: Vec<Arc<Entry>> = scan.entries.as_ref().clone();
        for (i, e) in changed.iter().rev() {
            match e {
                Some(e) => entries[*i] = Arc::new(e.clone()),
                None => {
                    entries.remove(*i);
                }
            }
        }
        sort(&mut entries);
        let entries = Arc::new(entries);
        let updated = Scan { entries: entries.clone(), dirs: scan.dirs.clone(), at: scan.at, wall: scan.wall };
        *self.scan.lock() = Some(Arc::new(updated));
        entries
    }

    /// Container metadata of a listed file, cached by (path, size, mtime).
    pub fn media_info(&self, e: &Entry) -> MediaInfo {
        if let Some((size, mtime, info)) = self.meta.lock().get(&e.path) {
            if *size == e.size && *mtime == e.modified {
                return *info;
            }
        }
        let info = meta::probe(&e.path).unwrap_or_else(|err| {
            if err.kind() == io::ErrorKind::NotFound {
                log::debug!("{}: removed while listing", e.path.display());
            } else if self.unparsable.lock().insert(e.path.clone()) {
                log::warn!("{}: listed without duration and size: {err}", e.path.display());
            }
            MediaInfo::default()
        });
        self.meta.lock().insert(e.path.clone(), (e.size, e.modified, info));
        info
    }
}

fn sort(entries: &mut [Arc<Entry>]) {
    entries.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| a.name.cmp(&b.name)));
}

fn dirs_unchanged(dirs: &[(PathBuf, SystemTime)]) -> bool {
    !dirs.is_empty() && dirs.iter().all(|(p, t)| fs::metadata(p).and_then(|m| m.modified()).ok() == Some(*t))
}

/// Adds the listable regular files of `dir` to `out`; returns its visible sub-directories when `collect_dirs`.
fn scan_dir(dir: &Path, out: &mut Vec<Arc<Entry>>, collect_dirs: bool) -> io::Result<Vec<PathBuf>> {
    let mut subdirs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if is_in_progress_or_hidden(&name) {
            continue;
        }
        // No symlinks in listings: a link could point anywhere, and the name it would be listed under is
        // ambiguous. (Info/download still follow links that stay inside the directory.)
        let ft = entry.file_type()?;
        if ft.is_dir() {
            if collect_dirs {
                subdirs.push(entry.path());
            }
        } else if ft.is_file() {
            match entry.metadata() {
                Ok(m) => out.push(Arc::new(Entry::from_metadata(name, entry.path(), &m))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(subdirs)
}

/// One page of `entries` without the names in `exclude`; returns the page and the total after exclusion.
pub fn page(
    entries: &[Arc<Entry>],
    exclude: &HashSet<String>,
    offset: usize,
    limit: usize,
) -> (Vec<Arc<Entry>>, usize) {
    if exclude.is_empty() {
        let page = entries.iter().skip(offset).take(limit).cloned().collect();
        return (page, entries.len());
    }
    let visible = entries.iter().filter(|e| !exclude.contains(&e.name));
    let total = entries.iter().filter(|e| !exclude.contains(&e.name)).count();
    (visible.skip(offset).take(limit).cloned().collect(), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cs-listing-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    fn set_mtime(p: &Path, secs_ago: u64) {
        let f = fs::File::options().write(true).open(p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs_ago)).unwrap();
    }

    #[test]
    fn lists_both_layouts_newest_first_and_sees_changes() {
        let d = tmp("layouts");
        fs::create_dir_all(d.join("camera0")).unwrap();
        for (rel, age) in [("flat_a.mp4", 300), ("camera0/sub_b.mp4", 100), ("flat_c.mp4", 100), (".hidden", 1)] {
            fs::write(d.join(rel), b"x").unwrap();
            set_mtime(&d.join(rel), age);
        }
        fs::write(d.join("camera0/writing.mp4.part"), b"x").unwrap();
        let idx = DirIndex::new(d.clone());
        let names: Vec<_> = idx.entries().unwrap().iter().map(|e| e.name.clone()).collect();
        assert_eq!(names, ["flat_c.mp4", "sub_b.mp4", "flat_a.mp4"]);
        // A hot file growing in place is seen without a directory change.
        fs::write(d.join("camera0/new.mp4"), b"1").unwrap();
        assert_eq!(idx.entries().unwrap()[0].size, 1);
        fs::write(d.join("camera0/new.mp4"), b"12345").unwrap();
        assert_eq!(idx.entries().unwrap()[0].size, 5);
        fs::remove_file(d.join("flat_a.mp4")).unwrap();
        assert_eq!(idx.entries().unwrap().len(), 3);
        let (p, total) = page(&idx.entries().unwrap(), &HashSet::from(["new.mp4".to_string()]), 1, 10);
        assert_eq!((p.len(), total), (1, 2));
        assert!(DirIndex::new(d.join("missing")).entries().unwrap().is_empty());
        fs::remove_dir_all(&d).unwrap();
    }
}
