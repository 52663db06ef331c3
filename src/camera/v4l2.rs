//! The V4L2 ioctl island: VIDIOC_QUERYCAP / ENUM_FMT / ENUM_FRAMESIZES / ENUM_FRAMEINTERVALS through the `v4l`
//! crate's `open`/`ioctl`/`close` and its kernel struct bindings, decoded into plain owned values.
//!
//! Why not `v4l::Device` with `video::Capture`: its `Capabilities`/`Description` conversions `unwrap()` UTF-8 (a
//! card name with Latin-1 bytes would panic the prober), it exposes only `device_caps` (qualification needs
//! `capabilities` when `V4L2_CAP_DEVICE_CAPS` is unset), its enumeration loops have no bound (a driver that never
//! answers EINVAL spins forever), and it does not enumerate multi-planar capture formats. The loops here are bounded
//! and decode text lossily. This is the only module of the camera component that needs `unsafe` (the crate denies it
//! elsewhere); each request is tied to its argument struct by the [`Arg`] trait, so the callers stay safe code.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::os::raw::{c_int, c_void};
use std::path::Path;

use v4l::v4l2;
use v4l::v4l2::vidioc;
use v4l::v4l_sys::{
    v4l2_capability, v4l2_fmtdesc, v4l2_frmivalenum, v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_DISCRETE, v4l2_frmsizeenum,
    v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE,
};

pub const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
pub const CAP_VIDEO_CAPTURE_MPLANE: u32 = 0x0000_1000;
pub const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
pub const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
pub const BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;

/// Upper bounds for enumeration loops (real devices stay far below them).
const MAX_FORMATS: u32 = 64;
const MAX_SIZES: u32 = 256;
const MAX_INTERVALS: u32 = 64;

/// VIDIOC_QUERYCAP, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCaps {
    pub driver: String,
    pub card: String,
    pub bus_info: String,
    pub capabilities: u32,
    pub device_caps: u32,
}

impl RawCaps {
    /// The capabilities of this node: `device_caps` when the driver fills it, else the physical device's.
    pub fn node_caps(&self) -> u32 {
        if self.capabilities & CAP_DEVICE_CAPS != 0 {
            self.device_caps
        } else {
            self.capabilities
        }
    }

    /// The buffer type to enumerate formats with, or None when the node cannot capture video (e.g. UVC metadata).
    pub fn capture_type(&self) -> Option<u32> {
        let caps = self.node_caps();
        if caps & CAP_VIDEO_CAPTURE != 0 {
            Some(BUF_TYPE_VIDEO_CAPTURE)
        } else if caps & CAP_VIDEO_CAPTURE_MPLANE != 0 {
            Some(BUF_TYPE_VIDEO_CAPTURE_MPLANE)
        } else {
            None
        }
    }
}

/// One VIDIOC_ENUM_FMT entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFormat {
    pub pixelformat: u32,
    pub description: String,
}

/// One VIDIOC_ENUM_FRAMESIZES entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSize {
    Discrete {
        width: u32,
        height: u32,
    },
    /// Stepwise or continuous (continuous has steps of 1).
    Stepwise {
        min_w: u32,
        max_w: u32,
        step_w: u32,
        min_h: u32,
        max_h: u32,
        step_h: u32,
    },
}

/// One VIDIOC_ENUM_FRAMEINTERVALS entry, as intervals in seconds (`numerator/denominator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawInterval {
    Discrete {
        num: u32,
        den: u32,
    },
    /// Stepwise or continuous: shortest and longest interval.
    Range {
        min_num: u32,
        min_den: u32,
        max_num: u32,
        max_den: u32,
    },
}

/// A kernel argument struct and the one V4L2 request that takes it, so [`Node::ioctl`] cannot pair a request with
/// the wrong struct.
///
/// # Safety
/// `REQUEST` must be an ioctl whose argument is exactly `Self` as the kernel headers define it, and `Self` must be
/// plain old data for which all-zero bytes are a valid value.
unsafe trait Arg {
    const REQUEST: vidioc::_IOC_TYPE;
}

