//! The picture size and frame rate an H.264 stream declares in its sequence parameter set (SPS), as carried in
//! an SDP `sprop-parameter-sets`. The input comes from the network: every read is bounds-checked and a malformed
//! SPS yields `None`, never a panic.
#![forbid(unsafe_code)]

/// What an SPS says about the picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpsInfo {
    pub width: u32,
    pub height: u32,
    /// From the VUI timing information, when present.
    pub fps: Option<f64>,
}

/// Reads bits MSB first from an RBSP (emulation prevention bytes already removed).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    fn flag(&mut self) -> Option<bool> {
        self.bit().map(|b| b == 1)
    }

    /// Unsigned Exp-Golomb, at most 32 bits of value.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        ((1u64 << zeros) - 1 + u64::from(rest)).try_into().ok()
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// NAL unit payload → RBSP: drop each `0x03` that follows two zero bytes.
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Parse an SPS NAL unit (header byte included).
pub fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let rbsp = unescape(&nal[1..]);
    let mut r = Bits { data: &rbsp, pos: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = false;
    if matches!(profile, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format = r.ue()?;
        if chroma_format > 3 {
            return None;
        }
        if chroma_format == 3 {
            separate_planes = r.flag()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.flag()?; // qpprime_y_zero_transform_bypass
        if r.flag()? {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.flag()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    r.ue()?; // max_num_ref_frames
    r.flag()?; // gaps_in_frame_num_value_allowed
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field
    }
    r.flag()?; // direct_8x8_inference
    let crop = if r.flag()? { [r.ue()?, r.ue()?, r.ue()?, r.ue()?].map(u64::from) } else { [0; 4] };
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let (unit_x, unit_y) = match (chroma_format, separate_planes) {
        (0, _) | (3, true) => (1, field_factor),
        (1, _) => (2, 2 * field_factor),
        (2, _) => (2, field_factor),
        _ => (1, field_factor),
    };
    let width = (width_mbs * 16).checked_sub(unit_x * (crop[0] + crop[1]))?;
    let height = (height_units * 16 * field_factor).checked_sub(unit_y * (crop[2] + crop[3]))?;
    let fps = if r.flag()? { vui_fps(&mut r) } else { None };
    let (width, height) = (u32::try_from(width).ok()?, u32::try_from(height).ok()?);
    (width > 0 && height > 0 && width <= 16384 && height <= 16384).then_some(SpsInfo { width, height, fps })
}

fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Some(())
}

/// The frame rate from the VUI's timing info (`time_scale / (2 * num_units_in_tick)`), if the SPS has one.
fn vui_fps(r: &mut Bits) -> Option<f64> {
    if r.flag()? && r.bits(8)? == 255 {
        r.bits(32)?; // sar_width, sar_height
    }
    if r.flag()? {
        r.flag()?; // overscan_appropriate
    }
    if r.flag()? {
        r.bits(4)?; // video_format, video_full_range
        if r.flag()? {
            r.bits(24)?; // colour description
        }
    }
    if r.flag()? {
        r.ue()?;
        r.ue()?;
    }
    if !r.flag()? {
        return None;
    }
    let units = r.bits(32)?;
    let scale = r.bits(32)?;
    if units == 0 || scale == 0 {
        return None;
    }
    let fps = f64::from(scale) / (2.0 * f64::from(units));
    (fps > 0.0 && fps <= 1000.0).then_some(fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn libx264_baseline_sps_with_timing() {
        // ffmpeg -f lavfi -i testsrc2=size=320x240:rate=10 -c:v libx264 -profile:v baseline -f h264 (its SPS).
        let sps = hex("6742c00bd90141fb011000000300100000030140f142a480");
        let info = parse_sps(&sps).unwrap();
        assert_eq!((info.width, info.height), (320, 240));
        assert_eq!(info.fps, Some(10.0));
    }

    #[test]
    fn high_profile_1080p_with_cropping_and_interlaced_main() {
        // libx264 high profile 1920x1080 (1088 coded lines, cropped by 8) at 25 fps.
        let info = parse_sps(&hex("67640028acd940780227e5c044000003000400000300c83c60c658")).unwrap();
        assert_eq!((info.width, info.height, info.fps), (1920, 1080, Some(25.0)));
        // libx264 main profile, interlaced (field pictures: frame_mbs_only = 0), 1280x720 at 30000/1001.
        let info = parse_sps(&hex("674d4020eca02805df97011000003e90000ea601f162d960")).unwrap();
        assert_eq!((info.width, info.height), (1280, 720));
        assert!((info.fps.unwrap() - 29.97).abs() < 0.01, "{:?}", info.fps);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse_sps(&[]), None);
        assert_eq!(parse_sps(&[0x68, 0xce, 0x38, 0x80]), None, "a PPS is not an SPS");
        assert_eq!(parse_sps(&[0x67]), None);
        assert_eq!(parse_sps(&[0x67, 0x64, 0, 0x2a, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
