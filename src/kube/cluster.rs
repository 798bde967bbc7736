//! Connections to the clusters' API servers: this cluster's from `KUBECONFIG` (or
//! `~/.kube/config`, or the in-cluster service account), and each peer's from a directory holding
//! one kubeconfig per peer, named by cluster ID (a mounted Secret). And this cluster's identity.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::crd::{ClusterProperty, CLUSTER_ID_PROPERTY};
use crate::model::ClusterId;
use crate::validate::is_dns_label;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a read (a watch included) may stay silent before the connection counts as lost.
/// Longer than the watcher's own server-side timeout (290 s), so healthy idle watches end first.
pub const READ_TIMEOUT: Duration = Duration::from_secs(295);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot configure a client for this cluster ({}): {source}", context_name(.context))]
    LocalConfig {
        context: Option<String>,
        #[source]
        source: BoxError,
    },
    #[error("cannot read the peer kubeconfig directory {}: {source}", .dir.display())]
    PeerDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("peer cluster {cluster}: kubeconfig {}: {source}", .path.display())]
    PeerConfig {
        cluster: ClusterId,
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("cannot read ClusterProperty {CLUSTER_ID_PROPERTY}: {source}")]
    ClusterIdRead {
        #[source]
        source: kube::Error,
    },
    #[error(
        "this cluster has no ClusterProperty {CLUSTER_ID_PROPERTY} and no --cluster-id was given"
    )]
    NoClusterId,
    #[error("cluster ID {id:?} (from {origin}) is not a DNS label")]
    InvalidClusterId { id: String, origin: &'static str },
}

fn context_name(context: &Option<String>) -> String {
    match context {
        Some(c) => format!("context {c}"),
        None => "current context, or in-cluster".to_owned(),
    }
}

fn with_timeouts(mut config: Config) -> Config {
    if config.read_timeout.is_none() {
        config.read_timeout = Some(READ_TIMEOUT);
    }
    config
}

/// The kubeconfig file `--kubeconfig` named, read once at start.
static KUBECONFIG: std::sync::OnceLock<(PathBuf, Kubeconfig)> = std::sync::OnceLock::new();

/// Makes `path` this process's kubeconfig of the local cluster (`--kubeconfig`), in place of
/// `KUBECONFIG`, `~/.kube/config` and the in-cluster account.
pub fn use_kubeconfig(path: PathBuf) -> anyhow::Result<()> {
    let config = Kubeconfig::read_from(&path)
        .map_err(|e| anyhow::anyhow!("--kubeconfig {}: {e}", path.display()))?;
    KUBECONFIG
        .set((path, config))
        .map_err(|_| anyhow::anyhow!("--kubeconfig given twice"))
}

/// The kubeconfig [`local_client`] reads, without the in-cluster fallback: `--kubeconfig`'s,
/// else `KUBECONFIG`'s or `~/.kube/config` (`mcwan join` takes the server URL from it).
pub fn kubeconfig() -> Result<Kubeconfig, kube::config::KubeconfigError> {
    match KUBECONFIG.get() {
        Some((_, kubeconfig)) => Ok(kubeconfig.clone()),
        None => Kubeconfig::read(),
    }
}

/// A client for this cluster: `context` of the kubeconfig (`--kubeconfig`, else `KUBECONFIG`
/// or `~/.kube/config`), or without a context the current one, falling back to the in-cluster
/// service account when no kubeconfig file was named.
pub async fn local_client(context: Option<&str>) -> Result<Client, ClusterError> {
    let err = |source: BoxError| ClusterError::LocalConfig {
        context: context.map(str::to_owned),
        source,
    };
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    if let Some((_, kubeconfig)) = KUBECONFIG.get() {
        let config = Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
            .await
            .map_err(|e| err(e.into()))?;
        return Client::try_from(with_timeouts(config)).map_err(|e| err(e.into()));
    }
    let config = match context {
        Some(c) => Config::from_kubeconfig(&KubeConfigOptions {
            context: Some(c.to_owned()),
            ..Default::default()
        })
        .await
        .map_err(|e| err(e.into()))?,
        None => Config::infer().await.map_err(|e| err(e.into()))?,
    };
    Client::try_from(with_timeouts(config)).map_err(|e| err(e.into()))
}

