//! The WireGuard device model shared by both backends: what a device is ([`DeviceState`], read
//! back), what we want it to be ([`TunnelSpec`](crate::TunnelSpec)), and the change between
//! them ([`DeviceUpdate`]), encoded for the kernel as generic netlink ([`genl`]) or for
//! boringtun as UAPI text ([`uapi`]).

pub mod diff;
pub mod genl;
pub mod uapi;

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::key::Key;

pub use diff::{diff, DeviceUpdate, PeerChange, PeerConfig};

/// A WireGuard device as read from the kernel or the UAPI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// Our public key (derived from the private key), if a key is set.
    pub public_key: Option<Key>,
    pub listen_port: u16,
    /// 0 when unset.
    pub fwmark: u32,
    pub peers: Vec<PeerState>,
}

/// One peer as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    pub public_key: Key,
    pub endpoint: Option<SocketAddr>,
    /// Sorted.
    pub allowed_ips: Vec<IpNet>,
    /// 0 when off.
    pub keepalive: u16,
    /// Time since the last handshake, if there was one.
    pub last_handshake_age: Option<Duration>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}