// SAFETY: videodev2.h: `VIDIOC_QUERYCAP` takes `struct v4l2_capability`, a struct of integers and byte arrays.
unsafe impl Arg for v4l2_capability {
    const REQUEST: vidioc::_IOC_TYPE = vidioc::VIDIOC_QUERYCAP;
}

// SAFETY: videodev2.h: `VIDIOC_ENUM_FMT` takes `struct v4l2_fmtdesc`, a struct of integers and byte arrays.
unsafe impl Arg for v4l2_fmtdesc {
    const REQUEST: vidioc::_IOC_TYPE = vidioc::VIDIOC_ENUM_FMT;
}

// SAFETY: videodev2.h: `VIDIOC_ENUM_FRAMESIZES` takes `struct v4l2_frmsizeenum`, integers and a union of integer
// structs.
unsafe impl Arg for v4l2_frmsizeenum {
    const REQUEST: vidioc::_IOC_TYPE = vidioc::VIDIOC_ENUM_FRAMESIZES;
}

// SAFETY: videodev2.h: `VIDIOC_ENUM_FRAMEINTERVALS` takes `struct v4l2_frmivalenum`, integers and a union of
// integer fractions.
unsafe impl Arg for v4l2_frmivalenum {
    const REQUEST: vidioc::_IOC_TYPE = vidioc::VIDIOC_ENUM_FRAMEINTERVALS;
}

/// An all-zero request struct, ready for its input fields.
fn zeroed<T: Arg>() -> T {
    // SAFETY: the `Arg` contract: `T` is plain old data and all-zero bytes are a valid value.
    unsafe { mem::zeroed() }
}

/// An open device node; closed on drop.
pub struct Node {
    fd: c_int,
}

impl Node {
    /// Open read-write, non-blocking (as v4l2-ctl does; V4L2 allows concurrent opens, so a streaming camera opens).
    pub fn open(path: &Path) -> io::Result<Node> {
        let fd = v4l2::open(path, libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC)?;
        Ok(Node { fd })
    }

