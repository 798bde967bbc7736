//! Kernel WireGuard over its generic netlink family `wireguard`: pure builders for
//! `WG_CMD_SET_DEVICE` / `WG_CMD_GET_DEVICE`, a pure parser of the (possibly multi-part) dump,
//! and a thin [`Client`].
//!
//! The kernel updates peers in place (`WGPEER_F_UPDATE_ONLY`), so an endpoint change or our key
//! rotation keeps the interface and the peers' state.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use genetlink::GenetlinkHandle;
use ipnet::IpNet;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_generic::GenlMessage;
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute,
    WireguardCmd, WireguardMessage, WireguardPeer, WireguardPeerAttribute, WireguardPeerFlags,
};

use super::{DeviceState, DeviceUpdate, PeerChange, PeerConfig, PeerState};
use crate::error::{Error, Result};
use crate::key::Key;

/// Peers per `SET_DEVICE` message: keeps each message far below a page.
const PEERS_PER_MESSAGE: usize = 16;

/// The `GET_DEVICE` dump request for `ifname`.
pub fn get_request(ifname: &str) -> NetlinkMessage<GenlMessage<WireguardMessage>> {
    let mut message = NetlinkMessage::from(GenlMessage::from_payload(WireguardMessage {
        cmd: WireguardCmd::GetDevice,
        attributes: vec![WireguardAttribute::IfName(ifname.to_owned())],
    }));
    message.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    message.finalize();
    message
}

/// The `SET_DEVICE` requests for `update`: device fields with the first peers, then the other
/// peers in further messages. Empty when there is nothing to do.
pub fn set_requests(
    ifname: &str,
    update: &DeviceUpdate,
) -> Vec<NetlinkMessage<GenlMessage<WireguardMessage>>> {
    let mut device = vec![WireguardAttribute::IfName(ifname.to_owned())];
    if let Some(key) = &update.private_key {
        device.push(WireguardAttribute::PrivateKey(*key.as_bytes()));
    }
    if let Some(port) = update.listen_port {
        device.push(WireguardAttribute::ListenPort(port));
    }
    if let Some(mark) = update.fwmark {
        device.push(WireguardAttribute::Fwmark(mark));
    }
    let peers: Vec<WireguardPeer> = update.peers.iter().map(peer_attrs).collect();
    let mut chunks: Vec<Vec<WireguardPeer>> =
        peers.chunks(PEERS_PER_MESSAGE).map(<[_]>::to_vec).collect();
    if device.len() == 1 && chunks.is_empty() {
        return Vec::new();
    }
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    let mut out = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut attributes = if i == 0 {
            device.clone()
        } else {
            vec![WireguardAttribute::IfName(ifname.to_owned())]
        };
        if !chunk.is_empty() {
            attributes.push(WireguardAttribute::Peers(chunk));
        }
        let mut message = NetlinkMessage::from(GenlMessage::from_payload(WireguardMessage {
            cmd: WireguardCmd::SetDevice,
            attributes,
        }));
        message.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        message.finalize();
        out.push(message);
    }
    out
}

fn peer_attrs(change: &PeerChange) -> WireguardPeer {
    match change {
        PeerChange::Remove(key) => WireguardPeer(vec![
            WireguardPeerAttribute::PublicKey(*key.as_bytes()),
            WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe),
        ]),
        PeerChange::Add(peer) => config_attrs(peer, WireguardPeerFlags::ReplaceAllowedIps),
        PeerChange::Update(peer) => config_attrs(
            peer,
            WireguardPeerFlags::ReplaceAllowedIps | WireguardPeerFlags::UpdateOnly,
        ),
    }
}

fn config_attrs(peer: &PeerConfig, flags: WireguardPeerFlags) -> WireguardPeer {
    let allowed = peer
        .allowed_ips
        .iter()
        .map(|net| {
            let family = if net.addr().is_ipv4() {
                WireguardAddressFamily::Ipv4
            } else {
                WireguardAddressFamily::Ipv6
            };
            WireguardAllowedIp(vec![
                WireguardAllowedIpAttr::Family(family),
                WireguardAllowedIpAttr::IpAddr(net.addr()),
                WireguardAllowedIpAttr::Cidr(net.prefix_len()),
            ])
        })
        .collect();
    WireguardPeer(vec![
        WireguardPeerAttribute::PublicKey(*peer.public_key.as_bytes()),
        WireguardPeerAttribute::Flags(flags),
        WireguardPeerAttribute::Endpoint(peer.endpoint),
        WireguardPeerAttribute::PersistentKeepalive(peer.keepalive),
        WireguardPeerAttribute::AllowedIps(allowed),
    ])
}

