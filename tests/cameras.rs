//! Camera discovery, probing and hot-plug.
//!
//! Device nodes are real character devices created with mknod(2) in a temp device directory (the tests run as
//! root, as CI does). Without a V4L2 driver behind them opening them fails, which is exactly the "unopenable node"
//! case. For working cameras the tests re-execute this test binary with `LD_PRELOAD` of a small C shim
//! (tests/shim/v4l2_shim.c) that answers open/ioctl for the listed nodes with canned V4L2 replies, so the real
//! ioctl and decoding path of the daemon runs. `child_*` tests do the work inside that child and are no-ops when
//! run directly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use camera_service::camera::{CameraStatus, Cameras};
use camera_service::config::{Config, VirtualCameraConfig};
use camera_service::process::heartbeat::Heartbeats;
use camera_service::process::status::Components;
use camera_service::process::{Shutdown, Supervisor};
use camera_service::rpc::notify::{Hub, Notification, Subscriber};
use crossbeam_channel::{unbounded, Receiver, Sender};
use serde_json::{json, Value};

use crate::support::{require, require_all, Prereq, TempDir};

const CHILD_ENV: &str = "CAMTEST_DIR";
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/// The shim, compiled once per test run.
pub fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shim/v4l2_shim.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("v4l2_shim-{}.so", std::process::id()));
        let st = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-ldl")
            .status()
            .expect("run cc");
        assert!(st.success(), "building the V4L2 shim failed");
        out
    })
}

/// `mknod <path> c 81 <minor>` (81 = video4linux).
pub fn mknod(path: &Path, minor: u32) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o660, libc::makedev(81, minor)) };
    assert_eq!(r, 0, "mknod {}: {}", path.display(), std::io::Error::last_os_error());
}

/// Notifications as a client on host `cam.test` would receive them.
struct Collect(Sender<(String, Value)>);

impl Subscriber for Collect {
    fn deliver(&self, n: &Arc<Notification>) {
        // Once under each of its topics (the Python notification first).
        for t in n.topics().python().into_iter().chain(n.topics().iter().filter(|t| !t.is_python())) {
            let _ = self.0.send((t.name().to_string(), n.params(Some("cam.test"))));
        }
    }
}

/// The camera component running in this process against a temp device directory.
struct Harness {
    cameras: Cameras,
    notes: Receiver<(String, Value)>,
    shutdown: Shutdown,
    supervisor: Supervisor,
    dev: PathBuf,
}

impl Harness {
    fn start(root: &Path, tweak: impl FnOnce(&mut Config)) -> Harness {
        let dev = root.join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        let mut config = Config::default();
        config.camera.device_dir = dev.clone();
        config.camera.sysfs_dir = root.join("sys");
        config.camera.poll_interval = 1.0;
        config.camera.capability_retry_interval = 0.2;
        tweak(&mut config);
        let hub = Hub::new();
        let (tx, notes) = unbounded();
        hub.subscribe(Arc::new(Collect(tx)));
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(shutdown.clone());
        let (cameras, threads) = Cameras::new(Arc::new(config));
        threads.spawn(hub, Components::default(), &Heartbeats::default(), &supervisor).unwrap();
        Harness { cameras, notes, shutdown, supervisor, dev }
    }

    fn node(&self, n: u32) -> PathBuf {
        self.dev.join(format!("video{n}"))
    }

