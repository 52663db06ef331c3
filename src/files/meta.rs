//! Media metadata read straight from the container: MP4 duration and video size, JPEG/PNG image size.
//!
//! A small ISO-BMFF box reader instead of spawning ffprobe per file: listing thousands of recordings must stay cheap
//! and ffprobe costs tens of milliseconds per call. Plain MP4 carries the duration in `mvhd`; fragmented MP4 (what
//! MediaMTX and our ffmpeg recorder write) may have `mehd`, and otherwise the duration is the sum of the sample
//! durations of every `moof/traf/trun`, with `tfhd`/`trex` defaults, in the track's `mdhd` timescale.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// What we learn about a media file. Every field is optional: unreadable or foreign files simply lack them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaInfo {
    pub duration_secs: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Boxes we read into memory whole (`moov`, `moof`) are capped so a corrupt size cannot exhaust memory.
const MAX_BOX_IN_MEMORY: u64 = 64 * 1024 * 1024;
/// Upper bound on top-level boxes visited (a 24 h recording with 1 s fragments has ~170 000).
const MAX_TOP_LEVEL_BOXES: usize = 1_000_000;

/// Metadata of `path`, chosen by extension.
pub fn probe(path: &Path) -> MediaInfo {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let result = match ext.as_str() {
        "mp4" | "m4v" | "mov" | "fmp4" | "m4s" => File::open(path).and_then(|mut f| mp4_info(&mut f)),
        "jpg" | "jpeg" | "png" => File::open(path).and_then(|mut f| image_info(&mut f)),
        _ => return MediaInfo::default(),
    };
    result.unwrap_or_else(|e| {
        log::debug!("no metadata for {}: {e}", path.display());
        MediaInfo::default()
    })
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Iterates the boxes inside an in-memory payload: yields (type, body).
struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Boxes<'a> {
    type Item = ([u8; 4], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let d = self.data;
        let size32 = be_u32(d, self.pos)? as usize;
        let kind: [u8; 4] = d.get(self.pos + 4..self.pos + 8)?.try_into().ok()?;
        let (header, size) = match size32 {
            0 => (8, d.len() - self.pos),
            1 => (16, usize::try_from(be_u64(d, self.pos + 8)?).ok()?),
            n => (8, n),
        };
        if size < header || self.pos + size > d.len() {
            return None;
        }
        let body = &d[self.pos + header..self.pos + size];
        self.pos += size;
        Some((kind, body))
    }
}

fn boxes(data: &[u8]) -> Boxes<'_> {
    Boxes { data, pos: 0 }
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| k == kind).map(|(_, b)| b)
}

/// `(timescale, duration)` of an `mvhd` or `mdhd` body (same layout for both fields).
fn timescale_duration(b: &[u8]) -> Option<(u32, u64)> {
    if b.first()? == &1 {
        Some((be_u32(b, 20)?, be_u64(b, 24)?))
    } else {
        Some((be_u32(b, 12)?, u64::from(be_u32(b, 16)?)))
    }
}

#[derive(Debug, Default, Clone)]
struct Track {
    id: u32,
    timescale: u32,
    /// Duration of the samples described in `moov` itself (mdhd), in `timescale` units.
    moov_duration: u64,
    /// Sum of fragment sample durations, in `timescale` units.
    fragment_duration: u64,
    default_sample_duration: u32,
    width: u32,
    height: u32,
    video: bool,
}

#[derive(Debug, Default)]
struct Movie {
    timescale: u32,
    duration: u64,
    fragment_duration: u64,
    tracks: HashMap<u32, Track>,
}

fn parse_trak(b: &[u8]) -> Option<Track> {
    let tkhd = child(b, b"tkhd")?;
    let v1 = tkhd.first()? == &1;
    let id = be_u32(tkhd, if v1 { 20 } else { 12 })?;
    let wh_at = if v1 { 88 } else { 76 };
    let width = be_u32(tkhd, wh_at).unwrap_or(0) >> 16;
    let height = be_u32(tkhd, wh_at + 4).unwrap_or(0) >> 16;
    let mdia = child(b, b"mdia")?;
    let (timescale, dur) = timescale_duration(child(mdia, b"mdhd")?)?;
    let video = child(mdia, b"hdlr").and_then(|h| h.get(8..12)) == Some(b"vide");
    let moov_duration = if dur == u64::MAX || dur == u64::from(u32::MAX) { 0 } else { dur };
    Some(Track { id, timescale, moov_duration, width, height, video, ..Track::default() })
}

