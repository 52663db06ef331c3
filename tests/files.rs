//! File management, in-process: listings and metadata against ffprobe, name validation over the API and
//! over HTTP, retention, persisted settings, downloads.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use camera_service::auth::{Identity, Role};
use camera_service::config::Config;
use camera_service::error::FileKind;
use camera_service::files::download::{self, Credential};
use camera_service::files::{meta, Files};
use camera_service::http::Request;
use camera_service::process::status::Components;
use camera_service::process::{Shutdown, Supervisor};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::TempDir;

mod e2e;

/// The file methods through their table, as the dispatcher runs them (params decoded centrally).
mod rpc {
    use camera_service::auth::signed_url::UrlSigner;
    use camera_service::error::{FileKind, Result};
    use camera_service::files::rpc::{FileMethods, METHODS};
    use camera_service::files::Files;
    use camera_service::rpc::table::invoke;
    use serde_json::Value;

    fn call(files: &Files, urls: &UrlSigner, method: &str, p: &Value) -> Result<Value> {
        invoke(METHODS, &FileMethods { files: files.clone(), urls: urls.clone() }, method, p)
    }
    fn run(files: &Files, method: &str, p: &Value) -> Result<Value> {
        call(files, &UrlSigner::new(b"files-test-secret"), method, p)
    }
    fn by_kind(kind: FileKind, recording: &'static str, snapshot: &'static str) -> &'static str {
        if kind == FileKind::Recording {
            recording
        } else {
            snapshot
        }
    }
    pub fn list(files: &Files, kind: FileKind, p: &Value) -> Result<Value> {
        run(files, by_kind(kind, "list_recordings", "list_snapshots"), p)
    }
    pub fn info(files: &Files, kind: FileKind, p: &Value) -> Result<Value> {
        run(files, by_kind(kind, "get_recording_info", "get_snapshot_info"), p)
    }
    pub fn delete(files: &Files, kind: FileKind, p: &Value) -> Result<Value> {
        run(files, by_kind(kind, "delete_recording", "delete_snapshot"), p)
    }
    pub fn download_url(files: &Files, urls: &UrlSigner, p: &Value) -> Result<Value> {
        call(files, urls, "get_download_url", p)
    }
    pub fn set_retention(files: &Files, p: &Value) -> Result<Value> {
        run(files, "set_retention_policy", p)
    }
    pub fn get_threshold(files: &Files, p: &Value) -> Result<Value> {
        run(files, "get_storage_threshold", p)
    }
    pub fn set_threshold(files: &Files, p: &Value) -> Result<Value> {
        run(files, "set_storage_threshold", p)
    }
    pub fn cleanup(files: &Files, p: &Value) -> Result<Value> {
        run(files, "cleanup_old_files", p)
    }
    pub fn storage_info(files: &Files, p: &Value) -> Result<Value> {
        run(files, "get_storage_info", p)
    }
}

struct Fixture {
    dir: TempDir,
    config: Arc<Config>,
    active: Arc<Mutex<HashSet<String>>>,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        Fixture::with(tag, |_| {})
    }

    fn with(tag: &str, tweak: impl FnOnce(&mut Config)) -> Fixture {
        let dir = TempDir::new(tag);
        let mut c = Config::default();
        c.mediamtx.recordings_path = dir.path().join("recordings");
        c.mediamtx.snapshots_path = dir.path().join("snapshots");
        c.state_dir = dir.path().join("state");
        fs::create_dir_all(&c.mediamtx.recordings_path).unwrap();
        fs::create_dir_all(&c.mediamtx.snapshots_path).unwrap();
        tweak(&mut c);
        Fixture { dir, config: Arc::new(c), active: Arc::new(Mutex::new(HashSet::new())) }
    }

    /// A handle with its `files` thread (which ends when the handle is dropped).
    fn files(&self) -> Files {
        let active = self.active.clone();
        let (files, owner) = Files::new(self.config.clone(), Arc::new(move || active.lock().clone()));
        owner.spawn(Components::default(), &Supervisor::new(Shutdown::new())).unwrap();
        files
    }

    fn rec(&self, rel: &str) -> PathBuf {
        self.config.mediamtx.recordings_path.join(rel)
    }

    fn snap(&self, rel: &str) -> PathBuf {
        self.config.mediamtx.snapshots_path.join(rel)
    }
}

