//! `mcwan status [SERVICE/NAMESPACE]` against Kubernetes: per ServiceExport its conditions, its
//! WAN policy, the ClusterSetIP of the local ServiceImport, the clusters that import it (from
//! the peers' ServiceImports when `--peer-kubeconfigs` is given and they answer), the clusters
//! backing the local import, and the gateway's ingress from the published slice.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::Client;
use serde::Serialize;

use super::{block_on, resolve_target};
use crate::cli::Output;
use crate::crd::{self, LABEL_SERVICE_NAME, WAN_POLICY_ANNOTATION};
use crate::kube::cluster;
use crate::kube::{local_client, LABEL_SLICE_ROLE, SLICE_INGRESS};
use crate::model::ServiceKey;

/// How long a peer may take to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Default, Args)]
pub struct StatusArgs {
    /// One export: NAME with -n NAMESPACE, or NAMESPACE/NAME (SERVICE/NAMESPACE, mcwanctl's
    /// order, is read too). Default: every export.
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
    /// The export's namespace (with SERVICE).
    #[arg(short = 'n', long, requires = "service")]
    pub namespace: Option<String>,
    /// The kubeconfig context (default: the current context).
    #[arg(long, env = "MCWAN_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// A directory of peer kubeconfigs named by cluster ID, to ask each peer whether it imports.
    #[arg(long, env = "MCWAN_PEER_KUBECONFIGS")]
    pub peer_kubeconfigs: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConditionReport {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressReport {
    pub address: String,
    /// The ingress port.
    pub port: i32,
    pub protocol: String,
    pub name: String,
    /// The service port it carries (from the Service, by port name and protocol).
    pub service_port: Option<i32>,
}

/// One export as `mcwan status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportReport {
    pub service: ServiceKey,
    pub wan_policy: Option<String>,
    pub conditions: Vec<ConditionReport>,
    pub cluster_set_ip: Option<String>,
    /// Peers holding a ServiceImport of the service (`None` when no peer could be asked).
    pub imported_by: Option<Vec<String>>,
    /// Peers that could not be asked.
    pub unreachable_peers: Vec<String>,
    /// The clusters backing the local ServiceImport (`status.clusters`).
    pub backed_by: Vec<String>,
    pub ingress: Vec<IngressReport>,
    /// The exporting gateway's address, which `mcwan import --ingress-gw` takes.
    pub gw_ip_address: Option<String>,
    /// The WAN policy that carries the export, as the gateway published it.
    pub published_wan_policy: Option<String>,
}

impl ExportReport {
    /// The command that imports this export into a cluster that does not watch this one.
    pub fn import_command(&self) -> Option<String> {
        let address = self.gw_ip_address.as_ref()?;
        let mut cmd = format!(
            "mcwan import -n {} {} --ingress-gw={address}",
            self.service.namespace, self.service.name
        );
        if let Some(policy) = self
            .published_wan_policy
            .as_ref()
            .or(self.wan_policy.as_ref())
        {
            cmd.push_str(&format!(" --wan-policy={policy}"));
        }
        for i in self.ingress.iter().filter(|i| &i.address == address) {
            let port = i.service_port?;
            cmd.push_str(" --port=");
            if !i.name.is_empty() {
                cmd.push_str(&format!("{}=", i.name));
            }
            cmd.push_str(&port.to_string());
            if i.protocol != "TCP" {
                cmd.push_str(&format!("/{}", i.protocol));
            }
            cmd.push_str(&format!(":{}", i.port));
        }
        Some(cmd)
    }

