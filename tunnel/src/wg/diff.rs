//! The change that brings a device from what it is to what the spec says, as a value.
//!
//! Peers are identified by public key, so a peer's key rotation is a removal of the old key and
//! an addition of the new one; everything else (endpoint, allowed IPs, keepalive) is an update
//! in place. Our own key rotation only sets the private key: peers stay.
//!
//! Endpoints roam (WireGuard follows the address a peer's authenticated packets come from), so
//! an endpoint that differs from the spec is only re-set when the spec itself changed since we
//! last applied it, or when we do not know what we last applied (a fresh start).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ipnet::IpNet;

use super::DeviceState;
use crate::key::Key;
use crate::spec::{PeerSpec, TunnelSpec};

/// A peer's full configuration, as sent for an addition or an update.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub public_key: Key,
    pub endpoint: SocketAddr,
    /// Sorted.
    pub allowed_ips: Vec<IpNet>,
    /// 0 is off.
    pub keepalive: u16,
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("public_key", &crate::key::ShowPublic(&self.public_key))
            .field("endpoint", &self.endpoint)
            .field("allowed_ips", &self.allowed_ips)
            .field("keepalive", &self.keepalive)
            .finish()
    }
}

impl PeerConfig {
    pub fn from_spec(peer: &PeerSpec) -> Self {
        let mut allowed_ips: Vec<IpNet> = peer.allowed_ips.iter().map(IpNet::trunc).collect();
        allowed_ips.sort();
        allowed_ips.dedup();
        PeerConfig {
            public_key: peer.public_key.clone(),
            endpoint: peer.endpoint,
            allowed_ips,
            keepalive: peer.keepalive.unwrap_or(0),
        }
    }
}

/// One peer change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerChange {
    Add(PeerConfig),
    /// Update in place: endpoint, allowed IPs (replaced) and keepalive.
    Update(PeerConfig),
    Remove(Key),
}

/// Device-level and peer changes; empty when the device already matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceUpdate {
    /// Set when our key differs (a rotation). Redacted by `Key`'s `Debug`.
    pub private_key: Option<Key>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    pub peers: Vec<PeerChange>,
}

impl DeviceUpdate {
    pub fn is_empty(&self) -> bool {
        self.private_key.is_none()
            && self.listen_port.is_none()
            && self.fwmark.is_none()
            && self.peers.is_empty()
    }

    /// A full configuration, as for a new device.
    pub fn full(spec: &TunnelSpec) -> Self {
        diff(&DeviceState::default(), spec, &BTreeMap::new())
    }
}

