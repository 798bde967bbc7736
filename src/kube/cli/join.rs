//! `mcwan join --context A --peer-context B`: lets cluster B's gateway watch cluster A.
//!
//! In A: the peer reader of `deploy/base/peer-reader.yaml` (Namespace `mcwan-system`,
//! ServiceAccount, its long-lived token Secret, the read-only ClusterRole and its binding), the
//! same objects `site.yml` applies from the base. In B: A's kubeconfig under key `<A's cluster
//! ID>` of Secret `mcwan-system/mcwan-peers`, the directory the gateway's `--peer-kubeconfigs`
//! reads, rendered as the Ansible role's `peer-kubeconfig.yaml.j2` renders it. Everything is a
//! server-side apply, so a second run changes nothing and says `unchanged`; `--dry-run` asks
//! the API servers what would change and prints the objects (never the token).

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::block_on;
use crate::kube::{cluster, local_client, CLI_FIELD_MANAGER};

/// The namespace of every mcwan object.
pub const NAMESPACE: &str = "mcwan-system";
/// The peer reader's ServiceAccount, ClusterRole and ClusterRoleBinding.
pub const PEER_READER: &str = "mcwan-peer-reader";
/// The peer reader's token Secret.
pub const PEER_READER_TOKEN: &str = "mcwan-peer-reader-token";
/// The Secret of the peers' kubeconfigs, one key per peer cluster ID.
pub const PEERS_SECRET: &str = "mcwan-peers";
/// The gateway's DaemonSet.
pub const GATEWAY_DAEMONSET: &str = "mcwan-gateway";
/// What the base's kustomization labels every object with.
const PART_OF: (&str, &str) = ("app.kubernetes.io/part-of", "mcwan");

const NAMESPACE_YAML: &str = include_str!("../../../deploy/base/namespace.yaml");
const PEER_READER_YAML: &str = include_str!("../../../deploy/base/peer-reader.yaml");

#[derive(Debug, Args)]
pub struct JoinCmd {
    /// The kubeconfig context of the cluster to be watched (A): where the peer reader's
    /// read-only credentials are made (default: the current context).
    #[arg(long, env = "MCWAN_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// The kubeconfig context of the cluster whose gateway watches A (B): where A's kubeconfig
    /// is stored, in Secret mcwan-system/mcwan-peers.
    #[arg(long)]
    pub peer_context: String,
    /// The URL B's gateway reaches A's API server at (default: the server of A's context in
    /// the kubeconfig).
    #[arg(long)]
    pub api_server: Option<String>,
    /// A's cluster ID, when A has no ClusterProperty cluster.clusterset.k8s.io.
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// Change nothing: print the objects and what applying them would do (the token is not
    /// printed).
    #[arg(long)]
    pub dry_run: bool,
    /// Do not restart B's gateway DaemonSet after its peers' kubeconfigs changed (the gateway
    /// reads them at start).
    #[arg(long)]
    pub no_restart: bool,
    /// How long to wait for A's token controller to fill the token Secret (a duration: 60s,
    /// 2m; a bare number is seconds).
    #[arg(long, default_value = "60s", value_parser = crate::cli::parse_seconds, value_name = "DURATION")]
    pub token_timeout: Duration,
}

/// What an apply did (or would do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    pub fn changed(self) -> bool {
        self != Self::Unchanged
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
        })
    }
}

/// The objects of the peer reader in the cluster to be watched, as the base renders them
/// (the namespace first): Namespace, ServiceAccount, token Secret, ClusterRole, binding.
pub fn peer_reader_objects() -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (file, text) in [
        ("deploy/base/namespace.yaml", NAMESPACE_YAML),
        ("deploy/base/peer-reader.yaml", PEER_READER_YAML),
    ] {
        let mut bytes = text.as_bytes();
        for doc in serde_saphyr::read::<_, Value>(&mut bytes) {
            let mut doc = doc.with_context(|| format!("{file}: not YAML"))?;
            if doc.is_null() {
                continue;
            }
            let labels = doc["metadata"]
                .as_object_mut()
                .with_context(|| format!("{file}: a document without metadata"))?
                .entry("labels")
                .or_insert_with(|| json!({}));
            labels[PART_OF.0] = json!(PART_OF.1);
            out.push(doc);
        }
    }
    Ok(out)
}