/// Writes `len` bytes at `path` with an mtime `age` seconds in the past.
pub(crate) fn put(path: &Path, len: usize, age: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, vec![b'x'; len]).unwrap();
    set_age(path, age);
}

fn set_age(path: &Path, age: u64) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(age)).unwrap();
}

fn names(v: &Value) -> Vec<String> {
    v["files"].as_array().unwrap().iter().map(|f| f["filename"].as_str().unwrap().to_string()).collect()
}

fn code(r: camera_service::error::Result<Value>) -> i64 {
    r.expect_err("an error was expected").code()
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-hide_banner", "-loglevel", "error", "-y"]).args(args).output().unwrap();
    assert!(out.status.success(), "ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// (duration, width, height) as ffprobe sees them.
fn ffprobe(path: &Path) -> (Option<f64>, u64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration:stream=width,height", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dur = v["format"]["duration"].as_str().and_then(|d| d.parse().ok());
    let video = v["streams"].as_array().unwrap().iter().find(|s| s["width"].is_u64()).unwrap().clone();
    (dur, video["width"].as_u64().unwrap(), video["height"].as_u64().unwrap())
}

#[test]
fn metadata_matches_ffprobe() {
    if !crate::support::require(crate::support::Prereq::Ffmpeg) {
        return;
    }
    let fx = Fixture::new("files-meta");
    fs::create_dir_all(fx.rec("camera0")).unwrap();
    let plain = fx.rec("camera0_2025-01-15_14-30-00.mp4");
    let frag = fx.rec("camera0/camera0_2025-01-15_15-00-00.mp4");
    let (jpg, png) = (fx.snap("camera0_snapshot_a.jpg"), fx.snap("camera0_snapshot_b.png"));
    let src = |size: &str, rate: u32| format!("testsrc2=size={size}:rate={rate}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src("320x240", 25),
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        plain.to_str().unwrap(),
    ]);
    let frag_flags = "+frag_keyframe+empty_moov+default_base_moof";
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src("352x288", 30),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440",
        "-t",
        "3.4",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "15",
        "-c:a",
        "aac",
        "-movflags",
        frag_flags,
        "-frag_duration",
        "500000",
        frag.to_str().unwrap(),
    ]);
    ffmpeg(&["-f", "lavfi", "-i", &src("640x480", 25), "-frames:v", "1", jpg.to_str().unwrap()]);
    ffmpeg(&["-f", "lavfi", "-i", &src("322x124", 25), "-frames:v", "1", png.to_str().unwrap()]);
    let files = fx.files();
    for (path, name) in [(&plain, "camera0_2025-01-15_14-30-00.mp4"), (&frag, "camera0_2025-01-15_15-00-00.mp4")] {
        let (dur, w, h) = ffprobe(path);
        let dur = dur.unwrap();
        let ours = meta::probe(path).unwrap();
        assert!((ours.duration_secs.unwrap() - dur).abs() < 0.05, "{name}: {ours:?} vs ffprobe {dur}");
        let info = rpc::info(&files, FileKind::Recording, &json!({ "filename": name })).unwrap();
        assert_eq!(info["duration"], json!(dur.round() as u64), "{info}");
        assert_eq!((info["width"].as_u64().unwrap(), info["height"].as_u64().unwrap()), (w, h));
        assert_eq!(info["file_size"], json!(fs::metadata(path).unwrap().len()));
        assert_eq!(info["download_url"], json!(format!("/files/recordings/{name}")));
        assert!(info["created_time"].as_str().unwrap().ends_with('Z'));
    }
    for (path, name) in [(&jpg, "camera0_snapshot_a.jpg"), (&png, "camera0_snapshot_b.png")] {
        let (_, w, h) = ffprobe(path);
        let info = rpc::info(&files, FileKind::Snapshot, &json!({ "filename": name })).unwrap();
        assert_eq!((info["width"].as_u64().unwrap(), info["height"].as_u64().unwrap()), (w, h), "{info}");
        assert_eq!(info["resolution"], json!(format!("{w}x{h}")));
    }
    // Listings carry the same metadata (and the recording in a sub-directory is found).
    let list = rpc::list(&files, FileKind::Recording, &json!({})).unwrap();
    assert_eq!(list["total"], 2);
    assert!(list["files"].as_array().unwrap().iter().all(|f| f["duration"].as_u64().unwrap() >= 2));
    // Not an MP4 at all: metadata is null, not an error.
    put(&fx.rec("broken.mp4"), 100, 0);
    let info = rpc::info(&files, FileKind::Recording, &json!({"filename": "broken.mp4"})).unwrap();
    assert_eq!((info["duration"].clone(), info["width"].clone()), (Value::Null, Value::Null));
}

