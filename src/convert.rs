//! Conversion of Kubernetes objects (as every source reads them) into the domain model. Each
//! failure names the field at fault; the caller adds the cluster and object.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd;
use crate::model::{
    Affinity, ClusterId, Endpoint, EndpointPort, EndpointSlice, ExportGroup, HeaderMatch,
    HttpMatch, HttpRule, PathMatch, Placement, Protocol, RouteAction, Service, ServiceExport,
    ServiceKey, ServicePort, ServiceType, SessionAffinity, Sla, TargetPort, ValueMatch, WanImport,
    WanImportPort, WanPolicy, WanRoute,
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

/// The methods Gateway API's HTTPRouteMatch allows.
const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// RFC 9110 `token`: the characters of a header name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A regular expression as the L7 proxy compiles it: anchored at both ends.
fn check_regex(pattern: &str, field: String) -> Result<(), FieldError> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map(drop)
        .map_err(|e| {
            let first = e.to_string();
            let reason = first.lines().last().unwrap_or("invalid").trim().to_owned();
            FieldError::new(
                field,
                format!("{pattern:?} is not a regular expression: {reason}"),
            )
        })
}

fn route_action(action: &crd::WanAction, field: &str) -> Result<RouteAction, FieldError> {
    match (&action.wan_policy, action.deny) {
        (Some(_), Some(_)) => Err(FieldError::new(
            field,
            "both wanPolicy and deny are set: name a wanPolicy or set deny: true",
        )),
        (None, Some(true)) => Ok(RouteAction::Deny),
        (None, Some(false)) => Err(FieldError::new(
            format!("{field}.deny"),
            "false: name a wanPolicy instead, or set deny: true",
        )),
        (None, None) => Err(FieldError::new(
            field,
            "no action: name a wanPolicy or set deny: true",
        )),
        (Some(p), None) if !is_dns_subdomain(p) => Err(FieldError::new(
            format!("{field}.wanPolicy"),
            format!("{p:?} is not a WANPolicy name"),
        )),
        (Some(p), None) => Ok(RouteAction::WanPolicy(p.clone())),
    }
}

fn http_match(m: &crd::HttpWanMatch, field: &str) -> Result<HttpMatch, FieldError> {
    if m.method.is_none() && m.path.is_none() && m.headers.is_empty() {
        return Err(FieldError::new(
            field,
            "empty: a match needs a method, a path or a header (requests no rule matches take spec.http.default)",
        ));
    }
    let method = match &m.method {
        Some(method) if HTTP_METHODS.contains(&method.as_str()) => Some(method.clone()),
        Some(method) => {
            return Err(FieldError::new(
                format!("{field}.method"),
                format!("{method:?} is not one of {}", HTTP_METHODS.join(", ")),
            ))
        }
        None => None,
    };
    let path = match &m.path {
        None => None,
        Some(p) => {
            let value_field = format!("{field}.path.value");
            let kind = p.type_.unwrap_or(crd::PathMatchType::PathPrefix);
            if kind != crd::PathMatchType::RegularExpression && !p.value.starts_with('/') {
                return Err(FieldError::new(
                    value_field,
                    format!("{:?} is not an absolute path (it starts with /)", p.value),
                ));
            }
            Some(match kind {
                crd::PathMatchType::Exact => PathMatch::Exact(p.value.clone()),
                crd::PathMatchType::PathPrefix => PathMatch::PathPrefix(p.value.clone()),
                crd::PathMatchType::RegularExpression => {
                    check_regex(&p.value, value_field)?;
                    PathMatch::RegularExpression(p.value.clone())
                }
            })
        }
    };
    let mut headers: Vec<HeaderMatch> = Vec::new();
    for (k, h) in m.headers.iter().enumerate() {
        let name = h.name.to_ascii_lowercase();
        if !is_token(&name) {
            return Err(FieldError::new(
                format!("{field}.headers[{k}].name"),
                format!("{:?} is not a header name", h.name),
            ));
        }
        if headers.iter().any(|o| o.name == name) {
            return Err(FieldError::new(
                format!("{field}.headers[{k}].name"),
                format!("{:?} is matched twice", h.name),
            ));
        }
        let value = match h.type_.unwrap_or(crd::HeaderMatchType::Exact) {
            crd::HeaderMatchType::Exact => ValueMatch::Exact(h.value.clone()),
            crd::HeaderMatchType::RegularExpression => {
                check_regex(&h.value, format!("{field}.headers[{k}].value"))?;
                ValueMatch::RegularExpression(h.value.clone())
            }
        };
        headers.push(HeaderMatch { name, value });
    }
    Ok(HttpMatch {
        method,
        path,
        headers,
    })
}

