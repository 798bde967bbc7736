//! MCS conditions of this cluster's ServiceExports: Valid, Ready, Conflict.

use serde::Serialize;

use super::{Context, IngressKey};
use crate::model::{Protocol, ServiceKey};
use crate::resolve::{reason, ImportType};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

/// An allocated ingress port of an exported service port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngressPort {
    pub protocol: Protocol,
    pub service_port: u16,
    pub ingress_port: u16,
    /// `None`: on the export's own tunnel class. `Some`: on another class, for the requests
    /// the exporting cluster's WANRoute sends over it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<crate::model::TunnelClass>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportStatus {
    pub key: ServiceKey,
    pub wan_policy: Option<String>,
    pub tunnel: Option<String>,
    pub ingress: Vec<IngressPort>,
    pub conditions: Vec<Condition>,
}

impl ExportStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

pub(super) fn statuses(ctx: &Context<'_>) -> Vec<ExportStatus> {
    let own = ctx.allocations.ingress_ports.get(ctx.cluster_id);
    ctx.resolution
        .exports
        .values()
        .filter(|v| v.cluster == ctx.cluster_id)
        .map(|view| {
            let service = ctx.resolution.services.get(&view.key);
            let member = service.and_then(|s| s.members.iter().find(|m| m.cluster == ctx.cluster_id));
            let mut ingress = Vec::new();
            let mut missing = Vec::new();
            if let (Some(s), Some(m)) = (service, member) {
                if s.import_type == ImportType::ClusterSetIp {
                    for &i in &m.ports {
                        let p = &s.ports[i];
                        let key = IngressKey {
                            service: view.key.clone(),
                            protocol: p.protocol,
                            port: p.port,
                            class: None,
                        };
                        // The export's own class, then the classes its WANRoute sends
                        // requests over.
                        let before = ingress.len();
                        ingress.extend(own.into_iter().flat_map(|o| o.of_port(&key)).map(
                            |(k, port)| IngressPort {
                                protocol: p.protocol,
                                service_port: p.port,
                                ingress_port: *port,
                                class: k.class.clone(),
                            },
                        ));
                        if ingress.get(before).is_none_or(|i| i.class.is_some()) {
                            missing.push(format!("{}/{}", p.port, p.protocol));
                        }
                    }
                }
            }
            let valid = match &view.invalid {
                None => Condition {
                    type_: "Valid",
                    status: true,
                    reason: reason::VALID,
                    message: match (&view.policy, view.default_because) {
                        (Some(p), None) => format!("exported with WANPolicy {} (tunnel class {})", p.name, p.tunnel),
                        (Some(p), Some(because)) => format!(
                            "exported with WANPolicy {} (tunnel class {}): the export names none, and it is {because}",
                            p.name, p.tunnel
                        ),
                        (None, _) => "exported (headless: carried without a WAN policy)".to_owned(),
                    },
                },
                Some(invalid) => Condition {
                    type_: "Valid",
                    status: false,
                    reason: invalid.reason,
                    message: match &invalid.field {
                        Some(f) => format!("{f}: {}", invalid.message),
                        None => invalid.message.clone(),
                    },
                },
            };
            let ready = if view.invalid.is_some() {
                Condition {
                    type_: "Ready",
                    status: false,
                    reason: reason::FAILED,
                    message: "the export is not valid".to_owned(),
                }
            } else if member.is_none() {
                Condition {
                    type_: "Ready",
                    status: false,
                    reason: reason::FAILED,
                    message: "the export conflicts with the clusterset's type for this service and carries no traffic".to_owned(),
                }
            } else if !missing.is_empty() {
                Condition {
                    type_: "Ready",
                    status: false,
                    reason: reason::FAILED,
                    message: format!("no free ingress port for {}: raise spec.portCount of the WANPolicy", missing.join(", ")),
                }
            } else {
                Condition {
                    type_: "Ready",
                    status: true,
                    reason: reason::EXPORTED,
                    message: "the gateway's ingress serves every exported port".to_owned(),
                }
            };
            let conflict = if view.conflict_reasons.is_empty() {
                Condition {
                    type_: "Conflict",
                    status: false,
                    reason: reason::NO_CONFLICTS,
                    message: String::new(),
                }
            } else {
                Condition {
                    type_: "Conflict",
                    status: true,
                    reason: conflict_reason(&view.conflict_reasons),
                    message: view.conflict_message.clone(),
                }
            };
            ExportStatus {
                key: view.key.clone(),
                wan_policy: view.policy_name.clone(),
                tunnel: view.policy.as_ref().map(|p| p.tunnel.clone()),
                ingress,
                conditions: vec![valid, ready, conflict],
            }
        })
        .collect()
}

/// MCS combines several conflict reasons with commas; the combinations are finite, so they are
/// spelled out as static strings.
fn conflict_reason(reasons: &[&'static str]) -> &'static str {
    match reasons {
        [one] => one,
        _ => {
            let has = |r| reasons.contains(&r);
            match (
                has(reason::TYPE_CONFLICT),
                has(reason::PORT_CONFLICT),
                has(reason::SESSION_AFFINITY_CONFLICT),
            ) {
                (true, true, true) => "TypeConflict,PortConflict,SessionAffinityConflict",
                (true, true, false) => "TypeConflict,PortConflict",
                (true, false, true) => "TypeConflict,SessionAffinityConflict",
                (false, true, true) => "PortConflict,SessionAffinityConflict",
                _ => reasons.first().copied().unwrap_or(reason::PORT_CONFLICT),
            }
        }
    }
}
