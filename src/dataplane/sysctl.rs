//! The kernel settings the IPVS dataplane needs.

use tracing::{info, warn};

/// (path under /proc/sys, value, why).
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "net/ipv4/ip_forward",
        "1",
        "gateways forward traffic between pods, tunnels and the WAN",
    ),
    (
        "net/ipv4/vs/conntrack",
        "1",
        "IPVS keeps conntrack entries, so nftables can masquerade its traffic",
    ),
    (
        "net/ipv4/vs/expire_nodest_conn",
        "1",
        "connections to a removed real server fail fast instead of hanging",
    ),
];

/// Applies [`SETTINGS`]; a setting that cannot be written is logged (the dataplane may still
/// work when an operator set it already).
pub fn apply() {
    for (path, value, why) in SETTINGS {
        let file = format!("/proc/sys/{path}");
        let current = std::fs::read_to_string(&file)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        if current == *value {
            continue;
        }
        match std::fs::write(&file, value) {
            Ok(()) => info!(sysctl = %path.replace('/', "."), value, "set: {why}"),
            Err(e) => {
                warn!(sysctl = %path.replace('/', "."), value, error = %e, "cannot set: {why}")
            }
        }
    }
}
