//! `mcwan plan -o gateway-api`: the WANRoute rules of the services imported into a cluster as
//! Gateway API objects (`gateway.networking.k8s.io/v1`), for a mesh or gateway that speaks
//! Gateway API to route by them. For each imported service with rules and each of its TCP ports:
//!
//! - an `HTTPRoute` whose parent is the service's `ServiceImport` (at that port), with one rule
//!   per WANRoute rule (`rule-<i>`) and a catch-all `default` rule for `spec.http.default`;
//! - per WAN policy the rules name, a selector-less `Service` `<svc>-<policy>` and its
//!   EndpointSlices, whose endpoints are the exporting gateways' ingress ports of that class:
//!   the rule's backend.
//!
//! A denying rule has no `backendRefs`: Gateway API (v1.6) has no standard filter that answers
//! 403, and a rule without backends forwards nothing (Gateway API answers 500); mcwan's own
//! HTTP proxy answers 403. Gateway API orders rules by how specific their matches are, not by
//! position: the output acts as the WANRoute's first-match order when no earlier rule's match
//! also covers a later rule's requests.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{json, Value};

use super::object::bounded_name;
use super::publish::address_type;
use super::{
    ANNOTATION_TUNNEL_CLASS, LABEL_MANAGED_BY, LABEL_SLICE_MANAGED_BY, LABEL_SLICE_ROLE, MANAGED_BY,
};
use crate::desired::{DesiredState, HttpClass, HttpImport, Import};
use crate::model::{HttpMatch, PathMatch, Protocol, RouteAction, ServiceKey, ValueMatch};

/// The EndpointSlice role of the per-class backend Services' slices.
pub const SLICE_WAN_CLASS: &str = "wan-class";
/// The annotation on rendered objects naming the exporting cluster whose WANRoute they follow.
pub const ANNOTATION_ROUTE_SOURCE: &str = "mcw.l7mp.io/wan-route-source";

/// The per-class backend Service of `key` for WAN policy `policy`: `<svc>-<policy>`.
pub fn class_service_name(key: &ServiceKey, policy: &str) -> String {
    bounded_name(&key.name, &format!("-{policy}"))
}

/// Every Gateway API object of the plan, as a `v1` List.
pub fn objects(state: &DesiredState) -> Value {
    let mut items = Vec::new();
    for import in &state.imports {
        if let Some(http) = &import.http {
            items.extend(import_objects(import, http));
        }
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

fn tcp_ports(import: &Import) -> Vec<&crate::model::ServicePort> {
    import
        .ports
        .iter()
        .filter(|p| p.protocol == Protocol::Tcp)
        .collect()
}

fn import_objects(import: &Import, http: &HttpImport) -> Vec<Value> {
    let ports = tcp_ports(import);
    let mut out = Vec::new();
    for port in &ports {
        let name = if ports.len() == 1 {
            import.key.name.clone()
        } else {
            bounded_name(&import.key.name, &format!("-{}", port.port))
        };
        out.push(http_route(&import.key, &name, port.port, http));
    }
    for class in &http.classes {
        out.push(class_service(&import.key, &ports, http, class));
        out.extend(class_slices(&import.key, &ports, class));
    }
    out
}

fn metadata(key: &ServiceKey, name: &str, source: &str) -> Value {
    json!({
        "name": name,
        "namespace": key.namespace,
        "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        "annotations": {ANNOTATION_ROUTE_SOURCE: source},
    })
}

fn match_json(m: &HttpMatch) -> Value {
    let mut out = json!({});
    if let Some(path) = &m.path {
        let (kind, value) = match path {
            PathMatch::Exact(v) => ("Exact", v),
            PathMatch::PathPrefix(v) => ("PathPrefix", v),
            PathMatch::RegularExpression(v) => ("RegularExpression", v),
        };
        out["path"] = json!({"type": kind, "value": value});
    }
    if let Some(method) = &m.method {
        out["method"] = json!(method);
    }
    if !m.headers.is_empty() {
        out["headers"] = m
            .headers
            .iter()
            .map(|h| {
                let (kind, value) = match &h.value {
                    ValueMatch::Exact(v) => ("Exact", v),
                    ValueMatch::RegularExpression(v) => ("RegularExpression", v),
                };
                json!({"type": kind, "name": h.name, "value": value})
            })
            .collect();
    }
    out
}

fn rule_json(
    key: &ServiceKey,
    name: &str,
    matches: Vec<Value>,
    action: &RouteAction,
    port: u16,
) -> Value {
    let mut rule = json!({"name": name, "matches": matches});
    if let RouteAction::WanPolicy(policy) = action {
        rule["backendRefs"] = json!([{
            "group": "",
            "kind": "Service",
            "name": class_service_name(key, policy),
            "port": port,
        }]);
    }
    rule
}

fn http_route(key: &ServiceKey, name: &str, port: u16, http: &HttpImport) -> Value {
    let mut rules: Vec<Value> = http
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            rule_json(
                key,
                &format!("rule-{i}"),
                r.matches.iter().map(match_json).collect(),
                &r.action,
                port,
            )
        })
        .collect();
    rules.push(rule_json(
        key,
        "default",
        vec![json!({"path": {"type": "PathPrefix", "value": "/"}})],
        &http.default,
        port,
    ));
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(key, name, &http.source),
        "spec": {
            "parentRefs": [{
                "group": "multicluster.x-k8s.io",
                "kind": "ServiceImport",
                "name": key.name,
                "port": port,
            }],
            "rules": rules,
        },
    })
}

