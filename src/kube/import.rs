//! What an importing gateway writes in its own cluster for each service imported into it: the
//! MCS `ServiceImport` (type, ports, `spec.ips` = the ClusterSetIP, `status.clusters`) and MCS
//! EndpointSlices per source cluster, `<svc>-import-<cluster>`: for a ClusterSetIP the egress
//! real servers in that cluster (its gateway's ingress address and ports, or local endpoints),
//! for a Headless service the ready endpoints with their hostnames.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{json, Value};

use super::object::{bounded_name, Kind, ObjectId, Part, Write};
use super::publish::address_type;
use super::{LABEL_MANAGED_BY, LABEL_SLICE_MANAGED_BY, LABEL_SLICE_ROLE, MANAGED_BY, SLICE_IMPORT};
use crate::catalog::Catalog;
use crate::crd::{LABEL_SERVICE_NAME, LABEL_SOURCE_CLUSTER};
use crate::desired::{Import, VirtualServer};
use crate::model::{Protocol, ServiceKey, SessionAffinity};
use crate::resolve::ImportType;

const API_VERSION: &str = "multicluster.x-k8s.io/v1alpha1";

fn port_json(name: &str, protocol: Protocol, port: u16) -> Value {
    let mut out = json!({"protocol": protocol.as_str(), "port": port});
    if !name.is_empty() {
        out["name"] = json!(name);
    }
    out
}

/// The ServiceImport of `import`: the object and its status, two writes.
pub fn service_import(import: &Import) -> [Write; 2] {
    let key = &import.key;
    let mut spec = json!({
        "type": import.import_type.to_string(),
        "ports": import.ports.iter().map(|p| port_json(&p.name, p.protocol, p.port)).collect::<Vec<_>>(),
    });
    if let Some(vip) = import.vip {
        spec["ips"] = json!([vip.to_string()]);
    }
    match import.session_affinity {
        SessionAffinity::None => spec["sessionAffinity"] = json!("None"),
        SessionAffinity::ClientIp { timeout_seconds } => {
            spec["sessionAffinity"] = json!("ClientIP");
            spec["sessionAffinityConfig"] =
                json!({"clientIP": {"timeoutSeconds": timeout_seconds}});
        }
    }
    let object = json!({
        "apiVersion": API_VERSION,
        "kind": "ServiceImport",
        "metadata": {
            "name": key.name,
            "namespace": key.namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        },
        "spec": spec,
    });
    let status = json!({
        "apiVersion": API_VERSION,
        "kind": "ServiceImport",
        "metadata": {"name": key.name, "namespace": key.namespace},
        "status": {"clusters": import.clusters.iter().map(|c| json!({"cluster": c})).collect::<Vec<_>>()},
    });
    let id = ObjectId::new(Kind::ServiceImport, Part::Object, &key.namespace, &key.name);
    [
        Write::new(id.with_part(Part::Status), status),
        Write::new(id, object),
    ]
}

/// A port of a slice: (name, protocol, port).
type SlicePort = (String, Protocol, u16);
/// Ports of a slice, sorted.
type SlicePorts = Vec<SlicePort>;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SliceEndpoint {
    addresses: Vec<IpAddr>,
    hostname: Option<String>,
}

/// Endpoints of one source cluster grouped by (address family, ports): one slice each.
type Groups = BTreeMap<(bool, SlicePorts), BTreeSet<SliceEndpoint>>;

/// The MCS EndpointSlices of `import`, one or more per source cluster; `egress` holds the
/// import's egress virtual servers.
pub fn import_slices(catalog: &Catalog, egress: &[&VirtualServer], import: &Import) -> Vec<Write> {
    let mut per_cluster: BTreeMap<String, Groups> = BTreeMap::new();
    match import.import_type {
        ImportType::ClusterSetIp => {
            // cluster -> address -> ports
            let mut reals: BTreeMap<&str, BTreeMap<IpAddr, BTreeSet<SlicePort>>> = BTreeMap::new();
            for vs in egress {
                let name = import
                    .ports
                    .iter()
                    .find(|p| p.port == vs.port && p.protocol == vs.protocol)
                    .map(|p| p.name.clone())
                    .unwrap_or_default();
                for real in &vs.reals {
                    reals
                        .entry(&real.cluster)
                        .or_default()
                        .entry(real.address)
                        .or_default()
                        .insert((name.clone(), vs.protocol, real.port));
                }
            }
            for (cluster, addresses) in reals {
                let groups = per_cluster.entry(cluster.to_owned()).or_default();
                for (address, ports) in addresses {
                    groups
                        .entry((address.is_ipv6(), ports.into_iter().collect()))
                        .or_default()
                        .insert(SliceEndpoint {
                            addresses: vec![address],
                            hostname: None,
                        });
                }
            }
        }
        ImportType::Headless => {
            for cluster in &import.clusters {
                let Some(objects) = catalog.clusters.get(cluster) else {
                    continue;
                };
                let groups = per_cluster.entry(cluster.clone()).or_default();
                for slice in objects
                    .endpoint_slices
                    .get(&import.key)
                    .into_iter()
                    .flatten()
                {
                    let mut ports: SlicePorts = slice
                        .ports
                        .iter()
                        .map(|p| (p.name.clone(), p.protocol, p.port))
                        .collect();
                    ports.sort();
                    for ep in slice.endpoints.iter().filter(|e| e.ready) {
                        let Some(first) = ep.addresses.first() else {
                            continue;
                        };
                        groups
                            .entry((first.is_ipv6(), ports.clone()))
                            .or_default()
                            .insert(SliceEndpoint {
                                addresses: ep.addresses.clone(),
                                hostname: ep.hostname.clone(),
                            });
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (cluster, groups) in per_cluster {
        for (n, ((_, ports), endpoints)) in groups.into_iter().enumerate() {
            let suffix = match n {
                0 => format!("-import-{cluster}"),
                n => format!("-import-{cluster}-{}", n + 1),
            };
            out.push(import_slice(
                &import.key,
                &cluster,
                &suffix,
                &ports,
                &endpoints,
            ));
        }
    }
    out
}

fn import_slice(
    key: &ServiceKey,
    cluster: &str,
    suffix: &str,
    ports: &SlicePorts,
    endpoints: &BTreeSet<SliceEndpoint>,
) -> Write {
    let name = bounded_name(&key.name, suffix);
    let address_type = endpoints
        .first()
        .and_then(|e| e.addresses.first())
        .map(|a| address_type(*a))
        .unwrap_or("IPv4");
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|e| {
            let mut ep = json!({
                "addresses": e.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "conditions": {"ready": true},
            });
            if let Some(h) = &e.hostname {
                ep["hostname"] = json!(h);
            }
            ep
        })
        .collect();
    let body = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": key.namespace,
            "labels": {
                LABEL_SERVICE_NAME: key.name,
                LABEL_SOURCE_CLUSTER: cluster,
                LABEL_SLICE_MANAGED_BY: MANAGED_BY,
                LABEL_SLICE_ROLE: SLICE_IMPORT,
            },
        },
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports.iter().map(|(n, p, port)| port_json(n, *p, *port)).collect::<Vec<_>>(),
    });
    Write::new(
        ObjectId::new(Kind::EndpointSlice, Part::Object, &key.namespace, &name),
        body,
    )
}
