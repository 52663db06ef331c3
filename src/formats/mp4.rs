//! ISO base media file format (MP4, fragmented MP4): the one box walker of the daemon, and what we read with it,
//! the duration and video size.
//!
//! A small box reader instead of spawning ffprobe per file: listing thousands of recordings must stay cheap and
//! ffprobe costs tens of milliseconds per call. Plain MP4 carries the duration in `mvhd`; fragmented MP4 (what
//! MediaMTX and our ffmpeg recorder write) may have `mehd`, and otherwise the duration is the sum of the sample
//! durations of every `moof/traf/trun`, with `tfhd`/`trex` defaults, in the track's `mdhd` timescale.
//!
//! Sizes in a box header are attacker-controlled 32- or 64-bit numbers: positions are advanced with checked
//! arithmetic, a box that claims more bytes than the file holds is truncated (the walk ends after it), and bodies
//! are read into memory only up to [`MAX_BOX_IN_MEMORY`].

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use super::{be_u32, be_u64, invalid};

/// Boxes read into memory whole (`moov`, `moof`) are capped so a corrupt size cannot exhaust memory.
pub const MAX_BOX_IN_MEMORY: u64 = 64 * 1024 * 1024;
/// Upper bound on top-level boxes visited (a 24 h recording with 1 s fragments has ~170 000).
pub const MAX_TOP_LEVEL_BOXES: usize = 1_000_000;

/// One top-level box as found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: [u8; 4],
    /// Offset of the box header in the file.
    pub offset: u64,
    /// 8, or 16 with a 64-bit size.
    pub header_len: u64,
    /// The size the header declares (header included; a size of 0 means "to the end of the file").
    pub declared_size: u64,
    /// Body bytes actually present: less than declared when the file is cut off inside this box.
    pub body_len: u64,
}

impl BoxHeader {
    /// True when the file ends before the box does (a recording still being written, or cut off).
    pub fn truncated(&self) -> bool {
        self.header_len + self.body_len < self.declared_size
    }
}

/// Walks the top-level boxes of a seekable reader. Yields `Err` only for I/O errors; a header that cannot be a
/// box (size below its own header, or a header cut off) ends the walk.
pub struct TopLevel<R> {
    reader: R,
    len: u64,
    pos: u64,
    visited: usize,
    done: bool,
}

/// Starts a walk over `reader` (its length is taken by seeking to the end).
pub fn top_level<R: Read + Seek>(mut reader: R) -> io::Result<TopLevel<R>> {
    let len = reader.seek(SeekFrom::End(0))?;
    Ok(TopLevel { reader, len, pos: 0, visited: 0, done: false })
}

impl<R: Read + Seek> TopLevel<R> {
    /// The body of `h` (as much of it as the file holds), refusing more than [`MAX_BOX_IN_MEMORY`] bytes.
    pub fn read_body(&mut self, h: &BoxHeader) -> io::Result<Vec<u8>> {
        if h.body_len > MAX_BOX_IN_MEMORY {
            return Err(invalid("box too large to read"));
        }
        let start = h.offset.checked_add(h.header_len).ok_or_else(|| invalid("box offset overflows"))?;
        self.reader.seek(SeekFrom::Start(start))?;
        let mut body = vec![0u8; h.body_len as usize];
        self.reader.read_exact(&mut body)?;
        Ok(body)
    }

    fn header_at(&mut self, pos: u64) -> io::Result<Option<BoxHeader>> {
        let available = self.len - pos;
        if available < 8 {
            return Ok(None);
        }
        self.reader.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 16];
        self.reader.read_exact(&mut head[..8])?;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let (header_len, declared_size) = match be_u32(&head, 0).unwrap_or(0) {
            0 => (8, available),
            1 if available >= 16 => {
                self.reader.read_exact(&mut head[8..16])?;
                (16, be_u64(&head, 8).unwrap_or(0))
            }
            1 => return Ok(None),
            n => (8, u64::from(n)),
        };
        if declared_size < header_len {
            return Ok(None);
        }
        let body_len = declared_size.min(available) - header_len;
        Ok(Some(BoxHeader { kind, offset: pos, header_len, declared_size, body_len }))
    }
}