/// The kubeconfig with which a peer's gateway reads `cluster_id` as its peer reader: the text
/// the Ansible role's `peer-kubeconfig.yaml.j2` renders, so both write the same Secret.
pub fn peer_kubeconfig(cluster_id: &str, server: &str, ca_data: &str, token: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n  - name: {id}\n    cluster:\n      server: {server}\n      \
         certificate-authority-data: {ca}\nusers:\n  - name: {PEER_READER}\n    user:\n      token: {token}\n\
         contexts:\n  - name: {id}\n    context:\n      cluster: {id}\n      user: {PEER_READER}\n\
         current-context: {id}\n",
        id = q(cluster_id),
        server = q(server),
        ca = q(ca_data),
        token = q(token),
    )
}

/// Secret `mcwan-system/mcwan-peers` holding one peer's kubeconfig (base64, under `data`).
pub fn peers_secret(peer_id: &str, kubeconfig: &str) -> Value {
    let encoded = serde_json::to_value(k8s_openapi::ByteString(kubeconfig.as_bytes().to_vec()))
        .unwrap_or_default();
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": PEERS_SECRET, "namespace": NAMESPACE,
            "labels": {PART_OF.0: PART_OF.1}},
        "data": {peer_id: encoded},
    })
}

/// The server URL of `context` (or the current context) in the kubeconfig.
fn kubeconfig_server(context: Option<&str>) -> anyhow::Result<String> {
    let config = cluster::kubeconfig()
        .context("cannot read the kubeconfig to find A's API server URL (give --api-server)")?;
    let name = context
        .map(str::to_owned)
        .or_else(|| config.current_context.clone())
        .context("the kubeconfig has no current context: give --context")?;
    let ctx = config
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref())
        .with_context(|| format!("no context {name:?} in the kubeconfig"))?;
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .with_context(|| {
            format!(
                "context {name:?}: cluster {:?} has no server in the kubeconfig",
                ctx.cluster
            )
        })?;
    Ok(server)
}

fn check_server(server: &str) -> anyhow::Result<()> {
    let ok = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
    anyhow::ensure!(
        ok,
        "--api-server {server:?}: not an http(s):// URL of A's API server"
    );
    Ok(())
}

/// The object without what the server changes on every write.
fn content(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation"] {
            meta.remove(k);
        }
    }
    v
}

/// Server-side applies `body` (named `name`) as mcwan's command line, or with `dry_run` asks the
/// server what it would store; says whether that creates, changes or keeps the object.
async fn apply<K>(api: &Api<K>, name: &str, body: &Value, dry_run: bool) -> anyhow::Result<Outcome>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + fmt::Debug,
{
    let what = format!(
        "{}/{name}",
        body["kind"].as_str().unwrap_or("object").to_lowercase()
    );
    let before = api
        .get_opt(name)
        .await
        .with_context(|| format!("cannot read {what}"))?;
    let mut params = PatchParams::apply(CLI_FIELD_MANAGER).force();
    if dry_run {
        params = params.dry_run();
    }
    let after = api
        .patch(name, &params, &Patch::Apply(body))
        .await
        .with_context(|| format!("cannot apply {what}"))?;
    Ok(match before {
        None => Outcome::Created,
        Some(before) => {
            let (b, a) = (serde_json::to_value(before)?, serde_json::to_value(after)?);
            if content(b) == content(a) {
                Outcome::Unchanged
            } else {
                Outcome::Configured
            }
        }
    })
}

