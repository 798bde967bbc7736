//! WANRoutes in the desired state: each exporting cluster's rules checked against that
//! cluster's exports and usable WAN policies, and, for each service imported here with usable
//! rules, what the importing gateway's HTTP proxy needs: the rules, the default, and per WAN
//! policy the rules name the exporting gateways' ingress ports of its tunnel class.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::ipvs::{self, VirtualServer};
use super::{Condition, Context, Import, IngressKey, IpvsTables};
use crate::catalog::Catalog;
use crate::model::{
    ClusterId, HttpRule, Protocol, RouteAction, ServiceKey, TunnelClass, WanPolicy, WanRoute,
};
use crate::problem::{ObjectRef, Problem, Severity};
use crate::resolve::{ImportType, Resolution};

/// The HTTP rules of an imported service, as its importing gateway applies them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpImport {
    /// The exporting cluster whose WANRoute this is (the first by cluster ID of those with a
    /// usable one).
    pub source: ClusterId,
    pub rules: Vec<HttpRule>,
    pub default: RouteAction,
    /// Each WAN policy the rules and the default name, in name order.
    pub classes: Vec<HttpClass>,
}

/// Where the requests of one WAN policy go.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HttpClass {
    pub wan_policy: String,
    pub tunnel: TunnelClass,
    /// The exporting gateways' ingress ports of this class (and this cluster's own endpoints,
    /// which no tunnel carries), sorted.
    pub backends: Vec<HttpBackend>,
    /// Exporting clusters with no ingress port of this class (none free in its range, or no
    /// gateway address on it): they take no requests of it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub without_ingress: Vec<ClusterId>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct HttpBackend {
    /// The service port the backend serves.
    pub service_port: u16,
    pub cluster: ClusterId,
    pub address: IpAddr,
    pub port: u16,
    pub weight: u32,
}

/// The Valid condition of `cluster`'s WANRoute `key`, from the problems found with it: False
/// with the first error (`NotExported`, `UnknownWANPolicy`, `InvalidRules`), else True.
pub fn condition(cluster: &str, key: &ServiceKey, problems: &[Problem]) -> Condition {
    let object = route_ref(key);
    let mine: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.cluster.as_deref() == Some(cluster) && p.object == object)
        .collect();
    let text = |p: &Problem| match &p.field {
        Some(f) => format!("{f}: {}", p.message),
        None => p.message.clone(),
    };
    match mine.iter().find(|p| p.severity == Severity::Error) {
        Some(p) => Condition {
            type_: "Valid",
            status: false,
            reason: match p.field.as_deref() {
                None => reason::NOT_EXPORTED,
                Some(f) if f.ends_with("wanPolicy") && p.message.contains(UNKNOWN_POLICY) => {
                    reason::UNKNOWN_WAN_POLICY
                }
                Some(_) => reason::INVALID_RULES,
            },
            message: text(p),
        },
        None => Condition {
            type_: "Valid",
            status: true,
            reason: reason::VALID,
            message: std::iter::once("the rules are usable".to_owned())
                .chain(mine.iter().map(|p| text(p)))
                .collect::<Vec<_>>()
                .join("; "),
        },
    }
}

/// Reasons of a WANRoute's Valid condition.
pub mod reason {
    pub const VALID: &str = "Valid";
    pub const NOT_EXPORTED: &str = "NotExported";
    pub const UNKNOWN_WAN_POLICY: &str = "UnknownWANPolicy";
    pub const INVALID_RULES: &str = "InvalidRules";
}

const UNKNOWN_POLICY: &str = "is not a usable WANPolicy of this cluster";

fn route_ref(key: &ServiceKey) -> ObjectRef {
    ObjectRef::namespaced("WANRoute", key)
}

/// The usable WANRoutes of every cluster, by service, in cluster order: importers follow the
/// first.
pub(super) type UsableRoutes<'a> = BTreeMap<&'a ServiceKey, Vec<(&'a ClusterId, &'a WanRoute)>>;

/// The usable WANRoutes of every cluster, by service; a problem for each unusable one.
pub(super) fn usable<'a>(
    catalog: &'a Catalog,
    policies: &BTreeMap<ClusterId, BTreeMap<String, WanPolicy>>,
    problems: &mut Vec<Problem>,
) -> UsableRoutes<'a> {
    let mut out = UsableRoutes::new();
    let none = BTreeMap::new();
    for (cluster, objects) in &catalog.clusters {
        let usable_policies = policies.get(cluster).unwrap_or(&none);
        for (key, route) in &objects.wan_routes {
            if !objects.exports.contains_key(key) {
                problems.push(Problem::error(
                    Some(cluster),
                    route_ref(key),
                    None,
                    format!(
                        "the service is not exported from this cluster (no ServiceExport {key}): its rules are ignored"
                    ),
                ));
                continue;
            }
            let unknown: Vec<Problem> = route
                .policies()
                .into_iter()
                .filter(|(name, _)| !usable_policies.contains_key(*name))
                .map(|(name, field)| {
                    Problem::error(
                        Some(cluster),
                        route_ref(key),
                        Some(&field),
                        format!("WANPolicy {name:?} {UNKNOWN_POLICY}: the rules are ignored"),
                    )
                })
                .collect();
            if unknown.is_empty() {
                out.entry(key).or_default().push((cluster, route));
            } else {
                problems.extend(unknown);
            }
        }
    }
    out
}

/// Ingress ports an exporting cluster needs beyond its exports' own: for each TCP port of a
/// service whose WANRoute sends requests over a class other than the export's, one on that
/// class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RouteClass {
    pub cluster: ClusterId,
    pub class: TunnelClass,
    pub range: std::ops::RangeInclusive<u16>,
    pub keys: Vec<IngressKey>,
}