    /// Next `camera_status_update` for `device` matching `pred` (others are skipped).
    fn wait_status(&self, device: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.checked_duration_since(Instant::now()).expect("timed out waiting for notification");
            let (method, params) = self.notes.recv_timeout(left).expect("timed out waiting for notification");
            if method == "camera_status_update" && params["device"] == device && pred(&params) {
                return params;
            }
        }
    }

    /// The topics the next notifications about `device` were published under, until `last` is among them.
    fn topics_until(&self, device: &str, last: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.checked_duration_since(Instant::now()).expect("timed out waiting for an event");
            let (topic, params) = self.notes.recv_timeout(left).expect("timed out waiting for an event");
            if params["device"] == device {
                seen.push(topic.clone());
                if topic == last {
                    return seen;
                }
            }
        }
    }

    /// Every `camera_status_update` for `device` until nothing arrives for `quiet`.
    fn drain(&self, device: &str, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok((method, params)) = self.notes.recv_timeout(quiet) {
            if method == "camera_status_update" && params["device"] == device {
                out.push(params);
            }
        }
        out
    }

    fn wait_until(&self, what: &str, pred: impl Fn(&Cameras) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !pred(&self.cameras) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let stuck = self.supervisor.join_all(Duration::from_secs(5));
        if !std::thread::panicking() {
            assert!(stuck.is_empty(), "camera threads did not stop: {stuck:?}");
        }
    }
}

/// Run `cameras::<test>` in a child with the shim preloaded; `root` holds `dev/`, `sys/` and the spec.
fn run_child(test: &str, root: &Path) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("cameras::{test}"), "--nocapture", "--test-threads=1"])
        .env("LD_PRELOAD", shim())
        .env("CAMSHIM_SPEC", root.join("spec"))
        .env(CHILD_ENV, root)
        .output()
        .expect("run child test");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child {test} failed:\n{text}");
    assert!(text.contains("1 passed"), "child {test} did not run:\n{text}");
}

