//! Tunnel interfaces as rtnetlink sees them: pure builders for link and address requests, a
//! pure reading of link and address messages, and [`Links`] for the I/O.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::netlink::{errno, Rtnl};

/// What we need to know about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    pub mtu: u32,
    /// The length of the transmit queue (for a TUN device: packets waiting to be read).
    pub tx_queue_len: u32,
    pub up: bool,
    /// `wireguard`, `tun`, ... (None for plain devices).
    pub kind: Option<String>,
}

impl Link {
    /// Reads a link message.
    pub fn from_message(message: &LinkMessage) -> Option<Self> {
        let mut link = Link {
            index: message.header.index,
            name: String::new(),
            alias: None,
            mtu: 0,
            tx_queue_len: 0,
            up: message.header.flags.contains(LinkFlags::Up),
            kind: None,
        };
        for attr in &message.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name.clone_from(n),
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a.clone()),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::TxQueueLen(n) => link.tx_queue_len = *n,
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            link.kind = Some(kind.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        (!link.name.is_empty()).then_some(link)
    }
}

/// `ip link add NAME type wireguard`.
pub fn add_wireguard(name: &str) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewLink(rtnetlink::LinkWireguard::new(name).build())
}

/// Sets MTU, alias, up and, if given, the transmit queue length on an existing link
/// (`ip link set`).
pub fn configure(
    index: u32,
    mtu: u32,
    tx_queue_len: Option<u32>,
    alias: &str,
) -> RouteNetlinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
    message.attributes.push(LinkAttribute::Mtu(mtu));
    if let Some(len) = tx_queue_len {
        message.attributes.push(LinkAttribute::TxQueueLen(len));
    }
    message
        .attributes
        .push(LinkAttribute::IfAlias(alias.to_owned()));
    RouteNetlinkMessage::SetLink(message)
}

/// `ip link del` by index.
pub fn delete(index: u32) -> RouteNetlinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    RouteNetlinkMessage::DelLink(message)
}

/// The dump of every link.
pub fn dump() -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetLink(LinkMessage::default())
}

/// `ip address add ADDR/LEN dev INDEX`.
pub fn add_address(index: u32, net: IpNet) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewAddress(address_message(index, net))
}

/// `ip address del ADDR/LEN dev INDEX`.
pub fn del_address(index: u32, net: IpNet) -> RouteNetlinkMessage {
    RouteNetlinkMessage::DelAddress(address_message(index, net))
}

fn address_message(index: u32, net: IpNet) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.index = index;
    message.header.prefix_len = net.prefix_len();
    message.header.family = family(net.addr());
    message.attributes.push(AddressAttribute::Local(net.addr()));
    message
        .attributes
        .push(AddressAttribute::Address(net.addr()));
    message
}

pub(crate) fn family(addr: IpAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// Reads an address message: (link index, address with prefix).
pub fn address_of(message: &AddressMessage) -> Option<(u32, IpNet)> {
    let addr = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(a) => Some(*a),
        _ => None,
    });
    let addr = addr.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(a) => Some(*a),
            _ => None,
        })
    })?;
    let net = IpNet::new(addr, message.header.prefix_len).ok()?;
    Some((message.header.index, net))
}

/// Link and address I/O.
#[derive(Debug, Clone)]
pub struct Links {
    rtnl: Rtnl,
}

impl Links {
    pub fn new(rtnl: Rtnl) -> Self {
        Links { rtnl }
    }

    pub fn rtnl(&self) -> &Rtnl {
        &self.rtnl
    }

