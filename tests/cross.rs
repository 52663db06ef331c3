//! The daemon on 32-bit and 64-bit ARM, and files above 4 GiB.
//!
//! `large_recordings_list_download_and_delete` runs the host binary; `arm_binaries_under_qemu_user` runs the
//! cross-built binaries of `scripts/build-arm.sh` (arm64 and armhf) under qemu-user through the same checks plus
//! a start-up smoke test. On armhf `usize` is 32 bits wide: a file size, a seek offset or a Range bound that passes
//! through `usize` (or a 32-bit `off_t`) comes out wrong above 4 GiB, and these checks see it. The files are sparse,
//! so they cost no disk space.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::support::{http_get, report, token, Daemon};

/// 5 GiB + 123 bytes: above 4 GiB (a 32-bit size wraps to 1 GiB + 123) and not a multiple of anything round.
const BIG: u64 = 5 * 1024 * 1024 * 1024 + 123;
const BIG_NAME: &str = "virtual0_2026-01-02_03-04-05.mp4";
/// Bytes written just above the 4 GiB mark, read back with a Range request.
const MARK_AT: u64 = (1 << 32) + 10;
const MARK: &[u8] = b"above-4-GiB!";

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len() + 8).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// A `moov` box: one hour (timescale 1000) and one 1280x720 video track.
fn moov() -> Vec<u8> {
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
    mvhd[16..20].copy_from_slice(&3_600_000u32.to_be_bytes());
    let mut tkhd = vec![0u8; 84];
    tkhd[12..16].copy_from_slice(&1u32.to_be_bytes());
    tkhd[76..80].copy_from_slice(&(1280u32 << 16).to_be_bytes());
    tkhd[80..84].copy_from_slice(&(720u32 << 16).to_be_bytes());
    let mut mdhd = vec![0u8; 24];
    mdhd[12..16].copy_from_slice(&90_000u32.to_be_bytes());
    mdhd[16..20].copy_from_slice(&(3600u32 * 90_000).to_be_bytes());
    let mut hdlr = vec![0u8; 25];
    hdlr[8..12].copy_from_slice(b"vide");
    let mdia = [mp4_box(b"mdhd", &mdhd), mp4_box(b"hdlr", &hdlr)].concat();
    let trak = [mp4_box(b"tkhd", &tkhd), mp4_box(b"mdia", &mdia)].concat();
    mp4_box(b"moov", &[mp4_box(b"mvhd", &mvhd), mp4_box(b"trak", &trak)].concat())
}

/// A sparse MP4 of exactly [`BIG`] bytes: `ftyp`, an `mdat` with a 64-bit size covering everything up to the
/// `moov` at the very end (so reading the duration means seeking past 4 GiB), and [`MARK`] at [`MARK_AT`].
fn write_big_recording(path: &Path) {
    let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41");
    let moov = moov();
    let mdat_size = BIG - ftyp.len() as u64 - moov.len() as u64;
    let mut f = File::create(path).unwrap();
    f.write_all(&ftyp).unwrap();
    f.write_all(&1u32.to_be_bytes()).unwrap();
    f.write_all(b"mdat").unwrap();
    f.write_all(&mdat_size.to_be_bytes()).unwrap();
    f.seek(SeekFrom::Start(MARK_AT)).unwrap();
    f.write_all(MARK).unwrap();
    f.seek(SeekFrom::Start(BIG - moov.len() as u64)).unwrap();
    f.write_all(&moov).unwrap();
    assert_eq!(f.metadata().unwrap().len(), BIG);
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The recording above 4 GiB (written before the daemon started) lists with its size and duration, downloads by
/// Range above 4 GiB and from the end, counts in the storage figures, and deletes.
fn check_big_recording(d: &Daemon) {
    let mut admin = d.client_as("admin");
    let r = admin.ok("list_recordings", json!({}));
    assert_eq!(r["total"], 1, "{r}");
    let f = &r["files"][0];
    assert_eq!((f["filename"].as_str(), f["file_size"].as_u64()), (Some(BIG_NAME), Some(BIG)), "{r}");
    assert_eq!(f["duration"], 3600, "the moov after the 5 GiB mdat was found: {r}");
    let r = admin.ok("get_recording_info", json!({"filename": BIG_NAME}));
    assert_eq!((r["file_size"].as_u64(), r["duration"].as_u64()), (Some(BIG), Some(3600)), "{r}");
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(1280), Some(720)), "{r}");
    let r = admin.ok("get_storage_info", Value::Null);
    assert!(r["recordings_size"].as_u64().is_some_and(|n| n >= BIG), "{r}");

    let url = format!("/files/recordings/{BIG_NAME}");
    let bearer = format!("Bearer {}", token("viewer", 600));
    let end = MARK_AT + MARK.len() as u64 - 1;
    let range = format!("bytes={MARK_AT}-{end}");
    let (status, headers, body) = http_get(d.port, &url, &[("Authorization", &bearer), ("Range", &range)]);
    assert_eq!(status, 206);
    assert_eq!(header(&headers, "content-range"), Some(format!("bytes {MARK_AT}-{end}/{BIG}").as_str()));
    assert_eq!(header(&headers, "content-length"), Some(MARK.len().to_string().as_str()));
    assert_eq!(body, MARK, "the bytes at offset {MARK_AT}");
    let moov = moov();
    let (status, headers, body) = http_get(d.port, &url, &[("Authorization", &bearer), ("Range", "bytes=-16")]);
    assert_eq!(status, 206);
    assert_eq!(header(&headers, "content-range"), Some(format!("bytes {}-{}/{BIG}", BIG - 16, BIG - 1).as_str()));
    assert_eq!(body, moov[moov.len() - 16..]);
    let (status, headers, _) =
        http_get(d.port, &url, &[("Authorization", &bearer), ("Range", &format!("bytes={BIG}-"))]);
    assert_eq!((status, header(&headers, "content-range")), (416, Some(format!("bytes */{BIG}").as_str())));

    let r = admin.ok("delete_recording", json!({"filename": BIG_NAME}));
    assert_eq!(r["deleted"], true, "{r}");
    assert!(!d.path("recordings").join(BIG_NAME).exists());
    assert_eq!(admin.ok("list_recordings", json!({}))["total"], 0);
}

