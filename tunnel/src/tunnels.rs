//! [`Tunnels`]: makes mcwan's WireGuard interfaces exactly the given [`TunnelSpec`]s, as a diff.
//!
//! Per spec: create the interface if missing (kernel link or boringtun TUN), set MTU, ifalias
//! (the ownership mark) and up, make the inner address the only address, then read the device
//! and send only the [`DeviceUpdate`] that differs. Interfaces with mcwan's alias that no spec
//! names are removed; interfaces without it are never touched.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::backend::{Backend, Engine};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::link::{Link, Links};
use crate::netlink::Rtnl;
use crate::owner;
use crate::spec::{validate_tunnels, TunnelSpec};
use crate::status::{PeerStatus, TunnelStatus};
use crate::wg::{diff, DeviceUpdate, PeerChange};

/// What one apply did. Tunnels that failed are listed with their error; the others were
/// still applied.
#[derive(Debug, Default)]
pub struct TunnelReport {
    pub created: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<TunnelChange>,
    pub failed: Vec<(String, Error)>,
}

impl TunnelReport {
    /// Whether nothing was done and nothing failed.
    pub fn is_noop(&self) -> bool {
        self.created.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.failed.is_empty()
    }
}

/// The changes made to one existing or new interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelChange {
    pub ifname: String,
    /// MTU, alias or up state.
    pub link: bool,
    pub addresses: bool,
    pub private_key: bool,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    pub peers_added: Vec<String>,
    pub peers_updated: Vec<String>,
    pub peers_removed: Vec<String>,
}

impl TunnelChange {
    fn is_empty(&self) -> bool {
        *self
            == TunnelChange {
                ifname: self.ifname.clone(),
                ..TunnelChange::default()
            }
    }
}

/// What we last applied to one interface: for naming peers and for endpoint roaming.
#[derive(Debug, Default)]
struct Applied {
    class: String,
    names: BTreeMap<Key, String>,
    endpoints: BTreeMap<Key, SocketAddr>,
}

/// mcwan's WireGuard tunnels in the network namespace of the thread that created it.
#[derive(Debug)]
pub struct Tunnels {
    links: Links,
    engine: Engine,
    applied: BTreeMap<String, Applied>,
}

impl Tunnels {
    /// Picks the engine (see [`Backend`]) and connects to the kernel.
    pub async fn new(backend: Backend) -> Result<Self> {
        let links = Links::new(Rtnl::connect()?);
        let engine = Engine::new(backend, &links).await?;
        tracing::info!(backend = ?engine.backend(), "tunnels ready");
        Ok(Tunnels {
            links,
            engine,
            applied: BTreeMap::new(),
        })
    }

    /// The engine in use: [`Backend::Kernel`] or [`Backend::Userspace`].
    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// The MTU of the interface the kernel would use to reach `destination` (for
    /// [`crate::mtu::for_underlay`]).
    pub async fn underlay_mtu(&self, destination: IpAddr) -> Result<Option<u32>> {
        let answers = self
            .links
            .rtnl()
            .execute(
                &format!("route to {destination}"),
                crate::route::builder::get(destination),
                0,
            )
            .await?;
        let oif = answers.iter().find_map(|m| match m {
            netlink_packet_route::RouteNetlinkMessage::NewRoute(r) => {
                crate::route::builder::read(r).and_then(|r| r.oif)
            }
            _ => None,
        });
        let Some(oif) = oif else { return Ok(None) };
        Ok(self
            .links
            .list()
            .await?
            .into_iter()
            .find(|l| l.index == oif)
            .map(|l| l.mtu))
    }

    /// Makes mcwan's tunnels exactly `specs`.
    pub async fn apply(&mut self, specs: &[TunnelSpec]) -> Result<TunnelReport> {
        validate_tunnels(specs)?;
        let mut report = TunnelReport::default();
        let links = self.links.list().await?;
        for link in links.iter().filter(|l| is_ours(l)) {
            if !specs.iter().any(|s| s.ifname == link.name) {
                match self.engine.remove(&self.links, link).await {
                    Ok(()) => {
                        tracing::info!(ifname = %link.name, "tunnel removed");
                        self.applied.remove(&link.name);
                        report.removed.push(link.name.clone());
                    }
                    Err(e) => report.failed.push((link.name.clone(), e)),
                }
            }
        }
        for spec in specs {
            let existing = links.iter().find(|l| l.name == spec.ifname);
            match self.apply_one(spec, existing).await {
                Ok((created, change)) => {
                    if created {
                        report.created.push(spec.ifname.clone());
                    } else if !change.is_empty() {
                        report.changed.push(change);
                    }
                }
                Err(e) => {
                    tracing::warn!(ifname = %spec.ifname, class = %spec.class, error = %e, "tunnel not applied");
                    report.failed.push((spec.ifname.clone(), e));
                }
            }
        }
        Ok(report)
    }

