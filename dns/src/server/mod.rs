//! Serving the zone over UDP and TCP.
//!
//! TCP connections are served by an accept loop of our own (`tcp`), with a cap
//! on connections and timeouts on idle and slow clients, running the pure
//! request path on each message. UDP is served either by a receive loop of our
//! own that runs the same path in place ([`UdpPath::Direct`], the default and
//! the faster one) or by hickory-server's `Server` with a request handler on
//! the zone ([`UdpPath::Hickory`]). TCP and the direct UDP loop give the same
//! bytes: they share the request path and its encoder. The hickory path makes
//! the same decision (the same records, flags and truncation) but is encoded by
//! hickory-server, whose answers do not point into the question, so its owner
//! names are written out in full.

mod bind;
mod error;
mod handler;
mod options;
mod tcp;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, Instrument};

pub use self::error::ServeError;
pub use self::options::{ServerOptions, UdpPath};
pub use self::tcp::{Admitted, ConnectionSlots, TcpLimits};

use self::handler::ZoneRequestHandler;
use crate::ZoneHandle;

/// An authoritative DNS server for the zone a [`ZoneHandle`] holds:
/// bound by [`bind`](Self::bind), served by [`run`](Self::run).
pub struct DnsServer {
    /// hickory-server with its UDP sockets ([`UdpPath::Hickory`]); `None`
    /// when it has nothing to serve.
    server: Option<Server<ZoneRequestHandler>>,
    /// Listeners served by our accept loop.
    tcp: Vec<TcpListener>,
    tcp_limits: TcpLimits,
    /// Sockets read by our own loop.
    direct_udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    udp_workers: usize,
    observer: Option<Arc<dyn crate::QueryObserver>>,
    zones: ZoneHandle,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Binds UDP and TCP on each address. Port 0 picks one free port that
    /// both UDP and TCP get, so clients can retry a truncated answer over TCP.
    pub async fn bind(
        zones: ZoneHandle,
        listen: &[SocketAddr],
        options: &ServerOptions,
    ) -> Result<Self, ServeError> {
        if listen.is_empty() {
            return Err(ServeError::NoListenAddress);
        }
        let mut udp = Vec::with_capacity(listen.len());
        let mut tcp = Vec::with_capacity(listen.len());
        for addr in listen {
            let (socket, listener) = bind::udp_and_tcp(*addr).await?;
            udp.push(socket);
            tcp.push(listener);
        }
        Self::from_sockets(zones, udp, tcp, options)
    }

    /// Serves on sockets bound elsewhere (for instance handed over by systemd).
    pub fn from_sockets(
        zones: ZoneHandle,
        udp: Vec<UdpSocket>,
        tcp: Vec<TcpListener>,
        options: &ServerOptions,
    ) -> Result<Self, ServeError> {
        if udp.is_empty() && tcp.is_empty() {
            return Err(ServeError::NoListenAddress);
        }
        let local = |transport, result: io::Result<SocketAddr>| {
            result.map_err(|source| ServeError::LocalAddr { transport, source })
        };
        let udp_addrs = udp
            .iter()
            .map(|socket| local("UDP", socket.local_addr()))
            .collect::<Result<Vec<_>, _>>()?;
        let tcp_addrs = tcp
            .iter()
            .map(|listener| local("TCP", listener.local_addr()))
            .collect::<Result<Vec<_>, _>>()?;

        let mut server = Server::new(ZoneRequestHandler::new(
            zones.clone(),
            options.observer.clone(),
        ));
        let mut served_by_hickory = false;
        let mut direct_udp = Vec::new();
        for (socket, addr) in udp.into_iter().zip(&udp_addrs) {
            match options.udp_path {
                UdpPath::Direct => direct_udp.push((*addr, Arc::new(socket))),
                UdpPath::Hickory => {
                    server.register_socket(socket);
                    served_by_hickory = true;
                }
            }
        }
        Ok(Self {
            server: served_by_hickory.then_some(server),
            tcp,
            tcp_limits: TcpLimits {
                max_connections: options.tcp_max_connections,
                idle_timeout: options.tcp_idle_timeout,
            },
            direct_udp,
            udp_workers: options.udp_workers.max(1),
            observer: options.observer.clone(),
            zones,
            udp_addrs,
            tcp_addrs,
        })
    }

