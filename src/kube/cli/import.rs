//! `mcwan import SERVICE/NAMESPACE --ingress-gw ADDRESS [--wan-policy P] [--port ...]` and
//! `mcwan unimport SERVICE/NAMESPACE`: a service imported from a given ingress gateway, for
//! clusters that do not watch each other. They write and delete the service's `WANImport`: in
//! the cluster of the kubeconfig context, or with `--catalog DIR --cluster-id ID` as a manifest
//! in the static catalog (`DIR/ID/wanimport.<namespace>.<name>.yaml`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

use super::{block_on, choose_reading, read_target, resolve_target, Reading};
use crate::crd;
use crate::kube::{local_client, CLI_FIELD_MANAGER};
use crate::model::{Protocol, ServiceKey};

#[derive(Debug, Args)]
pub struct ImportCmd {
    #[command(flatten)]
    pub service: super::ServiceArg,
    /// The exporting gateway's address: the GW_IP_ADDRESS `mcwan status SERVICE/NAMESPACE`
    /// prints on the exporting cluster (or that gateway's WAN address).
    #[arg(long = "ingress-gw", value_name = "GW_IP_ADDRESS")]
    pub ingress_gw: IpAddr,
    /// The WANPolicy that carries the service: its name, tunnel class, or a unique prefix or
    /// suffix of its name (`high` for sd-wan-priority-high). Default: the cluster's default
    /// policy.
    #[arg(long)]
    pub wan_policy: Option<String>,
    /// A port of the service, `[NAME=]PORT[/PROTOCOL][:INGRESS_PORT]` (`http=8080:31111`);
    /// repeat for each. INGRESS_PORT may be left out when the policy owns one port. Default:
    /// the ports of the Service of the same name in this cluster.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<String>,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct UnimportCmd {
    #[command(flatten)]
    pub service: super::ServiceArg,
    #[command(flatten)]
    pub target: Target,
}

/// Where the WANImport lives: a Kubernetes cluster, or a static catalog.
#[derive(Debug, Args)]
pub struct Target {
    /// The kubeconfig context (default: the current context).
    #[arg(long, env = "MCWAN_KUBE_CONTEXT", conflicts_with = "catalog")]
    pub context: Option<String>,
    /// Write to this static catalog instead of Kubernetes (with --cluster-id).
    #[arg(long, requires = "cluster_id")]
    pub catalog: Option<PathBuf>,
    /// The importing cluster, in the static catalog.
    #[arg(long, requires = "catalog")]
    pub cluster_id: Option<String>,
}

/// One `--port`.
fn parse_port(arg: &str) -> anyhow::Result<crd::WanImportPort> {
    let bad = || {
        anyhow::anyhow!(
            "--port {arg:?} is not [NAME=]PORT[/PROTOCOL][:INGRESS_PORT] (as in http=8080:31111)"
        )
    };
    let (name, rest) = match arg.split_once('=') {
        Some((name, rest)) => (Some(name.to_owned()), rest),
        None => (None, arg),
    };
    let (rest, ingress) = match rest.split_once(':') {
        Some((rest, ingress)) => (rest, Some(ingress.parse::<u16>().map_err(|_| bad())?)),
        None => (rest, None),
    };
    let (port, protocol) = match rest.split_once('/') {
        Some((port, protocol)) => {
            let p = Protocol::parse(Some(&protocol.to_ascii_uppercase())).ok_or_else(bad)?;
            (port, Some(p.as_str().to_owned()))
        }
        None => (rest, None),
    };
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok(crd::WanImportPort {
        name,
        protocol,
        port: i32::from(port),
        ingress_port: ingress.map(i32::from),
    })
}

/// The WANImport object, checked as the gateway will read it.
fn object(
    key: &ServiceKey,
    gw: IpAddr,
    policy: Option<String>,
    ports: Vec<crd::WanImportPort>,
) -> anyhow::Result<crd::WanImport> {
    let mut import = crd::WanImport::new(
        &key.name,
        crd::WanImportSpec {
            ingress_gateway: gw.to_string(),
            wan_policy: policy,
            ports,
        },
    );
    import.metadata.namespace = Some(key.namespace.clone());
    crate::convert::wan_import(&import).map_err(|e| anyhow::anyhow!("WANImport {key}: {e}"))?;
    Ok(import)
}