#[test]
fn listing_order_and_pagination() {
    let fx = Fixture::new("files-list");
    put(&fx.rec("a_old.mp4"), 10, 500);
    put(&fx.rec("camera0/b_mid.mp4"), 20, 300);
    put(&fx.rec("camera1/c_new.mp4"), 30, 100);
    put(&fx.rec("d_same.mp4"), 5, 200);
    put(&fx.rec("camera0/e_same.mp4"), 5, 200);
    // Same mtime for both: the name breaks the tie.
    let t = fs::metadata(fx.rec("d_same.mp4")).unwrap().modified().unwrap();
    fs::File::options().write(true).open(fx.rec("camera0/e_same.mp4")).unwrap().set_modified(t).unwrap();
    put(&fx.rec(".hidden.mp4"), 1, 0);
    put(&fx.rec("camera0/writing.mp4.part"), 1, 0);
    put(&fx.rec("camera1/active.mp4"), 1, 0);
    fx.active.lock().insert("active.mp4".into());
    let files = fx.files();
    let all = rpc::list(&files, FileKind::Recording, &Value::Null).unwrap();
    assert_eq!(names(&all), ["c_new.mp4", "d_same.mp4", "e_same.mp4", "b_mid.mp4", "a_old.mp4"]);
    assert_eq!((all["total"].clone(), all["limit"].clone(), all["offset"].clone()), (json!(5), json!(100), json!(0)));
    let f = &all["files"][0];
    assert_eq!(f["file_size"], 30);
    assert_eq!(f["download_url"], "/files/recordings/c_new.mp4");
    let modified = f["modified_time"].as_str().unwrap();
    assert!(modified.ends_with('Z') && modified.len() == 20, "{modified}");
    let page = rpc::list(&files, FileKind::Recording, &json!({"limit": 2, "offset": 1})).unwrap();
    assert_eq!(names(&page), ["d_same.mp4", "e_same.mp4"]);
    assert_eq!(page["total"], 5);
    let past = rpc::list(&files, FileKind::Recording, &json!({"limit": 10, "offset": 99})).unwrap();
    assert_eq!((names(&past).len(), past["total"].clone()), (0, json!(5)));
    let last = rpc::list(&files, FileKind::Recording, &json!({"limit": 1000, "offset": 4})).unwrap();
    assert_eq!(names(&last), ["a_old.mp4"]);
    for bad in [
        json!({"limit": 0}),
        json!({"limit": -1}),
        json!({"limit": 1001}),
        json!({"limit": 1.5}),
        json!({"limit": "10"}),
        json!({"offset": -1}),
        json!({"offset": 0.5}),
        json!({"offset": true}),
        json!([1, 2]),
    ] {
        assert_eq!(code(rpc::list(&files, FileKind::Recording, &bad)), -32602, "{bad}");
    }
    // Once the recording ends its file is listed.
    fx.active.lock().clear();
    assert_eq!(rpc::list(&files, FileKind::Recording, &json!({})).unwrap()["total"], 6);
    // Snapshots: empty directory, then a missing one, then one that cannot be read.
    let snaps = rpc::list(&files, FileKind::Snapshot, &json!({})).unwrap();
    assert_eq!(snaps, json!({"files": [], "total": 0, "limit": 100, "offset": 0}));
    fs::remove_dir(&fx.config.mediamtx.snapshots_path).unwrap();
    assert_eq!(rpc::list(&files, FileKind::Snapshot, &json!({"limit": 3})).unwrap()["total"], 0);
    fs::write(&fx.config.mediamtx.snapshots_path, b"not a directory").unwrap();
    assert_eq!(code(rpc::list(&files, FileKind::Snapshot, &json!({}))), -32603);
}

