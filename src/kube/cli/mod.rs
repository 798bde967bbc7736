//! The Kubernetes side of the command line: the `mcwan gateway --kube` options, and the
//! operator's verbs `mcwan export`, `mcwan unexport`, `mcwan import`, `mcwan unimport` and
//! `mcwan status`, and `mcwan join`, `mcwan diagnose`, `mcwan gather`, which talk to the API
//! server of the current kubeconfig context (`KUBECONFIG`, `--context`).

mod diagnose;
mod export;
mod gather;
mod import;
mod join;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

pub use diagnose::{diagnose, DiagnoseCmd};
pub use export::{export, unexport, ExportCmd, UnexportCmd};
pub use gather::{gather, GatherCmd};
pub use import::{import, unimport, ImportCmd, UnimportCmd};
pub use join::{join, JoinCmd};
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
    /// that have not answered (a duration: 10s, 1m; a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = crate::cli::parse_seconds, value_name = "DURATION", env = "MCWAN_PEER_SYNC_TIMEOUT")]
    pub peer_sync_timeout: std::time::Duration,
}

/// The service a verb acts on, as kubectl names objects (`-n NAMESPACE NAME` or
/// `NAMESPACE/NAME`), or in mcwanctl's order (`SERVICE/NAMESPACE`).
#[derive(Clone, Debug, Default, Args)]
pub struct ServiceArg {
    /// The service: NAME with -n NAMESPACE, or NAMESPACE/NAME as kubectl writes it.
    /// SERVICE/NAMESPACE (mcwanctl's order) is read too: of the two readings of A/B, the one
    /// whose namespace exists is taken; when both could be meant, -n decides.
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// The service's namespace (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// How a service argument reads before anything is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// `-n NAMESPACE NAME`, or `NAME` alone (`namespace` None: the context's).
    Name {
        namespace: Option<String>,
        name: String,
    },
    /// `A/B`: kubectl's NAMESPACE/NAME or mcwanctl's SERVICE/NAMESPACE.
    Either {
        kubectl: ServiceKey,
        mcwanctl: ServiceKey,
    },
}

fn label(arg: &str, what: &str, value: &str) -> anyhow::Result<()> {
    if crate::validate::is_dns_label(value) {
        Ok(())
    } else {
        anyhow::bail!(
            "{arg:?}: {what} {value:?} is not a DNS label (lower-case letters, digits and '-')"
        )
    }
}

/// Reads `service` (with `-n namespace`) without looking anything up.
pub(crate) fn read_target(service: &str, namespace: Option<&str>) -> anyhow::Result<Reading> {
    match (service.split_once('/'), namespace) {
        (None, namespace) => {
            label(service, "the service name", service)?;
            if let Some(ns) = namespace {
                label(ns, "the namespace", ns)?;
            }
            Ok(Reading::Name {
                namespace: namespace.map(str::to_owned),
                name: service.to_owned(),
            })
        }
        (Some(_), Some(ns)) => anyhow::bail!(
            "{service:?} with -n {ns}: give the service name alone with -n, or NAMESPACE/NAME without it"
        ),
        (Some((a, b)), None) => {
            label(service, "the first part", a)?;
            label(service, "the second part", b)?;
            Ok(Reading::Either {
                kubectl: ServiceKey::new(a, b),
                mcwanctl: ServiceKey::new(b, a),
            })
        }
    }
}

/// Picks the reading of `A/B` whose namespace `exists`; refuses when none or both do (unless
/// both readings are the same service).
pub(crate) fn choose_reading(
    arg: &str,
    kubectl: ServiceKey,
    mcwanctl: ServiceKey,
    exists: impl Fn(&ServiceKey) -> bool,
) -> anyhow::Result<ServiceKey> {
    if kubectl == mcwanctl {
        return Ok(kubectl);
    }
    match (exists(&kubectl), exists(&mcwanctl)) {
        (true, false) => Ok(kubectl),
        (false, true) => Ok(mcwanctl),
        (both, _) => anyhow::bail!(
            "{arg:?} could be service {} in namespace {} or service {} in namespace {} ({}): say which with -n {} {} or -n {} {}",
            kubectl.name,
            kubectl.namespace,
            mcwanctl.name,
            mcwanctl.namespace,
            if both { "both are there" } else { "neither is there" },
            kubectl.namespace,
            kubectl.name,
            mcwanctl.namespace,
            mcwanctl.name,
        ),
    }
}

/// The service `service` (`-n namespace`) names in the cluster of `client`: A/B is resolved by
/// which of A and B is a namespace there, then by which of the two Services exists.
pub(crate) async fn resolve_target(
    client: &kube::Client,
    service: &str,
    namespace: Option<&str>,
) -> anyhow::Result<ServiceKey> {
    use k8s_openapi::api::core::v1::{Namespace, Service};
    match read_target(service, namespace)? {
        Reading::Name { namespace, name } => Ok(ServiceKey::new(
            namespace.unwrap_or_else(|| client.default_namespace().to_owned()),
            name,
        )),
        Reading::Either { kubectl, mcwanctl } => {
            let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
            let mut present = std::collections::BTreeMap::new();
            for key in [&kubectl, &mcwanctl] {
                let ns = namespaces.get_opt(&key.namespace).await.with_context(|| {
                    format!("cannot tell how to read {service:?}: reading namespace {} failed (give -n NAMESPACE NAME)", key.namespace)
                })?;
                present.insert(key.clone(), ns.is_some());
            }
            if present.values().all(|p| *p) {
                // Both namespaces exist: the Service that exists decides.
                for key in [&kubectl, &mcwanctl] {
                    let services: kube::Api<Service> =
                        kube::Api::namespaced(client.clone(), &key.namespace);
                    let found = services.get_opt(&key.name).await?.is_some();
                    present.insert(key.clone(), found);
                }
            }
            choose_reading(service, kubectl, mcwanctl, |k| {
                present.get(k).copied().unwrap_or(false)
            })
        }
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
    fn a_target_reads_as_kubectl_names_objects_or_in_mcwanctl_order() {
        assert_eq!(
            read_target("payment", Some("secure")).unwrap(),
            Reading::Name {
                namespace: Some("secure".into()),
                name: "payment".into()
            }
        );
        assert_eq!(
            read_target("secure/payment", None).unwrap(),
            Reading::Either {
                kubectl: ServiceKey::new("secure", "payment"),
                mcwanctl: ServiceKey::new("payment", "secure"),
            }
        );
        for (arg, ns) in [
            ("a/b/c", None),
            ("a/b", Some("c")),
            ("Pay", None),
            ("p", Some("N_S")),
        ] {
            assert!(read_target(arg, ns).is_err(), "{arg} -n {ns:?}");
        }
    }

    #[test]
    fn the_reading_whose_namespace_exists_is_taken() {
        let k = ServiceKey::new("secure", "payment");
        let m = ServiceKey::new("payment", "secure");
        let only = |ns: &'static str| move |key: &ServiceKey| key.namespace == ns;
        assert_eq!(
            choose_reading("x", k.clone(), m.clone(), only("secure")).unwrap(),
            k
        );
        assert_eq!(
            choose_reading("x", k.clone(), m.clone(), only("payment")).unwrap(),
            m
        );
        let both = choose_reading("secure/payment", k.clone(), m.clone(), |_| true).unwrap_err();
        assert!(both.to_string().contains("-n secure payment"), "{both}");
        assert!(choose_reading("x", k.clone(), m, |_| false).is_err());
        assert_eq!(
            choose_reading("x", k.clone(), k.clone(), |_| false).unwrap(),
            k
        );
    }
}
