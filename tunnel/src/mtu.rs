//! The tunnel MTU.
//!
//! WireGuard adds 32 bytes (header, counter, tag) inside UDP (8) inside IP (20 for IPv4, 40 for
//! IPv6): 60 or 80 bytes. We subtract 80 whatever the underlay family is, as `wg-quick` does, so
//! one MTU fits both an IPv4 and an IPv6 underlay and a peer moving between them: 1500 gives
//! 1420. With the underlay interface's MTU known (the route towards the peers), we derive from
//! it; otherwise we assume 1500. The result never goes below 1280, the IPv6 minimum.

/// Bytes WireGuard needs on top of the inner packet on an IPv6 underlay (the larger case).
pub const OVERHEAD: u16 = 80;
/// The underlay MTU assumed when it is not known.
pub const DEFAULT_UNDERLAY_MTU: u16 = 1500;
/// The tunnel MTU for the default underlay.
pub const DEFAULT_MTU: u16 = DEFAULT_UNDERLAY_MTU - OVERHEAD;
/// The smallest tunnel MTU (IPv6's minimum link MTU).
pub const MIN_MTU: u16 = 1280;

/// The tunnel MTU for an underlay of `underlay_mtu` bytes (None: unknown, assume 1500).
pub fn for_underlay(underlay_mtu: Option<u32>) -> u16 {
    let underlay = underlay_mtu.map_or(DEFAULT_UNDERLAY_MTU, |m| {
        u16::try_from(m).unwrap_or(u16::MAX)
    });
    underlay.saturating_sub(OVERHEAD).max(MIN_MTU)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_underlay_gives_1420() {
        assert_eq!(for_underlay(Some(1500)), 1420);
        assert_eq!(for_underlay(None), DEFAULT_MTU);
        assert_eq!(DEFAULT_MTU, 1420);
    }

    #[test]
    fn jumbo_underlay_gives_a_larger_mtu() {
        assert_eq!(for_underlay(Some(9000)), 8920);
        assert_eq!(for_underlay(Some(100_000)), u16::MAX - OVERHEAD);
    }

    #[test]
    fn small_underlay_is_clamped_to_the_ipv6_minimum() {
        assert_eq!(for_underlay(Some(1300)), MIN_MTU);
        assert_eq!(for_underlay(Some(0)), MIN_MTU);
    }
}
