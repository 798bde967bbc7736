//! The reconciler: catalog in, desired state computed, actuators applied. It keeps the previous
//! allocations so ClusterSetIPs and ingress ports stay put, and the last applied state for
//! status.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::admin::{Health, Metrics};
use crate::catalog::Catalog;
use crate::desired::{self, Allocations, DesiredState, DownClusters, PlanConfig, Planned};
use crate::model::ServiceKey;
use crate::problem::{Problem, Severity};

#[derive(Debug)]
pub struct Reconciler {
    cluster_id: String,
    config: PlanConfig,
    zone_config: mcwan_dns::ZoneConfig,
    zone: mcwan_dns::ZoneHandle,
    previous: Allocations,
    /// Plans only the services a catalog changed (the rest from the last plan).
    planner: desired::Planner,
    down: watch::Receiver<DownClusters>,
    reported: BTreeSet<Problem>,
    current: watch::Sender<Option<Arc<DesiredState>>>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Reconciler {
    pub fn new(
        cluster_id: String,
        config: PlanConfig,
        zone_config: mcwan_dns::ZoneConfig,
        zone: mcwan_dns::ZoneHandle,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            cluster_id,
            config,
            zone_config,
            zone,
            previous: Allocations::default(),
            planner: desired::Planner::new(),
            down: watch::Sender::new(DownClusters::default()).subscribe(),
            reported: BTreeSet::new(),
            current: watch::Sender::new(None),
            metrics,
            health,
        }
    }

    /// The last applied desired state, for readers (status, the dataplane actuators): each
    /// receiver sees the newest state and is woken when it changes.
    /// Takes the clusters that are down from the health prober.
    pub fn follow_health(&mut self, down: watch::Receiver<DownClusters>) {
        self.down = down;
    }

    /// Resolves when the set of down clusters changes: the caller then applies its catalog
    /// again. Never resolves when no prober publishes.
    pub async fn health_changed(&mut self) {
        if self.down.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub fn latest(&self) -> Option<Arc<DesiredState>> {
        self.current.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<DesiredState>>> {
        self.current.subscribe()
    }

    /// The allocations the next [`Reconciler::apply`] keeps where it can. Sources that know
    /// better (a peer's published ingress ports, VIPs read back on start) adjust them first.
    pub fn previous_mut(&mut self) -> &mut Allocations {
        &mut self.previous
    }

    /// Computes the desired state of `catalog` and applies it; says how it was planned (what
    /// builds on the state, as the Kubernetes writes do, needs only look at what changed).
    pub fn apply(&mut self, catalog: &Catalog) -> Planned {
        let started = Instant::now();
        let down = self.down.borrow_and_update().clone();
        let (state, planned) = self.planner.plan(desired::Inputs {
            catalog,
            cluster_id: &self.cluster_id,
            config: &self.config,
            previous: &self.previous,
            down: &down,
        });
        self.report(&state.problems);
        let planned_in = started.elapsed();
        // Only the changed services' names are built; the others are shared with the zone
        // being served. After a plan of some services, only theirs are even looked at (and a
        // service whose records cannot be served is reported when it changes).
        let serving = self.zone.load();
        let built = match &planned {
            Planned::Services { changed } if *serving.config() == self.zone_config => {
                Ok(serving.update(&zone_changes(&state.dns, changed)))
            }
            _ => serving.rebuild(&self.zone_config, &state.dns),
        };
        drop(serving);
        let records = match built {
            Ok(built) => {
                for e in built.errors {
                    error!(error = %e, "DNS records of a service left out of the zone");
                }
                let records = built.zone.len();
                self.zone.store(built.zone);
                records
            }
            Err(e) => {
                error!(error = %e, "zone not rebuilt; the previous one stays in service");
                self.zone.load().len()
            }
        };
        let zoned = started.elapsed();
        let (full_plan, changed_services) = match &planned {
            Planned::Full { why } => (Some(*why), None),
            Planned::Services { changed } => (None, Some(changed.len())),
        };
        info!(
            plan_ms = planned_in.as_millis() as u64,
            full_plan,
            changed_services,
            zone_ms = (zoned - planned_in).as_millis() as u64,
            imports = state.imports.len(),
            exports = state.exports.len(),
            dns_names = records,
            egress_virtual_servers = state.ipvs.egress.len(),
            ingress_virtual_servers = state.ipvs.ingress.len(),
            "applied desired state"
        );
        self.previous = state.allocations.clone();
        let last = self.current.borrow().clone();
        self.metrics
            .observe_reconcile(catalog, last.as_deref(), &state, started.elapsed());
        self.current.send_replace(Some(state));
        self.health.pass("reconcile");
        planned
    }

    /// Logs each problem once, when it first appears, and notes when it goes away.
    fn report(&mut self, problems: &[Problem]) {
        let now: BTreeSet<Problem> = problems.iter().cloned().collect();
        for p in now.difference(&self.reported) {
            let object = p.object.to_string();
            let cluster = p.cluster.as_deref().unwrap_or("-");
            let field = p.field.as_deref().unwrap_or("-");
            match p.severity {
                Severity::Error => error!(cluster, object, field, "{}", p.message),
                Severity::Warning => warn!(cluster, object, field, "{}", p.message),
            }
        }
        for p in self.reported.difference(&now) {
            info!(cluster = p.cluster.as_deref().unwrap_or("-"), object = %p.object, "resolved: {}", p.message);
        }
        self.reported = now;
    }
}

/// The zone's changes for the `changed` services: each one's records in `dns` (sorted by
/// namespace and name, as the plan gives them), or none.
fn zone_changes<'a>(
    dns: &'a [Arc<mcwan_dns::ServiceRecord>],
    changed: &'a BTreeSet<ServiceKey>,
) -> Vec<mcwan_dns::ServiceChange<'a>> {
    changed
        .iter()
        .map(|key| {
            let (namespace, name) = (key.namespace.as_str(), key.name.as_str());
            let at = dns
                .partition_point(|r| (r.namespace.as_str(), r.name.as_str()) < (namespace, name));
            let record = dns
                .get(at)
                .filter(|r| r.namespace == namespace && r.name == name)
                .map(|r| &**r);
            mcwan_dns::ServiceChange {
                namespace,
                name,
                record,
            }
        })
        .collect()
}
