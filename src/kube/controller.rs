//! The gateway in Kubernetes mode: connect to this cluster's API server (and learn its cluster
//! ID) and to each peer's, then run one watch task per cluster, the reconcile loop, the writer
//! and the events task. If one of them ends before shutdown, [`KubeGateway::run`] returns an
//! error so the gateway stops instead of running half-alive.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};

use super::cli::KubeArgs;
use super::cluster::{self, ClusterError, Peer};
use super::events::{self, Intent};
use super::health::ClusterHealth;
use super::object::Writes;
use super::source::{watch_cluster, Sources};
use super::writer::Writer;
use super::{writes, LABEL_MANAGED_BY, MANAGED_BY};
use crate::catalog::{Catalog, ClusterSet};
use crate::crd;
use crate::gateway::Reconciler;
use crate::model::{ClusterId, ServiceKey};
use crate::problem::Problem;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("--clusterset FILE is required with --kube")]
    NoClusterset,
    #[error("cannot read the clusterset file {}: {source}", .path.display())]
    ClustersetRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("clusterset file {}: {message}", .path.display())]
    ClustersetParse { path: PathBuf, message: String },
    #[error("the Kubernetes task {task} ended unexpectedly")]
    TaskEnded { task: String },
}

/// A connected Kubernetes-mode gateway, ready to run.
pub struct KubeGateway {
    cluster_id: ClusterId,
    local: Client,
    peers: Vec<Peer>,
    clusterset: ClusterSet,
    clusterset_problems: Vec<Problem>,
    health: Arc<ClusterHealth>,
    peer_sync_timeout: Duration,
}