/// A peer cluster, watched read-only.
#[derive(Clone)]
pub struct Peer {
    pub id: ClusterId,
    pub path: PathBuf,
    pub client: Client,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The cluster ID a peer kubeconfig file stands for: its name, without a `.yaml`, `.yml`,
/// `.kubeconfig` or `.conf` extension. Hidden entries (a mounted Secret's `..data`) are none.
pub fn peer_id_of(file_name: &str) -> Option<&str> {
    if file_name.starts_with('.') {
        return None;
    }
    let id = [".yaml", ".yml", ".kubeconfig", ".conf"]
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
        .unwrap_or(file_name);
    Some(id)
}

/// Reads every peer kubeconfig of `dir` (except `own`'s). A file that cannot be used is returned
/// as an error next to the peers that can, so one broken file leaves the others watched.
pub async fn peers(dir: &Path, own: &str) -> Result<(Vec<Peer>, Vec<ClusterError>), ClusterError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ClusterError::PeerDir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // Follow symlinks: a mounted Secret's files are links into `..data/`.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        if let Some(id) = peer_id_of(&name) {
            if id != own {
                files.push((id.to_owned(), path));
            }
        }
    }
    files.sort();
    let mut peers = Vec::new();
    let mut errors = Vec::new();
    for (id, path) in files {
        let err = |source: BoxError| ClusterError::PeerConfig {
            cluster: id.clone(),
            path: path.clone(),
            source,
        };
        if !is_dns_label(&id) {
            errors.push(err("the file name is not a cluster ID (a DNS label)".into()));
            continue;
        }
        let client = match Kubeconfig::read_from(&path) {
            Ok(kubeconfig) => {
                match Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                {
                    Ok(config) => {
                        Client::try_from(with_timeouts(config)).map_err(|e| err(e.into()))
                    }
                    Err(e) => Err(err(e.into())),
                }
            }
            Err(e) => Err(err(e.into())),
        };
        match client {
            Ok(client) => peers.push(Peer { id, path, client }),
            Err(e) => errors.push(e),
        }
    }
    Ok((peers, errors))
}

/// This cluster's ID: the `ClusterProperty` `cluster.clusterset.k8s.io` when it exists, else
/// `fallback` (`--cluster-id`). Returns the ID and where it came from.
pub async fn cluster_id(
    client: &Client,
    fallback: Option<&str>,
) -> Result<(ClusterId, &'static str), ClusterError> {
    let api: Api<ClusterProperty> = Api::all(client.clone());
    let property = api
        .get_opt(CLUSTER_ID_PROPERTY)
        .await
        .map_err(|source| ClusterError::ClusterIdRead { source })?;
    let (id, origin) = match (property, fallback) {
        (Some(p), _) => (p.spec.value, "ClusterProperty cluster.clusterset.k8s.io"),
        (None, Some(f)) => (f.to_owned(), "--cluster-id"),
        (None, None) => return Err(ClusterError::NoClusterId),
    };
    if !is_dns_label(&id) {
        return Err(ClusterError::InvalidClusterId { id, origin });
    }
    Ok((id, origin))
}

#[cfg(test)]
mod tests {
    use super::peer_id_of;

    #[test]
    fn peer_files_are_named_by_cluster_id() {
        assert_eq!(peer_id_of("cluster-1"), Some("cluster-1"));
        assert_eq!(peer_id_of("cluster-1.yaml"), Some("cluster-1"));
        assert_eq!(peer_id_of("cluster-1.kubeconfig"), Some("cluster-1"));
        assert_eq!(peer_id_of("..data"), None);
    }
}
