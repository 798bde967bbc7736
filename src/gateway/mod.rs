//! The running gateway: load the catalog, compute and apply the desired state, serve DNS, and
//! follow catalog changes until SIGTERM/SIGINT; then drain with a deadline.
//!
//! Tasks: `dns` (the DNS server, owns its sockets; rebinds with backoff when its listener
//! fails), `admin` (metrics, health, status), `catalog` (watches the directory and wakes the
//! reconciler). If a task ends unexpectedly the gateway shuts down with an error instead of
//! running half-alive.

mod dataplane;
mod dns;
mod l7;
mod reconcile;
mod state;
mod wan;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};

pub use reconcile::Reconciler;
pub use state::StateFile;
pub use watch::{next_change, watch_dir};

use crate::admin::{AdminState, Health, Metrics};
use crate::catalog;
use crate::cli::GatewayCmd;

pub async fn run(cmd: GatewayCmd) -> anyhow::Result<()> {
    raise_open_files_limit();
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    // Installed first: SIGHUP's default action would end the process without a word.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;

    let zone_config = mcwan_dns::ZoneConfig {
        ttl: cmd.ttl,
        ..mcwan_dns::ZoneConfig::for_origin(&cmd.zone)
    };
    let empty = mcwan_dns::Zone::build(&zone_config, &[])
        .with_context(|| format!("zone {:?}", cmd.zone))?;
    let handle = mcwan_dns::ZoneHandle::new(empty.zone);
    let kube = match cmd.kube.kube {
        true => Some(
            crate::kube::KubeGateway::connect(&cmd.kube, cmd.plan.cluster_id.as_deref()).await?,
        ),
        false => None,
    };
    let cluster_id = match &kube {
        Some(kube) => kube.cluster_id().to_owned(),
        None => cmd.plan.cluster_id()?,
    };
    // The built-in example's peers (192.0.2.x, 10.255.x) are not on this host: serving it must
    // send nothing anywhere, so it serves DNS only.
    let example = cmd.plan.catalog.is_none() && kube.is_none();
    if example && cmd.dataplane == crate::cli::Dataplane::Ipvs {
        anyhow::bail!(
            "--dataplane ipvs needs a clusterset: give --catalog DIR or --kube (the built-in example's peers are not on this host)"
        );
    }
    if let Some(warning) = cmd
        .wireguard_private_key
        .as_ref()
        .and_then(mcwan_tunnel::key_file_exposure)
    {
        warn!("{warning}");
    }
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    health.register("reconcile", "no desired state applied yet");
    health.register("dns", "the DNS listener is not bound yet");
    let admin_listener = tokio::net::TcpListener::bind(cmd.admin_listen)
        .await
        .with_context(|| format!("cannot serve the admin endpoint on {}", cmd.admin_listen))?;
    let mut reconciler = Reconciler::new(
        cluster_id.clone(),
        cmd.plan.plan_config(),
        zone_config,
        handle.clone(),
        metrics.clone(),
        health.clone(),
    );

    // Watch before the first load, so that no change between the two is missed.
    let watched = match &cmd.plan.catalog {
        Some(dir) => {
            let (watcher, changes) =
                watch_dir(dir).with_context(|| format!("cannot watch {}", dir.display()))?;
            Some((dir.clone(), watcher, changes))
        }
        None if kube.is_some() => None,
        None => {
            warn!(cluster_id = %cluster_id, "no --catalog: serving the example clusterset built into mcwan");
            None
        }
    };
    info!(dns = %cmd.dns_listen, admin = %cmd.admin_listen, zone = %cmd.zone, cluster_id = %cluster_id, "gateway starting");

    let mut tasks = JoinSet::new();
    tasks.spawn(
        dns::serve(
            handle.clone(),
            cmd.dns_listen,
            cmd.dns_udp_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            metrics.clone(),
            health.clone(),
            cancel.child_token(),
        )
        .instrument(info_span!("dns", listen = %cmd.dns_listen)),
    );
    let admin = AdminState {
        metrics: metrics.clone(),
        health: health.clone(),
        current: reconciler.subscribe(),
        clusters: kube.as_ref().map(|k| k.health()),
        status_remote: cmd.admin_status_remote,
    };
    tasks.spawn(
        {
            let cancel = cancel.child_token();
            async move {
                crate::admin::serve(admin_listener, admin, cancel)
                    .await
                    .map_err(anyhow::Error::from)
            }
        }
        .instrument(info_span!("admin", listen = %cmd.admin_listen)),
    );
    if example && cmd.health_port != 0 {
        info!("built-in example: health probing is off (its peers are not on this host)");
    }
    if cmd.health_port != 0 && !example {
        tasks.spawn(
            crate::probe::serve_responders(
                cmd.health_port,
                reconciler.subscribe(),
                cancel.child_token(),
            )
            .instrument(info_span!("health_responder", port = cmd.health_port)),
        );
        let (down_tx, down_rx) =
            tokio::sync::watch::channel(crate::desired::DownClusters::default());
        reconciler.follow_health(down_rx);
        let config = crate::probe::ProbeConfig {
            port: cmd.health_port,
            interval: cmd.health_interval_ms.max(Duration::from_millis(10)),
            timeout: cmd.health_timeout_ms.max(Duration::from_millis(10)),
            thresholds: crate::probe::Thresholds {
                fall: cmd.health_fall,
                rise: cmd.health_rise,
            },
        };
        tasks.spawn(
            crate::probe::run(
                config,
                reconciler.subscribe(),
                down_tx,
                metrics.clone(),
                cancel.child_token(),
            )
            .instrument(info_span!("health_prober")),
        );
    }
    if cmd.dataplane == crate::cli::Dataplane::Ipvs {
        health.register("dataplane", "IPVS not programmed yet");
        let dataplane = dataplane::IpvsDataplane {
            vip_cidr: cmd.plan.vip_cidr,
            masq_mark: cmd.masq_mark,
            resync_every: cmd.resync_seconds.max(Duration::from_secs(1)),
            drain_grace: cmd.drain_seconds,
            metrics: metrics.clone(),
            health: health.clone(),
        };
        let states = reconciler.subscribe();
        tasks.spawn(
            dataplane
                .run(states, cancel.child_token())
                .instrument(info_span!("ipvs")),
        );
        health.register("l7", "L7 proxies not started yet");
        let proxies = l7::L7Proxies {
            masq_mark: cmd.masq_mark,
            metrics: metrics.clone(),
            health: health.clone(),
        };
        tasks.spawn(l7::run_on_own_thread(
            proxies,
            reconciler.subscribe(),
            cancel.child_token(),
        ));
        health.register("wan", "tunnels or SD-WAN hand-off not applied yet");
        let wan = wan::WanDataplane {
            private_key: cmd.wireguard_private_key.clone(),
            backend: cmd.wireguard_backend.into(),
            rule_priority: cmd.rule_priority,
            metrics: metrics.clone(),
            health: health.clone(),
        };
        tasks.spawn(
            wan.run(reconciler.subscribe(), cancel.child_token())
                .instrument(info_span!("wan")),
        );
    }
    match (watched, kube) {
        (_, Some(kube)) => {
            tokio::spawn(ignore_hangups(
                hangups,
                "Kubernetes mode follows the API server; nothing to reload",
            ));
            let run = kube.run(reconciler, cancel.clone());
            tasks.spawn(
                async move { run.await.map_err(anyhow::Error::from) }
                    .instrument(info_span!("kube", cluster_id = %cluster_id)),
            );
        }
        (None, None) => {
            tokio::spawn(ignore_hangups(
                hangups,
                "the built-in example has no catalog to reload",
            ));
            reconciler.apply(&catalog::embedded_example());
        }
        (Some((dir, watcher, changes)), None) => {
            let state = match &cmd.state_dir {
                Some(state_dir) => {
                    let (file, vips) = StateFile::open(state_dir, &cluster_id)?;
                    info!(path = %file.path().display(), vips = vips.len(), "allocations read back");
                    reconciler.previous_mut().vips = vips;
                    Some(file)
                }
                None => {
                    warn!("no --state-dir: ClusterSetIPs are kept in memory only, and a restart may give a service another one");
                    None
                }
            };
            let span = info_span!("catalog", dir = %dir.display());
            let source = WatchedCatalog {
                dir,
                _watcher: watcher,
                changes,
                hangups,
            };
            let follow = follow_catalog(source, reconciler, state, health.clone(), cancel.clone());
            tasks.spawn(follow.instrument(span));
        }
    }

    // Supervise: the first task to end (with or without error) before shutdown is a failure.
    let mut result = Ok(());
    tokio::select! {
        _ = cancel.cancelled() => {}
        Some(ended) = tasks.join_next() => {
            if !cancel.is_cancelled() {
                result = match ended {
                    Ok(Ok(())) => Err(anyhow::anyhow!("a gateway task ended unexpectedly")),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(anyhow::anyhow!("a gateway task failed: {e}")),
                };
                error!("shutting down: {result:?}");
                cancel.cancel();
            }
        }
    }
    let deadline = cmd.shutdown_grace;
    if tokio::time::timeout(deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        warn!(?deadline, "tasks did not stop in time; leaving them");
    }
    info!("gateway stopped");
    result
}