/// Replace the shim's spec file atomically (a probe may read it at any moment).
fn write_spec(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn child_root() -> Option<PathBuf> {
    std::env::var_os(CHILD_ENV).map(PathBuf::from)
}

/// A UVC-like capture node in spec syntax.
pub fn spec_node(path: &Path, card: &str, bus: &str, caps: &str, dcaps: &str, body: &str) -> String {
    format!("node|{}|uvcvideo|{card}|{bus}|{caps}|{dcaps}\n{body}", path.display())
}

pub const C920_FORMATS: &str = "fmt|YUYV|YUYV 4:2:2\nsize|640|480|1/30,1/15\nsize|1920|1080|1/5\n\
                            fmt|MJPG|Motion-JPEG\nsize|1920|1080|1/30\nsize|1280|720|1/30,1/15\n";

/// Fake sysfs: `class/video4linux/videoN/device` → interface dir of the USB device at `port` (with `serial`).
fn fake_sysfs(root: &Path, number: u32, port: &str, serial: Option<&str>) {
    let dev = root.join("sys/devices/usb1").join(port);
    std::fs::create_dir_all(dev.join(format!("{port}:1.0"))).unwrap();
    std::fs::write(dev.join("idVendor"), "046d\n").unwrap();
    std::fs::write(dev.join("idProduct"), "0892\n").unwrap();
    if let Some(s) = serial {
        std::fs::write(dev.join("serial"), format!("{s}\n")).unwrap();
    }
    let class = root.join("sys/class/video4linux").join(format!("video{number}"));
    std::fs::create_dir_all(&class).unwrap();
    std::os::unix::fs::symlink(format!("../../../devices/usb1/{port}/{port}:1.0"), class.join("device")).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// In-process tests (no shim)

#[test]
fn unopenable_char_node_is_listed_as_error_and_announced() {
    if !require(Prereq::Root) {
        return;
    }
    let root = TempDir::new("cam-error");
    let h = Harness::start(root.path(), |_| {});
    assert!(h.cameras.list().is_empty());
    // A regular file named like a node is not a device: ignored.
    std::fs::write(h.node(4), b"not a device").unwrap();
    // `mknod video3 c 81 3` on a machine without V4L2: open fails with ENXIO.
    mknod(&h.node(3), 3);
    let n = h.wait_status("/dev/video3", |_| true);
    assert_eq!(n["status"], "ERROR", "{n}");
    // For subscribers its first announcement is a status change, not a connection.
    assert_eq!(h.topics_until("/dev/video3", "camera.status_change"), ["camera.status_change"]);
    assert_eq!((n["resolution"].clone(), n["fps"].clone(), n["streams"].clone()), (json!(""), json!(0), json!({})));
    assert_eq!(n["name"], "Camera 3");
    assert_eq!(n["virtual"], false);
    assert_eq!(n["identity"], "node:/dev/video3");
    let cam = h.cameras.get("camera3").unwrap();
    assert_eq!(cam.status, CameraStatus::Error);
    assert!(cam.error.as_deref().unwrap_or("").contains("open failed"), "{:?}", cam.error);
    assert_eq!(h.cameras.list().len(), 1, "the regular file must not be listed");
    // Retries give the same answer: no second identical notification.
    assert!(h.drain("/dev/video3", Duration::from_millis(800)).is_empty());
    // Removing it: DISCONNECTED, still known.
    std::fs::remove_file(h.node(3)).unwrap();
    let n = h.wait_status("/dev/video3", |_| true);
    assert_eq!(n["status"], "DISCONNECTED");
    let topics = h.topics_until("/dev/video3", "camera.status_change");
    assert_eq!(topics, ["camera.disconnected", "camera.status_change"]);
    assert_eq!(h.cameras.get("/dev/video3").unwrap().status, CameraStatus::Disconnected);
    assert!(h.cameras.get("/dev/video4").is_err());
}

#[test]
fn virtual_cameras_come_first_with_their_capabilities() {
    let root = TempDir::new("cam-virtual");
    let h = Harness::start(root.path(), |c| {
        c.camera.virtual_cameras = vec![
            VirtualCameraConfig::default(),
            VirtualCameraConfig { name: "Bars".into(), width: 1280, height: 720, fps: 30, pattern: "smptebars".into() },
        ];
    });
    let list = h.cameras.list();
    assert_eq!(list.iter().map(|c| c.device.as_str()).collect::<Vec<_>>(), ["virtual0", "virtual1"]);
    let v1 = h.cameras.get("virtual1").unwrap();
    assert!(v1.is_virtual && v1.status == CameraStatus::Connected);
    assert_eq!((v1.name.as_str(), v1.resolution.as_str(), v1.fps), ("Bars", "1280x720", 30));
    assert_eq!(v1.resolutions(), ["1280x720"]);
    assert_eq!(v1.fps_options(), [30]);
    assert_eq!(v1.format_codes(), ["YU12"]);
    assert_eq!(v1.identity, "virtual:1:smptebars");
    assert_eq!(v1.virtual_source.as_ref().unwrap().pattern, "smptebars");
    // Announced at start, with stream URLs for the client's host (MediaMTX enabled by default).
    let n = h.wait_status("virtual0", |_| true);
    assert_eq!(n["status"], "CONNECTED");
    assert_eq!(n["streams"]["rtsp"], "rtsp://cam.test:8554/virtual0");
    assert_eq!(n["virtual"], true);
    assert!(h.cameras.get("virtual2").is_err());
}

// ---------------------------------------------------------------------------------------------------------------
// Through the shim (child processes)

#[test]
fn enumerates_capture_devices_and_ignores_metadata_nodes() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler]) {
        return;
    }
    let root = TempDir::new("cam-enum");
    let dev = root.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    for n in [0, 1, 2] {
        mknod(&dev.join(format!("video{n}")), n);
    }
    let spec = [
        spec_node(
            &dev.join("video0"),
            "HD Pro Webcam C920",
            "usb-0000:00:14.0-1",
            "84a00001",
            "04200001",
            C920_FORMATS,
        ),
        // The C920's second node: metadata capture only.
        spec_node(&dev.join("video1"), "HD Pro Webcam C920", "usb-0000:00:14.0-1", "84a00001", "04a00000", ""),
        // A multi-planar capture node without DEVICE_CAPS, stepwise sizes and an interval range.
        spec_node(
            &dev.join("video2"),
            "Planar Cam",
            "platform:cam",
            "04001000",
            "00000000",
            "fmt|NV12|Y/CbCr 4:2:0\nstepsize|16|4096|16|16|2160|16\nivrange|1/60|1/10\n",
        ),
    ]
    .concat();
    std::fs::write(root.path().join("spec"), spec).unwrap();
    run_child("child_enumerates", root.path());
}