/// Names that must never reach the filesystem.
pub(crate) const BAD_NAMES: [&str; 20] = [
    "../etc/passwd",
    "..",
    "../",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "/",
    "camera0/../../x.mp4",
    "camera0/x.mp4",
    "a\\b.mp4",
    ".hidden.mp4",
    ".",
    "x..mp4",
    "a\0b.mp4",
    "a\nb.mp4",
    "",
    "   ",
    "....//....//etc/passwd",
    "%2e%2e%2fetc%2fpasswd/..",
    "~/../../root/.ssh/id_rsa",
    "escape.mp4", // a symlink leaving the directory (created below)
];

fn identity(role: Role, expires_in: Option<i64>) -> Identity {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    Identity { user_id: "u".into(), role, method: "jwt", expires_at: expires_in.map(|s| now + s), key_id: None }
}

/// Credentials the fake verifier knows: a valid admin and viewer token, an expired token, an API key.
fn verify(c: Credential) -> Option<Identity> {
    match c {
        Credential::Jwt("admin-token") => Some(identity(Role::Admin, Some(3600))),
        Credential::Jwt("viewer-token") => Some(identity(Role::Viewer, Some(3600))),
        Credential::Jwt("expired-token") => Some(identity(Role::Viewer, Some(-10))),
        Credential::ApiKey("operator-key") => Some(identity(Role::Operator, None)),
        _ => None,
    }
}

fn signer() -> camera_service::auth::signed_url::UrlSigner {
    camera_service::auth::signed_url::UrlSigner::new(b"files-test-secret")
}

fn get(path: &str, headers: &[(&str, &str)]) -> Request {
    let headers = headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
    Request { method: "GET".into(), path: path.into(), query: String::new(), headers }
}

