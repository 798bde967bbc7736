//! The device's three threads: TUN to UDP (encrypt), UDP to TUN (decrypt), and timers.
//!
//! One thread per direction keeps each flow's packets in order (a TCP receiver takes
//! reordering for loss) while the two directions of a connection, data one way and ACKs the
//! other, run in parallel. Both directions work in batches:
//!
//! - The TUN is opened with the kernel's virtio-net header and TSO/USO offloads, so the kernel
//!   hands over TCP segments of up to 64 KiB at once, which tun-rs splits into MTU-sized
//!   packets (one `read` for ~45 packets; the kernel's TCP also works per 64 KiB).
//! - Decrypted packets are collected while datagrams keep arriving and written with GRO: the
//!   packets of one TCP flow are coalesced into one large segment per `write`.
//!
//! All threads wait in `poll` on their descriptor and on the device's stop event, so stopping
//! is immediate and idle devices cost nothing.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, Tunn, TunnResult};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use tun_rs::{GROTable, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

use super::device::{lock, Config, Peer, Shared, Udp};

/// The largest IP packet (and so the largest WireGuard payload).
const MAX_PACKET: usize = 65535;
/// WireGuard's data overhead: header (16) and authentication tag (16).
const OVERHEAD: usize = 32;
/// The timer thread's tick: boringtun's timers have this resolution.
const TICK_MS: u16 = 250;

/// What a wait ended with.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Woken {
    Ready,
    Stop,
    /// The extra event fired (or the wait timed out / was interrupted): look again.
    Other,
}

/// Waits for `fd` to become readable, for the device to stop, or for `extra`.
pub(super) fn wait(
    fd: BorrowedFd<'_>,
    shared: &Shared,
    extra: Option<BorrowedFd<'_>>,
    timeout: PollTimeout,
) -> Woken {
    let mut fds = vec![
        PollFd::new(shared.stop.as_fd(), PollFlags::POLLIN),
        PollFd::new(fd, PollFlags::POLLIN),
    ];
    if let Some(extra) = extra {
        fds.push(PollFd::new(extra, PollFlags::POLLIN));
    }
    match poll(&mut fds, timeout) {
        Ok(_) => {
            let fired = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
            if fired(0) {
                Woken::Stop
            } else if fired(1) {
                Woken::Ready
            } else {
                Woken::Other
            }
        }
        Err(_) => Woken::Other,
    }
}

