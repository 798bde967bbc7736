//! What `Tunnels::status` reports: per interface, its peers' endpoints, handshakes and
//! traffic.

use std::net::SocketAddr;
use std::time::Duration;

use crate::key::{Key, ShowPublic};

/// One mcwan tunnel interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelStatus {
    pub ifname: String,
    pub class: String,
    pub listen_port: u16,
    /// Our public key.
    pub public_key: Option<Key>,
    pub peers: Vec<PeerStatus>,
}

/// One peer of a tunnel.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's cluster id (from the last applied spec), or its public key if unknown.
    pub name: String,
    pub public_key: Key,
    pub endpoint: Option<SocketAddr>,
    pub last_handshake_age: Option<Duration>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl std::fmt::Debug for PeerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStatus")
            .field("name", &self.name)
            .field("public_key", &ShowPublic(&self.public_key))
            .field("endpoint", &self.endpoint)
            .field("last_handshake_age", &self.last_handshake_age)
            .field("rx_bytes", &self.rx_bytes)
            .field("tx_bytes", &self.tx_bytes)
            .finish()
    }
}
