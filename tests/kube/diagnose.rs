//! `mcwan diagnose` on two real kube-apiservers joined with `mcwan join`, cluster-2's gateway
//! running, a real CoreDNS forwarding the clusterset zone to it: every check is ok; a closed
//! ingress port of the peer fails its class; the peer's API server stopped fails naming it.
//! Cluster-1's published ingress is a network namespace behind a veth (EndpointSlices refuse
//! loopback addresses), so the WAN probes are real connections, to that namespace only.

use serde_json::{json, Value};

use super::join::{all_contexts, join, mcwan_with, use_joined_kubeconfig};
use crate::support::{free_port, testbed, Backend, ClusterApi, Clusterset};

#[path = "../support/netns.rs"]
pub mod netns;

/// An ingress EndpointSlice as cluster-1's gateway publishes it, for one tunnel class.
fn ingress_slice(name: &str, class: &str, address: &str, ports: &[u16]) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "shop",
            "labels": {"mcw.l7mp.io/slice": "ingress",
                "endpointslice.kubernetes.io/managed-by": "mcwan.l7mp.io"},
            "annotations": {"mcw.l7mp.io/tunnel-class": class}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address]}],
        "ports": ports.iter().map(|p| json!({"name": format!("p{p}"), "port": p, "protocol": "TCP"})).collect::<Vec<_>>(),
    })
}

fn diagnose(cs: &Clusterset, extra: &[&str]) -> (i32, Value, String) {
    let dns = cs.clusters[1].dns.to_string();
    let admin = cs.admin_addr(1);
    let mut args = vec![
        "diagnose",
        "--context",
        "cluster-2",
        "--gateway",
        &admin,
        "--dns",
        &dns,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = mcwan_with(&all_contexts(cs), &args);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"));
    (code, report, stderr)
}

fn verdict<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_says_ok_on_a_healthy_pair_and_fails_naming_what_broke() {
    let mut cs = Clusterset::new(Backend::Real, 2).await;
    std::fs::remove_file(cs.peers_dir(1).join("cluster-1")).unwrap();
    let ((code, out, err), _) = join(&cs, 0, 1, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    use_joined_kubeconfig(&cs, 1, "cluster-1").await;
    cs.start_gateway(1).await;
    cs.wait_for("cluster-2's gateway is ready", || async {
        cs.admin_get(1, "/readyz").await
    })
    .await;

    // Cluster-1's gateway node: a namespace at 10.213.N.2, reached over a veth.
    let n = std::process::id() % 200;
    let ns = netns::Netns::new(&format!("mcwan-diag-{n}"));
    let (host_ip, peer_ip) = (format!("10.213.{n}.1"), format!("10.213.{n}.2"));
    netns::sh(&format!(
        "ip link add mcdiag{n} type veth peer name eth0 netns {ns} && \
         ip addr add {host_ip}/30 dev mcdiag{n} && ip link set mcdiag{n} up",
        ns = ns.name
    ));
    ns.sh(&format!(
        "ip addr add {peer_ip}/30 dev eth0 && ip link set eth0 up"
    ));
    // Its published ingress of class gold, on a port that answers.
    let open = {
        let peer_ip = peer_ip.clone();
        ns.run(move || std::net::TcpListener::bind(format!("{peer_ip}:0")).unwrap())
    };
    let open_port = open.local_addr().unwrap().port();
    cs.api(0)
        .create(ingress_slice(
            "cart-mcwan-cluster-1",
            "gold",
            &peer_ip,
            &[open_port],
        ))
        .await;
    // The cluster DNS: CoreDNS forwarding the zone to cluster-2's gateway.
    let dns_port = free_port();
    let mut coredns = testbed::CoreDns::start(&format!(
        "clusterset.local:{dns_port} {{\n    bind 127.0.0.1\n    forward . {}\n}}\n",
        cs.clusters[1].dns
    ));
    let cluster_dns = format!("127.0.0.1:{dns_port}");
    let mut tries = 0;
    let (code, report) = loop {
        let (code, report, stderr) = diagnose(&cs, &["--cluster-dns", &cluster_dns]);
        // CoreDNS may still be starting.
        if verdict(&report, "dns/cluster")["verdict"] == "ok" || tries == 50 {
            assert!(coredns.running(), "CoreDNS exited:\n{}", coredns.log_tail());
            break (code, (report, stderr));
        }
        tries += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (report, stderr) = report;
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "api/cluster-2",
        "clock/cluster-2",
        "crd/serviceexports.multicluster.x-k8s.io",
        "crd/serviceimports.multicluster.x-k8s.io",
        "crd/wanpolicies.mcw.l7mp.io",
        "crd/wanimports.mcw.l7mp.io",
        "crd/clusterproperties.about.k8s.io",
        "api/cluster-1",
        "clock/cluster-1",
        "access/cluster-1",
        "wan/cluster-1/gold",
        "gateway/readyz",
        "dns/gateway",
        "dns/cluster",
    ] {
        assert!(names.contains(&want), "no {want} in {names:?}");
    }
    let not_ok: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "ok")
        .collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}\n{stderr}");
    assert_eq!(code, 0);
    assert_eq!(report["ok"], true);
    assert!(
        verdict(&report, "dns/cluster")["reason"]
            .as_str()
            .unwrap()
            .contains("the gateway's SOA"),
        "{report:#}"
    );

    // The table says the same, one line per check.
    let (code, table, _) = mcwan_with(
        &all_contexts(&cs),
        &[
            "diagnose",
            "--context",
            "cluster-2",
            "--gateway",
            &cs.admin_addr(1),
            "--dns",
            &cs.clusters[1].dns.to_string(),
            "--cluster-dns",
            &cluster_dns,
        ],
    );
    assert_eq!(code, 0, "{table}");
    assert_eq!(table.lines().count(), names.len() + 1, "{table}");
    assert!(table.lines().skip(1).all(|l| l.contains(" ok ")), "{table}");

    // A port of class silver that nobody listens on: that class fails, naming the port.
    let closed = free_port();
    cs.api(0)
        .create(ingress_slice(
            "pay-mcwan-cluster-1",
            "silver",
            &peer_ip,
            &[closed],
        ))
        .await;
    let (code, report, _) = diagnose(&cs, &["--cluster-dns", &cluster_dns]);
    assert_eq!(code, 1, "{report:#}");
    let silver = verdict(&report, "wan/cluster-1/silver");
    assert_eq!(silver["verdict"], "fail", "{silver}");
    assert!(
        silver["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{peer_ip}:{closed}/TCP")),
        "{silver}"
    );
    assert_eq!(verdict(&report, "wan/cluster-1/gold")["verdict"], "ok");
    drop(open);

    // Cluster-1's API server stopped: its check fails, naming it; the rest still runs.
    if let ClusterApi::Real { server, .. } = cs.api(0) {
        tokio::task::block_in_place(|| server.lock().unwrap().stop());
    }
    let (code, report, _) = diagnose(&cs, &["--cluster-dns", &cluster_dns, "--timeout", "2"]);
    assert_eq!(code, 1, "{report:#}");
    let api = verdict(&report, "api/cluster-1");
    assert_eq!(api["verdict"], "fail", "{api}");
    assert!(
        api["reason"].as_str().unwrap().contains("cluster-1"),
        "{api}"
    );
    assert_eq!(verdict(&report, "api/cluster-2")["verdict"], "ok");
    assert_eq!(verdict(&report, "dns/gateway")["verdict"], "ok");
}
