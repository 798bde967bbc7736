//! The reconciler: catalog in, desired state computed, actuators applied. It keeps the previous
//! allocations so ClusterSetIPs and ingress ports stay put, and the last applied state for
//! status.

use std::collections::BTreeSet;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tracing::{error, info, warn};

use crate::catalog::Catalog;
use crate::desired::{self, Allocations, DesiredState, DownClusters, PlanConfig};
use crate::problem::{Problem, Severity};

#[derive(Debug)]
pub struct Reconciler {
    cluster_id: String,
    config: PlanConfig,
    zone_config: mcwan_dns::ZoneConfig,
    zone: mcwan_dns::ZoneHandle,
    previous: Allocations,
    down: DownClusters,
    reported: BTreeSet<Problem>,
    current: Arc<ArcSwapOption<DesiredState>>,
}

impl Reconciler {
    pub fn new(
        cluster_id: String,
        config: PlanConfig,
        zone_config: mcwan_dns::ZoneConfig,
        zone: mcwan_dns::ZoneHandle,
    ) -> Self {
        Self {
            cluster_id,
            config,
            zone_config,
            zone,
            previous: Allocations::default(),
            down: DownClusters::default(),
            reported: BTreeSet::new(),
            current: Arc::new(ArcSwapOption::empty()),
        }
    }

    /// The last applied desired state, shared with readers (status, metrics).
    pub fn current(&self) -> Arc<ArcSwapOption<DesiredState>> {
        self.current.clone()
    }

    /// Computes the desired state of `catalog` and applies it.
    pub fn apply(&mut self, catalog: &Catalog) {
        let state = desired::compute(desired::Inputs {
            catalog,
            cluster_id: &self.cluster_id,
            config: &self.config,
            previous: &self.previous,
            down: &self.down,
        });
        self.report(&state.problems);
        let records = match mcwan_dns::Zone::build(&self.zone_config, &state.dns) {
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
        info!(
            imports = state.imports.len(),
            exports = state.exports.len(),
            dns_names = records,
            egress_virtual_servers = state.ipvs.egress.len(),
            ingress_virtual_servers = state.ipvs.ingress.len(),
            "applied desired state"
        );
        self.previous = state.allocations.clone();
        self.current.store(Some(Arc::new(state)));
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
