//! Arbitrary bytes through the request path the DNS server runs on every
//! datagram and TCP message (`mcwan_dns::answer`), over both transports.
//!
//! Besides "never panics", every response must parse as a DNS response with
//! the request's ID, and a UDP response must fit the largest UDP payload.

#![no_main]

use std::sync::OnceLock;

use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;
use mcwan_dns::{
    answer, HeadlessEndpoint, PortProtocol, PortRecord, ServiceRecord, ServiceRecordKind,
    Transport, Zone, ZoneConfig, MAX_UDP_PAYLOAD,
};

fn port(name: &str, protocol: PortProtocol, port: u16) -> PortRecord {
    PortRecord {
        name: Some(name.into()),
        protocol,
        port,
    }
}

fn zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| {
        let endpoints = (0..60u8)
            .map(|i| HeadlessEndpoint {
                cluster_id: if i % 2 == 0 { "east" } else { "west" }.into(),
                hostname: format!("pod-{i}"),
                ips: vec![
                    [10, 9, 0, i].into(),
                    format!("fd00::{i}").parse().expect("IPv6"),
                ],
            })
            .collect();
        let services = [
            ServiceRecord {
                namespace: "shop".into(),
                name: "web".into(),
                kind: ServiceRecordKind::ClusterSetIp {
                    ips: vec![[10, 0, 0, 10].into(), "fd00::10".parse().expect("IPv6")],
                },
                ports: vec![
                    port("http", PortProtocol::Tcp, 80),
                    port("dns", PortProtocol::Udp, 53),
                ],
            },
            ServiceRecord {
                namespace: "db".into(),
                name: "pg".into(),
                kind: ServiceRecordKind::Headless { endpoints },
                ports: vec![port("sql", PortProtocol::Tcp, 5432)],
            },
        ];
        let config = ZoneConfig {
            ns_addresses: vec![[192, 0, 2, 53].into()],
            ..ZoneConfig::default()
        };
        Zone::build(&config, &services)
            .expect("fuzz zone builds")
            .zone
    })
}

fuzz_target!(|request: &[u8]| {
    for transport in [Transport::Udp, Transport::Tcp] {
        let Some(response) = answer(zone(), request, transport) else {
            continue;
        };
        let message = Message::from_vec(&response).expect("every response parses");
        assert_eq!(message.metadata.message_type, MessageType::Response);
        assert_eq!(
            response[..2],
            request[..2],
            "the response carries the request ID"
        );
        if transport == Transport::Udp {
            assert!(
                response.len() <= usize::from(MAX_UDP_PAYLOAD),
                "{} octets",
                response.len()
            );
        }
    }
});