#[test]
fn child_enumerates() {
    let Some(root) = child_root() else { return };
    let h = Harness::start(&root, |_| {});
    let list = h.cameras.list();
    assert_eq!(list.iter().map(|c| c.device.as_str()).collect::<Vec<_>>(), ["/dev/video0", "/dev/video2"]);
    let c0 = h.cameras.get("/dev/video0").unwrap();
    assert_eq!(
        (c0.name.as_str(), c0.driver.as_deref(), c0.bus_info.as_deref()),
        ("HD Pro Webcam C920", Some("uvcvideo"), Some("usb-0000:00:14.0-1"))
    );
    assert_eq!(c0.format_codes(), ["YUYV", "MJPG"]);
    assert_eq!(c0.formats[0].description, "YUYV 4:2:2");
    let yuyv = &c0.formats[0].sizes;
    // Sizes largest first, rates highest first.
    assert_eq!((yuyv[0].width, yuyv[0].height, yuyv[0].fps.clone()), (1920, 1080, vec![5.0]));
    assert_eq!((yuyv[1].width, yuyv[1].height, yuyv[1].fps.clone()), (640, 480, vec![30.0, 15.0]));
    assert_eq!(c0.resolutions(), ["1920x1080", "1280x720", "640x480"]);
    // Preferred: MJPG, its largest size, the highest rate ≤ 30.
    assert_eq!((c0.resolution.as_str(), c0.fps, c0.input_format.as_deref()), ("1920x1080", 30, Some("mjpeg")));
    assert_eq!(c0.fps_options(), [15, 30]);
    assert_eq!(c0.identity, "bus:usb-0000:00:14.0-1");
    assert_eq!(c0.validation_status, "provisional");
    assert!(h.cameras.get("/dev/video1").is_err(), "metadata node must not be listed");

    let c2 = h.cameras.get("camera2").unwrap();
    assert_eq!(c2.format_codes(), ["NV12"]);
    assert_eq!((c2.resolution.as_str(), c2.fps), ("1920x1072", 30));
    assert!(c2.resolutions().contains(&"1280x720".to_string()));
    assert_eq!(c2.formats[0].sizes[0].fps, [60.0, 50.0, 30.0, 25.0, 24.0, 20.0, 15.0, 10.0]);

    // Both announced, with URLs for the client's host.
    let n = h.wait_status("/dev/video0", |_| true);
    assert_eq!(n["status"], "CONNECTED");
    assert_eq!(h.topics_until("/dev/video0", "camera.status_change"), ["camera.connected", "camera.status_change"]);
    assert_eq!((n["resolution"].clone(), n["fps"].clone()), (json!("1920x1080"), json!(30)));
    assert_eq!(n["streams"]["hls"], "http://cam.test:8888/camera0/index.m3u8");
    assert_eq!(n["driver"], "uvcvideo");
    h.wait_status("/dev/video2", |n| n["status"] == "CONNECTED");
    // A second probe with identical answers confirms the capabilities, without a new notification.
    h.wait_until("capabilities confirmed", |c| c.get("/dev/video0").unwrap().validation_status == "confirmed");
    assert!(h.drain("/dev/video0", Duration::from_millis(300)).is_empty());
}