/// A catalog directory and what wakes its reloads: file changes (while the watcher lives) and
/// SIGHUP.
struct WatchedCatalog {
    dir: std::path::PathBuf,
    _watcher: notify::RecommendedWatcher,
    changes: watch::Changes,
    hangups: tokio::signal::unix::Signal,
}

/// Loads the catalog directory, then reloads and applies it on every change. Until a catalog
/// first loads, readiness says why; afterwards a catalog that no longer loads is logged and the
/// last good one stays in force.
async fn follow_catalog(
    source: WatchedCatalog,
    mut reconciler: Reconciler,
    mut state: Option<StateFile>,
    health: Arc<Health>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let WatchedCatalog {
        dir,
        mut changes,
        mut hangups,
        ..
    } = source;
    // Whether a catalog was loaded (the loader keeps it).
    let mut applied = false;
    let mut loader = catalog::CatalogDir::new(&dir);
    // What changed since the last load; `None`: anything may have.
    let mut changed: watch::ChangedPaths = None;
    loop {
        // Loading and planning a large catalog takes a while: keep it off the async workers,
        // so DNS goes on answering from the current zone meanwhile.
        let loaded = tokio::task::block_in_place(|| {
            let started = std::time::Instant::now();
            let loaded = loader.load_changed(changed.take().as_ref());
            debug!(
                load_ms = started.elapsed().as_millis() as u64,
                "catalog read"
            );
            loaded.inspect(|catalog| apply_static(&mut reconciler, catalog, &mut state))
        });
        match loaded {
            Ok(_) => applied = true,
            Err(e) if applied => {
                error!(error = %e, "catalog not reloaded; keeping the last good one")
            }
            Err(e) => {
                error!(error = %e, "no catalog loaded yet; waiting for the directory to change");
                health.fail("reconcile", format!("no catalog loaded yet: {e}"));
            }
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                change = next_change(&mut changes) => {
                    let Some(paths) = change else {
                        anyhow::bail!("the catalog watcher stopped");
                    };
                    changed = paths;
                    break;
                }
                Some(()) = hangups.recv() => {
                    info!("SIGHUP: reloading the catalog");
                    break;
                }
                _ = reconciler.health_changed() => {
                    if let Some(catalog) = loader.current() {
                        tokio::task::block_in_place(|| apply_static(&mut reconciler, catalog, &mut state));
                    }
                }
            }
        }
    }
}

