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
use tracing::{debug, info, warn};

pub use responder::{local_addresses, respond, serve as serve_responders, MAGIC};
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
    let mut tokens = Tokens::new();
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
                let Ok((n, from)) = received else { continue };
                let Some(s) = parse_reply(&buf[..n]) else { continue };
                // A reply counts only from the address and port the probe went to: anyone
                // else who learnt a token (or guessed one) cannot keep a dead peer up.
                let expected = pending.get(&s).map(|(t, _)| SocketAddr::new(t.address, config.port));
                if expected != Some(from) {
                    if expected.is_some() {
                        debug!(%from, expected = ?expected, "health reply from the wrong source dropped");
                    }
                    continue;
                }
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
                    let token = tokens.next();
                    let mut probe = MAGIC.to_vec();
                    probe.extend_from_slice(&token.to_be_bytes());
                    if socket.send_to(&probe, SocketAddr::new(target.address, config.port)).await.is_ok() {
                        pending.insert(token, (target.clone(), now));
                    }
                }
                if changed {
                    publish(&health, &down, &metrics);
                }
            }

        }
    }
}

/// Probe tokens nobody off the path can predict: a counter under SipHash with a key drawn at
/// random when the prober starts (std's `RandomState`), so consecutive tokens look unrelated.
struct Tokens {
    key: std::hash::RandomState,
    counter: u64,
}

impl Tokens {
    fn new() -> Self {
        Self {
            key: std::hash::RandomState::new(),
            counter: 0,
        }
    }

    fn next(&mut self) -> u64 {
        use std::hash::BuildHasher;
        self.counter = self.counter.wrapping_add(1);
        self.key.hash_one(self.counter)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{ClassPlan, PeerPlan, TunnelPlan};

    /// A desired state whose only peer, `cluster-1`, is probed at `address`.
    fn one_peer(address: IpAddr) -> DesiredState {
        DesiredState {
            cluster_id: "cluster-2".into(),
            imports: vec![],
            exports: vec![],
            dns: vec![],
            ipvs: Default::default(),
            tunnels: TunnelPlan {
                mode: Default::default(),
                classes: vec![ClassPlan {
                    class: "business".into(),
                    wan_port: 51820,
                    ingress_ports: (30000, 30099),
                    local_address: IpAddr::from([127, 0, 0, 1]),
                    inner_subnet: None,
                    sdwan_next_hop: None,
                    peers: vec![PeerPlan {
                        cluster: "cluster-1".into(),
                        endpoint: SocketAddr::new(address, 51820),
                        address,
                        public_key: None,
                    }],
                }],
            },
            allocations: Default::default(),
            problems: vec![],
        }
    }

    /// Runs the prober against a peer at 127.0.0.2 whose probes are answered by `answer` (given
    /// each probe and the prober's address) for `for_how_long`; returns whether cluster-1 was
    /// ever down.
    async fn peer_ever_down(
        answer: impl Fn(&std::net::UdpSocket, &[u8], SocketAddr) + Send + 'static,
    ) -> bool {
        let peer = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = peer.local_addr().unwrap().port();
        let cancel = CancellationToken::new();
        let responder = std::thread::spawn({
            let cancel = cancel.clone();
            move || {
                let mut buf = [0u8; 64];
                while !cancel.is_cancelled() {
                    if let Ok((n, from)) = peer.recv_from(&mut buf) {
                        answer(&peer, &buf[..n], from);
                    }
                }
            }
        });
        let config = ProbeConfig {
            port,
            interval: Duration::from_millis(10),
            timeout: Duration::from_millis(40),
            thresholds: Thresholds { fall: 3, rise: 1 },
        };
        let (states_tx, states) = watch::channel(None);
        let (down_tx, mut down) = watch::channel(DownClusters::default());
        let prober = tokio::spawn(run(
            config,
            states,
            down_tx,
            Arc::new(Metrics::new()),
            cancel.clone(),
        ));
        states_tx.send_replace(Some(Arc::new(one_peer(IpAddr::from([127, 0, 0, 2])))));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
        let mut ever_down = false;
        while let Ok(Ok(())) = tokio::time::timeout_at(deadline, down.changed()).await {
            ever_down |= down.borrow_and_update().contains("cluster-1");
        }
        cancel.cancel();
        prober.await.unwrap().unwrap();
        responder.join().unwrap();
        ever_down
    }

    #[tokio::test]
    async fn a_peer_that_echoes_stays_up() {
        assert!(
            !peer_ever_down(|peer, probe, from| {
                peer.send_to(probe, from).unwrap();
            })
            .await
        );
    }

    #[tokio::test]
    async fn replies_from_another_address_do_not_keep_a_dead_peer_up() {
        // The forger sees every probe (so it knows the tokens) and answers from 127.0.0.3.
        let forger = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
        assert!(
            peer_ever_down(move |_, probe, from| {
                forger.send_to(probe, from).unwrap();
            })
            .await
        );
    }

    #[test]
    fn tokens_do_not_follow_each_other() {
        let mut tokens = Tokens::new();
        let drawn: Vec<u64> = (0..1000).map(|_| tokens.next()).collect();
        let distinct: BTreeSet<u64> = drawn.iter().copied().collect();
        assert_eq!(distinct.len(), drawn.len());
        assert!(drawn.windows(2).all(|w| w[1].wrapping_sub(w[0]) != 1));
        // Another prober (another key) draws other tokens.
        assert_ne!(Tokens::new().next(), drawn[0]);
    }
}