    /// The ioctl `T::REQUEST` on this node, retried on EINTR. Safe to call: [`Arg`] ties the argument type to its
    /// request, so the kernel never reads or writes past `arg`.
    fn ioctl<T: Arg>(&self, arg: &mut T) -> io::Result<()> {
        loop {
            // SAFETY: `arg` is an exclusively borrowed, initialised value of the type the kernel expects for
            // `T::REQUEST` (the `Arg` contract); the driver writes at most size_of::<T>() bytes into it and keeps
            // no reference after returning.
            let r = unsafe { v4l2::ioctl(self.fd, T::REQUEST, (arg as *mut T).cast::<c_void>()) };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    pub fn query_caps(&self) -> io::Result<RawCaps> {
        let mut c: v4l2_capability = zeroed();
        self.ioctl(&mut c)?;
        Ok(RawCaps {
            driver: c_text(&c.driver),
            card: c_text(&c.card),
            bus_info: c_text(&c.bus_info),
            capabilities: c.capabilities,
            device_caps: c.device_caps,
        })
    }

    /// Formats of `buf_type`. An error at index 0 is returned; later errors end the list (EINVAL is the normal end).
    pub fn formats(&self, buf_type: u32) -> io::Result<Vec<RawFormat>> {
        let mut out = Vec::new();
        for index in 0..MAX_FORMATS {
            let mut f: v4l2_fmtdesc = zeroed();
            f.index = index;
            f.type_ = buf_type;
            if let Err(e) = self.ioctl(&mut f) {
                return end_of_list(e, index, out);
            }
            out.push(RawFormat { pixelformat: f.pixelformat, description: c_text(&f.description) });
        }
        Ok(out)
    }

    pub fn frame_sizes(&self, pixelformat: u32) -> io::Result<Vec<RawSize>> {
        let mut out = Vec::new();
        for index in 0..MAX_SIZES {
            let mut s: v4l2_frmsizeenum = zeroed();
            s.index = index;
            s.pixel_format = pixelformat;
            if let Err(e) = self.ioctl(&mut s) {
                return end_of_list(e, index, out);
            }
            // SAFETY: `type_` says which union member the driver filled; both members are plain u32 fields.
            let size = unsafe {
                if s.type_ == v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE {
                    let d = s.__bindgen_anon_1.discrete;
                    RawSize::Discrete { width: d.width, height: d.height }
                } else {
                    let w = s.__bindgen_anon_1.stepwise;
                    RawSize::Stepwise {
                        min_w: w.min_width,
                        max_w: w.max_width,
                        step_w: w.step_width.max(1),
                        min_h: w.min_height,
                        max_h: w.max_height,
                        step_h: w.step_height.max(1),
                    }
                }
            };
            let stepwise = matches!(size, RawSize::Stepwise { .. });
            out.push(size);
            if stepwise {
                break; // a stepwise/continuous answer is the only entry (index 0) by definition
            }
        }
        Ok(out)
    }

    pub fn frame_intervals(&self, pixelformat: u32, width: u32, height: u32) -> io::Result<Vec<RawInterval>> {
        let mut out = Vec::new();
        for index in 0..MAX_INTERVALS {
            let mut i: v4l2_frmivalenum = zeroed();
            i.index = index;
            i.pixel_format = pixelformat;
            i.width = width;
            i.height = height;
            if let Err(e) = self.ioctl(&mut i) {
                return end_of_list(e, index, out);
            }
            // SAFETY: `type_` says which union member the driver filled; both members are plain u32 fractions.
            let iv = unsafe {
                if i.type_ == v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_DISCRETE {
                    let d = i.__bindgen_anon_1.discrete;
                    RawInterval::Discrete { num: d.numerator, den: d.denominator }
                } else {
                    let w = i.__bindgen_anon_1.stepwise;
                    RawInterval::Range {
                        min_num: w.min.numerator,
                        min_den: w.min.denominator,
                        max_num: w.max.numerator,
                        max_den: w.max.denominator,
                    }
                }
            };
            let range = matches!(iv, RawInterval::Range { .. });
            out.push(iv);
            if range {
                break;
            }
        }
        Ok(out)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = v4l2::close(self.fd);
    }
}

fn end_of_list<T>(e: io::Error, index: u32, so_far: Vec<T>) -> io::Result<Vec<T>> {
    if index == 0 && e.raw_os_error() != Some(libc::EINVAL) {
        Err(e)
    } else {
        Ok(so_far)
    }
}

/// A NUL-terminated fixed-size kernel string, decoded lossily.
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

/// `MJPG` from a little-endian V4L2 pixel format code; non-printable bytes become `?`.
pub fn fourcc_text(code: u32) -> String {
    code.to_le_bytes().iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fall_back_to_capabilities_without_device_caps() {
        let mut c = RawCaps {
            driver: "uvcvideo".into(),
            card: "C920".into(),
            bus_info: "usb-1".into(),
            capabilities: 0x84a0_0001,
            device_caps: 0x04a0_0000,
        };
        // DEVICE_CAPS set: the node's own caps rule (a metadata node is not a capture node).
        assert_eq!(c.capture_type(), None);
        c.device_caps = 0x0420_0001;
        assert_eq!(c.capture_type(), Some(BUF_TYPE_VIDEO_CAPTURE));
        c.capabilities = 0x0000_1000;
        c.device_caps = 0;
        assert_eq!(c.capture_type(), Some(BUF_TYPE_VIDEO_CAPTURE_MPLANE));
    }

    #[test]
    fn text_helpers() {
        assert_eq!(fourcc_text(u32::from_le_bytes(*b"MJPG")), "MJPG");
        assert_eq!(fourcc_text(u32::from_le_bytes([b'Y', b'U', 0, 1])), "YU??");
        assert_eq!(c_text(b"Cam\xe9ra\0junk"), "Cam\u{fffd}ra");
    }

    #[test]
    fn opening_a_missing_node_fails() {
        assert!(Node::open(Path::new("/nonexistent/video0")).is_err());
    }
}