impl<R: Read + Seek> Iterator for TopLevel<R> {
    type Item = io::Result<BoxHeader>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.visited >= MAX_TOP_LEVEL_BOXES {
            return None;
        }
        self.visited += 1;
        let header = match self.header_at(self.pos) {
            Ok(Some(h)) => h,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        // A size near 2^64 overflows here: that box is the last one (the file cannot hold it anyway).
        match self.pos.checked_add(header.declared_size) {
            Some(next) if next <= self.len => self.pos = next,
            _ => self.done = true,
        }
        Some(Ok(header))
    }
}

/// The first top-level box of type `kind`, if any (stops at the first I/O error).
pub fn find_top_level<R: Read + Seek>(reader: R, kind: &[u8; 4]) -> io::Result<Option<BoxHeader>> {
    for h in top_level(reader)? {
        let h = h?;
        if &h.kind == kind {
            return Ok(Some(h));
        }
    }
    Ok(None)
}

/// What an MP4 file tells about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mp4Info {
    /// Seconds (0 when the file declares no duration and has no fragments yet).
    pub duration_secs: f64,
    /// Size of the first video track (or of any track with a size).
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Duration and video size of an MP4 file. A file cut off after its `moov` keeps what was read.
pub fn info<R: Read + Seek>(reader: R) -> io::Result<Mp4Info> {
    let mut walk = top_level(reader)?;
    let mut movie = Movie::default();
    let (mut first, mut seen_moov) = (true, false);
    while let Some(h) = walk.next() {
        let h = h?;
        if first && !matches!(&h.kind, b"ftyp" | b"moov" | b"free" | b"styp") {
            return Err(invalid("not an ISO media file"));
        }
        first = false;
        match &h.kind {
            b"moov" => {
                parse_moov(&walk.read_body(&h)?, &mut movie).ok_or_else(|| invalid("bad moov box"))?;
                seen_moov = true;
            }
            b"moof" if seen_moov => parse_moof(&walk.read_body(&h)?, &mut movie),
            _ => {}
        }
    }
    if !seen_moov {
        return Err(invalid("no moov box"));
    }
    Ok(summarize(&movie))
}

/// Iterates the boxes inside an in-memory payload: yields (type, body); stops at the first malformed box.
struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Boxes<'a> {
    type Item = ([u8; 4], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.pos..)?;
        let kind: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (header, size) = match be_u32(rest, 0)? {
            0 => (8, rest.len()),
            1 => (16, usize::try_from(be_u64(rest, 8)?).ok()?),
            n => (8, usize::try_from(n).ok()?),
        };
        if size < header || size > rest.len() {
            return None;
        }
        // `size <= rest.len()`, so the new position stays within `data`.
        self.pos += size;
        Some((kind, &rest[header..size]))
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

/// All-ones means "unknown" (ISO 14496-12); fragmented files usually say 0.
fn known_duration(d: u64) -> u64 {
    if d == u64::MAX || d == u64::from(u32::MAX) {
        0
    } else {
        d
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
    Some(Track { id, timescale, moov_duration: known_duration(dur), width, height, video, ..Track::default() })
}

fn parse_moov(b: &[u8], movie: &mut Movie) -> Option<()> {
    let (timescale, duration) = timescale_duration(child(b, b"mvhd")?)?;
    movie.timescale = timescale;
    movie.duration = known_duration(duration);
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
            let d = trun_duration(trun, default).unwrap_or(0);
            track.fragment_duration = track.fragment_duration.saturating_add(d);
        }
    }
}

/// Sum of the sample durations in one `trun`.
fn trun_duration(b: &[u8], default: u32) -> Option<u64> {
    let flags = be_u32(b, 0)? & 0x00ff_ffff;
    let count = u64::from(be_u32(b, 4)?);
    if flags & 0x100 == 0 {
        // Both factors are below 2^32: the product fits in a u64.
        return Some(count * u64::from(default));
    }
    let mut at = 8 + if flags & 0x1 != 0 { 4 } else { 0 } + if flags & 0x4 != 0 { 4 } else { 0 };
    let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
    let mut total = 0u64;
    // A count larger than the box can hold ends at the first missing sample (None), so the loop is bounded by
    // the body size, not by the declared count.
    for _ in 0..count {
        total = total.saturating_add(u64::from(be_u32(b, at)?));
        at = at.checked_add(per_sample)?;
    }
    Some(total)
}