/// Merges the parts of a `GET_DEVICE` dump into one state (a peer with many allowed IPs may
/// continue in the next part).
pub fn parse_dump(parts: &[WireguardMessage], now: SystemTime) -> DeviceState {
    let mut state = DeviceState::default();
    let mut peers: BTreeMap<Key, PeerState> = BTreeMap::new();
    let mut order: Vec<Key> = Vec::new();
    for part in parts {
        for attr in &part.attributes {
            match attr {
                WireguardAttribute::PublicKey(k) if *k != [0; 32] => {
                    state.public_key = Some(Key::from_bytes(*k));
                }
                WireguardAttribute::ListenPort(p) => state.listen_port = *p,
                WireguardAttribute::Fwmark(m) => state.fwmark = *m,
                WireguardAttribute::Peers(list) => {
                    for peer in list {
                        merge_peer(&mut peers, &mut order, peer, now);
                    }
                }
                _ => {}
            }
        }
    }
    state.peers = order
        .into_iter()
        .filter_map(|k| peers.remove(&k))
        .map(|mut p| {
            p.allowed_ips.sort();
            p
        })
        .collect();
    state
}

fn merge_peer(
    peers: &mut BTreeMap<Key, PeerState>,
    order: &mut Vec<Key>,
    peer: &WireguardPeer,
    now: SystemTime,
) {
    let Some(key) = peer.0.iter().find_map(|a| match a {
        WireguardPeerAttribute::PublicKey(k) => Some(Key::from_bytes(*k)),
        _ => None,
    }) else {
        return;
    };
    let entry = peers.entry(key.clone()).or_insert_with(|| {
        order.push(key.clone());
        PeerState {
            public_key: key,
            endpoint: None,
            allowed_ips: Vec::new(),
            keepalive: 0,
            last_handshake_age: None,
            rx_bytes: 0,
            tx_bytes: 0,
        }
    });
    for attr in &peer.0 {
        match attr {
            WireguardPeerAttribute::Endpoint(e) => entry.endpoint = Some(*e),
            WireguardPeerAttribute::PersistentKeepalive(k) => entry.keepalive = *k,
            WireguardPeerAttribute::RxBytes(b) => entry.rx_bytes = *b,
            WireguardPeerAttribute::TxBytes(b) => entry.tx_bytes = *b,
            WireguardPeerAttribute::LastHandshake(t) if t.seconds > 0 || t.nano_seconds > 0 => {
                let at = UNIX_EPOCH
                    + Duration::new(
                        u64::try_from(t.seconds).unwrap_or(0),
                        u32::try_from(t.nano_seconds).unwrap_or(0),
                    );
                entry.last_handshake_age = Some(now.duration_since(at).unwrap_or_default());
            }
            WireguardPeerAttribute::AllowedIps(list) => {
                for ip in list {
                    let addr = ip.iter().find_map(|a| match a {
                        WireguardAllowedIpAttr::IpAddr(a) => Some(*a),
                        _ => None,
                    });
                    let cidr = ip.iter().find_map(|a| match a {
                        WireguardAllowedIpAttr::Cidr(c) => Some(*c),
                        _ => None,
                    });
                    if let (Some(addr), Some(cidr)) = (addr, cidr) {
                        if let Ok(net) = IpNet::new(addr, cidr) {
                            entry.allowed_ips.push(net);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// A generic netlink connection to the kernel's `wireguard` family.
#[derive(Debug, Clone)]
pub struct Client {
    handle: GenetlinkHandle,
}

impl Client {
    /// Opens a connection (its driver task runs on the current tokio runtime).
    pub fn connect() -> Result<Self> {
        let (connection, handle, _) = genetlink::new_connection().map_err(Error::Socket)?;
        tokio::spawn(connection);
        Ok(Client { handle })
    }

    /// Whether the kernel has the `wireguard` family (the module is loaded).
    pub async fn family_exists(&self) -> bool {
        self.handle
            .resolve_family::<WireguardMessage>()
            .await
            .is_ok()
    }

    async fn execute(
        &self,
        ifname: &str,
        message: NetlinkMessage<GenlMessage<WireguardMessage>>,
    ) -> Result<Vec<WireguardMessage>> {
        let mut handle = self.handle.clone();
        let object = format!("WireGuard device {ifname}");
        let mut stream = handle.request(message).await.map_err(|e| Error::Netlink {
            object: object.clone(),
            message: e.to_string(),
        })?;
        let mut out = Vec::new();
        while let Some(reply) = stream.next().await {
            let reply = reply.map_err(|e| Error::Netlink {
                object: object.clone(),
                message: e.to_string(),
            })?;
            match reply.payload {
                NetlinkPayload::InnerMessage(genl) => out.push(genl.payload),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(Error::kernel(object, -e.raw_code()));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Reads the device.
    pub async fn get(&self, ifname: &str) -> Result<DeviceState> {
        let parts = self.execute(ifname, get_request(ifname)).await?;
        Ok(parse_dump(&parts, SystemTime::now()))
    }

    /// Applies an update.
    pub async fn set(&self, ifname: &str, update: &DeviceUpdate) -> Result<()> {
        for message in set_requests(ifname, update) {
            self.execute(ifname, message).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::{mk_peer, mk_tunnel};
    use netlink_packet_core::Emitable as _;
    use netlink_packet_wireguard::WireguardTimeSpec;

    fn payload(m: &NetlinkMessage<GenlMessage<WireguardMessage>>) -> &WireguardMessage {
        match &m.payload {
            NetlinkPayload::InnerMessage(g) => &g.payload,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn get_is_a_dump_by_name() {
        let m = get_request("mcw-gold");
        assert_eq!(m.header.flags, NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(
            payload(&m).attributes,
            vec![WireguardAttribute::IfName("mcw-gold".into())]
        );
    }

    #[test]
    fn full_set_carries_key_port_and_peer_with_replace_allowed_ips() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let messages = set_requests("mcw-gold", &DeviceUpdate::full(&spec));
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].header.flags, NLM_F_REQUEST | NLM_F_ACK);
        let attrs = &payload(&messages[0]).attributes;
        assert_eq!(attrs[0], WireguardAttribute::IfName("mcw-gold".into()));
        assert_eq!(
            attrs[1],
            WireguardAttribute::PrivateKey(*spec.private_key.as_bytes())
        );
        assert_eq!(attrs[2], WireguardAttribute::ListenPort(51820));
        let WireguardAttribute::Peers(peers) = &attrs[3] else {
            panic!("no peers in {attrs:?}")
        };
        assert_eq!(
            peers[0].0[1],
            WireguardPeerAttribute::Flags(WireguardPeerFlags::ReplaceAllowedIps)
        );
        // The message encodes to bytes the kernel can read: header + genl header + attributes.
        let mut buf = vec![0u8; messages[0].buffer_len()];
        messages[0].emit(&mut buf);
        assert_eq!(buf.len(), messages[0].header.length as usize);
    }

    #[test]
    fn update_is_in_place_and_removal_is_flagged() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let peer = PeerConfig::from_spec(&spec.peers[0]);
        let update = DeviceUpdate {
            peers: vec![
                PeerChange::Update(peer.clone()),
                PeerChange::Remove(peer.public_key.clone()),
            ],
            ..DeviceUpdate::default()
        };
        let messages = set_requests("mcw-gold", &update);
        let WireguardAttribute::Peers(peers) = &payload(&messages[0]).attributes[1] else {
            panic!()
        };
        assert_eq!(
            peers[0].0[1],
            WireguardPeerAttribute::Flags(
                WireguardPeerFlags::ReplaceAllowedIps | WireguardPeerFlags::UpdateOnly
            )
        );
        assert_eq!(
            peers[1].0[1],
            WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe)
        );
    }

    #[test]
    fn nothing_to_do_sends_nothing_and_many_peers_are_split() {
        assert!(set_requests("mcw-gold", &DeviceUpdate::default()).is_empty());
        let mut spec = mk_tunnel("mcw-gold", 51820);
        spec.peers = (0..40)
            .map(|i| mk_peer(&format!("c{i}"), "192.0.2.9:1"))
            .collect();
        let messages = set_requests("mcw-gold", &DeviceUpdate::full(&spec));
        assert_eq!(messages.len(), 3);
        assert_eq!(payload(&messages[1]).attributes.len(), 2);
    }

    #[test]
    fn dump_parts_merge_a_split_peer() {
        let key = Key::generate().public_key();
        let own = Key::generate().public_key();
        let ip = |a: &str, c: u8| {
            WireguardAllowedIp(vec![
                WireguardAllowedIpAttr::Family(WireguardAddressFamily::Ipv4),
                WireguardAllowedIpAttr::IpAddr(a.parse().unwrap()),
                WireguardAllowedIpAttr::Cidr(c),
            ])
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_100);
        let parts = vec![
            WireguardMessage {
                cmd: WireguardCmd::GetDevice,
                attributes: vec![
                    WireguardAttribute::PublicKey(*own.as_bytes()),
                    WireguardAttribute::ListenPort(51820),
                    WireguardAttribute::Fwmark(0),
                    WireguardAttribute::Peers(vec![WireguardPeer(vec![
                        WireguardPeerAttribute::PublicKey(*key.as_bytes()),
                        WireguardPeerAttribute::Endpoint("192.0.2.2:51820".parse().unwrap()),
                        WireguardPeerAttribute::LastHandshake(WireguardTimeSpec {
                            seconds: 1_000_000_000,
                            nano_seconds: 0,
                        }),
                        WireguardPeerAttribute::RxBytes(5),
                        WireguardPeerAttribute::AllowedIps(vec![ip("10.255.1.2", 32)]),
                    ])]),
                ],
            },
            WireguardMessage {
                cmd: WireguardCmd::GetDevice,
                attributes: vec![WireguardAttribute::Peers(vec![WireguardPeer(vec![
                    WireguardPeerAttribute::PublicKey(*key.as_bytes()),
                    WireguardPeerAttribute::AllowedIps(vec![ip("10.0.0.0", 8)]),
                ])])],
            },
        ];
        let state = parse_dump(&parts, now);
        assert_eq!(state.public_key, Some(own));
        assert_eq!(state.peers.len(), 1);
        let p = &state.peers[0];
        assert_eq!(p.allowed_ips.len(), 2);
        assert_eq!(p.rx_bytes, 5);
        assert_eq!(p.last_handshake_age, Some(Duration::from_secs(100)));
    }
}
