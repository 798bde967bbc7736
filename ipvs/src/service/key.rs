//! What identifies a virtual service: protocol, address and port, or a
//! firewall mark.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::constants::{IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
use crate::AddressFamily;

/// The transport protocol of an address-based service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The `IPPROTO_*` number.
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => IPPROTO_TCP,
            Protocol::Udp => IPPROTO_UDP,
            Protocol::Sctp => IPPROTO_SCTP,
        }
    }

    /// The protocol of an `IPPROTO_*` number, if IPVS balances it.
    pub fn from_number(number: u16) -> Option<Self> {
        match number {
            IPPROTO_TCP => Some(Protocol::Tcp),
            IPPROTO_UDP => Some(Protocol::Udp),
            IPPROTO_SCTP => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// The identity of a virtual service, as the kernel looks it up.
///
/// Displays the way `ipvsadm -Ln` prints it: `TCP  10.0.0.1:80` without
/// the padding, `UDP  [fd00::1]:53`, `FWM  7 (IPv4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum ServiceKey {
    /// A TCP virtual address and port.
    Tcp(SocketAddr),
    /// A UDP virtual address and port.
    Udp(SocketAddr),
    /// An SCTP virtual address and port.
    Sctp(SocketAddr),
    /// Every packet carrying this firewall mark, in one address family.
    Fwmark {
        /// The firewall mark (non-zero).
        mark: u32,
        /// The address family of the packets.
        family: AddressFamily,
    },
}

impl ServiceKey {
    /// An address-based service key.
    pub fn new(protocol: Protocol, addr: SocketAddr) -> Self {
        match protocol {
            Protocol::Tcp => ServiceKey::Tcp(addr),
            Protocol::Udp => ServiceKey::Udp(addr),
            Protocol::Sctp => ServiceKey::Sctp(addr),
        }
    }

    /// `TCP ip:port`.
    pub fn tcp(ip: impl Into<IpAddr>, port: u16) -> Self {
        ServiceKey::Tcp(SocketAddr::new(ip.into(), port))
    }

    /// `UDP ip:port`.
    pub fn udp(ip: impl Into<IpAddr>, port: u16) -> Self {
        ServiceKey::Udp(SocketAddr::new(ip.into(), port))
    }

    /// `SCTP ip:port`.
    pub fn sctp(ip: impl Into<IpAddr>, port: u16) -> Self {
        ServiceKey::Sctp(SocketAddr::new(ip.into(), port))
    }

    /// A firewall-mark service.
    pub fn fwmark(mark: u32, family: AddressFamily) -> Self {
        ServiceKey::Fwmark { mark, family }
    }

    /// The address family of the service.
    pub fn family(&self) -> AddressFamily {
        match self {
            ServiceKey::Tcp(addr) | ServiceKey::Udp(addr) | ServiceKey::Sctp(addr) => {
                AddressFamily::of(&addr.ip())
            }
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// The protocol, for an address-based service.
    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            ServiceKey::Tcp(_) => Some(Protocol::Tcp),
            ServiceKey::Udp(_) => Some(Protocol::Udp),
            ServiceKey::Sctp(_) => Some(Protocol::Sctp),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    /// The virtual address and port, for an address-based service.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            ServiceKey::Tcp(addr) | ServiceKey::Udp(addr) | ServiceKey::Sctp(addr) => Some(*addr),
            ServiceKey::Fwmark { .. } => None,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Tcp(addr) | ServiceKey::Udp(addr) | ServiceKey::Sctp(addr) => {
                let protocol = self.protocol().map(|p| p.to_string()).unwrap_or_default();
                write!(f, "{protocol} {addr}")
            }
            ServiceKey::Fwmark { mark, family } => write!(f, "FWM {mark} ({family})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn protocol_numbers_match_in_h() {
        assert_eq!(Protocol::Tcp.number(), 6);
        assert_eq!(Protocol::Udp.number(), 17);
        assert_eq!(Protocol::Sctp.number(), 132);
        assert_eq!(Protocol::from_number(132), Some(Protocol::Sctp));
        assert_eq!(Protocol::from_number(50), None);
    }

    #[test]
    fn display_names_the_service_like_ipvsadm() {
        assert_eq!(
            ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80).to_string(),
            "TCP 10.0.0.1:80"
        );
        assert_eq!(
            ServiceKey::udp(Ipv6Addr::LOCALHOST, 53).to_string(),
            "UDP [::1]:53"
        );
        assert_eq!(
            ServiceKey::fwmark(7, AddressFamily::Ipv6).to_string(),
            "FWM 7 (IPv6)"
        );
    }

    #[test]
    fn family_follows_the_address_or_the_mark() {
        assert_eq!(
            ServiceKey::sctp(Ipv6Addr::LOCALHOST, 1).family(),
            AddressFamily::Ipv6
        );
        assert_eq!(
            ServiceKey::fwmark(1, AddressFamily::Ipv4).family(),
            AddressFamily::Ipv4
        );
    }
}