fn parse_moov(b: &[u8], movie: &mut Movie) -> Option<()> {
    let (timescale, duration) = timescale_duration(child(b, b"mvhd")?)?;
    movie.timescale = timescale;
    // All-ones means "unknown" (ISO 14496-12); fragmented files usually say 0.
    movie.duration = if duration == u64::MAX || duration == u64::from(u32::MAX) { 0 } else { duration };
    for (kind, body) in boxes(b) {
        match &kind {
            b"trak" => {
                if let Some(t) = parse_trak(body) {
                    movie.tracks.insert(t.id, t);
                }
            }
            b"mvex" => parse_mvex(body, movie),
            _ => {}
        }
    }
    Some(())
}

fn parse_mvex(b: &[u8], movie: &mut Movie) {
    for (kind, body) in boxes(b) {
        match &kind {
            b"mehd" => {
                let d = if body.first() == Some(&1) { be_u64(body, 4) } else { be_u32(body, 4).map(u64::from) };
                movie.fragment_duration = d.unwrap_or(0);
            }
            b"trex" => {
                if let (Some(id), Some(dur)) = (be_u32(body, 4), be_u32(body, 12)) {
                    movie.tracks.entry(id).or_default().default_sample_duration = dur;
                }
            }
            _ => {}
        }
    }
}

/// Adds the sample durations of one `moof` to its tracks.
fn parse_moof(b: &[u8], movie: &mut Movie) {
    for (_, traf) in boxes(b).filter(|(k, _)| k == b"traf") {
        let Some(tfhd) = child(traf, b"tfhd") else { continue };
        let (Some(flags), Some(id)) = (be_u32(tfhd, 0), be_u32(tfhd, 4)) else { continue };
        let mut at = 8;
        if flags & 0x1 != 0 {
            at += 8; // base-data-offset
        }
        if flags & 0x2 != 0 {
            at += 4; // sample-description-index
        }
        let track = movie.tracks.entry(id).or_default();
        let default = if flags & 0x8 != 0 { be_u32(tfhd, at).unwrap_or(0) } else { track.default_sample_duration };
        for (_, trun) in boxes(traf).filter(|(k, _)| k == b"trun") {
            track.fragment_duration += trun_duration(trun, default).unwrap_or(0);
        }
    }
}

/// Sum of the sample durations in one `trun`.
fn trun_duration(b: &[u8], default: u32) -> Option<u64> {
    let flags = be_u32(b, 0)? & 0x00ff_ffff;
    let count = be_u32(b, 4)? as u64;
    if flags & 0x100 == 0 {
        return Some(count * u64::from(default));
    }
    let mut at = 8 + if flags & 0x1 != 0 { 4 } else { 0 } + if flags & 0x4 != 0 { 4 } else { 0 };
    let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
    let mut total = 0u64;
    for _ in 0..count {
        total += u64::from(be_u32(b, at)?);
        at += per_sample;
    }
    Some(total)
}

/// Reads `len` bytes at the current position (bounded by [`MAX_BOX_IN_MEMORY`]).
fn read_body(f: &mut File, len: u64) -> io::Result<Vec<u8>> {
    if len > MAX_BOX_IN_MEMORY {
        return Err(invalid("box too large"));
    }
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// Duration and video size of an MP4 file.
pub fn mp4_info(f: &mut File) -> io::Result<MediaInfo> {
    let file_len = f.metadata()?.len();
    let mut movie = Movie::default();
    let (mut pos, mut seen_moov) = (0u64, false);
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if pos + 8 > file_len {
            break;
        }
        f.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 16];
        f.read_exact(&mut head[..8])?;
        let size32 = be_u32(&head, 0).unwrap_or(0);
        let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
        let (header, size) = match size32 {
            0 => (8, file_len - pos),
            1 => {
                f.read_exact(&mut head[8..16])?;
                (16, be_u64(&head, 8).unwrap_or(0))
            }
            n => (8, u64::from(n)),
        };
        if pos == 0 && &kind != b"ftyp" && &kind != b"moov" && &kind != b"free" && &kind != b"styp" {
            return Err(invalid("not an ISO media file"));
        }
        if size < header {
            break;
        }
        // A truncated last box (recording still being written, or cut off) ends the walk but keeps what we have.
        let body_len = size.min(file_len - pos) - header;
        match &kind {
            b"moov" => {
                parse_moov(&read_body(f, body_len)?, &mut movie).ok_or_else(|| invalid("bad moov"))?;
                seen_moov = true;
            }
            b"moof" if seen_moov => parse_moof(&read_body(f, body_len)?, &mut movie),
            _ => {}
        }
        pos += size;
    }
    if !seen_moov {
        return Err(invalid("no moov box"));
    }
    Ok(summarize(&movie))
}

