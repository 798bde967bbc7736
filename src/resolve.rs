//! From every cluster's exports to clusterset services, per the MCS API (KEP-1645):
//!
//! - an export is **Valid** when its Service exists and is not ExternalName, and (mcwan's rule)
//!   its WAN policy exists in the exporting cluster;
//! - valid exports of one namespace/name form one clusterset service; where they disagree the
//!   **oldest export wins** (`creationTimestamp`, then cluster ID; exports without a timestamp
//!   count as newest): its type, its session affinity, and its definition of each port name or
//!   port/protocol pair. Ports are the union. Every export of a conflicted service carries a
//!   **Conflict** condition saying which field, which cluster won and why;
//! - exports whose type conflicts contribute no endpoints; exports with a conflicting port
//!   contribute endpoints to every port but that one.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::convert::DEFAULT_POLICY_ANNOTATION;
use crate::crd::{AFFINITY_ANNOTATION, CLUSTER_PRIORITY_ANNOTATION, WAN_POLICY_ANNOTATION};
use crate::model::{
    ClusterId, ClusterObjects, Placement, Service, ServiceKey, ServicePort, ServiceType,
    SessionAffinity, WanPolicy,
};

/// MCS condition reasons used by mcwan.
pub mod reason {
    pub const VALID: &str = "Valid";
    pub const NO_SERVICE: &str = "NoService";
    pub const INVALID_SERVICE_TYPE: &str = "InvalidServiceType";
    pub const UNKNOWN_WAN_POLICY: &str = "UnknownWANPolicy";
    pub const EXPORTED: &str = "Exported";
    pub const PENDING: &str = "Pending";
    pub const FAILED: &str = "Failed";
    pub const NO_CONFLICTS: &str = "NoConflicts";
    pub const PORT_CONFLICT: &str = "PortConflict";
    pub const TYPE_CONFLICT: &str = "TypeConflict";
    pub const SESSION_AFFINITY_CONFLICT: &str = "SessionAffinityConflict";
    pub const PLACEMENT_CONFLICT: &str = "PlacementConflict";
}

/// Why an export is not valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub reason: &'static str,
    /// The field at fault, if one is (`metadata.annotations["mcw.l7mp.io/mc-wan-policy"]`).
    pub field: Option<String>,
    pub message: String,
}

/// One cluster's export of a service, as resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportView {
    pub cluster: ClusterId,
    pub key: ServiceKey,
    pub created: Option<Timestamp>,
    /// The WAN policy the export asked for (or the default), and whether it was found.
    pub policy_name: Option<String>,
    pub policy: Option<WanPolicy>,
    /// Why the policy is the default, when the export names none.
    pub default_because: Option<&'static str>,
    pub invalid: Option<Invalid>,
    /// Conflict reasons (MCS reason names) and one message saying what and who won.
    pub conflict_reasons: Vec<&'static str>,
    pub conflict_message: String,
}

/// A cluster that backs a clusterset service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Member {
    pub cluster: ClusterId,
    pub service: Arc<Service>,
    pub policy: Option<WanPolicy>,
    /// Indexes into [`ClusterSetService::ports`] this member serves.
    pub ports: Vec<usize>,
}

/// The MCS ServiceImport type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ImportType {
    #[serde(rename = "ClusterSetIP")]
    ClusterSetIp,
    Headless,
}

impl std::fmt::Display for ImportType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ClusterSetIp => "ClusterSetIP",
            Self::Headless => "Headless",
        })
    }
}

/// The merged view of one namespace/name across the clusterset.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSetService {
    pub key: ServiceKey,
    pub import_type: ImportType,
    /// Merged ports (target ports are per cluster and left out).
    pub ports: Vec<ServicePort>,
    pub session_affinity: SessionAffinity,
    /// Affinity and cluster priorities: each as the oldest export that sets it says.
    pub placement: Placement,
    /// Oldest first.
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Resolution {
    pub exports: BTreeMap<(ClusterId, ServiceKey), ExportView>,
    pub services: BTreeMap<ServiceKey, ClusterSetService>,
}