/// Status, headers and body of a download as a client would receive them.
fn fetch(files: &Files, req: &Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let resp = download::respond_with(files, req, verify);
    let (status, headers) = (resp.status, resp.headers.clone());
    let mut out = Vec::new();
    resp.write_to(&mut out, req.method == "HEAD").unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (status, headers, out[end + 4..].to_vec())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[test]
fn traversal_and_odd_names_are_rejected_over_api_and_http() {
    let fx = Fixture::new("files-names");
    fs::create_dir_all(fx.dir.path().join("outside")).unwrap();
    put(&fx.dir.path().join("outside/secret.mp4"), 10, 0);
    std::os::unix::fs::symlink(fx.dir.path().join("outside/secret.mp4"), fx.rec("escape.mp4")).unwrap();
    std::os::unix::fs::symlink(fx.dir.path().join("outside/secret.mp4"), fx.snap("escape.mp4")).unwrap();
    put(&fx.rec("camera0/x.mp4"), 10, 0);
    let files = fx.files();
    let auth = [("Authorization", "Bearer admin-token")];
    for name in BAD_NAMES {
        for kind in [FileKind::Recording, FileKind::Snapshot] {
            let p = json!({ "filename": name });
            assert_eq!(code(rpc::info(&files, kind, &p)), -32602, "info {name:?}");
            assert_eq!(code(rpc::delete(&files, kind, &p)), -32602, "delete {name:?}");
        }
        let p = json!({"file_type": "recording", "filename": name});
        assert_eq!(code(rpc::download_url(&files, &signer(), &p)), -32602, "get_download_url {name:?}");
        for prefix in ["/files/recordings/", "/files/snapshots/"] {
            let (status, _, body) = fetch(&files, &get(&format!("{prefix}{name}"), &auth));
            assert_eq!((status, body.as_slice()), (400, &b"Invalid filename"[..]), "GET {prefix}{name:?}");
        }
    }
    assert!(fx.dir.path().join("outside/secret.mp4").exists() && fx.rec("camera0/x.mp4").exists());
    // Non-string and missing names.
    for p in [json!({"filename": 5}), json!({"filename": null}), json!({}), json!({"filename": ["a"]})] {
        assert_eq!(code(rpc::info(&files, FileKind::Recording, &p)), -32602, "{p}");
    }
    // A directory is not a file; a missing file is -1005 with the Python text.
    assert_eq!(code(rpc::info(&files, FileKind::Recording, &json!({"filename": "camera0"}))), -32602);
    assert_eq!(fetch(&files, &get("/files/recordings/camera0", &auth)).0, 404);
    let err = rpc::info(&files, FileKind::Snapshot, &json!({"filename": "nope.jpg"})).unwrap_err();
    assert_eq!((err.code(), err.message()), (-1005, "Snapshot file not found: nope.jpg".to_string()));
    let err = rpc::delete(&files, FileKind::Recording, &json!({"filename": "nope.mp4"})).unwrap_err();
    assert_eq!((err.code(), err.message()), (-1005, "Recording file not found: nope.mp4".to_string()));
    let p = json!({"file_type": "snapshot", "filename": "nope.jpg"});
    assert_eq!(code(rpc::download_url(&files, &signer(), &p)), -1005);
    assert_eq!(fetch(&files, &get("/files/snapshots/nope.jpg", &auth)).0, 404);
    assert_eq!(code(rpc::download_url(&files, &signer(), &json!({"file_type": "video", "filename": "x.mp4"}))), -32602);
    // A bare name resolves into a sub-directory; a link that stays inside is followed.
    let url = rpc::download_url(&files, &signer(), &json!({"file_type": "recording", "filename": "x.mp4"})).unwrap();
    assert_eq!(url["download_url"], "/files/recordings/x.mp4");
    assert!(url["signed_url"].as_str().unwrap().starts_with("/files/recordings/x.mp4?expires="), "{url}");
    std::os::unix::fs::symlink(fx.rec("camera0/x.mp4"), fx.rec("inside.mp4")).unwrap();
    assert_eq!(rpc::info(&files, FileKind::Recording, &json!({"filename": "inside.mp4"})).unwrap()["file_size"], 10);
}

#[test]
fn delete_removes_files_but_not_an_active_recording() {
    let fx = Fixture::new("files-delete");
    put(&fx.rec("camera0/rec.mp4"), 10, 0);
    put(&fx.rec("camera0/live.mp4"), 10, 0);
    put(&fx.snap("s.jpg"), 10, 0);
    fx.active.lock().insert("live.mp4".into());
    let files = fx.files();
    assert_eq!(rpc::list(&files, FileKind::Recording, &json!({})).unwrap()["total"], 1);
    let r = rpc::delete(&files, FileKind::Recording, &json!({"filename": "rec.mp4"})).unwrap();
    assert_eq!(r, json!({"filename": "rec.mp4", "deleted": true, "message": "Recording file deleted successfully"}));
    assert!(!fx.rec("camera0/rec.mp4").exists());
    let err = rpc::delete(&files, FileKind::Recording, &json!({"filename": "live.mp4"})).unwrap_err();
    assert_eq!((err.code(), err.message()), (-1006, "Camera is currently recording".to_string()));
    assert!(fx.rec("camera0/live.mp4").exists());
    let r = rpc::delete(&files, FileKind::Snapshot, &json!({"filename": "s.jpg"})).unwrap();
    assert_eq!(r["message"], "Snapshot file deleted successfully");
    assert_eq!(rpc::list(&files, FileKind::Snapshot, &json!({})).unwrap()["total"], 0);
}

#[test]
fn retention_by_age_size_and_count_spares_active_recording() {
    let fx = Fixture::with("files-retention", |c| {
        c.snapshots.max_count = 2;
        c.snapshots.max_age = 365 * 86_400;
    });
    let day = 86_400;
    put(&fx.rec("camera0/r_40d.mp4"), 1000, 40 * day);
    put(&fx.rec("camera0/r_live_50d.mp4"), 1000, 50 * day); // an active recording's file, however old
    put(&fx.rec("r_10d.mp4"), 1000, 10 * day);
    put(&fx.rec("camera1/r_1d.mp4"), 1000, day);
    for (i, age) in [9u64, 8, 7, 6].iter().enumerate() {
        put(&fx.snap(&format!("s{i}.jpg")), 100, age * day);
    }
    put(&fx.snap(".s_hidden.jpg"), 100, 90 * day);
    fx.active.lock().insert("r_live_50d.mp4".into());
    let files = fx.files();
    // Config policy (cleanup_after_days 30, max_count 2): the 40-day recording and the two oldest snapshots.
    let r = rpc::cleanup(&files, &json!({})).unwrap();
    assert_eq!(
        r,
        json!({"cleanup_executed": true, "files_deleted": 3, "space_freed": 1200, "recordings_removed": 1,
               "snapshots_removed": 2, "message": "Cleanup completed successfully"})
    );
    assert!(!fx.rec("camera0/r_40d.mp4").exists() && fx.rec("camera0/r_live_50d.mp4").exists());
    assert!(!fx.snap("s0.jpg").exists() && !fx.snap("s1.jpg").exists() && fx.snap("s2.jpg").exists());
    assert!(fx.snap(".s_hidden.jpg").exists());
    // Age policy: 5 days.
    rpc::set_retention(&files, &json!({"policy_type": "age", "max_age_days": 5, "enabled": true})).unwrap();
    let r = rpc::cleanup(&files, &Value::Null).unwrap();
    assert_eq!((r["recordings_removed"].clone(), r["snapshots_removed"].clone()), (json!(1), json!(2)));
    assert!(!fx.rec("r_10d.mp4").exists() && fx.rec("camera1/r_1d.mp4").exists());
    assert!(fx.rec("camera0/r_live_50d.mp4").exists());
    // Size policy: a budget of 1500 bytes keeps only the newest recording (+ new snapshots), oldest removed first.
    put(&fx.rec("r_now.mp4"), 1000, 60);
    put(&fx.snap("s_now.jpg"), 100, 30);
    let gb = 1500.0 / (1024.0 * 1024.0 * 1024.0);
    rpc::set_retention(&files, &json!({"policy_type": "size", "max_size_gb": gb, "enabled": true})).unwrap();
    let r = rpc::cleanup(&files, &json!({})).unwrap();
    assert_eq!((r["files_deleted"].clone(), r["space_freed"].clone()), (json!(1), json!(1000)));
    assert!(!fx.rec("camera1/r_1d.mp4").exists() && fx.rec("r_now.mp4").exists() && fx.snap("s_now.jpg").exists());
    assert!(fx.rec("camera0/r_live_50d.mp4").exists(), "the active recording is never removed");
    // Disabled: nothing goes, even on demand; manual: nothing on schedule.
    rpc::set_retention(&files, &json!({"policy_type": "age", "max_age_days": 0.0001, "enabled": false})).unwrap();
    assert_eq!(rpc::cleanup(&files, &json!({})).unwrap()["files_deleted"], 0);
    assert!(fx.rec("r_now.mp4").exists());
}

#[test]
fn set_retention_policy_validation_and_result() {
    let fx = Fixture::new("files-policy");
    let files = fx.files();
    let r = rpc::set_retention(&files, &json!({"policy_type": "age", "max_age_days": 30, "enabled": true})).unwrap();
    assert_eq!(
        r,
        json!({"policy_type": "age", "enabled": true, "message": "Retention policy updated successfully", "max_age_days": 30})
    );
    let r = rpc::set_retention(&files, &json!({"policy_type": "size", "max_size_gb": 1.5, "enabled": false})).unwrap();
    assert_eq!(r["max_size_gb"], 1.5);
    assert!(r.get("max_age_days").is_none());
    let r = rpc::set_retention(&files, &json!({"policy_type": "manual", "enabled": true})).unwrap();
    assert_eq!(
        r,
        json!({"policy_type": "manual", "enabled": true, "message": "Retention policy updated successfully"})
    );
    for bad in [
        Value::Null,
        json!({}),
        json!([1]),
        json!({"policy_type": "age", "enabled": true}),
        json!({"policy_type": "age", "max_age_days": 0, "enabled": true}),
        json!({"policy_type": "age", "max_age_days": -3, "enabled": true}),
        json!({"policy_type": "age", "max_age_days": "30", "enabled": true}),
        json!({"policy_type": "size", "max_age_days": 3, "enabled": true}),
        json!({"policy_type": "forever", "enabled": true}),
        json!({"policy_type": "manual"}),
        json!({"policy_type": "manual", "enabled": "yes"}),
        json!({"enabled": true}),
    ] {
        assert_eq!(code(rpc::set_retention(&files, &bad)), -32602, "{bad}");
    }
}

#[test]
fn policy_and_thresholds_survive_a_restart() {
    let fx = Fixture::new("files-restart");
    let files = fx.files();
    assert_eq!(
        rpc::get_threshold(&files, &json!({})).unwrap(),
        json!({"warning_threshold": 80, "critical_threshold": 90})
    );
    rpc::set_retention(&files, &json!({"policy_type": "age", "max_age_days": 2, "enabled": true})).unwrap();
    let t = rpc::set_threshold(&files, &json!({"warning_threshold": 60, "critical_threshold": 75})).unwrap();
    assert_eq!(t, json!({"warning_threshold": 60, "critical_threshold": 75}));
    for bad in [
        json!({"warning_threshold": 80, "critical_threshold": 80}),
        json!({"warning_threshold": 90, "critical_threshold": 10}),
        json!({"warning_threshold": -1}),
        json!({"critical_threshold": 101}),
        json!({"warning_threshold": 50.5}),
        json!({"warning_threshold": "50"}),
        json!({}),
        json!({"critical_threshold": 60}),
    ] {
        assert_eq!(code(rpc::set_threshold(&files, &bad)), -32602, "{bad}");
    }
    drop(files);
    // A new process: the stored policy (2 days) wins over the configured 30 days.
    let files = fx.files();
    assert_eq!(files.thresholds().warning, 60);
    assert_eq!(rpc::get_threshold(&files, &Value::Null).unwrap()["critical_threshold"], 75);
    put(&fx.rec("r_3d.mp4"), 10, 3 * 86_400);
    assert_eq!(rpc::cleanup(&files, &json!({})).unwrap()["recordings_removed"], 1);
    assert!(fx.config.state_dir.join("retention.json").exists());
}

#[test]
fn storage_info_is_consistent() {
    let fx = Fixture::new("files-storage");
    put(&fx.rec("camera0/a.mp4"), 1000, 0);
    put(&fx.rec(".hidden.part"), 24, 0);
    put(&fx.snap("s.jpg"), 100, 0);
    let files = fx.files();
    rpc::set_threshold(&files, &json!({"warning_threshold": 1, "critical_threshold": 2})).unwrap();
    let s = rpc::storage_info(&files, &json!({})).unwrap();
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(n("used_space") + n("free_space"), n("total_space"));
    assert_eq!(n("available_space"), n("free_space"));
    assert_eq!((n("recordings_size"), n("snapshots_size")), (1024, 100));
    assert_eq!((n("warn_threshold"), n("block_threshold")), (1, 2));
    let pct = s["used_percent"].as_f64().unwrap();
    assert_eq!(s["usage_percentage"].as_f64().unwrap(), pct);
    assert_eq!(s["low_space_warning"], json!(pct >= 1.0));
    assert_eq!(s["critical_space_warning"], json!(pct >= 2.0));
}

#[test]
fn downloads_require_credentials_and_honour_ranges() {
    let fx = Fixture::new("files-download");
    let body: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    fs::create_dir_all(fx.rec("camera0")).unwrap();
    fs::write(fx.rec("camera0/clip.mp4"), &body).unwrap();
    fs::write(fx.snap("shot.png"), b"\x89PNG....").unwrap();
    let files = fx.files();
    let url = "/files/recordings/clip.mp4";
    // No, unknown, expired credentials: 401 with a challenge.
    for h in [
        vec![],
        vec![("Authorization", "Bearer nope")],
        vec![("Authorization", "Bearer expired-token")],
        vec![("Authorization", "Basic admin-token")],
        vec![("X-API-Key", "wrong")],
    ] {
        let (status, headers, _) = fetch(&files, &get(url, &h));
        assert_eq!(status, 401, "{h:?}");
        assert_eq!(header(&headers, "WWW-Authenticate"), Some("Bearer"));
    }
    // Valid token, viewer role, API key.
    for h in [
        [("Authorization", "Bearer admin-token")],
        [("Authorization", "bearer viewer-token")],
        [("X-API-Key", "operator-key")],
    ] {
        let (status, headers, got) = fetch(&files, &get(url, &h));
        assert_eq!(status, 200, "{h:?}");
        assert_eq!(got, body);
        assert_eq!(header(&headers, "Content-Type"), Some("video/mp4"));
        assert_eq!(header(&headers, "Accept-Ranges"), Some("bytes"));
        assert_eq!(header(&headers, "Content-Disposition"), Some("attachment; filename=\"clip.mp4\""));
    }
    let viewer = ("Authorization", "Bearer viewer-token");
    let (status, headers, got) = fetch(&files, &get("/files/snapshots/shot.png", &[viewer]));
    assert_eq!(
        (status, header(&headers, "Content-Type"), got.as_slice()),
        (200, Some("image/png"), &b"\x89PNG...."[..])
    );
    // Ranges.
    for (range, start, end) in [("bytes=100-199", 100, 199), ("bytes=9990-", 9990, 9999), ("bytes=-10", 9990, 9999)] {
        let (status, headers, got) = fetch(&files, &get(url, &[viewer, ("Range", range)]));
        assert_eq!(status, 206, "{range}");
        assert_eq!(got, &body[start..=end], "{range}");
        let expect = format!("bytes {start}-{end}/10000");
        assert_eq!(header(&headers, "Content-Range"), Some(expect.as_str()));
    }
    let (status, headers, _) = fetch(&files, &get(url, &[viewer, ("Range", "bytes=10000-")]));
    assert_eq!((status, header(&headers, "Content-Range")), (416, Some("bytes */10000")));
    // HEAD: headers only; other methods refused.
    let mut head = get(url, &[viewer]);
    head.method = "HEAD".into();
    let (status, _, got) = fetch(&files, &head);
    assert_eq!((status, got.len()), (200, 0));
    head.method = "DELETE".into();
    assert_eq!(fetch(&files, &head).0, 405);
    assert_eq!(fetch(&files, &get("/files/recordings/missing.mp4", &[viewer])).0, 404);
    assert!(download::is_download_path(url) && !download::is_download_path("/files/other/x"));
}