fn summarize(movie: &Movie) -> MediaInfo {
    let secs = |units: u64, scale: u32| (scale > 0).then(|| units as f64 / f64::from(scale));
    let mut best = [secs(movie.duration, movie.timescale), secs(movie.fragment_duration, movie.timescale)]
        .into_iter()
        .flatten()
        .fold(0.0f64, f64::max);
    for t in movie.tracks.values() {
        if let Some(s) = secs(t.moov_duration + t.fragment_duration, t.timescale) {
            best = best.max(s);
        }
    }
    let video = movie.tracks.values().filter(|t| t.width > 0 && t.height > 0).min_by_key(|t| (!t.video, t.id));
    MediaInfo { duration_secs: Some(best), width: video.map(|t| t.width), height: video.map(|t| t.height) }
}

/// Pixel size of a JPEG (SOFn marker) or PNG (IHDR) image.
pub fn image_info(f: &mut File) -> io::Result<MediaInfo> {
    let mut sig = [0u8; 8];
    f.read_exact(&mut sig)?;
    let size = if sig == *b"\x89PNG\r\n\x1a\n" {
        let mut ihdr = [0u8; 16];
        f.read_exact(&mut ihdr)?;
        if &ihdr[4..8] != b"IHDR" {
            return Err(invalid("PNG without IHDR"));
        }
        (be_u32(&ihdr, 8).unwrap_or(0), be_u32(&ihdr, 12).unwrap_or(0))
    } else if sig[..2] == [0xFF, 0xD8] {
        f.seek(SeekFrom::Start(2))?;
        jpeg_size(&mut io::BufReader::new(f))?
    } else {
        return Err(invalid("unknown image format"));
    };
    Ok(MediaInfo { duration_secs: None, width: Some(size.0), height: Some(size.1) })
}

/// Walks JPEG markers from just after SOI until a start-of-frame.
fn jpeg_size(r: &mut impl Read) -> io::Result<(u32, u32)> {
    let mut b = [0u8; 1];
    loop {
        r.read_exact(&mut b)?;
        if b[0] != 0xFF {
            return Err(invalid("JPEG marker expected"));
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            r.read_exact(&mut b)?;
            marker = b[0];
        }
        // Stand-alone markers carry no length.
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        let mut len = [0u8; 2];
        r.read_exact(&mut len)?;
        let len = u16::from_be_bytes(len);
        if len < 2 {
            return Err(invalid("bad JPEG segment length"));
        }
        let mut seg = vec![0u8; usize::from(len) - 2];
        r.read_exact(&mut seg)?;
        let is_sof = (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker);
        if is_sof {
            let h = be_u16(&seg, 1).ok_or_else(|| invalid("short SOF"))?;
            let w = be_u16(&seg, 3).ok_or_else(|| invalid("short SOF"))?;
            return Ok((u32::from(w), u32::from(h)));
        }
        if marker == 0xDA || marker == 0xD9 {
            return Err(invalid("no SOF before scan"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn trun_sums_explicit_and_default_durations() {
        // flags: data-offset + sample-duration + sample-size; 2 samples.
        let mut b = 0x0000_0301u32.to_be_bytes().to_vec();
        b.extend_from_slice(&2u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        for (d, s) in [(512u32, 10u32), (1024, 20)] {
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&s.to_be_bytes());
        }
        assert_eq!(trun_duration(&b, 7), Some(1536));
        let mut d = 0u32.to_be_bytes().to_vec();
        d.extend_from_slice(&5u32.to_be_bytes());
        assert_eq!(trun_duration(&d, 100), Some(500));
        assert_eq!(trun_duration(&b[..12], 0), None, "truncated trun is rejected");
    }

    #[test]
    fn box_iterator_stops_at_truncated_boxes() {
        let mut data = bx(b"free", &[1, 2, 3]);
        data.extend(bx(b"mvhd", &[0; 4])[..6].iter());
        let kinds: Vec<_> = boxes(&data).map(|(k, _)| k).collect();
        assert_eq!(kinds, vec![*b"free"]);
    }

    #[test]
    fn jpeg_sof_after_app_segments() {
        let mut j = vec![0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB];
        j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8, 0x01, 0xE0, 0x02, 0x80, 3, 0, 0, 0, 0]);
        assert_eq!(jpeg_size(&mut &j[..]).unwrap(), (640, 480));
        assert!(jpeg_size(&mut &[0xFF, 0xDA, 0x00, 0x02][..]).is_err());
    }
}