    /// Every link.
    pub async fn list(&self) -> Result<Vec<Link>> {
        let answers = self.rtnl.dump("links", dump()).await?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Link::from_message(l),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, if any.
    pub async fn by_name(&self, name: &str) -> Result<Option<Link>> {
        Ok(self.list().await?.into_iter().find(|l| l.name == name))
    }

    /// Creates a kernel WireGuard link.
    pub async fn add_wireguard(&self, name: &str) -> Result<()> {
        self.rtnl
            .execute(
                &format!("interface {name}"),
                add_wireguard(name),
                NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            )
            .await
            .map(drop)
    }

    /// Sets MTU, alias, up and, if given, the transmit queue length.
    pub async fn configure(
        &self,
        link: &Link,
        mtu: u32,
        tx_queue_len: Option<u32>,
        alias: &str,
    ) -> Result<()> {
        self.rtnl
            .execute(
                &format!("interface {}", link.name),
                configure(link.index, mtu, tx_queue_len, alias),
                NLM_F_ACK,
            )
            .await
            .map(drop)
    }

    /// Deletes a link; a link already gone is fine.
    pub async fn delete(&self, link: &Link) -> Result<()> {
        match self
            .rtnl
            .execute(
                &format!("interface {}", link.name),
                delete(link.index),
                NLM_F_ACK,
            )
            .await
        {
            Err(e) if e.errno() == Some(errno::ENODEV) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The addresses on link `index`.
    pub async fn addresses(&self, index: u32) -> Result<Vec<IpNet>> {
        let answers = self
            .rtnl
            .dump(
                "addresses",
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            )
            .await?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => address_of(a),
                _ => None,
            })
            .filter(|(i, _)| *i == index)
            .map(|(_, net)| net)
            .collect())
    }

    /// Makes `wanted` the only addresses of the link, as a diff. Returns whether anything
    /// changed. IPv6 link-local addresses are left alone.
    pub async fn set_addresses(&self, link: &Link, wanted: &[IpNet]) -> Result<bool> {
        let have = self.addresses(link.index).await?;
        let object = format!("address of {}", link.name);
        let mut changed = false;
        for net in &have {
            let link_local =
                matches!(net, IpNet::V6(v6) if v6.addr().segments()[0] & 0xffc0 == 0xfe80);
            if !wanted.contains(net) && !link_local {
                self.rtnl
                    .execute(&object, del_address(link.index, *net), NLM_F_ACK)
                    .await?;
                changed = true;
            }
        }
        for net in wanted {
            if !have.contains(net) {
                self.rtnl
                    .execute(
                        &object,
                        add_address(link.index, *net),
                        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                    )
                    .await?;
                changed = true;
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::InfoKind;

    #[test]
    fn wireguard_link_has_name_and_kind() {
        let RouteNetlinkMessage::NewLink(m) = add_wireguard("mcw-gold") else {
            panic!()
        };
        assert!(m
            .attributes
            .contains(&LinkAttribute::IfName("mcw-gold".into())));
        assert!(m
            .attributes
            .contains(&LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Wireguard
            )])));
    }

    #[test]
    fn configure_sets_up_mtu_and_alias_by_index() {
        let RouteNetlinkMessage::SetLink(m) = configure(7, 1420, None, "mcwan tunnel class=gold")
        else {
            panic!()
        };
        assert_eq!(m.header.index, 7);
        assert!(m.header.flags.contains(LinkFlags::Up));
        assert!(m.header.change_mask.contains(LinkFlags::Up));
        assert!(m.attributes.contains(&LinkAttribute::Mtu(1420)));
        assert!(m
            .attributes
            .contains(&LinkAttribute::IfAlias("mcwan tunnel class=gold".into())));
        assert!(!m
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::TxQueueLen(_))));
    }

    #[test]
    fn configure_sets_the_transmit_queue_length_when_given() {
        let RouteNetlinkMessage::SetLink(m) = configure(7, 1420, Some(2048), "a") else {
            panic!()
        };
        assert!(m.attributes.contains(&LinkAttribute::TxQueueLen(2048)));
    }

    #[test]
    fn reads_a_link_message() {
        let RouteNetlinkMessage::NewLink(mut m) = add_wireguard("mcw-gold") else {
            panic!()
        };
        m.header.index = 3;
        m.attributes.push(LinkAttribute::IfAlias("x".into()));
        m.attributes.push(LinkAttribute::Mtu(1420));
        m.attributes.push(LinkAttribute::TxQueueLen(500));
        let link = Link::from_message(&m).unwrap();
        assert_eq!(
            link,
            Link {
                index: 3,
                name: "mcw-gold".into(),
                alias: Some("x".into()),
                mtu: 1420,
                tx_queue_len: 500,
                up: false,
                kind: Some("wireguard".into()),
            }
        );
    }

    #[test]
    fn address_message_round_trips() {
        let net: IpNet = "10.255.1.1/24".parse().unwrap();
        let RouteNetlinkMessage::NewAddress(m) = add_address(4, net) else {
            panic!()
        };
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(address_of(&m), Some((4, net)));
    }
}
