//! The HTTP proxy of one service with L7 rules: HTTP/1.1 and HTTP/2 (prior knowledge) on the
//! service's ClusterSetIP port, each request routed by [`Routes`] to the exporting gateways'
//! ingress ports of its WAN class, or answered 403.
//!
//! - Bodies stream both ways; nothing is buffered whole.
//! - Backends of a class are picked by weight (weight 0: drained); an unreachable backend is
//!   skipped and the request goes to the next one when it carried no body yet.
//! - Connections to each backend are reused (one pool per backend address); upstream requests
//!   are HTTP/1.1.
//! - Every forwarded request carries a W3C `traceparent` (kept when the client sent one,
//!   started otherwise) and its `x-request-id` when present, so the far side can tell which
//!   request crossed the WAN.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use super::metrics::{L7Metrics, RequestLabels};
use super::route::{Action, Routes};
use super::trace;

/// One exporting gateway's ingress port for a class, with its share of the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    pub addr: SocketAddr,
    pub weight: u32,
}

/// What the proxy of a service routes by: its rules and, per WAN class, the backends.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `namespace/name`, for metrics and messages.
    pub service: String,
    pub routes: Routes,
    pub backends: BTreeMap<String, Vec<Backend>>,
}

type Body = BoxBody<Bytes, hyper::Error>;

/// A running service proxy; [`ServiceProxy::update`] swaps its configuration for the requests
/// that come after.
pub struct ServiceProxy {
    config: ArcSwap<ProxyConfig>,
    client: Client<Connector, Body>,
    metrics: L7Metrics,
    options: ProxyOptions,
}

fn empty() -> Body {
    http_body_util::Empty::new().map_err(|e| match e {}).boxed()
}

/// Removes the headers that describe one connection, not the request (RFC 9110 7.6.1): those
/// `Connection` names, and the standard ones.
fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    let named: Vec<hyper::header::HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
    ] {
        headers.remove(name);
    }
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(message))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl std::fmt::Debug for ServiceProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProxy")
            .field("config", &self.config.load())
            .finish_non_exhaustive()
    }
}

/// A TCP socket of `addr`'s family.
pub(crate) fn tcp_socket(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
}

/// How long connecting to a backend may take before the next one is tried.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Connects to backends (request targets are always `http://IP:PORT`): TCP_NODELAY, a connect
/// timeout, and the packet mark the gateway masquerades by, so that a connection leaves with
/// the address of the link its class's route picks and its replies come back that way, as
/// IPVS's masqueraded connections do.
#[derive(Clone, Debug)]
pub struct Connector {
    mark: Option<u32>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mark = self.mark;
        Box::pin(async move {
            let addr: SocketAddr = uri
                .authority()
                .and_then(|a| a.as_str().parse().ok())
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("{uri}: not an address and port"),
                    )
                })?;
            let socket = tcp_socket(addr)?;
            if let Some(mark) = mark {
                use std::os::fd::AsFd as _;
                nix::sys::socket::setsockopt(
                    &socket.as_fd(),
                    nix::sys::socket::sockopt::Mark,
                    &mark,
                )
                .map_err(std::io::Error::from)?;
            }
            socket.set_nodelay(true)?;
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr))
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("connecting to {addr} timed out"),
                    )
                })??;
            Ok(TokioIo::new(stream))
        })
    }
}

/// How a proxy treats its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyOptions {
    /// The packet mark of upstream connections (SO_MARK; needs CAP_NET_ADMIN).
    pub upstream_mark: Option<u32>,
    /// Client connections served at once; beyond them, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's head (HTTP/1), and how long an HTTP/2
    /// client may leave a keep-alive ping unanswered, before its connection is closed.
    pub client_timeout: std::time::Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            upstream_mark: None,
            max_connections: 4096,
            client_timeout: std::time::Duration::from_secs(30),
        }
    }
}

