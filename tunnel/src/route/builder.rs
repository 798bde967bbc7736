//! Pure route messages: a [`RouteSpec`] to `RTM_NEWROUTE`/`RTM_DELROUTE`, and a kernel route
//! back to an [`InstalledRoute`].

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::owner::RTPROT_MCWAN;

/// The header's table value when the real table (> 255) is in `RTA_TABLE`.
const RT_TABLE_COMPAT: u8 = 252;
use crate::spec::RouteSpec;

/// A route as installed, reduced to what mcwan compares.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstalledRoute {
    pub table: u32,
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub metric: u32,
    pub protocol: u8,
}

impl InstalledRoute {
    /// What the kernel keys a route on (within one family): table, destination and metric.
    pub fn key(&self) -> (u32, IpNet, u32) {
        (self.table, self.destination, self.metric)
    }

    /// Whether mcwan installed it.
    pub fn is_ours(&self) -> bool {
        self.protocol == RTPROT_MCWAN
    }
}

/// The route `spec` resolves to, with its device's index.
pub fn resolve(spec: &RouteSpec, oif: Option<u32>) -> InstalledRoute {
    InstalledRoute {
        table: spec.table,
        destination: spec.destination.trunc(),
        gateway: spec.gateway,
        oif,
        metric: spec.metric.unwrap_or(0),
        protocol: RTPROT_MCWAN,
    }
}

fn message(route: &InstalledRoute) -> RouteMessage {
    let mut m = RouteMessage::default();
    let family = if route.destination.addr().is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.address_family = family;
    m.header.destination_prefix_length = route.destination.prefix_len();
    m.header.table = u8::try_from(route.table).unwrap_or(RT_TABLE_COMPAT);
    m.header.protocol = RouteProtocol::from(route.protocol);
    m.header.scope = if route.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    m.header.kind = RouteType::Unicast;
    if route.destination.prefix_len() > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                route.destination.addr(),
            )));
    }
    if let Some(gw) = route.gateway {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(oif) = route.oif {
        m.attributes.push(RouteAttribute::Oif(oif));
    }
    if route.metric > 0 {
        m.attributes.push(RouteAttribute::Priority(route.metric));
    }
    m.attributes.push(RouteAttribute::Table(route.table));
    m
}

/// `ip route add` (flags decide add vs replace).
pub fn add(route: &InstalledRoute) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewRoute(message(route))
}

/// `ip route del` of exactly this route.
pub fn del(route: &InstalledRoute) -> RouteNetlinkMessage {
    let mut m = message(route);
    m.header.scope = RouteScope::NoWhere;
    RouteNetlinkMessage::DelRoute(m)
}

/// The dump of one family's routes (all tables).
pub fn dump(family: AddressFamily) -> RouteNetlinkMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family;
    RouteNetlinkMessage::GetRoute(m)
}

/// `ip route get DESTINATION`.
pub fn get(destination: IpAddr) -> RouteNetlinkMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = if destination.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.destination_prefix_length = if destination.is_ipv4() { 32 } else { 128 };
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(destination)));
    RouteNetlinkMessage::GetRoute(m)
}

/// Reads a kernel route; multipath and non-IP routes are skipped.
pub fn read(m: &RouteMessage) -> Option<InstalledRoute> {
    let mut table = u32::from(m.header.table);
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    let mut metric = 0;
    for attr in &m.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dst = ip_of(a),
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = *p,
            _ => {}
        }
    }
    let unspecified: IpAddr = match m.header.address_family {
        AddressFamily::Inet => std::net::Ipv4Addr::UNSPECIFIED.into(),
        AddressFamily::Inet6 => std::net::Ipv6Addr::UNSPECIFIED.into(),
        _ => return None,
    };
    let destination = IpNet::new(
        dst.unwrap_or(unspecified),
        m.header.destination_prefix_length,
    )
    .ok()?;
    Some(InstalledRoute {
        table,
        destination,
        gateway,
        oif,
        metric,
        protocol: u8::from(m.header.protocol),
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dst: &str, gw: Option<&str>, table: u32) -> RouteSpec {
        RouteSpec {
            destination: dst.parse().unwrap(),
            gateway: gw.map(|g| g.parse().unwrap()),
            device: None,
            table,
            metric: None,
        }
    }

    #[test]
    fn default_route_in_a_big_table_is_marked_ours() {
        let route = resolve(&spec("0.0.0.0/0", Some("192.0.2.1"), 1001), None);
        let RouteNetlinkMessage::NewRoute(m) = add(&route) else {
            panic!()
        };
        assert_eq!(m.header.protocol, RouteProtocol::Other(RTPROT_MCWAN));
        assert_eq!(m.header.table, RT_TABLE_COMPAT);
        assert_eq!(m.header.destination_prefix_length, 0);
        assert!(m.attributes.contains(&RouteAttribute::Table(1001)));
        assert!(!m
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
        assert_eq!(read(&m), Some(route));
    }

    #[test]
    fn device_route_has_link_scope_and_round_trips() {
        let mut s = spec("10.9.0.0/16", None, 254);
        s.metric = Some(50);
        let route = resolve(&s, Some(12));
        let RouteNetlinkMessage::NewRoute(m) = add(&route) else {
            panic!()
        };
        assert_eq!(m.header.scope, RouteScope::Link);
        assert_eq!(m.header.table, 254);
        let back = read(&m).unwrap();
        assert_eq!(back, route);
        assert!(back.is_ours());
        assert_eq!(back.key(), (254, "10.9.0.0/16".parse().unwrap(), 50));
    }

    #[test]
    fn destination_is_truncated_to_its_network() {
        let route = resolve(&spec("10.9.3.4/16", None, 254), Some(1));
        assert_eq!(route.destination, "10.9.0.0/16".parse::<IpNet>().unwrap());
    }
}
