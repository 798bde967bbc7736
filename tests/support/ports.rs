//! Ports for the gateways that tests start.

use std::net::{TcpListener, UdpSocket};

/// A port free on 127.0.0.1 for both TCP and UDP (a gateway serves DNS on both), drawn at
/// random below the kernel's ephemeral range (32768-60999 by default). A port the kernel hands
/// out for port 0 could be taken again, between this check and the gateway's own bind, by any
/// socket bound to port 0 (an API server of another test, a client's connection); these
/// ports only by another such draw.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new();
    for attempt in 0u32.. {
        let port = 20_000 + (random.hash_one(attempt) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    unreachable!("every port below the ephemeral range is taken")
}
