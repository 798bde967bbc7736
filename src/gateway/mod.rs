//! The running gateway: load the catalog, compute and apply the desired state, serve DNS, and
//! follow catalog changes until SIGTERM/SIGINT; then drain with a deadline.
//!
//! Tasks: `dns` (the DNS server, owns its sockets), `catalog` (watches the directory and wakes
//! the reconciler). If either ends unexpectedly the gateway shuts down with an error instead of
//! running half-alive.

mod reconcile;
mod watch;

use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};

pub use reconcile::Reconciler;
pub use watch::{next_change, watch_dir};

use crate::catalog;
use crate::cli::GatewayCmd;

pub async fn run(cmd: GatewayCmd) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));

    let zone_config = mcwan_dns::ZoneConfig {
        ttl: cmd.ttl,
        ..mcwan_dns::ZoneConfig::for_origin(&cmd.zone)
    };
    let empty = mcwan_dns::Zone::build(&zone_config, &[])
        .with_context(|| format!("zone {:?}", cmd.zone))?;
    let handle = mcwan_dns::ZoneHandle::new(empty.zone);
    let cluster_id = cmd.plan.cluster_id()?;
    let mut reconciler = Reconciler::new(
        cluster_id.clone(),
        cmd.plan.plan_config(),
        zone_config,
        handle.clone(),
    );

    // Watch before the first load, so that no change between the two is missed.
    let watched = match &cmd.plan.catalog {
        Some(dir) => {
            let (watcher, changes) =
                watch_dir(dir).with_context(|| format!("cannot watch {}", dir.display()))?;
            Some((dir.clone(), watcher, changes))
        }
        None => {
            warn!(cluster_id = %cluster_id, "no --catalog: serving the example clusterset built into mcwan");
            None
        }
    };
    reconciler.apply(&cmd.plan.load_catalog()?);

    let server = mcwan_dns::DnsServer::bind(
        handle.clone(),
        &[cmd.dns_listen],
        &mcwan_dns::ServerOptions::default(),
    )
    .await
    .with_context(|| format!("cannot serve DNS on {}", cmd.dns_listen))?;
    info!(listen = %cmd.dns_listen, zone = %cmd.zone, cluster_id = %cluster_id, "gateway serving");

    let mut tasks = JoinSet::new();
    tasks.spawn(
        {
            let cancel = cancel.child_token();
            async move { server.run(cancel).await.map_err(anyhow::Error::from) }
        }
        .instrument(info_span!("dns", listen = %cmd.dns_listen)),
    );
    if let Some((dir, watcher, changes)) = watched {
        let span = info_span!("catalog", dir = %dir.display());
        tasks.spawn(
            follow_catalog(dir, watcher, changes, reconciler, cancel.clone()).instrument(span),
        );
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
    let deadline = Duration::from_secs(cmd.shutdown_grace);
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

/// Reloads the catalog directory on every change and applies it. A catalog that no longer loads
/// is logged and the last good one stays in force.
async fn follow_catalog(
    dir: std::path::PathBuf,
    _watcher: notify::RecommendedWatcher,
    mut changes: tokio::sync::mpsc::Receiver<()>,
    mut reconciler: Reconciler,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            change = next_change(&mut changes) => {
                if change.is_none() {
                    anyhow::bail!("the catalog watcher stopped");
                }
                match catalog::load_dir(&dir) {
                    Ok(catalog) => reconciler.apply(&catalog),
                    Err(e) => error!(error = %e, "catalog not reloaded; keeping the last good one"),
                }
            }
        }
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
