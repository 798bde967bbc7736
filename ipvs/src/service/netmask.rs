//! The persistence netmask of a service.

use std::fmt;
use std::net::Ipv4Addr;

use crate::AddressFamily;

/// Persistence granularity: clients whose addresses agree under this mask
/// share one persistent real server.
///
/// The kernel keeps an IPv4 mask as an address (`255.255.255.0`) and an
/// IPv6 mask as a prefix length (`64`); [`Netmask::value`] is that number,
/// the IPv4 mask read as a big-endian integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Netmask(u32);

impl Netmask {
    /// An IPv4 mask (`ipvsadm -M 255.255.255.0`).
    pub fn ipv4(mask: Ipv4Addr) -> Self {
        Netmask(u32::from(mask))
    }

    /// An IPv6 prefix length (`ipvsadm -M 64`), 1 to 128.
    pub fn ipv6_prefix(len: u8) -> Self {
        Netmask(u32::from(len))
    }

    /// A mask of `len` leading bits in `family`.
    pub fn prefix(family: AddressFamily, len: u8) -> Self {
        match family {
            AddressFamily::Ipv4 => {
                let len = u32::from(len.min(32));
                Netmask(u32::MAX.checked_shl(32 - len).unwrap_or(0))
            }
            AddressFamily::Ipv6 => Netmask::ipv6_prefix(len.min(128)),
        }
    }

    /// The full mask of `family` (each client address on its own); the
    /// default, as with `ipvsadm`.
    pub fn full(family: AddressFamily) -> Self {
        match family {
            AddressFamily::Ipv4 => Netmask::prefix(family, 32),
            AddressFamily::Ipv6 => Netmask::prefix(family, 128),
        }
    }

    /// The raw value: an IPv4 mask as an integer, or an IPv6 prefix length.
    pub fn value(self) -> u32 {
        self.0
    }

    /// The IPv4 mask as an address.
    pub fn as_ipv4(self) -> Ipv4Addr {
        Ipv4Addr::from(self.0)
    }

    /// The wire form for a service of `family`: `__be32`, carrying an IPv4
    /// mask in network order or an IPv6 prefix length in host order.
    pub(crate) fn to_wire(self, family: AddressFamily) -> [u8; 4] {
        match family {
            AddressFamily::Ipv4 => self.0.to_be_bytes(),
            AddressFamily::Ipv6 => self.0.to_ne_bytes(),
        }
    }

    /// Reads the wire form for a service of `family`.
    pub(crate) fn from_wire(family: AddressFamily, bytes: [u8; 4]) -> Self {
        match family {
            AddressFamily::Ipv4 => Netmask(u32::from_be_bytes(bytes)),
            AddressFamily::Ipv6 => Netmask(u32::from_ne_bytes(bytes)),
        }
    }
}

impl fmt::Display for Netmask {
    /// Shows the raw value in hex; use [`Netmask::as_ipv4`] for IPv4.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mask_goes_out_in_network_order() {
        let mask = Netmask::ipv4(Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(mask.to_wire(AddressFamily::Ipv4), [255, 255, 255, 0]);
        assert_eq!(mask, Netmask::prefix(AddressFamily::Ipv4, 24));
        assert_eq!(
            Netmask::from_wire(AddressFamily::Ipv4, [255, 255, 255, 0]),
            mask
        );
    }

    #[test]
    fn ipv6_prefix_goes_out_as_a_host_order_number() {
        let mask = Netmask::ipv6_prefix(64);
        assert_eq!(mask.to_wire(AddressFamily::Ipv6), 64u32.to_ne_bytes());
        assert_eq!(
            Netmask::from_wire(AddressFamily::Ipv6, 64u32.to_ne_bytes()),
            mask
        );
    }

    #[test]
    fn full_masks_match_ipvsadm_defaults() {
        assert_eq!(Netmask::full(AddressFamily::Ipv4).value(), 0xffff_ffff);
        assert_eq!(Netmask::full(AddressFamily::Ipv6).value(), 128);
        assert_eq!(Netmask::prefix(AddressFamily::Ipv4, 0).value(), 0);
    }
}
