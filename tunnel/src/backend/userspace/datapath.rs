//! The device's packet thread (TUN to UDP: encrypt; UDP to TUN: decrypt) and timer thread.
//!
//! One thread moves both directions. That keeps each flow's packets in order (a TCP receiver
//! takes reordering for loss), and it answers the kernel at once: when decrypted data goes
//! into the TUN, the kernel's TCP replies (ACKs, the next segments) within that `write`, and
//! the same pass reads and sends them. With a thread per direction, every such reply woke the
//! other thread; in one benchmark boot one thread carried 0.83x of kernel WireGuard's single
//! stream where two carried 0.62x, on less CPU (docs/benchmarks.md has the runs and their
//! noise). One device's crypto is thus bound to one core; a gateway has a device per tunnel
//! class. Both directions work in batches:
//!
//! - The TUN is opened with the kernel's virtio-net header and TSO/USO offloads, so the kernel
//!   hands over TCP segments of up to 64 KiB at once, which tun-rs splits into MTU-sized
//!   packets (one `read` for ~45 packets; the kernel's TCP also works per 64 KiB).
//! - Decrypted packets are collected while datagrams keep arriving and written with GRO: the
//!   packets of one TCP flow are coalesced into one large segment per `write`.
//! - Encrypted datagrams to one peer leave as one `UDP_SEGMENT` send, also the small ones
//!   (TCP's ACKs) read one by one: the TUN is read until empty (or [`TX_BATCH`] packets)
//!   before the outbox goes.
//! - The UDP socket has GRO on, so such a run arrives as one message (the NIC's GRO does the
//!   same for datagrams of one flow); messages come in by `recvmmsg`, 64 at a time. So one
//!   system call and one trip through the stack carry up to 64 packets each way; one per
//!   datagram had cost the receiving gateway's thread a quarter of its time (the figures are
//!   in docs/benchmarks.md).
//!
//! The threads wait in `poll` on their descriptors and on the device's stop event, so
//! stopping is immediate and idle devices cost nothing.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;