impl ServiceProxy {
    /// A proxy with the default [`ProxyOptions`].
    pub fn new(config: ProxyConfig, metrics: L7Metrics) -> Arc<Self> {
        Self::with_options(config, metrics, ProxyOptions::default())
    }

    pub fn with_options(
        config: ProxyConfig,
        metrics: L7Metrics,
        options: ProxyOptions,
    ) -> Arc<Self> {
        Arc::new(Self {
            config: ArcSwap::from_pointee(config),
            client: Client::builder(TokioExecutor::new()).build(Connector {
                mark: options.upstream_mark,
            }),
            metrics,
            options,
        })
    }

    pub fn update(&self, config: ProxyConfig) {
        self.config.store(Arc::new(config));
    }

    /// Serves connections from `listener` until `stop` is cancelled, at most
    /// [`ProxyOptions::max_connections`] at once; a client that sends no request head within
    /// [`ProxyOptions::client_timeout`] is disconnected.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.options.max_connections));
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.options.client_timeout);
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(self.options.client_timeout / 2)
            .keep_alive_timeout(self.options.client_timeout / 2);
        let builder = Arc::new(builder);
        loop {
            let slot = tokio::select! {
                () = stop.cancelled() => return,
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(s) => s,
                    Err(_) => return,
                },
            };
            let (stream, _) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "L7 proxy: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let proxy = self.clone();
            let stop = stop.clone();
            let builder = builder.clone();
            tokio::spawn(async move {
                let _slot = slot;
                // Until a client's first bytes tell HTTP/1 from HTTP/2, neither protocol's
                // timers run: a client that sends nothing is dropped here.
                let timeout = proxy.options.client_timeout;
                let mut first = [0u8; 1];
                if !matches!(
                    tokio::time::timeout(timeout, stream.peek(&mut first)).await,
                    Ok(Ok(1))
                ) {
                    return;
                }
                let service = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, Infallible>(proxy.handle(req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    () = stop.cancelled() => {}
                    _ = conn => {}
                }
            });
        }
    }

    /// Routes one request.
    pub async fn handle(&self, mut req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let config = self.config.load_full();
        let decision = config
            .routes
            .decide(req.method(), req.uri().path(), req.headers());
        let rule = decision
            .rule
            .map_or_else(|| "default".to_owned(), |i| i.to_string());
        let class = match decision.action {
            Action::Deny => {
                let response = text(
                    StatusCode::FORBIDDEN,
                    format!(
                        "mcwan: {} {} to {} is denied by {}\n",
                        req.method(),
                        req.uri().path(),
                        config.service,
                        match decision.rule {
                            Some(i) => format!("rule {i}"),
                            None => "the default action".to_owned(),
                        }
                    ),
                );
                self.observe(&config.service, "deny", &rule, &response, started);
                return response;
            }
            Action::Class(class) => class.clone(),
        };
        trace::stamp(req.headers_mut());
        let backends = config
            .backends
            .get(&class)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let order = pick_order(backends, trace::random_u64());
        let response = if order.is_empty() {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "mcwan: {} has no reachable backend in WAN class {class}\n",
                    config.service
                ),
            )
        } else {
            self.forward(req, backends, &order, &config.service, &class)
                .await
        };
        self.observe(&config.service, &class, &rule, &response, started);
        response
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        backends: &[Backend],
        order: &[usize],
        service: &str,
        class: &str,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        // The Host the client asked for travels on; an HTTP/2 request has it in :authority.
        if !headers.contains_key(HOST) {
            if let Some(v) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            {
                headers.insert(HOST, v);
            }
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let has_body = !hyper::body::Body::is_end_stream(&body);
        let mut body = Some(body.boxed());
        let mut last_error = String::new();
        for (attempt, &i) in order.iter().enumerate() {
            let backend = backends[i];
            // A body can be sent once: only a request without one is tried on another backend.
            let b = match body.take() {
                Some(b) => b,
                None if !has_body => empty(),
                None => break,
            };
            let mut upstream = Request::new(b);
            *upstream.method_mut() = parts.method.clone();
            *upstream.version_mut() = Version::HTTP_11;
            *upstream.headers_mut() = headers.clone();
            match format!("http://{}{path}", backend.addr).parse::<Uri>() {
                Ok(uri) => *upstream.uri_mut() = uri,
                Err(_) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("mcwan: bad request target {path}\n"),
                    )
                }
            }
            match self.client.request(upstream).await {
                Ok(response) => {
                    let (mut parts, body) = response.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    return Response::from_parts(parts, body.boxed());
                }
                Err(e) => {
                    last_error = format!("{}: {e}", backend.addr);
                    tracing::debug!(service, class, backend = %backend.addr, attempt, error = %e, "L7 proxy: backend failed");
                    if has_body || !e.is_connect() {
                        break;
                    }
                }
            }
        }
        text(
            StatusCode::BAD_GATEWAY,
            format!("mcwan: {service}: no backend of WAN class {class} answered ({last_error})\n"),
        )
    }

    fn observe(
        &self,
        service: &str,
        class: &str,
        rule: &str,
        response: &Response<Body>,
        started: Instant,
    ) {
        let labels = RequestLabels {
            service: service.to_owned(),
            class: class.to_owned(),
            rule: rule.to_owned(),
            code: response.status().as_u16().to_string(),
        };
        self.metrics.requests.get_or_create(&labels).inc();
        self.metrics
            .duration
            .get_or_create(&labels.without_code())
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The order in which backends are tried: a weighted pick first (by `seed`), then the others
/// by falling weight; backends of weight 0 are never tried.
fn pick_order(backends: &[Backend], seed: u64) -> Vec<usize> {
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut point = seed % total;
    let mut first = 0;
    for (i, b) in backends.iter().enumerate() {
        let w = u64::from(b.weight);
        if point < w {
            first = i;
            break;
        }
        point -= w;
    }
    let mut rest: Vec<usize> = (0..backends.len())
        .filter(|&i| i != first && backends[i].weight > 0)
        .collect();
    rest.sort_by_key(|&i| std::cmp::Reverse(backends[i].weight));
    std::iter::once(first).chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(port: u16, weight: u32) -> Backend {
        Backend {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            weight,
        }
    }

    #[tokio::test]
    async fn upstream_connections_carry_the_masquerade_mark() {
        use std::os::fd::AsFd as _;
        use tower_service::Service as _;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        // SO_MARK needs CAP_NET_ADMIN, which the gateway has; unprivileged, the connect fails.
        let io = Connector {
            mark: Some(0x0010_0000),
        }
        .call(uri.clone())
        .await
        .unwrap();
        let mark =
            nix::sys::socket::getsockopt(&io.inner().as_fd(), nix::sys::socket::sockopt::Mark);
        assert_eq!(mark.unwrap(), 0x0010_0000);
        let io = Connector { mark: None }.call(uri).await.unwrap();
        let mark =
            nix::sys::socket::getsockopt(&io.inner().as_fd(), nix::sys::socket::sockopt::Mark);
        assert_eq!(mark.unwrap(), 0);
        let bad = Connector { mark: None }
            .call("http://payment.secure:8080/".parse().unwrap())
            .await;
        assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn backends_are_picked_by_weight_and_drained_ones_never() {
        let backends = [b(1, 3), b(2, 1), b(3, 0)];
        let mut first = [0u32; 3];
        for seed in 0..4000 {
            let order = pick_order(&backends, seed);
            assert!(!order.contains(&2), "weight 0 is never tried");
            assert_eq!(order.len(), 2);
            first[order[0]] += 1;
        }
        assert_eq!(first, [3000, 1000, 0]);
        assert!(pick_order(&[b(1, 0)], 7).is_empty());
        assert!(pick_order(&[], 7).is_empty());
    }
}
