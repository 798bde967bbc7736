//! Source NAT for traffic IPVS forwards: packets to our ClusterSetIPs and ingress ports are
//! marked on the way in, and masqueraded on the way out, so replies come back through the
//! gateway that balanced them (IPVS masquerade forwarding needs that). The L7 proxies set the
//! same mark on their upstream sockets (SO_MARK), so their connections to the exporting
//! gateways leave with the address of the link their class's route picked, as IPVS's do.
//!
//! Everything lives in mcwan's own nftables table, `inet mcwan`, in chains named `ipvs_*`; each
//! apply replaces those chains in one atomic `nft -f` transaction and touches nothing else.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

pub const TABLE: &str = "inet mcwan";
/// The packet mark bit mcwan sets on traffic to masquerade.
pub const DEFAULT_MASQ_MARK: u32 = 0x0010_0000;

#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error(transparent)]
    Nft(#[from] mcwan_tunnel::Error),
}

/// What to masquerade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatRules {
    pub mark: u32,
    pub vip_cidr: IpNet,
    /// (ingress address, first port, last port).
    pub ingress: Vec<(IpAddr, u16, u16)>,
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

impl NatRules {
    /// The nft script that replaces mcwan's `ipvs_*` chains.
    pub fn script(&self) -> String {
        let mark = self.mark;
        let mut s = String::new();
        let _ = writeln!(s, "add table {TABLE}");
        for (chain, spec) in [
            (
                "ipvs_mark_pre",
                "type filter hook prerouting priority mangle;",
            ),
            ("ipvs_mark_out", "type route hook output priority mangle;"),
            ("ipvs_masq", "type nat hook postrouting priority srcnat;"),
        ] {
            let _ = writeln!(s, "add chain {TABLE} {chain} {{ {spec} }}");
            let _ = writeln!(s, "flush chain {TABLE} {chain}");
        }
        let mut matches = vec![format!(
            "{} daddr {}",
            family(self.vip_cidr.addr()),
            self.vip_cidr.trunc()
        )];
        for (addr, first, last) in &self.ingress {
            let ports = if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            };
            matches.push(format!("{} daddr {addr} th dport {ports}", family(*addr)));
        }
        for chain in ["ipvs_mark_pre", "ipvs_mark_out"] {
            for m in &matches {
                let _ = writeln!(
                    s,
                    "add rule {TABLE} {chain} {m} meta mark set meta mark or {mark:#x}"
                );
            }
        }
        let _ = writeln!(
            s,
            "add rule {TABLE} ipvs_masq meta mark and {mark:#x} == {mark:#x} masquerade"
        );
        s
    }
}

/// Applies the rules with `nft -f -`, atomically (the one nft runner, shared with SD-WAN
/// hand-off's table).
pub async fn apply(rules: &NatRules) -> Result<(), NatError> {
    mcwan_tunnel::handoff::nft::run("mcwan's masquerade rules", &rules.script()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_replaces_only_our_chains() {
        let rules = NatRules {
            mark: DEFAULT_MASQ_MARK,
            vip_cidr: "241.64.0.0/16".parse().unwrap(),
            ingress: vec![("10.255.7.1".parse().unwrap(), 31111, 31120)],
        };
        let s = rules.script();
        assert!(s.starts_with("add table inet mcwan\n"));
        assert!(
            !s.contains("flush table") && !s.contains("flush ruleset"),
            "never flush what is not ours"
        );
        assert!(s.contains("add rule inet mcwan ipvs_mark_pre ip daddr 241.64.0.0/16 meta mark set meta mark or 0x100000"));
        assert!(s.contains("add rule inet mcwan ipvs_mark_out ip daddr 10.255.7.1 th dport 31111-31120 meta mark set meta mark or 0x100000"));
        assert!(s.contains(
            "add rule inet mcwan ipvs_masq meta mark and 0x100000 == 0x100000 masquerade"
        ));
    }
}
