//! One userspace WireGuard device: its configuration (keys, port, mark, peers and their
//! allowed IPs), the TUN interface and UDP socket it moves packets between, and the threads
//! that do so ([`datapath`](super::datapath)) and serve `wg` ([`control`](super::control)).
//!
//! The configuration is copy-on-write: the packet threads read an `Arc<Config>` snapshot per
//! batch, a change builds a new one and swaps it in. What must survive a change lives in the
//! shared [`Peer`]: its noise state ([`Tunn`]: sessions, handshake, timers) and its endpoint,
//! which roams with the peer's authenticated packets. So an endpoint or allowed-IPs update and
//! our own key rotation keep the peer's state; only a new keepalive interval or preshared key
//! starts it afresh (boringtun fixes both at creation), costing one handshake.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::Tunn;
use boringtun::x25519::{PublicKey, StaticSecret};
use ipnet::IpNet;
use nix::errno::Errno;
use nix::sys::eventfd::EventFd;
use nix::sys::socket::{sendmsg, setsockopt, sockopt, ControlMessage, MsgFlags, SockaddrStorage};
use rand_core::RngCore;
use socket2::{Domain, Protocol, Socket, Type};

use crate::key::Key;
use crate::wg::uapi::SetRequest;
use crate::wg::{DeviceState, PeerState};

/// Handshake initiations per second the device answers before it asks for cookies (the
/// figure of boringtun's own device and wireguard-go). Each initiation is checked twice against
/// it (once to find the peer, once by the peer's noise state), so cookies start at half of it.
const HANDSHAKE_RATE_LIMIT: u64 = 100;

/// The UDP socket's receive and send buffers. Bursts from a fast sender wait here while the
/// packet thread decrypts; the kernel's default (208 KiB) overflows and TCP takes the drops
/// for congestion. Set with `SO_RCVBUFFORCE` (we hold CAP_NET_ADMIN), else capped by
/// `net.core.rmem_max`. Memory is only used while packets wait.
const SOCKET_BUFFER: usize = 4 << 20;

/// Peer indices are 24 bits: boringtun puts a session counter in the low 8 bits of the 32-bit
/// index on the wire.
const INDEX_MASK: u32 = (1 << 24) - 1;

/// Locks a mutex, carrying on with the data after a panicking holder (a peer's state stays
/// usable; the worst case is one lost packet).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A peer's live state, shared by every configuration snapshot that has the peer.
pub(super) struct Peer {
    pub public_key: Key,
    /// The index boringtun's sessions carry (`receiver_idx >> 8`).
    pub index: u32,
    /// None while the device has no private key.
    pub tunn: Mutex<Option<Tunn>>,
    /// Where to send: configured, then following the peer's authenticated packets.
    pub endpoint: Mutex<Option<SocketAddr>>,
}

impl Peer {
    pub fn endpoint(&self) -> Option<SocketAddr> {
        *lock(&self.endpoint)
    }

    /// Follows the peer to the address its authenticated packet came from.
    pub fn roam(&self, from: SocketAddr) {
        let mut endpoint = lock(&self.endpoint);
        if *endpoint != Some(from) {
            *endpoint = Some(from);
        }
    }
}

/// A peer's configuration within one snapshot.
#[derive(Clone)]
struct PeerEntry {
    peer: Arc<Peer>,
    allowed_ips: Vec<IpNet>,
    keepalive: u16,
    preshared_key: Option<Key>,
}

/// Our static key pair.
#[derive(Clone)]
pub(super) struct KeyPair {
    pub private: Key,
    pub secret: StaticSecret,
    pub public: PublicKey,
}

/// One snapshot of the device's configuration.
#[derive(Clone)]
pub(super) struct Config {
    pub keys: Option<KeyPair>,
    /// The port asked for (0: any, the kernel's choice).
    pub listen_port: u16,
    pub fwmark: u32,
    /// Shared by the device and its peers' noise states (cookies under load).
    pub limiter: Arc<RateLimiter>,
    peers: BTreeMap<Key, PeerEntry>,
    by_index: HashMap<u32, Arc<Peer>>,
    /// Allowed IPs, longest prefix first.
    routes: Vec<(IpNet, Arc<Peer>)>,
    next_index: u32,
}

impl Config {
    fn new() -> Self {
        Config {
            keys: None,
            listen_port: 0,
            fwmark: 0,
            limiter: Arc::new(RateLimiter::new(
                &PublicKey::from([0; 32]),
                HANDSHAKE_RATE_LIMIT,
            )),
            peers: BTreeMap::new(),
            by_index: HashMap::new(),
            routes: Vec::new(),
            next_index: rand_core::OsRng.next_u32() & INDEX_MASK,
        }
    }