/// Waits `ms` milliseconds; true if the device stopped meanwhile.
pub(super) fn stopped_within(shared: &Shared, ms: u16) -> bool {
    let mut fds = [PollFd::new(shared.stop.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// Waits (briefly) until a full socket send buffer has room again.
pub(super) fn wait_writable(socket: &std::net::UdpSocket) {
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
    let _ = poll(&mut fds, PollTimeout::from(100u16));
}

/// TUN to UDP: reads batches of packets, finds each one's peer by destination, encrypts it
/// into the [`Outbox`], which sends runs of datagrams to one peer with one system call.
pub(super) fn tun_to_udp(shared: Arc<Shared>) {
    let mut gso = vec![0u8; VIRTIO_NET_HDR_LEN + MAX_PACKET];
    let mut packets = zeroed_buffers(IDEAL_BATCH_SIZE);
    let mut sizes = vec![0usize; IDEAL_BATCH_SIZE];
    let mut outbox = Outbox::new();
    loop {
        match shared
            .tun
            .recv_multiple(&mut gso, &mut packets, &mut sizes, 0)
        {
            Ok(n) => {
                let config = shared.config();
                let udp = shared.socket();
                for (packet, size) in packets.iter().zip(&sizes).take(n) {
                    encrypt(&config, &udp, &packet[..*size], &mut outbox);
                }
                outbox.flush(&udp);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if wait(shared.tun.as_fd(), &shared, None, PollTimeout::NONE) == Woken::Stop {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if gone(&e) => {
                tracing::warn!(ifname = %shared.ifname, error = %e, "TUN device closed");
                return;
            }
            Err(e) => {
                tracing::debug!(ifname = %shared.ifname, error = %e, "TUN packet dropped");
            }
        }
    }
}

/// `n` buffers of [`MAX_PACKET`] bytes, each allocated zeroed on its own (not cloned), so
/// that memory backs them only as far as packets fill them.
fn zeroed_buffers(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| vec![0u8; MAX_PACKET]).collect()
}

/// Whether a TUN error means the interface is gone (deleted under us).
fn gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(nix::errno::Errno::from_raw),
        Some(nix::errno::Errno::EBADFD | nix::errno::Errno::EBADF | nix::errno::Errno::ENODEV)
    )
}

/// The most datagrams one `UDP_SEGMENT` send may carry (the kernel's `UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;
/// The most bytes one run may hold (a UDP datagram's limit, with room for headers).
const MAX_RUN: usize = 65_000;
/// WireGuard's message type of data packets (the first byte, little endian).
const DATA_MESSAGE: u8 = 4;

/// Encrypted data packets on their way out: a run of datagrams to one endpoint, all of one
/// size but the last, which leaves with one `UDP_SEGMENT` send (one system call and one trip
/// down the stack instead of one per packet). A packet that cannot join (another peer,
/// another size) sends the run first, so every flow keeps its order.
struct Outbox {
    buf: Vec<u8>,
    len: usize,
    segment: usize,
    count: usize,
    to: Option<SocketAddr>,
    /// The last datagram was shorter than the others: nothing more may join.
    closed: bool,
    /// The socket accepts `UDP_SEGMENT` (cleared for good on a kernel or route that refuses).
    segmentation: bool,
}

impl Outbox {
    fn new() -> Self {
        Outbox {
            buf: vec![0u8; MAX_RUN + MAX_PACKET + OVERHEAD],
            len: 0,
            segment: 0,
            count: 0,
            to: None,
            closed: false,
            segmentation: true,
        }
    }

    /// Whether a datagram of `size` bytes to `to` may join the run.
    fn admits(&self, to: SocketAddr, size: usize) -> bool {
        self.segmentation
            && self.count > 0
            && self.to == Some(to)
            && !self.closed
            && size <= self.segment
            && self.count < MAX_SEGMENTS
            && self.len + size <= MAX_RUN
    }

    /// Room for the next datagram.
    fn space(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Takes the datagram just written into [`Outbox::space`].
    fn push(&mut self, size: usize, to: SocketAddr) {
        if self.count == 0 {
            self.to = Some(to);
            self.segment = size;
        } else if size < self.segment {
            self.closed = true;
        }
        self.len += size;
        self.count += 1;
    }

    fn flush(&mut self, udp: &Udp) {
        let Some(to) = self.to.take() else {
            return;
        };
        let run = &self.buf[..self.len];
        if self.count > 1 {
            match udp.send_segments(run, self.segment as u16, to) {
                Ok(()) => {}
                Err(e) => {
                    // Not supported here (EIO: no checksum offload on the route's device;
                    // EINVAL, ENOPROTOOPT: an old kernel): one datagram at a time from now on.
                    tracing::debug!(error = %e, "UDP segmentation offload refused");
                    self.segmentation = false;
                    for datagram in run.chunks(self.segment) {
                        udp.send(datagram, to);
                    }
                }
            }
        } else {
            udp.send(run, to);
        }
        self.len = 0;
        self.count = 0;
        self.closed = false;
    }
}

fn encrypt(config: &Config, udp: &Udp, packet: &[u8], outbox: &mut Outbox) {
    let Some(peer) = Tunn::dst_address(packet).and_then(|dst| config.peer_for(dst)) else {
        return;
    };
    let Some(endpoint) = peer.endpoint() else {
        return;
    };
    let size = packet.len() + OVERHEAD;
    if !outbox.admits(endpoint, size) {
        outbox.flush(udp);
    }
    let mut tunn = lock(&peer.tunn);
    let Some(t) = tunn.as_mut() else {
        return;
    };
    match t.encapsulate(packet, outbox.space()) {
        TunnResult::WriteToNetwork(datagram)
            if datagram[0] == DATA_MESSAGE && datagram.len() == size =>
        {
            drop(tunn);
            outbox.push(size, endpoint);
        }
        // A handshake initiation (no session yet; the packet waits in the peer's queue).
        TunnResult::WriteToNetwork(message) => {
            drop(tunn);
            udp.send(message, endpoint);
        }
        TunnResult::Err(e) => tracing::trace!(error = ?e, "WireGuard encapsulation failed"),
        _ => {}
    }
}

/// UDP to TUN: reads datagrams while they come, decrypts data packets into a batch and writes
/// it to the TUN (coalesced), and answers handshakes.
pub(super) fn udp_to_tun(shared: Arc<Shared>) {
    let mut inbox = Inbox::new();
    let mut batch: Vec<Vec<u8>> = (0..RX_BATCH).map(|_| Vec::new()).collect();
    let mut scratch = vec![0u8; MAX_PACKET + OVERHEAD];
    let mut gro = GROTable::default();
    let mut udp = shared.socket();
    loop {
        let config = shared.config();
        let mut n = 0;
        let drained = match inbox.receive(&udp) {
            Ok(count) => {
                for (datagram, from) in inbox.datagrams() {
                    if decrypt(&config, &udp, datagram, from, &mut batch[n], &mut scratch) {
                        n += 1;
                    }
                }
                count < RX_BATCH
            }
            Err(Errno::EINTR) => false,
            Err(e) => {
                if e != Errno::EAGAIN {
                    tracing::trace!(ifname = %shared.ifname, error = %e, "UDP receive error");
                }
                true
            }
        };
        if n > 0 {
            if let Err(e) = shared
                .tun
                .send_multiple(&mut gro, &mut batch[..n], VIRTIO_NET_HDR_LEN)
            {
                if gone(&e) {
                    tracing::warn!(ifname = %shared.ifname, error = %e, "TUN device closed");
                    return;
                }
                tracing::debug!(ifname = %shared.ifname, error = %e, "TUN write failed");
            }
        }
        if drained {
            let woken = wait(
                udp.socket.as_fd(),
                &shared,
                Some(shared.rebind.as_fd()),
                PollTimeout::NONE,
            );
            match woken {
                Woken::Stop => return,
                Woken::Ready => {}
                Woken::Other => {
                    if shared.rebind.read().is_ok() {
                        udp = shared.socket();
                    }
                }
            }
        }
    }
}

/// Datagrams read per system call.
const RX_BATCH: usize = 64;

/// Datagrams read with one `recvmmsg`.
struct Inbox {
    bufs: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrStorage>,
    received: Vec<(usize, SocketAddr)>,
}

impl Inbox {
    fn new() -> Self {
        Inbox {
            bufs: zeroed_buffers(RX_BATCH),
            headers: MultiHeaders::preallocate(RX_BATCH, None),
            received: Vec::with_capacity(RX_BATCH),
        }
    }

    /// Reads the datagrams waiting (up to [`RX_BATCH`]) without blocking; how many.
    fn receive(&mut self, udp: &Udp) -> Result<usize, Errno> {
        self.received.clear();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let messages = recvmmsg(
            udp.socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        let mut count = 0;
        for message in messages {
            count += 1;
            let from = message.address.as_ref().and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(SocketAddrV4::from(*v4)))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddrV6::from(*v6).into()))
            });
            if let Some(from) = from {
                let from = SocketAddr::new(from.ip().to_canonical(), from.port());
                self.received.push((message.bytes, from));
            }
        }
        Ok(count)
    }

    fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.received
            .iter()
            .zip(&self.bufs)
            .map(|((len, from), buf)| (&buf[..*len], *from))
    }
}

