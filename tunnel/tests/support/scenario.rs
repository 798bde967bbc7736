//! The tunnel scenario both tiers run (boringtun on the host, kernel WireGuard in the VM): two
//! gateways in two namespaces over a veth, two classes, TCP through each, `wg show`, then an
//! endpoint change and key rotations with a TCP connection kept open across them.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use mcwan_tunnel::{Backend, Key, PeerSpec, TunnelSpec, Tunnels};

use super::{echo_server, veth, EchoClient, Netns, NsRuntime};

/// One gateway: its namespace, runtime, tunnels and keys per class.
pub struct Gateway {
    pub ns: Netns,
    pub rt: NsRuntime,
    pub tunnels: Option<Tunnels>,
    pub index: u8,
    pub tag: String,
    pub keys: Vec<Key>,
}

pub const CLASSES: [(&str, u16); 2] = [("gold", 51820), ("silver", 51821)];

impl Gateway {
    pub fn new(role: &str, index: u8, backend: Backend) -> Self {
        let ns = Netns::new(role);
        let rt = ns.runtime();
        let tunnels = rt.run(async move { Tunnels::new(backend).await.unwrap() });
        assert_eq!(tunnels.backend(), backend);
        Gateway {
            ns,
            rt,
            tunnels: Some(tunnels),
            index,
            tag: format!("{}{}", super::unique_tag(), &role[..1]),
            keys: CLASSES.iter().map(|_| Key::generate()).collect(),
        }
    }

    /// The interface name of class `c` (unique per test run: boringtun's UAPI sockets share
    /// one directory across namespaces).
    pub fn ifname(&self, c: usize) -> String {
        format!("mw{}{}", self.tag, &CLASSES[c].0[..1])
    }

    pub fn inner(&self, c: usize) -> std::net::Ipv4Addr {
        format!("10.255.{}.{}", c + 1, self.index).parse().unwrap()
    }

    /// The specs towards `peer`, reached at `peer_wan`.
    pub fn specs(&self, peer: &Gateway, peer_wan: &str) -> Vec<TunnelSpec> {
        CLASSES
            .iter()
            .enumerate()
            .map(|(c, (class, port))| TunnelSpec {
                class: (*class).into(),
                ifname: self.ifname(c),
                listen_port: *port,
                private_key: self.keys[c].clone(),
                address: format!("{}/24", self.inner(c)).parse().unwrap(),
                mtu: mcwan_tunnel::mtu::for_underlay(Some(1500)),
                fwmark: None,
                peers: vec![PeerSpec {
                    name: peer.ns.name.clone(),
                    public_key: peer.keys[c].public_key(),
                    endpoint: format!("{peer_wan}:{port}").parse().unwrap(),
                    allowed_ips: vec![format!("{}/32", peer.inner(c)).parse().unwrap()],
                    keepalive: Some(5),
                }],
            })
            .collect()
    }

    pub fn apply(&mut self, specs: Vec<TunnelSpec>) -> mcwan_tunnel::TunnelReport {
        let mut tunnels = self.tunnels.take().unwrap();
        let (tunnels, report) = self.rt.run(async move {
            let report = tunnels.apply(&specs).await.unwrap();
            (tunnels, report)
        });
        self.tunnels = Some(tunnels);
        assert!(report.failed.is_empty(), "{report:?}");
        report
    }

    pub fn status(&mut self) -> Vec<mcwan_tunnel::TunnelStatus> {
        let tunnels = self.tunnels.take().unwrap();
        let (tunnels, status) = self.rt.run(async move {
            let status = tunnels.status().await.unwrap();
            (tunnels, status)
        });
        self.tunnels = Some(tunnels);
        status
    }
}

/// Two gateways `a` (index 1, WAN 192.0.2.1) and `b` (index 2, WAN 192.0.2.2, later .3).
pub fn pair(backend: Backend) -> (Gateway, Gateway) {
    let a = Gateway::new("a", 1, backend);
    let b = Gateway::new("b", 2, backend);
    veth(&a.ns, "wan", "192.0.2.1/24", &b.ns, "wan", "192.0.2.2/24");
    (a, b)
}