#[test]
fn replug_with_a_new_number_keeps_the_identity() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler]) {
        return;
    }
    let root = TempDir::new("cam-replug");
    let dev = root.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    // One USB camera with a serial number that comes back as video6; one without serial (bus path identity) that
    // comes back as video7 in the same port.
    fake_sysfs(root.path(), 2, "1-2", Some("SER-0042"));
    fake_sysfs(root.path(), 6, "1-2", Some("SER-0042"));
    let spec = [
        spec_node(&dev.join("video2"), "Cam A", "usb-0000:00:14.0-2", "84a00001", "04200001", C920_FORMATS),
        spec_node(&dev.join("video6"), "Cam A", "usb-0000:00:14.0-2", "84a00001", "04200001", C920_FORMATS),
        spec_node(&dev.join("video3"), "Cam B", "usb-0000:00:14.0-4", "84a00001", "04200001", C920_FORMATS),
        spec_node(&dev.join("video7"), "Cam B", "usb-0000:00:14.0-4", "84a00001", "04200001", C920_FORMATS),
    ]
    .concat();
    std::fs::write(root.path().join("spec"), spec).unwrap();
    run_child("child_replug", root.path());
}

#[test]
fn child_replug() {
    let Some(root) = child_root() else { return };
    let h = Harness::start(&root, |_| {});
    for (first, second, identity) in [(2, 6, "usb:046d:0892:SER-0042"), (3, 7, "bus:usb-0000:00:14.0-4")] {
        let (d1, d2) = (format!("/dev/video{first}"), format!("/dev/video{second}"));
        mknod(&h.node(first), first);
        let n = h.wait_status(&d1, |_| true);
        assert_eq!((n["status"].clone(), n["identity"].clone()), (json!("CONNECTED"), json!(identity)), "{n}");
        std::fs::remove_file(h.node(first)).unwrap();
        let n = h.wait_status(&d1, |_| true);
        assert_eq!(n["status"], "DISCONNECTED", "{n}");
        assert_eq!((n["resolution"].clone(), n["fps"].clone(), n["streams"].clone()), (json!(""), json!(0), json!({})));
        assert_eq!(n["identity"], identity, "the unplugged camera keeps its identity");
        mknod(&h.node(second), second);
        let n = h.wait_status(&d2, |_| true);
        assert_eq!((n["status"].clone(), n["identity"].clone()), (json!("CONNECTED"), json!(identity)), "{n}");
        assert_eq!(h.cameras.get(&d1).unwrap().status, CameraStatus::Disconnected);
        assert_eq!(h.cameras.get(&format!("camera{second}")).unwrap().identity, identity);
    }
    let serial = h.cameras.get("/dev/video6").unwrap().serial.clone();
    assert_eq!(serial.as_deref(), Some("SER-0042"));
}

#[test]
fn rapid_plug_events_settle_consistently() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler]) {
        return;
    }
    let root = TempDir::new("cam-storm");
    let dev = root.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    let spec = spec_node(&dev.join("video4"), "Storm Cam", "usb-0000:00:14.0-9", "84a00001", "04200001", C920_FORMATS);
    std::fs::write(root.path().join("spec"), spec).unwrap();
    run_child("child_storm", root.path());
}

#[test]
fn child_storm() {
    let Some(root) = child_root() else { return };
    let h = Harness::start(&root, |_| {});
    let events = h.cameras.subscribe();
    // 50 events: 25 plug/unplug pairs, then one final plug (51 in all) so the final state is CONNECTED.
    for _ in 0..25 {
        mknod(&h.node(4), 4);
        std::fs::remove_file(h.node(4)).unwrap();
    }
    mknod(&h.node(4), 4);
    h.wait_until("video4 connected", |c| c.get("/dev/video4").is_ok_and(|c| c.status == CameraStatus::Connected));
    let notes = h.drain("/dev/video4", Duration::from_millis(1500));
    assert!(!notes.is_empty() && notes.len() <= 51, "{} notifications", notes.len());
    // One notification per real change: statuses alternate, starting and ending CONNECTED.
    let statuses: Vec<&str> = notes.iter().map(|n| n["status"].as_str().unwrap()).collect();
    for (i, s) in statuses.iter().enumerate() {
        assert_eq!(*s, if i % 2 == 0 { "CONNECTED" } else { "DISCONNECTED" }, "sequence {statuses:?}");
    }
    assert_eq!(statuses.last(), Some(&"CONNECTED"));
    assert_eq!(h.cameras.get("/dev/video4").unwrap().status, CameraStatus::Connected);
    assert_eq!(h.cameras.list().len(), 1);
    // Subscribers saw the same transitions (plus possibly a confirmation of the same CONNECTED camera).
    let transitions = events.try_iter().filter(|e| e.previous != Some(e.camera.status)).count();
    assert_eq!(transitions, statuses.len());
    eprintln!("storm: {} notifications for 51 events", statuses.len());
}