/// The WAN policies `route` names, as the exporting cluster `source` defines them.
fn named_policies<'a>(
    route: &'a WanRoute,
    source: &str,
    policies: &'a BTreeMap<ClusterId, BTreeMap<String, WanPolicy>>,
) -> Vec<(&'a str, &'a WanPolicy)> {
    route
        .policies()
        .into_keys()
        .filter_map(|name| Some((name, policies.get(source)?.get(name)?)))
        .collect()
}

pub(super) fn route_classes(
    routes: &UsableRoutes<'_>,
    resolution: &Resolution,
    policies: &BTreeMap<ClusterId, BTreeMap<String, WanPolicy>>,
) -> Vec<RouteClass> {
    let mut out = Vec::new();
    for (key, candidates) in routes {
        let Some((source, route)) = candidates.first() else {
            continue;
        };
        let Some(service) = resolution
            .services
            .get(*key)
            .filter(|s| s.import_type == ImportType::ClusterSetIp)
        else {
            continue;
        };
        for (name, policy) in named_policies(route, source, policies) {
            for member in &service.members {
                let Some(own) = &member.policy else { continue };
                if own.tunnel == policy.tunnel {
                    continue;
                }
                // The member's own policy of that name sets its range, when it has one.
                let range = policies
                    .get(&member.cluster)
                    .and_then(|p| p.get(name))
                    .filter(|p| p.tunnel == policy.tunnel)
                    .unwrap_or(policy)
                    .port_range();
                let keys: Vec<IngressKey> = member
                    .ports
                    .iter()
                    .map(|&i| &service.ports[i])
                    .filter(|p| p.protocol == Protocol::Tcp)
                    .map(|p| IngressKey {
                        service: (*key).clone(),
                        protocol: p.protocol,
                        port: p.port,
                        class: Some(policy.tunnel.clone()),
                    })
                    .collect();
                if !keys.is_empty() {
                    out.push(RouteClass {
                        cluster: member.cluster.clone(),
                        class: policy.tunnel.clone(),
                        range,
                        keys,
                    });
                }
            }
        }
    }
    out
}

/// Attaches to each ClusterSetIP import with a usable WANRoute what its HTTP proxy needs, and
/// takes the TCP ports it proxies out of the IPVS egress table (the proxy listens on them).
pub(super) fn apply(
    routes: &UsableRoutes<'_>,
    ctx: &Context<'_>,
    policies: &BTreeMap<ClusterId, BTreeMap<String, WanPolicy>>,
    ipvs: &mut IpvsTables,
    imports: &mut [Import],
    problems: &mut Vec<Problem>,
) {
    let mut proxied: std::collections::BTreeSet<(IpAddr, u16)> = std::collections::BTreeSet::new();
    for (key, candidates) in routes {
        let Some((source, route)) = candidates.first() else {
            continue;
        };
        for (other, differing) in candidates.iter().skip(1) {
            if differing.rules != route.rules || differing.default != route.default {
                problems.push(Problem::warning(
                    Some(other),
                    route_ref(key),
                    Some("spec.http"),
                    format!("differs from cluster {source}'s WANRoute, which importers follow"),
                ));
            }
        }
        let Some(import) = imports
            .iter_mut()
            .find(|i| &i.key == *key && i.vip.is_some())
        else {
            continue;
        };
        let Some(service) = ctx.resolution.services.get(*key) else {
            continue;
        };
        let egress: Vec<&VirtualServer> = ipvs
            .egress
            .iter()
            .filter(|vs| &vs.service == *key && vs.protocol == Protocol::Tcp)
            .collect();
        let mut classes = Vec::new();
        for (name, policy) in named_policies(route, source, policies) {
            let mut backends = Vec::new();
            let mut without_ingress = Vec::new();
            for member in &service.members {
                let local = member.cluster == ctx.cluster_id;
                let own_class = member
                    .policy
                    .as_ref()
                    .is_some_and(|p| p.tunnel == policy.tunnel);
                let ingress = ctx.allocations.ingress_ports.get(&member.cluster);
                let address = ipvs::gateway_address(ctx, &member.cluster, &policy.tunnel);
                for vs in &egress {
                    let key = IngressKey {
                        service: (*key).clone(),
                        protocol: vs.protocol,
                        port: vs.port,
                        class: Some(policy.tunnel.clone()),
                    };
                    for real in vs.reals.iter().filter(|r| r.cluster == member.cluster) {
                        // Local endpoints and the export's own class: where IPVS sends it.
                        // Another class: that class's ingress port on the exporter's gateway.
                        let (address, port) = if local || own_class {
                            (real.address, real.port)
                        } else {
                            match (address, ingress.and_then(|i| i.get(&key))) {
                                (Some(a), Some(p)) => (a, *p),
                                _ => {
                                    if !without_ingress.contains(&member.cluster) {
                                        without_ingress.push(member.cluster.clone());
                                    }
                                    continue;
                                }
                            }
                        };
                        backends.push(HttpBackend {
                            service_port: vs.port,
                            cluster: real.cluster.clone(),
                            address,
                            port,
                            weight: real.weight,
                        });
                    }
                }
            }
            backends.sort();
            without_ingress.sort();
            classes.push(HttpClass {
                wan_policy: name.to_owned(),
                tunnel: policy.tunnel.clone(),
                backends,
                without_ingress,
            });
        }
        proxied.extend(egress.iter().map(|vs| (vs.address, vs.port)));
        import.http = Some(HttpImport {
            source: (*source).clone(),
            rules: route.rules.clone(),
            default: route.default.clone(),
            classes,
        });
    }
    ipvs.egress
        .retain(|vs| vs.protocol != Protocol::Tcp || !proxied.contains(&(vs.address, vs.port)));
}
