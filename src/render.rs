//! Human-readable renderings: the plan as tables (`mcwan plan`, `mcwan status`), the CRDs as
//! YAML (`mcwan crds`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kube::CustomResourceExt;
use mcwan_dns::ServiceRecordKind;

use crate::crd;
use crate::desired::{DesiredState, VirtualServer};
use crate::kube::Reachability;
use crate::model::ClusterId;
use crate::problem::Severity;

/// `text` with control characters escaped (ESC as `\u{1b}`, as Rust writes them), so that an
/// object name cannot move the cursor, recolour or clear a terminal. Newlines are kept when
/// `keep_newlines` (whole renderings), escaped otherwise (one cell: no forged rows).
pub fn escape_controls(text: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    let escaped = |c: char| c.is_control() && !(keep_newlines && c == '\n');
    if !text.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Column-aligned text table.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| escape_controls(&c, false).into_owned())
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn section(out: &mut String, title: &str, table: &Table) {
    let _ = writeln!(out, "\n{title}");
    if table.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&table.render());
    }
}

fn vs_rows(table: &mut Table, servers: &[VirtualServer]) {
    for vs in servers {
        let reals = if vs.reals.is_empty() {
            "(no real servers)".to_owned()
        } else {
            vs.reals
                .iter()
                .map(|r| {
                    format!(
                        "{} ({}, weight {})",
                        std::net::SocketAddr::new(r.address, r.port),
                        r.cluster,
                        r.weight
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let persistence = vs
            .persistence
            .map(|t| format!(" persistent {t}"))
            .unwrap_or_default();
        table.row(vec![
            vs.service.to_string(),
            format!(
                "{} {}",
                vs.protocol,
                std::net::SocketAddr::new(vs.address, vs.port)
            ),
            format!("{}{persistence}", vs.scheduler),
            reals,
        ]);
    }
}

/// A WANRoute match in one line: `GET PathPrefix /payment x-tier=gold`.
fn match_text(m: &crate::model::HttpMatch) -> String {
    use crate::model::{PathMatch, ValueMatch};
    let mut parts: Vec<String> = Vec::new();
    if let Some(method) = &m.method {
        parts.push(method.clone());
    }
    match &m.path {
        Some(PathMatch::Exact(p)) => parts.push(format!("Exact {p}")),
        Some(PathMatch::PathPrefix(p)) => parts.push(format!("PathPrefix {p}")),
        Some(PathMatch::RegularExpression(p)) => parts.push(format!("RegularExpression {p}")),
        None => {}
    }
    for h in &m.headers {
        parts.push(match &h.value {
            ValueMatch::Exact(v) => format!("{}={v}", h.name),
            ValueMatch::RegularExpression(v) => format!("{}~{v}", h.name),
        });
    }
    parts.join(" ")
}

/// The proxied ports of imports with WANRoute rules: per rule (and the default), what it
/// matches and where its requests go.
fn http_rows(state: &DesiredState) -> Table {
    use crate::model::RouteAction;
    let mut table = Table::new(&["SERVICE", "LISTENER", "RULE", "REQUESTS", "CARRIED BY"]);
    for import in &state.imports {
        let (Some(vip), Some(http)) = (import.vip, &import.http) else {
            continue;
        };
        let listeners: Vec<String> = import
            .ports
            .iter()
            .filter(|p| p.protocol == crate::model::Protocol::Tcp)
            .map(|p| format!("TCP {}", std::net::SocketAddr::new(vip, p.port)))
            .collect();
        let carried = |action: &RouteAction| match action {
            RouteAction::Deny => "denied (403)".to_owned(),
            RouteAction::WanPolicy(name) => {
                let Some(class) = http.classes.iter().find(|c| &c.wan_policy == name) else {
                    return format!("{name} (no such class)");
                };
                let backends: Vec<String> = class
                    .backends
                    .iter()
                    .map(|b| {
                        format!(
                            "{} ({}, weight {})",
                            std::net::SocketAddr::new(b.address, b.port),
                            b.cluster,
                            b.weight
                        )
                    })
                    .collect();
                let backends = if backends.is_empty() {
                    "no backends: 503".to_owned()
                } else {
                    backends.join(", ")
                };
                format!("{name} ({}): {backends}", class.tunnel)
            }
        };
        let rows = http
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let matches: Vec<String> = r.matches.iter().map(match_text).collect();
                (i.to_string(), matches.join(" | "), carried(&r.action))
            })
            .chain(std::iter::once((
                "default".to_owned(),
                "anything else".to_owned(),
                carried(&http.default),
            )));
        for (i, (rule, matches, carried)) in rows.enumerate() {
            let (service, listener) = if i == 0 {
                (import.key.to_string(), listeners.join(", "))
            } else {
                (String::new(), String::new())
            };
            table.row(vec![service, listener, rule, matches, carried]);
        }
    }
    table
}

/// Kubernetes mode: each cluster's API server as the gateway sees it (`mcwan status`).
pub fn cluster_api_table(clusters: &BTreeMap<ClusterId, Reachability>) -> String {
    let mut table = Table::new(&["CLUSTER", "API", "SYNCED", "LAST ERROR"]);
    for (id, r) in clusters {
        let api = match r.unreachable_for {
            None => "up".to_owned(),
            Some(d) => format!("unreachable for {}s", d.as_secs()),
        };
        table.row(vec![
            id.clone(),
            api,
            if r.synced { "yes" } else { "no" }.to_owned(),
            match (&r.last_error, r.up()) {
                (Some(e), false) => e.clone(),
                _ => "-".to_owned(),
            },
        ]);
    }
    let mut out = String::new();
    section(&mut out, "CLUSTER API SERVERS", &table);
    out.push('\n');
    out
}

/// `mcwan plan`'s table output.
pub fn plan_table(state: &DesiredState) -> String {
    let mut out = format!("desired state of cluster {}'s gateway\n", state.cluster_id);

    let mut imports = Table::new(&["SERVICE", "TYPE", "VIP", "PORTS", "CLUSTERS"]);
    for i in &state.imports {
        let ports = i
            .ports
            .iter()
            .map(|p| {
                if p.name.is_empty() {
                    format!("{}/{}", p.port, p.protocol)
                } else {
                    format!("{} {}/{}", p.name, p.port, p.protocol)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        imports.row(vec![
            i.key.to_string(),
            i.import_type.to_string(),
            i.vip.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            ports,
            i.clusters.join(","),
        ]);
    }
    section(&mut out, "IMPORTS", &imports);

    let mut exports = Table::new(&[
        "SERVICE",
        "WAN-POLICY",
        "TUNNEL",
        "INGRESS",
        "VALID",
        "READY",
        "CONFLICT",
    ]);
    for e in &state.exports {
        let cond = |t: &str| {
            e.condition(t)
                .map(|c| {
                    if c.status {
                        "True".to_owned()
                    } else {
                        format!("False ({})", c.reason)
                    }
                })
                .unwrap_or_default()
        };
        let conflict = e
            .condition("Conflict")
            .map(|c| {
                if c.status {
                    format!("True ({})", c.reason)
                } else {
                    "False".into()
                }
            })
            .unwrap_or_default();
        let ingress = e
            .ingress
            .iter()
            .map(|p| format!("{}/{}->{}", p.service_port, p.protocol, p.ingress_port))
            .collect::<Vec<_>>()
            .join(", ");
        exports.row(vec![
            e.key.to_string(),
            e.wan_policy.clone().unwrap_or_else(|| "-".into()),
            e.tunnel.clone().unwrap_or_else(|| "-".into()),
            if ingress.is_empty() {
                "-".into()
            } else {
                ingress
            },
            cond("Valid"),
            cond("Ready"),
            conflict,
        ]);
    }
    section(&mut out, "EXPORTS", &exports);

    let mut dns = Table::new(&["NAME", "TYPE", "DATA"]);
    for r in &state.dns {
        let name = format!("{}.{}.svc", r.name, r.namespace);
        match &r.kind {
            ServiceRecordKind::ClusterSetIp { ips } => {
                for ip in ips {
                    dns.row(vec![
                        name.clone(),
                        if ip.is_ipv4() { "A" } else { "AAAA" }.into(),
                        ip.to_string(),
                    ]);
                }
            }
            ServiceRecordKind::Headless { endpoints } => {
                if endpoints.is_empty() {
                    dns.row(vec![
                        name.clone(),
                        "-".into(),
                        "(headless, no ready endpoint: NXDOMAIN)".into(),
                    ]);
                }
                for ep in endpoints {
                    for ip in &ep.ips {
                        dns.row(vec![
                            format!("{}.{}.{name}", ep.hostname, ep.cluster_id),
                            if ip.is_ipv4() { "A" } else { "AAAA" }.into(),
                            ip.to_string(),
                        ]);
                    }
                }
            }
        }
        for p in r.ports.iter().filter(|p| p.name.is_some()) {
            dns.row(vec![
                format!(
                    "_{}._{}.{name}",
                    p.name.as_deref().unwrap_or_default(),
                    match p.protocol {
                        mcwan_dns::PortProtocol::Tcp => "tcp",
                        mcwan_dns::PortProtocol::Udp => "udp",
                        mcwan_dns::PortProtocol::Sctp => "sctp",
                    }
                ),
                "SRV".into(),
                format!("port {}", p.port),
            ]);
        }
    }
    section(
        &mut out,
        "DNS (names relative to the clusterset zone)",
        &dns,
    );

    let mut egress = Table::new(&["SERVICE", "VIRTUAL SERVER", "SCHEDULER", "REAL SERVERS"]);
    vs_rows(&mut egress, &state.ipvs.egress);
    section(&mut out, "IPVS EGRESS", &egress);
    let proxies = http_rows(state);
    if !proxies.is_empty() {
        section(
            &mut out,
            "HTTP PROXIES (WANRoute rules; these ports are not in IPVS)",
            &proxies,
        );
    }
    let mut ingress = Table::new(&["SERVICE", "VIRTUAL SERVER", "SCHEDULER", "REAL SERVERS"]);
    vs_rows(&mut ingress, &state.ipvs.ingress);
    section(&mut out, "IPVS INGRESS", &ingress);

    let mut tunnels = Table::new(&[
        "CLASS",
        "WAN-PORT",
        "INGRESS-PORTS",
        "LOCAL",
        "VIA",
        "PEERS",
    ]);
    for c in &state.tunnels.classes {
        let via = match (c.inner_subnet, c.sdwan_next_hop) {
            (Some(s), _) => format!("wireguard {s}"),
            (None, Some(h)) => format!("sd-wan edge {h}"),
            (None, None) => "main table".into(),
        };
        let peers = c
            .peers
            .iter()
            .map(|p| format!("{} {} -> {}", p.cluster, p.endpoint, p.address))
            .collect::<Vec<_>>()
            .join(", ");
        tunnels.row(vec![
            c.class.clone(),
            c.wan_port.to_string(),
            format!("{}-{}", c.ingress_ports.0, c.ingress_ports.1),
            c.local_address.to_string(),
            via,
            peers,
        ]);
    }
    section(
        &mut out,
        &format!("TUNNELS ({:?})", state.tunnels.mode).to_uppercase(),
        &tunnels,
    );

    let mut problems = Table::new(&["SEVERITY", "PROBLEM"]);
    for p in &state.problems {
        problems.row(vec![
            match p.severity {
                Severity::Error => "error".into(),
                Severity::Warning => "warning".into(),
            },
            p.to_string(),
        ]);
    }
    section(&mut out, "PROBLEMS", &problems);
    escape_controls(&out, true).into_owned()
}

/// Every CRD mcwan uses, as `mcwan crds` prints them (`mcwan diagnose` checks the same list).
pub fn crds(
) -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    let mut cluster_property = crd::ClusterProperty::crd();
    // about.k8s.io is a protected group (KEP-1111): kube-apiserver refuses a CRD in it without
    // the approval annotation, which for ClusterProperty names KEP-2149's API review.
    cluster_property
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            "api-approved.kubernetes.io".to_owned(),
            "https://github.com/kubernetes/enhancements/pull/3084".to_owned(),
        );
    [
        crd::ServiceExport::crd(),
        crd::ServiceImport::crd(),
        crd::WanPolicy::crd(),
        crd::WanImport::crd(),
        crd::WanRoute::crd(),
        cluster_property,
    ]
    .into()
}

/// The CRDs as one multi-document YAML stream.
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for c in crds() {
        let mut c = serde_json::to_value(c)
            .map_err(<serde_saphyr::SerializeError as serde::ser::Error>::custom)?;
        drop_unsigned_formats(&mut c);
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&c)?);
    }
    Ok(out)
}

