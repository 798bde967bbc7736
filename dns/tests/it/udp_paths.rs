//! Both UDP paths (our receive loop and hickory-server's) answer with the
//! same bytes as the pure request path.

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use mcwan_dns::{answer, ServerOptions, Transport, UdpPath};

use crate::support::*;

fn requests() -> Vec<Vec<u8>> {
    let mut requests: Vec<Message> = vec![
        query("web.shop.svc.clusterset.local.", RecordType::A),
        with_edns(
            query("_sql._tcp.pg.db.svc.clusterset.local.", RecordType::SRV),
            1232,
            0,
        ),
        with_edns(
            query("many.big.svc.clusterset.local.", RecordType::A),
            4096,
            0,
        ),
        query("many.big.svc.clusterset.local.", RecordType::A),
        query("east.pg.db.svc.clusterset.local.", RecordType::A),
        query("shop.svc.clusterset.local.", RecordType::AAAA),
        query("www.example.org.", RecordType::A),
        with_edns(query("clusterset.local.", RecordType::SOA), 1232, 1),
        query("Web.Shop.svc.clusterset.local.", RecordType::A),
    ];
    let mut two_questions = query("web.shop.svc.clusterset.local.", RecordType::A);
    two_questions.add_query(hickory_proto::op::Query::query(
        name("pg.db.svc.clusterset.local."),
        RecordType::A,
    ));
    requests.push(two_questions);
    let mut bytes: Vec<Vec<u8>> = requests.iter().map(|m| m.to_vec().unwrap()).collect();
    let mut cut = bytes[0].clone();
    cut.truncate(cut.len() - 2);
    bytes.push(cut);
    bytes
}

#[tokio::test]
async fn both_udp_paths_answer_like_the_pure_path() {
    let zone = fixture_zone();
    let expected: Vec<Vec<u8>> = requests()
        .iter()
        .map(|request| answer(&zone, request, Transport::Udp).unwrap())
        .collect();
    for udp_path in [UdpPath::Direct, UdpPath::Hickory] {
        let options = ServerOptions {
            udp_path,
            ..ServerOptions::default()
        };
        let server = TestServer::start_with(fixture_zone(), &options).await;
        for (request, expected) in requests().iter().zip(&expected) {
            let got = raw_udp(server.addr, request).await;
            match udp_path {
                // Our encoder: the very same octets.
                UdpPath::Direct => assert_eq!(
                    &got,
                    expected,
                    "{udp_path:?}: {:?}",
                    Message::from_vec(&got)
                ),
                // hickory-server's encoder does not point into the question:
                // the same message, never a smaller one.
                UdpPath::Hickory => {
                    let got_message = Message::from_vec(&got).unwrap();
                    let expected_message = Message::from_vec(expected).unwrap();
                    assert_eq!(got_message, expected_message, "{udp_path:?}");
                    assert!(got.len() >= expected.len(), "{udp_path:?}");
                }
            }
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn several_udp_workers_share_a_socket() {
    let options = ServerOptions {
        udp_workers: 3,
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(fixture_zone(), &options).await;
    for _ in 0..20 {
        let response = hickory_udp(
            server.addr,
            query("web.shop.svc.clusterset.local.", RecordType::A),
        )
        .await;
        assert_eq!(rdata(&response.answers), ["10.0.0.10"]);
    }
    server.stop().await;
}

#[tokio::test]
async fn both_udp_paths_serve_ipv6_clients() {
    for udp_path in [UdpPath::Direct, UdpPath::Hickory] {
        let options = ServerOptions {
            udp_path,
            ..ServerOptions::default()
        };
        let listen = "[::1]:0".parse().unwrap();
        let server = TestServer::start_on(fixture_zone(), listen, &options).await;
        let udp = hickory_udp(
            server.addr,
            query("web.shop.svc.clusterset.local.", RecordType::AAAA),
        )
        .await;
        assert_eq!(rdata(&udp.answers), ["fd00::10"], "{udp_path:?}");
        let tcp = hickory_tcp(
            server.addr,
            query("web.shop.svc.clusterset.local.", RecordType::A),
        )
        .await;
        assert_eq!(rdata(&tcp.answers), ["10.0.0.10"], "{udp_path:?}");
        server.stop().await;
    }
}