#[test]
fn large_recordings_list_download_and_delete() {
    let d = Daemon::builder().before_start(|dir| write_big_recording(&dir.join("recordings").join(BIG_NAME))).start();
    check_big_recording(&d);
}

/// Debian architecture, Rust target triple, qemu-user program, the target's library directory for `-L`, and the
/// ELF class and machine the binary must have.
const ARCHES: [(&str, &str, &str, &str, u8, u16); 2] = [
    ("arm64", "aarch64-unknown-linux-gnu", "qemu-aarch64", "/usr/aarch64-linux-gnu", 2, 183),
    ("armhf", "armv7-unknown-linux-gnueabihf", "qemu-arm", "/usr/arm-linux-gnueabihf", 1, 40),
];

/// Run by `.ci/run` after `scripts/build-arm.sh` (`cargo test --test integration cross:: -- --ignored`), for the
/// architectures in `CAMERA_SERVICE_ARM_ARCHES` (comma-separated, default both). Needs qemu-user and the cross
/// C libraries (`libc6-dev-<arch>-cross`); a missing binary or tool fails the test.
#[test]
#[ignore = "needs the cross-built binaries: run by .ci/run after scripts/build-arm.sh"]
fn arm_binaries_under_qemu_user() {
    let wanted = std::env::var("CAMERA_SERVICE_ARM_ARCHES").unwrap_or_else(|_| "arm64,armhf".into());
    let mut ran = 0;
    for (arch, triple, qemu, libs, class, machine) in ARCHES {
        if !wanted.split(',').any(|a| a.trim() == arch) {
            continue;
        }
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join(triple).join("release/camera-service");
        assert!(bin.is_file(), "{} is missing: run scripts/build-arm.sh {arch} first", bin.display());
        let elf = fs::read(&bin).unwrap();
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!((elf[4], u16::from_le_bytes([elf[18], elf[19]])), (class, machine), "{arch}: ELF class, machine");
        let program = vec![qemu.to_string(), "-L".into(), libs.into(), bin.display().to_string()];
        smoke(arch, &program);
        ran += 1;
    }
    assert!(ran > 0, "CAMERA_SERVICE_ARM_ARCHES={wanted:?} names no known architecture (arm64, armhf)");
}

fn smoke(arch: &str, program: &[String]) {
    let started = Instant::now();
    let out = Command::new(&program[0])
        .args(&program[1..])
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (install qemu-user)", program[0]));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "{arch} --version: {}", String::from_utf8_lossy(&out.stderr));
    assert!(version.starts_with(&format!("camera-service {}", env!("CARGO_PKG_VERSION"))), "{version}");

    let mut d = Daemon::builder()
        .program(program)
        .yaml("camera:\n  virtual:\n    - {name: Smoke, width: 320, height: 240, fps: 5}")
        .before_start(|dir| write_big_recording(&dir.join("recordings").join(BIG_NAME)))
        .start();
    let mut c = d.client();
    let r = c.call("authenticate", json!({"auth_token": token("operator", 600)}));
    assert_eq!(r["result"]["authenticated"], true, "{arch}: {r}");
    assert_eq!(c.ok("ping", Value::Null), "pong");
    let r = c.ok("get_camera_list", Value::Null);
    assert_eq!((r["total"].as_u64(), r["connected"].as_u64()), (Some(1), Some(1)), "{arch}: {r}");
    assert_eq!(
        (r["cameras"][0]["device"].as_str(), r["cameras"][0]["virtual"].as_bool()),
        (Some("virtual0"), Some(true))
    );
    let r = c.ok("take_snapshot", json!({"device": "virtual0"}));
    assert_eq!(r["status"], "completed", "{arch}: {r}");
    let shot = fs::read(r["file_path"].as_str().unwrap()).unwrap();
    assert!(shot.starts_with(b"\xFF\xD8") && shot.len() > 1000, "{arch}: a JPEG, {} bytes", shot.len());
    check_big_recording(&d);
    let (code, took) = d.terminate();
    assert_eq!(code, Some(0), "{arch}: exit status after SIGTERM; log:\n{}", d.stderr());
    report(&format!(
        "{arch}: {version}; started, authenticated, ping, get_camera_list, take_snapshot, the 5 GiB recording \
         checks, SIGTERM -> exit 0 in {took:?}; {:.1} s in all under qemu-user",
        started.elapsed().as_secs_f64()
    ));
}