fn class_service(
    key: &ServiceKey,
    ports: &[&crate::model::ServicePort],
    http: &HttpImport,
    class: &HttpClass,
) -> Value {
    let name = class_service_name(key, &class.wan_policy);
    let mut meta = metadata(key, &name, &http.source);
    meta["annotations"][ANNOTATION_TUNNEL_CLASS] = json!(class.tunnel);
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut v = json!({"protocol": "TCP", "port": p.port});
            if !p.name.is_empty() {
                v["name"] = json!(p.name);
            }
            v
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": "ClusterIP", "ports": ports},
    })
}

/// The (name, ingress port) of each service port, sorted.
type SlicePorts = Vec<(String, u16)>;

/// The class's backends grouped by (address family, the ingress port of each service port):
/// one EndpointSlice each.
fn class_slices(
    key: &ServiceKey,
    ports: &[&crate::model::ServicePort],
    class: &HttpClass,
) -> Vec<Value> {
    let mut by_address: BTreeMap<IpAddr, BTreeSet<(String, u16)>> = BTreeMap::new();
    for b in &class.backends {
        let Some(port) = ports.iter().find(|p| p.port == b.service_port) else {
            continue;
        };
        by_address
            .entry(b.address)
            .or_default()
            .insert((port.name.clone(), b.port));
    }
    let mut groups: BTreeMap<(bool, SlicePorts), Vec<IpAddr>> = BTreeMap::new();
    for (address, ports) in by_address {
        groups
            .entry((address.is_ipv6(), ports.into_iter().collect()))
            .or_default()
            .push(address);
    }
    let service = class_service_name(key, &class.wan_policy);
    groups
        .into_iter()
        .enumerate()
        .map(|(n, ((_, ports), addresses))| {
            let name = bounded_name(&service, &format!("-{}", n + 1));
            json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": name,
                    "namespace": key.namespace,
                    "labels": {
                        "kubernetes.io/service-name": service,
                        LABEL_SLICE_MANAGED_BY: MANAGED_BY,
                        LABEL_SLICE_ROLE: SLICE_WAN_CLASS,
                    },
                    "annotations": {ANNOTATION_TUNNEL_CLASS: class.tunnel},
                },
                "addressType": address_type(addresses[0]),
                "ports": ports.iter().map(|(name, port)| {
                    let mut v = json!({"protocol": "TCP", "port": port});
                    if !name.is_empty() {
                        v["name"] = json!(name);
                    }
                    v
                }).collect::<Vec<_>>(),
                "endpoints": addresses.iter().map(|a| json!({
                    "addresses": [a.to_string()],
                    "conditions": {"ready": true},
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}
