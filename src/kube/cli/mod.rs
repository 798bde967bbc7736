//! The Kubernetes side of the command line: the `mcwan gateway --kube` options, and the
//! operator's verbs `mcwan export`, `mcwan unexport`, `mcwan import`, `mcwan unimport` and
//! `mcwan status`, which talk to the API server of the current kubeconfig context
//! (`KUBECONFIG`, `--context`).

mod export;
mod import;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

pub use export::{export, unexport, ExportCmd, UnexportCmd};
pub use import::{import, unimport, ImportCmd, UnimportCmd};
pub use status::{status, ExportReport, StatusArgs};

use crate::model::ServiceKey;

/// `mcwan gateway` options of Kubernetes mode.
#[derive(Clone, Debug, Default, Args)]
pub struct KubeArgs {
    /// Read the catalog from Kubernetes: this cluster's API server (KUBECONFIG, or in-cluster)
    /// and each peer's (read-only); write ServiceImports, EndpointSlices, conditions, events.
    #[arg(long, env = "MCWAN_KUBE", conflicts_with = "catalog")]
    pub kube: bool,
    /// The kubeconfig context of this cluster (default: the current context).
    #[arg(long, env = "MCWAN_KUBE_CONTEXT", requires = "kube")]
    pub context: Option<String>,
    /// The clusterset file (the clusterset.yaml schema: clusters, indexes, gateway addresses),
    /// usually a mounted ConfigMap.
    #[arg(long, env = "MCWAN_CLUSTERSET", requires = "kube")]
    pub clusterset: Option<PathBuf>,
    /// A directory with one kubeconfig per peer cluster, each named by cluster ID (usually a
    /// mounted Secret). Peers are only read.
    #[arg(long, env = "MCWAN_PEER_KUBECONFIGS", requires = "kube")]
    pub peer_kubeconfigs: Option<PathBuf>,
    /// On start, how long to wait for every peer to be read before planning without the ones
    /// that have not answered, in seconds.
    #[arg(long, default_value_t = 10, env = "MCWAN_PEER_SYNC_TIMEOUT")]
    pub peer_sync_timeout: u64,
}

/// Parses the `<service>/<namespace>` argument of the verbs.
pub fn parse_target(arg: &str) -> anyhow::Result<ServiceKey> {
    match arg.split_once('/') {
        Some((name, namespace))
            if crate::validate::is_dns_label(name)
                && crate::validate::is_dns_label(namespace) =>
        {
            Ok(ServiceKey::new(namespace, name))
        }
        _ => anyhow::bail!(
            "{arg:?} is not SERVICE/NAMESPACE (two DNS labels, the service first, as in payment/secure)"
        ),
    }
}

/// The WANPolicy of the cluster that `--wan-policy arg` means ([`crate::policies::resolve_name`]).
pub(crate) async fn resolve_policy(client: &kube::Client, arg: &str) -> anyhow::Result<String> {
    let policies: kube::Api<crate::crd::WanPolicy> = kube::Api::all(client.clone());
    let known: Vec<(String, String)> = policies
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|p| Some((p.metadata.name?, p.spec.tunnel)))
        .collect();
    crate::policies::resolve_name(arg, &known).map_err(anyhow::Error::msg)
}

/// Runs `f` on a small runtime of its own: the verbs are one-shot clients.
pub(crate) fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_service_then_namespace() {
        assert_eq!(
            parse_target("payment/secure").unwrap(),
            ServiceKey::new("secure", "payment")
        );
        assert!(parse_target("payment").is_err());
        assert!(parse_target("a/b/c").is_err());
    }
}
