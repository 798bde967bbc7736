//! The IPVS tables as data: egress (ClusterSetIP -> remote gateways' ingress ports, or local
//! endpoints) and ingress (this gateway's ingress ports -> local ready endpoints).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::weights::{self, Candidate};
use super::{Context, Import, IngressKey};
use crate::catalog::WanMode;
use crate::model::{Protocol, ServiceKey, ServicePort, SessionAffinity};
use crate::problem::{ObjectRef, Problem};
use crate::resolve::{ImportType, Member};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsTables {
    pub egress: Vec<VirtualServer>,
    pub ingress: Vec<VirtualServer>,
}

/// One IPVS virtual service and its real servers (masquerade forwarding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualServer {
    /// The service this virtual server belongs to (for humans and metrics).
    pub service: ServiceKey,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub scheduler: String,
    /// Persistence timeout in seconds (ClientIP session affinity).
    pub persistence: Option<u32>,
    /// Sorted.
    pub reals: Vec<RealServer>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RealServer {
    pub address: IpAddr,
    pub port: u16,
    pub weight: u32,
    /// The cluster the real server is in.
    pub cluster: String,
}

pub(super) fn tables(
    ctx: &Context<'_>,
    imports: &[Import],
    problems: &mut Vec<Problem>,
) -> IpvsTables {
    let mut egress = Vec::new();
    let mut ingress = Vec::new();
    let local = ctx.catalog.clusters.get(ctx.cluster_id);
    for import in imports {
        let Some(vip) = import.vip else { continue };
        let Some(service) = ctx.resolution.services.get(&import.key) else {
            continue;
        };
        for (i, port) in service.ports.iter().enumerate() {
            // Each exporting cluster's real servers, and its standing for the weights.
            let mut shares: Vec<(Candidate, Vec<RealServer>)> = Vec::new();
            for member in service.members.iter().filter(|m| m.ports.contains(&i)) {
                let Some(objects) = ctx.catalog.clusters.get(&member.cluster) else {
                    continue;
                };
                let Some(own_port) = member
                    .service
                    .ports
                    .iter()
                    .find(|p| p.port == port.port && p.protocol == port.protocol)
                else {
                    continue;
                };
                let local = member.cluster == ctx.cluster_id;
                let down = ctx.down.contains(&member.cluster);
                let backends = objects.ready_backends(&import.key, own_port);
                let real = |address, port| RealServer {
                    address,
                    port,
                    weight: 0,
                    cluster: member.cluster.clone(),
                };
                let reals: Vec<RealServer> = if down {
                    Vec::new()
                } else if local {
                    backends.iter().map(|&(a, p)| real(a, p)).collect()
                } else {
                    match remote_real(ctx, import, port, member, problems) {
                        Some((address, ingress_port)) => vec![real(address, ingress_port)],
                        None => continue,
                    }
                };
                let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
                let candidate = Candidate {
                    rank: weights::rank(
                        service.placement.affinity.unwrap_or_default(),
                        local,
                        service.placement.priority_of(&member.cluster),
                    ),
                    ready: if reals.is_empty() {
                        0
                    } else {
                        count(backends.len())
                    },
                    total: count(objects.backend_total(&import.key, own_port)),
                    reals: count(reals.len()),
                };
                shares.push((candidate, reals));
            }
            let candidates: Vec<Candidate> = shares.iter().map(|(c, _)| c.clone()).collect();
            let mut reals = Vec::new();
            for ((_, cluster_reals), weight) in
                shares.into_iter().zip(weights::weights(&candidates))
            {
                reals.extend(
                    cluster_reals
                        .into_iter()
                        .map(|r| RealServer { weight, ..r }),
                );
            }
            reals.sort();
            egress.push(VirtualServer {
                service: import.key.clone(),
                address: vip,
                port: port.port,
                protocol: port.protocol,
                scheduler: ctx.config.scheduler.clone(),
                persistence: persistence(import.session_affinity),
                reals,
            });
        }
    }
    if let Some(objects) = local {
        for service in ctx
            .resolution
            .services
            .values()
            .filter(|s| s.import_type == ImportType::ClusterSetIp)
        {
            let Some(member) = service.members.iter().find(|m| m.cluster == ctx.cluster_id) else {
                continue;
            };
            let Some(policy) = &member.policy else {
                continue;
            };
            let own_ports = ctx.allocations.ingress_ports.get(ctx.cluster_id);
            for &i in &member.ports {
                let port = &service.ports[i];
                let Some(own_port) = member
                    .service
                    .ports
                    .iter()
                    .find(|p| p.port == port.port && p.protocol == port.protocol)
                else {
                    continue;
                };
                let key = IngressKey {
                    service: service.key.clone(),
                    protocol: port.protocol,
                    port: port.port,
                    class: None,
                };
                // The same ready pods behind the export's own class and each class a WANRoute
                // sends requests over.
                let reals: Vec<RealServer> = objects
                    .ready_backends(&service.key, own_port)
                    .into_iter()
                    .map(|(address, port)| RealServer {
                        address,
                        port,
                        weight: 1,
                        cluster: ctx.cluster_id.to_owned(),
                    })
                    .collect();
                for (k, ingress_port) in own_ports.into_iter().flat_map(|m| m.of_port(&key)) {
                    let class = k.class.as_ref().unwrap_or(&policy.tunnel);
                    let Some(address) = gateway_address(ctx, ctx.cluster_id, class) else {
                        continue;
                    };
                    ingress.push(VirtualServer {
                        service: service.key.clone(),
                        address,
                        port: *ingress_port,
                        protocol: port.protocol,
                        scheduler: ctx.config.scheduler.clone(),
                        persistence: persistence(service.session_affinity),
                        reals: reals.clone(),
                    });
                }
            }
        }
    }
    egress.sort_by_key(|v| (v.address, v.port, v.protocol));
    ingress.sort_by_key(|v| (v.address, v.port, v.protocol));
    IpvsTables { egress, ingress }
}