/// A `WANRoute`: the service's key, its rules in order and its default action.
pub fn wan_route(route: &crd::WanRoute) -> Result<WanRoute, FieldError> {
    let key = key_of(&route.metadata)?;
    let http = &route.spec.http;
    let mut rules = Vec::new();
    for (i, rule) in http.rules.iter().enumerate() {
        let field = format!("spec.http.rules[{i}]");
        if rule.matches.is_empty() {
            return Err(FieldError::new(
                format!("{field}.matches"),
                "empty: a rule needs a match (requests no rule matches take spec.http.default)",
            ));
        }
        let matches = rule
            .matches
            .iter()
            .enumerate()
            .map(|(j, m)| http_match(m, &format!("{field}.matches[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        rules.push(HttpRule {
            matches,
            action: route_action(&rule.action, &field)?,
        });
    }
    Ok(WanRoute {
        key,
        rules,
        default: route_action(&http.default, "spec.http.default")?,
    })
}

#[cfg(test)]
mod wan_route_tests {
    use serde_json::json;

    use super::*;

    fn route(http: serde_json::Value) -> crd::WanRoute {
        serde_json::from_value(json!({
            "apiVersion": "mcw.l7mp.io/v1alpha1",
            "kind": "WANRoute",
            "metadata": {"name": "payment", "namespace": "secure"},
            "spec": {"http": http},
        }))
        .unwrap()
    }

    fn field_of(http: serde_json::Value) -> String {
        wan_route(&route(http)).unwrap_err().field
    }

    #[test]
    fn the_seed_story_converts_in_order_with_its_default() {
        let r = wan_route(&route(json!({
            "rules": [
                {"matches": [{"method": "GET", "path": {"type": "PathPrefix", "value": "/payment"}}],
                 "wanPolicy": "sd-wan-priority-high"},
                {"matches": [{"path": {"value": "/stats"}}], "wanPolicy": "sd-wan-priority-low"},
            ],
            "default": {"deny": true},
        })))
        .unwrap();
        assert_eq!(r.key, ServiceKey::new("secure", "payment"));
        assert_eq!(
            r.rules[0].matches[0],
            HttpMatch {
                method: Some("GET".into()),
                path: Some(PathMatch::PathPrefix("/payment".into())),
                headers: vec![],
            }
        );
        // PathPrefix is the default path type, as in Gateway API.
        assert_eq!(
            r.rules[1].matches[0].path,
            Some(PathMatch::PathPrefix("/stats".into()))
        );
        assert_eq!(
            r.rules[1].action,
            RouteAction::WanPolicy("sd-wan-priority-low".into())
        );
        assert_eq!(r.default, RouteAction::Deny);
    }

    #[test]
    fn headers_are_lower_cased_and_exact_by_default() {
        let r = wan_route(&route(json!({
            "rules": [{"matches": [{"headers": [
                {"name": "X-Tenant", "value": "gold"},
                {"name": "X-Trace", "type": "RegularExpression", "value": "[0-9a-f]+"},
            ]}], "wanPolicy": "high"}],
            "default": {"wanPolicy": "low"},
        })))
        .unwrap();
        let headers = &r.rules[0].matches[0].headers;
        assert_eq!(headers[0].name, "x-tenant");
        assert_eq!(headers[0].value, ValueMatch::Exact("gold".into()));
        assert_eq!(
            headers[1].value,
            ValueMatch::RegularExpression("[0-9a-f]+".into())
        );
    }

    #[test]
    fn a_bad_path_regex_names_its_value() {
        let e = wan_route(&route(json!({
            "rules": [
                {"matches": [{"path": {"value": "/ok"}}], "wanPolicy": "high"},
                {"matches": [{"path": {"type": "RegularExpression", "value": "/pay(ment"}}],
                 "wanPolicy": "high"},
            ],
            "default": {"deny": true},
        })))
        .unwrap_err();
        assert_eq!(e.field, "spec.http.rules[1].matches[0].path.value");
        assert!(e.message.contains("not a regular expression"), "{e}");
    }

    #[test]
    fn a_bad_header_regex_names_its_value() {
        assert_eq!(
            field_of(json!({
                "rules": [{"matches": [{"method": "GET"}, {"headers": [
                    {"name": "x-a", "type": "RegularExpression", "value": "*"}]}],
                    "wanPolicy": "high"}],
                "default": {"deny": true},
            })),
            "spec.http.rules[0].matches[1].headers[0].value"
        );
    }

    #[test]
    fn an_empty_match_is_refused() {
        let e = wan_route(&route(json!({
            "rules": [{"matches": [{}], "wanPolicy": "high"}],
            "default": {"deny": true},
        })))
        .unwrap_err();
        assert_eq!(e.field, "spec.http.rules[0].matches[0]");
        assert!(e.message.starts_with("empty"), "{e}");
        assert_eq!(
            field_of(
                json!({"rules": [{"matches": [], "wanPolicy": "high"}], "default": {"deny": true}})
            ),
            "spec.http.rules[0].matches"
        );
    }

    #[test]
    fn bad_matches_name_their_field() {
        let rule = |m: serde_json::Value| json!({"rules": [{"matches": [m], "wanPolicy": "high"}], "default": {"deny": true}});
        assert_eq!(
            field_of(rule(json!({"method": "FETCH"}))),
            "spec.http.rules[0].matches[0].method"
        );
        assert_eq!(
            field_of(rule(json!({"path": {"type": "Exact", "value": "payment"}}))),
            "spec.http.rules[0].matches[0].path.value"
        );
        assert_eq!(
            field_of(rule(json!({"headers": [{"name": "x a", "value": "1"}]}))),
            "spec.http.rules[0].matches[0].headers[0].name"
        );
        assert_eq!(
            field_of(rule(json!({"headers": [
                {"name": "X-A", "value": "1"}, {"name": "x-a", "value": "2"}]}))),
            "spec.http.rules[0].matches[0].headers[1].name"
        );
    }

    #[test]
    fn an_action_is_a_policy_or_a_deny() {
        let m = json!([{"method": "GET"}]);
        assert_eq!(
            field_of(
                json!({"rules": [{"matches": m, "wanPolicy": "high", "deny": true}],
                            "default": {"deny": true}})
            ),
            "spec.http.rules[0]"
        );
        assert_eq!(
            field_of(json!({"rules": [{"matches": m}], "default": {"deny": true}})),
            "spec.http.rules[0]"
        );
        assert_eq!(
            field_of(json!({"rules": [{"matches": m, "wanPolicy": "High_Prio"}],
                            "default": {"deny": true}})),
            "spec.http.rules[0].wanPolicy"
        );
        assert_eq!(
            field_of(json!({"default": {"deny": false}})),
            "spec.http.default.deny"
        );
        assert_eq!(field_of(json!({"default": {}})), "spec.http.default");
    }
}
