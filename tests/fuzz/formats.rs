//! The MP4 box walker and the JPEG/PNG size reader on random, structured and mutated input: never a panic, no
//! position outside the file, well-formed input still read correctly.

use std::io::Cursor;

use camera_service::formats::{image, mp4};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{cases, runner};

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

fn full_box(kind: &[u8; 4], version_flags: u32, fields: &[u32]) -> Vec<u8> {
    let mut body = version_flags.to_be_bytes().to_vec();
    fields.iter().for_each(|f| body.extend_from_slice(&f.to_be_bytes()));
    bx(kind, &body)
}

/// A valid fragmented MP4 with one video track (`width`x`height`, timescale 1000) and one fragment of `samples`
/// samples of `sample_ms` each.
fn fragmented_mp4(width: u32, height: u32, samples: u32, sample_ms: u32) -> Vec<u8> {
    let mvhd = full_box(b"mvhd", 0, &[0, 0, 1000, 0]);
    // Fields after version/flags: creation, modification, track id at byte 12, ..., width and height (16.16
    // fixed point) at bytes 76 and 80.
    let mut tkhd = vec![0u32; 20];
    tkhd[2] = 1;
    tkhd[18] = width << 16;
    tkhd[19] = height << 16;
    let tkhd = full_box(b"tkhd", 0, &tkhd);
    let mdhd = full_box(b"mdhd", 0, &[0, 0, 1000, 0, 0]);
    let mut hdlr = 0u32.to_be_bytes().to_vec();
    hdlr.extend_from_slice(&[0, 0, 0, 0]);
    hdlr.extend_from_slice(b"vide");
    hdlr.extend_from_slice(&[0; 13]);
    let mdia = bx(b"mdia", &[mdhd, bx(b"hdlr", &hdlr)].concat());
    let trak = bx(b"trak", &[tkhd, mdia].concat());
    let mvex = bx(b"mvex", &full_box(b"trex", 0, &[1, 1, sample_ms, 0, 0]));
    let moov = bx(b"moov", &[mvhd, trak, mvex].concat());
    let tfhd = full_box(b"tfhd", 0x0002_0000, &[1]);
    let trun = full_box(b"trun", 0, &[samples]);
    let moof = bx(b"moof", &bx(b"traf", &[tfhd, trun].concat()));
    [bx(b"ftyp", b"isom\0\0\x02\0isomiso6"), moov, moof, bx(b"mdat", &[0; 32])].concat()
}