/// Resolves every export of every cluster. `policies` holds each cluster's usable WAN policies.
pub fn resolve(
    clusters: &BTreeMap<ClusterId, ClusterObjects>,
    policies: &BTreeMap<ClusterId, BTreeMap<String, WanPolicy>>,
    default_policy: Option<&str>,
) -> Resolution {
    let mut res = Resolution::default();
    let mut valid: BTreeMap<ServiceKey, Vec<Exporter>> = BTreeMap::new();
    let no_policies = BTreeMap::new();
    for (cluster, objects) in clusters {
        let cluster_policies = policies.get(cluster).unwrap_or(&no_policies);
        let default = DefaultPolicy::of(default_policy, cluster_policies);
        for export in objects.exports.values() {
            let service = objects.services.get(&export.key);
            let (policy_name, default_because) = match (&export.wan_policy, &default) {
                (Some(name), _) => (Some(name.clone()), None),
                (None, DefaultPolicy::Chosen { name, because }) => {
                    (Some(name.clone()), Some(*because))
                }
                (None, _) => (None, None),
            };
            let policy = policy_name
                .as_ref()
                .and_then(|n| cluster_policies.get(n))
                .cloned();
            let invalid = match service {
                None => Some(Invalid {
                    reason: reason::NO_SERVICE,
                    field: None,
                    message: format!("Service {} does not exist in cluster {cluster}", export.key),
                }),
                Some(s) if s.service_type == ServiceType::ExternalName => Some(Invalid {
                    reason: reason::INVALID_SERVICE_TYPE,
                    field: None,
                    message: format!(
                        "Service {} is of type ExternalName, which cannot be exported",
                        export.key
                    ),
                }),
                Some(s) => policy_problem(
                    s,
                    export.wan_policy.as_deref(),
                    policy_name.as_deref(),
                    policy.is_some(),
                    &default,
                ),
            };
            if invalid.is_none() {
                if let Some(s) = service {
                    valid.entry(export.key.clone()).or_default().push(Exporter {
                        created: export.created,
                        cluster: cluster.clone(),
                        service: s.clone(),
                        policy: policy.clone(),
                        placement: export.placement.clone(),
                    });
                }
            }
            res.exports.insert(
                (cluster.clone(), export.key.clone()),
                ExportView {
                    cluster: cluster.clone(),
                    key: export.key.clone(),
                    created: export.created,
                    policy_name,
                    policy,
                    default_because,
                    invalid,
                    conflict_reasons: Vec::new(),
                    conflict_message: String::new(),
                },
            );
        }
    }
    for (key, mut exporters) in valid {
        // Oldest first; exports without a timestamp count as newest; ties by cluster ID.
        exporters.sort_by(|a, b| {
            (a.created.is_none(), a.created, &a.cluster).cmp(&(
                b.created.is_none(),
                b.created,
                &b.cluster,
            ))
        });
        let (service, conflicts) = merge(&key, exporters);
        for (cluster, reasons, message) in conflicts {
            if let Some(view) = res.exports.get_mut(&(cluster, key.clone())) {
                view.conflict_reasons = reasons;
                view.conflict_message = message;
            }
        }
        res.services.insert(key, service);
    }
    res
}

/// The WAN policy of a cluster's exports that name none, following the Kubernetes convention
/// for defaults (StorageClass, IngressClass): the gateway's `--default-wan-policy` if given,
/// else the one policy marked `mcw.l7mp.io/is-default-policy: "true"`, else the cluster's only
/// policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultPolicy {
    Chosen {
        name: String,
        because: &'static str,
    },
    /// Several policies are marked default: none is chosen.
    Ambiguous(Vec<String>),
    /// No policy at all, or several and none marked.
    Missing {
        policies: usize,
    },
}

