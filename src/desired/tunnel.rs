//! Tunnel and route intents: one WireGuard tunnel per tunnel class (listening on the class's WAN
//! port, one peer per other gateway), or one SD-WAN hand-off route per class.
//!
//! Inner addressing (WireGuard): each tunnel class gets a /24 of the clusterset's
//! `innerNetwork`, chosen by hashing the class name (probing on collision, sticky while the
//! gateway runs); a gateway's inner address on the class is that /24's host `index` (from
//! clusterset.yaml). So `business` in 10.255.0.0/16 might be 10.255.137.0/24, and cluster index 2
//! is 10.255.137.2 on it, on every gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{Allocations, Context};
use crate::alloc::{self, Pool};
use crate::catalog::{Catalog, WanMode};
use crate::model::{ClusterId, TunnelClass, WanPolicy};
use crate::problem::{ObjectRef, Problem};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelPlan {
    pub mode: WanMode,
    pub classes: Vec<ClassPlan>,
}

/// One tunnel class on this gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassPlan {
    pub class: TunnelClass,
    /// The WAN port: WireGuard's listen port in WireGuard mode.
    pub wan_port: u16,
    /// The class's ingress port range (inclusive): what the SD-WAN classifies on.
    pub ingress_ports: (u16, u16),
    /// This gateway's address on the class: inner address (WireGuard) or ingress address (SD-WAN).
    pub local_address: IpAddr,
    /// The class's inner /24 (WireGuard mode).
    pub inner_subnet: Option<Ipv4Net>,
    /// The SD-WAN edge next hop for this class (SD-WAN mode).
    pub sdwan_next_hop: Option<IpAddr>,
    pub peers: Vec<PeerPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerPlan {
    pub cluster: ClusterId,
    /// The peer's WAN endpoint for this class (its WAN address and the class's WAN port).
    pub endpoint: SocketAddr,
    /// The peer's address on the class (inner address, or its ingress address in SD-WAN mode).
    pub address: IpAddr,
    pub public_key: Option<String>,
}

/// The /24s of an IPv4 network, as an allocation pool.
struct SubnetPool(Ipv4Net);

impl Pool for SubnetPool {
    type Item = Ipv4Net;

    fn size(&self) -> u64 {
        1u64 << (24u8.saturating_sub(self.0.prefix_len()))
    }

    fn slot(&self, item: Ipv4Net) -> Option<u64> {
        (item.prefix_len() == 24 && self.0.contains(&item))
            .then(|| u64::from((u32::from(item.network()) - u32::from(self.0.network())) >> 8))
    }

    fn item(&self, slot: u64) -> Ipv4Net {
        let base = u32::from(self.0.network()) + ((slot as u32) << 8);
        Ipv4Net::new(Ipv4Addr::from(base), 24).unwrap_or_default()
    }
}

/// The inner address with host part `index` in a class's /24.
pub fn inner_address(subnet: &Ipv4Net, index: u8) -> Option<Ipv4Addr> {
    (1..=254)
        .contains(&index)
        .then(|| Ipv4Addr::from(u32::from(subnet.network()) + u32::from(index)))
}

pub(super) fn class_subnets(
    catalog: &Catalog,
    policies: &BTreeMap<ClusterId, BTreeMap<String, WanPolicy>>,
    previous: &Allocations,
    problems: &mut Vec<Problem>,
) -> BTreeMap<TunnelClass, Ipv4Net> {
    let Some(inner) = catalog.clusterset.inner_network else {
        return BTreeMap::new();
    };
    if catalog.clusterset.wan != WanMode::Wireguard {
        return BTreeMap::new();
    }
    let classes: BTreeSet<TunnelClass> = policies
        .values()
        .flat_map(|p| p.values().map(|p| p.tunnel.clone()))
        .collect();
    let (out, exhausted) = alloc::allocate(
        &SubnetPool(inner),
        &classes,
        |c| c.as_bytes().to_vec(),
        &previous.class_subnets,
    );
    for class in exhausted.0 {
        problems.push(Problem::error(
            None,
            ObjectRef::cluster_scoped(
                "ClusterSet",
                catalog
                    .clusterset
                    .name
                    .as_deref()
                    .unwrap_or("clusterset.yaml"),
            ),
            Some("innerNetwork"),
            format!("{inner} has no free /24 for tunnel class {class:?}"),
        ));
    }
    out
}

pub(super) fn plan(
    ctx: &Context<'_>,
    policies: &BTreeMap<ClusterId, BTreeMap<String, WanPolicy>>,
    problems: &mut Vec<Problem>,
) -> TunnelPlan {
    let clusterset = &ctx.catalog.clusterset;
    let mode = clusterset.wan;
    let Some(own) = clusterset.clusters.get(ctx.cluster_id) else {
        return TunnelPlan {
            mode,
            classes: Vec::new(),
        };
    };
    let mut classes: BTreeMap<&str, &WanPolicy> = BTreeMap::new();
    for policy in policies
        .get(ctx.cluster_id)
        .into_iter()
        .flat_map(|p| p.values())
    {
        classes.entry(policy.tunnel.as_str()).or_insert(policy);
    }
    let mut out = Vec::new();
    for (class, policy) in classes {
        let range = policy.port_range();
        let (local_address, inner_subnet, sdwan_next_hop) = match mode {
            WanMode::Wireguard => {
                let Some(subnet) = ctx.allocations.class_subnets.get(class) else {
                    continue;
                };
                let Some(addr) = inner_address(subnet, own.index) else {
                    continue;
                };
                (IpAddr::V4(addr), Some(*subnet), None)
            }
            WanMode::Sdwan => {
                let hop = own.gateway.sdwan_edges.get(class).copied();
                if hop.is_none() {
                    problems.push(Problem::error(
                        None,
                        ObjectRef::cluster_scoped("ClusterSet cluster", ctx.cluster_id),
                        Some(&format!("gateway.sdwanEdges.{class}")),
                        format!("no SD-WAN edge for tunnel class {class:?}: its traffic follows the main routing table"),
                    ));
                }
                (own.ingress_address(), None, hop)
            }
        };
        let peers = clusterset
            .clusters
            .values()
            .filter(|c| c.id != ctx.cluster_id)
            .filter_map(|c| {
                let address = match mode {
                    WanMode::Wireguard => {
                        IpAddr::V4(inner_address(inner_subnet.as_ref()?, c.index)?)
                    }
                    WanMode::Sdwan => c.ingress_address(),
                };
                Some(PeerPlan {
                    cluster: c.id.clone(),
                    endpoint: SocketAddr::new(c.gateway.wan_address, policy.port),
                    address,
                    public_key: c.gateway.wireguard_public_key.clone(),
                })
            })
            .collect();
        out.push(ClassPlan {
            class: class.to_owned(),
            wan_port: policy.port,
            ingress_ports: (*range.start(), *range.end()),
            local_address,
            inner_subnet,
            sdwan_next_hop,
            peers,
        });
    }
    TunnelPlan { mode, classes: out }
}
