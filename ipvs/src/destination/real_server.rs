//! A destination (real server) of a virtual service.

use std::net::{IpAddr, SocketAddr};

use super::ForwardMethod;
use crate::{AddressFamily, Stats};

/// A destination of a virtual service (`ipvsadm -a`).
///
/// The address family may differ from the service's (an IPv6 service
/// balancing to IPv4 servers); the kernel allows that only with tunnel
/// forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Destination {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (0 for "same as the packet", with fwmark services).
    pub port: u16,
    /// Forwarding method.
    pub forward: ForwardMethod,
    /// Weight; 0 drains the destination without removing it.
    pub weight: u32,
    /// Upper connection threshold; 0 means none.
    pub upper_threshold: u32,
    /// Lower connection threshold; 0 means none.
    pub lower_threshold: u32,
    /// Connection counts, present in what the kernel returns.
    pub connections: Option<ConnectionCounts>,
    /// Counters, present in what the kernel returns.
    pub stats: Option<Stats>,
}

/// Connections the kernel currently tracks for a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConnectionCounts {
    /// Established connections (`ActiveConn`).
    pub active: u32,
    /// Other connections (`InActConn`).
    pub inactive: u32,
    /// Persistence templates (`PersistConn`).
    pub persistent: u32,
}

impl Destination {
    /// A masqueraded destination of weight 1 without thresholds, like
    /// `ipvsadm -a -r addr:port -m`.
    pub fn new(addr: impl Into<IpAddr>, port: u16) -> Self {
        Destination {
            addr: addr.into(),
            port,
            forward: ForwardMethod::Masquerade,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            connections: None,
            stats: None,
        }
    }

    /// Sets the forwarding method.
    pub fn with_forward(mut self, forward: ForwardMethod) -> Self {
        self.forward = forward;
        self
    }

    /// Sets the weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the upper and lower connection thresholds (`-x`, `-y`).
    pub fn with_thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.upper_threshold = upper;
        self.lower_threshold = lower;
        self
    }

    /// Address and port: what identifies the destination within its service.
    pub fn key(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// The address family of the destination.
    pub fn family(&self) -> AddressFamily {
        AddressFamily::of(&self.addr)
    }

    /// The same destination without counters, to compare configurations.
    pub fn without_stats(mut self) -> Self {
        self.connections = None;
        self.stats = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn new_destination_defaults_like_ipvsadm() {
        let dest = Destination::new(Ipv4Addr::new(10, 1, 1, 1), 8080);
        assert_eq!(dest.forward, ForwardMethod::Masquerade);
        assert_eq!(dest.weight, 1);
        assert_eq!((dest.upper_threshold, dest.lower_threshold), (0, 0));
        assert_eq!(dest.key().to_string(), "10.1.1.1:8080");
    }
}
