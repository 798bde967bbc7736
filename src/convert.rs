//! Conversion of Kubernetes objects (as every source reads them) into the domain model. Each
//! failure names the field at fault; the caller adds the cluster and object.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd;
use crate::model::{
    Affinity, ClusterId, Endpoint, EndpointPort, EndpointSlice, ExportGroup, Placement, Protocol,
    Service, ServiceExport, ServiceKey, ServicePort, ServiceType, SessionAffinity, Sla, TargetPort,
    WanImport, WanImportPort, WanPolicy,
};
use crate::validate::{is_dns_label, is_dns_subdomain, is_port_name};

/// A field of an object that cannot be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Marks a WANPolicy as the default of its cluster, as `storageclass.kubernetes.io/is-default-class`
/// does a StorageClass.
pub const DEFAULT_POLICY_ANNOTATION: &str = "mcw.l7mp.io/is-default-policy";

/// The label that ties a Kubernetes EndpointSlice to its Service.
pub const LABEL_K8S_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// The namespace/name of a Service or ServiceExport: names that become DNS labels.
fn key_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<ServiceKey, FieldError> {
    key_with(meta, is_dns_label, "a DNS-1123 label")
}

fn key_with(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    rule: fn(&str) -> bool,
    rule_name: &str,
) -> Result<ServiceKey, FieldError> {
    let name = meta
        .name
        .clone()
        .ok_or_else(|| FieldError::new("metadata.name", "missing"))?;
    if !rule(&name) {
        return Err(FieldError::new(
            "metadata.name",
            format!("{name:?} is not {rule_name}"),
        ));
    }
    let namespace = meta
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    if !is_dns_label(&namespace) {
        return Err(FieldError::new(
            "metadata.namespace",
            format!("{namespace:?} is not a DNS-1123 label"),
        ));
    }
    Ok(ServiceKey { namespace, name })
}

fn port_number(value: i32, field: impl FnOnce() -> String) -> Result<u16, FieldError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| FieldError::new(field(), format!("{value} is not a port in 1..=65535")))
}

fn protocol(value: Option<&str>, field: impl FnOnce() -> String) -> Result<Protocol, FieldError> {
    Protocol::parse(value).ok_or_else(|| {
        FieldError::new(
            field(),
            format!(
                "{:?} is not one of TCP, UDP, SCTP",
                value.unwrap_or_default()
            ),
        )
    })
}

pub fn service(svc: &core::Service) -> Result<Service, FieldError> {
    let key = key_of(&svc.metadata)?;
    let spec = svc.spec.clone().unwrap_or_default();
    let service_type = if spec.type_.as_deref() == Some("ExternalName") {
        ServiceType::ExternalName
    } else if spec.cluster_ip.as_deref() == Some("None") {
        ServiceType::Headless
    } else {
        ServiceType::ClusterIp
    };
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        let name = p.name.clone().unwrap_or_default();
        if !name.is_empty() && !is_port_name(&name) {
            return Err(FieldError::new(
                format!("spec.ports[{i}].name"),
                format!("{name:?} is not a valid port name"),
            ));
        }
        let target_port = match &p.target_port {
            None => None,
            Some(IntOrString::Int(n)) => Some(TargetPort::Number(port_number(*n, || {
                format!("spec.ports[{i}].targetPort")
            })?)),
            Some(IntOrString::String(s)) => Some(TargetPort::Name(s.clone())),
        };
        ports.push(ServicePort {
            name,
            protocol: protocol(p.protocol.as_deref(), || {
                format!("spec.ports[{i}].protocol")
            })?,
            port: port_number(p.port, || format!("spec.ports[{i}].port"))?,
            target_port,
        });
    }
    let session_affinity = match spec.session_affinity.as_deref() {
        Some("ClientIP") => SessionAffinity::ClientIp {
            timeout_seconds: spec
                .session_affinity_config
                .and_then(|c| c.client_ip)
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(10_800),
        },
        None | Some("None") => SessionAffinity::None,
        Some(other) => {
            return Err(FieldError::new(
                "spec.sessionAffinity",
                format!("{other:?} is not one of None, ClientIP"),
            ))
        }
    };
    Ok(Service {
        key,
        service_type,
        ports,
        session_affinity,
    })
}

