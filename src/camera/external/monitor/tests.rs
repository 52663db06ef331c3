use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::super::fake_rtsp::{FakeRtsp, SDP_320X240_10};
use super::super::ExternalStream;
use super::super::{start, Change, ExternalStreams, NewStream, Origin};
use crate::camera::model::{Camera, CameraKind, CameraStatus};
use crate::config::{Config, ExternalCameraConfig};
use crate::error::Error;
use crate::process::{Shutdown, Supervisor};

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("cs-ext-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Rig {
    sup: Supervisor,
    ext: ExternalStreams,
    changes: Receiver<Change>,
}

impl Rig {
    fn start(dir: &Path, external: &[(&str, String)]) -> Rig {
        let mut c = Config { state_dir: dir.to_path_buf(), ..Default::default() };
        c.camera.external = external
            .iter()
            .map(|(n, u)| ExternalCameraConfig { name: n.to_string(), url: u.clone(), transport: None })
            .collect();
        c.camera.external_probe_interval = 0.3;
        c.camera.external_probe_timeout = 1.0;
        let sup = Supervisor::new(Shutdown::new());
        let (tx, changes) = crossbeam_channel::unbounded();
        let (ext, ready) = start(&std::sync::Arc::new(c), Box::new(move |ch| drop(tx.send(ch))), &sup).unwrap();
        ready.recv_timeout(Duration::from_secs(5)).expect("initial checks");
        Rig { sup, ext, changes }
    }

    /// The next upsert of `name` whose status is `status`.
    fn wait_for(&self, name: &str, status: CameraStatus) -> Camera {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            match self.changes.recv_deadline(deadline) {
                Ok(Change::Upsert(c)) if c.device == name && c.status == status => return *c,
                Ok(_) => {}
                Err(_) => panic!("{name} never became {status:?}"),
            }
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.sup.shutdown().trigger();
        assert!(self.sup.join_all(Duration::from_secs(2)).is_empty(), "threads stop at once");
    }
}

fn add(ext: &ExternalStreams, name: &str, url: &str) -> crate::error::Result<ExternalStream> {
    ext.add(NewStream { name: name.into(), url: url.into(), transport: None })
}

