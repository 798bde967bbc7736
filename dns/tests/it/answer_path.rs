//! The request path without sockets: every record kind and response code,
//! through `mcwan_dns::answer` on raw bytes.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};
use mcwan_dns::{answer, Transport, Zone, ZoneConfig};

use crate::support::*;

#[test]
fn clusterset_ip_service_answers_a_with_its_ip() {
    let response = ask_udp(
        &fixture_zone(),
        &query("web.shop.svc.clusterset.local.", RecordType::A),
    );
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(rdata(&response.answers), ["10.0.0.10"]);
    assert_eq!(
        owners(&response.answers),
        ["web.shop.svc.clusterset.local."]
    );
    assert_eq!(response.answers[0].ttl, 5);
    assert!(response.authorities.is_empty());
}

#[test]
fn clusterset_ip_service_answers_aaaa_with_its_ipv6() {
    let response = ask_udp(
        &fixture_zone(),
        &query("web.shop.svc.clusterset.local.", RecordType::AAAA),
    );
    assert_eq!(rdata(&response.answers), ["fd00::10"]);
}

#[test]
fn clusterset_ip_srv_points_at_the_service_with_addresses_in_additional() {
    let response = ask_udp(
        &fixture_zone(),
        &query("_http._tcp.web.shop.svc.clusterset.local.", RecordType::SRV),
    );
    assert_eq!(
        rdata(&response.answers),
        ["0 100 80 web.shop.svc.clusterset.local."]
    );
    assert_eq!(rdata(&response.additionals), ["10.0.0.10", "fd00::10"]);
    assert!(owners(&response.additionals)
        .iter()
        .all(|o| o == "web.shop.svc.clusterset.local."));
}

