//! Active health checks of the peer gateways, per tunnel class: each gateway echoes small UDP
//! probes on its health port; each gateway probes every peer on every class it shares, over that
//! class's path (so a broken tunnel counts), and marks a peer down after `fall` consecutive
//! misses and up again after `rise` consecutive answers. A cluster whose gateway is down on
//! every class is drained from IPVS and DNS by the desired state, so traffic fails over to the
//! other exporting clusters.
//!
//! With the defaults (every 100 ms, 250 ms timeout, fall 3) a dead gateway is drained within
//! about 0.6 s.

mod responder;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use responder::{respond, MAGIC};
pub use state::{PeerHealth, Thresholds};

use crate::admin::Metrics;
use crate::desired::{DesiredState, DownClusters};
use crate::model::{ClusterId, TunnelClass};

/// Probing settings.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub port: u16,
    pub interval: Duration,
    pub timeout: Duration,
    pub thresholds: Thresholds,
}

/// One probed path: a peer on a class, at an address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    cluster: ClusterId,
    class: TunnelClass,
    address: IpAddr,
}

fn targets(state: &DesiredState) -> BTreeSet<Target> {
    state
        .tunnels
        .classes
        .iter()
        .flat_map(|c| {
            c.peers.iter().map(|p| Target {
                cluster: p.cluster.clone(),
                class: c.class.clone(),
                address: p.address,
            })
        })
        .collect()
}

/// Probes the peers of the newest desired state and publishes the clusters that are down.
pub async fn run(
    config: ProbeConfig,
    mut states: watch::Receiver<Option<Arc<DesiredState>>>,
    down: watch::Sender<DownClusters>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).await?;
    let mut health: BTreeMap<Target, PeerHealth> = BTreeMap::new();
    let mut pending: BTreeMap<u64, (Target, Instant)> = BTreeMap::new();
    let mut seq: u64 = 0;
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            // Replies first: one that has arrived must not be counted a miss because the tick
            // was looked at before it.
            biased;
            _ = cancel.cancelled() => return Ok(()),
            received = socket.recv_from(&mut buf) => {
                let Ok((n, _)) = received else { continue };
                let Some(s) = parse_reply(&buf[..n]) else { continue };
                if let Some((target, sent)) = pending.remove(&s) {
                    let rtt = sent.elapsed();
                    metrics.peer_rtt.get_or_create(&crate::admin::PeerLabels { cluster: target.cluster.clone(), class: target.class.clone() }).observe(rtt.as_secs_f64());
                    if let Some(h) = health.get_mut(&target) {
                        if h.answer() {
                            publish(&health, &down, &metrics);
                        }
                    }
                }
            }
            _ = states.changed() => {
                let wanted = states.borrow_and_update().as_deref().map(targets).unwrap_or_default();
                health.retain(|t, _| wanted.contains(t));
                for t in wanted {
                    health.entry(t).or_insert_with(|| PeerHealth::new(config.thresholds));
                }
                publish(&health, &down, &metrics);
            }
            _ = tick.tick() => {
                // Probes not answered in time are misses.
                let now = Instant::now();
                let expired: Vec<u64> = pending.iter().filter(|(_, (_, sent))| now - *sent > config.timeout).map(|(s, _)| *s).collect();
                let mut changed = false;
                for s in expired {
                    if let Some((target, _)) = pending.remove(&s) {
                        if let Some(h) = health.get_mut(&target) {
                            changed |= h.miss();
                        }
                    }
                }
                for target in health.keys() {
                    seq = seq.wrapping_add(1);
                    let mut probe = MAGIC.to_vec();
                    probe.extend_from_slice(&seq.to_be_bytes());
                    if socket.send_to(&probe, SocketAddr::new(target.address, config.port)).await.is_ok() {
                        pending.insert(seq, (target.clone(), now));
                    }
                }
                if changed {
                    publish(&health, &down, &metrics);
                }
            }

        }
    }
}

fn parse_reply(packet: &[u8]) -> Option<u64> {
    let rest = packet.strip_prefix(MAGIC)?;
    Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?))
}

/// A cluster is down when its gateway fails on every class probed.
fn publish(
    health: &BTreeMap<Target, PeerHealth>,
    down: &watch::Sender<DownClusters>,
    metrics: &Metrics,
) {
    let mut by_cluster: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (t, h) in health {
        let e = by_cluster.entry(&t.cluster).or_default();
        e.0 += 1;
        if !h.is_up() {
            e.1 += 1;
        }
        metrics
            .peer_up
            .get_or_create(&crate::admin::PeerLabels {
                cluster: t.cluster.clone(),
                class: t.class.clone(),
            })
            .set(i64::from(h.is_up()));
    }
    let now: DownClusters = by_cluster
        .into_iter()
        .filter(|(_, (n, d))| n == d)
        .map(|(c, _)| c.to_owned())
        .collect();
    down.send_if_modified(|current| {
        if *current == now {
            return false;
        }
        for c in now.difference(current) {
            warn!(cluster = %c, "peer gateway down: draining it");
        }
        for c in current.difference(&now) {
            info!(cluster = %c, "peer gateway up again");
        }
        *current = now;
        true
    });
}
