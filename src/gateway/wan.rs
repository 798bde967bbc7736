//! The WAN task: follows the tunnel plan of the desired state and applies it with
//! `mcwan_tunnel` — one WireGuard interface per tunnel class, or the SD-WAN hand-off routes —
//! as diffs, and reports each peer's handshake age and traffic. The private key file is read
//! again on every sync, so replacing it (a rotated Secret) rotates the key in place.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mcwan_tunnel::{Backend, Handoff, Key, Tunnels};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::admin::{Health, Metrics, PeerLabels};
use crate::catalog::WanMode;
use crate::dataplane::wan::{handoff_specs, tunnel_specs};
use crate::desired::DesiredState;

/// How often tunnel status is read (and the key file checked).
const STATUS_EVERY: Duration = Duration::from_secs(5);

pub struct WanDataplane {
    pub private_key: Option<PathBuf>,
    pub backend: Backend,
    pub rule_priority: u32,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl WanDataplane {
    pub async fn run(
        self,
        mut states: watch::Receiver<Option<Arc<DesiredState>>>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut tunnels: Option<Tunnels> = None;
        let mut handoff: Option<Handoff> = None;
        let mut tick = tokio::time::interval(STATUS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let state = states.borrow_and_update().clone();
            if let Some(state) = state {
                match self.sync(&state, &mut tunnels, &mut handoff).await {
                    Ok(()) => self.health.pass("wan"),
                    Err(e) => {
                        error!(error = %e, "WAN sync failed; retrying");
                        self.health.fail("wan", e.to_string());
                    }
                }
            }
            if let Some(t) = &tunnels {
                self.report(t).await;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                changed = states.changed() => if changed.is_err() { return Ok(()) },
                _ = tick.tick() => {}
            }
        }
    }

    async fn sync(
        &self,
        state: &DesiredState,
        tunnels: &mut Option<Tunnels>,
        handoff: &mut Option<Handoff>,
    ) -> anyhow::Result<()> {
        match state.tunnels.mode {
            WanMode::Wireguard => {
                let Some(path) = &self.private_key else {
                    anyhow::bail!("WireGuard mode needs --wireguard-private-key");
                };
                let key =
                    Key::from_file(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                if tunnels.is_none() {
                    let t = Tunnels::new(self.backend).await?;
                    info!(backend = ?t.backend(), "WireGuard tunnels");
                    *tunnels = Some(t);
                }
                let Some(t) = tunnels.as_mut() else {
                    return Ok(());
                };
                let underlay = match state
                    .tunnels
                    .classes
                    .iter()
                    .flat_map(|c| c.peers.iter())
                    .next()
                {
                    Some(p) => t.underlay_mtu(p.endpoint.ip()).await.ok().flatten(),
                    None => None,
                };
                let mtu = mcwan_tunnel::mtu::for_underlay(underlay);
                let mut problems = Vec::new();
                let specs = tunnel_specs(&state.tunnels, &key, mtu, &mut problems);
                for p in problems {
                    warn!(object = %p.object, field = p.field.as_deref().unwrap_or("-"), "{}", p.message);
                }
                let report = t.apply(&specs).await?;
                if !report.is_noop() {
                    info!(?report, "tunnels updated");
                }
                if !report.failed.is_empty() {
                    anyhow::bail!(
                        "{} tunnels failed: {:?}",
                        report.failed.len(),
                        report.failed
                    );
                }
            }
            WanMode::Sdwan => {
                if handoff.is_none() {
                    *handoff = Some(Handoff::new()?);
                }
                if let Some(h) = handoff.as_ref() {
                    let report = h
                        .apply(&handoff_specs(&state.tunnels, self.rule_priority))
                        .await?;
                    info!(?report, "SD-WAN hand-off applied");
                }
            }
        }
        Ok(())
    }

    async fn report(&self, tunnels: &Tunnels) {
        let Ok(status) = tunnels.status().await else {
            return;
        };
        for tunnel in status {
            for peer in tunnel.peers {
                let labels = PeerLabels {
                    cluster: peer.name.clone(),
                    class: tunnel.class.clone(),
                };
                let at = peer
                    .last_handshake_age
                    .and_then(|age| std::time::SystemTime::now().checked_sub(age));
                self.metrics
                    .observe_tunnel(&labels, at, peer.rx_bytes, peer.tx_bytes);
            }
        }
    }
}