/// The whole scenario.
pub fn run(backend: Backend) {
    let (mut a, mut b) = pair(backend);

    // Both classes come up and carry TCP.
    let report = a.apply(a.specs(&b, "192.0.2.2"));
    assert_eq!(report.created.len(), 2, "{report:?}");
    b.apply(b.specs(&a, "192.0.2.1"));
    let mut clients = Vec::new();
    for (c, (class, _)) in CLASSES.iter().enumerate() {
        let addr = SocketAddr::new(b.inner(c).into(), 7000 + c as u16);
        echo_server(&b.rt, addr);
        let mut client = EchoClient::connect(&a.rt, addr);
        client.round_trip(&a.rt, &format!("hello {class}"), 20);
        clients.push(client);
    }

    // Bulk data both ways: 4 MiB echoed through gold, byte for byte (large segments from
    // the sending TCP stack, coalesced ones on the receiving side).
    clients[0].round_trip(&a.rt, &bulk_line(4 << 20), 120);

    // A second apply of the same specs changes nothing.
    assert!(a.apply(a.specs(&b, "192.0.2.2")).is_noop());

    // `wg show` reads the device, whichever backend drives it.
    let shown = a.ns.sh(&["wg", "show", &a.ifname(0)]);
    assert!(
        shown.contains(&b.keys[0].public_key().to_base64()),
        "{shown}"
    );
    assert!(shown.contains("192.0.2.2:51820"), "{shown}");
    assert!(shown.contains("transfer"), "{shown}");

    // boringtun's TUN queue is lengthened; the kernel's WireGuard interface keeps its own.
    if backend == Backend::Userspace {
        let link = a.ns.sh(&["ip", "link", "show", &a.ifname(0)]);
        assert!(link.contains("qlen 2048"), "{link}");
    }

    // status() names the peer and counts traffic.
    let status = a.status();
    assert_eq!(status.len(), 2, "{status:?}");
    for s in &status {
        assert_eq!(s.peers.len(), 1);
        assert_eq!(s.peers[0].name, b.ns.name);
        assert!(s.peers[0].rx_bytes > 0 && s.peers[0].tx_bytes > 0, "{s:?}");
        assert!(s.peers[0].last_handshake_age.is_some(), "{s:?}");
    }

    // Endpoint change: b's WAN address moves from .2 to .3 and a is told; same interface,
    // same connection. The new address comes first as a secondary one, so that b keeps
    // sending from .2 until a is told: WireGuard roams to the source of an authenticated
    // packet, and a keepalive from .3 would move a's endpoint before the apply does.
    // (Removing the primary then promotes .3 instead of taking it along.)
    b.ns.sh(&["sysctl", "-qw", "net.ipv4.conf.wan.promote_secondaries=1"]);
    b.ns.sh(&["ip", "addr", "add", "192.0.2.3/24", "dev", "wan"]);
    let report = a.apply(a.specs(&b, "192.0.2.3"));
    b.ns.sh(&["ip", "addr", "del", "192.0.2.2/24", "dev", "wan"]);
    assert!(report.created.is_empty() && report.removed.is_empty());
    assert_eq!(report.changed.len(), 2, "{report:?}");
    for change in &report.changed {
        assert_eq!(change.peers_updated, vec![b.ns.name.clone()], "{report:?}");
    }
    clients[0].round_trip(&a.rt, "after endpoint change", 30);
    let status = a.status();
    let gold = status.iter().find(|s| s.ifname == a.ifname(0)).unwrap();
    assert_eq!(
        gold.peers[0].endpoint,
        Some("192.0.2.3:51820".parse().unwrap())
    );

    // Key rotation on a (its own key) then on b (a's new public key): the connection survives.
    a.keys[0] = Key::generate();
    let report = a.apply(a.specs(&b, "192.0.2.3"));
    assert!(report.changed[0].private_key, "{report:?}");
    assert!(report.created.is_empty());
    let report = b.apply(b.specs(&a, "192.0.2.1"));
    assert_eq!(report.changed[0].peers_added, vec![a.ns.name.clone()]);
    assert_eq!(report.changed[0].peers_removed, vec![a.ns.name.clone()]);
    clients[0].round_trip(&a.rt, "after key rotation", 40);
    clients[1].round_trip(&a.rt, "silver untouched", 20);

    // Removing a class removes only its interface.
    let mut specs = a.specs(&b, "192.0.2.3");
    specs.truncate(1);
    let report = a.apply(specs);
    assert_eq!(report.removed, vec![a.ifname(1)]);
    clients[0].round_trip(&a.rt, "gold still up", 20);

    // And nothing left at the end.
    let report = a.apply(Vec::new());
    assert_eq!(report.removed, vec![a.ifname(0)]);
    b.apply(Vec::new());
    std::thread::sleep(Duration::from_millis(100));
    let links = a.ns.sh(&["ip", "-o", "link"]);
    assert!(!links.contains("mcwan tunnel"), "{links}");
}

