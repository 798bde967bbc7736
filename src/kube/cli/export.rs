//! `mcwan export SERVICE/NAMESPACE [--wan-policy NAME] [--affinity A] [--cluster-priority P]`
//! and `mcwan unexport SERVICE/NAMESPACE`.

use std::process::ExitCode;

use clap::Args;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::{block_on, resolve_target};
use crate::crd::{self, AFFINITY_ANNOTATION, CLUSTER_PRIORITY_ANNOTATION, WAN_POLICY_ANNOTATION};
use crate::kube::{local_client, CLI_FIELD_MANAGER};
use crate::model::Affinity;

#[derive(Debug, Args)]
pub struct ExportCmd {
    #[command(flatten)]
    pub service: super::ServiceArg,
    /// The WANPolicy that carries the service (the mcw.l7mp.io/mc-wan-policy annotation): its
    /// name, tunnel class, or a unique prefix or suffix of its name (`high` for
    /// sd-wan-priority-high). Without it the cluster's default policy applies.
    #[arg(long)]
    pub wan_policy: Option<String>,
    /// Which clusters importers prefer (the mcw.l7mp.io/affinity annotation).
    #[arg(long, value_enum)]
    pub affinity: Option<Affinity>,
    /// The exporting clusters' ranking, lower first: `cluster-1=1,cluster-3=2` (the
    /// mcw.l7mp.io/cluster-priority annotation).
    #[arg(long)]
    pub cluster_priority: Option<String>,
    /// The kubeconfig context (default: the current context).
    #[arg(long, env = "MCWAN_KUBE_CONTEXT")]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnexportCmd {
    #[command(flatten)]
    pub service: super::ServiceArg,
    /// The kubeconfig context (default: the current context).
    #[arg(long, env = "MCWAN_KUBE_CONTEXT")]
    pub context: Option<String>,
}

/// Creates or updates the ServiceExport of a Service that exists, with a WANPolicy that exists.
pub fn export(cmd: ExportCmd) -> anyhow::Result<ExitCode> {
    block_on(async move {
        super::read_target(&cmd.service.service, cmd.service.namespace.as_deref())?;
        if let Some(ranking) = &cmd.cluster_priority {
            crate::convert::cluster_priority(ranking)
                .map_err(|why| anyhow::anyhow!("--cluster-priority: {why}"))?;
        }
        let client = local_client(cmd.context.as_deref()).await?;
        let key = resolve_target(
            &client,
            &cmd.service.service,
            cmd.service.namespace.as_deref(),
        )
        .await?;
        let services: Api<Service> = Api::namespaced(client.clone(), &key.namespace);
        if services.get_opt(&key.name).await?.is_none() {
            anyhow::bail!("Service {key} does not exist: create the Service before exporting it");
        }
        let policy = match &cmd.wan_policy {
            Some(arg) => Some(super::resolve_policy(&client, arg).await?),
            None => None,
        };
        let mut annotations = serde_json::Map::new();
        if let Some(policy) = &policy {
            annotations.insert(WAN_POLICY_ANNOTATION.into(), json!(policy));
        }
        if let Some(affinity) = cmd.affinity {
            annotations.insert(AFFINITY_ANNOTATION.into(), json!(affinity.to_string()));
        }
        if let Some(ranking) = &cmd.cluster_priority {
            annotations.insert(CLUSTER_PRIORITY_ANNOTATION.into(), json!(ranking));
        }
        let mut metadata = json!({"name": key.name, "namespace": key.namespace});
        if !annotations.is_empty() {
            metadata["annotations"] = serde_json::Value::Object(annotations);
        }
        let body = json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1",
            "kind": "ServiceExport",
            "metadata": metadata,
            "spec": {},
        });
        let exports: Api<crd::ServiceExport> = Api::namespaced(client, &key.namespace);
        exports
            .patch(
                &key.name,
                &PatchParams::apply(CLI_FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await?;
        match &policy {
            Some(p) => println!("exported {key} with WANPolicy {p}"),
            None => println!("exported {key} with the gateway's default WANPolicy"),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Deletes the ServiceExport.
pub fn unexport(cmd: UnexportCmd) -> anyhow::Result<ExitCode> {
    block_on(async move {
        super::read_target(&cmd.service.service, cmd.service.namespace.as_deref())?;
        let client = local_client(cmd.context.as_deref()).await?;
        let key = resolve_target(
            &client,
            &cmd.service.service,
            cmd.service.namespace.as_deref(),
        )
        .await?;
        let exports: Api<crd::ServiceExport> = Api::namespaced(client, &key.namespace);
        match exports.delete(&key.name, &DeleteParams::default()).await {
            Ok(_) => {
                println!("unexported {key}");
                Ok(ExitCode::SUCCESS)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                anyhow::bail!("{key} is not exported (it has no ServiceExport)")
            }
            Err(e) => Err(e.into()),
        }
    })
}
