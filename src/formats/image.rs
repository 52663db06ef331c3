//! Width and height of a JPEG (start-of-frame marker) or PNG (IHDR chunk) image, read from its first bytes.

use std::io::{self, Read};

use super::{be_u16, be_u32, invalid};

/// How much of a file [`read_dimensions`] looks at. The JPEG frame header follows the APPn segments (EXIF with a
/// thumbnail can be ~64 KiB); a file whose header is further in is reported as unreadable rather than read whole.
pub const HEADER_PREFIX: u64 = 256 * 1024;

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// API quality 1–100 (100 best) → ffmpeg MJPEG `-q:v` 31–2 (2 best).
pub fn qscale(quality: u8) -> u8 {
    let q = 31.0 - (f64::from(quality.clamp(1, 100)) - 1.0) * 29.0 / 99.0;
    q.round().clamp(2.0, 31.0) as u8
}

/// `(width, height)` of the image `reader` yields, from at most [`HEADER_PREFIX`] bytes.
pub fn read_dimensions<R: Read>(reader: R) -> io::Result<(u32, u32)> {
    let mut head = Vec::with_capacity(16 * 1024);
    reader.take(HEADER_PREFIX).read_to_end(&mut head)?;
    dimensions(&head)
}

/// `(width, height)` from the first bytes of a JPEG or PNG image.
pub fn dimensions(head: &[u8]) -> io::Result<(u32, u32)> {
    if head.starts_with(PNG_SIGNATURE) {
        png_dimensions(head).ok_or_else(|| invalid("PNG without an IHDR chunk"))
    } else if head.starts_with(&[0xFF, 0xD8]) {
        jpeg_dimensions(head).ok_or_else(|| invalid("JPEG without a frame header before its image data"))
    } else {
        Err(invalid("neither a JPEG nor a PNG image"))
    }
}

/// PNG: 8-byte signature, then the IHDR chunk (length, "IHDR", width, height as big-endian u32).
pub fn png_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    if !b.starts_with(PNG_SIGNATURE) || b.get(12..16)? != b"IHDR" {
        return None;
    }
    Some((be_u32(b, 16)?, be_u32(b, 20)?))
}

/// JPEG: walk the marker segments after SOI until a start-of-frame (SOF0..SOF15 except DHT, JPG and DAC).
pub fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2usize;
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        let marker = *b.get(i.checked_add(1)?)?;
        match marker {
            // A fill byte: the marker starts one byte later.
            0xFF => {
                i += 1;
                continue;
            }
            // Stand-alone markers (TEM, RSTn, SOI) carry no length.
            0x01 | 0xD0..=0xD8 => {
                i = i.checked_add(2)?;
                continue;
            }
            // End of image or start of scan before any frame header.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let len = usize::from(be_u16(b, i.checked_add(2)?)?);
        if len < 2 {
            return None;
        }
        let end = i.checked_add(2)?.checked_add(len)?;
        let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            // Payload: precision (1 byte), height, width (big-endian u16 each), then the components, which we
            // do not need (so a prefix that ends inside them still answers).
            if len < 7 {
                return None;
            }
            let seg = b.get(i + 4..)?;
            return Some((u32::from(be_u16(seg, 3)?), u32::from(be_u16(seg, 1)?)));
        }
        i = end;
    }
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
        assert_eq!(dimensions(&b).unwrap(), (640, 480));
        assert_eq!(png_dimensions(b"nope"), None);
        assert!(dimensions(&b[..20]).is_err(), "IHDR cut off");
    }

    #[test]
    fn jpeg_header_after_app_segments_and_fill_bytes() {
        // SOI, APP0 (length 4: two payload bytes), fill byte, SOF0 (precision 8, height 240, width 320).
        let b = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0xF0, 0x01, 0x40,
        ];
        assert_eq!(jpeg_dimensions(&b), Some((320, 240)));
        assert_eq!(read_dimensions(&b[..]).unwrap(), (320, 240));
        assert_eq!(jpeg_dimensions(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(jpeg_dimensions(&[0xFF, 0xD8, 0xFF, 0xD9]), None);
        assert_eq!(jpeg_dimensions(b"GIF89a"), None);
        assert!(dimensions(b"GIF89a").is_err());
    }

    #[test]
    fn jpeg_frame_header_must_fit_its_segment() {
        // SOF0 whose declared length (5) is too short to hold height and width.
        let b = [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x05, 0x08, 0x00, 0xF0, 0x01, 0x40];
        assert_eq!(jpeg_dimensions(&b), None);
        // A segment length that runs past the data.
        assert_eq!(jpeg_dimensions(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x00]), None);
    }
}