/// Handles one datagram from `from`. True when `buf` now holds a packet for the TUN (after
/// [`VIRTIO_NET_HDR_LEN`] bytes of headroom).
fn decrypt(
    config: &Config,
    udp: &Udp,
    datagram: &[u8],
    from: SocketAddr,
    buf: &mut Vec<u8>,
    scratch: &mut [u8],
) -> bool {
    let Some(keys) = config.keys.as_ref() else {
        return false;
    };
    let packet = match config
        .limiter
        .verify_packet(Some(from.ip()), datagram, scratch)
    {
        Ok(packet) => packet,
        Err(TunnResult::WriteToNetwork(cookie)) => {
            udp.send(cookie, from);
            return false;
        }
        Err(_) => return false,
    };
    let peer: Option<&Arc<Peer>> = match &packet {
        Packet::HandshakeInit(init) => parse_handshake_anon(&keys.secret, &keys.public, init)
            .ok()
            .and_then(|half| config.peer_by_key(&half.peer_static_public)),
        Packet::HandshakeResponse(p) => config.peer_by_index(p.receiver_idx),
        Packet::PacketCookieReply(p) => config.peer_by_index(p.receiver_idx),
        Packet::PacketData(p) => config.peer_by_index(p.receiver_idx),
    };
    let Some(peer) = peer else {
        return false;
    };
    // Room for the decrypted packet, or for a handshake answer.
    buf.clear();
    buf.resize(VIRTIO_NET_HDR_LEN + datagram.len().max(256), 0);
    let mut tunn = lock(&peer.tunn);
    let Some(t) = tunn.as_mut() else {
        return false;
    };
    let inner: Option<(usize, IpAddr)> =
        match t.decapsulate(Some(from.ip()), datagram, &mut buf[VIRTIO_NET_HDR_LEN..]) {
            TunnResult::Done => None,
            TunnResult::Err(WireGuardError::ConnectionExpired) | TunnResult::Err(_) => {
                return false
            }
            TunnResult::WriteToNetwork(answer) => {
                udp.send(answer, from);
                // Packets queued while the handshake was under way go now.
                while let TunnResult::WriteToNetwork(queued) = t.decapsulate(None, &[], scratch) {
                    udp.send(queued, from);
                }
                None
            }
            TunnResult::WriteToTunnelV4(packet, src) => Some((packet.len(), src.into())),
            TunnResult::WriteToTunnelV6(packet, src) => Some((packet.len(), src.into())),
        };
    drop(tunn);
    peer.roam(from);
    let Some((len, src)) = inner else {
        return false;
    };
    // Only sources in the peer's allowed IPs enter (WireGuard's cryptokey routing).
    if !config.peer_for(src).is_some_and(|p| Arc::ptr_eq(p, peer)) {
        return false;
    }
    buf.truncate(VIRTIO_NET_HDR_LEN + len);
    true
}

/// Every tick: each peer's timers (handshake retries and rekeying, keepalives, expiry), and
/// the cookie rate limiter's count.
pub(super) fn timers(shared: Arc<Shared>) {
    let mut out = vec![0u8; 2048];
    loop {
        if stopped_within(&shared, TICK_MS) {
            return;
        }
        let config = shared.config();
        let udp = shared.socket();
        config.limiter.reset_count();
        for peer in config.peers() {
            let endpoint = peer.endpoint();
            let mut tunn = lock(&peer.tunn);
            let Some(t) = tunn.as_mut() else {
                continue;
            };
            if let TunnResult::WriteToNetwork(packet) = t.update_timers(&mut out) {
                let len = packet.len();
                drop(tunn);
                if let Some(endpoint) = endpoint {
                    udp.send(&out[..len], endpoint);
                }
            }
        }
    }
}
