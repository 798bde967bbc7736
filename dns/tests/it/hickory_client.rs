//! A real server on loopback, asked over UDP and TCP with hickory's client.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::support::*;

async fn over_udp(server: &TestServer, name: &str, rtype: RecordType) -> Message {
    hickory_udp(server.addr, with_edns(query(name, rtype), 1232, 0)).await
}

async fn over_tcp(server: &TestServer, name: &str, rtype: RecordType) -> Message {
    hickory_tcp(server.addr, with_edns(query(name, rtype), 1232, 0)).await
}

#[tokio::test]
async fn a_and_aaaa_of_a_clusterset_ip_service() {
    let server = TestServer::start(fixture_zone()).await;
    let a = over_udp(&server, "web.shop.svc.clusterset.local.", RecordType::A).await;
    assert_eq!(rdata(&a.answers), ["10.0.0.10"]);
    assert!(a.metadata.authoritative);
    let aaaa = over_tcp(&server, "web.shop.svc.clusterset.local.", RecordType::AAAA).await;
    assert_eq!(rdata(&aaaa.answers), ["fd00::10"]);
    server.stop().await;
}

#[tokio::test]
async fn srv_of_clusterset_ip_and_headless_services() {
    let server = TestServer::start(fixture_zone()).await;
    let web = over_udp(
        &server,
        "_http._tcp.web.shop.svc.clusterset.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(
        rdata(&web.answers),
        ["0 100 80 web.shop.svc.clusterset.local."]
    );
    assert_eq!(rdata(&web.additionals), ["10.0.0.10", "fd00::10"]);
    let pg = over_udp(
        &server,
        "_sql._tcp.pg.db.svc.clusterset.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(pg.answers.len(), 3);
    assert!(rdata(&pg.answers).contains(&"0 100 5432 pg-0.west.pg.db.svc.clusterset.local.".into()));
    let host = over_tcp(
        &server,
        "pg-1.east.pg.db.svc.clusterset.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(rdata(&host.answers), ["10.1.0.2"]);
    server.stop().await;
}

#[tokio::test]
async fn txt_soa_and_ns_at_the_apex() {
    let server = TestServer::start(fixture_zone()).await;
    let txt = over_udp(&server, "dns-version.clusterset.local.", RecordType::TXT).await;
    assert_eq!(rdata(&txt.answers), ["1.0.0"]);
    let soa = over_udp(&server, "clusterset.local.", RecordType::SOA).await;
    let RData::SOA(data) = &soa.answers[0].data else {
        panic!("{soa:?}")
    };
    assert_eq!(data.serial, server.zones.serial());
    let ns = over_tcp(&server, "clusterset.local.", RecordType::NS).await;
    assert_eq!(rdata(&ns.answers), ["ns.dns.clusterset.local."]);
    assert_eq!(rdata(&ns.additionals), [NS_ADDRESS]);
    server.stop().await;
}

#[tokio::test]
async fn nxdomain_for_unknown_and_cluster_prefixed_names() {
    let server = TestServer::start(fixture_zone()).await;
    for name in [
        "nope.shop.svc.clusterset.local.",
        "east.pg.db.svc.clusterset.local.",
    ] {
        let response = over_udp(&server, name, RecordType::A).await;
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
        assert_eq!(
            response.authorities[0].record_type(),
            RecordType::SOA,
            "{name}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn nodata_for_a_missing_type_and_refused_outside_the_zone() {
    let server = TestServer::start(fixture_zone()).await;
    let nodata = over_udp(&server, "web.shop.svc.clusterset.local.", RecordType::MX).await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
    let refused = over_udp(&server, "www.example.org.", RecordType::A).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert!(!refused.metadata.recursion_available);
    server.stop().await;
}

#[tokio::test]
async fn large_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let server = TestServer::start(fixture_zone()).await;
    let udp = over_udp(&server, "many.big.svc.clusterset.local.", RecordType::A).await;
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());
    let tcp = over_tcp(&server, "many.big.svc.clusterset.local.", RecordType::A).await;
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), MANY_ENDPOINTS);
    server.stop().await;
}

#[tokio::test]
async fn edns_is_echoed_and_unknown_versions_get_badvers() {
    let server = TestServer::start(fixture_zone()).await;
    let echoed = over_udp(&server, "web.shop.svc.clusterset.local.", RecordType::A).await;
    assert_eq!(echoed.edns.as_ref().map(|e| e.max_payload()), Some(1232));
    let plain = hickory_udp(
        server.addr,
        query("web.shop.svc.clusterset.local.", RecordType::A),
    )
    .await;
    assert!(plain.edns.is_none());
    let bad = hickory_udp(
        server.addr,
        with_edns(
            query("web.shop.svc.clusterset.local.", RecordType::A),
            1232,
            1,
        ),
    )
    .await;
    // BADVERS shares code 16 with BADSIG, which is how hickory decodes it.
    assert_eq!(
        u16::from(bad.metadata.response_code),
        u16::from(ResponseCode::BADVERS)
    );
    server.stop().await;
}