#[test]
fn srv_protocol_label_follows_the_port_protocol() {
    let zone = fixture_zone();
    let udp = ask_udp(
        &zone,
        &query("_dns._udp.web.shop.svc.clusterset.local.", RecordType::SRV),
    );
    assert_eq!(
        rdata(&udp.answers),
        ["0 100 53 web.shop.svc.clusterset.local."]
    );
    let tcp = ask_udp(
        &zone,
        &query("_dns._tcp.web.shop.svc.clusterset.local.", RecordType::SRV),
    );
    assert_eq!(tcp.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn headless_service_answers_every_ready_endpoint_address() {
    let zone = fixture_zone();
    let a = ask_udp(&zone, &query("pg.db.svc.clusterset.local.", RecordType::A));
    assert_eq!(rdata(&a.answers), ["10.1.0.1", "10.1.0.2", "10.2.0.1"]);
    let aaaa = ask_udp(
        &zone,
        &query("pg.db.svc.clusterset.local.", RecordType::AAAA),
    );
    assert_eq!(rdata(&aaaa.answers), ["fd00:2::1"]);
}

#[test]
fn headless_endpoint_hostname_in_its_cluster_answers_its_address() {
    let zone = fixture_zone();
    let east = ask_udp(
        &zone,
        &query("pg-0.east.pg.db.svc.clusterset.local.", RecordType::A),
    );
    assert_eq!(rdata(&east.answers), ["10.1.0.1"]);
    let west = ask_udp(
        &zone,
        &query("pg-0.west.pg.db.svc.clusterset.local.", RecordType::AAAA),
    );
    assert_eq!(rdata(&west.answers), ["fd00:2::1"]);
}

#[test]
fn headless_srv_has_one_record_per_endpoint_with_their_addresses() {
    let response = ask_udp(
        &fixture_zone(),
        &query("_sql._tcp.pg.db.svc.clusterset.local.", RecordType::SRV),
    );
    assert_eq!(
        rdata(&response.answers),
        [
            "0 100 5432 pg-0.east.pg.db.svc.clusterset.local.",
            "0 100 5432 pg-0.west.pg.db.svc.clusterset.local.",
            "0 100 5432 pg-1.east.pg.db.svc.clusterset.local.",
        ]
    );
    assert_eq!(
        rdata(&response.additionals),
        ["10.1.0.1", "10.1.0.2", "10.2.0.1", "fd00:2::1"]
    );
}

#[test]
fn headless_service_without_ready_endpoints_is_nxdomain() {
    let zone = fixture_zone();
    for name in [
        "empty.db.svc.clusterset.local.",
        "_sql._tcp.empty.db.svc.clusterset.local.",
    ] {
        let response = ask_udp(&zone, &query(name, RecordType::A));
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
    }
}

#[test]
fn cluster_prefixed_service_name_is_nxdomain() {
    let zone = fixture_zone();
    for name in [
        "east.pg.db.svc.clusterset.local.",
        "west.pg.db.svc.clusterset.local.",
        "east.web.shop.svc.clusterset.local.",
    ] {
        let response = ask_udp(&zone, &query(name, RecordType::A));
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
        assert!(response.metadata.authoritative, "{name}");
        assert!(response.answers.is_empty(), "{name}");
    }
}

#[test]
fn dns_version_txt_is_1_0_0() {
    let response = ask_udp(
        &fixture_zone(),
        &query("dns-version.clusterset.local.", RecordType::TXT),
    );
    assert_eq!(rdata(&response.answers), ["1.0.0"]);
}

#[test]
fn apex_soa_names_the_ns_and_carries_the_zone_serial() {
    let zone = fixture_zone();
    let response = ask_udp(&zone, &query("clusterset.local.", RecordType::SOA));
    let RData::SOA(soa) = &response.answers[0].data else {
        panic!("expected SOA, got {:?}", response.answers)
    };
    assert_eq!(soa.mname.to_string(), "ns.dns.clusterset.local.");
    assert_eq!(soa.rname.to_string(), "hostmaster.clusterset.local.");
    assert_eq!(soa.serial, zone.serial());
    assert_eq!(
        (soa.refresh, soa.retry, soa.expire, soa.minimum),
        (7200, 1800, 86400, 5)
    );
}

#[test]
fn apex_ns_resolves_with_its_configured_address() {
    let zone = fixture_zone();
    let response = ask_udp(&zone, &query("clusterset.local.", RecordType::NS));
    assert_eq!(rdata(&response.answers), ["ns.dns.clusterset.local."]);
    assert_eq!(rdata(&response.additionals), [NS_ADDRESS]);
    let address = ask_udp(&zone, &query("ns.dns.clusterset.local.", RecordType::A));
    assert_eq!(rdata(&address.answers), [NS_ADDRESS]);
}

#[test]
fn unknown_name_is_nxdomain_with_the_soa_as_authority() {
    let config = ZoneConfig {
        ttl: 30,
        soa_minimum: 10,
        ..fixture_config()
    };
    let zone = Zone::build(&config, &fixture_services()).unwrap().zone;
    let response = ask_udp(
        &zone,
        &query("nope.shop.svc.clusterset.local.", RecordType::A),
    );
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(response.metadata.authoritative);
    assert!(response.answers.is_empty());
    assert_eq!(response.authorities.len(), 1);
    assert_eq!(response.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(
        response.authorities[0].name.to_string(),
        "clusterset.local."
    );
    assert_eq!(response.authorities[0].ttl, 10, "min(SOA TTL, SOA minimum)");
}

#[test]
fn known_name_without_the_type_is_nodata_with_the_soa() {
    let zone = fixture_zone();
    for (name, rtype) in [
        ("web.shop.svc.clusterset.local.", RecordType::TXT),
        ("_http._tcp.web.shop.svc.clusterset.local.", RecordType::A),
        ("dns-version.clusterset.local.", RecordType::A),
    ] {
        let response = ask_udp(&zone, &query(name, rtype));
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(response.answers.is_empty(), "{name}");
        assert_eq!(rdata(&response.authorities).len(), 1, "{name}");
        assert_eq!(
            response.authorities[0].record_type(),
            RecordType::SOA,
            "{name}"
        );
    }
}

#[test]
fn empty_non_terminals_are_nodata() {
    let zone = fixture_zone();
    for name in [
        "svc.clusterset.local.",
        "shop.svc.clusterset.local.",
        "_tcp.web.shop.svc.clusterset.local.",
        "dns.clusterset.local.",
    ] {
        let response = ask_udp(&zone, &query(name, RecordType::A));
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(response.metadata.authoritative, "{name}");
        assert!(response.answers.is_empty(), "{name}");
        assert_eq!(
            response.authorities[0].record_type(),
            RecordType::SOA,
            "{name}"
        );
    }
}

#[test]
fn in_zone_answers_are_authoritative_and_never_recursive() {
    let response = ask_udp(
        &fixture_zone(),
        &query("web.shop.svc.clusterset.local.", RecordType::A),
    );
    assert!(response.metadata.authoritative);
    assert!(!response.metadata.recursion_available);
    assert!(
        response.metadata.recursion_desired,
        "RD is copied from the query"
    );
    assert_eq!(response.metadata.id, 0x4242);
    assert_eq!(response.metadata.message_type, MessageType::Response);
}

#[test]
fn names_outside_the_zone_are_refused() {
    let zone = fixture_zone();
    for name in ["www.example.org.", "local.", "."] {
        let response = ask_udp(&zone, &query(name, RecordType::A));
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::Refused,
            "{name}"
        );
        assert!(!response.metadata.authoritative, "{name}");
        assert!(!response.metadata.recursion_available, "{name}");
        assert!(
            response.answers.is_empty() && response.authorities.is_empty(),
            "{name}"
        );
    }
}

/// The answer's owner name is a pointer to the question (offset 12), whatever
/// the case of the question, on UDP and TCP alike.
#[test]
fn answer_owner_names_point_to_the_question() {
    for name in [
        "web.shop.svc.clusterset.local.",
        "Web.SHOP.svc.ClusterSet.local.",
    ] {
        let request = query(name, RecordType::A).to_vec().unwrap();
        let question_len = request.len() - 12;
        for transport in [Transport::Udp, Transport::Tcp] {
            let bytes = answer(&fixture_zone(), &request, transport).unwrap();
            let owner = 12 + question_len;
            assert_eq!(
                &bytes[owner..owner + 2],
                [0xC0, 0x0C],
                "{name} {transport:?}"
            );
            // Pointer, TYPE, CLASS, TTL, RDLENGTH, an IPv4 address.
            assert_eq!(bytes.len(), owner + 2 + 10 + 4, "{name} {transport:?}");
        }
        assert_eq!(
            answer(&fixture_zone(), &request, Transport::Udp),
            answer(&fixture_zone(), &request, Transport::Tcp)
        );
    }
}

#[test]
fn names_match_case_insensitively_and_echo_the_query_case() {
    let response = ask_udp(
        &fixture_zone(),
        &query("Web.SHOP.svc.ClusterSet.local.", RecordType::A),
    );
    assert_eq!(rdata(&response.answers), ["10.0.0.10"]);
    assert_eq!(
        owners(&response.answers),
        ["Web.SHOP.svc.ClusterSet.local."]
    );
    assert_eq!(
        response.queries[0].name().to_string(),
        "Web.SHOP.svc.ClusterSet.local."
    );
}

#[test]
fn opcodes_other_than_query_are_not_implemented() {
    let zone = fixture_zone();
    for op_code in [OpCode::Status, OpCode::Notify, OpCode::Update] {
        let mut message = query("web.shop.svc.clusterset.local.", RecordType::A);
        message.metadata.op_code = op_code;
        let response = ask_udp(&zone, &message);
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::NotImp,
            "{op_code:?}"
        );
        assert!(response.answers.is_empty());
    }
}

#[test]
fn zone_transfers_are_refused() {
    let zone = fixture_zone();
    for rtype in [RecordType::AXFR, RecordType::IXFR] {
        let response = ask(&zone, &query("clusterset.local.", rtype), Transport::Tcp);
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::Refused,
            "{rtype}"
        );
        assert!(response.answers.is_empty());
    }
}