    async fn apply_one(
        &mut self,
        spec: &TunnelSpec,
        existing: Option<&Link>,
    ) -> Result<(bool, TunnelChange)> {
        let ifname = spec.ifname.as_str();
        let mut created = false;
        match existing {
            Some(link) if !is_ours(link) && !self.engine.holds_unaliased(link) => {
                return Err(Error::NotOwned {
                    ifname: ifname.to_owned(),
                });
            }
            Some(link) if !self.engine.drives(link) => {
                // Ours but of the other engine (backend switched) or a leftover: re-create.
                self.engine.remove(&self.links, link).await?;
                self.engine.create(ifname).await?;
                created = true;
            }
            Some(_) => {}
            None => {
                self.engine.create(ifname).await?;
                created = true;
            }
        }
        let link = self
            .links
            .by_name(ifname)
            .await?
            .ok_or_else(|| Error::Userspace {
                ifname: ifname.to_owned(),
                message: "the interface vanished right after creation".into(),
            })?;
        let mut change = TunnelChange {
            ifname: ifname.to_owned(),
            ..TunnelChange::default()
        };
        let alias = owner::alias(&spec.class);
        let tx_queue_len = self.engine.tx_queue_len();
        if link.mtu != u32::from(spec.mtu)
            || link.alias.as_deref() != Some(&alias)
            || !link.up
            || tx_queue_len.is_some_and(|len| link.tx_queue_len != len)
        {
            self.links
                .configure(&link, u32::from(spec.mtu), tx_queue_len, &alias)
                .await?;
            change.link = true;
        }
        change.addresses = self
            .links
            .set_addresses(&link, &[IpNet::V4(spec.address)])
            .await?;

        let actual = self.engine.read(ifname).await?;
        let applied = self.applied.entry(ifname.to_owned()).or_default();
        let update = diff(&actual, spec, &applied.endpoints);
        let names: BTreeMap<Key, String> = spec
            .peers
            .iter()
            .map(|p| (p.public_key.clone(), p.name.clone()))
            .collect();
        describe(&update, &names, &applied.names, &mut change);
        if !update.is_empty() {
            self.engine.write(ifname, &update).await?;
        }
        applied.class.clone_from(&spec.class);
        applied.names = names;
        applied.endpoints = spec
            .peers
            .iter()
            .map(|p| (p.public_key.clone(), p.endpoint))
            .collect();
        if created {
            tracing::info!(ifname, class = %spec.class, peers = spec.peers.len(), "tunnel created");
        } else if !change.is_empty() {
            tracing::info!(ifname, class = %spec.class, ?change, "tunnel updated");
        }
        Ok((created, change))
    }

    /// The state of every mcwan tunnel interface.
    pub async fn status(&self) -> Result<Vec<TunnelStatus>> {
        let mut out = Vec::new();
        for link in self.links.list().await?.into_iter().filter(is_ours) {
            let class = link
                .alias
                .as_deref()
                .and_then(owner::class_of)
                .unwrap_or_default()
                .to_owned();
            let state = self.engine.read(&link.name).await?;
            let names = self.applied.get(&link.name).map(|a| &a.names);
            let peers = state
                .peers
                .into_iter()
                .map(|p| PeerStatus {
                    name: names
                        .and_then(|n| n.get(&p.public_key).cloned())
                        .unwrap_or_else(|| p.public_key.to_base64()),
                    public_key: p.public_key,
                    endpoint: p.endpoint,
                    last_handshake_age: p.last_handshake_age,
                    rx_bytes: p.rx_bytes,
                    tx_bytes: p.tx_bytes,
                })
                .collect();
            out.push(TunnelStatus {
                ifname: link.name,
                class,
                listen_port: state.listen_port,
                public_key: state.public_key,
                peers,
            });
        }
        Ok(out)
    }
}

fn is_ours(link: &Link) -> bool {
    link.alias.as_deref().and_then(owner::class_of).is_some()
}

impl Engine {
    /// A device this process created whose alias is not set yet (a crash between creation
    /// and configuration).
    fn holds_unaliased(&self, link: &Link) -> bool {
        matches!(self, Engine::Userspace(u) if u.holds(&link.name))
    }
}

fn describe(
    update: &DeviceUpdate,
    names: &BTreeMap<Key, String>,
    old_names: &BTreeMap<Key, String>,
    change: &mut TunnelChange,
) {
    let name = |k: &Key| {
        names
            .get(k)
            .or_else(|| old_names.get(k))
            .cloned()
            .unwrap_or_else(|| k.to_base64())
    };
    change.private_key = update.private_key.is_some();
    change.listen_port = update.listen_port;
    change.fwmark = update.fwmark;
    for peer in &update.peers {
        match peer {
            PeerChange::Add(p) => change.peers_added.push(name(&p.public_key)),
            PeerChange::Update(p) => change.peers_updated.push(name(&p.public_key)),
            PeerChange::Remove(k) => change.peers_removed.push(name(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::mk_tunnel;
    use crate::wg::PeerConfig;

    #[test]
    fn describe_names_peers_from_new_then_old_specs() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let gone = Key::generate().public_key();
        let update = DeviceUpdate {
            private_key: Some(spec.private_key.clone()),
            peers: vec![
                PeerChange::Add(PeerConfig::from_spec(&spec.peers[0])),
                PeerChange::Remove(gone.clone()),
            ],
            ..DeviceUpdate::default()
        };
        let names = BTreeMap::from([(spec.peers[0].public_key.clone(), "east".to_owned())]);
        let old = BTreeMap::from([(gone, "west".to_owned())]);
        let mut change = TunnelChange::default();
        describe(&update, &names, &old, &mut change);
        assert!(change.private_key);
        assert_eq!(change.peers_added, vec!["east"]);
        assert_eq!(change.peers_removed, vec!["west"]);
    }

    #[test]
    fn only_aliased_links_are_ours() {
        let mut link = Link {
            index: 1,
            name: "mcw-gold".into(),
            alias: None,
            mtu: 1420,
            tx_queue_len: 1000,
            up: true,
            kind: None,
        };
        assert!(!is_ours(&link));
        link.alias = Some(owner::alias("gold"));
        assert!(is_ours(&link));
    }
}