use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, Tunn, TunnResult};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmmsg, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage};
use tun_rs::{GROTable, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

use super::device::{lock, Config, Peer, Shared, Udp};

/// The largest IP packet (and so the largest WireGuard payload).
const MAX_PACKET: usize = 65535;
/// WireGuard's data overhead: header (16) and authentication tag (16).
const OVERHEAD: usize = 32;
/// The timer thread's tick: boringtun's timers have this resolution.
const TICK_MS: u16 = 250;

/// Waits until one of `fds` is readable (Some: which ones) or the device stops (None).
pub(super) fn wait_readable<const N: usize>(
    shared: &Shared,
    fds: [BorrowedFd<'_>; N],
) -> Option<[bool; N]> {
    let mut polled: Vec<PollFd<'_>> = std::iter::once(shared.stop.as_fd())
        .chain(fds)
        .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
        .collect();
    // An interrupted poll reports nothing ready: the caller looks again.
    let _ = poll(&mut polled, PollTimeout::NONE);
    let fired = |f: &PollFd<'_>| f.revents().is_some_and(|r| !r.is_empty());
    if fired(&polled[0]) {
        return None;
    }
    let mut ready = [false; N];
    for (r, f) in ready.iter_mut().zip(&polled[1..]) {
        *r = fired(f);
    }
    Some(ready)
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

/// What a step of one direction left behind.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// It did work; more may be waiting.
    More,
    /// Nothing is waiting.
    Drained,
    /// The interface is gone: the device is over.
    Gone,
}

/// The encrypting direction: reads batches of packets from the TUN, finds each one's peer by
/// destination, encrypts it into the [`Outbox`], which sends runs of datagrams to one peer
/// with one system call.
pub(super) struct Egress {
    gso: Vec<u8>,
    packets: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    outbox: Outbox,
}

impl Egress {
    pub fn new() -> Self {
        Egress {
            gso: vec![0u8; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            packets: zeroed_buffers(IDEAL_BATCH_SIZE),
            sizes: vec![0usize; IDEAL_BATCH_SIZE],
            outbox: Outbox::new(),
        }
    }

    /// Reads until the TUN is empty or [`TX_BATCH`] packets are in, then sends what is left
    /// in the outbox: so small packets read one at a time (TCP's ACKs) leave together.
    pub fn step(&mut self, shared: &Shared) -> Step {
        let config = shared.config();
        let udp = shared.socket();
        let mut read = 0;
        let step = loop {
            match shared
                .tun
                .recv_multiple(&mut self.gso, &mut self.packets, &mut self.sizes, 0)
            {
                Ok(n) => {
                    for (packet, size) in self.packets.iter().zip(&self.sizes).take(n) {
                        encrypt(&config, &udp, &packet[..*size], &mut self.outbox);
                    }
                    read += n.max(1);
                    if read >= TX_BATCH {
                        break Step::More;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Step::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if gone(&e) => {
                    tracing::warn!(ifname = %shared.ifname, error = %e, "TUN device closed");
                    break Step::Gone;
                }
                Err(e) => {
                    tracing::debug!(ifname = %shared.ifname, error = %e, "TUN packet dropped");
                    break Step::More;
                }
            }
        };
        self.outbox.flush(&udp);
        step
    }
}

/// Packets the encrypting direction reads before it lets the other direction have a turn.
const TX_BATCH: usize = IDEAL_BATCH_SIZE;

/// The packet thread: both directions, each a batch at a time, until neither has work, then
/// one `poll` for either (or the device's stop). A packet the kernel answers while we write
/// to the TUN (a TCP ACK, the next data segment) is picked up in the same pass, without
/// waking another thread.
pub(super) fn packets(shared: Arc<Shared>) {
    let mut egress = Egress::new();
    let mut ingress = Ingress::new(&shared);
    loop {
        let out = egress.step(&shared);
        let into = ingress.step(&shared);
        if out == Step::Gone || into == Step::Gone {
            return;
        }
        if out == Step::Drained && into == Step::Drained {
            let fds = [
                shared.tun.as_fd(),
                ingress.udp.socket.as_fd(),
                shared.rebind.as_fd(),
            ];
            match wait_readable(&shared, fds) {
                None => return,
                Some([_, _, true]) => ingress.rebind(&shared),
                Some(_) => {}
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

/// The decrypting direction: reads datagrams while they come, decrypts data packets into a
/// batch and writes it to the TUN (coalesced), and answers handshakes.
pub(super) struct Ingress {
    inbox: Inbox,
    batch: Vec<Vec<u8>>,
    scratch: Vec<u8>,
    gro: GROTable,
    udp: Arc<Udp>,
}

impl Ingress {
    pub fn new(shared: &Shared) -> Self {
        Ingress {
            inbox: Inbox::new(),
            batch: (0..IDEAL_BATCH_SIZE).map(|_| Vec::new()).collect(),
            scratch: vec![0u8; MAX_PACKET + OVERHEAD],
            gro: GROTable::default(),
            udp: shared.socket(),
        }
    }

    /// Takes up the device's new socket, if it was replaced.
    pub fn rebind(&mut self, shared: &Shared) {
        if shared.rebind.read().is_ok() {
            self.udp = shared.socket();
        }
    }

    pub fn step(&mut self, shared: &Shared) -> Step {
        let config = shared.config();
        let mut n = 0;
        let step = match self.inbox.receive(&self.udp) {
            Ok(count) => {
                for (datagram, from) in self.inbox.datagrams() {
                    let buf = &mut self.batch[n];
                    if decrypt(&config, &self.udp, datagram, from, buf, &mut self.scratch) {
                        n += 1;
                    }
                    if n == self.batch.len() {
                        if deliver(shared, &mut self.gro, &mut self.batch) == Step::Gone {
                            return Step::Gone;
                        }
                        n = 0;
                    }
                }
                if count < RX_BATCH {
                    Step::Drained
                } else {
                    Step::More
                }
            }
            Err(Errno::EINTR) => Step::More,
            Err(e) => {
                if e != Errno::EAGAIN {
                    tracing::trace!(ifname = %shared.ifname, error = %e, "UDP receive error");
                }
                Step::Drained
            }
        };
        if n > 0 && deliver(shared, &mut self.gro, &mut self.batch[..n]) == Step::Gone {
            return Step::Gone;
        }
        step
    }
}

/// Writes decrypted packets to the TUN, those of one TCP flow coalesced.
fn deliver(shared: &Shared, gro: &mut GROTable, batch: &mut [Vec<u8>]) -> Step {
    match shared.tun.send_multiple(gro, batch, VIRTIO_NET_HDR_LEN) {
        Ok(_) => Step::More,
        Err(e) if gone(&e) => {
            tracing::warn!(ifname = %shared.ifname, error = %e, "TUN device closed");
            Step::Gone
        }
        Err(e) => {
            tracing::debug!(ifname = %shared.ifname, error = %e, "TUN write failed");
            Step::More
        }
    }
}

/// Datagrams read per system call.
const RX_BATCH: usize = 64;

/// Datagrams read with one `recvmmsg`. The socket has UDP GRO on: a run of datagrams that a
/// peer sent with one `UDP_SEGMENT` send (or that the NIC coalesced) arrives as one, with
/// the size of its segments in a control message, so one system call and one trip up the
/// stack bring up to 64 WireGuard packets.
struct Inbox {
    bufs: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrStorage>,
    /// The kernel shrinks a header's control buffer length to what a message used, and
    /// `recvmmsg` does not restore it: after a message without a control message, a header
    /// cannot take one, so the headers are made anew.
    stale: bool,
    received: Vec<Received>,
}

/// One message received: `len` bytes in buffer `slot` from `from`, in datagrams of `segment`
/// bytes (the last may be shorter).
struct Received {
    slot: usize,
    len: usize,
    segment: usize,
    from: SocketAddr,
}

impl Inbox {
    fn new() -> Self {
        Inbox {
            bufs: zeroed_buffers(RX_BATCH),
            headers: Self::headers(),
            stale: false,
            received: Vec::with_capacity(RX_BATCH),
        }
    }

    fn headers() -> MultiHeaders<SockaddrStorage> {
        MultiHeaders::preallocate(RX_BATCH, Some(nix::cmsg_space!(i32)))
    }

    /// Reads the messages waiting (up to [`RX_BATCH`]) without blocking; how many.
    fn receive(&mut self, udp: &Udp) -> Result<usize, Errno> {
        self.received.clear();
        if std::mem::take(&mut self.stale) {
            self.headers = Self::headers();
        }
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
        for (slot, message) in messages.enumerate() {
            count += 1;
            let segment = message.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|cmsg| match cmsg {
                    ControlMessageOwned::UdpGroSegments(size) => usize::try_from(size).ok(),
                    _ => None,
                })
            });
            self.stale |= segment.is_none();
            let from = message.address.as_ref().and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::from(SocketAddrV4::from(*v4)))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddrV6::from(*v6).into()))
            });
            if let Some(from) = from {
                self.received.push(Received {
                    slot,
                    len: message.bytes,
                    segment: segment.unwrap_or(message.bytes).max(1),
                    from: SocketAddr::new(from.ip().to_canonical(), from.port()),
                });
            }
        }
        Ok(count)
    }

    /// The datagrams received, runs cut into their segments.
    fn datagrams(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.received.iter().flat_map(|message| {
            self.bufs[message.slot][..message.len]
                .chunks(message.segment)
                .map(move |datagram| (datagram, message.from))
        })
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
    // A peer roams to where its authenticated messages come from; a cookie reply is not one
    // (anyone who saw our handshake can forge it).
    let roams = !matches!(packet, Packet::PacketCookieReply(_));
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
            TunnResult::Err(_) => return false,
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
    if roams {
        peer.roam(from);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Datagram `i` of `size` bytes, its bytes telling which it is.
    fn datagram(i: u8, size: usize) -> Vec<u8> {
        vec![i; size]
    }

    /// Everything the inbox gets within a second, until `want` datagrams are in.
    fn receive(inbox: &mut Inbox, udp: &Udp, want: usize) -> (Vec<Vec<u8>>, Vec<usize>) {
        let (mut got, mut segments) = (Vec::new(), Vec::new());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while got.len() < want && std::time::Instant::now() < deadline {
            let mut fds = [PollFd::new(udp.socket.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            if inbox.receive(udp).is_ok() {
                segments.extend(inbox.received.iter().map(|m| m.segment));
                got.extend(inbox.datagrams().map(|(d, _)| d.to_vec()));
            }
        }
        (got, segments)
    }

    #[test]
    fn a_run_of_datagrams_arrives_as_one_message_and_is_cut_into_them() {
        let (rx, tx) = (Udp::bind(0, 0).unwrap(), Udp::bind(0, 0).unwrap());
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, rx.port()));
        let mut inbox = Inbox::new();

        // A lone datagram comes without a segment size, and leaves its receive header
        // unable to take one: the run after it, in the same header, must still be cut.
        tx.send(&datagram(0, 80), to);
        assert_eq!(receive(&mut inbox, &rx, 1).0, vec![datagram(0, 80)]);

        let run: Vec<Vec<u8>> = (1..=9)
            .map(|i| datagram(i, 100))
            .chain([datagram(10, 37)])
            .collect();
        let mut outbox = Outbox::new();
        for d in &run {
            assert!(outbox.count == 0 || outbox.admits(to, d.len()));
            outbox.space()[..d.len()].copy_from_slice(d);
            outbox.push(d.len(), to);
        }
        outbox.flush(&tx);
        let (got, segments) = receive(&mut inbox, &rx, run.len());
        let shape = |ds: &[Vec<u8>]| ds.iter().map(|d| (d[0], d.len())).collect::<Vec<_>>();
        assert_eq!(shape(&got), shape(&run), "(datagram, size) in order");
        assert_eq!(got, run, "the datagrams' bytes");
        assert!(outbox.segmentation, "loopback takes UDP_SEGMENT");
        assert_eq!(segments, vec![100], "one message carried the whole run");
    }
}