    /// The peer whose allowed IPs hold `ip` (longest prefix).
    pub fn peer_for(&self, ip: IpAddr) -> Option<&Arc<Peer>> {
        self.routes
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, peer)| peer)
    }

    pub fn peer_by_index(&self, receiver_idx: u32) -> Option<&Arc<Peer>> {
        self.by_index.get(&(receiver_idx >> 8))
    }

    pub fn peer_by_key(&self, public: &[u8; 32]) -> Option<&Arc<Peer>> {
        self.peers
            .get(&Key::from_bytes(*public))
            .map(|entry| &entry.peer)
    }

    pub fn peers(&self) -> impl Iterator<Item = &Arc<Peer>> {
        self.peers.values().map(|entry| &entry.peer)
    }

    fn allocate_index(&mut self) -> u32 {
        loop {
            let index = self.next_index;
            self.next_index = (self.next_index + 1) & INDEX_MASK;
            if !self.by_index.contains_key(&index) {
                return index;
            }
        }
    }

    fn tunn(
        &self,
        public_key: &Key,
        entry_psk: Option<&Key>,
        keepalive: u16,
        index: u32,
    ) -> Option<Tunn> {
        let keys = self.keys.as_ref()?;
        Some(Tunn::new(
            keys.secret.clone(),
            PublicKey::from(*public_key.as_bytes()),
            entry_psk.map(|k| *k.as_bytes()),
            (keepalive > 0).then_some(keepalive),
            index,
            Some(self.limiter.clone()),
        ))
    }

    fn new_peer(
        &mut self,
        public_key: Key,
        psk: Option<&Key>,
        keepalive: u16,
        endpoint: Option<SocketAddr>,
    ) -> Arc<Peer> {
        let index = self.allocate_index();
        let tunn = self.tunn(&public_key, psk, keepalive, index);
        let peer = Arc::new(Peer {
            public_key,
            index,
            tunn: Mutex::new(tunn),
            endpoint: Mutex::new(endpoint),
        });
        self.by_index.insert(index, peer.clone());
        peer
    }

    /// Sets (or with None removes) our private key. Existing sessions end; peers keep their
    /// endpoints and handshake again on the next packet, as with the kernel module.
    fn set_private_key(&mut self, key: Option<Key>) {
        if self.keys.as_ref().map(|k| &k.private) == key.as_ref() {
            return;
        }
        let Some(private) = key else {
            self.keys = None;
            for entry in self.peers.values() {
                *lock(&entry.peer.tunn) = None;
            }
            return;
        };
        let secret = StaticSecret::from(*private.as_bytes());
        let public = PublicKey::from(&secret);
        self.limiter = Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT));
        // A peer with our own public key cannot exist (the kernel drops it too).
        self.peers.remove(&Key::from_bytes(public.to_bytes()));
        self.keys = Some(KeyPair {
            private,
            secret: secret.clone(),
            public,
        });
        let entries: Vec<PeerEntry> = self.peers.values().cloned().collect();
        for entry in entries {
            let mut tunn = lock(&entry.peer.tunn);
            match tunn.as_mut() {
                Some(t) => t.set_static_private(secret.clone(), public, Some(self.limiter.clone())),
                None => {
                    *tunn = self.tunn(
                        &entry.peer.public_key,
                        entry.preshared_key.as_ref(),
                        entry.keepalive,
                        entry.peer.index,
                    )
                }
            }
        }
    }

    /// Applies the peer sections of `request` (device fields are the caller's).
    fn apply_peers(&mut self, request: &SetRequest) {
        if request.replace_peers {
            self.peers.clear();
        }
        let own = self
            .keys
            .as_ref()
            .map(|k| Key::from_bytes(k.public.to_bytes()));
        for set in &request.peers {
            if own.as_ref() == Some(&set.public_key) {
                continue;
            }
            if set.remove {
                self.peers.remove(&set.public_key);
                continue;
            }
            let entry = match self.peers.get(&set.public_key).cloned() {
                Some(mut entry) => {
                    if let Some(endpoint) = set.endpoint {
                        *lock(&entry.peer.endpoint) = Some(endpoint);
                    }
                    let keepalive = set.keepalive.unwrap_or(entry.keepalive);
                    let psk = set
                        .preshared_key
                        .clone()
                        .unwrap_or(entry.preshared_key.clone());
                    if keepalive != entry.keepalive || psk != entry.preshared_key {
                        let endpoint = entry.peer.endpoint();
                        entry.peer = self.new_peer(
                            set.public_key.clone(),
                            psk.as_ref(),
                            keepalive,
                            endpoint,
                        );
                        entry.keepalive = keepalive;
                        entry.preshared_key = psk;
                    }
                    if set.replace_allowed_ips {
                        entry.allowed_ips.clear();
                    }
                    entry
                }
                None if set.update_only => continue,
                None => {
                    let psk = set.preshared_key.clone().flatten();
                    let keepalive = set.keepalive.unwrap_or(0);
                    PeerEntry {
                        peer: self.new_peer(
                            set.public_key.clone(),
                            psk.as_ref(),
                            keepalive,
                            set.endpoint,
                        ),
                        allowed_ips: Vec::new(),
                        keepalive,
                        preshared_key: psk,
                    }
                }
            };
            // An allowed IP belongs to one peer: giving it to this one takes it from others.
            for net in &set.allowed_ips {
                for other in self.peers.values_mut() {
                    other.allowed_ips.retain(|n| n != net);
                }
            }
            let mut entry = entry;
            entry.allowed_ips.extend(set.allowed_ips.iter().copied());
            entry.allowed_ips.sort();
            entry.allowed_ips.dedup();
            self.peers.insert(set.public_key.clone(), entry);
        }
        self.reindex();
    }

    fn reindex(&mut self) {
        self.by_index = self
            .peers
            .values()
            .map(|e| (e.peer.index, e.peer.clone()))
            .collect();
        let mut routes: Vec<(IpNet, Arc<Peer>)> = self
            .peers
            .values()
            .flat_map(|e| e.allowed_ips.iter().map(|net| (*net, e.peer.clone())))
            .collect();
        routes.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        self.routes = routes;
    }
}