#[test]
fn permission_errors_get_a_grace_period() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler]) {
        return;
    }
    let root = TempDir::new("cam-perm");
    let dev = root.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    let spec = format!("error|{}|13\nerror|{}|13\n", dev.join("video8").display(), dev.join("video9").display());
    std::fs::write(root.path().join("spec"), spec).unwrap();
    run_child("child_permissions", root.path());
}

#[test]
fn child_permissions() {
    let Some(root) = child_root() else { return };
    let h = Harness::start(&root, |c| c.camera.capability_max_retries = 0);
    // Plug like udev: the node appears unreadable, then permissions are fixed (chmod → IN_ATTRIB).
    let t = Instant::now();
    mknod(&h.node(8), 8);
    let good = spec_node(&h.node(8), "Late Cam", "usb-0000:00:14.0-8", "84a00001", "04200001", C920_FORMATS);
    // Atomically: the shim re-reads the spec on every open, and a half-written file would hide the node.
    write_spec(&root.join("spec"), &format!("{good}error|{}|13\n", h.node(9).display()));
    std::fs::set_permissions(h.node(8), std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let fixed_quickly = t.elapsed() < Duration::from_secs(1);
    let n = h.wait_status("/dev/video8", |_| true);
    if fixed_quickly {
        assert_eq!(n["status"], "CONNECTED", "a normal plug is announced once, as CONNECTED: {n}");
    }
    h.wait_until("video8 connected", |c| c.get("/dev/video8").is_ok_and(|c| c.status == CameraStatus::Connected));
    // A node that stays unreadable is announced as ERROR (permission_denied) once the grace period is over.
    let t = Instant::now();
    mknod(&h.node(9), 9);
    let n = h.wait_status("/dev/video9", |_| true);
    assert_eq!(n["status"], "ERROR", "{n}");
    assert!(t.elapsed() >= Duration::from_millis(1500), "permission errors are retried first");
    assert_eq!(h.cameras.get("/dev/video9").unwrap().error.as_deref(), Some("permission_denied"));
}

// ---------------------------------------------------------------------------------------------------------------
// End to end through the daemon (the daemon runs with the shim preloaded)

#[test]
fn daemon_serves_camera_methods_and_notifications() {
    if !require_all(&[Prereq::Root, Prereq::CCompiler]) {
        return;
    }
    let t = TempDir::new("cam-e2e");
    let spec = t.path().join("spec");
    std::fs::write(&spec, "").unwrap();
    let daemon = crate::support::Daemon::builder()
        .yaml("camera:\n  virtual:\n    - {name: Test pattern, width: 640, height: 480, fps: 15, pattern: testsrc2}\n")
        .env("LD_PRELOAD", shim().to_str().unwrap())
        .env("CAMSHIM_SPEC", spec.to_str().unwrap())
        .start();
    let dev = daemon.path("dev");
    let mut c = daemon.client_as("viewer");

    let list = c.ok("get_camera_list", Value::Null);
    assert_eq!((list["total"].clone(), list["connected"].clone()), (json!(1), json!(1)), "{list}");
    let v = &list["cameras"][0];
    assert_eq!(
        (v["device"].clone(), v["virtual"].clone(), v["status"].clone()),
        (json!("virtual0"), json!(true), json!("CONNECTED"))
    );
    let caps = c.ok("get_camera_capabilities", json!({"device": "virtual0"}));
    assert_eq!(
        caps,
        json!({"device": "virtual0", "formats": ["YU12"], "resolutions": ["640x480"], "fps_options": [15],
               "validation_status": "confirmed"})
    );

    // Plug a camera: one notification, then every method knows it under both ids.
    std::fs::write(
        &spec,
        spec_node(&dev.join("video0"), "HD Pro Webcam C920", "usb-1", "84a00001", "04200001", C920_FORMATS),
    )
    .unwrap();
    mknod(&dev.join("video0"), 0);
    let n =
        c.wait_notification("camera_status_update", WAIT, |p| p["device"] == "/dev/video0").expect("no notification");
    let p = &n["params"];
    assert_eq!(
        (p["status"].clone(), p["name"].clone(), p["resolution"].clone(), p["fps"].clone()),
        (json!("CONNECTED"), json!("HD Pro Webcam C920"), json!("1920x1080"), json!(30))
    );
    assert_eq!(
        (p["streams"].clone(), p["identity"].clone(), p["virtual"].clone()),
        (json!({}), json!("bus:usb-1"), json!(false))
    );
    let s = c.ok("get_camera_status", json!({"device": "camera0"}));
    assert_eq!(s["device"], "/dev/video0");
    assert_eq!(
        s["capabilities"],
        json!({"formats": ["YUYV", "MJPG"], "resolutions": ["1920x1080", "1280x720", "640x480"]})
    );
    assert_eq!(s["metrics"], json!({"bytes_sent": 0, "readers": 0, "uptime": 0}));
    assert_eq!((s["recording"].clone(), s["elapsed_time"].clone()), (json!(false), json!(0)));
    let caps = c.ok("get_camera_capabilities", json!({"device": "/dev/video0"}));
    assert_eq!(caps["fps_options"], json!([15, 30]));

    // An unopenable node: ERROR, listed and announced.
    mknod(&dev.join("video3"), 3);
    let n =
        c.wait_notification("camera_status_update", WAIT, |p| p["device"] == "/dev/video3").expect("no notification");
    assert_eq!(n["params"]["status"], "ERROR");
    let list = c.ok("get_camera_list", json!({}));
    assert_eq!((list["total"].clone(), list["connected"].clone()), (json!(3), json!(2)), "{list}");

    // Errors: never seen → -1000; malformed or missing → -32602; no session → -32001.
    for m in ["get_camera_status", "get_camera_capabilities"] {
        assert_eq!(c.call(m, json!({"device": "/dev/video9"}))["error"]["code"], -1000);
        assert_eq!(c.call(m, json!({"device": "virtual5"}))["error"]["code"], -1000);
        assert_eq!(c.call(m, json!({"device": "/dev/sda1"}))["error"]["code"], -32602);
        assert_eq!(c.call(m, json!({}))["error"]["code"], -32602);
    }
    let r = c.call("get_camera_status", json!({"device": "/dev/video9"}));
    assert_eq!(r["error"]["message"], "Camera device not found");
    let mut anon = daemon.client();
    assert_eq!(anon.call("get_camera_list", Value::Null)["error"]["code"], -32001);

    // Unplug: DISCONNECTED, still known.
    std::fs::remove_file(dev.join("video0")).unwrap();
    let n =
        c.wait_notification("camera_status_update", WAIT, |p| p["device"] == "/dev/video0").expect("no notification");
    assert_eq!((n["params"]["status"].clone(), n["params"]["fps"].clone()), (json!("DISCONNECTED"), json!(0)));
    assert_eq!(c.ok("get_camera_status", json!({"device": "/dev/video0"}))["status"], "DISCONNECTED");
}