impl DefaultPolicy {
    pub fn of(configured: Option<&str>, policies: &BTreeMap<String, WanPolicy>) -> Self {
        if let Some(name) = configured {
            return Self::Chosen {
                name: name.to_owned(),
                because: "the gateway's --default-wan-policy",
            };
        }
        let marked: Vec<String> = policies
            .values()
            .filter(|p| p.is_default)
            .map(|p| p.name.clone())
            .collect();
        match (marked.as_slice(), policies.len()) {
            ([one], _) => Self::Chosen {
                name: one.clone(),
                because: "the WANPolicy marked mcw.l7mp.io/is-default-policy",
            },
            ([], 1) => Self::Chosen {
                name: policies.keys().next().cloned().unwrap_or_default(),
                because: "the only WANPolicy of the cluster",
            },
            ([], n) => Self::Missing { policies: n },
            _ => Self::Ambiguous(marked),
        }
    }
}

fn policy_problem(
    service: &Service,
    requested: Option<&str>,
    name: Option<&str>,
    found: bool,
    default: &DefaultPolicy,
) -> Option<Invalid> {
    let field = Some(format!("metadata.annotations[\"{WAN_POLICY_ANNOTATION}\"]"));
    match (name, found) {
        (_, true) => None,
        // Headless services are not carried by mcwan's dataplane: no policy needed.
        (None, false) if service.service_type == ServiceType::Headless => None,
        (None, false) => Some(Invalid {
            reason: reason::UNKNOWN_WAN_POLICY,
            field,
            message: match default {
                DefaultPolicy::Ambiguous(names) => format!(
                    "no {WAN_POLICY_ANNOTATION} annotation, and several WANPolicies are marked default ({}): unmark all but one",
                    names.join(", ")
                ),
                DefaultPolicy::Missing { policies: 0 } => format!(
                    "no {WAN_POLICY_ANNOTATION} annotation and no WANPolicy in this cluster: create one (a cluster's only WANPolicy is the default)"
                ),
                _ => format!(
                    "no {WAN_POLICY_ANNOTATION} annotation, and none of this cluster's WANPolicies is the default: annotate the export, or mark one policy {DEFAULT_POLICY_ANNOTATION}: \"true\""
                ),
            },
        }),
        (Some(n), false) if requested.is_some() => Some(Invalid {
            reason: reason::UNKNOWN_WAN_POLICY,
            field,
            message: format!("WANPolicy {n:?} does not exist (or is invalid) in this cluster"),
        }),
        (Some(n), false) => Some(Invalid {
            reason: reason::UNKNOWN_WAN_POLICY,
            field,
            message: format!("no {WAN_POLICY_ANNOTATION} annotation, and the default WANPolicy {n:?} does not exist in this cluster"),
        }),
    }
}

/// A valid export of a service, as the merge reads it.
struct Exporter {
    created: Option<Timestamp>,
    cluster: ClusterId,
    service: Arc<Service>,
    policy: Option<WanPolicy>,
    placement: Placement,
}