/// Where this gateway sends a remote member's share of a service port: that cluster's gateway
/// on the export's tunnel class, at the ingress port it allocated.
fn remote_real(
    ctx: &Context<'_>,
    import: &Import,
    port: &ServicePort,
    member: &Member,
    problems: &mut Vec<Problem>,
) -> Option<(IpAddr, u16)> {
    let policy = member.policy.as_ref()?;
    let key = IngressKey {
        service: import.key.clone(),
        protocol: port.protocol,
        port: port.port,
        class: None,
    };
    let ingress_port = *ctx
        .allocations
        .ingress_ports
        .get(&member.cluster)
        .and_then(|m| m.get(&key))?;
    match gateway_address(ctx, &member.cluster, &policy.tunnel) {
        Some(address) => Some((address, ingress_port)),
        None => {
            problems.push(Problem::error(
                Some(&member.cluster),
                ObjectRef::namespaced("ServiceExport", &import.key),
                None,
                format!("no address for cluster {}'s gateway on tunnel class {:?}; it is left out of the ClusterSetIP", member.cluster, policy.tunnel),
            ));
            None
        }
    }
}

fn persistence(affinity: SessionAffinity) -> Option<u32> {
    match affinity {
        SessionAffinity::None => None,
        SessionAffinity::ClientIp { timeout_seconds } => Some(timeout_seconds),
    }
}

/// Where a gateway receives traffic of a tunnel class: its inner address on the class's
/// WireGuard tunnel, or its ingress address when the SD-WAN carries the traffic.
pub(super) fn gateway_address(ctx: &Context<'_>, cluster: &str, class: &str) -> Option<IpAddr> {
    let entry = ctx.catalog.clusterset.clusters.get(cluster)?;
    match ctx.catalog.clusterset.wan {
        WanMode::Sdwan => Some(entry.ingress_address()),
        WanMode::Wireguard => {
            let subnet = ctx.allocations.class_subnets.get(class)?;
            super::tunnel::inner_address(subnet, entry.index).map(IpAddr::V4)
        }
    }
}