impl std::fmt::Debug for KubeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeGateway")
            .field("cluster_id", &self.cluster_id)
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl KubeGateway {
    /// Reads the clusterset file, connects to this cluster (its ID from the `ClusterProperty`,
    /// else `cluster_id`) and prepares a client per peer kubeconfig.
    pub async fn connect(args: &KubeArgs, cluster_id: Option<&str>) -> Result<Self, KubeError> {
        let path = args.clusterset.clone().ok_or(KubeError::NoClusterset)?;
        let text = std::fs::read_to_string(&path).map_err(|source| KubeError::ClustersetRead {
            path: path.clone(),
            source,
        })?;
        let file = crate::catalog::parse_clusterset(&text).map_err(|message| {
            KubeError::ClustersetParse {
                path: path.clone(),
                message,
            }
        })?;
        let mut clusterset_problems = Vec::new();
        let clusterset = ClusterSet::from_file(file, &mut clusterset_problems);

        let local = cluster::local_client(args.context.as_deref()).await?;
        let (id, origin) = cluster::cluster_id(&local, cluster_id).await?;
        info!(cluster_id = %id, from = origin, "this cluster's identity");
        let health = Arc::new(ClusterHealth::new(&id));
        health.register(&id);

        let mut peers = Vec::new();
        if let Some(dir) = &args.peer_kubeconfigs {
            let (found, errors) = cluster::peers(dir, &id).await?;
            for e in errors {
                error!("{e}; the peer is not watched");
                if let ClusterError::PeerConfig { cluster, .. } = &e {
                    health.failed(cluster, e.to_string(), std::time::Instant::now());
                }
            }
            for peer in found {
                if clusterset.clusters.contains_key(&peer.id) {
                    peers.push(peer);
                } else {
                    warn!(peer = %peer.id, path = %peer.path.display(), "no such cluster in the clusterset file; not watched");
                }
            }
        }
        for other in clusterset.clusters.keys() {
            if *other != id && !peers.iter().any(|p| p.id == *other) {
                warn!(peer = %other, "no kubeconfig for this peer: its exports are not imported");
            }
        }
        Ok(Self {
            cluster_id: id,
            local,
            peers,
            clusterset,
            clusterset_problems,
            health,
            peer_sync_timeout: args.peer_sync_timeout,
        })
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Reachability of this cluster's and the peers' API servers.
    pub fn health(&self) -> Arc<ClusterHealth> {
        self.health.clone()
    }

    /// Runs until `cancel`, applying every change through `reconciler`.
    pub async fn run(
        self,
        reconciler: Reconciler,
        cancel: CancellationToken,
    ) -> Result<(), KubeError> {
        let sources = Arc::new(Sources::default());
        let (writes_tx, writes_rx) = watch::channel(None);
        let (events_tx, events_rx) = watch::channel(Arc::new(Vec::new()));
        let mut tasks: JoinSet<String> = JoinSet::new();

        let reconnected = Arc::new(Notify::new());
        let clusters = std::iter::once((self.cluster_id.clone(), self.local.clone(), "local"))
            .chain(
                self.peers
                    .iter()
                    .map(|p| (p.id.clone(), p.client.clone(), "peer")),
            );
        for (id, client, role) in clusters {
            let span = info_span!("watch", cluster = %id, role);
            let task = format!("watch {id}");
            let local = (role == "local").then(|| reconnected.clone());
            let run = watch_cluster(
                id,
                client,
                sources.clone(),
                self.health.clone(),
                local,
                cancel.clone(),
            );
            tasks.spawn(
                async move {
                    run.await;
                    task
                }
                .instrument(span),
            );
        }
        let writer = Writer::new(self.local.clone());
        let writer_cancel = cancel.clone();
        tasks.spawn(
            async move {
                writer.run(writes_rx, reconnected, writer_cancel).await;
                "writer".to_owned()
            }
            .instrument(info_span!("kube_writer", cluster = %self.cluster_id)),
        );
        let (client, cluster, events_cancel) =
            (self.local.clone(), self.cluster_id.clone(), cancel.clone());
        tasks.spawn(
            async move {
                events::run(client, cluster, events_rx, events_cancel).await;
                "events".to_owned()
            }
            .instrument(info_span!("kube_events", cluster = %self.cluster_id)),
        );
        let span = info_span!("kube_reconcile", cluster = %self.cluster_id);
        let reconcile = Loop {
            cluster_id: self.cluster_id.clone(),
            peers: self.peers.iter().map(|p| p.id.clone()).collect(),
            clusterset: self.clusterset,
            clusterset_problems: self.clusterset_problems,
            local: self.local,
            sources,
            reconciler,
            writes_tx,
            events_tx,
            peer_sync_timeout: self.peer_sync_timeout,
            last: None,
            writes: writes::WritePlanner::default(),
        };
        let reconcile_cancel = cancel.clone();
        tasks.spawn(
            async move {
                reconcile.run(reconcile_cancel).await;
                "reconcile".to_owned()
            }
            .instrument(span),
        );

        let result = tokio::select! {
            _ = cancel.cancelled() => Ok(()),
            ended = tasks.join_next() => match ended {
                Some(Ok(task)) => Err(KubeError::TaskEnded { task }),
                Some(Err(e)) => Err(KubeError::TaskEnded { task: e.to_string() }),
                None => Ok(()),
            },
        };
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
        result
    }
}

/// The reconcile loop's state.
struct Loop {
    cluster_id: ClusterId,
    peers: Vec<ClusterId>,
    clusterset: ClusterSet,
    clusterset_problems: Vec<Problem>,
    local: Client,
    sources: Arc<Sources>,
    reconciler: Reconciler,
    writes_tx: watch::Sender<Option<Arc<Writes>>>,
    events_tx: watch::Sender<Arc<Vec<Intent>>>,
    peer_sync_timeout: Duration,
    /// The snapshots of the last plan.
    last: Option<Snapshots>,
    /// The writes of the last plan, planned again for the services each plan changes.
    writes: writes::WritePlanner,
}

type Snapshots = BTreeMap<ClusterId, Arc<super::ClusterSnapshot>>;

/// Whether two sets of snapshots are the very same ones.
fn same(a: &Snapshots, b: &Snapshots) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && Arc::ptr_eq(va, vb))
}

