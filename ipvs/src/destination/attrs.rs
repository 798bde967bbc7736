//! Converts destinations to and from their nested attribute lists.

use std::net::SocketAddr;

use super::{ConnectionCounts, Destination, ForwardMethod, TunnelEncap};
use crate::address_family::{addr_bytes, addr_from_bytes};
use crate::constants::*;
use crate::message::DestAttr;
use crate::{AddressFamily, Error, Stats};

/// The identifying attributes of a destination: address, port and the
/// address's own family (so a destination may differ from its service).
pub(crate) fn key_attrs(dest: SocketAddr) -> Vec<DestAttr> {
    vec![
        DestAttr::Addr(addr_bytes(&dest.ip())),
        DestAttr::Port(dest.port()),
        DestAttr::AddrFamily(AddressFamily::of(&dest.ip()).to_af()),
    ]
}

/// The full description the kernel requires to add or edit a destination:
/// the key, forwarding method, weight and thresholds, and the tunnel
/// type, port and flags for tunnelled destinations.
pub(crate) fn destination_attrs(dest: &Destination) -> Vec<DestAttr> {
    let mut attrs = key_attrs(dest.key());
    attrs.push(DestAttr::FwdMethod(dest.forward.conn_flags()));
    attrs.push(DestAttr::Weight(dest.weight));
    attrs.push(DestAttr::UpperThreshold(dest.upper_threshold));
    attrs.push(DestAttr::LowerThreshold(dest.lower_threshold));
    if let ForwardMethod::Tunnel(encap) = dest.forward {
        attrs.push(DestAttr::TunType(encap.tunnel_type()));
        attrs.push(DestAttr::TunPort(encap.port()));
        attrs.push(DestAttr::TunFlags(encap.encap_flags()));
    }
    attrs
}

