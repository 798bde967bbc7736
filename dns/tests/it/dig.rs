//! A real server on loopback, asked with `dig` from bind9-dnsutils.

use crate::support::*;

#[tokio::test]
async fn dig_resolves_a_aaaa_and_srv() {
    let server = TestServer::start(fixture_zone()).await;
    let a = dig(server.addr, &["web.shop.svc.clusterset.local", "A"]).await;
    assert_eq!(a.status, "NOERROR", "{}", a.raw);
    assert!(a.has_flag("aa") && !a.has_flag("ra"), "{}", a.raw);
    assert_eq!(a.answer_data(), ["10.0.0.10"]);
    assert_eq!(a.answer[0].ttl, 5);

    let aaaa = dig(server.addr, &["web.shop.svc.clusterset.local", "AAAA"]).await;
    assert_eq!(aaaa.answer_data(), ["fd00::10"]);

    let srv = dig(
        server.addr,
        &["_http._tcp.web.shop.svc.clusterset.local", "SRV"],
    )
    .await;
    assert_eq!(
        srv.answer_data(),
        ["0 100 80 web.shop.svc.clusterset.local."]
    );
    assert_eq!(srv.additional.len(), 2, "{}", srv.raw);

    let headless = dig(
        server.addr,
        &["_sql._tcp.pg.db.svc.clusterset.local", "SRV"],
    )
    .await;
    assert_eq!(headless.answer.len(), 3, "{}", headless.raw);
    let host = dig(server.addr, &["pg-0.west.pg.db.svc.clusterset.local", "A"]).await;
    assert_eq!(host.answer_data(), ["10.2.0.1"]);
    server.stop().await;
}

#[tokio::test]
async fn dig_sees_txt_soa_and_ns() {
    let server = TestServer::start(fixture_zone()).await;
    let txt = dig(server.addr, &["dns-version.clusterset.local", "TXT"]).await;
    assert_eq!(txt.answer_data(), ["\"1.0.0\""]);
    let soa = dig(server.addr, &["clusterset.local", "SOA"]).await;
    let serial = server.zones.serial().to_string();
    assert_eq!(
        soa.answer_data(),
        [format!(
            "ns.dns.clusterset.local. hostmaster.clusterset.local. {serial} 7200 1800 86400 5"
        )]
    );
    let ns = dig(server.addr, &["clusterset.local", "NS"]).await;
    assert_eq!(ns.answer_data(), ["ns.dns.clusterset.local."]);
    assert_eq!(ns.additional[0].data, NS_ADDRESS);
    server.stop().await;
}

#[tokio::test]
async fn dig_gets_nxdomain_nodata_and_refused() {
    let server = TestServer::start(fixture_zone()).await;
    let unknown = dig(server.addr, &["nope.shop.svc.clusterset.local", "A"]).await;
    assert_eq!(unknown.status, "NXDOMAIN", "{}", unknown.raw);
    assert_eq!(unknown.authority[0].rtype, "SOA", "{}", unknown.raw);
    assert!(unknown.has_flag("aa"));

    let forbidden = dig(server.addr, &["east.pg.db.svc.clusterset.local", "A"]).await;
    assert_eq!(forbidden.status, "NXDOMAIN", "{}", forbidden.raw);

    let nodata = dig(server.addr, &["web.shop.svc.clusterset.local", "TXT"]).await;
    assert_eq!(nodata.status, "NOERROR", "{}", nodata.raw);
    assert!(nodata.answer.is_empty());
    assert_eq!(nodata.authority[0].rtype, "SOA", "{}", nodata.raw);

    let refused = dig(server.addr, &["www.example.org", "A"]).await;
    assert_eq!(refused.status, "REFUSED", "{}", refused.raw);
    assert!(
        !refused.has_flag("aa") && !refused.has_flag("ra"),
        "{}",
        refused.raw
    );
    server.stop().await;
}

#[tokio::test]
async fn dig_sees_tc_over_udp_and_the_full_answer_over_tcp() {
    let server = TestServer::start(fixture_zone()).await;
    let udp = dig(
        server.addr,
        &["many.big.svc.clusterset.local", "A", "+ignore", "+notcp"],
    )
    .await;
    assert!(udp.has_flag("tc"), "{}", udp.raw);
    assert!(udp.answer.is_empty(), "{}", udp.raw);

    let tcp = dig(server.addr, &["many.big.svc.clusterset.local", "A", "+tcp"]).await;
    assert!(!tcp.has_flag("tc"), "{}", tcp.raw);
    assert_eq!(tcp.answer.len(), MANY_ENDPOINTS, "{}", tcp.raw);

    // Without +ignore, dig itself retries the truncated answer over TCP on the same port.
    let retried = dig(server.addr, &["many.big.svc.clusterset.local", "A"]).await;
    assert_eq!(retried.answer.len(), MANY_ENDPOINTS, "{}", retried.raw);
    server.stop().await;
}

#[tokio::test]
async fn dig_sees_edns_echo_and_badvers() {
    let server = TestServer::start(fixture_zone()).await;
    let echoed = dig(
        server.addr,
        &["web.shop.svc.clusterset.local", "A", "+bufsize=4096"],
    )
    .await;
    assert_eq!(echoed.edns_udp, Some(1232), "{}", echoed.raw);
    let plain = dig(
        server.addr,
        &["web.shop.svc.clusterset.local", "A", "+noedns"],
    )
    .await;
    assert_eq!(plain.edns_udp, None, "{}", plain.raw);
    assert_eq!(plain.answer_data(), ["10.0.0.10"]);
    let bad = dig(
        server.addr,
        &[
            "web.shop.svc.clusterset.local",
            "A",
            "+edns=1",
            "+noednsnegotiation",
        ],
    )
    .await;
    assert_eq!(bad.status, "BADVERS", "{}", bad.raw);
    assert_eq!(bad.edns_udp, Some(1232), "{}", bad.raw);
    server.stop().await;
}

#[tokio::test]
async fn dig_matches_names_case_insensitively() {
    let server = TestServer::start(fixture_zone()).await;
    let mixed = dig(server.addr, &["WEB.Shop.svc.clusterset.LOCAL", "A"]).await;
    assert_eq!(mixed.answer_data(), ["10.0.0.10"]);
    assert_eq!(mixed.answer[0].name, "WEB.Shop.svc.clusterset.LOCAL.");
    server.stop().await;
}
