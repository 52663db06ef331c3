use super::*;
use crate::camera::Camera;
use crate::error::{Error, Result};

/// A small structurally valid JPEG: APP0 whose payload holds `FF D9`, SOF0 (w×h), SOS, entropy data with stuffing
/// (`FF 00`), a restart marker and fill bytes, then EOI.
fn jpeg(w: u16, h: u16, tag: u8) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8];
    b.extend([0xFF, 0xE0, 0x00, 0x08, b'J', b'F', 0xFF, 0xD9, 0xFF, tag]);
    b.extend([0xFF, 0xC0, 0x00, 0x0B, 0x08]);
    b.extend(h.to_be_bytes());
    b.extend(w.to_be_bytes());
    b.extend([0x01, 0x01, 0x11, 0x00]);
    b.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    b.extend([0x12, 0xFF, 0x00, 0xD9, 0xFF, 0xD0, 0x34, 0xFF, 0x00, 0xFF, 0xD7, tag, 0x56]);
    b.extend([0xFF, 0xFF, 0xD9]);
    b
}

fn split_all(s: &mut Splitter) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| s.next_frame()).collect()
}

#[test]
fn splits_frames_fed_in_one_piece() {
    let (a, b) = (jpeg(320, 240, 1), jpeg(64, 48, 2));
    let mut s = Splitter::default();
    s.push(&[a.clone(), b.clone()].concat());
    assert_eq!(split_all(&mut s), vec![a, b]);
    assert!(s.buf.is_empty());
}

#[test]
fn splits_frames_fed_byte_by_byte_and_in_odd_chunks() {
    let frames = vec![jpeg(320, 240, 1), jpeg(64, 48, 2), jpeg(8, 8, 3)];
    let stream = frames.concat();
    for chunk in [1, 2, 3, 5, 7, 13, 64] {
        let mut s = Splitter::default();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            s.push(c);
            got.extend(split_all(&mut s));
        }
        assert_eq!(got, frames, "chunk {chunk}");
    }
}

#[test]
fn markers_inside_segments_and_entropy_data_do_not_end_a_frame() {
    let a = jpeg(320, 240, 0xD9);
    let mut s = Splitter::default();
    s.push(&a[..a.len() - 1]);
    assert_eq!(s.next_frame(), None, "FF D9 in APP0, FF 00 D9 and FF D0 in data are not EOI");
    s.push(&a[a.len() - 1..]);
    let f = s.next_frame().unwrap();
    assert_eq!(crate::formats::image::jpeg_dimensions(&f), Some((320, 240)));
}

#[test]
fn garbage_and_broken_frames_are_skipped() {
    let a = jpeg(16, 16, 1);
    let b = jpeg(32, 32, 2);
    let mut stream = b"garbage\xFF\x00\xFF".to_vec();
    stream.extend(&a);
    stream.extend(b"\x00\x01junk");
    // A frame cut off inside its segments, then a good one.
    stream.extend(&b[..9]);
    stream.extend(&b);
    // SOI followed by a non-marker byte.
    stream.extend([0xFF, 0xD8, 0x42, 0x42]);
    stream.extend(&a);
    let mut s = Splitter::default();
    s.push(&stream);
    assert_eq!(split_all(&mut s), vec![a.clone(), b, a]);
    // Only garbage: nothing but a possible SOI prefix is kept.
    s.push(&[0x00; 1000]);
    s.push(&[0xFF]);
    assert_eq!(s.next_frame(), None);
    assert_eq!(s.buf, vec![0xFF]);
}

#[test]
fn decision_follows_freshness_and_quality() {
    let fresh = Some(Duration::from_millis(100));
    let stale = Some(Duration::from_secs(2));
    let e = |qscale, ended, frame_age| Some(Existing { qscale, ended, frame_age, live: false });
    assert_eq!(decide(None, 6), Decision::Start);
    assert_eq!(decide(e(6, false, fresh), 6), Decision::Use);
    assert_eq!(decide(e(6, false, Some(MAX_AGE)), 6), Decision::Use);
    assert_eq!(decide(e(6, false, stale), 6), Decision::Wait);
    assert_eq!(decide(e(6, false, None), 6), Decision::Wait, "started, no frame yet");
    assert_eq!(decide(e(6, false, fresh), 10), Decision::Replace);
    assert_eq!(decide(e(10, false, None), 6), Decision::Replace);
    assert_eq!(decide(e(6, true, fresh), 6), Decision::Start, "an ended reader is never used");
    assert_eq!(decide(e(10, true, fresh), 6), Decision::Start);
    // A reader that feeds a live view is never replaced for a snapshot's quality.
    let live = |qscale, ended, frame_age| Some(Existing { qscale, ended, frame_age, live: true });
    assert_eq!(decide(live(6, false, fresh), 10), Decision::Use);
    assert_eq!(decide(live(6, false, None), 10), Decision::Wait);
    assert_eq!(decide(live(6, true, fresh), 10), Decision::Start);
}

