//! Whether each cluster's API server can be reached, shared between the watch tasks that learn
//! it and the readers that report it (status, metrics). A cluster that cannot be reached keeps
//! its last known objects; this only says so.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::ClusterId;

/// How often a cluster that stays unreachable is logged again.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// One cluster's reachability, as readers see it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reachability {
    /// Whether every watch of the cluster has listed its objects at least once.
    pub synced: bool,
    /// How long the API server has been failing, when it is (in JSON: seconds).
    #[serde(rename = "unreachable_seconds", serialize_with = "seconds")]
    pub unreachable_for: Option<Duration>,
    pub last_error: Option<String>,
}

impl Reachability {
    /// The API server answers (it has not failed since it last did).
    pub fn up(&self) -> bool {
        self.unreachable_for.is_none()
    }
}

/// A duration as seconds, to the millisecond.
fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_millis() as f64 / 1000.0)),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Default)]
struct Entry {
    synced: bool,
    failing_since: Option<Instant>,
    last_error: Option<String>,
    last_warned: Option<Instant>,
}

/// Reachability of every cluster, by ID.
#[derive(Debug, Default)]
pub struct ClusterHealth {
    local: ClusterId,
    clusters: RwLock<BTreeMap<ClusterId, Entry>>,
}

/// What a failure means for logging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Log it now at warn: it is new, or a minute has passed since the last warning.
    Warn { unreachable_for: Duration },
    /// Already reported recently.
    Quiet,
}

impl ClusterHealth {
    pub fn new(local: &str) -> Self {
        Self {
            local: local.to_owned(),
            clusters: RwLock::default(),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<ClusterId, Entry>> {
        self.clusters.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<ClusterId, Entry>> {
        self.clusters.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(&self, cluster: &str) {
        self.write().entry(cluster.to_owned()).or_default();
    }

    /// The API server answered. Returns how long it had been unreachable, if it had.
    pub fn reachable(&self, cluster: &str) -> Option<Duration> {
        if self
            .read()
            .get(cluster)
            .is_some_and(|e| e.failing_since.is_none())
        {
            return None;
        }
        let mut clusters = self.write();
        let entry = clusters.entry(cluster.to_owned()).or_default();
        entry.last_warned = None;
        entry.failing_since.take().map(|t| t.elapsed())
    }

    /// A request to the API server failed with `error` at `now`.
    pub fn failed(&self, cluster: &str, error: String, now: Instant) -> Failure {
        let mut clusters = self.write();
        let entry = clusters.entry(cluster.to_owned()).or_default();
        let since = *entry.failing_since.get_or_insert(now);
        entry.last_error = Some(error);
        let due = entry
            .last_warned
            .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY);
        if due {
            entry.last_warned = Some(now);
            Failure::Warn {
                unreachable_for: now.saturating_duration_since(since),
            }
        } else {
            Failure::Quiet
        }
    }

    /// Every watch of the cluster has listed once.
    pub fn synced(&self, cluster: &str) {
        self.write().entry(cluster.to_owned()).or_default().synced = true;
    }

    pub fn is_synced(&self, cluster: &str) -> bool {
        self.read().get(cluster).is_some_and(|e| e.synced)
    }

    /// Peers (every cluster but this one) whose API server is failing, with the last error.
    pub fn peer_unreachable(&self) -> BTreeMap<ClusterId, String> {
        self.read()
            .iter()
            .filter(|(id, e)| **id != self.local && e.failing_since.is_some())
            .map(|(id, e)| (id.clone(), e.last_error.clone().unwrap_or_default()))
            .collect()
    }

    /// Every cluster's reachability.
    pub fn snapshot(&self) -> BTreeMap<ClusterId, Reachability> {
        self.read()
            .iter()
            .map(|(id, e)| {
                (
                    id.clone(),
                    Reachability {
                        synced: e.synced,
                        unreachable_for: e.failing_since.map(|t| t.elapsed()),
                        last_error: e.last_error.clone(),
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_peer_is_reported_and_warned_about_once_a_minute() {
        let health = ClusterHealth::new("cluster-2");
        let t0 = Instant::now();
        assert_eq!(
            health.failed("cluster-1", "refused".into(), t0),
            Failure::Warn {
                unreachable_for: Duration::ZERO
            }
        );
        assert_eq!(
            health.failed("cluster-1", "refused".into(), t0 + Duration::from_secs(30)),
            Failure::Quiet
        );
        assert_eq!(
            health.failed("cluster-1", "refused".into(), t0 + Duration::from_secs(61)),
            Failure::Warn {
                unreachable_for: Duration::from_secs(61)
            }
        );
        assert_eq!(
            health
                .peer_unreachable()
                .get("cluster-1")
                .map(String::as_str),
            Some("refused")
        );
        assert!(health.reachable("cluster-1").is_some());
        assert!(health.peer_unreachable().is_empty());
    }

    #[test]
    fn the_local_cluster_is_not_a_peer() {
        let health = ClusterHealth::new("cluster-2");
        health.failed("cluster-2", "refused".into(), Instant::now());
        assert!(health.peer_unreachable().is_empty());
        assert!(health.snapshot()["cluster-2"].unreachable_for.is_some());
    }
}