pub fn endpoint_slice(slice: &discovery::EndpointSlice) -> Result<EndpointSlice, FieldError> {
    // Slice names are subdomains (up to 253 characters): Kubernetes' own controller makes
    // names longer than a label for long Service names.
    let own = key_with(&slice.metadata, is_dns_subdomain, "a DNS-1123 subdomain")?;
    let field = format!("metadata.labels[\"{LABEL_K8S_SERVICE_NAME}\"]");
    let service_name = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_K8S_SERVICE_NAME))
        .ok_or_else(|| {
            FieldError::new(field.clone(), "missing: the slice belongs to no Service")
        })?;
    let mut endpoints = Vec::new();
    for (i, ep) in slice.endpoints.iter().flatten().enumerate() {
        let mut addresses = Vec::new();
        for (j, a) in ep.addresses.iter().enumerate() {
            let ip: IpAddr = a.parse().map_err(|_| {
                FieldError::new(
                    format!("endpoints[{i}].addresses[{j}]"),
                    format!("{a:?} is not an IP address"),
                )
            })?;
            addresses.push(ip);
        }
        let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
        let hostname = ep.hostname.clone();
        if let Some(h) = &hostname {
            if !is_dns_label(h) {
                return Err(FieldError::new(
                    format!("endpoints[{i}].hostname"),
                    format!("{h:?} is not a DNS-1123 label"),
                ));
            }
        }
        endpoints.push(Endpoint {
            addresses,
            ready,
            hostname,
        });
    }
    let mut ports = Vec::new();
    for (i, p) in slice.ports.iter().flatten().enumerate() {
        let Some(port) = p.port else { continue };
        ports.push(EndpointPort {
            name: p.name.clone().unwrap_or_default(),
            protocol: protocol(p.protocol.as_deref(), || format!("ports[{i}].protocol"))?,
            port: port_number(port, || format!("ports[{i}].port"))?,
        });
    }
    Ok(EndpointSlice {
        name: own.name,
        service: ServiceKey::new(own.namespace, service_name.clone()),
        ports,
        endpoints,
    })
}

/// Converts a ServiceExport. Besides the export it returns the annotations it could not read:
/// the export is still used, as if they were absent (a typo in a preference must not take a
/// working service down), and the caller reports them as warnings.
pub fn service_export(
    export: &crd::ServiceExport,
    group: ExportGroup,
) -> Result<(ServiceExport, Vec<FieldError>), FieldError> {
    let key = key_of(&export.metadata)?;
    let annotations = export.metadata.annotations.as_ref();
    let annotation = |name: &str| annotations.and_then(|a| a.get(name));
    let wan_policy = annotation(crd::WAN_POLICY_ANNOTATION).cloned();
    if let Some(p) = &wan_policy {
        if p.is_empty() {
            return Err(FieldError::new(
                format!("metadata.annotations[\"{}\"]", crd::WAN_POLICY_ANNOTATION),
                "empty: name a WANPolicy or remove the annotation to use the default",
            ));
        }
    }
    let mut warnings = Vec::new();
    let mut placement = Placement::default();
    if let Some(value) = annotation(crd::AFFINITY_ANNOTATION) {
        match Affinity::parse(value.trim()) {
            Some(a) => placement.affinity = Some(a),
            None => warnings.push(FieldError::new(
                format!("metadata.annotations[\"{}\"]", crd::AFFINITY_ANNOTATION),
                format!("{value:?} is not one of local, remote, none; ignored"),
            )),
        }
    }
    if let Some(value) = annotation(crd::CLUSTER_PRIORITY_ANNOTATION) {
        match cluster_priority(value) {
            Ok(p) => placement.priority = Some(p),
            Err(why) => warnings.push(FieldError::new(
                format!(
                    "metadata.annotations[\"{}\"]",
                    crd::CLUSTER_PRIORITY_ANNOTATION
                ),
                format!("{why}; ignored"),
            )),
        }
    }
    Ok((
        ServiceExport {
            key,
            wan_policy,
            placement,
            created: export.metadata.creation_timestamp.as_ref().map(|t| t.0),
            group,
        },
        warnings,
    ))
}

/// Parses `cluster-1=1, cluster-3=2`: cluster IDs with their priorities, lower preferred.
pub fn cluster_priority(value: &str) -> Result<BTreeMap<ClusterId, u32>, String> {
    let mut out = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((cluster, priority)) = item.split_once('=') else {
            return Err(format!("{item:?} is not <cluster-id>=<priority>"));
        };
        let cluster = cluster.trim();
        if !is_dns_label(cluster) {
            return Err(format!("{cluster:?} is not a cluster ID"));
        }
        let priority: u32 = priority.trim().parse().map_err(|_| {
            format!(
                "priority {:?} of {cluster} is not a number in 0..=4294967294",
                priority.trim()
            )
        })?;
        if priority == u32::MAX {
            return Err(format!(
                "priority {priority} of {cluster} is reserved for unlisted clusters"
            ));
        }
        if out.insert(cluster.to_owned(), priority).is_some() {
            return Err(format!("cluster {cluster} is listed twice"));
        }
    }
    if out.is_empty() {
        return Err("empty: list <cluster-id>=<priority> pairs or remove the annotation".into());
    }
    Ok(out)
}

