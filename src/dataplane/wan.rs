//! From the tunnel plan to the tunnel crate's specs: one WireGuard interface per tunnel class
//! (WireGuard mode) or one SD-WAN hand-off per class (SD-WAN mode). Pure; the WAN task applies
//! the result with `mcwan_tunnel`.
//!
//! Naming and numbering are derived from the class, so they are stable and visible:
//! - interface `mcw-<class>` (a class name longer than 11 characters is shortened and suffixed
//!   with a hash of the whole name);
//! - hand-off: fwmark `0x01000000 | WAN port`, routing table `100000 + WAN port`, rule
//!   priority `--rule-priority` (default 1000) for the first class with an edge, one more for
//!   each next class in name order (each rule has a priority of its own).

use ipnet::{IpNet, Ipv4Net};
use mcwan_tunnel::{HandoffSpec, Key, PeerSpec, TunnelSpec};

use crate::alloc::fnv1a;
use crate::desired::{ClassPlan, TunnelPlan};
use crate::problem::{ObjectRef, Problem};

pub const HANDOFF_MARK_BASE: u32 = 0x0100_0000;
pub const HANDOFF_TABLE_BASE: u32 = 100_000;
/// The mark bits hand-off owns: its flag bit and the WAN port. Other bits (IPVS masquerade,
/// kube-proxy, CNIs) are left as they are.
pub const HANDOFF_MARK_MASK: u32 = HANDOFF_MARK_BASE | 0xffff;
/// WireGuard persistent keepalive towards peers: keeps NAT and SD-WAN state alive.
pub const KEEPALIVE_SECONDS: u16 = 25;

/// The interface of a tunnel class.
pub fn ifname(class: &str) -> String {
    if class.len() <= 11 {
        format!("mcw-{class}")
    } else {
        format!(
            "mcw-{}{:04x}",
            &class[..7],
            fnv1a(class.as_bytes()) & 0xffff
        )
    }
}

/// WireGuard specs for every class of the plan. Peers without a public key are left out and
/// reported.
pub fn tunnel_specs(
    plan: &TunnelPlan,
    key: &Key,
    mtu: u16,
    problems: &mut Vec<Problem>,
) -> Vec<TunnelSpec> {
    plan.classes
        .iter()
        .filter_map(|class| {
            let subnet = class.inner_subnet?;
            let std::net::IpAddr::V4(local) = class.local_address else {
                return None;
            };
            let address = Ipv4Net::new(local, subnet.prefix_len()).ok()?;
            Some(TunnelSpec {
                class: class.class.clone(),
                ifname: ifname(&class.class),
                listen_port: class.wan_port,
                private_key: key.clone(),
                address,
                mtu,
                fwmark: None,
                peers: peers(class, problems),
            })
        })
        .collect()
}

fn peers(class: &ClassPlan, problems: &mut Vec<Problem>) -> Vec<PeerSpec> {
    class
        .peers
        .iter()
        .filter_map(|p| {
            let key = match p.public_key.as_deref().map(Key::from_base64) {
                Some(Ok(k)) => k,
                Some(Err(e)) => {
                    problems.push(Problem::error(
                        None,
                        ObjectRef::cluster_scoped("ClusterSet cluster", &p.cluster),
                        Some("gateway.wireguardPublicKey"),
                        format!("not a WireGuard key: {e}; no tunnel to this peer"),
                    ));
                    return None;
                }
                None => {
                    problems.push(Problem::error(
                        None,
                        ObjectRef::cluster_scoped("ClusterSet cluster", &p.cluster),
                        Some("gateway.wireguardPublicKey"),
                        format!("missing: no {} tunnel to this peer", class.class),
                    ));
                    return None;
                }
            };
            Some(PeerSpec {
                name: p.cluster.clone(),
                public_key: key,
                endpoint: p.endpoint,
                allowed_ips: vec![IpNet::from(p.address)],
                keepalive: Some(KEEPALIVE_SECONDS),
            })
        })
        .collect()
}

/// SD-WAN hand-off specs for the classes that have an edge.
pub fn handoff_specs(plan: &TunnelPlan, rule_priority: u32) -> Vec<HandoffSpec> {
    plan.classes
        .iter()
        .filter_map(|class| Some((class, class.sdwan_next_hop?)))
        .zip(rule_priority..)
        .map(|((class, next_hop), rule_priority)| HandoffSpec {
            class: class.class.clone(),
            port_range: class.ingress_ports,
            next_hop,
            table: HANDOFF_TABLE_BASE + u32::from(class.wan_port),
            fwmark: HANDOFF_MARK_BASE | u32::from(class.wan_port),
            fwmark_mask: HANDOFF_MARK_MASK,
            rule_priority,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::WanMode;
    use crate::desired::PeerPlan;

    fn class(name: &str, port: u16, peer_key: Option<String>) -> ClassPlan {
        ClassPlan {
            class: name.into(),
            wan_port: port,
            ingress_ports: (port, port + 9),
            local_address: "10.255.7.2".parse().unwrap(),
            inner_subnet: Some("10.255.7.0/24".parse().unwrap()),
            sdwan_next_hop: Some("198.51.100.1".parse().unwrap()),
            peers: vec![PeerPlan {
                cluster: "cluster-1".into(),
                endpoint: "192.0.2.1:31111".parse().unwrap(),
                address: "10.255.7.1".parse().unwrap(),
                public_key: peer_key,
            }],
        }
    }

    #[test]
    fn interface_names_fit_and_stay_distinct() {
        assert_eq!(ifname("business"), "mcw-business");
        let long = ifname("very-long-class-a");
        assert!(long.len() <= 15 && long.starts_with("mcw-very-lo"));
        assert_ne!(long, ifname("very-long-class-b"));
    }

    #[test]
    fn a_class_becomes_a_tunnel_with_one_peer_per_gateway() {
        let peer = Key::generate().public_key();
        let plan = TunnelPlan {
            mode: WanMode::Wireguard,
            classes: vec![class("business", 31111, Some(peer.to_base64()))],
        };
        let mut problems = Vec::new();
        let specs = tunnel_specs(&plan, &Key::generate(), 1420, &mut problems);
        assert!(problems.is_empty());
        assert_eq!(specs[0].listen_port, 31111);
        assert_eq!(specs[0].address.to_string(), "10.255.7.2/24");
        assert_eq!(
            specs[0].peers[0].allowed_ips,
            vec!["10.255.7.1/32".parse::<IpNet>().unwrap()]
        );
        assert_eq!(specs[0].peers[0].public_key, peer);
    }

    #[test]
    fn a_peer_without_a_key_is_reported_and_left_out() {
        let plan = TunnelPlan {
            mode: WanMode::Wireguard,
            classes: vec![class("business", 31111, None)],
        };
        let mut problems = Vec::new();
        let specs = tunnel_specs(&plan, &Key::generate(), 1420, &mut problems);
        assert!(specs[0].peers.is_empty());
        assert_eq!(
            problems[0].field.as_deref(),
            Some("gateway.wireguardPublicKey")
        );
    }

    #[test]
    fn handoff_numbers_derive_from_the_wan_port() {
        let plan = TunnelPlan {
            mode: WanMode::Sdwan,
            classes: vec![class("business", 31111, None)],
        };
        let specs = handoff_specs(&plan, 1000);
        assert_eq!(specs[0].fwmark, 0x0100_0000 | 31111);
        assert_eq!(specs[0].table, 131_111);
        assert_eq!(specs[0].port_range, (31111, 31120));
    }
}