#[test]
fn classes_other_than_in_are_refused() {
    let zone = fixture_zone();
    for class in [DNSClass::CH, DNSClass::HS] {
        let mut message = Message::query();
        let mut question = Query::query(name("dns-version.clusterset.local."), RecordType::TXT);
        question.set_query_class(class);
        message.add_query(question);
        let response = ask_udp(&zone, &message);
        assert_eq!(
            response.metadata.response_code,
            ResponseCode::Refused,
            "{class}"
        );
    }
}

#[test]
fn queries_with_several_questions_are_format_errors() {
    let mut message = query("web.shop.svc.clusterset.local.", RecordType::A);
    message.add_query(Query::query(
        name("pg.db.svc.clusterset.local."),
        RecordType::A,
    ));
    let response = ask_udp(&fixture_zone(), &message);
    assert_eq!(response.metadata.response_code, ResponseCode::FormErr);
    assert!(response.answers.is_empty());
}

#[test]
fn queries_without_a_question_are_format_errors() {
    let mut message = Message::query();
    message.metadata.id = 7;
    let response = ask_udp(&fixture_zone(), &message);
    assert_eq!(response.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(response.metadata.id, 7);
}

#[test]
fn malformed_queries_get_a_bare_format_error() {
    let mut bytes = query("web.shop.svc.clusterset.local.", RecordType::A)
        .to_vec()
        .unwrap();
    bytes.truncate(bytes.len() - 3); // cut the question short
    let response = answer(&fixture_zone(), &bytes, Transport::Udp).expect("a response");
    let response = Message::from_vec(&response).unwrap();
    assert_eq!(response.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(response.metadata.id, 0x4242);
    assert!(response.queries.is_empty());
}

#[test]
fn shorter_than_a_header_and_responses_get_no_answer() {
    let zone = fixture_zone();
    assert_eq!(answer(&zone, &[], Transport::Udp), None);
    assert_eq!(answer(&zone, &[0x42; 11], Transport::Udp), None);
    let mut response = query("web.shop.svc.clusterset.local.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    assert_eq!(
        answer(&zone, &response.to_vec().unwrap(), Transport::Udp),
        None
    );
}

#[test]
fn unparsable_responses_get_no_answer_either() {
    let mut response = query("web.shop.svc.clusterset.local.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    let mut bytes = response.to_vec().unwrap();
    bytes.truncate(bytes.len() - 3); // cut the question short
    assert_eq!(answer(&fixture_zone(), &bytes, Transport::Udp), None);
    assert_eq!(answer(&fixture_zone(), &bytes, Transport::Tcp), None);
}

#[test]
fn any_query_returns_every_rrset_of_the_name() {
    let response = ask_udp(
        &fixture_zone(),
        &query("clusterset.local.", RecordType::ANY),
    );
    let mut types: Vec<RecordType> = response.answers.iter().map(|r| r.record_type()).collect();
    types.sort();
    assert_eq!(types, [RecordType::NS, RecordType::SOA]);
}

#[test]
fn edns_query_gets_an_opt_advertising_1232() {
    let message = with_edns(
        query("web.shop.svc.clusterset.local.", RecordType::A),
        4096,
        0,
    );
    let response = ask_udp(&fixture_zone(), &message);
    let edns = response.edns.expect("OPT echoed");
    assert_eq!(edns.max_payload(), 1232);
    assert_eq!(edns.version(), 0);
    assert_eq!(rdata(&response.answers), ["10.0.0.10"]);
}

#[test]
fn query_without_edns_gets_no_opt() {
    let response = ask_udp(
        &fixture_zone(),
        &query("web.shop.svc.clusterset.local.", RecordType::A),
    );
    assert!(response.edns.is_none());
}

#[test]
fn edns_version_above_zero_is_badvers() {
    let message = with_edns(
        query("web.shop.svc.clusterset.local.", RecordType::A),
        1232,
        1,
    );
    let response = ask_udp(&fixture_zone(), &message);
    assert_eq!(
        u16::from(response.metadata.response_code),
        u16::from(ResponseCode::BADVERS)
    );
    assert!(response.answers.is_empty());
    assert_eq!(response.edns.expect("OPT in BADVERS").version(), 0);
}

#[test]
fn oversized_udp_answer_is_truncated_with_the_question_kept() {
    let zone = fixture_zone();
    let message = with_edns(
        query("many.big.svc.clusterset.local.", RecordType::A),
        1232,
        0,
    );
    let bytes = answer(&zone, &message.to_vec().unwrap(), Transport::Udp).unwrap();
    assert!(bytes.len() <= 1232, "{} octets", bytes.len());
    let response = Message::from_vec(&bytes).unwrap();
    assert!(response.metadata.truncation);
    assert!(response.answers.is_empty(), "whole RRsets are dropped");
    assert_eq!(response.queries.len(), 1);
    assert!(response.edns.is_some());
}

#[test]
fn udp_without_edns_is_limited_to_512_octets() {
    let zone = fixture_zone();
    let message = query("_sql._tcp.pg.db.svc.clusterset.local.", RecordType::SRV);
    let bytes = answer(&zone, &message.to_vec().unwrap(), Transport::Udp).unwrap();
    assert!(bytes.len() <= 512);
    let big = query("many.big.svc.clusterset.local.", RecordType::A);
    let response = ask_udp(&zone, &big);
    assert!(response.metadata.truncation);
}

#[test]
fn additional_section_is_dropped_before_truncating_the_answer() {
    let zone = fixture_zone();
    // 100 SRV records fit in 64 KiB but not in 1232 octets, even without additionals.
    let srv = with_edns(
        query("_http._tcp.many.big.svc.clusterset.local.", RecordType::SRV),
        1232,
        0,
    );
    assert!(ask_udp(&zone, &srv).metadata.truncation);
    // 16 SRV records fit in 1232 octets only without their addresses.
    let endpoints = mk_many_endpoints(16);
    let zone = zone_of(&[mk_headless(
        "big",
        "some",
        endpoints,
        vec![mk_tcp_port("http", 80)],
    )]);
    let srv = with_edns(
        query("_http._tcp.some.big.svc.clusterset.local.", RecordType::SRV),
        1232,
        0,
    );
    let response = ask_udp(&zone, &srv);
    assert!(!response.metadata.truncation);
    assert_eq!(response.answers.len(), 16);
    assert!(response.additionals.is_empty());
    let tcp = ask(&zone, &srv, Transport::Tcp);
    assert_eq!(tcp.additionals.len(), 16);
}

#[test]
fn tcp_answers_in_full() {
    let zone = fixture_zone();
    let response = ask(
        &zone,
        &query("many.big.svc.clusterset.local.", RecordType::A),
        Transport::Tcp,
    );
    assert!(!response.metadata.truncation);
    assert_eq!(response.answers.len(), MANY_ENDPOINTS);
    let srv = ask(
        &zone,
        &query("_http._tcp.many.big.svc.clusterset.local.", RecordType::SRV),
        Transport::Tcp,
    );
    assert_eq!(srv.answers.len(), MANY_ENDPOINTS);
    assert_eq!(srv.additionals.len(), MANY_ENDPOINTS);
}

#[test]
fn client_payload_smaller_than_ours_is_respected() {
    let zone = fixture_zone();
    let message = with_edns(
        query("_sql._tcp.pg.db.svc.clusterset.local.", RecordType::SRV),
        600,
        0,
    );
    let bytes = answer(&zone, &message.to_vec().unwrap(), Transport::Udp).unwrap();
    assert!(bytes.len() <= 600, "{} octets", bytes.len());
}