    fn condition(&self, type_: &str) -> String {
        self.conditions
            .iter()
            .find(|c| c.type_ == type_)
            .map_or_else(|| "-".to_owned(), |c| c.status.clone())
    }
}

/// Prints the exports of the current context (`--context`, `KUBECONFIG`).
pub fn status(args: StatusArgs, output: Output) -> anyhow::Result<ExitCode> {
    block_on(async move {
        if let Some(service) = &args.service {
            super::read_target(service, args.namespace.as_deref())?;
        }
        let client = local_client(args.context.as_deref()).await?;
        let target = match &args.service {
            Some(service) => {
                Some(resolve_target(&client, service, args.namespace.as_deref()).await?)
            }
            None => None,
        };
        let exports = match &target {
            Some(key) => {
                let api: Api<crd::ServiceExport> = Api::namespaced(client.clone(), &key.namespace);
                match api.get_opt(&key.name).await? {
                    Some(e) => vec![e],
                    None => anyhow::bail!("{key} is not exported (it has no ServiceExport)"),
                }
            }
            None => {
                let api: Api<crd::ServiceExport> = Api::all(client.clone());
                api.list(&ListParams::default()).await?.items
            }
        };
        let peers = match &args.peer_kubeconfigs {
            Some(dir) => {
                let (peers, errors) = cluster::peers(dir, "").await?;
                for e in errors {
                    eprintln!("warning: {e}");
                }
                peers
            }
            None => Vec::new(),
        };
        let mut reports = Vec::new();
        for export in &exports {
            let (Some(namespace), Some(name)) = (&export.metadata.namespace, &export.metadata.name)
            else {
                continue;
            };
            let key = ServiceKey::new(namespace.clone(), name.clone());
            reports.push(report(&client, &peers, export, key).await?);
        }
        reports.sort_by(|a, b| a.service.cmp(&b.service));
        match output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
            Output::Table => print!("{}", table(&reports)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn report(
    client: &Client,
    peers: &[cluster::Peer],
    export: &crd::ServiceExport,
    key: ServiceKey,
) -> anyhow::Result<ExportReport> {
    let imports: Api<crd::ServiceImport> = Api::namespaced(client.clone(), &key.namespace);
    let local_import = imports.get_opt(&key.name).await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &key.namespace);
    let published = slices
        .list(&ListParams::default().labels(&format!(
            "{LABEL_SLICE_ROLE}={SLICE_INGRESS},{LABEL_SERVICE_NAME}={}",
            key.name
        )))
        .await?
        .items;
    let services: Api<Service> = Api::namespaced(client.clone(), &key.namespace);
    let service_ports = services
        .get_opt(&key.name)
        .await?
        .and_then(|s| s.spec)
        .and_then(|s| s.ports)
        .unwrap_or_default();
    let mut ingress = Vec::new();
    let mut published_wan_policy = None;
    for slice in &published {
        published_wan_policy = published_wan_policy.or_else(|| {
            slice
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(WAN_POLICY_ANNOTATION))
                .filter(|p| !p.is_empty())
                .cloned()
        });
        for ep in slice.endpoints.iter().flatten() {
            for address in &ep.addresses {
                for p in slice.ports.iter().flatten() {
                    let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                    let name = p.name.clone().unwrap_or_default();
                    let service_port = service_ports
                        .iter()
                        .find(|sp| {
                            sp.name.clone().unwrap_or_default() == name
                                && sp.protocol.as_deref().unwrap_or("TCP") == protocol
                        })
                        .map(|sp| sp.port);
                    ingress.push(IngressReport {
                        address: address.clone(),
                        port: p.port.unwrap_or_default(),
                        protocol,
                        name,
                        service_port,
                    });
                }
            }
        }
    }
    let gw_ip_address = ingress.first().map(|i| i.address.clone());
    let mut imported_by = Vec::new();
    let mut unreachable_peers = Vec::new();
    for peer in peers {
        let api: Api<crd::ServiceImport> = Api::namespaced(peer.client.clone(), &key.namespace);
        match tokio::time::timeout(PEER_TIMEOUT, api.get_opt(&key.name)).await {
            Ok(Ok(Some(_))) => imported_by.push(peer.id.clone()),
            Ok(Ok(None)) => {}
            Ok(Err(_)) | Err(_) => unreachable_peers.push(peer.id.clone()),
        }
    }
    let asked = peers.len() > unreachable_peers.len();
    Ok(ExportReport {
        wan_policy: export
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(WAN_POLICY_ANNOTATION))
            .cloned(),
        conditions: export
            .status
            .iter()
            .flat_map(|s| s.conditions.iter())
            .map(|c| ConditionReport {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect(),
        cluster_set_ip: local_import
            .as_ref()
            .and_then(|i| i.spec.ips.first().cloned()),
        imported_by: asked.then_some(imported_by),
        unreachable_peers,
        backed_by: local_import
            .iter()
            .flat_map(|i| i.status.iter())
            .flat_map(|s| s.clusters.iter().map(|c| c.cluster.clone()))
            .collect(),
        ingress,
        gw_ip_address,
        published_wan_policy,
        service: key,
    })
}

/// The reports as a table, then the message of every condition that is not as it should be.
pub fn table(reports: &[ExportReport]) -> String {
    let mut rows = vec![[
        "SERVICE".to_owned(),
        "WAN POLICY".to_owned(),
        "VALID".to_owned(),
        "READY".to_owned(),
        "CONFLICT".to_owned(),
        "CLUSTERSET IP".to_owned(),
        "IMPORTED BY".to_owned(),
        "GW_IP_ADDRESS".to_owned(),
        "INGRESS PORTS".to_owned(),
    ]];
    let dash = |s: String| if s.is_empty() { "-".to_owned() } else { s };
    let cell = |s: String| crate::render::escape_controls(&s, false).into_owned();
    for r in reports {
        let imported = match &r.imported_by {
            Some(peers) => peers.join(","),
            // No peer could be asked: who backs the local import is what is known here.
            None if !r.backed_by.is_empty() => format!("(backed by {})", r.backed_by.join(",")),
            None => String::new(),
        };
        let ingress = r
            .ingress
            .iter()
            .map(|i| {
                let from = i.service_port.map(|p| format!("{p}->")).unwrap_or_default();
                format!("{from}{}/{}", i.port, i.protocol)
            })
            .collect::<Vec<_>>()
            .join(",");
        rows.push(
            [
                r.service.to_string(),
                dash(r.wan_policy.clone().unwrap_or_default()),
                r.condition("Valid"),
                r.condition("Ready"),
                r.condition("Conflict"),
                dash(r.cluster_set_ip.clone().unwrap_or_default()),
                dash(imported),
                dash(r.gw_ip_address.clone().unwrap_or_default()),
                dash(ingress),
            ]
            .map(cell),
        );
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for r in reports {
        for c in &r.conditions {
            let bad = match c.type_.as_str() {
                "Conflict" => c.status == "True",
                _ => c.status != "True",
            };
            if bad {
                out.push_str(&format!(
                    "{}: {}={} {}: {}\n",
                    r.service, c.type_, c.status, c.reason, c.message
                ));
            }
        }
        if let Some(cmd) = r.import_command() {
            out.push_str(&format!(
                "{}: to import it where this cluster is not watched: {cmd}\n",
                r.service
            ));
        }
        if !r.unreachable_peers.is_empty() {
            out.push_str(&format!(
                "{}: peers not answering: {}\n",
                r.service,
                r.unreachable_peers.join(",")
            ));
        }
    }
    crate::render::escape_controls(&out, true).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_one_row_per_export_and_what_is_wrong() {
        let report = ExportReport {
            service: ServiceKey::new("secure", "payment"),
            wan_policy: Some("gold".into()),
            conditions: vec![ConditionReport {
                type_: "Valid".into(),
                status: "False".into(),
                reason: "UnknownWANPolicy".into(),
                message: "WANPolicy \"gold\" does not exist".into(),
            }],
            cluster_set_ip: None,
            imported_by: None,
            unreachable_peers: vec![],
            backed_by: vec![],
            ingress: vec![],
            gw_ip_address: None,
            published_wan_policy: None,
        };
        let out = table(&[report]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("SERVICE"));
        assert!(lines[1].starts_with("secure/payment  gold"));
        assert!(lines[2].contains("Valid=False UnknownWANPolicy"));
    }
}