/// The device's UDP socket and the family it speaks.
pub(super) struct Udp {
    pub socket: UdpSocket,
    /// A dual-stack IPv6 socket: IPv4 peers are addressed as mapped addresses.
    dual_stack: bool,
}

impl Udp {
    /// Binds `port` (0: any) on every address, dual-stack when IPv6 is available.
    pub(super) fn bind(port: u16, fwmark: u32) -> io::Result<Self> {
        let v6 = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).and_then(|s| {
            s.set_only_v6(false)?;
            s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
            Ok(s)
        });
        let (socket, dual_stack) = match v6 {
            Ok(s) => (s, true),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(e),
            Err(_) => {
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
                s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
                (s, false)
            }
        };
        if setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
            socket.set_recv_buffer_size(SOCKET_BUFFER)?;
        }
        if setsockopt(&socket, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
            socket.set_send_buffer_size(SOCKET_BUFFER)?;
        }
        // Runs of datagrams of one sender arrive as one (see `datapath::Inbox`); a kernel
        // without UDP GRO hands them over one by one.
        let _ = setsockopt(&socket, sockopt::UdpGroSegment, &true);
        socket.set_nonblocking(true)?;
        let udp = Udp {
            socket: socket.into(),
            dual_stack,
        };
        // A new socket has no mark; setting one takes CAP_NET_ADMIN.
        if fwmark != 0 {
            udp.set_mark(fwmark)?;
        }
        Ok(udp)
    }

    fn set_mark(&self, mark: u32) -> io::Result<()> {
        setsockopt(&self.socket, sockopt::Mark, &mark).map_err(io::Error::from)
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// `to` as this socket addresses it.
    fn target(&self, to: SocketAddr) -> SocketAddr {
        match (to, self.dual_stack) {
            (SocketAddr::V4(v4), true) => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            (to, _) => to,
        }
    }

    /// Sends `run`, datagrams of `segment` bytes each (the last may be shorter), with one
    /// system call: UDP segmentation offload (`UDP_SEGMENT`), the kernel cutting the run.
    pub fn send_segments(&self, run: &[u8], segment: u16, to: SocketAddr) -> io::Result<()> {
        let to = SockaddrStorage::from(self.target(to));
        let iov = [IoSlice::new(run)];
        let cmsg = [ControlMessage::UdpGsoSegments(&segment)];
        loop {
            match sendmsg(
                self.socket.as_raw_fd(),
                &iov,
                &cmsg,
                MsgFlags::empty(),
                Some(&to),
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EAGAIN) => super::datapath::wait_writable(&self.socket),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends one datagram, waiting while the socket's send buffer is full; other errors (no
    /// route to the peer, say) drop it, as a lost packet.
    pub fn send(&self, packet: &[u8], to: SocketAddr) {
        let to = self.target(to);
        loop {
            match self.socket.send_to(packet, to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    super::datapath::wait_writable(&self.socket)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::trace!(%to, error = %e, "WireGuard datagram not sent");
                    return;
                }
                Ok(_) => return,
            }
        }
    }
}

/// Why a change was refused, as the UAPI's errno.
#[derive(Debug)]
pub(super) struct ApplyError {
    pub errno: i32,
    pub message: String,
}

/// What the packet threads, the UAPI server and the engine share.
pub(super) struct Shared {
    pub ifname: String,
    pub tun: tun_rs::SyncDevice,
    socket: RwLock<Arc<Udp>>,
    config: RwLock<Arc<Config>>,
    /// Serialises changes (readers never wait for it).
    control: Mutex<()>,
    /// Written once when the device stops; every thread polls it.
    pub stop: EventFd,
    /// Written when the socket is replaced; the receive thread polls and reads it.
    pub rebind: EventFd,
}

impl Shared {
    pub fn new(ifname: &str, tun: tun_rs::SyncDevice) -> io::Result<Self> {
        let config = Config::new();
        let udp = Udp::bind(config.listen_port, config.fwmark)?;
        Ok(Shared {
            ifname: ifname.to_owned(),
            tun,
            socket: RwLock::new(Arc::new(udp)),
            config: RwLock::new(Arc::new(config)),
            control: Mutex::new(()),
            stop: EventFd::new().map_err(io::Error::from)?,
            rebind: EventFd::new().map_err(io::Error::from)?,
        })
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn socket(&self) -> Arc<Udp> {
        self.socket
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies one `set` transaction: all of it, or (on error) nothing.
    pub fn apply(&self, request: &SetRequest) -> Result<(), ApplyError> {
        let _serial = lock(&self.control);
        let mut config = (*self.config()).clone();
        let fwmark = request.fwmark.unwrap_or(config.fwmark);
        let socket = self.socket();
        let rebound = match request.listen_port {
            Some(port) if port != config.listen_port => {
                Some(Udp::bind(port, fwmark).map_err(|e| ApplyError {
                    errno: e.raw_os_error().unwrap_or(libc_eio()),
                    message: format!("cannot listen on UDP port {port}: {e}"),
                })?)
            }
            _ => None,
        };
        if rebound.is_none() && fwmark != config.fwmark {
            socket.set_mark(fwmark).map_err(|e| ApplyError {
                errno: e.raw_os_error().unwrap_or(libc_eio()),
                message: format!("cannot set fwmark {fwmark}: {e}"),
            })?;
        }
        config.fwmark = fwmark;
        if let Some(key) = &request.private_key {
            config.set_private_key(key.clone());
        }
        config.apply_peers(request);
        if let Some(udp) = rebound {
            config.listen_port = request.listen_port.unwrap_or(0);
            *self.socket.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(udp);
            let _ = self.rebind.write(1);
        }
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        Ok(())
    }

    /// The device as `wg show` and [`Tunnels`](crate::Tunnels) read it, with our private key
    /// and the peers' preshared keys (for the UAPI's `get`).
    pub fn state(&self) -> (Option<Key>, DeviceState, BTreeMap<Key, Key>) {
        let config = self.config();
        let mut preshared = BTreeMap::new();
        let peers = config
            .peers
            .values()
            .map(|entry| {
                if let Some(psk) = &entry.preshared_key {
                    preshared.insert(entry.peer.public_key.clone(), psk.clone());
                }
                let endpoint = entry.peer.endpoint();
                let (age, tx, rx) = lock(&entry.peer.tunn)
                    .as_ref()
                    .map(|t| {
                        let (age, tx, rx, _, _) = t.stats();
                        (age, tx, rx)
                    })
                    .unwrap_or_default();
                PeerState {
                    public_key: entry.peer.public_key.clone(),
                    endpoint,
                    allowed_ips: entry.allowed_ips.clone(),
                    keepalive: entry.keepalive,
                    last_handshake_age: age,
                    rx_bytes: rx as u64,
                    tx_bytes: tx as u64,
                }
            })
            .collect();
        let state = DeviceState {
            public_key: config
                .keys
                .as_ref()
                .map(|k| Key::from_bytes(k.public.to_bytes())),
            listen_port: self.socket().port(),
            fwmark: config.fwmark,
            peers,
        };
        (
            config.keys.as_ref().map(|k| k.private.clone()),
            state,
            preshared,
        )
    }
}

/// EIO, for errors without an errno of their own.
fn libc_eio() -> i32 {
    nix::errno::Errno::EIO as i32
}