/// One camera whose status the test can change.
struct Cam(Mutex<Arc<Camera>>);
impl CameraLookup for Cam {
    fn get(&self, id: &str) -> Result<Arc<Camera>> {
        let c = self.0.lock().clone();
        if c.device == id {
            Ok(c)
        } else {
            Err(Error::CameraNotFound(id.into()))
        }
    }
}

fn lavfi_input() -> Vec<String> {
    ["-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15"].map(String::from).to_vec()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A small 15 fps test-pattern camera, read through the same ffmpeg reader pipeline as an RTSP stream.
fn lavfi_camera() -> crate::camera::Camera {
    let cfg = crate::config::VirtualCameraConfig {
        name: "T".into(),
        width: 160,
        height: 120,
        fps: 15,
        pattern: "testsrc2".into(),
    };
    crate::camera::virtual_camera(0, &cfg)
}

/// A live lavfi source stands in for the RTSP stream (same reader pipeline, no server needed).
#[test]
fn grabber_serves_fresh_frames_and_stops_on_disconnect_and_shutdown() {
    let camera = lavfi_camera();
    let device = camera.device.clone();
    let cams = Arc::new(Cam(Mutex::new(Arc::new(camera.clone()))));
    let shutdown = Shutdown::new();
    let grabbers = Grabbers::new(true, shutdown.clone(), cams.clone());
    let deadline = || Instant::now() + Duration::from_secs(20);

    let first = grabbers.frame(&device, &lavfi_input(), 6, deadline()).unwrap();
    assert_eq!(crate::formats::image::jpeg_dimensions(&first.data), Some((160, 120)));
    assert_eq!(grabbers.count(), 1);
    let asked = Instant::now();
    let second = grabbers.frame(&device, &lavfi_input(), 6, deadline()).unwrap();
    assert!(second.at + MAX_AGE >= asked, "served frame is fresh");
    assert_eq!(grabbers.count(), 1, "same quality reuses the reader");

    // Another quality replaces the reader.
    let old = grabbers.map.lock().get(&device).cloned().unwrap();
    let third = grabbers.frame(&device, &lavfi_input(), 20, deadline()).unwrap();
    assert!(crate::formats::image::jpeg_dimensions(&third.data).is_some());
    let new = grabbers.map.lock().get(&device).cloned().unwrap();
    assert!(!Arc::ptr_eq(&old, &new));
    assert_eq!(new.qscale, 20);
    wait_until("replaced reader to end", || old.existing().ended);

    // Unplug: the owner notices and stops the reader.
    let mut gone = camera.clone();
    gone.status = CameraStatus::Disconnected;
    *cams.0.lock() = Arc::new(gone);
    wait_until("reader to stop after disconnect", || grabbers.count() == 0);
    assert!(new.existing().ended);

    // Shutdown ends a running reader.
    *cams.0.lock() = Arc::new(camera);
    grabbers.frame(&device, &lavfi_input(), 6, deadline()).unwrap();
    let g = grabbers.map.lock().get(&device).cloned().unwrap();
    shutdown.trigger();
    assert!(!grabbers.enabled());
    wait_until("reader to stop at shutdown", || grabbers.count() == 0 && g.existing().ended);
    let slot = g.slot.lock();
    assert_eq!(slot.ended.as_deref(), Some("shutdown"));
}

/// The live view's tap: every frame reaches its channel at the live rate, a slower snapshot reader is replaced, a
/// snapshot of another quality reuses the live reader, and the reader stops once the tap is gone and no snapshot
/// asked for it.
#[test]
fn live_tap_gets_frames_and_the_reader_stops_after_it_detaches() {
    let camera = lavfi_camera();
    let device = camera.device.clone();
    let cams = Arc::new(Cam(Mutex::new(Arc::new(camera))));
    let shutdown = Shutdown::new();
    let grabbers = Grabbers::new(true, shutdown.clone(), cams);
    let deadline = || Instant::now() + Duration::from_secs(20);

    // A snapshot reader at 5 fps exists; the live view needs 15: replaced.
    grabbers.frame(&device, &lavfi_input(), 6, deadline()).unwrap();
    let slow = grabbers.map.lock().get(&device).cloned().unwrap();
    assert!(!grabbers.is_live(&device));
    let (tx, rx) = crossbeam_channel::bounded(4);
    let tap = grabbers.attach_live(&device, &lavfi_input(), 8, 15, tx).unwrap();
    let fast = grabbers.map.lock().get(&device).cloned().unwrap();
    assert!(!Arc::ptr_eq(&slow, &fast) && fast.fps == 15);
    assert!(grabbers.is_live(&device));
    let end = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < 10 {
        got.push(rx.recv_deadline(end).expect("live frames keep coming"));
    }
    let span = got[9].at.duration_since(got[0].at);
    assert!(span < Duration::from_millis(1500), "10 frames at 15 fps took {span:?}");

    // A snapshot of another quality takes the live reader's frame instead of replacing it.
    grabbers.frame(&device, &lavfi_input(), 20, deadline()).unwrap();
    assert!(Arc::ptr_eq(&fast, &grabbers.map.lock().get(&device).cloned().unwrap()));
    // That snapshot keeps the reader for the snapshot idle window; forget it to watch the live rule alone.
    *fast.last_request.lock() = Instant::now() - IDLE;

    drop(tap);
    assert!(!grabbers.is_live(&device));
    thread::sleep(LIVE_LINGER / 2);
    assert_eq!(grabbers.count(), 1, "the reader lingers briefly for a returning viewer");
    wait_until("reader to stop after the live view left", || grabbers.count() == 0);
    assert!(fast.ended());
    shutdown.trigger();
}

/// A recording's ffmpeg: the direct-mode command of the lavfi camera with the JPEG output for the live view.
fn recording(camera: &Camera, dir: &std::path::Path, secs: u64) -> (Ffmpeg, ChildStdout) {
    let config = crate::config::Config::default();
    let frames = crate::media::segments::FrameOutput { fps: 15, qscale: 8 };
    let args = crate::media::segments::direct_args(&config, camera, dir, Some(secs), Some(frames));
    Ffmpeg::spawn_piped("record test", &args, &[("TZ", "UTC")]).unwrap()
}

/// A recording claims the camera: our reader stops and lets go first, the live view and snapshots of any quality take
/// the recording's frames, and once the feed is dropped the live view gets a reader of its own again.
#[test]
fn a_recording_claims_the_reader_and_gives_it_back() {
    let camera = lavfi_camera();
    let device = camera.device.clone();
    let cams = Arc::new(Cam(Mutex::new(Arc::new(camera.clone()))));
    let shutdown = Shutdown::new();
    let grabbers = Grabbers::new(true, shutdown.clone(), cams);
    let dir = std::env::temp_dir().join(format!("grabber-claim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let (tx, rx) = crossbeam_channel::bounded(4);
    let tap = grabbers.attach_live(&device, &lavfi_input(), 8, 15, tx.clone()).unwrap();
    rx.recv_timeout(Duration::from_secs(20)).expect("a first frame from our reader");
    let own = grabbers.map.lock().get(&device).cloned().unwrap();

    // Our readers wait for each other only where the input is a device that opens once.
    assert!(opens_device(&["-f", "v4l2", "-i", "/dev/video0"].map(String::from)) && !opens_device(&lavfi_input()));
    let feed = grabbers.claim(&device, 8, 15);
    assert!(own.ended() && own.slot.lock().released, "our reader let go of the camera before the claim returned");
    assert!(tap.ended(), "the live view notices and attaches again");
    assert!(grabbers.is_fed(&device) && !grabbers.is_live(&device));
    // Neither a live view at a higher rate nor a snapshot of another quality replaces the recording's frames.
    let tap = grabbers.attach_live(&device, &lavfi_input(), 8, 30, tx).unwrap();
    let fed = grabbers.map.lock().get(&device).cloned().unwrap();
    assert!(fed.fed && !Arc::ptr_eq(&own, &fed));
    let (mut process, stdout) = recording(&camera, &dir, 30);
    feed.read(stdout).unwrap();
    while rx.try_recv().is_ok() {}
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("the recording's frames reach the live view");
    assert_eq!(crate::formats::image::jpeg_dimensions(&first.data), Some((160, 120)));
    grabbers.frame(&device, &lavfi_input(), 20, Instant::now() + Duration::from_secs(20)).unwrap();
    assert!(Arc::ptr_eq(&fed, &grabbers.map.lock().get(&device).cloned().unwrap()));

    // The recording ends: the feed goes with it, and the live view's next attach starts our own reader.
    process.stop(Duration::from_secs(2), Duration::from_secs(2));
    assert!(!tap.ended(), "the end of the pipe alone does not end the feed");
    drop(feed);
    assert!(tap.ended() && !grabbers.is_fed(&device));
    let (tx, rx) = crossbeam_channel::bounded(4);
    let _tap = grabbers.attach_live(&device, &lavfi_input(), 8, 15, tx).unwrap();
    assert!(!grabbers.map.lock().get(&device).unwrap().fed);
    rx.recv_timeout(Duration::from_secs(20)).expect("our reader is back");
    shutdown.trigger();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lost frame reader never stalls or ends the recording: with our end of the pipe closed, the JPEG output stops
/// and the segments go on to the end of the recording.
#[test]
fn a_recording_outlives_its_closed_frame_pipe() {
    let camera = lavfi_camera();
    let dir = std::env::temp_dir().join(format!("grabber-pipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut process, mut stdout) = recording(&camera, &dir, 3);
    let mut buf = [0u8; 4096];
    assert!(stdout.read(&mut buf).unwrap() > 0, "JPEG bytes come first");
    drop(stdout);
    let status = process.wait_for(Duration::from_secs(20)).expect("the timed recording ends by itself");
    assert!(status.success(), "{}", process.stderr_tail());
    let recorded: f64 = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| crate::files::meta::probe(&e.path()).ok()?.duration_secs)
        .sum();
    assert!(recorded >= 2.5, "recorded {recorded:.1}s of 3s after the pipe closed");
    let _ = std::fs::remove_dir_all(&dir);
}
