//! Swapping zones under load: a query sees the old zone or the new one,
//! never a mix, and a stored zone is answered at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use mcwan_dns::Zone;
use tokio::net::UdpSocket;

use crate::support::*;

const PROBE: &str = "probe.swap.svc.clusterset.local.";
const PROBE_SRV: &str = "_http._tcp.probe.swap.svc.clusterset.local.";
const VERSIONS: u8 = 60;

/// Version `k` of the zone: `swap/probe` has `k` ClusterSetIPs `10.50.k.1..=k`
/// and its SRV port is `1000 + k`, so every answer tells its version twice.
fn probe_zone(version: u8) -> Zone {
    let ips: Vec<String> = (1..=version)
        .map(|i| format!("10.50.{version}.{i}"))
        .collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let port = 1000 + u16::from(version);
    zone_of(&[mk_clusterset_ip(
        "swap",
        "probe",
        &ips,
        vec![mk_tcp_port("http", port)],
    )])
}

/// The version an SRV answer comes from, after checking that the SRV record
/// and every address in the additional section agree on it.
fn consistent_version(response: &Message) -> u8 {
    assert_eq!(response.answers.len(), 1, "{response:?}");
    let RData::SRV(srv) = &response.answers[0].data else {
        panic!("{response:?}")
    };
    let version = u8::try_from(srv.port - 1000).unwrap();
    assert_eq!(
        response.additionals.len(),
        usize::from(version),
        "{response:?}"
    );
    for record in &response.additionals {
        let RData::A(a) = &record.data else {
            panic!("{response:?}")
        };
        assert_eq!(
            IpAddr::V4(a.0).to_string().split('.').nth(2),
            Some(version.to_string().as_str())
        );
    }
    version
}

async fn raw_udp_query(socket: &UdpSocket, server: SocketAddr, id: u16) -> Message {
    let mut message = with_edns(query(PROBE_SRV, RecordType::SRV), 4096, 0);
    message.metadata.id = id;
    socket
        .send_to(&message.to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        let (len, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buffer))
            .await
            .expect("the server answers within 2 s")
            .unwrap();
        let response = Message::from_vec(&buffer[..len]).unwrap();
        if response.metadata.id == id {
            return response;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_never_see_a_half_swapped_zone() {
    let server = TestServer::start(probe_zone(1)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr;
    let querier = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut seen = Vec::new();
            let mut id = 0u16;
            while !stop.load(Ordering::Relaxed) {
                id = id.wrapping_add(1);
                let version = consistent_version(&raw_udp_query(&socket, addr, id).await);
                if let Some(last) = seen.last() {
                    assert!(
                        version >= *last,
                        "went back from version {last} to {version}"
                    );
                }
                seen.push(version);
            }
            seen
        })
    };

    for version in 2..=VERSIONS {
        tokio::time::sleep(Duration::from_millis(3)).await;
        server.zones.store(probe_zone(version));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = querier.await.unwrap();

    let mut versions = seen.clone();
    versions.dedup();
    assert!(
        versions.len() > 2,
        "the query loop saw only versions {versions:?}"
    );
    assert_eq!(seen.last(), Some(&VERSIONS));
    server.stop().await;
}

#[tokio::test]
async fn stored_zone_is_answered_within_100_ms() {
    let server = TestServer::start(probe_zone(1)).await;
    for version in 2..=10 {
        let zone = probe_zone(version);
        let serial = zone.serial();
        server.zones.store(zone);
        let stored = Instant::now();
        let srv = with_edns(query(PROBE_SRV, RecordType::SRV), 1232, 0);
        let response = hickory_udp(server.addr, srv).await;
        let answered = stored.elapsed();
        assert_eq!(consistent_version(&response), version);
        assert!(
            answered < Duration::from_millis(100),
            "answered after {answered:?}"
        );
        let soa = hickory_udp(server.addr, query("clusterset.local.", RecordType::SOA)).await;
        let RData::SOA(soa) = &soa.answers[0].data else {
            panic!("{soa:?}")
        };
        assert_eq!(soa.serial, serial);
    }
    let a = hickory_udp(server.addr, query(PROBE, RecordType::A)).await;
    assert_eq!(a.answers.len(), 10);
    server.stop().await;
}

#[test]
fn every_version_has_its_own_serial() {
    let mut serials: Vec<u32> = (1..=VERSIONS).map(|v| probe_zone(v).serial()).collect();
    serials.sort_unstable();
    serials.dedup();
    assert_eq!(serials.len(), usize::from(VERSIONS));
}
