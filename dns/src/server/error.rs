//! Why the server could not start or stopped.

use std::io;
use std::net::SocketAddr;

use hickory_server::net::NetError;
use thiserror::Error;

/// Why the server could not start or stopped.
#[derive(Debug, Error)]
pub enum ServeError {
    /// No address to listen on was given.
    #[error("no DNS listen address given")]
    NoListenAddress,
    /// A UDP socket could not be bound.
    #[error("cannot bind DNS UDP socket {addr}: {source}")]
    BindUdp {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        source: io::Error,
    },
    /// A TCP listener could not be bound.
    #[error("cannot bind DNS TCP listener {addr}: {source}")]
    BindTcp {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        source: io::Error,
    },
    /// A socket handed over could not tell its local address.
    #[error("cannot read the local address of a DNS {transport} socket: {source}")]
    LocalAddr {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The system's reason.
        source: io::Error,
    },
    /// A UDP socket failed for good.
    #[error("DNS UDP socket {addr} failed: {source}")]
    Udp {
        /// The socket's address.
        addr: SocketAddr,
        /// The system's reason.
        source: io::Error,
    },
    /// A serving task ended without being asked to.
    #[error("a DNS serving task ended unexpectedly: {0}")]
    TaskEnded(String),
    /// A hickory-server task failed.
    #[error("DNS server failed: {0}")]
    Serve(#[from] NetError),
}
