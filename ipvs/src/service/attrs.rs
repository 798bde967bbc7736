//! Converts services to and from their nested attribute lists.

use crate::address_family::{addr_bytes, addr_from_bytes};
use crate::message::ServiceAttr;
use crate::{AddressFamily, Error, Netmask, Protocol, Service, ServiceFlags, ServiceKey, Stats};

/// The identifying attributes of a service: family, then either the
/// firewall mark or protocol, address and port.
pub(crate) fn key_attrs(key: &ServiceKey) -> Vec<ServiceAttr> {
    let mut attrs = Vec::with_capacity(4);
    attrs.push(ServiceAttr::Af(key.family().to_af()));
    match key {
        ServiceKey::Fwmark { mark, .. } => attrs.push(ServiceAttr::Fwmark(*mark)),
        ServiceKey::Tcp(addr) | ServiceKey::Udp(addr) | ServiceKey::Sctp(addr) => {
            let protocol = key.protocol().map_or(0, Protocol::number);
            attrs.push(ServiceAttr::Protocol(protocol));
            attrs.push(ServiceAttr::Addr(addr_bytes(&addr.ip())));
            attrs.push(ServiceAttr::Port(addr.port()));
        }
    }
    attrs
}

/// The full description the kernel requires to add or edit a service:
/// the key, scheduler, flags (with an all-ones mask, so the flags given
/// replace the service's), timeout and netmask, and the persistence
/// engine when there is one.
pub(crate) fn service_attrs(service: &Service) -> Vec<ServiceAttr> {
    let mut attrs = key_attrs(&service.key);
    attrs.push(ServiceAttr::SchedName(service.scheduler.clone()));
    if let Some(pe) = &service.persistence_engine {
        attrs.push(ServiceAttr::PeName(pe.clone()));
    }
    attrs.push(ServiceAttr::Flags {
        flags: service.flags.to_kernel(),
        mask: u32::MAX,
    });
    attrs.push(ServiceAttr::Timeout(service.timeout));
    attrs.push(ServiceAttr::Netmask(
        service.netmask.to_wire(service.key.family()),
    ));
    attrs
}

/// Reads the service key out of a nested service description.
pub(crate) fn key_from_attrs(attrs: &[ServiceAttr]) -> Result<ServiceKey, Error> {
    let mut af = None;
    let mut protocol = None;
    let mut addr = None;
    let mut port = None;
    let mut fwmark = None;
    for attr in attrs {
        match attr {
            ServiceAttr::Af(v) => af = Some(*v),
            ServiceAttr::Protocol(v) => protocol = Some(*v),
            ServiceAttr::Addr(v) => addr = Some(v.as_slice()),
            ServiceAttr::Port(v) => port = Some(*v),
            ServiceAttr::Fwmark(v) => fwmark = Some(*v),
            _ => {}
        }
    }
    let af = af.ok_or_else(|| Error::decode("service without IPVS_SVC_ATTR_AF"))?;
    let family = AddressFamily::from_af(af)
        .ok_or_else(|| Error::decode(format!("service with unknown address family {af}")))?;
    if let Some(mark) = fwmark.filter(|mark| *mark != 0) {
        return Ok(ServiceKey::Fwmark { mark, family });
    }
    let (Some(protocol), Some(addr), Some(port)) = (protocol, addr, port) else {
        return Err(Error::decode(
            "service with neither a firewall mark nor protocol, address and port",
        ));
    };
    let ip = addr_from_bytes(family, addr).ok_or_else(|| {
        Error::decode(format!(
            "service address of {} bytes for {family}",
            addr.len()
        ))
    })?;
    let protocol = Protocol::from_number(protocol).ok_or_else(|| {
        Error::decode(format!(
            "service {ip}:{port} with unknown protocol {protocol}"
        ))
    })?;
    Ok(ServiceKey::new(
        protocol,
        std::net::SocketAddr::new(ip, port),
    ))
}