/// An interface with our name pattern but without our alias is never touched.
pub fn foreign_interfaces_are_left_alone(backend: Backend) {
    let mut a = Gateway::new("a", 1, backend);
    let b = Gateway::new("b", 2, backend);
    let name = a.ifname(0);
    a.ns.sh(&[
        "ip", "link", "add", &name, "type", "veth", "peer", "name", "other0",
    ]);
    let specs = a.specs(&b, "192.0.2.2");
    let mut tunnels = a.tunnels.take().unwrap();
    let report =
        a.rt.run(async move { tunnels.apply(&specs).await.unwrap() });
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let err = report.failed[0].1.to_string();
    assert!(err.contains(&name) && err.contains("not owned"), "{err}");
    assert_eq!(report.created, vec![a.ifname(1)]);
    // The foreign veth is still there and still has no alias.
    let shown = a.ns.sh(&["ip", "-o", "link", "show", &name]);
    assert!(!shown.contains("mcwan"), "{shown}");
}

/// `len` bytes of letters with no short period (a corrupted or misplaced segment shows).
pub fn bulk_line(len: usize) -> String {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

/// A WireGuard implementation that is not mcwan's, driven with `ip` and `wg` as its users do.
pub enum Foreign {
    /// The kernel's `wireguard` module.
    Kernel,
    /// wireguard-go, this binary.
    Go(std::path::PathBuf),
}

/// mcwan's userspace device in `a` and a foreign WireGuard in `b`, one tunnel between them:
/// TCP both ways (each side serves, the other connects), then 1 MiB echoed, and each side's
/// `wg show` counting the handshake.
pub fn interop(foreign: Foreign) {
    let (mut a, b) = pair(Backend::Userspace);
    let mut specs = a.specs(&b, "192.0.2.2");
    specs.truncate(1);
    let port = specs[0].listen_port;
    a.apply(specs);

    let dev = b.ifname(0);
    let _daemon = match &foreign {
        Foreign::Kernel => {
            b.ns.sh(&["ip", "link", "add", &dev, "type", "wireguard"]);
            None
        }
        Foreign::Go(go) => Some(super::Daemon::start(&b.ns, go, &dev)),
    };
    let key = std::env::temp_dir().join(format!("{dev}.key"));
    std::fs::write(&key, b.keys[0].to_base64()).unwrap();
    b.ns.sh(&[
        "wg",
        "set",
        &dev,
        "listen-port",
        &port.to_string(),
        "private-key",
        key.to_str().unwrap(),
        "peer",
        &a.keys[0].public_key().to_base64(),
        "endpoint",
        &format!("192.0.2.1:{port}"),
        "allowed-ips",
        &format!("{}/32", a.inner(0)),
    ]);
    let _ = std::fs::remove_file(&key);
    b.ns.sh(&[
        "ip",
        "addr",
        "add",
        &format!("{}/24", b.inner(0)),
        "dev",
        &dev,
    ]);
    b.ns.sh(&["ip", "link", "set", &dev, "mtu", "1420", "up"]);

    // b serves, a connects; then a serves, b connects.
    let to_b = SocketAddr::new(b.inner(0).into(), 7100);
    echo_server(&b.rt, to_b);
    let mut from_a = EchoClient::connect(&a.rt, to_b);
    from_a.round_trip(&a.rt, "mcwan -> foreign", 20);
    let to_a = SocketAddr::new(a.inner(0).into(), 7101);
    echo_server(&a.rt, to_a);
    let mut from_b = EchoClient::connect(&b.rt, to_a);
    from_b.round_trip(&b.rt, "foreign -> mcwan", 20);
    from_a.round_trip(&a.rt, &bulk_line(1 << 20), 120);
    from_b.round_trip(&b.rt, &bulk_line(1 << 20), 120);

    for (ns, dev, peer) in [
        (&a.ns, a.ifname(0), b.keys[0].public_key()),
        (&b.ns, dev.clone(), a.keys[0].public_key()),
    ] {
        let shown = ns.sh(&["wg", "show", &dev, "latest-handshakes"]);
        let stamp = shown
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok());
        assert!(
            shown.starts_with(&peer.to_base64()) && stamp.is_some_and(|t| t > 0),
            "{}: {shown}",
            ns.name
        );
    }
    a.apply(Vec::new());
}
