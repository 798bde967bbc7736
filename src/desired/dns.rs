//! DNS records of the clusterset zone for the services imported into this cluster.

use std::collections::BTreeSet;
use std::net::IpAddr;

use mcwan_dns::{HeadlessEndpoint, PortProtocol, PortRecord, ServiceRecord, ServiceRecordKind};

use super::{Context, Import};
use crate::model::Protocol;
use crate::resolve::{ClusterSetService, ImportType};

pub(super) fn records(ctx: &Context<'_>, imports: &[Import]) -> Vec<ServiceRecord> {
    let mut out = Vec::with_capacity(imports.len());
    for import in imports {
        let Some(service) = ctx.resolution.services.get(&import.key) else {
            continue;
        };
        let ports = service
            .ports
            .iter()
            .map(|p| PortRecord {
                name: (!p.name.is_empty()).then(|| p.name.clone()),
                protocol: match p.protocol {
                    Protocol::Tcp => PortProtocol::Tcp,
                    Protocol::Udp => PortProtocol::Udp,
                    Protocol::Sctp => PortProtocol::Sctp,
                },
                port: p.port,
            })
            .collect();
        let kind = match (import.import_type, import.vip) {
            (ImportType::ClusterSetIp, Some(vip)) => {
                ServiceRecordKind::ClusterSetIp { ips: vec![vip] }
            }
            (ImportType::ClusterSetIp, None) => continue,
            (ImportType::Headless, _) => ServiceRecordKind::Headless {
                endpoints: headless_endpoints(ctx, service),
            },
        };
        out.push(ServiceRecord {
            namespace: import.key.namespace.clone(),
            name: import.key.name.clone(),
            kind,
            ports,
        });
    }
    out
}

/// Ready endpoints of every healthy cluster backing a headless service. An endpoint without a
/// hostname (or with one already used in its cluster) is named after its address, dashed
/// (`10-1-2-3`), as Kubernetes DNS does.
fn headless_endpoints(ctx: &Context<'_>, service: &ClusterSetService) -> Vec<HeadlessEndpoint> {
    let mut out = Vec::new();
    for member in service
        .members
        .iter()
        .filter(|m| !ctx.down.contains(&m.cluster))
    {
        let Some(objects) = ctx.catalog.clusters.get(&member.cluster) else {
            continue;
        };
        let mut used = BTreeSet::new();
        for ep in objects.ready_endpoints(&service.key) {
            let hostname = match &ep.hostname {
                Some(h) if used.insert(h.clone()) => h.clone(),
                _ => {
                    let dashed = dashed(ep.addresses[0]);
                    if !used.insert(dashed.clone()) {
                        continue;
                    }
                    dashed
                }
            };
            out.push(HeadlessEndpoint {
                cluster_id: member.cluster.clone(),
                hostname,
                ips: ep.addresses.clone(),
            });
        }
    }
    out
}

fn dashed(ip: IpAddr) -> String {
    ip.to_string()
        .replace(['.', ':'], "-")
        .trim_matches('-')
        .to_owned()
}
