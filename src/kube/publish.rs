//! What an exporting gateway publishes in its own cluster so that peers can reach its exports:
//! per valid ClusterSetIP export, an EndpointSlice `<svc>-mcwan-<cluster-id>` in the service's
//! namespace whose endpoint is the gateway's ingress address for the export's tunnel class and
//! whose ports are the allocated ingress ports, named after the service ports; annotated with
//! the tunnel class and the WAN policy that carry it. When the exporting cluster's WANRoute
//! sends some of the service's requests over other classes, one more slice per such class,
//! `<svc>-mcwan-<cluster-id>-<class>`, carries that class's ingress address and ports and
//! names the class in `mcw.l7mp.io/route-class`. It has no
//! `kubernetes.io/service-name` label, so kube-proxy and the EndpointSlice controllers leave it
//! alone. Importers read it back ([`decode`]) to learn the exporter's ingress ports; the exporter
//! reads its own back on start, so its allocations survive a restart.

use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Value};

use super::object::{bounded_name, Kind, ObjectId, Part, Write};
use super::{
    ANNOTATION_ROUTE_CLASS, ANNOTATION_TUNNEL_CLASS, LABEL_SLICE_MANAGED_BY, LABEL_SLICE_ROLE,
    MANAGED_BY, SLICE_INGRESS,
};
use crate::crd::{LABEL_SERVICE_NAME, LABEL_SOURCE_CLUSTER, WAN_POLICY_ANNOTATION};
use crate::desired::{ExportStatus, IngressKey, IngressPort, IngressPorts, VirtualServer};
use crate::model::{ClusterObjects, Protocol, ServiceKey};
use crate::problem::{ObjectRef, Problem};

/// The name of the ingress slice `cluster` publishes for `service`.
pub fn ingress_slice_name(service: &str, cluster: &str) -> String {
    bounded_name(service, &format!("-mcwan-{cluster}"))
}

/// `IPv4` or `IPv6`, as an EndpointSlice's `addressType`.
pub fn address_type(address: IpAddr) -> &'static str {
    match address {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// The ingress slices `cluster_id`'s gateway publishes for one of its exports, whose ingress
/// virtual servers are `ingress` (`local`: the cluster's own objects).
pub fn export_slices(
    cluster_id: &str,
    local: &ClusterObjects,
    ingress: &[&VirtualServer],
    export: &ExportStatus,
) -> Vec<Write> {
    let Some(service) = local.services.get(&export.key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // One slice per tunnel class: the export's own, then each class its WANRoute sends
    // requests over (none for an export without ingress ports: unusable, or headless).
    let mut classes: Vec<Option<&String>> =
        export.ingress.iter().map(|i| i.class.as_ref()).collect();
    classes.sort();
    classes.dedup();
    for class in classes {
        let group: Vec<&IngressPort> = export
            .ingress
            .iter()
            .filter(|i| i.class.as_ref() == class)
            .collect();
        let Some(address) = ingress
            .iter()
            .find(|vs| {
                group
                    .iter()
                    .any(|i| i.protocol == vs.protocol && i.ingress_port == vs.port)
            })
            .map(|vs| vs.address)
        else {
            continue;
        };
        let ports: Vec<Value> = group
            .iter()
            .map(|i| {
                let name = service
                    .ports
                    .iter()
                    .find(|p| p.port == i.service_port && p.protocol == i.protocol)
                    .map(|p| p.name.as_str())
                    .unwrap_or_default();
                let mut port = json!({"protocol": i.protocol.as_str(), "port": i.ingress_port});
                if !name.is_empty() {
                    port["name"] = json!(name);
                }
                port
            })
            .collect();
        let name = match class {
            None => ingress_slice_name(&export.key.name, cluster_id),
            Some(c) => bounded_name(&export.key.name, &format!("-mcwan-{cluster_id}-{c}")),
        };
        let mut annotations = json!({
            ANNOTATION_TUNNEL_CLASS: class.or(export.tunnel.as_ref()).cloned().unwrap_or_default(),
            WAN_POLICY_ANNOTATION: export.wan_policy.clone().unwrap_or_default(),
        });
        if let Some(c) = class {
            annotations[ANNOTATION_ROUTE_CLASS] = json!(c);
        }
        let body = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": name,
                "namespace": export.key.namespace,
                "labels": {
                    LABEL_SERVICE_NAME: export.key.name,
                    LABEL_SOURCE_CLUSTER: cluster_id,
                    LABEL_SLICE_MANAGED_BY: MANAGED_BY,
                    LABEL_SLICE_ROLE: SLICE_INGRESS,
                },
                "annotations": annotations,
            },
            "addressType": address_type(address),
            "endpoints": [{"addresses": [address.to_string()], "conditions": {"ready": true}}],
            "ports": ports,
        });
        out.push(Write::new(
            ObjectId::new(
                Kind::EndpointSlice,
                Part::Object,
                &export.key.namespace,
                &name,
            ),
            body,
        ));
    }
    out
}

/// The ingress ports `cluster` published, keyed by the service port they carry (found by port
/// name and protocol in the cluster's own Service). Slices of another source cluster are not
/// this cluster's word and are skipped; unusable ports are reported and skipped.
pub fn decode(
    cluster: &str,
    slices: &[&EndpointSlice],
    objects: &ClusterObjects,
    problems: &mut Vec<Problem>,
) -> IngressPorts {
    let mut out = IngressPorts::default();
    for slice in slices {
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        if labels.get(LABEL_SOURCE_CLUSTER).map(String::as_str) != Some(cluster) {
            continue;
        }
        let name = slice.metadata.name.clone().unwrap_or_default();
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let object = ObjectRef::namespaced("EndpointSlice", &ServiceKey::new(&*namespace, &*name));
        let Some(service_name) = labels.get(LABEL_SERVICE_NAME) else {
            problems.push(Problem::warning(
                Some(cluster),
                object,
                Some(&format!("metadata.labels[\"{LABEL_SERVICE_NAME}\"]")),
                "missing: the published ingress slice names no service; ignored".into(),
            ));
            continue;
        };
        let key = ServiceKey::new(namespace, service_name.clone());
        let class = slice
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_ROUTE_CLASS))
            .filter(|c| !c.is_empty())
            .cloned();
        let Some(service) = objects.services.get(&key) else {
            continue;
        };
        for (i, p) in slice.ports.iter().flatten().enumerate() {
            let port_name = p.name.clone().unwrap_or_default();
            let (Some(protocol), Some(port)) = (
                Protocol::parse(p.protocol.as_deref()),
                p.port
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0),
            ) else {
                problems.push(Problem::warning(
                    Some(cluster),
                    object.clone(),
                    Some(&format!("ports[{i}]")),
                    format!(
                        "{:?}/{:?} is not a port and protocol; ignored",
                        p.port, p.protocol
                    ),
                ));
                continue;
            };
            if let Some(sp) = service
                .ports
                .iter()
                .find(|sp| sp.name == port_name && sp.protocol == protocol)
            {
                out.0.insert(
                    IngressKey {
                        service: key.clone(),
                        protocol,
                        port: sp.port,
                        class: class.clone(),
                    },
                    port,
                );
            }
        }
    }
    out
}
