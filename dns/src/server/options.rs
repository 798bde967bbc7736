//! Settings of the listeners.

use std::sync::Arc;
use std::time::Duration;

use crate::QueryObserver;

/// Who reads the UDP sockets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UdpPath {
    /// A loop of ours answers each datagram in place.
    #[default]
    Direct,
    /// hickory-server reads the sockets and encodes the answers: the same
    /// records as the direct path, but owner names are not compressed against
    /// the question, so answers are larger.
    Hickory,
}

/// Settings of the listeners.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// A TCP connection that sends no request for this long, or takes longer
    /// than this to deliver one, is closed.
    pub tcp_idle_timeout: Duration,
    /// TCP connections held at once per listener; at the cap, a new connection
    /// closes the oldest.
    pub tcp_max_connections: usize,
    /// Who reads the UDP sockets.
    pub udp_path: UdpPath,
    /// Receive loops per UDP socket with [`UdpPath::Direct`]: more than one
    /// lets a multi-threaded runtime answer UDP on several cores.
    pub udp_workers: usize,
    /// Told about every answered query (metrics), if set.
    pub observer: Option<Arc<dyn QueryObserver>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_max_connections: 1024,
            udp_path: UdpPath::Direct,
            udp_workers: 1,
            observer: None,
        }
    }
}
