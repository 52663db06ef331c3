//! Stable camera identity from sysfs: the USB serial number when the device has one, else the bus
//! path. `<sysfs>/class/video4linux/videoN/device` points at the USB interface; its ancestor holding `idVendor` is
//! the USB device, whose `serial` (optional) and directory name (the port path, e.g. `1-1.2`) identify it.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// What sysfs tells about the USB device behind a video node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsbInfo {
    pub serial: Option<String>,
    pub vendor: Option<String>,
    pub product: Option<String>,
    /// The USB device directory name: the physical port path (`1-1.2`).
    pub port: Option<String>,
}

/// How far up from the interface directory we look for the USB device (interface → device is one level on real
/// systems; hubs do not add levels between them).
const MAX_LEVELS: usize = 6;

pub fn usb_info(sysfs: &Path, number: u32) -> UsbInfo {
    let link = sysfs.join("class/video4linux").join(format!("video{number}")).join("device");
    let (Ok(root), Ok(mut dir)) = (fs::canonicalize(sysfs), fs::canonicalize(&link)) else {
        return UsbInfo::default();
    };
    for _ in 0..MAX_LEVELS {
        if !dir.starts_with(&root) || dir == root {
            break;
        }
        if dir.join("idVendor").is_file() {
            return UsbInfo {
                serial: read_attr(&dir, "serial"),
                vendor: read_attr(&dir, "idVendor"),
                product: read_attr(&dir, "idProduct"),
                port: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
            };
        }
        if !dir.pop() {
            break;
        }
    }
    UsbInfo::default()
}

fn read_attr(dir: &Path, name: &str) -> Option<String> {
    let p: PathBuf = dir.join(name);
    fs::read(p).ok().map(|b| String::from_utf8_lossy(&b).trim().to_string()).filter(|s| !s.is_empty())
}

/// The identity string: `usb:<vendor>:<product>:<serial>` (serials are unique only per vendor and product), else
/// `bus:<bus_info>` (the V4L2 bus path, stable while the camera stays in the same port), else `usb-port:<port>`,
/// else `node:/dev/videoN` (nothing better is known, e.g. a node that cannot be opened on a machine without sysfs).
pub fn identity(usb: &UsbInfo, bus_info: Option<&str>, number: u32) -> String {
    if let Some(serial) = &usb.serial {
        let v = usb.vendor.as_deref().unwrap_or("?");
        let p = usb.product.as_deref().unwrap_or("?");
        return format!("usb:{v}:{p}:{serial}");
    }
    if let Some(bus) = bus_info.filter(|b| !b.is_empty()) {
        return format!("bus:{bus}");
    }
    if let Some(port) = &usb.port {
        return format!("usb-port:{port}");
    }
    format!("node:/dev/video{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds `<root>/devices/usb1/<port>/<port>:1.0` with a class link for `videoN`, like the kernel does.
    fn fake_usb(root: &Path, number: u32, port: &str, serial: Option<&str>) {
        let dev = root.join("devices/usb1").join(port);
        let intf = dev.join(format!("{port}:1.0"));
        fs::create_dir_all(&intf).unwrap();
        fs::write(dev.join("idVendor"), "046d\n").unwrap();
        fs::write(dev.join("idProduct"), "082d\n").unwrap();
        if let Some(s) = serial {
            fs::write(dev.join("serial"), format!("{s}\n")).unwrap();
        }
        let class = root.join("class/video4linux").join(format!("video{number}"));
        fs::create_dir_all(&class).unwrap();
        let _ = fs::remove_file(class.join("device"));
        std::os::unix::fs::symlink(format!("../../../devices/usb1/{port}/{port}:1.0"), class.join("device")).unwrap();
    }

    #[test]
    fn serial_survives_renumbering_and_bus_path_is_the_fallback() {
        let root = std::env::temp_dir().join(format!("cam-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fake_usb(&root, 2, "1-2", Some("ABC123"));
        fake_usb(&root, 5, "1-2", Some("ABC123"));
        fake_usb(&root, 7, "1-3", None);
        let a = usb_info(&root, 2);
        assert_eq!(a.serial.as_deref(), Some("ABC123"));
        assert_eq!(a.port.as_deref(), Some("1-2"));
        assert_eq!(identity(&a, Some("usb-0000:00:14.0-2"), 2), "usb:046d:082d:ABC123");
        assert_eq!(identity(&usb_info(&root, 5), None, 5), "usb:046d:082d:ABC123");
        let c = usb_info(&root, 7);
        assert_eq!(identity(&c, Some("usb-0000:00:14.0-3"), 7), "bus:usb-0000:00:14.0-3");
        assert_eq!(identity(&c, None, 7), "usb-port:1-3");
        assert_eq!(identity(&usb_info(&root, 9), None, 9), "node:/dev/video9");
        let _ = fs::remove_dir_all(&root);
    }
}
