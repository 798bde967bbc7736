//! IP address families, as IPVS encodes them.

use std::fmt;
use std::net::IpAddr;

use crate::constants::{AF_INET, AF_INET6};

/// The address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum AddressFamily {
    /// IPv4 (`AF_INET`).
    Ipv4,
    /// IPv6 (`AF_INET6`).
    Ipv6,
}

impl AddressFamily {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }

    /// The `AF_*` number.
    pub fn to_af(self) -> u16 {
        match self {
            AddressFamily::Ipv4 => AF_INET,
            AddressFamily::Ipv6 => AF_INET6,
        }
    }

    /// The family of an `AF_*` number, if it is one IPVS supports.
    pub fn from_af(af: u16) -> Option<Self> {
        match af {
            AF_INET => Some(AddressFamily::Ipv4),
            AF_INET6 => Some(AddressFamily::Ipv6),
            _ => None,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Ipv4 => "IPv4",
            AddressFamily::Ipv6 => "IPv6",
        })
    }
}

/// The address as IPVS carries it: 4 bytes for IPv4, 16 for IPv6.
pub(crate) fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Reads an address attribute. The kernel sends the whole 16-byte
/// `union nf_inet_addr` even for IPv4, so the family decides.
pub(crate) fn addr_from_bytes(family: AddressFamily, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        AddressFamily::Ipv4 => {
            let octets: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            Some(IpAddr::from(octets))
        }
        AddressFamily::Ipv6 => {
            let octets: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
            Some(IpAddr::from(octets))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn af_numbers_match_socket_h() {
        assert_eq!(AddressFamily::Ipv4.to_af(), 2);
        assert_eq!(AddressFamily::Ipv6.to_af(), 10);
        assert_eq!(AddressFamily::from_af(10), Some(AddressFamily::Ipv6));
        assert_eq!(AddressFamily::from_af(7), None);
    }

    #[test]
    fn ipv4_reads_from_the_kernel_16_byte_union() {
        let mut union = [0u8; 16];
        union[..4].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(
            addr_from_bytes(AddressFamily::Ipv4, &union),
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
        );
    }

    #[test]
    fn ipv6_needs_16_bytes() {
        assert_eq!(addr_from_bytes(AddressFamily::Ipv6, &[0; 4]), None);
        let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(
            addr_from_bytes(AddressFamily::Ipv6, &v6.octets()),
            Some(IpAddr::V6(v6))
        );
        assert_eq!(addr_bytes(&IpAddr::V6(v6)), v6.octets().to_vec());
    }
}
