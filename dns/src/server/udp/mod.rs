//! The UDP receive loop: datagrams in by the batch, the pure request path on
//! each, responses out by the batch.
//!
//! Each datagram is answered in place by [`answer`](crate::answer), without a
//! task or a channel per request; on Linux, `recvmmsg`/`sendmmsg` move up to
//! [`BATCH`] datagrams per system call.

mod batch;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::debug;

use self::batch::Batch;
use crate::ZoneHandle;

/// Datagrams moved per system call.
const BATCH: usize = 32;

/// Answers datagrams on `socket` until the socket fails for good.
pub(super) async fn serve_udp(
    socket: Arc<UdpSocket>,
    zones: ZoneHandle,
    observer: Option<Arc<dyn crate::QueryObserver>>,
) -> io::Result<()> {
    let mut batch = Batch::new();
    loop {
        socket.readable().await?;
        match socket.try_io(Interest::READABLE, || batch.receive(&socket)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) if is_fatal(&error) => return Err(error),
            Err(error) => {
                debug!(%error, "UDP receive failed");
                continue;
            }
        }
        batch.answer(&zones.current(), observer.as_deref());
        batch.send(&socket).await;
    }
}

/// Errors after which the socket is of no further use.
fn is_fatal(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotConnected | io::ErrorKind::ConnectionAborted
    )
}

/// Whether a response to `peer` could reach anyone (as hickory-server checks).
fn is_answerable(peer: SocketAddr) -> bool {
    peer.port() != 0
        && match peer.ip() {
            IpAddr::V4(ip) => !ip.is_unspecified() && !ip.is_broadcast(),
            IpAddr::V6(ip) => !ip.is_unspecified(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanswerable_peers_are_skipped() {
        assert!(is_answerable("127.0.0.1:5353".parse().unwrap()));
        assert!(is_answerable("[::1]:5353".parse().unwrap()));
        assert!(!is_answerable("127.0.0.1:0".parse().unwrap()));
        assert!(!is_answerable("0.0.0.0:53".parse().unwrap()));
        assert!(!is_answerable("255.255.255.255:53".parse().unwrap()));
        assert!(!is_answerable("[::]:53".parse().unwrap()));
    }
}