type Conflicts = Vec<(ClusterId, Vec<&'static str>, String)>;

fn describe_port(p: &ServicePort) -> String {
    let name = if p.name.is_empty() {
        "(unnamed)"
    } else {
        &p.name
    };
    format!("{name} {}/{}", p.port, p.protocol)
}

fn merge(key: &ServiceKey, exporters: Vec<Exporter>) -> (ClusterSetService, Conflicts) {
    let oldest = &exporters[0];
    let winner = oldest.cluster.clone();
    let why = match oldest.created {
        Some(t) => format!("its export is the oldest ({t})"),
        None => "no export has a creationTimestamp, so the first cluster ID wins".to_owned(),
    };
    let import_type = match oldest.service.service_type {
        ServiceType::Headless => ImportType::Headless,
        _ => ImportType::ClusterSetIp,
    };
    let mut reasons: Vec<&'static str> = Vec::new();
    let mut messages: Vec<String> = Vec::new();
    let mut ports: Vec<ServicePort> = Vec::new();
    let mut members = Vec::new();
    let placement = merge_placement(&exporters, &mut reasons, &mut messages);
    for Exporter {
        cluster,
        service,
        policy,
        ..
    } in exporters.iter()
    {
        let member_type = match service.service_type {
            ServiceType::Headless => ImportType::Headless,
            _ => ImportType::ClusterSetIp,
        };
        if member_type != import_type {
            push_unique(&mut reasons, reason::TYPE_CONFLICT);
            messages.push(format!("type: cluster {cluster} exports {member_type}, cluster {winner} exports {import_type} and wins because {why}"));
            continue;
        }
        if service.session_affinity != oldest.service.session_affinity {
            push_unique(&mut reasons, reason::SESSION_AFFINITY_CONFLICT);
            messages.push(format!(
                "sessionAffinity: cluster {cluster} has {:?}, cluster {winner} has {:?} and wins",
                service.session_affinity, oldest.service.session_affinity
            ));
        }
        let mut served = Vec::new();
        for p in &service.ports {
            let by_name = ports.iter().position(|m| m.name == p.name);
            let by_number = ports
                .iter()
                .position(|m| m.port == p.port && m.protocol == p.protocol);
            match (by_name, by_number) {
                (Some(i), Some(j)) if i == j => served.push(i),
                (None, None) => {
                    ports.push(ServicePort {
                        target_port: None,
                        ..p.clone()
                    });
                    served.push(ports.len() - 1);
                }
                (Some(i), _) | (None, Some(i)) => {
                    push_unique(&mut reasons, reason::PORT_CONFLICT);
                    messages.push(format!(
                        "ports: cluster {cluster} exports {}, which clashes with {} from cluster {winner}, whose definition wins because {why}",
                        describe_port(p),
                        describe_port(&ports[i])
                    ));
                }
            }
        }
        members.push(Member {
            cluster: cluster.clone(),
            service: service.clone(),
            policy: policy.clone(),
            ports: served,
        });
    }
    let conflicts = if reasons.is_empty() {
        Vec::new()
    } else {
        let message = messages.join("; ");
        exporters
            .iter()
            .map(|e| (e.cluster.clone(), reasons.clone(), message.clone()))
            .collect()
    };
    (
        ClusterSetService {
            key: key.clone(),
            import_type,
            ports,
            session_affinity: oldest.service.session_affinity,
            placement,
            members,
        },
        conflicts,
    )
}

/// Each part of the placement comes from the oldest export that sets it; an export that sets it
/// differently is in conflict (exports that leave it unset defer to the others).
fn merge_placement(
    exporters: &[Exporter],
    reasons: &mut Vec<&'static str>,
    messages: &mut Vec<String>,
) -> Placement {
    let mut conflict = |message: String| {
        push_unique(reasons, reason::PLACEMENT_CONFLICT);
        messages.push(message);
    };
    let affinity = oldest_setting(
        exporters,
        |p| p.affinity.as_ref(),
        |e, mine, winner, won| {
            conflict(format!(
            "metadata.annotations[\"{AFFINITY_ANNOTATION}\"]: cluster {} says {mine}, cluster {winner} says {won} and wins as the older export",
            e.cluster
        ));
        },
    );
    let priority = oldest_setting(
        exporters,
        |p| p.priority.as_ref(),
        |e, _, winner, _| {
            conflict(format!(
            "metadata.annotations[\"{CLUSTER_PRIORITY_ANNOTATION}\"]: cluster {} and cluster {winner} rank the clusters differently; cluster {winner}'s ranking wins as the older export",
            e.cluster
        ));
        },
    );
    Placement {
        affinity: affinity.copied(),
        priority: priority.cloned(),
    }
}

/// The value the oldest exporter that sets it gives; `differs(exporter, its value, winner's
/// cluster, winning value)` for every later exporter that sets another.
fn oldest_setting<'a, T: PartialEq>(
    exporters: &'a [Exporter],
    get: impl Fn(&'a Placement) -> Option<&'a T>,
    mut differs: impl FnMut(&Exporter, &T, &str, &T),
) -> Option<&'a T> {
    let mut won: Option<(&'a T, &'a str)> = None;
    for e in exporters {
        let Some(value) = get(&e.placement) else {
            continue;
        };
        match won {
            None => won = Some((value, &e.cluster)),
            Some((winning, winner)) if winning != value => differs(e, value, winner, winning),
            Some(_) => {}
        }
    }
    won.map(|(value, _)| value)
}

fn push_unique(v: &mut Vec<&'static str>, r: &'static str) {
    if !v.contains(&r) {
        v.push(r);
    }
}
