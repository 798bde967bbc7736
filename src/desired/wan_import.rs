//! WANImports: services a cluster imports from a given ingress gateway, without watching the
//! exporting cluster. Before the plan, each WANImport of the planning cluster becomes what the
//! importer would have read had it watched the exporter: in the catalog, the exporter's Service,
//! its ServiceExport (with the chosen WAN policy) and one ready backend; in the allocations, the
//! exporter's ingress ports as the WANImport names them. The plan then imports the service as
//! any other, so DNS, IPVS, weights, health checks and failover are the same code.
//!
//! The exporter is the clusterset member whose gateway has the address: its WAN address, its
//! SD-WAN ingress address, or its inner address on a tunnel class. A WANImport of a service the
//! exporter is already known to export (its API server is watched, or the static catalog lists
//! the export) adds nothing: the export as read wins.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::{Allocations, IngressKey, PlanConfig};
use crate::catalog::Catalog;
use crate::model::{
    ClusterId, ClusterObjects, Endpoint, EndpointPort, EndpointSlice, ExportGroup, Placement,
    Service, ServiceExport, ServicePort, ServiceType, SessionAffinity, TunnelClass, WanImport,
    WanPolicy,
};
use crate::problem::{ObjectRef, Problem};
use crate::resolve::DefaultPolicy;

/// The catalog and allocations with `cluster_id`'s WANImports applied, or `None` when it has
/// none (the common case: nothing is copied).
pub(super) fn apply(
    catalog: &Catalog,
    cluster_id: &str,
    config: &PlanConfig,
    previous: &Allocations,
    problems: &mut Vec<Problem>,
) -> Option<(Catalog, Allocations)> {
    let local = catalog.clusters.get(cluster_id)?;
    if local.wan_imports.is_empty() {
        return None;
    }
    // The class subnets tell the gateways' inner addresses apart; what is planned below adds
    // no tunnel class, so the plan's own allocation comes out the same.
    let mut scratch = Vec::new();
    let policies: BTreeMap<ClusterId, BTreeMap<String, WanPolicy>> = catalog
        .clusters
        .iter()
        .map(|(id, objects)| {
            let usable =
                crate::policies::usable(id, objects, previous.policies.get(id), &mut scratch);
            (id.clone(), usable)
        })
        .collect();
    let subnets = super::tunnel::class_subnets(catalog, &policies, previous, &mut scratch);

    let mut out = catalog.clone();
    let mut allocations = previous.clone();
    for import in local.wan_imports.values() {
        let error = |field: &str, message: String| {
            Problem::error(
                Some(cluster_id),
                ObjectRef::namespaced("WANImport", &import.key),
                Some(field),
                message,
            )
        };
        let exporter = match exporter_of(catalog, &subnets, import.ingress_gateway) {
            Ok(id) if id == cluster_id => {
                problems.push(error(
                    "spec.ingressGateway",
                    format!(
                        "{} is this cluster's own gateway: a cluster does not import from itself",
                        import.ingress_gateway
                    ),
                ));
                continue;
            }
            Ok(id) => id,
            Err(known) => {
                problems.push(error(
                    "spec.ingressGateway",
                    format!(
                        "{} is the address of no gateway of the clusterset (gateways: {known})",
                        import.ingress_gateway
                    ),
                ));
                continue;
            }
        };
        let Some(objects) = out.clusters.get_mut(&exporter) else {
            continue;
        };
        if objects.exports.contains_key(&import.key) {
            continue;
        }
        // An exporter that is not watched has no policies here: the clusterset's are the same
        // in every cluster, so the importer's stand in.
        let none = BTreeMap::new();
        let exporter_policies = match policies.get(&exporter) {
            Some(p) if !p.is_empty() => p,
            _ => {
                objects.wan_policies = local.wan_policies.clone();
                policies.get(cluster_id).unwrap_or(&none)
            }
        };
        let policy = match chosen_policy(import, config, exporter_policies) {
            Ok(p) => p,
            Err((field, message)) => {
                problems.push(error(field, message));
                continue;
            }
        };
        let ports = match ingress_ports(import, policy) {
            Ok(p) => p,
            Err((field, message)) => {
                problems.push(error(&field, message));
                continue;
            }
        };
        add_export(objects, import, &policy.name);
        let own = allocations
            .ingress_ports
            .entry(exporter.clone())
            .or_default();
        for (key, port) in ports {
            own.0.insert(key, port);
        }
    }
    Some((out, allocations))
}