/// Applies one object of the peer reader (or the namespace) by its kind. A dry run in a
/// namespace that does not exist yet creates every object in it.
async fn apply_object(
    client: &Client,
    body: &Value,
    dry_run: bool,
    namespace_missing: bool,
) -> anyhow::Result<Outcome> {
    let name = body["metadata"]["name"].as_str().unwrap_or_default();
    if dry_run && namespace_missing && body["metadata"]["namespace"].is_string() {
        return Ok(Outcome::Created);
    }
    match body["kind"].as_str().unwrap_or_default() {
        "Namespace" => apply(&Api::<Namespace>::all(client.clone()), name, body, dry_run).await,
        "ServiceAccount" => {
            let api = Api::<ServiceAccount>::namespaced(client.clone(), NAMESPACE);
            apply(&api, name, body, dry_run).await
        }
        "Secret" => {
            let api = Api::<Secret>::namespaced(client.clone(), NAMESPACE);
            apply(&api, name, body, dry_run).await
        }
        "ClusterRole" => {
            apply(
                &Api::<ClusterRole>::all(client.clone()),
                name,
                body,
                dry_run,
            )
            .await
        }
        "ClusterRoleBinding" => {
            let api = Api::<ClusterRoleBinding>::all(client.clone());
            apply(&api, name, body, dry_run).await
        }
        other => anyhow::bail!(
            "the peer reader has an object of kind {other:?}, which join cannot apply"
        ),
    }
}

/// The peer reader's token and CA (base64, as stored), once the token controller filled them.
async fn wait_for_token(
    client: &Client,
    cluster_id: &str,
    timeout: Duration,
) -> anyhow::Result<Option<(String, String)>> {
    let api = Api::<Secret>::namespaced(client.clone(), NAMESPACE);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(secret) = api
            .get_opt(PEER_READER_TOKEN)
            .await
            .with_context(|| format!("cannot read Secret {NAMESPACE}/{PEER_READER_TOKEN}"))?
        {
            let data = secret.data.unwrap_or_default();
            if let (Some(token), Some(ca)) = (data.get("token"), data.get("ca.crt")) {
                let token = String::from_utf8(token.0.clone()).with_context(|| {
                    format!("Secret {NAMESPACE}/{PEER_READER_TOKEN} of {cluster_id}: data.token is not text")
                })?;
                let ca = serde_json::to_value(ca)?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if !token.is_empty() && !ca.is_empty() {
                    return Ok(Some((token, ca)));
                }
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The cluster IDs that B's gateway's clusterset file lists, when B has one.
async fn clusterset_ids(client: &Client) -> anyhow::Result<Option<Vec<String>>> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE);
    let maps = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 403 => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut ids: Option<Vec<String>> = None;
    for map in maps {
        let named = map
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("mcwan-clusterset"));
        let Some(text) = map.data.as_ref().and_then(|d| d.get("clusterset.yaml")) else {
            continue;
        };
        if !named {
            continue;
        }
        if let Ok(file) = crate::catalog::parse_clusterset(text) {
            ids.get_or_insert_with(Vec::new)
                .extend(file.clusters.into_iter().map(|c| c.id));
        }
    }
    Ok(ids)
}

