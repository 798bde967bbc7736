//! The L7 task: for each imported service with a WANRoute, mcwan's HTTP proxy listening on its
//! ClusterSetIP's TCP ports in place of IPVS virtual services (the plan leaves those ports out
//! of the egress table). It follows the desired state: a new service gets a listener, a
//! changed one's rules and backends are swapped in for the requests after, a service that
//! leaves (or loses its rules) has its listener closed.
//!
//! Listeners bind with IP_FREEBIND: the IPVS task puts the ClusterSetIP on `mcwan0`, and the
//! proxy need not wait for it. A listener that cannot bind is retried every second, and the
//! `l7` readiness check names it meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::admin::{Health, Metrics};
use crate::desired::{DesiredState, Import};
use crate::l7::proxy::{Backend, ProxyConfig, ProxyOptions, ServiceProxy};
use crate::l7::route::Routes;
use crate::model::Protocol;

const RETRY: Duration = Duration::from_secs(1);
/// Connections waiting to be accepted, per listener.
const BACKLOG: u32 = 1024;

pub struct L7Proxies {
    /// The mark the gateway masquerades by, set on the proxies' upstream connections.
    pub masq_mark: u32,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

struct Running {
    proxy: Arc<ServiceProxy>,
    stop: CancellationToken,
}

/// What the proxy on each listener address should do, from the desired state. A service whose
/// rules cannot be turned into routes is left out and reported.
fn wanted(state: &DesiredState) -> BTreeMap<SocketAddr, ProxyConfig> {
    let mut out = BTreeMap::new();
    for import in &state.imports {
        let (Some(vip), Some(http)) = (import.vip, &import.http) else {
            continue;
        };
        let routes = match Routes::from_model(&http.rules, &http.default) {
            Ok(r) => r,
            Err(e) => {
                error!(service = %import.key, "WANRoute {} of cluster {}: {e}; its requests are not proxied", import.key, http.source);
                continue;
            }
        };
        for port in tcp_ports(import) {
            let backends = http
                .classes
                .iter()
                .map(|c| {
                    let backends = c
                        .backends
                        .iter()
                        .filter(|b| b.service_port == port)
                        .map(|b| Backend {
                            addr: SocketAddr::new(b.address, b.port),
                            weight: b.weight,
                        })
                        .collect();
                    (c.wan_policy.clone(), backends)
                })
                .collect();
            out.insert(
                SocketAddr::new(vip, port),
                ProxyConfig {
                    service: import.key.to_string(),
                    routes: routes.clone(),
                    backends,
                },
            );
        }
    }
    out
}

fn tcp_ports(import: &Import) -> impl Iterator<Item = u16> + '_ {
    import
        .ports
        .iter()
        .filter(|p| p.protocol == Protocol::Tcp)
        .map(|p| p.port)
}

/// A listening socket on `addr`, bound even while the address is not on an interface yet.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = crate::l7::proxy::tcp_socket(addr)?;
    socket.set_reuseaddr(true)?;
    nix::sys::socket::setsockopt(
        &socket.as_fd(),
        nix::sys::socket::sockopt::IpFreebind,
        &true,
    )
    .map_err(std::io::Error::from)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Runs the proxies on a thread of their own with a single-threaded runtime (what bench/l7
/// measures: a request is handled where it arrived, with no hand-off between worker threads,
/// about a fifth less CPU per request than on the gateway's multi-threaded runtime); the
/// returned future ends when they do.
pub async fn run_on_own_thread(
    proxies: L7Proxies,
    states: watch::Receiver<Option<Arc<DesiredState>>>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let (done, ended) = tokio::sync::oneshot::channel();
    let span = tracing::info_span!("l7");
    std::thread::Builder::new()
        .name("mcwan-l7".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| {
                    let _entered = span.enter();
                    runtime.block_on(proxies.run(states, cancel))
                });
            let _ = done.send(result);
        })?;
    ended
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the L7 proxies' thread ended")))
}