/// Reads a destination dump entry. `service_family` stands in for
/// `IPVS_DEST_ATTR_ADDR_FAMILY` on kernels that do not send it.
pub(crate) fn destination_from_attrs(
    attrs: &[DestAttr],
    service_family: AddressFamily,
) -> Result<Destination, Error> {
    let mut addr = None;
    let mut port = None;
    let mut family = service_family;
    let mut fwd = IP_VS_CONN_F_MASQ;
    let (mut tun_type, mut tun_port, mut tun_flags) = (IP_VS_CONN_F_TUNNEL_TYPE_IPIP, 0, 0);
    let mut counts = None::<ConnectionCounts>;
    let mut stats32 = None;
    let mut stats64 = None;
    let mut dest = Destination::new(std::net::Ipv4Addr::UNSPECIFIED, 0);
    for attr in attrs {
        match attr {
            DestAttr::Addr(v) => addr = Some(v.as_slice()),
            DestAttr::Port(v) => port = Some(*v),
            DestAttr::AddrFamily(af) => {
                family = AddressFamily::from_af(*af).ok_or_else(|| {
                    Error::decode(format!("destination with unknown address family {af}"))
                })?
            }
            DestAttr::FwdMethod(v) => fwd = *v & IP_VS_CONN_F_FWD_MASK,
            DestAttr::Weight(v) => dest.weight = *v,
            DestAttr::UpperThreshold(v) => dest.upper_threshold = *v,
            DestAttr::LowerThreshold(v) => dest.lower_threshold = *v,
            DestAttr::ActiveConns(v) => counts.get_or_insert_with(Default::default).active = *v,
            DestAttr::InactiveConns(v) => counts.get_or_insert_with(Default::default).inactive = *v,
            DestAttr::PersistentConns(v) => {
                counts.get_or_insert_with(Default::default).persistent = *v
            }
            DestAttr::Stats(v) => stats32 = Some(v.as_slice()),
            DestAttr::Stats64(v) => stats64 = Some(v.as_slice()),
            DestAttr::TunType(v) => tun_type = *v,
            DestAttr::TunPort(v) => tun_port = *v,
            DestAttr::TunFlags(v) => tun_flags = *v,
            _ => {}
        }
    }
    let (Some(addr), Some(port)) = (addr, port) else {
        return Err(Error::decode("destination without address or port"));
    };
    dest.addr = addr_from_bytes(family, addr).ok_or_else(|| {
        Error::decode(format!(
            "destination address of {} bytes for {family}",
            addr.len()
        ))
    })?;
    dest.port = port;
    dest.forward = match fwd {
        IP_VS_CONN_F_MASQ => ForwardMethod::Masquerade,
        IP_VS_CONN_F_LOCALNODE => ForwardMethod::Local,
        IP_VS_CONN_F_TUNNEL => ForwardMethod::Tunnel(
            TunnelEncap::from_kernel(tun_type, tun_port, tun_flags).ok_or_else(|| {
                Error::decode(format!(
                    "destination {addr:?} with unknown tunnel type {tun_type}"
                ))
            })?,
        ),
        IP_VS_CONN_F_DROUTE => ForwardMethod::DirectRoute,
        IP_VS_CONN_F_BYPASS => ForwardMethod::Bypass,
        other => {
            return Err(Error::decode(format!(
                "destination {} with unknown forwarding method {other}",
                dest.key()
            )))
        }
    };
    dest.connections = counts;
    dest.stats = Stats::pick(stats32, stats64);
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::TunnelChecksum;
    use crate::message::StatsAttr;
    use netlink_packet_core::Emitable;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn emit(attrs: &[DestAttr]) -> Vec<u8> {
        let mut buf = vec![0u8; attrs.buffer_len()];
        attrs.emit(&mut buf);
        buf
    }

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn masquerade_destination_bytes() {
        let dest = Destination::new(Ipv4Addr::new(10, 1, 1, 2), 8080)
            .with_weight(3)
            .with_thresholds(100, 10);
        let expected = [
            nla(IPVS_DEST_ATTR_ADDR, &[10, 1, 1, 2]),
            nla(IPVS_DEST_ATTR_PORT, &8080u16.to_be_bytes()),
            nla(IPVS_DEST_ATTR_ADDR_FAMILY, &AF_INET.to_ne_bytes()),
            nla(IPVS_DEST_ATTR_FWD_METHOD, &IP_VS_CONN_F_MASQ.to_ne_bytes()),
            nla(IPVS_DEST_ATTR_WEIGHT, &3u32.to_ne_bytes()),
            nla(IPVS_DEST_ATTR_U_THRESH, &100u32.to_ne_bytes()),
            nla(IPVS_DEST_ATTR_L_THRESH, &10u32.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(emit(&destination_attrs(&dest)), expected);
    }

    #[test]
    fn tunnel_destination_carries_type_port_and_flags() {
        let gue = TunnelEncap::Gue {
            port: 6080,
            checksum: TunnelChecksum::Checksum,
        };
        let dest = Destination::new(Ipv4Addr::new(10, 2, 2, 2), 80)
            .with_forward(ForwardMethod::Tunnel(gue));
        let bytes = emit(&destination_attrs(&dest));
        let tail = [
            nla(IPVS_DEST_ATTR_TUN_TYPE, &[IP_VS_CONN_F_TUNNEL_TYPE_GUE]),
            nla(IPVS_DEST_ATTR_TUN_PORT, &6080u16.to_be_bytes()),
            nla(
                IPVS_DEST_ATTR_TUN_FLAGS,
                &IP_VS_TUNNEL_ENCAP_FLAG_CSUM.to_ne_bytes(),
            ),
        ]
        .concat();
        assert!(bytes.ends_with(&tail));
        assert!(destination_attrs(&dest).contains(&DestAttr::FwdMethod(IP_VS_CONN_F_TUNNEL)));
    }

    #[test]
    fn direct_route_sends_no_tunnel_attributes() {
        let dest =
            Destination::new(Ipv4Addr::LOCALHOST, 1).with_forward(ForwardMethod::DirectRoute);
        let attrs = destination_attrs(&dest);
        assert_eq!(attrs.len(), 7);
        assert!(attrs.contains(&DestAttr::FwdMethod(IP_VS_CONN_F_DROUTE)));
    }

    #[test]
    fn key_of_an_ipv4_destination_names_its_own_family() {
        let attrs = key_attrs("10.0.0.9:0".parse().expect("addr"));
        assert_eq!(attrs[2], DestAttr::AddrFamily(AF_INET));
        let attrs = key_attrs("[fd00::9]:80".parse().expect("addr"));
        assert_eq!(
            attrs[0],
            DestAttr::Addr(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9).octets().to_vec())
        );
        assert_eq!(attrs[2], DestAttr::AddrFamily(AF_INET6));
    }

    /// A destination dump entry as `ip_vs_genl_fill_dest` writes it.
    fn kernel_dump_entry(af: u16, addr: Vec<u8>) -> Vec<DestAttr> {
        vec![
            DestAttr::Addr(addr),
            DestAttr::Port(443),
            DestAttr::FwdMethod(IP_VS_CONN_F_TUNNEL),
            DestAttr::Weight(5),
            DestAttr::TunType(IP_VS_CONN_F_TUNNEL_TYPE_GRE),
            DestAttr::TunPort(0),
            DestAttr::TunFlags(IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM),
            DestAttr::UpperThreshold(7),
            DestAttr::LowerThreshold(2),
            DestAttr::ActiveConns(4),
            DestAttr::InactiveConns(5),
            DestAttr::PersistentConns(6),
            DestAttr::AddrFamily(af),
            DestAttr::Stats(vec![StatsAttr::Conns(3)]),
            DestAttr::Stats64(vec![StatsAttr::Conns(3), StatsAttr::OutBytes(1 << 35)]),
        ]
    }

    #[test]
    fn mixed_family_dump_entry_parses_by_its_own_family() {
        let mut union = vec![0u8; 16];
        union[..4].copy_from_slice(&[172, 16, 0, 1]);
        let dest = destination_from_attrs(&kernel_dump_entry(AF_INET, union), AddressFamily::Ipv6)
            .expect("parses");
        assert_eq!(dest.addr, IpAddr::V4(Ipv4Addr::new(172, 16, 0, 1)));
        assert_eq!(dest.port, 443);
        assert_eq!(
            dest.forward,
            ForwardMethod::Tunnel(TunnelEncap::Gre {
                checksum: TunnelChecksum::RemoteChecksum
            })
        );
        assert_eq!(
            (dest.weight, dest.upper_threshold, dest.lower_threshold),
            (5, 7, 2)
        );
        assert_eq!(
            dest.connections,
            Some(ConnectionCounts {
                active: 4,
                inactive: 5,
                persistent: 6
            })
        );
        assert_eq!(dest.stats.map(|s| s.bytes_out), Some(1 << 35));
    }

    #[test]
    fn missing_addr_family_falls_back_to_the_service() {
        let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 7);
        let attrs = vec![
            DestAttr::Addr(v6.octets().to_vec()),
            DestAttr::Port(80),
            DestAttr::FwdMethod(IP_VS_CONN_F_DROUTE),
        ];
        let dest = destination_from_attrs(&attrs, AddressFamily::Ipv6).expect("parses");
        assert_eq!(dest.addr, IpAddr::V6(v6));
        assert_eq!(dest.forward, ForwardMethod::DirectRoute);
    }

    #[test]
    fn built_destination_round_trips() {
        for forward in [
            ForwardMethod::Masquerade,
            ForwardMethod::Local,
            ForwardMethod::IPIP,
            ForwardMethod::Tunnel(TunnelEncap::Gue {
                port: 9,
                checksum: TunnelChecksum::None,
            }),
            ForwardMethod::DirectRoute,
            ForwardMethod::Bypass,
        ] {
            let dest = Destination::new(Ipv6Addr::LOCALHOST, 8443)
                .with_forward(forward)
                .with_weight(0)
                .with_thresholds(9, 1);
            let parsed = destination_from_attrs(&destination_attrs(&dest), AddressFamily::Ipv4);
            assert_eq!(parsed.ok(), Some(dest));
        }
    }

    #[test]
    fn entry_without_port_is_a_decode_error() {
        let attrs = vec![DestAttr::Addr(vec![1, 2, 3, 4])];
        assert!(destination_from_attrs(&attrs, AddressFamily::Ipv4).is_err());
    }
}