impl Loop {
    async fn run(mut self, cancel: CancellationToken) {
        let Some(vips) = read_back_vips(&self.local, &cancel).await else {
            return;
        };
        info!(
            vips = vips.len(),
            "ClusterSetIPs read back from ServiceImports"
        );
        let deadline = Instant::now() + self.peer_sync_timeout;
        let mut first = true;
        let mut warned = false;
        loop {
            let waiting = first && Instant::now() < deadline;
            // A peer gateway going down or coming back changes the plan without any object
            // changing: recompute from the same snapshots.
            let mut health_changed = false;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.sources.changed() => {}
                _ = self.reconciler.health_changed() => health_changed = true,
                _ = tokio::time::sleep_until(deadline), if waiting => {}
            }
            let snapshots = self.sources.snapshots();
            let Some(local) = snapshots.get(&self.cluster_id).cloned() else {
                continue;
            };
            if first {
                let missing: Vec<&ClusterId> = self
                    .peers
                    .iter()
                    .filter(|p| !snapshots.contains_key(*p))
                    .collect();
                if !missing.is_empty() {
                    if Instant::now() < deadline {
                        continue;
                    }
                    if !warned {
                        warned = true;
                        warn!(?missing, "peers not read within {:?}; going on without their exports until they answer", self.peer_sync_timeout);
                    }
                }
            }
            // Sources keep a snapshot's Arc when it did not change: the same Arcs as last time
            // mean the same catalog and hints, so nothing to recompute.
            if !health_changed
                && self
                    .last
                    .as_ref()
                    .is_some_and(|last| same(last, &snapshots))
            {
                continue;
            }
            let started = Instant::now();
            let catalog = self.catalog(&snapshots);
            // A peer's published ingress ports are its word on its allocation.
            let hints = snapshots
                .iter()
                .filter(|(id, _)| **id != self.cluster_id)
                .map(|(id, s)| (id.clone(), s.ingress_ports.clone()));
            let previous = self.reconciler.previous_mut();
            previous.ingress_ports.extend(hints);
            if first {
                previous
                    .ingress_ports
                    .insert(self.cluster_id.clone(), local.ingress_ports.clone());
                previous
                    .vips
                    .extend(vips.iter().map(|(k, v)| (k.clone(), *v)));
            }
            let assembled = started.elapsed();
            let planned = self.reconciler.apply(&catalog);
            let Some(state) = self.reconciler.latest() else {
                continue;
            };
            let computed = started.elapsed();
            first = false;
            let observed = self.sources.observed(&self.cluster_id);
            let (writes, how) = self.writes.plan(
                &self.cluster_id,
                &catalog,
                &state,
                &planned,
                &observed,
                Timestamp::now(),
            );
            debug!(
                catalog = ?assembled,
                compute = ?computed - assembled,
                writes = ?started.elapsed() - computed,
                writes_planned = ?how,
                "reconciled"
            );
            self.writes_tx.send_replace(Some(writes));
            self.events_tx.send_replace(Arc::new(events::intents(
                &self.cluster_id,
                &state.problems,
                &observed,
            )));
            self.last = Some(snapshots);
        }
    }

    /// The catalog of every cluster of the clusterset (and this one), from their snapshots; a
    /// cluster not read yet has no objects.
    fn catalog(&self, snapshots: &Snapshots) -> Catalog {
        let mut problems = self.clusterset_problems.clone();
        let mut clusters = BTreeMap::new();
        for id in self
            .clusterset
            .clusters
            .keys()
            .chain(std::iter::once(&self.cluster_id))
        {
            let snapshot = snapshots.get(id);
            clusters.insert(
                id.clone(),
                snapshot.map(|s| s.objects.clone()).unwrap_or_default(),
            );
            if let Some(s) = snapshot {
                problems.extend(s.problems.iter().cloned());
            }
        }
        Catalog {
            clusterset: self.clusterset.clone(),
            clusters,
            problems,
        }
    }
}

/// The ClusterSetIPs of the ServiceImports mcwan wrote before, so that a restart keeps them.
/// Retries until it succeeds; `None` when cancelled first.
async fn read_back_vips(
    client: &Client,
    cancel: &CancellationToken,
) -> Option<BTreeMap<ServiceKey, IpAddr>> {
    let api: Api<crd::ServiceImport> = Api::all(client.clone());
    let params = ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let mut delay = Duration::from_millis(500);
    loop {
        match tokio::time::timeout(super::writer::CALL_TIMEOUT, api.list(&params)).await {
            Ok(Ok(list)) => {
                return Some(
                    list.items
                        .iter()
                        .filter_map(|si| {
                            let key = ServiceKey::new(
                                si.metadata.namespace.clone()?,
                                si.metadata.name.clone()?,
                            );
                            let vip = si.spec.ips.first()?.parse().ok()?;
                            Some((key, vip))
                        })
                        .collect(),
                )
            }
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => return Some(BTreeMap::new()),
            Ok(Err(e)) => warn!(retry_in = ?delay, "cannot read back ServiceImports: {e}"),
            Err(_) => warn!(retry_in = ?delay, "cannot read back ServiceImports: timed out"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