/// Reads a whole service, counters included, out of a nested service
/// description (a dump entry or a `GET_SERVICE` reply).
pub(crate) fn service_from_attrs(attrs: &[ServiceAttr]) -> Result<Service, Error> {
    let key = key_from_attrs(attrs)?;
    let mut service = Service::new(key, String::new());
    let mut stats32 = None;
    let mut stats64 = None;
    for attr in attrs {
        match attr {
            ServiceAttr::SchedName(name) => service.scheduler = name.clone(),
            ServiceAttr::PeName(name) => service.persistence_engine = Some(name.clone()),
            ServiceAttr::Flags { flags, .. } => service.flags = ServiceFlags::from_kernel(*flags),
            ServiceAttr::Timeout(v) => service.timeout = *v,
            ServiceAttr::Netmask(bytes) => {
                service.netmask = Netmask::from_wire(key.family(), *bytes)
            }
            ServiceAttr::Stats(v) => stats32 = Some(v.as_slice()),
            ServiceAttr::Stats64(v) => stats64 = Some(v.as_slice()),
            _ => {}
        }
    }
    service.stats = Stats::pick(stats32, stats64);
    Ok(service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::message::StatsAttr;
    use netlink_packet_core::Emitable;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn emit(attrs: &[ServiceAttr]) -> Vec<u8> {
        let mut buf = vec![0u8; attrs.buffer_len()];
        attrs.emit(&mut buf);
        buf
    }

    /// One attribute: length, type, value, padding, in native order.
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
    fn tcp_key_encodes_af_protocol_addr_and_big_endian_port() {
        let key = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80);
        let expected = [
            nla(IPVS_SVC_ATTR_AF, &AF_INET.to_ne_bytes()),
            nla(IPVS_SVC_ATTR_PROTOCOL, &IPPROTO_TCP.to_ne_bytes()),
            nla(IPVS_SVC_ATTR_ADDR, &[10, 0, 0, 1]),
            nla(IPVS_SVC_ATTR_PORT, &[0, 80]),
        ]
        .concat();
        assert_eq!(emit(&key_attrs(&key)), expected);
    }

    #[test]
    fn ipv6_udp_key_carries_16_address_bytes() {
        let ip = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x53);
        let attrs = key_attrs(&ServiceKey::udp(ip, 53));
        assert_eq!(attrs[0], ServiceAttr::Af(AF_INET6));
        assert_eq!(attrs[1], ServiceAttr::Protocol(IPPROTO_UDP));
        assert_eq!(attrs[2], ServiceAttr::Addr(ip.octets().to_vec()));
        assert_eq!(
            emit(&attrs[3..]),
            nla(IPVS_SVC_ATTR_PORT, &53u16.to_be_bytes())
        );
    }

    #[test]
    fn sctp_key_uses_ipproto_sctp() {
        let attrs = key_attrs(&ServiceKey::sctp(Ipv4Addr::LOCALHOST, 9));
        assert_eq!(attrs[1], ServiceAttr::Protocol(132));
    }

    #[test]
    fn fwmark_key_is_family_and_mark_only() {
        let key = ServiceKey::fwmark(0x42, AddressFamily::Ipv6);
        let expected = [
            nla(IPVS_SVC_ATTR_AF, &AF_INET6.to_ne_bytes()),
            nla(IPVS_SVC_ATTR_FWMARK, &0x42u32.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(emit(&key_attrs(&key)), expected);
    }

    #[test]
    fn full_service_has_every_field_the_kernel_requires() {
        let svc = Service::new(ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 443), "wrr")
            .with_persistence(300)
            .with_netmask(Netmask::prefix(AddressFamily::Ipv4, 24));
        let bytes = emit(&service_attrs(&svc));
        let tail = [
            nla(IPVS_SVC_ATTR_SCHED_NAME, b"wrr\0"),
            nla(
                IPVS_SVC_ATTR_FLAGS,
                &[IP_VS_SVC_F_PERSISTENT.to_ne_bytes(), u32::MAX.to_ne_bytes()].concat(),
            ),
            nla(IPVS_SVC_ATTR_TIMEOUT, &300u32.to_ne_bytes()),
            nla(IPVS_SVC_ATTR_NETMASK, &[255, 255, 255, 0]),
        ]
        .concat();
        assert!(bytes.ends_with(&tail), "{bytes:02x?}");
        assert_eq!(bytes.len(), emit(&key_attrs(&svc.key)).len() + tail.len());
    }

    #[test]
    fn scheduler_name_is_nul_terminated_and_padded() {
        let attrs = [ServiceAttr::SchedName("mh".into())];
        assert_eq!(emit(&attrs), nla(IPVS_SVC_ATTR_SCHED_NAME, b"mh\0"));
        assert_eq!(emit(&attrs).len(), 8);
    }

    #[test]
    fn persistence_engine_is_sent_only_when_set() {
        let svc = Service::new(ServiceKey::udp(Ipv4Addr::LOCALHOST, 5060), "rr");
        assert!(!service_attrs(&svc)
            .iter()
            .any(|a| matches!(a, ServiceAttr::PeName(_))));
        let svc = svc.with_persistence_engine("sip");
        assert!(service_attrs(&svc).contains(&ServiceAttr::PeName("sip".into())));
    }

    #[test]
    fn hashed_flag_is_never_sent() {
        let mut svc = Service::new(ServiceKey::tcp(Ipv4Addr::LOCALHOST, 1), "rr");
        svc.flags = ServiceFlags::from_bits_retain(IP_VS_SVC_F_HASHED | IP_VS_SVC_F_ONEPACKET);
        assert!(service_attrs(&svc).contains(&ServiceAttr::Flags {
            flags: IP_VS_SVC_F_ONEPACKET,
            mask: u32::MAX
        }));
    }

    /// A service dump entry as `ip_vs_genl_fill_service` writes it.
    fn kernel_dump_entry() -> Vec<ServiceAttr> {
        let mut addr = vec![0u8; 16];
        addr[..4].copy_from_slice(&[192, 168, 1, 10]);
        vec![
            ServiceAttr::Af(AF_INET),
            ServiceAttr::Protocol(IPPROTO_UDP),
            ServiceAttr::Addr(addr),
            ServiceAttr::Port(53),
            ServiceAttr::SchedName("sh".into()),
            ServiceAttr::Flags {
                flags: IP_VS_SVC_F_HASHED | IP_VS_SVC_F_SCHED_SH_PORT | IP_VS_SVC_F_PERSISTENT,
                mask: u32::MAX,
            },
            ServiceAttr::Timeout(600),
            ServiceAttr::Netmask([255, 255, 0, 0]),
            ServiceAttr::Stats(vec![StatsAttr::Conns(1)]),
            ServiceAttr::Stats64(vec![StatsAttr::Conns(1 << 40), StatsAttr::InBytes(9)]),
        ]
    }

    #[test]
    fn dump_entry_parses_into_a_service() {
        let svc = service_from_attrs(&kernel_dump_entry()).expect("parses");
        assert_eq!(svc.key, ServiceKey::udp(Ipv4Addr::new(192, 168, 1, 10), 53));
        assert_eq!(svc.scheduler, "sh");
        assert_eq!(svc.flags, ServiceFlags::SH_PORT | ServiceFlags::PERSISTENT);
        assert_eq!(svc.timeout, 600);
        assert_eq!(svc.netmask, Netmask::prefix(AddressFamily::Ipv4, 16));
        let stats = svc.stats.expect("stats");
        assert_eq!((stats.connections, stats.bytes_in), (1 << 40, 9));
    }

    #[test]
    fn dump_entry_of_a_fwmark_service_parses() {
        let attrs = vec![
            ServiceAttr::Af(AF_INET6),
            ServiceAttr::Fwmark(9),
            ServiceAttr::SchedName("rr".into()),
            ServiceAttr::Flags {
                flags: IP_VS_SVC_F_HASHED,
                mask: u32::MAX,
            },
            ServiceAttr::Timeout(0),
            ServiceAttr::Netmask(128u32.to_ne_bytes()),
        ];
        let svc = service_from_attrs(&attrs).expect("parses");
        assert_eq!(svc.key, ServiceKey::fwmark(9, AddressFamily::Ipv6));
        assert_eq!(svc.netmask, Netmask::ipv6_prefix(128));
        assert!(svc.flags.is_empty());
        assert_eq!(svc.stats, None);
    }

    #[test]
    fn built_service_round_trips() {
        let svc = Service::new(ServiceKey::sctp(Ipv6Addr::LOCALHOST, 3868), "mh")
            .with_flags(ServiceFlags::SCHED1)
            .with_persistence(30)
            .with_netmask(Netmask::ipv6_prefix(64))
            .with_persistence_engine("sip");
        assert_eq!(service_from_attrs(&service_attrs(&svc)).ok(), Some(svc));
    }

    #[test]
    fn malformed_entries_are_decode_errors() {
        assert!(key_from_attrs(&[ServiceAttr::Fwmark(1)]).is_err());
        assert!(key_from_attrs(&[ServiceAttr::Af(AF_INET), ServiceAttr::Port(1)]).is_err());
        assert!(key_from_attrs(&[
            ServiceAttr::Af(AF_INET),
            ServiceAttr::Protocol(50),
            ServiceAttr::Addr(vec![1, 2, 3, 4]),
            ServiceAttr::Port(1),
        ])
        .is_err());
    }
}
