//! How mcwan marks what it owns, so that it can find it again after a restart and never touch
//! anything else.
//!
//! - Interfaces: an `ifalias` of `mcwan tunnel class=<class>` (visible in `ip link`).
//! - Routes and rules: protocol [`RTPROT_MCWAN`] (`proto 161` in `ip route` / `ip rule`; add
//!   `161 mcwan` to `/etc/iproute2/rt_protos` to see the name).
//! - nftables: the chains `handoff_prerouting` and `handoff_output` of table `inet mcwan`.

/// The routing protocol number on mcwan's routes and rules (0xa1, unassigned in rtnetlink.h).
pub const RTPROT_MCWAN: u8 = 0xa1;

/// The prefix of the `ifalias` mcwan sets on its tunnel interfaces.
pub const ALIAS_PREFIX: &str = "mcwan tunnel class=";

/// The `ifalias` for a tunnel interface of `class`.
pub fn alias(class: &str) -> String {
    format!("{ALIAS_PREFIX}{class}")
}

/// The class of an interface whose `ifalias` is mcwan's, or None if it is not ours.
pub fn class_of(alias: &str) -> Option<&str> {
    alias.strip_prefix(ALIAS_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_round_trips_and_foreign_aliases_are_not_ours() {
        assert_eq!(class_of(&alias("gold")), Some("gold"));
        assert_eq!(class_of("uplink to ISP"), None);
        assert_eq!(class_of(""), None);
    }
}