impl L7Proxies {
    pub async fn run(
        self,
        mut states: watch::Receiver<Option<Arc<DesiredState>>>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut running: BTreeMap<SocketAddr, Running> = BTreeMap::new();
        let mut unbound: BTreeSet<SocketAddr> = BTreeSet::new();
        let mut retry = tokio::time::interval(RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let state = states.borrow_and_update().clone();
            if let Some(state) = state {
                unbound = self.sync(&state, &mut running);
            }
            tokio::select! {
                () = cancel.cancelled() => {
                    for r in running.values() {
                        r.stop.cancel();
                    }
                    return Ok(());
                }
                changed = states.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                _ = retry.tick(), if !unbound.is_empty() => {}
            }
        }
    }

    /// Brings the listeners in step with `state`; returns the addresses that could not bind.
    fn sync(
        &self,
        state: &DesiredState,
        running: &mut BTreeMap<SocketAddr, Running>,
    ) -> BTreeSet<SocketAddr> {
        let wanted = wanted(state);
        running.retain(|addr, r| {
            let keep = wanted.contains_key(addr);
            if !keep {
                info!(listen = %addr, "L7 proxy closed");
                r.stop.cancel();
            }
            keep
        });
        let mut unbound = BTreeSet::new();
        let mut why = Vec::new();
        for (addr, config) in wanted {
            if let Some(r) = running.get(&addr) {
                r.proxy.update(config);
                continue;
            }
            match listen(addr) {
                Ok(listener) => {
                    info!(listen = %addr, service = %config.service, "L7 proxy listening");
                    let options = ProxyOptions {
                        upstream_mark: Some(self.masq_mark),
                        ..ProxyOptions::default()
                    };
                    let proxy =
                        ServiceProxy::with_options(config, self.metrics.l7.clone(), options);
                    let stop = CancellationToken::new();
                    tokio::spawn(proxy.clone().serve(listener, stop.clone()));
                    running.insert(addr, Running { proxy, stop });
                }
                Err(e) => {
                    warn!(listen = %addr, service = %config.service, error = %e, "L7 proxy cannot listen; retrying");
                    why.push(format!("{} on {addr}: {e}", config.service));
                    unbound.insert(addr);
                }
            }
        }
        if why.is_empty() {
            self.health.pass("l7");
        } else {
            self.health.fail(
                "l7",
                format!("L7 proxies not listening: {}", why.join("; ")),
            );
        }
        unbound
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{self, Allocations, PlanConfig};

    #[test]
    fn each_tcp_port_of_a_routed_import_gets_a_proxy_with_that_port_s_backends() {
        let catalog = crate::l7::fixtures::example_with_seed_route();
        let state = desired::compute(desired::Inputs {
            catalog: &catalog,
            cluster_id: "cluster-2",
            config: &PlanConfig::default(),
            previous: &Allocations::default(),
            down: &Default::default(),
        });
        let wanted = wanted(&state);
        let payment = state
            .imports
            .iter()
            .find(|i| i.key.name == "payment")
            .unwrap();
        let addr = SocketAddr::new(payment.vip.unwrap(), 8080);
        assert_eq!(wanted.keys().collect::<Vec<_>>(), [&addr]);
        let config = &wanted[&addr];
        assert_eq!(config.service, "secure/payment");
        let classes: Vec<&str> = config.backends.keys().map(String::as_str).collect();
        assert_eq!(classes, ["sd-wan-priority-high", "sd-wan-priority-low"]);
        let ports: Vec<u16> = config
            .backends
            .values()
            .map(|b| {
                assert_eq!(b.len(), 1);
                b[0].addr.port()
            })
            .collect();
        assert!((31100..31110).contains(&ports[0]), "{ports:?}");
        assert!((31200..31210).contains(&ports[1]), "{ports:?}");
        assert_eq!(config.routes.rules.len(), 2);
    }

    #[tokio::test]
    async fn a_listener_binds_before_its_address_exists() {
        // An address no interface has (TEST-NET-2): IP_FREEBIND lets it bind; nothing is sent.
        let addr: SocketAddr = "198.51.100.7:0".parse().unwrap();
        let listener = listen(addr).unwrap();
        assert_eq!(listener.local_addr().unwrap().ip(), addr.ip());
    }
}