/// The update from `actual` to `spec`. `applied_endpoints` holds the endpoint we last set for
/// each peer key (see the module doc).
pub fn diff(
    actual: &DeviceState,
    spec: &TunnelSpec,
    applied_endpoints: &BTreeMap<Key, SocketAddr>,
) -> DeviceUpdate {
    let mut update = DeviceUpdate::default();
    if actual.public_key.as_ref() != Some(&spec.private_key.public_key()) {
        update.private_key = Some(spec.private_key.clone());
    }
    if actual.listen_port != spec.listen_port {
        update.listen_port = Some(spec.listen_port);
    }
    let fwmark = spec.fwmark.unwrap_or(0);
    if actual.fwmark != fwmark {
        update.fwmark = Some(fwmark);
    }
    let wanted: BTreeMap<&Key, PeerConfig> = spec
        .peers
        .iter()
        .map(|p| (&p.public_key, PeerConfig::from_spec(p)))
        .collect();
    for peer in &actual.peers {
        if !wanted.contains_key(&peer.public_key) {
            update
                .peers
                .push(PeerChange::Remove(peer.public_key.clone()));
        }
    }
    for (key, want) in wanted {
        match actual.peers.iter().find(|p| &p.public_key == key) {
            None => update.peers.push(PeerChange::Add(want)),
            Some(have) => {
                let mut allowed = have.allowed_ips.clone();
                allowed.sort();
                let endpoint_changed = have.endpoint != Some(want.endpoint)
                    && applied_endpoints.get(key) != Some(&want.endpoint);
                if endpoint_changed
                    || allowed != want.allowed_ips
                    || have.keepalive != want.keepalive
                {
                    update.peers.push(PeerChange::Update(want));
                }
            }
        }
    }
    update
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::{mk_peer, mk_tunnel};
    use crate::wg::PeerState;

    fn state_of(spec: &TunnelSpec) -> DeviceState {
        DeviceState {
            public_key: Some(spec.private_key.public_key()),
            listen_port: spec.listen_port,
            fwmark: spec.fwmark.unwrap_or(0),
            peers: spec
                .peers
                .iter()
                .map(|p| {
                    let c = PeerConfig::from_spec(p);
                    PeerState {
                        public_key: c.public_key,
                        endpoint: Some(c.endpoint),
                        allowed_ips: c.allowed_ips,
                        keepalive: c.keepalive,
                        last_handshake_age: None,
                        rx_bytes: 0,
                        tx_bytes: 0,
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn a_new_device_gets_everything() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let update = DeviceUpdate::full(&spec);
        assert_eq!(update.private_key, Some(spec.private_key.clone()));
        assert_eq!(update.listen_port, Some(51820));
        assert_eq!(update.fwmark, None);
        assert!(matches!(&update.peers[..], [PeerChange::Add(p)] if p.keepalive == 25));
    }

    #[test]
    fn a_matching_device_needs_nothing() {
        let spec = mk_tunnel("mcw-gold", 51820);
        assert!(diff(&state_of(&spec), &spec, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn endpoint_change_is_an_update_in_place() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let state = state_of(&spec);
        let mut moved = spec.clone();
        moved.peers[0].endpoint = "198.51.100.7:51820".parse().unwrap();
        let update = diff(&state, &moved, &BTreeMap::new());
        assert!(update.private_key.is_none() && update.listen_port.is_none());
        assert!(
            matches!(&update.peers[..], [PeerChange::Update(p)] if p.endpoint == moved.peers[0].endpoint)
        );
    }

    #[test]
    fn a_roamed_endpoint_is_left_alone_while_the_spec_is_unchanged() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let mut state = state_of(&spec);
        state.peers[0].endpoint = Some("203.0.113.9:40000".parse().unwrap());
        let applied = BTreeMap::from([(spec.peers[0].public_key.clone(), spec.peers[0].endpoint)]);
        assert!(diff(&state, &spec, &applied).is_empty());
        // Without memory of what we applied, the spec wins.
        assert_eq!(diff(&state, &spec, &BTreeMap::new()).peers.len(), 1);
    }

    #[test]
    fn our_key_rotation_sets_only_the_private_key() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let state = state_of(&spec);
        let mut rotated = spec.clone();
        rotated.private_key = crate::Key::generate();
        let update = diff(&state, &rotated, &BTreeMap::new());
        assert_eq!(update.private_key, Some(rotated.private_key.clone()));
        assert!(update.peers.is_empty());
    }

    #[test]
    fn peer_key_rotation_removes_the_old_key_and_adds_the_new() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let state = state_of(&spec);
        let mut rotated = spec.clone();
        rotated.peers[0].public_key = crate::Key::generate().public_key();
        let update = diff(&state, &rotated, &BTreeMap::new());
        assert_eq!(
            update.peers,
            vec![
                PeerChange::Remove(spec.peers[0].public_key.clone()),
                PeerChange::Add(PeerConfig::from_spec(&rotated.peers[0])),
            ]
        );
    }

    #[test]
    fn allowed_ips_compare_as_sets_of_networks() {
        let mut spec = mk_tunnel("mcw-gold", 51820);
        spec.peers[0].allowed_ips = vec![
            "10.9.0.0/16".parse().unwrap(),
            "10.255.1.2/32".parse().unwrap(),
        ];
        let mut state = state_of(&spec);
        state.peers[0].allowed_ips.reverse();
        assert!(diff(&state, &spec, &BTreeMap::new()).is_empty());
        let mut wider = spec.clone();
        wider.peers.push(mk_peer("west", "192.0.2.3:51820"));
        wider.peers[0].allowed_ips.pop();
        let update = diff(&state, &wider, &BTreeMap::new());
        assert_eq!(update.peers.len(), 2);
    }

    #[test]
    fn fwmark_and_port_changes_are_device_level() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let state = state_of(&spec);
        let mut changed = spec.clone();
        changed.fwmark = Some(0x51);
        changed.listen_port = 51999;
        let update = diff(&state, &changed, &BTreeMap::new());
        assert_eq!(update.fwmark, Some(0x51));
        assert_eq!(update.listen_port, Some(51999));
    }
}