fn summarize(movie: &Movie) -> Mp4Info {
    let secs = |units: u64, scale: u32| (scale > 0).then(|| units as f64 / f64::from(scale));
    let mut best = [secs(movie.duration, movie.timescale), secs(movie.fragment_duration, movie.timescale)]
        .into_iter()
        .flatten()
        .fold(0.0f64, f64::max);
    for t in movie.tracks.values() {
        if let Some(s) = secs(t.moov_duration.saturating_add(t.fragment_duration), t.timescale) {
            best = best.max(s);
        }
    }
    let video = movie.tracks.values().filter(|t| t.width > 0 && t.height > 0).min_by_key(|t| (!t.video, t.id));
    Mp4Info { duration_secs: best, width: video.map(|t| t.width), height: video.map(|t| t.height) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A 64-bit size box (size field 1, then the real size).
    fn large(kind: &[u8; 4], size: u64, body: &[u8]) -> Vec<u8> {
        let mut v = 1u32.to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(&size.to_be_bytes());
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
        let mut max = 0u32.to_be_bytes().to_vec();
        max.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(trun_duration(&max, u32::MAX), Some(u64::from(u32::MAX) * u64::from(u32::MAX)));
    }

    #[test]
    fn box_iterator_stops_at_truncated_and_oversized_boxes() {
        let mut data = bx(b"free", &[1, 2, 3]);
        data.extend(bx(b"mvhd", &[0; 4])[..6].iter());
        let kinds: Vec<_> = boxes(&data).map(|(k, _)| k).collect();
        assert_eq!(kinds, vec![*b"free"]);
        // A nested 64-bit size near 2^64 once overflowed the position and panicked on the slice.
        let mut nested = bx(b"free", &[]);
        nested.extend(large(b"trak", u64::MAX - 3, &[0; 8]));
        assert_eq!(boxes(&nested).count(), 1);
        assert_eq!(boxes(&large(b"trak", 16, &[])).count(), 1);
    }

    /// The 52-byte file that made `list_recordings` fail for every client: an `ftyp`, then a box whose 64-bit
    /// size is close to 2^64.
    fn crafted_large_size() -> Vec<u8> {
        let mut f = bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41");
        f.extend(large(b"moov", u64::MAX - 7, &[0; 4]));
        f
    }

    #[test]
    fn crafted_64_bit_sizes_end_the_walk() {
        let f = crafted_large_size();
        assert_eq!(f.len(), 52);
        let walked: Vec<BoxHeader> = top_level(Cursor::new(&f)).unwrap().map(Result::unwrap).collect();
        assert_eq!(walked.len(), 2);
        assert!(walked[1].truncated());
        assert_eq!(walked[1].body_len, 4);
        assert!(info(Cursor::new(&f)).is_err(), "a moov of 4 garbage bytes is not a movie");
        // Size 1 without room for the 64-bit size, and a size below the header, end the walk too.
        for tail in [vec![0, 0, 0, 1, b'm', b'o', b'o', b'v'], vec![0, 0, 0, 3, b'f', b'r', b'e', b'e']] {
            let mut g = bx(b"ftyp", b"isom");
            g.extend(tail);
            assert_eq!(top_level(Cursor::new(&g)).unwrap().count(), 1);
        }
    }

    #[test]
    fn finds_moov_and_reads_fragment_durations() {
        let mut mvhd = vec![0u8; 20];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        let moov = bx(b"moov", &bx(b"mvhd", &mvhd));
        let mut f = bx(b"ftyp", b"isom");
        f.extend(&moov);
        f.extend(bx(b"mdat", &[0; 16]));
        assert_eq!(find_top_level(Cursor::new(&f), b"moov").unwrap().map(|h| h.offset), Some(12));
        assert_eq!(find_top_level(Cursor::new(&bx(b"ftyp", b"isom")), b"moov").unwrap(), None);
        assert_eq!(info(Cursor::new(&f)).unwrap().duration_secs, 0.0);
        mvhd[16..20].copy_from_slice(&2500u32.to_be_bytes());
        let mut g = bx(b"ftyp", b"isom");
        g.extend(bx(b"moov", &bx(b"mvhd", &mvhd)));
        assert_eq!(info(Cursor::new(&g)).unwrap().duration_secs, 2.5);
        assert!(info(Cursor::new(b"GIF89a..........")).is_err());
    }
}
