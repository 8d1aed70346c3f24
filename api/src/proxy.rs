//! Which address a request really came from: the socket's peer, or, when that peer is a reverse
//! proxy the operator trusts, the address that proxy saw (from `X-Forwarded-For`).
//!
//! `X-Forwarded-For` is written by the client first and appended to by each proxy, so only the
//! entries appended by trusted proxies can be believed: walking the header from the right, the
//! client is the first address that is not a trusted proxy (with one proxy, the last entry).
//! Anything further left is whatever the client chose to send. Not here: reading the headers or
//! the connection (`http::extract`), or what the address is used for (`ratelimit`, `audit`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// An address range, `10.0.0.0/8` or `fd00::/8`; a bare address is a range of one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// A comma-separated list, e.g. `10.0.0.0/8, 192.168.1.7`.
    pub fn parse_list(list: &str) -> Result<Vec<IpNet>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (whole, rest) = (usize::from(prefix / 8), prefix % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0-{max}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client's address. `peer` is the socket's (`None` without connect info: then nothing is
/// known, and the header is not believed either); `forwarded` are the `X-Forwarded-For` header
/// values in the order received.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded: &[&str],
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let trusts = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut nearest = peer;
    if !trusts(nearest) {
        return Some(nearest);
    }
    let entries = forwarded.iter().flat_map(|v| v.split(',')).rev();
    for e in entries {
        // Garbage from a trusted hop's upstream: stop at the last address we could read.
        let Some(ip) = entry(e) else { break };
        nearest = ip;
        if !trusts(ip) {
            break;
        }
    }
    Some(nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let nets = IpNet::parse_list("10.0.0.0/8, 192.168.1.7 ,fd00::/8").unwrap();
        assert!(nets[0].contains(ip("10.200.1.1")));
        assert!(!nets[0].contains(ip("11.0.0.1")));
        assert!(nets[1].contains(ip("192.168.1.7")));
        assert!(!nets[1].contains(ip("192.168.1.8")));
        assert!(nets[2].contains(ip("fd12::1")));
        assert!(nets[0].contains(ip("::ffff:10.1.1.1")), "v4-mapped peer");
        let odd: IpNet = "172.16.0.0/12".parse().unwrap();
        assert!(odd.contains(ip("172.31.255.255")));
        assert!(!odd.contains(ip("172.32.0.0")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert!(IpNet::parse_list("").unwrap().is_empty());
    }

    #[test]
    fn only_trusted_hops_are_believed() {
        let proxy = IpNet::parse_list("127.0.0.1, 10.0.0.0/8").unwrap();
        let peer = Some(ip("127.0.0.1"));
        // Not configured: the header is ignored.
        assert_eq!(
            client_address(peer, &["6.6.6.6"], &[]),
            Some(ip("127.0.0.1"))
        );
        // The proxy appended the real client last; the client's own entry is ignored.
        assert_eq!(
            client_address(peer, &["6.6.6.6, 2.2.2.2"], &proxy),
            Some(ip("2.2.2.2"))
        );
        // Two trusted hops.
        assert_eq!(
            client_address(peer, &["6.6.6.6", "2.2.2.2, 10.1.1.1"], &proxy),
            Some(ip("2.2.2.2"))
        );
        // A peer that is not a trusted proxy is the client, whatever it claims.
        assert_eq!(
            client_address(Some(ip("8.8.8.8")), &["2.2.2.2"], &proxy),
            Some(ip("8.8.8.8"))
        );
        // Missing or unreadable header: the nearest known hop.
        assert_eq!(client_address(peer, &[], &proxy), Some(ip("127.0.0.1")));
        assert_eq!(
            client_address(peer, &["junk, 3.3.3.3:4000"], &proxy),
            Some(ip("3.3.3.3"))
        );
        assert_eq!(
            client_address(peer, &["3.3.3.3, junk"], &proxy),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(client_address(None, &["2.2.2.2"], &proxy), None);
    }
}
