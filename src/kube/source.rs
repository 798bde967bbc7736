//! The Kubernetes source: per cluster (this one and each peer), reflectors on Namespaces,
//! Services, EndpointSlices, ServiceExports, WANPolicies and the gateway's published ingress
//! slices, and in the gateway's own cluster on its WANImports. A change to any store, debounced,
//! rebuilds the cluster's [`ClusterSnapshot`] and wakes the controller if the snapshot changed.
//! Watches decide nothing.
//!
//! A lost API server leaves the stores as they were (the catalog keeps its last known
//! objects); the watcher retries with backoff and resumes from its resource version, or relists
//! after a 410 Gone, swapping the store only when the list is complete, so an unchanged cluster
//! rebuilds into an equal snapshot and nothing downstream moves.

use super::raw::Raw;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, reflector};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::health::{ClusterHealth, Failure};
use super::snapshot::{self, ClusterSnapshot, Observed, Stores};
use super::{LABEL_SLICE_MANAGED_BY, LABEL_SLICE_ROLE, MANAGED_BY, SLICE_INGRESS};
use crate::convert::LABEL_K8S_SERVICE_NAME;
use crate::crd;
use crate::model::ClusterId;

/// How long a burst of store changes may go on before the snapshot is rebuilt.
pub const DEBOUNCE: Duration = Duration::from_millis(10);
/// While the API server fails, how often to ask it for its version: a resumed watch says
/// nothing until something changes, so this is how recovery is noticed on a quiet cluster.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// While its watches look healthy, an API server is still asked for `/version` this often: a
/// server that froze (stopped, overloaded, behind a stalled proxy) keeps its connections open
/// and sends nothing, which a watch alone cannot tell from a quiet cluster.
pub const LIVENESS_EVERY: Duration = Duration::from_secs(5);
/// How long the liveness check waits for its answer.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(3);

/// Each cluster's latest snapshot and observed state.
type Latest = BTreeMap<ClusterId, (Arc<ClusterSnapshot>, Arc<Observed>)>;

/// Every cluster's latest snapshot, and the wake-up of the controller.
#[derive(Debug, Default)]
pub struct Sources {
    clusters: Mutex<Latest>,
    wake: Notify,
}

impl Sources {
    fn lock(&self) -> std::sync::MutexGuard<'_, Latest> {
        self.clusters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `cluster`'s snapshot. Wakes the controller and returns true when the snapshot
    /// differs from the last one (or is the first). A change of `observed` alone wakes no one,
    /// nor does a change of the published ingress ports alone unless `wake_on_ingress` (they are
    /// a peer's word on its allocation; this cluster's own are read only on start).
    pub fn update(
        &self,
        cluster: &str,
        snapshot: ClusterSnapshot,
        observed: Observed,
        wake_on_ingress: bool,
    ) -> bool {
        let mut clusters = self.lock();
        let (changed, wake) = match clusters.get(cluster) {
            None => (true, true),
            Some((old, _)) => {
                let planned = old.objects != snapshot.objects || old.problems != snapshot.problems;
                let ingress = old.ingress_ports != snapshot.ingress_ports;
                (planned || ingress, planned || (ingress && wake_on_ingress))
            }
        };
        let snapshot = match (changed, clusters.get(cluster)) {
            (false, Some((old, _))) => old.clone(),
            _ => Arc::new(snapshot),
        };
        clusters.insert(cluster.to_owned(), (snapshot, Arc::new(observed)));
        drop(clusters);
        if wake {
            self.wake.notify_one();
        }
        wake
    }

    /// The latest snapshot of every cluster read so far.
    pub fn snapshots(&self) -> BTreeMap<ClusterId, Arc<ClusterSnapshot>> {
        self.lock()
            .iter()
            .map(|(id, (s, _))| (id.clone(), s.clone()))
            .collect()
    }

    /// What `cluster`'s objects say now beyond the catalog (conditions, UIDs).
    pub fn observed(&self, cluster: &str) -> Arc<Observed> {
        self.lock()
            .get(cluster)
            .map(|(_, o)| o.clone())
            .unwrap_or_default()
    }

    /// Waits until some cluster's snapshot changed since the last call.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }
}

/// The resources watched in every cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Resource {
    Namespaces,
    Services,
    EndpointSlices,
    ServiceExports,
    WanPolicies,
    PublishedSlices,
    /// WANImports: read in the gateway's own cluster only.
    WanImports,
    /// WANRoutes: read in every cluster.
    WanRoutes,
}

const RESOURCES: usize = 8;

type Tagged = BoxStream<'static, (Resource, watcher::Result<bool>)>;

