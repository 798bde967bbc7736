//! The HTTP/1.1 listener. Each connection is a task in one `JoinSet`, so stopping the
//! listener aborts every connection, open watches included: clients see the server
//! die, as when kube-apiserver restarts.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::handler::{self, App};

/// A bound, serving listener; dropping it stops serving.
#[derive(Debug)]
pub struct Listener {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// Bind `addr` (with `SO_REUSEADDR`, so a restart can take the same port back at
    /// once) and start serving `app`.
    pub fn bind(addr: SocketAddr, app: Arc<App>) -> io::Result<Self> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let span = tracing::info_span!("kubesim_listener", %addr);
        let task = tokio::spawn(accept_loop(listener, app, cancel.clone()).instrument(span));
        Ok(Self {
            addr,
            cancel,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, close every connection and wait until the port is released.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            if let Err(err) = task.await {
                tracing::warn!(error = %err, "kubesim listener task failed");
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(listener: TcpListener, app: Arc<App>, cancel: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let span = tracing::debug_span!("kubesim_connection", %peer);
                    connections.spawn(serve(stream, app.clone()).instrument(span));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn serve(stream: TcpStream, app: Arc<App>) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "TCP_NODELAY not set");
    }
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handler::handle(app, request).await) }
    });
    if let Err(err) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}