#[test]
fn configured_and_added_streams_follow_their_source() {
    let fake = FakeRtsp::start(&["cam"], SDP_320X240_10, None);
    let dir = Dir::new("follow");
    let url = format!("rtsp://127.0.0.1:{}/cam", fake.port);
    let rig = Rig::start(&dir.0, &[("door", url.clone())]);
    let cam = rig.wait_for("door", CameraStatus::Connected);
    assert_eq!(
        (cam.kind, cam.path_name.as_str(), cam.identity.as_str()),
        (CameraKind::External, "door", "external:door")
    );
    assert_eq!((cam.resolution.as_str(), cam.fps, cam.validation_status.as_str()), ("320x240", 10, "confirmed"));
    assert_eq!(cam.format_codes(), ["H264"]);
    assert_eq!(cam.external.as_ref().unwrap().url.expose(), url);
    let list = rig.ext.list();
    assert_eq!((list[0].origin, list[0].status, list[0].checked), (Origin::Config, CameraStatus::Connected, true));

    // A run-time addition replies after its first check: this path is not served (404).
    let secret_url = format!("rtsp://u:s3cret@127.0.0.1:{}/other", fake.port);
    let yard = add(&rig.ext, "yard", &secret_url).unwrap();
    assert_eq!((yard.status, yard.origin, yard.checked), (CameraStatus::Disconnected, Origin::Runtime, true));
    assert_eq!(yard.url.to_string(), format!("rtsp://u:***@127.0.0.1:{}/other", fake.port));
    assert!(yard.error.unwrap().contains("404"));
    let stored = std::fs::read_to_string(dir.0.join(super::super::store::FILE)).unwrap();
    assert!(stored.contains("s3cret"), "the store keeps the real URL");

    // Refusals name the field; none echoes a password.
    for (name, url, field) in [
        ("Door", "rtsp://127.0.0.1/x", "stream_name"),
        ("camera1", "rtsp://127.0.0.1/x", "stream_name"),
        ("ok", "http://127.0.0.1/x", "stream_url"),
        ("again", &format!("rtsp://u:other@127.0.0.1:{}/other", fake.port), "stream_url"),
    ] {
        match add(&rig.ext, name, url) {
            Err(Error::InvalidParams(r)) => assert!(r.starts_with(field) && !r.contains("other@"), "{r}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(rig.ext.remove("door"), Err(Error::InvalidParams(r)) if r.contains("configuration file")));
    match rig.ext.remove("rtsp://x:hunter2@127.0.0.1/none") {
        Err(e @ Error::CameraNotFound(_)) => assert!(!e.to_wire().to_string().contains("hunter2")),
        other => panic!("{other:?}"),
    }
    // Removal by the URL as clients see it (password masked).
    let removed = rig.ext.remove(&yard.url.to_string()).unwrap();
    assert_eq!(removed.name, "yard");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !matches!(rig.changes.recv_deadline(deadline), Ok(Change::Remove(n)) if n == "yard") {}
    assert_eq!(rig.ext.list().len(), 1);
    assert!(!std::fs::read_to_string(dir.0.join(super::super::store::FILE)).unwrap().contains("yard"));

    // The source goes away: DISCONNECTED after the recheck.
    drop(fake);
    let t = Instant::now();
    let cam = rig.wait_for("door", CameraStatus::Disconnected);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!((cam.resolution.as_str(), cam.fps, cam.validation_status.as_str()), ("", 0, "disconnected"));
}

#[test]
fn run_time_streams_survive_a_restart() {
    let fake = FakeRtsp::start(&["a", "b"], SDP_320X240_10, None);
    let dir = Dir::new("restart");
    let (a, b) = (format!("rtsp://127.0.0.1:{}/a", fake.port), format!("rtsp://127.0.0.1:{}/b", fake.port));
    {
        let rig = Rig::start(&dir.0, &[]);
        assert_eq!(add(&rig.ext, "alpha", &a).unwrap().status, CameraStatus::Connected);
        add(&rig.ext, "beta", &b).unwrap();
    }
    // After the restart "beta" is configured too: the configured entry wins, the stored one is ignored.
    let rig = Rig::start(&dir.0, &[("beta", b.clone())]);
    let list = rig.ext.list();
    let names: Vec<(&str, Origin)> = list.iter().map(|s| (s.name.as_str(), s.origin)).collect();
    assert_eq!(names, [("beta", Origin::Config), ("alpha", Origin::Runtime)]);
    rig.wait_for("alpha", CameraStatus::Connected);
    assert!(list.iter().all(|s| s.checked), "ready means every source was checked once");
}

#[test]
fn credentials_answer_the_challenge_and_wrong_ones_are_an_error() {
    let fake = FakeRtsp::start(&["cam"], SDP_320X240_10, Some("admin:pa:ss"));
    let dir = Dir::new("auth");
    let good = format!("rtsp://admin:pa%3Ass@127.0.0.1:{}/cam", fake.port);
    let bad = format!("rtsp://admin:wrong@127.0.0.1:{}/cam?x=1", fake.port);
    let none = format!("rtsp://127.0.0.1:{}/cam?x=2", fake.port);
    let rig = Rig::start(&dir.0, &[("good", good), ("bad", bad), ("none", none)]);
    rig.wait_for("good", CameraStatus::Connected);
    let list = rig.ext.list();
    assert_eq!(list[1].status, CameraStatus::Error);
    assert_eq!(list[1].error.as_deref(), Some("the source rejected the credentials"));
    assert_eq!(list[2].error.as_deref(), Some("the source requires credentials"));
}
