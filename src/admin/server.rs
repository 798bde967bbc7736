//! The admin HTTP server (hyper, HTTP/1.1, one task per connection).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use tracing::{debug, info, warn};

use super::{Check, Health, Metrics};
use crate::desired::DesiredState;
use crate::kube::{ClusterHealth, Reachability};
use crate::model::ClusterId;

/// What the admin endpoint reads.
#[derive(Clone, Debug)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub current: tokio::sync::watch::Receiver<Option<Arc<DesiredState>>>,
    /// Kubernetes mode: whether this cluster's and the peers' API servers answer.
    pub clusters: Option<Arc<ClusterHealth>>,
    /// Serve `/status` (the whole clusterset's topology) to clients other than loopback ones.
    pub status_remote: bool,
}

/// `/status` as JSON.
#[derive(Debug, Serialize)]
pub struct StatusReport<'a> {
    pub ready: bool,
    pub checks: BTreeMap<&'static str, Check>,
    /// Kubernetes mode: each cluster's API server, by cluster ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clusters: Option<BTreeMap<ClusterId, Reachability>>,
    /// The last applied desired state; absent before the first reconcile.
    pub state: Option<&'a DesiredState>,
}

/// Connections held at once; at the cap a new one closes the oldest, so a flood of idle
/// connections cannot keep Prometheus or the kubelet's probes out.
pub const MAX_CONNECTIONS: usize = 256;
/// A client must send a request's headers within this long (a slowloris is cut off).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed after this long, whatever it does (scrapers reconnect).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How long accepting backs off when the process is out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the admin endpoint on `listener` until `cancel` fires. Errors of `accept` are
/// logged and retried, never the end of the endpoint (or of the gateway).
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    info!(listen = %listener.local_addr()?, "admin endpoint serving");
    let slots = Arc::new(mcwan_dns::ConnectionSlots::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut last_warning: Option<Instant> = None;
    let mut warn_every = |what: std::fmt::Arguments<'_>| {
        if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            warn!("admin endpoint: {what}");
            last_warning = Some(Instant::now());
        }
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn_every(format_args!("accept failed ({e}); retrying"));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let admitted = slots.admit(&cancel);
        if admitted.evicted > 0 {
            warn_every(format_args!(
                "{MAX_CONNECTIONS} connections open; closing the oldest"
            ));
        }
        let state = state.clone();
        let slots = slots.clone();
        connections.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, &req, peer.ip())) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(io, service);
            tokio::select! {
                () = admitted.token.cancelled() => {}
                ended = tokio::time::timeout(CONNECTION_LIFETIME, connection) => match ended {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!(%peer, error = %e, "admin connection ended with an error"),
                    Err(_) => debug!(%peer, "admin connection closed at the end of its lifetime"),
                },
            }
            slots.release(admitted.id);
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
    Ok(())
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

fn route<B>(
    state: &AdminState,
    req: &Request<B>,
    client: std::net::IpAddr,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".into(),
        );
    }
    let query = req.uri().query().unwrap_or("");
    match req.uri().path() {
        "/metrics" => {
            if let Some(clusters) = &state.clusters {
                state.metrics.observe_clusters(&clusters.snapshot());
            }
            respond(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                state.metrics.encode(),
            )
        }
        "/healthz" | "/livez" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => {
            let code = if state.health.ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond(code, "text/plain", state.health.report())
        }
        "/status" if !state.status_remote && !client.to_canonical().is_loopback() => respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            "/status is served to loopback clients only: run `mcwan status` on the gateway's host \
             (or `kubectl port-forward` to it), or start the gateway with --admin-status-remote\n"
                .into(),
        ),
        "/status" => {
            let current = state.current.borrow().clone();
            let clusters = state.clusters.as_ref().map(|c| c.snapshot());
            if query.split('&').any(|kv| kv == "format=table") {
                let mut text = state.health.report();
                if let Some(clusters) = &clusters {
                    text.push_str(&crate::render::cluster_api_table(clusters));
                }
                match &current {
                    Some(s) => text.push_str(&crate::render::plan_table(s)),
                    None => text.push_str("no desired state applied yet\n"),
                }
                return respond(StatusCode::OK, "text/plain", text);
            }
            let report = StatusReport {
                ready: state.health.ready(),
                checks: state.health.checks(),
                clusters,
                state: current.as_deref(),
            };
            match serde_json::to_string_pretty(&report) {
                Ok(json) => respond(StatusCode::OK, "application/json", json),
                Err(e) => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("{e}\n"),
                ),
            }
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz, /readyz, /status\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status_remote: bool) -> AdminState {
        AdminState {
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::default()),
            current: tokio::sync::watch::channel(None).1,
            clusters: None,
            status_remote,
        }
    }

    fn get(state: &AdminState, path: &str, client: [u8; 4]) -> StatusCode {
        let req = Request::get(path).body(()).unwrap();
        route(state, &req, client.into()).status()
    }

    #[test]
    fn status_is_served_to_loopback_clients_only_unless_asked() {
        let local = state(false);
        assert_eq!(get(&local, "/status", [127, 0, 0, 1]), StatusCode::OK);
        assert_eq!(
            get(&local, "/status?format=table", [127, 0, 0, 1]),
            StatusCode::OK
        );
        assert_eq!(get(&local, "/status", [10, 0, 0, 7]), StatusCode::FORBIDDEN);
        assert_eq!(
            get(&local, "/status?format=table", [10, 0, 0, 7]),
            StatusCode::FORBIDDEN
        );
        // Probes and scrapes come from the node's network: those stay open to all.
        for path in ["/metrics", "/healthz", "/livez", "/readyz"] {
            assert_ne!(
                get(&local, path, [10, 0, 0, 7]),
                StatusCode::FORBIDDEN,
                "{path}"
            );
        }
        assert_eq!(get(&state(true), "/status", [10, 0, 0, 7]), StatusCode::OK);
        // An IPv4-mapped loopback client is a loopback client.
        let req = Request::get("/status").body(()).unwrap();
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(route(&local, &req, mapped).status(), StatusCode::OK);
    }
}
