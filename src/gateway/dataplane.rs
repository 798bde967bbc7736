//! The IPVS dataplane task: follows the desired state and keeps the VIP interface, the IPVS
//! table and the masquerade rules in step with it. On shutdown it leaves everything in place,
//! so a restarted gateway adopts it and established connections live on.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::admin::{Health, Metrics};
use crate::dataplane::ipvs::IpvsActuator;
use crate::dataplane::ipvs_diff::Ownership;
use crate::dataplane::nat::{self, NatRules};
use crate::dataplane::sysctl;
use crate::dataplane::vip_link::VipLink;
use crate::desired::DesiredState;

/// How often draining real servers are looked at.
const DRAIN_CHECK: Duration = Duration::from_secs(1);

pub struct IpvsDataplane {
    pub vip_cidr: IpNet,
    pub masq_mark: u32,
    pub resync_every: Duration,
    /// How long a leaving real server may keep its connections.
    pub drain_grace: Duration,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl IpvsDataplane {
    pub async fn run(
        self,
        mut states: watch::Receiver<Option<Arc<DesiredState>>>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        sysctl::apply();
        let link = VipLink::ensure(self.vip_cidr).await?;
        let mut ownership = Ownership {
            vip_cidr: Some(self.vip_cidr),
            ingress: Vec::new(),
        };
        let mut ipvs = IpvsActuator::new(ownership.clone()).await?;
        ipvs.set_drain_grace(self.drain_grace);
        // While real servers drain, look at their connections every second.
        let mut drain_check = tokio::time::interval(DRAIN_CHECK);
        drain_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut nat_applied: Option<NatRules> = None;
        let mut resync_due = true;
        let mut resync = tokio::time::interval(self.resync_every);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let state = states.borrow_and_update().clone();
            if let Some(state) = state {
                // Ingress ranges only ever join what we own while running, so a class that
                // goes away still has its virtual services removed.
                for class in &state.tunnels.classes {
                    let range = (
                        class.local_address,
                        class.ingress_ports.0,
                        class.ingress_ports.1,
                    );
                    if !ownership.ingress.contains(&range) {
                        ownership.ingress.push(range);
                    }
                }
                ipvs.set_ownership(ownership.clone());
                let started = Instant::now();
                match self
                    .apply(
                        &state,
                        &link,
                        &mut ipvs,
                        &ownership,
                        &mut nat_applied,
                        resync_due,
                    )
                    .await
                {
                    Ok(()) => {
                        resync_due = false;
                        self.health.pass("dataplane");
                    }
                    Err(e) => {
                        error!(error = %e, "dataplane sync failed; retrying after a resync");
                        self.metrics.observe_sync(
                            "ipvs",
                            state.ipvs.egress.len() + state.ipvs.ingress.len(),
                            0,
                            started.elapsed(),
                            false,
                        );
                        self.health.fail("dataplane", e.to_string());
                        resync_due = true;
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    info!("leaving the dataplane in place for the next run");
                    return Ok(());
                }
                changed = states.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                _ = resync.tick() => resync_due = true,
                _ = drain_check.tick(), if ipvs.draining() > 0 => {}
            }
        }
    }

    async fn apply(
        &self,
        state: &DesiredState,
        link: &VipLink,
        ipvs: &mut IpvsActuator,
        ownership: &Ownership,
        nat_applied: &mut Option<NatRules>,
        resync: bool,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let rules = NatRules {
            mark: self.masq_mark,
            vip_cidr: self.vip_cidr,
            ingress: ownership.ingress.clone(),
        };
        if nat_applied.as_ref() != Some(&rules) {
            nat::apply(&rules).await?;
            *nat_applied = Some(rules);
        }
        // The ClusterSetIPs of IPVS, and those the L7 proxies listen on.
        let vips: BTreeSet<IpAddr> = state
            .ipvs
            .egress
            .iter()
            .map(|vs| vs.address)
            .chain(
                state
                    .imports
                    .iter()
                    .filter(|i| i.http.is_some())
                    .filter_map(|i| i.vip),
            )
            .collect();
        link.sync(&vips).await?;
        if resync {
            ipvs.resync().await?;
        }
        let report = ipvs.sync(&state.ipvs).await?;
        let failed = !report.failures.is_empty();
        self.metrics.observe_sync(
            "ipvs",
            report.desired,
            report.desired,
            started.elapsed(),
            !failed,
        );
        for (op, n) in [
            ("add_service", report.services_added),
            ("edit_service", report.services_edited),
            ("delete_service", report.services_deleted),
            ("add_real", report.reals_added),
            ("edit_real", report.reals_edited),
            ("delete_real", report.reals_deleted),
        ] {
            if n > 0 {
                self.metrics.count_operations("ipvs", op, n as u64);
            }
        }
        if report.operations() > 0 {
            info!(
                services = report.desired,
                operations = report.operations(),
                took_ms = started.elapsed().as_millis() as u64,
                "IPVS table updated"
            );
        }
        if failed {
            anyhow::bail!(
                "{} IPVS operations refused: {}",
                report.failures.len(),
                report.failures.join("; ")
            );
        }
        Ok(())
    }
}