/// A reflected stream whose items say only whether the event ended an initial list.
fn tagged<K, S>(resource: Resource, stream: S) -> Tagged
where
    K: Send + 'static,
    S: Stream<Item = watcher::Result<Event<K>>> + Send + 'static,
{
    stream
        .map(move |e| (resource, e.map(|ev| matches!(ev, Event::InitDone))))
        .boxed()
}

fn reflect<K>(
    client: &Client,
    resource: Resource,
    config: watcher::Config,
) -> (reflector::Store<K>, Tagged)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    let watch = watcher(api, config)
        .default_backoff()
        .modify(|o| super::raw::slim(o.meta_mut()));
    let stream = reflector(writer, watch);
    (store, tagged(resource, stream))
}

/// How a watch error is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorKind {
    /// 410 Gone: the watcher relists by itself.
    Expired,
    /// The resource is not served (its CRD is not installed): it counts as empty.
    NotServed,
    /// Anything else: the API server cannot be used right now.
    Unreachable,
}

fn error_kind(resource: Resource, error: &watcher::Error) -> ErrorKind {
    match error {
        watcher::Error::WatchError(status) if status.code == 410 => ErrorKind::Expired,
        watcher::Error::InitialListFailed(kube::Error::Api(status)) if status.code == 404 => {
            ErrorKind::NotServed
        }
        // A gateway upgraded before its ClusterRole lacks the WANImport or WANRoute rule: without it, the
        // cluster still serves everything else.
        watcher::Error::InitialListFailed(kube::Error::Api(status))
            if status.code == 403
                && matches!(resource, Resource::WanImports | Resource::WanRoutes) =>
        {
            ErrorKind::NotServed
        }
        _ => ErrorKind::Unreachable,
    }
}

