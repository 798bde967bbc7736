//! The health responder: echoes mcwan probes (and nothing else) on the health port of each of
//! the gateway's own class addresses, where its peers probe it (its inner address on each
//! WireGuard class, its ingress address in SD-WAN mode): not on every interface of the host.
//!
//! Each address is answered on a thread of its own with a blocking socket, not on the async
//! runtime: a gateway whose workers are busy (a large recompute, a slow machine) must still
//! answer its peers' probes in time, or they would drain it for being busy rather than dead.
//! The sockets are bound with IP_FREEBIND, so an inner address that appears only once its
//! tunnel is up is answered from that moment on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::desired::DesiredState;

/// Every probe starts with this; anything else is dropped unanswered.
pub const MAGIC: &[u8] = b"MCWAN-HC1";

/// How often the responder looks at `cancel` while no probe arrives.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// Answers probes on `socket` until `cancel` fires. Blocks: run it on a thread of its own.
pub fn respond(socket: &UdpSocket, cancel: &CancellationToken) -> std::io::Result<()> {
    socket.set_read_timeout(Some(CANCEL_POLL))?;
    let mut buf = [0u8; 64];
    while !cancel.is_cancelled() {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        // Only a probe of the exact size is answered: no amplification, no reflection of junk.
        if n == MAGIC.len() + 8 && buf.starts_with(MAGIC) {
            if let Err(e) = socket.send_to(&buf[..n], from) {
                debug!(%from, error = %e, "health reply not sent");
            }
        }
    }
    Ok(())
}

/// The addresses the gateway's peers probe it at: its own address on every class that has
/// peers.
pub fn local_addresses(state: &DesiredState) -> BTreeSet<IpAddr> {
    state
        .tunnels
        .classes
        .iter()
        .filter(|c| !c.peers.is_empty())
        .map(|c| c.local_address)
        .collect()
}

/// A UDP socket on `addr`, bound even while the address is not (yet) on an interface.
fn bind_freely(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use nix::sys::socket::{
        bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage,
    };
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // IP_FREEBIND holds for IPv6 binds too (Linux checks it for both families).
    setsockopt(&fd.as_fd(), sockopt::IpFreebind, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    Ok(UdpSocket::from(fd))
}

/// Answers probes on `port` of each address [`local_addresses`] gives for the newest desired
/// state, binding and unbinding as it changes, until `cancel` fires.
pub async fn serve(
    port: u16,
    mut states: watch::Receiver<Option<Arc<DesiredState>>>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut serving: BTreeMap<IpAddr, CancellationToken> = BTreeMap::new();
    loop {
        let wanted = states
            .borrow_and_update()
            .as_deref()
            .map(local_addresses)
            .unwrap_or_default();
        serving.retain(|addr, stop| {
            let keep = wanted.contains(addr);
            if !keep {
                info!(%addr, port, "no longer answering health probes here");
                stop.cancel();
            }
            keep
        });
        for addr in wanted {
            if serving.contains_key(&addr) {
                continue;
            }
            match bind_freely(SocketAddr::new(addr, port)) {
                Ok(socket) => {
                    let stop = cancel.child_token();
                    serving.insert(addr, stop.clone());
                    info!(%addr, port, "answering health probes");
                    let span = tracing::Span::current();
                    std::thread::Builder::new()
                        .name(format!("health-{addr}"))
                        .spawn(move || {
                            let _entered = span.enter();
                            if let Err(e) = respond(&socket, &stop) {
                                warn!(%addr, error = %e, "health responder stopped");
                            }
                        })?;
                }
                // Tried again on the next plan.
                Err(e) => warn!(%addr, port, error = %e, "cannot answer health probes here"),
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = states.changed() => if changed.is_err() { break },
        }
    }
    for stop in serving.values() {
        stop.cancel();
    }
    Ok(())
}