    /// The UDP addresses served (with the ports actually bound).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The TCP addresses served (with the ports actually bound).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// Serves until `cancel` fires (then stops accepting and returns `Ok`) or
    /// a listener fails.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), ServeError> {
        let span = tracing::info_span!("dns_server", udp = ?self.udp_addrs, tcp = ?self.tcp_addrs);
        let Self {
            server,
            tcp,
            tcp_limits,
            direct_udp,
            udp_workers,
            observer,
            zones,
            ..
        } = self;
        async move {
            info!("serving DNS");
            let mut udp_loops = JoinSet::new();
            for (addr, socket) in direct_udp {
                for _ in 0..udp_workers {
                    let serve = udp::serve_udp(socket.clone(), zones.clone(), observer.clone());
                    let span = tracing::info_span!("dns_udp", %addr);
                    udp_loops.spawn(
                        async move {
                            serve
                                .await
                                .map_err(|source| ServeError::Udp { addr, source })
                        }
                        .instrument(span),
                    );
                }
            }
            let mut tcp_loops = JoinSet::new();
            let tcp_cancel = cancel.child_token();
            for listener in tcp {
                let span = tracing::info_span!("dns_tcp", addr = ?listener.local_addr().ok());
                tcp_loops.spawn(
                    tcp::serve_tcp(
                        listener,
                        zones.clone(),
                        observer.clone(),
                        tcp_limits,
                        tcp_cancel.clone(),
                    )
                    .instrument(span),
                );
            }
            let result = supervise(server, &mut udp_loops, &cancel).await;
            udp_loops.abort_all();
            tcp_cancel.cancel();
            tcp_loops.abort_all();
            info!("DNS server stopped");
            result
        }
        .instrument(span)
        .await
    }
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("udp_addrs", &self.udp_addrs)
            .field("tcp_addrs", &self.tcp_addrs)
            .finish_non_exhaustive()
    }
}

/// Waits for cancellation or for the first failure of hickory-server or a UDP loop.
async fn supervise(
    server: Option<Server<ZoneRequestHandler>>,
    udp_loops: &mut JoinSet<Result<(), ServeError>>,
    cancel: &CancellationToken,
) -> Result<(), ServeError> {
    let udp_failure = async {
        match udp_loops.join_next().await {
            Some(Ok(Err(error))) => error,
            Some(Err(join)) => ServeError::TaskEnded(format!("UDP loop: {join}")),
            // A loop only ends on error; with no loop at all, wait for the rest.
            Some(Ok(Ok(()))) | None => std::future::pending().await,
        }
    };
    let Some(mut server) = server else {
        return tokio::select! {
            () = cancel.cancelled() => Ok(()),
            error = udp_failure => Err(error),
        };
    };
    let finished = tokio::select! {
        () = cancel.cancelled() => None,
        error = udp_failure => Some(Err(error)),
        result = server.block_until_done() => Some(result.map_err(ServeError::from)),
    };
    match finished {
        Some(result) => {
            server.shutdown_token().cancel();
            result
        }
        None => server.shutdown_gracefully().await.map_err(ServeError::from),
    }
}

/// Binds UDP and TCP on every `listen` address and serves `zones` until `cancel` fires.
pub async fn serve(
    zones: ZoneHandle,
    listen: &[SocketAddr],
    cancel: CancellationToken,
) -> Result<(), ServeError> {
    DnsServer::bind(zones, listen, &ServerOptions::default())
        .await?
        .run(cancel)
        .await
}
