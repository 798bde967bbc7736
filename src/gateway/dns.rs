//! The DNS listener, supervised: when it cannot bind or its listener fails, readiness says why
//! and it tries again with backoff, while the rest of the gateway (and its dataplane) goes on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::admin::{DnsObserver, Health, Metrics};

const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub async fn serve(
    zone: mcwan_dns::ZoneHandle,
    listen: SocketAddr,
    udp_workers: usize,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let observer: Arc<dyn mcwan_dns::QueryObserver> = Arc::new(DnsObserver(metrics));
    let mut backoff = Duration::from_millis(200);
    let mut failures = 0u32;
    loop {
        let options = mcwan_dns::ServerOptions {
            observer: Some(observer.clone()),
            udp_workers,
            ..mcwan_dns::ServerOptions::default()
        };
        match mcwan_dns::DnsServer::bind(zone.clone(), &[listen], &options).await {
            Ok(server) => {
                health.pass("dns");
                if failures > 0 {
                    info!(%listen, "DNS listener bound again");
                }
                failures = 0;
                backoff = Duration::from_millis(200);
                let result = server.run(cancel.clone()).await;
                if cancel.is_cancelled() {
                    return Ok(());
                }
                let why = match result {
                    Ok(()) => "the listener stopped".to_owned(),
                    Err(e) => format!("the listener failed: {e}"),
                };
                error!(%listen, "{why}; binding again");
                health.fail("dns", why);
            }
            Err(e) => {
                let why = format!("cannot bind {listen}: {e}");
                if failures == 0 {
                    error!("{why}; retrying with backoff");
                } else {
                    warn!(attempt = failures + 1, "{why}");
                }
                health.fail("dns", why);
            }
        }
        failures += 1;
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
