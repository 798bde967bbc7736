//! The peer MCS DNS: CoreDNS, reading the importing cluster's kube-apiserver with the kubernetes
//! plugin's `multicluster` option, answers the `clusterset.local` names from the ServiceImports
//! and EndpointSlices the gateway wrote, and its answers must be the gateway's own. Real API
//! server only (CoreDNS cannot talk to KubeSim's plain-HTTP, token-less endpoint).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::*;

/// A `clusterset.local` server block of CoreDNS for the API server of `kubeconfig`.
fn corefile(port: u16, kubeconfig: &std::path::Path) -> String {
    format!(
        "clusterset.local:{port} {{
    bind 127.0.0.1
    kubernetes clusterset.local {{
        kubeconfig {}
        multicluster clusterset.local
    }}
}}
",
        kubeconfig.display()
    )
}

/// The response code and the answer section's records as `TYPE data`, sorted; TTLs left out
/// (each server picks its own), SRV priority and weight too (CoreDNS weights by share, the
/// gateway by endpoint count).
async fn answer(
    server: SocketAddr,
    qname: &str,
    rtype: RecordType,
) -> Option<(ResponseCode, BTreeSet<String>)> {
    let m = dns_query(server, qname, rtype).await.ok()?;
    let records = m
        .answers
        .iter()
        .map(|r| match &r.data {
            hickory_proto::rr::RData::SRV(srv) => {
                format!("SRV {} {}", srv.port, srv.target.to_ascii().to_lowercase())
            }
            data => format!("{} {data}", r.record_type()),
        })
        .collect();
    Some((m.metadata.response_code, records))
}

/// Waits until CoreDNS and the gateway give the same answer for `qname`, and that answer is
/// `expected(answer)`; fails with both answers if they do not within 30 s.
async fn agree(
    cs: &Clusterset,
    coredns: &mut testbed::CoreDns,
    peer: SocketAddr,
    qname: &str,
    rtype: RecordType,
    expected: impl Fn(&(ResponseCode, BTreeSet<String>)) -> bool,
) -> BTreeSet<String> {
    let gateway = cs.clusters[1].dns;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ours = answer(gateway, qname, rtype).await;
        let theirs = answer(peer, qname, rtype).await;
        if let (Some(ours), Some(theirs)) = (&ours, &theirs) {
            if ours == theirs && expected(ours) {
                return ours.1.clone();
            }
        }
        assert!(coredns.running(), "CoreDNS exited:\n{}", coredns.log_tail());
        assert!(
            Instant::now() < deadline,
            "{qname} {rtype}: gateway {ours:?}, CoreDNS {theirs:?}\nCoreDNS:\n{}\n{}",
            coredns.log_tail(),
            cs.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn noerror(a: &(ResponseCode, BTreeSet<String>)) -> bool {
    a.0 == ResponseCode::NoError && !a.1.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coredns_multicluster_answers_what_the_gateway_answers() {
    let cs = Clusterset::start(Backend::Real, 2).await;
    let peer = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut coredns = testbed::CoreDns::start(&corefile(peer.port(), &cs.kubeconfig(1)));

    let api = cs.api(0);
    export_service(api, "shop", "cart").await;
    api.create(mk_headless("shop", "db", &[("pg", 5432)])).await;
    api.create(mk_slice(
        "shop",
        "db",
        &[("db-0", "10.1.0.7"), ("db-1", "10.1.0.8")],
        &[("pg", 5432)],
    ))
    .await;
    api.create(mk_export("shop", "db", None)).await;

    // ClusterSetIP: the ServiceImport's VIP, from both.
    let vip = agree(
        &cs,
        &mut coredns,
        peer,
        "cart.shop.svc.clusterset.local.",
        RecordType::A,
        noerror,
    )
    .await;
    assert_eq!(vip.len(), 1, "{vip:?}");
    agree(
        &cs,
        &mut coredns,
        peer,
        "_http._tcp.cart.shop.svc.clusterset.local.",
        RecordType::SRV,
        noerror,
    )
    .await;
    // Headless: every ready endpoint, and each by hostname and cluster.
    let all = agree(
        &cs,
        &mut coredns,
        peer,
        "db.shop.svc.clusterset.local.",
        RecordType::A,
        |a| a.1.len() == 2,
    )
    .await;
    assert_eq!(
        all,
        BTreeSet::from(["A 10.1.0.7".to_owned(), "A 10.1.0.8".to_owned()])
    );
    let one = agree(
        &cs,
        &mut coredns,
        peer,
        "db-1.cluster-1.db.shop.svc.clusterset.local.",
        RecordType::A,
        noerror,
    )
    .await;
    assert_eq!(one, BTreeSet::from(["A 10.1.0.8".to_owned()]));
    // A name nobody exports.
    agree(
        &cs,
        &mut coredns,
        peer,
        "nope.shop.svc.clusterset.local.",
        RecordType::A,
        |a| a.0 == ResponseCode::NXDomain,
    )
    .await;

    // Unexported: gone from both.
    api.delete(MCS, "serviceexports", Some("shop"), "cart")
        .await;
    agree(
        &cs,
        &mut coredns,
        peer,
        "cart.shop.svc.clusterset.local.",
        RecordType::A,
        |a| a.0 == ResponseCode::NXDomain,
    )
    .await;
}