/// The walk's promises on any input: positions grow, nothing lies outside the file, every read is bounded.
fn check_walk(data: &[u8]) -> Result<(), TestCaseError> {
    let len = data.len() as u64;
    let mut last = None;
    for h in mp4::top_level(Cursor::new(data)).unwrap() {
        let h = h.unwrap();
        prop_assert!(last.is_none_or(|l| h.offset > l), "offsets must grow: {h:?}");
        prop_assert!(h.offset + h.header_len + h.body_len <= len, "{h:?} beyond {len} bytes");
        prop_assert!(h.header_len + h.body_len <= h.declared_size, "{h:?}");
        last = Some(h.offset);
    }
    if let Ok(info) = mp4::info(Cursor::new(data)) {
        prop_assert!(info.duration_secs.is_finite() && info.duration_secs >= 0.0, "{info:?}");
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Size {
    Exact,
    ToEnd,
    Large(u64),
    Declared(u32),
}

#[derive(Debug, Clone)]
struct Spec {
    kind: [u8; 4],
    size: Size,
    payload: Vec<u8>,
    children: Vec<Spec>,
}

fn encode(s: &Spec) -> Vec<u8> {
    let mut body = s.payload.clone();
    s.children.iter().for_each(|c| body.extend(encode(c)));
    let mut out = Vec::new();
    match s.size {
        Size::Exact => out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes()),
        Size::ToEnd => out.extend_from_slice(&0u32.to_be_bytes()),
        Size::Declared(n) => out.extend_from_slice(&n.to_be_bytes()),
        Size::Large(_) => out.extend_from_slice(&1u32.to_be_bytes()),
    }
    out.extend_from_slice(&s.kind);
    if let Size::Large(n) = s.size {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend(body);
    out
}

fn kind() -> impl Strategy<Value = [u8; 4]> {
    let known: Vec<[u8; 4]> = [
        b"ftyp", b"moov", b"mvhd", b"trak", b"tkhd", b"mdia", b"mdhd", b"hdlr", b"mvex", b"mehd", b"trex", b"moof",
        b"traf", b"tfhd", b"trun", b"mdat", b"free", b"styp",
    ]
    .into_iter()
    .copied()
    .collect();
    prop_oneof![4 => proptest::sample::select(known), 1 => any::<[u8; 4]>()]
}

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![
        6 => Just(Size::Exact),
        1 => Just(Size::ToEnd),
        1 => (0u64..64).prop_map(|d| Size::Large(u64::MAX - d)),
        1 => any::<u64>().prop_map(Size::Large),
        1 => (0u64..64).prop_map(Size::Large),
        1 => (0u32..16).prop_map(Size::Declared),
        1 => any::<u32>().prop_map(Size::Declared),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let leaf = (kind(), size(), vec(any::<u8>(), 0..48)).prop_map(|(kind, size, payload)| Spec {
        kind,
        size,
        payload,
        children: Vec::new(),
    });
    leaf.prop_recursive(4, 48, 6, |inner| {
        (kind(), size(), vec(any::<u8>(), 0..24), vec(inner, 0..6)).prop_map(|(kind, size, payload, children)| Spec {
            kind,
            size,
            payload,
            children,
        })
    })
}

#[test]
fn mp4_reader_on_random_bytes() {
    runner(cases()).run(&vec(any::<u8>(), 0..1024), |data| check_walk(&data)).unwrap();
}

#[test]
fn mp4_reader_on_generated_box_trees() {
    let files = vec(spec(), 1..5).prop_map(|boxes| boxes.iter().flat_map(encode).collect::<Vec<u8>>());
    runner(cases()).run(&files, |data| check_walk(&data)).unwrap();
}

#[test]
fn mp4_reader_on_mutated_fragmented_files() {
    let valid = fragmented_mp4(640, 480, 30, 40);
    let info = mp4::info(Cursor::new(&valid)).unwrap();
    assert_eq!((info.duration_secs, info.width, info.height), (1.2, Some(640), Some(480)));
    let len = valid.len();
    let mutations = (vec((0..len, any::<u8>()), 1..8), 0..=len);
    runner(cases())
        .run(&mutations, |(edits, cut)| {
            let mut data = valid.clone();
            edits.iter().for_each(|&(at, b)| data[at] = b);
            data.truncate(cut);
            check_walk(&data)
        })
        .unwrap();
}

#[test]
fn mp4_durations_are_read_back() {
    let params = (1u32..4000, 1u32..4000, 0u32..100_000, 0u32..10_000);
    runner(cases())
        .run(&params, |(w, h, samples, ms)| {
            let info = mp4::info(Cursor::new(fragmented_mp4(w, h, samples, ms))).unwrap();
            prop_assert_eq!(info.duration_secs, f64::from(samples) * f64::from(ms) / 1000.0);
            prop_assert_eq!((info.width, info.height), (Some(w), Some(h)));
            Ok(())
        })
        .unwrap();
}

/// A JPEG with random APPn segments and fill bytes before its frame header.
fn jpeg(segments: &[(u8, Vec<u8>)], fill: usize, w: u16, h: u16) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    for (marker, payload) in segments {
        j.extend_from_slice(&[0xFF, 0xE0 | (marker & 0x0F)]);
        j.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        j.extend_from_slice(payload);
    }
    j.extend(std::iter::repeat_n(0xFF, fill));
    j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 8]);
    j.extend_from_slice(&h.to_be_bytes());
    j.extend_from_slice(&w.to_be_bytes());
    j.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xDA]);
    j
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    p.extend_from_slice(&w.to_be_bytes());
    p.extend_from_slice(&h.to_be_bytes());
    p.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    p
}

/// The image reader's promises: no panic, `dimensions` agrees with the per-format readers and with the
/// streaming entry point.
fn check_image(data: &[u8]) -> Result<(), TestCaseError> {
    let by_format =
        if data.starts_with(b"\x89PNG") { image::png_dimensions(data) } else { image::jpeg_dimensions(data) };
    let direct = image::dimensions(data).ok();
    prop_assert_eq!(direct, by_format);
    prop_assert_eq!(image::read_dimensions(data).ok(), direct);
    Ok(())
}

#[test]
fn image_reader_on_random_and_mutated_images() {
    let prefix = prop_oneof![Just(vec![]), Just(vec![0xFF, 0xD8]), Just(b"\x89PNG\r\n\x1a\n".to_vec())];
    let random = (prefix, vec(any::<u8>(), 0..512)).prop_map(|(p, rest)| [p, rest].concat());
    runner(cases()).run(&random, |data| check_image(&data)).unwrap();
    let segments = vec((any::<u8>(), vec(any::<u8>(), 0..300)), 0..6);
    let valid = (segments, 0usize..4, any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>());
    runner(cases())
        .run(&valid, |(segs, fill, w, h, pw, ph)| {
            prop_assert_eq!(image::jpeg_dimensions(&jpeg(&segs, fill, w, h)), Some((u32::from(w), u32::from(h))));
            prop_assert_eq!(image::dimensions(&png(pw, ph)).ok(), Some((pw, ph)));
            Ok(())
        })
        .unwrap();
    let base = jpeg(&[(1, vec![0xAB; 40])], 1, 640, 480);
    let len = base.len();
    runner(cases())
        .run(&(vec((0..len, any::<u8>()), 1..6), 0..=len), |(edits, cut)| {
            let mut data = base.clone();
            edits.iter().for_each(|&(at, b)| data[at] = b);
            data.truncate(cut);
            check_image(&data)
        })
        .unwrap();
}
