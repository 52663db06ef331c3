//! Width and height of a written snapshot, read from the image header (JPEG SOF marker, PNG IHDR chunk).
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::Path;

/// Dimensions of a JPEG or PNG file; None when the header is not recognised.
pub fn dimensions(path: &Path) -> Option<(u32, u32)> {
    let mut head = Vec::with_capacity(64 * 1024);
    std::fs::File::open(path).ok()?.take(256 * 1024).read_to_end(&mut head).ok()?;
    png_dimensions(&head).or_else(|| jpeg_dimensions(&head))
}

/// PNG: 8-byte signature, then the IHDR chunk (length, "IHDR", width, height as big-endian u32).
pub fn png_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if b.len() < 24 || &b[..8] != SIG || &b[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(b[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(b[20..24].try_into().ok()?);
    Some((w, h))
}

/// JPEG: walk the marker segments after SOI until a start-of-frame (SOF0..SOF15 except DHT/JPG/DAC).
pub fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return None;
    }
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        // Fill bytes and stand-alone markers carry no length.
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += 2;
            continue;
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let s = b.get(i + 4..i + 9)?;
            let h = u16::from_be_bytes([s[1], s[2]]) as u32;
            let w = u16::from_be_bytes([s[3], s[4]]) as u32;
            return Some((w, h));
        }
        if marker == 0xDA || len < 2 {
            return None;
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_header() {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&640u32.to_be_bytes());
        b.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(png_dimensions(&b), Some((640, 480)));
        assert_eq!(png_dimensions(b"nope"), None);
    }

    #[test]
    fn jpeg_header_after_app_segments() {
        // SOI, APP0 (length 4: two payload bytes), SOF0 (precision 8, height 240, width 320).
        let b = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0xF0, 0x01, 0x40];
        assert_eq!(jpeg_dimensions(&b), Some((320, 240)));
        assert_eq!(jpeg_dimensions(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(jpeg_dimensions(b"GIF89a"), None);
    }
}