/// A `WANImport`: the service's key, the ingress gateway's address and the ports.
pub fn wan_import(import: &crd::WanImport) -> Result<WanImport, FieldError> {
    let key = key_of(&import.metadata)?;
    let spec = &import.spec;
    let ingress_gateway = spec.ingress_gateway.trim().parse::<IpAddr>().map_err(|_| {
        FieldError::new(
            "spec.ingressGateway",
            format!(
                "{:?} is not an IP address (the GW_IP_ADDRESS `mcwan status` prints on the exporting cluster)",
                spec.ingress_gateway
            ),
        )
    })?;
    if let Some(policy) = &spec.wan_policy {
        if !is_dns_subdomain(policy) {
            return Err(FieldError::new(
                "spec.wanPolicy",
                format!("{policy:?} is not a WANPolicy name"),
            ));
        }
    }
    if spec.ports.is_empty() {
        return Err(FieldError::new(
            "spec.ports",
            "empty: name the service's ports",
        ));
    }
    let mut ports: Vec<WanImportPort> = Vec::new();
    for (i, p) in spec.ports.iter().enumerate() {
        let name = p.name.clone().unwrap_or_default();
        if !name.is_empty() && !is_port_name(&name) {
            return Err(FieldError::new(
                format!("spec.ports[{i}].name"),
                format!("{name:?} is not a valid port name"),
            ));
        }
        let port = WanImportPort {
            name,
            protocol: protocol(p.protocol.as_deref(), || {
                format!("spec.ports[{i}].protocol")
            })?,
            port: port_number(p.port, || format!("spec.ports[{i}].port"))?,
            ingress_port: p
                .ingress_port
                .map(|n| port_number(n, || format!("spec.ports[{i}].ingressPort")))
                .transpose()?,
        };
        if ports
            .iter()
            .any(|q| q.port == port.port && q.protocol == port.protocol)
        {
            return Err(FieldError::new(
                format!("spec.ports[{i}]"),
                format!("{}/{} is listed twice", port.port, port.protocol),
            ));
        }
        if spec.ports.len() > 1 && port.name.is_empty() {
            return Err(FieldError::new(
                format!("spec.ports[{i}].name"),
                "missing: every port of a service with several ports needs a name",
            ));
        }
        ports.push(port);
    }
    Ok(WanImport {
        key,
        ingress_gateway,
        wan_policy: spec.wan_policy.clone(),
        ports,
    })
}

pub fn wan_policy(policy: &crd::WanPolicy) -> Result<WanPolicy, FieldError> {
    let name = policy
        .metadata
        .name
        .clone()
        .ok_or_else(|| FieldError::new("metadata.name", "missing"))?;
    let spec = &policy.spec;
    if !is_dns_label(&spec.tunnel) {
        return Err(FieldError::new(
            "spec.tunnel",
            format!("{:?} is not a DNS-1123 label", spec.tunnel),
        ));
    }
    if spec.port == 0 {
        return Err(FieldError::new("spec.port", "0 is not a port in 1..=65535"));
    }
    let port_count = spec.port_count.unwrap_or(1);
    if port_count == 0 || u32::from(spec.port) + u32::from(port_count) - 1 > 65_535 {
        return Err(FieldError::new(
            "spec.portCount",
            format!(
                "{port_count} ports from {} do not fit in 1..=65535",
                spec.port
            ),
        ));
    }
    let sla = spec.sla.clone().unwrap_or_default();
    if let Some(loss) = sla.loss_percent {
        if !(0.0..=100.0).contains(&loss) {
            return Err(FieldError::new(
                "spec.sla.loss-percent",
                format!("{loss} is not a percentage"),
            ));
        }
    }
    let field = format!("metadata.annotations[\"{DEFAULT_POLICY_ANNOTATION}\"]");
    let is_default = match policy
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_POLICY_ANNOTATION))
        .map(String::as_str)
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(FieldError::new(
                field,
                format!("{other:?} is not \"true\" or \"false\""),
            ))
        }
    };
    Ok(WanPolicy {
        name,
        tunnel: spec.tunnel.clone(),
        port: spec.port,
        port_count,
        sla: Sla {
            jitter_ms: sla.jitter_ms,
            latency_ms: sla.latency_ms,
            loss_percent: sla.loss_percent,
        },
        is_default,
    })
}