/// Removes the `format: uint16`-style formats the Rust types' schemas carry: they are not
/// OpenAPI formats Kubernetes knows, and kube-apiserver warns about each on every apply. The
/// range they stood for is kept as `minimum`/`maximum`, so the API server refuses a value the
/// type could not hold (which would otherwise be accepted and fail to decode in the gateway).
fn drop_unsigned_formats(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            let format = map.get("format").and_then(serde_json::Value::as_str);
            if let Some(max) = format.and_then(|f| match f {
                "uint8" => Some(u64::from(u8::MAX)),
                "uint16" => Some(u64::from(u16::MAX)),
                "uint32" => Some(u64::from(u32::MAX)),
                "uint64" | "uint" => Some(u64::MAX),
                _ => None,
            }) {
                map.remove("format");
                map.entry("minimum").or_insert(serde_json::json!(0));
                map.entry("maximum").or_insert(serde_json::json!(max));
            }
            map.values_mut().for_each(drop_unsigned_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_unsigned_formats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every field of every CRD schema is described for people (what `kubectl explain` prints).
    #[test]
    fn every_crd_field_is_described() {
        fn walk(path: &str, schema: &Value, missing: &mut Vec<String>) {
            match schema.get("description").and_then(Value::as_str) {
                Some(d) if !d.trim().is_empty() && !d.starts_with("Auto-generated") => {}
                _ => missing.push(path.to_owned()),
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, p) in props {
                    // The standard object fields are Kubernetes' own.
                    if path.is_empty()
                        && ["apiVersion", "kind", "metadata"].contains(&name.as_str())
                    {
                        continue;
                    }
                    walk(&format!("{path}.{name}"), p, missing);
                }
            }
            // The items of a list of objects are described too (the list of scalars is enough).
            if let Some(items) = schema
                .get("items")
                .filter(|i| i.get("properties").is_some())
            {
                walk(&format!("{path}[]"), items, missing);
            }
        }
        let yaml = super::crds_yaml().unwrap();
        let mut missing = Vec::new();
        for crd in serde_saphyr::from_multiple::<Value>(&yaml).unwrap() {
            let name = crd["metadata"]["name"].as_str().unwrap_or("?").to_owned();
            for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
                let schema = &version["schema"]["openAPIV3Schema"];
                let mut at = Vec::new();
                walk("", schema, &mut at);
                missing.extend(at.into_iter().map(|p| format!("{name}: {p}")));
            }
        }
        assert!(
            missing.is_empty(),
            "fields without a description:\n{}",
            missing.join("\n")
        );
    }
}