/// Watches `cluster` until `cancel`, keeping its snapshot in `sources` up to date.
/// `reconnected` is notified when the API server answers again after failing.
pub async fn watch_cluster(
    cluster: ClusterId,
    client: Client,
    sources: Arc<Sources>,
    health: Arc<ClusterHealth>,
    reconnected: Option<Arc<Notify>>,
    cancel: CancellationToken,
) {
    health.register(&cluster);
    let (namespaces, s1) = reflect::<Namespace>(&client, Resource::Namespaces, Default::default());
    let (services, s2) = reflect::<Service>(&client, Resource::Services, Default::default());
    let (slices, s3) = reflect::<EndpointSlice>(
        &client,
        Resource::EndpointSlices,
        watcher::Config::default().labels(LABEL_K8S_SERVICE_NAME),
    );
    let (exports, s4) =
        reflect::<Raw<crd::ServiceExport>>(&client, Resource::ServiceExports, Default::default());
    let (policies, s5) =
        reflect::<Raw<crd::WanPolicy>>(&client, Resource::WanPolicies, Default::default());
    let (published, s6) = reflect::<EndpointSlice>(
        &client,
        Resource::PublishedSlices,
        watcher::Config::default().labels(&format!(
            "{LABEL_SLICE_MANAGED_BY}={MANAGED_BY},{LABEL_SLICE_ROLE}={SLICE_INGRESS}"
        )),
    );
    let (wan_routes, s8) =
        reflect::<Raw<crd::WanRoute>>(&client, Resource::WanRoutes, Default::default());
    let mut streams = vec![s1, s2, s3, s4, s5, s6, s8];
    let mut synced: BTreeSet<Resource> = BTreeSet::new();
    // Only the local cluster is given `reconnected`; a peer's WANImports are its own business.
    let wan_imports = if reconnected.is_some() {
        let (store, s7) =
            reflect::<Raw<crd::WanImport>>(&client, Resource::WanImports, Default::default());
        streams.push(s7);
        Some(store)
    } else {
        synced.insert(Resource::WanImports);
        None
    };
    let mut events = futures::stream::select_all(streams);

    let mut not_served: BTreeSet<Resource> = BTreeSet::new();
    let mut due: Option<Instant> = None;
    let mut announced = false;
    let mut builder = snapshot::Builder::default();
    let mut failing = false;
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut liveness = tokio::time::interval(LIVENESS_EVERY);
    liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let recovered = |failing: &mut bool| {
        *failing = false;
        if let Some(after) = health.reachable(&cluster) {
            info!(unreachable_for = ?after, "API server reachable again");
            if let Some(n) = &reconnected {
                n.notify_one();
            }
        }
    };
    loop {
        let deadline = due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = cancel.cancelled() => return,
            next = events.next() => {
                let Some((resource, result)) = next else { return };
                match result {
                    Ok(init_done) => {
                        if failing {
                            recovered(&mut failing);
                        }
                        if init_done {
                            synced.insert(resource);
                        }
                        due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                    }
                    Err(e) => match error_kind(resource, &e) {
                        ErrorKind::Expired => {
                            info!(?resource, "resource version expired (410 Gone): relisting");
                        }
                        ErrorKind::NotServed => {
                            if not_served.insert(resource) {
                                warn!(?resource, "not served by the API server (is its CRD installed? may the gateway's ClusterRole read it?); read as empty: {e}");
                            }
                            synced.insert(resource);
                            due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                        }
                        ErrorKind::Unreachable => {
                            failing = true;
                            let now = std::time::Instant::now();
                            match health.failed(&cluster, e.to_string(), now) {
                                Failure::Warn { unreachable_for } => warn!(
                                    ?resource,
                                    ?unreachable_for,
                                    "API server unreachable; keeping its last known objects: {e}"
                                ),
                                Failure::Quiet => debug!(?resource, "API server unreachable: {e}"),
                            }
                        }
                    },
                }
            }
            _ = liveness.tick(), if !failing => {
                let answer = tokio::time::timeout(LIVENESS_TIMEOUT, client.apiserver_version()).await;
                let problem = match answer {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(format!("GET /version failed: {e}")),
                    Err(_) => Some(format!("GET /version not answered within {LIVENESS_TIMEOUT:?}")),
                };
                if let Some(problem) = problem {
                    failing = true;
                    match health.failed(&cluster, problem.clone(), std::time::Instant::now()) {
                        Failure::Warn { unreachable_for } => warn!(
                            ?unreachable_for,
                            "API server not answering; keeping its last known objects: {problem}"
                        ),
                        Failure::Quiet => debug!("API server not answering: {problem}"),
                    }
                }
            }
            _ = probe.tick(), if failing => {
                let answer = tokio::time::timeout(PROBE_EVERY * 3, client.apiserver_version()).await;
                if matches!(answer, Ok(Ok(_))) {
                    recovered(&mut failing);
                }
            }
            _ = tokio::time::sleep_until(deadline), if due.is_some() => {
                due = None;
                if synced.len() < RESOURCES {
                    continue;
                }
                let (ns, sv, sl, ex, po, pu) = (
                    namespaces.state(),
                    services.state(),
                    slices.state(),
                    exports.state(),
                    policies.state(),
                    published.state(),
                );
                let wi = wan_imports.as_ref().map(reflector::Store::state).unwrap_or_default();
                let wr = wan_routes.state();
                let (snapshot, observed) = builder.build(
                    &cluster,
                    &Stores {
                        namespaces: &ns,
                        services: &sv,
                        endpoint_slices: &sl,
                        exports: &ex,
                        wan_policies: &po,
                        published: &pu,
                        wan_imports: &wi,
                        wan_routes: &wr,
                    },
                );
                // Only the local cluster is given `reconnected`.
                let changed = sources.update(&cluster, snapshot, observed, reconnected.is_none());
                if !announced {
                    announced = true;
                    health.synced(&cluster);
                    info!(exports = ex.len(), services = sv.len(), "cluster read");
                } else if changed {
                    debug!("cluster objects changed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_changed_snapshot_wakes_the_controller() {
        let sources = Sources::default();
        assert!(sources.update("c", ClusterSnapshot::default(), Observed::default(), true));
        assert!(!sources.update("c", ClusterSnapshot::default(), Observed::default(), true));
        let mut changed = ClusterSnapshot::default();
        changed.objects.namespaces.insert("ns".into());
        assert!(sources.update("c", changed, Observed::default(), true));
    }

    #[test]
    fn the_own_published_ports_alone_wake_no_one_but_are_kept() {
        let sources = Sources::default();
        assert!(sources.update("c", ClusterSnapshot::default(), Observed::default(), false));
        let mut published = ClusterSnapshot::default();
        published.ingress_ports.0.insert(
            crate::desired::IngressKey {
                service: crate::model::ServiceKey::new("ns", "svc"),
                protocol: crate::model::Protocol::Tcp,
                port: 80,
                class: None,
            },
            31000,
        );
        assert!(!sources.update("c", published.clone(), Observed::default(), false));
        assert_eq!(*sources.snapshots()["c"], published);
    }

    #[test]
    fn a_410_is_a_relist_not_an_outage() {
        let gone = watcher::Error::WatchError(Box::new(kube::core::Status {
            code: 410,
            ..Default::default()
        }));
        assert_eq!(error_kind(Resource::Services, &gone), ErrorKind::Expired);
    }
}