/// Applies a static catalog. What peers must agree on (ingress ports, inner subnets) is computed
/// from the catalog alone, never from this gateway's history, so that the exporting and the
/// importing gateways reach the same answer whenever they read the same catalog, restarted or
/// not. ClusterSetIPs are this cluster's own: they stay put, and are saved to the state file.
pub fn apply_static(
    reconciler: &mut Reconciler,
    catalog: &catalog::Catalog,
    state: &mut Option<StateFile>,
) {
    let previous = reconciler.previous_mut();
    previous.ingress_ports.clear();
    previous.class_subnets.clear();
    reconciler.apply(catalog);
    if let (Some(file), Some(applied)) = (state.as_mut(), reconciler.latest()) {
        if let Err(e) = file.save(&applied.allocations.vips) {
            error!(path = %file.path().display(), error = %e, "allocations not saved: a restart now may move ClusterSetIPs");
        }
    }
}

/// Raises the soft limit of open files to the hard one (as Go programs do on start): each DNS
/// and admin connection holds a descriptor, and the listeners cap their connections well below
/// the usual hard limits. systemd's unit and the DaemonSet set the hard limit.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => info!(from = soft, to = hard, "raised the open files limit"),
            Err(e) => warn!(error = %e, soft, hard, "cannot raise the open files limit"),
        },
        Ok((soft, _)) => info!(limit = soft, "open files limit"),
        Err(e) => warn!(error = %e, "cannot read the open files limit"),
    }
}

/// Logs each SIGHUP and goes on (a gateway without a catalog directory has nothing to reload).
async fn ignore_hangups(mut hangups: tokio::signal::unix::Signal, why: &'static str) {
    while hangups.recv().await.is_some() {
        info!("SIGHUP ignored: {why}");
    }
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        error!("cannot install the SIGTERM handler");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
    }
    cancel.cancel();
}