/// The cluster whose gateway has `address`, or the list of the gateways' addresses.
fn exporter_of(
    catalog: &Catalog,
    subnets: &BTreeMap<TunnelClass, Ipv4Net>,
    address: IpAddr,
) -> Result<ClusterId, String> {
    let mut known = Vec::new();
    for (id, entry) in &catalog.clusterset.clusters {
        let mut addresses = vec![entry.gateway.wan_address, entry.ingress_address()];
        addresses.extend(
            subnets
                .values()
                .filter_map(|s| super::tunnel::inner_address(s, entry.index).map(IpAddr::V4)),
        );
        if addresses.contains(&address) {
            return Ok(id.clone());
        }
        known.push(format!("{id} {}", entry.gateway.wan_address));
    }
    Err(if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    })
}

type FieldProblem = (&'static str, String);

/// The WAN policy the import names, or the cluster's default.
fn chosen_policy<'a>(
    import: &WanImport,
    config: &PlanConfig,
    policies: &'a BTreeMap<String, WanPolicy>,
) -> Result<&'a WanPolicy, FieldProblem> {
    let known = || {
        let names: Vec<&str> = policies.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let name = match (
        &import.wan_policy,
        DefaultPolicy::of(config.default_wan_policy.as_deref(), policies),
    ) {
        (Some(name), _) => name.clone(),
        (None, DefaultPolicy::Chosen { name, .. }) => name,
        (None, DefaultPolicy::Ambiguous(marked)) => {
            return Err((
                "spec.wanPolicy",
                format!(
                    "not set, and several WANPolicies are marked default ({}): name one",
                    marked.join(", ")
                ),
            ))
        }
        (None, DefaultPolicy::Missing { .. }) => {
            return Err((
                "spec.wanPolicy",
                format!(
                    "not set, and the cluster has no default WANPolicy; known policies: {}",
                    known()
                ),
            ))
        }
    };
    policies.get(&name).ok_or_else(|| {
        (
            "spec.wanPolicy",
            format!(
                "WANPolicy {name:?} does not exist; known policies: {}",
                known()
            ),
        )
    })
}

/// The exporter's ingress port of each service port: as given, which must be in the policy's
/// range, or the policy's only port.
fn ingress_ports(
    import: &WanImport,
    policy: &WanPolicy,
) -> Result<Vec<(IngressKey, u16)>, (String, String)> {
    let range = policy.port_range();
    let span = format!("{}-{}", range.start(), range.end());
    let mut out: Vec<(IngressKey, u16)> = Vec::new();
    for (i, p) in import.ports.iter().enumerate() {
        let field = format!("spec.ports[{i}].ingressPort");
        let port = match p.ingress_port {
            Some(n) if range.contains(&n) => n,
            Some(n) => {
                return Err((
                    field,
                    format!("{n} is outside WANPolicy {}'s ingress ports {span}", policy.name),
                ))
            }
            None if range.start() == range.end() => *range.start(),
            None => {
                return Err((
                    field,
                    format!(
                        "missing, and WANPolicy {} owns several ingress ports ({span}): give the exporting gateway's (`mcwan status` on the exporting cluster prints it)",
                        policy.name
                    ),
                ))
            }
        };
        if let Some((other, _)) = out
            .iter()
            .find(|(k, q)| *q == port && k.protocol == p.protocol)
        {
            return Err((
                field,
                format!(
                    "{port}/{} is the ingress port of service port {} too: each service port has its own",
                    p.protocol, other.port
                ),
            ));
        }
        out.push((
            IngressKey {
                service: import.key.clone(),
                protocol: p.protocol,
                port: p.port,
                class: None,
            },
            port,
        ));
    }
    Ok(out)
}

/// The exporter's objects for the import: the Service, its export, one ready backend (the
/// exporter's own count is not known here; its gateway's health checks still decide).
fn add_export(objects: &mut ClusterObjects, import: &WanImport, policy: &str) {
    let key = &import.key;
    objects.namespaces.insert(key.namespace.clone());
    objects.services.insert(
        key.clone(),
        Arc::new(Service {
            key: key.clone(),
            service_type: ServiceType::ClusterIp,
            ports: import
                .ports
                .iter()
                .map(|p| ServicePort {
                    name: p.name.clone(),
                    protocol: p.protocol,
                    port: p.port,
                    target_port: None,
                })
                .collect(),
            session_affinity: SessionAffinity::None,
        }),
    );
    objects.exports.insert(
        key.clone(),
        Arc::new(ServiceExport {
            key: key.clone(),
            wan_policy: Some(policy.to_owned()),
            placement: Placement::default(),
            created: None,
            group: ExportGroup::Mcs,
        }),
    );
    objects.endpoint_slices.insert(
        key.clone(),
        vec![Arc::new(EndpointSlice {
            name: format!("{}-wanimport", key.name),
            service: key.clone(),
            ports: import
                .ports
                .iter()
                .map(|p| EndpointPort {
                    name: p.name.clone(),
                    protocol: p.protocol,
                    port: p.port,
                })
                .collect(),
            endpoints: vec![Endpoint {
                addresses: vec![import.ingress_gateway],
                ready: true,
                hostname: None,
            }],
        })],
    );
}