/// The ports of a Service, as a WANImport lists them.
fn ports_of(service: &crate::model::Service) -> Vec<crd::WanImportPort> {
    service
        .ports
        .iter()
        .map(|p| crd::WanImportPort {
            name: (!p.name.is_empty()).then(|| p.name.clone()),
            protocol: Some(p.protocol.as_str().to_owned()),
            port: i32::from(p.port),
            ingress_port: None,
        })
        .collect()
}

fn no_ports(key: &ServiceKey) -> anyhow::Error {
    anyhow::anyhow!(
        "no Service {key} here to take the ports from: give them with --port (`mcwan status -n {} {}` on the exporting cluster prints the whole import command)",
        key.namespace,
        key.name
    )
}

/// Writes the WANImport.
pub fn import(cmd: ImportCmd) -> anyhow::Result<ExitCode> {
    let reading = read_target(&cmd.service.service, cmd.service.namespace.as_deref())?;
    let ports = cmd
        .ports
        .iter()
        .map(|p| parse_port(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    match (&cmd.target.catalog, &cmd.target.cluster_id) {
        (Some(dir), Some(cluster)) => import_static(dir, cluster, reading, &cmd, ports),
        _ => block_on(import_kube(cmd, ports)),
    }
}

/// The service a reading names in a static catalog: `NAME` alone is in `default`; of A/B's two
/// readings, the one whose namespace `exists`.
fn offline_key(
    arg: &str,
    reading: Reading,
    exists: impl Fn(&ServiceKey) -> bool,
) -> anyhow::Result<ServiceKey> {
    match reading {
        Reading::Name { namespace, name } => Ok(ServiceKey::new(
            namespace.unwrap_or_else(|| "default".to_owned()),
            name,
        )),
        Reading::Either { kubectl, mcwanctl } => choose_reading(arg, kubectl, mcwanctl, exists),
    }
}

async fn import_kube(
    cmd: ImportCmd,
    mut ports: Vec<crd::WanImportPort>,
) -> anyhow::Result<ExitCode> {
    let client = local_client(cmd.target.context.as_deref()).await?;
    let key = resolve_target(
        &client,
        &cmd.service.service,
        cmd.service.namespace.as_deref(),
    )
    .await?;
    let policy = match &cmd.wan_policy {
        Some(arg) => Some(super::resolve_policy(&client, arg).await?),
        None => None,
    };
    if ports.is_empty() {
        let services: Api<Service> = Api::namespaced(client.clone(), &key.namespace);
        let service = services
            .get_opt(&key.name)
            .await?
            .ok_or_else(|| no_ports(&key))?;
        let service =
            crate::convert::service(&service).map_err(|e| anyhow::anyhow!("Service {key}: {e}"))?;
        ports = ports_of(&service);
    }
    let import = object(&key, cmd.ingress_gw, policy.clone(), ports)?;
    let api: Api<crd::WanImport> = Api::namespaced(client, &key.namespace);
    api.patch(
        &key.name,
        &PatchParams::apply(CLI_FIELD_MANAGER).force(),
        &Patch::Apply(&import),
    )
    .await
    .with_context(|| format!("cannot write WANImport {key}"))?;
    print_imported(&key, cmd.ingress_gw, policy.as_deref());
    Ok(ExitCode::SUCCESS)
}

fn print_imported(key: &ServiceKey, gw: IpAddr, policy: Option<&str>) {
    let policy = policy.map_or_else(
        || "the cluster's default WANPolicy".to_owned(),
        |p| format!("WANPolicy {p}"),
    );
    println!(
        "imported {key} from ingress gateway {gw} with {policy}: {}.{}.svc.clusterset.local",
        key.name, key.namespace
    );
}

/// The manifest of `key`'s WANImport in cluster `cluster` of the static catalog `dir`.
fn manifest_path(dir: &Path, cluster: &str, key: &ServiceKey) -> PathBuf {
    dir.join(cluster)
        .join(format!("wanimport.{}.{}.yaml", key.namespace, key.name))
}

fn import_static(
    dir: &Path,
    cluster: &str,
    reading: Reading,
    cmd: &ImportCmd,
    mut ports: Vec<crd::WanImportPort>,
) -> anyhow::Result<ExitCode> {
    let catalog = crate::catalog::load_dir(dir)?;
    let objects = catalog.clusters.get(cluster).with_context(|| {
        format!(
            "cluster {cluster:?} is not in {}",
            dir.join("clusterset.yaml").display()
        )
    })?;
    // A namespace is there when the cluster's catalog has it (a Namespace or objects in it).
    let key = &offline_key(&cmd.service.service, reading, |k| {
        objects.has_namespace(&k.namespace)
    })?;
    let policy = match &cmd.wan_policy {
        Some(arg) => {
            let known: Vec<(String, String)> = objects
                .wan_policies
                .values()
                .map(|p| (p.name.clone(), p.tunnel.clone()))
                .collect();
            Some(crate::policies::resolve_name(arg, &known).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    if ports.is_empty() {
        ports = ports_of(objects.services.get(key).ok_or_else(|| no_ports(key))?);
    }
    let import = object(key, cmd.ingress_gw, policy.clone(), ports)?;
    let path = manifest_path(dir, cluster, key);
    let text = format!(
        "# Written by `mcwan import`; `mcwan unimport -n {} {} --catalog ... --cluster-id {cluster}` removes it.\n{}",
        key.namespace,
        key.name,
        serde_saphyr::to_string(&import)?
    );
    crate::files::replace_atomically(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    print_imported(key, cmd.ingress_gw, policy.as_deref());
    Ok(ExitCode::SUCCESS)
}

/// Deletes the WANImport.
pub fn unimport(cmd: UnimportCmd) -> anyhow::Result<ExitCode> {
    let reading = read_target(&cmd.service.service, cmd.service.namespace.as_deref())?;
    let not_imported = |key: &ServiceKey| {
        anyhow::anyhow!(
            "{key} has no WANImport here (imports of watched clusters are withdrawn by unexporting the service there)"
        )
    };
    if let (Some(dir), Some(cluster)) = (&cmd.target.catalog, &cmd.target.cluster_id) {
        // The reading whose WANImport is there; when neither is, the one whose namespace is.
        let key = offline_key(&cmd.service.service, reading.clone(), |k| {
            manifest_path(dir, cluster, k).exists()
        })
        .or_else(|_| {
            let catalog = crate::catalog::load_dir(dir)?;
            offline_key(&cmd.service.service, reading, |k| {
                catalog
                    .clusters
                    .get(cluster)
                    .is_some_and(|o| o.has_namespace(&k.namespace))
            })
        })?;
        let path = manifest_path(dir, cluster, &key);
        return match std::fs::remove_file(&path) {
            Ok(()) => {
                println!("unimported {key}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_imported(&key)),
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("cannot remove {}", path.display())))
            }
        };
    }
    block_on(async move {
        let client = local_client(cmd.target.context.as_deref()).await?;
        let key = resolve_target(
            &client,
            &cmd.service.service,
            cmd.service.namespace.as_deref(),
        )
        .await?;
        let api: Api<crd::WanImport> = Api::namespaced(client, &key.namespace);
        match api.delete(&key.name, &DeleteParams::default()).await {
            Ok(_) => {
                println!("unimported {key}");
                Ok(ExitCode::SUCCESS)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Err(not_imported(&key)),
            Err(e) => Err(e.into()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_name_port_protocol_and_ingress_port() {
        let p = parse_port("http=8080:31111").unwrap();
        assert_eq!(
            (p.name.as_deref(), p.port, p.protocol, p.ingress_port),
            (Some("http"), 8080, None, Some(31111))
        );
        let p = parse_port("53/udp").unwrap();
        assert_eq!(
            (p.name, p.port, p.protocol.as_deref(), p.ingress_port),
            (None, 53, Some("UDP"), None)
        );
        for bad in ["", "http", "http=", "80:", "80/icmp", "70000", "a=80:99999"] {
            let e = parse_port(bad).unwrap_err().to_string();
            assert!(
                e.contains("[NAME=]PORT[/PROTOCOL][:INGRESS_PORT]"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_object_is_refused_as_the_gateway_would_refuse_it() {
        let key = ServiceKey::new("secure", "payment");
        let two_unnamed = vec![parse_port("80").unwrap(), parse_port("81").unwrap()];
        let e = object(&key, "192.0.2.1".parse().unwrap(), None, two_unnamed)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("WANImport secure/payment") && e.contains("spec.ports[0].name"),
            "{e}"
        );
    }
}