/// Creates the read-only peer credentials in A and stores A's kubeconfig in B.
pub fn join(cmd: JoinCmd) -> anyhow::Result<ExitCode> {
    block_on(async move {
        if cmd.context.as_deref() == Some(cmd.peer_context.as_str()) {
            anyhow::bail!(
                "--context and --peer-context are both {:?}: a cluster does not join itself",
                cmd.peer_context
            );
        }
        let server = match &cmd.api_server {
            Some(s) => s.clone(),
            None => kubeconfig_server(cmd.context.as_deref())?,
        };
        check_server(&server)?;
        let a = local_client(cmd.context.as_deref()).await?;
        let b = local_client(Some(&cmd.peer_context)).await?;
        let (a_id, _) = cluster::cluster_id(&a, cmd.cluster_id.as_deref()).await?;
        let b_id = match cluster::cluster_id(&b, None).await {
            Ok((id, _)) => Some(id),
            Err(_) => None,
        };
        if b_id.as_deref() == Some(a_id.as_str()) {
            anyhow::bail!(
                "both contexts are cluster {a_id} (their ClusterProperty cluster.clusterset.k8s.io): a cluster does not join itself"
            );
        }
        let b_name = b_id.clone().unwrap_or_else(|| cmd.peer_context.clone());
        let dry = if cmd.dry_run { " (dry run)" } else { "" };

        // A: the peer reader.
        let objects = peer_reader_objects()?;
        let mut namespace_missing = false;
        for obj in &objects {
            let outcome = apply_object(&a, obj, cmd.dry_run, namespace_missing)
                .await
                .with_context(|| format!("cluster {a_id}"))?;
            if obj["kind"] == "Namespace" {
                namespace_missing = outcome == Outcome::Created;
            }
            println!("{a_id}: {}{dry}", describe(obj, outcome));
        }

        // B: A's kubeconfig among its peers'.
        let timeout = if cmd.dry_run {
            Duration::ZERO
        } else {
            cmd.token_timeout
        };
        let token = wait_for_token(&a, &a_id, timeout).await?;
        let kubeconfig = match &token {
            Some((token, ca)) => peer_kubeconfig(&a_id, &server, ca, token),
            None if cmd.dry_run => String::new(),
            None => anyhow::bail!(
                "Secret {NAMESPACE}/{PEER_READER_TOKEN} in cluster {a_id} has no token after {:?}: \
                 the token controller (kube-controller-manager) fills it; is it running?",
                cmd.token_timeout
            ),
        };
        let namespace = objects
            .iter()
            .find(|o| o["kind"] == "Namespace")
            .cloned()
            .context("the base has no Namespace")?;
        let outcome = apply_object(&b, &namespace, cmd.dry_run, false)
            .await
            .with_context(|| format!("peer cluster {b_name}"))?;
        println!("{b_name}: {}{dry}", describe(&namespace, outcome));
        let secret = peers_secret(&a_id, &kubeconfig);
        let secrets = Api::<Secret>::namespaced(b.clone(), NAMESPACE);
        if let Some(existing) = secrets.get_opt(PEERS_SECRET).await.with_context(|| {
            format!("peer cluster {b_name}: cannot read Secret {NAMESPACE}/{PEERS_SECRET}")
        })? {
            let type_ = existing.type_.as_deref().unwrap_or("Opaque");
            anyhow::ensure!(
                type_ == "Opaque",
                "peer cluster {b_name}: Secret {NAMESPACE}/{PEERS_SECRET} has type {type_:?}, not Opaque: it is not mcwan's peer kubeconfigs"
            );
        }
        let peers_outcome = if token.is_some() && !(cmd.dry_run && outcome == Outcome::Created) {
            let outcome = apply(&secrets, PEERS_SECRET, &secret, cmd.dry_run)
                .await
                .with_context(|| format!("peer cluster {b_name}"))?;
            println!("{b_name}: secret/{PEERS_SECRET} key {a_id} {outcome}{dry}");
            Some(outcome)
        } else {
            println!(
                "{b_name}: secret/{PEERS_SECRET} key {a_id}: written once {a_id}'s token controller has filled Secret {NAMESPACE}/{PEER_READER_TOKEN}{dry}"
            );
            None
        };
        if let Ok(Some(ids)) = clusterset_ids(&b).await {
            if !ids.contains(&a_id) {
                println!(
                    "warning: the clusterset file of {b_name}'s gateway (ConfigMap {NAMESPACE}/mcwan-clusterset) does not list {a_id}: the gateway ignores a peer it does not list"
                );
            }
        }

        if cmd.dry_run {
            println!("---\n# In {a_id}:");
            for obj in &objects {
                print!("---\n{}", serde_saphyr::to_string(obj)?);
            }
            println!("---\n# In {b_name} (the token is not shown):");
            print!("---\n{}", serde_saphyr::to_string(&namespace)?);
            let shown = peer_kubeconfig(
                &a_id,
                &server,
                token
                    .as_ref()
                    .map_or("<ca.crt of the token Secret>", |t| t.1.as_str()),
                &format!("<token of Secret {NAMESPACE}/{PEER_READER_TOKEN} in {a_id}>"),
            );
            let mut review = secret.clone();
            review["data"] = json!({});
            review["data"][&a_id] = json!(format!("<base64 of the kubeconfig below>"));
            print!("---\n{}", serde_saphyr::to_string(&review)?);
            for line in shown.lines() {
                println!("# {line}");
            }
            return Ok(ExitCode::SUCCESS);
        }

        if peers_outcome.is_some_and(Outcome::changed) {
            restart_gateway(&b, &b_name, cmd.no_restart).await?;
        }
        println!(
            "joined: {b_name}'s gateway watches {a_id} (read-only) once it has read its peers; the other way: mcwan join --context {} --peer-context {}",
            cmd.peer_context,
            cmd.context.as_deref().unwrap_or("<this context>")
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn describe(obj: &Value, outcome: Outcome) -> String {
    format!(
        "{}/{} {outcome}",
        obj["kind"].as_str().unwrap_or("object").to_lowercase(),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Restarts B's gateway as `kubectl rollout restart` does, so that it reads its peers again.
async fn restart_gateway(client: &Client, b_name: &str, no_restart: bool) -> anyhow::Result<()> {
    let api = Api::<DaemonSet>::namespaced(client.clone(), NAMESPACE);
    let found = api.get_opt(GATEWAY_DAEMONSET).await.with_context(|| {
        format!("peer cluster {b_name}: cannot read DaemonSet {NAMESPACE}/{GATEWAY_DAEMONSET}")
    })?;
    match (found, no_restart) {
        (None, _) => println!(
            "{b_name}: no DaemonSet {NAMESPACE}/{GATEWAY_DAEMONSET}: restart its gateway so that it reads the new kubeconfig"
        ),
        (Some(_), true) => println!(
            "{b_name}: the gateway reads the new kubeconfig when it restarts: kubectl -n {NAMESPACE} rollout restart daemonset/{GATEWAY_DAEMONSET}"
        ),
        (Some(_), false) => {
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": now}}}}});
            api.patch(
                GATEWAY_DAEMONSET,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .with_context(|| format!("peer cluster {b_name}: cannot restart DaemonSet {NAMESPACE}/{GATEWAY_DAEMONSET}"))?;
            println!("{b_name}: daemonset/{GATEWAY_DAEMONSET} restarted (it reads its peers' kubeconfigs at start)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_reader_is_the_base_s_with_its_label() {
        let objects = peer_reader_objects().unwrap_or_default();
        let names: Vec<String> = objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                "Namespace/mcwan-system",
                "ServiceAccount/mcwan-peer-reader",
                "Secret/mcwan-peer-reader-token",
                "ClusterRole/mcwan-peer-reader",
                "ClusterRoleBinding/mcwan-peer-reader"
            ]
        );
        assert!(objects
            .iter()
            .all(|o| o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mcwan"));
    }

    /// What `peer-kubeconfig.yaml.j2` renders for the same values (ansible-playbook's output).
    #[test]
    fn the_kubeconfig_is_the_ansible_template_s() {
        assert_eq!(
            peer_kubeconfig("cluster-1", "https://127.0.0.1:6443", "Q0E=", "tok"),
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: \"cluster-1\"\n    cluster:\n      \
             server: \"https://127.0.0.1:6443\"\n      certificate-authority-data: \"Q0E=\"\nusers:\n  \
             - name: mcwan-peer-reader\n    user:\n      token: \"tok\"\ncontexts:\n  - name: \
             \"cluster-1\"\n    context:\n      cluster: \"cluster-1\"\n      user: mcwan-peer-reader\n\
             current-context: \"cluster-1\"\n"
        );
    }

    #[test]
    fn the_server_must_be_a_url() {
        assert!(check_server("https://c1.example.net:6443").is_ok());
        assert!(check_server("c1.example.net:6443").is_err());
        assert!(check_server("https://").is_err());
    }
}
