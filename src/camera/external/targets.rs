//! The addresses a discovery scan probes: `external_discovery.hosts` entries (single addresses or CIDR ranges),
//! expanded and bounded so a typo such as `10.0.0.0/8` cannot start a scan of millions of hosts.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most addresses a scan covers, all entries together.
pub const MAX_ADDRESSES: u64 = 1024;

/// Every address the entries name, in order, without duplicates. An IPv4 range of more than two addresses leaves
/// out its network and broadcast addresses. Errors name the entry (index) and the reason.
pub fn expand(entries: &[String]) -> Result<Vec<IpAddr>, (usize, String)> {
    let mut total: u64 = 0;
    let mut parsed = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let (base, prefix) = parse(e).map_err(|r| (i, r))?;
        let size = range_size(base, prefix);
        total = total.saturating_add(size);
        if total > MAX_ADDRESSES {
            return Err((i, format!("the hosts expand to more than {MAX_ADDRESSES} addresses (this entry: {size})")));
        }
        parsed.push((base, prefix));
    }
    let mut out: Vec<IpAddr> = Vec::with_capacity(total as usize);
    for (base, prefix) in parsed {
        for a in addresses(base, prefix) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// `addr` or `addr/prefix`; the address is masked to the prefix (`10.0.0.7/24` means `10.0.0.0/24`).
fn parse(entry: &str) -> Result<(IpAddr, u32), String> {
    let entry = entry.trim();
    let (addr, prefix) = match entry.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("{entry:?} is not an IP address or CIDR range"))?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => bits,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n <= bits && !p.starts_with('+') => n,
            _ => return Err(format!("{entry:?}: prefix length must be 0..{bits}")),
        },
    };
    Ok((mask(ip, prefix), prefix))
}

fn mask(ip: IpAddr, prefix: u32) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

/// How many addresses [`addresses`] yields for a range (saturating).
fn range_size(base: IpAddr, prefix: u32) -> u64 {
    let host_bits = if base.is_ipv4() { 32 - prefix } else { 128 - prefix };
    let all = if host_bits >= 64 { u64::MAX } else { 1u64 << host_bits };
    if base.is_ipv4() && host_bits >= 2 {
        all - 2
    } else {
        all
    }
}

fn addresses(base: IpAddr, prefix: u32) -> Vec<IpAddr> {
    let n = range_size(base, prefix);
    match base {
        IpAddr::V4(v4) => {
            let skip = u64::from(32 - prefix >= 2);
            (0..n).map(|i| IpAddr::V4(Ipv4Addr::from(u32::from(v4) + (i + skip) as u32))).collect()
        }
        IpAddr::V6(v6) => (0..n).map(|i| IpAddr::V6(Ipv6Addr::from(u128::from(v6) + u128::from(i)))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(v: &[&str]) -> Result<Vec<String>, (usize, String)> {
        expand(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .map(|a| a.into_iter().map(|ip| ip.to_string()).collect())
    }

    #[test]
    fn single_addresses_and_ranges() {
        assert_eq!(hosts(&["127.0.0.1", "::1"]).unwrap(), ["127.0.0.1", "::1"]);
        assert_eq!(hosts(&["10.0.0.7/30"]).unwrap(), ["10.0.0.5", "10.0.0.6"], "masked to 10.0.0.4/30");
        assert_eq!(hosts(&["10.0.0.6/31"]).unwrap(), ["10.0.0.6", "10.0.0.7"]);
        assert_eq!(hosts(&["10.0.0.6/32", "10.0.0.6"]).unwrap(), ["10.0.0.6"], "duplicates are probed once");
        let c = hosts(&["192.168.1.0/24"]).unwrap();
        assert_eq!((c.len(), c[0].as_str(), c[253].as_str()), (254, "192.168.1.1", "192.168.1.254"));
        assert_eq!(hosts(&["fd00::/126"]).unwrap(), ["fd00::", "fd00::1", "fd00::2", "fd00::3"]);
        assert_eq!(hosts(&["10.0.0.0/22"]).unwrap().len(), 1022);
        assert!(hosts(&[]).unwrap().is_empty());
    }

    #[test]
    fn too_many_or_malformed() {
        assert_eq!(hosts(&["10.0.0.0/21"]).unwrap_err().0, 0);
        assert_eq!(hosts(&["10.0.0.0/8"]).unwrap_err().0, 0);
        assert_eq!(hosts(&["::/0"]).unwrap_err().0, 0);
        assert_eq!(hosts(&["10.0.0.0/22", "10.0.4.0/30"]).unwrap().len(), 1024);
        let e = hosts(&["10.0.0.0/22", "10.0.4.0/29"]).unwrap_err();
        assert_eq!(e.0, 1, "{e:?}");
        assert!(e.1.contains("1024"));
        for bad in ["cam.local", "10.0.0.1/33", "10.0.0.1/", "10.0.0.1/+8", "::1/129", "300.1.1.1", ""] {
            assert!(hosts(&[bad]).is_err(), "{bad}");
        }
    }
}
