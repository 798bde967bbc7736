//! The cluster DNS path a pod takes: CoreDNS running the Corefile that
//! deploy/coredns/coredns-patch.yaml puts into a kubeadm cluster's `coredns` ConfigMap, its
//! kubernetes plugin reading a real kube-apiserver, its clusterset.local block forwarding to the
//! gateway. Asked with `dig` over real sockets, CoreDNS gives the gateway's answers for
//! clusterset.local and the API server's for cluster.local.
//!
//! The Corefile is the one read back from the API server after `kubectl patch`; only what ties
//! it to a pod's network is rewritten for the host (listening ports bound to 127.0.0.1, the
//! kubeconfig in place of the in-cluster service account, a local upstream in place of
//! /etc/resolv.conf), each rewrite checked to apply exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::path::Path;

#[path = "support/ports.rs"]
mod ports;
use ports::free_port;

#[path = "support/testbed.rs"]
mod testbed;
use testbed::{ApiServer, CoreDns};

#[path = "support/dns.rs"]
mod dns;
use dns::{answer, dig, http_get, repo, rewrite, wait_coredns_ready, wait_until, Gateway};

fn kubectl_ok(server: &ApiServer, args: &[&str]) -> String {
    let out = server.kubectl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// kubeadm's `coredns` ConfigMap, patched with deploy/coredns/coredns-patch.yaml (the gateway
/// at 127.0.0.1:`gateway_port`), as the API server then holds it.
fn patched_corefile(server: &ApiServer, dir: &Path, gateway_port: u16) -> String {
    let patch = std::fs::read_to_string(repo().join("deploy/coredns/coredns-patch.yaml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&patch).unwrap();
    let full = doc["data"]["Corefile"].as_str().unwrap();
    let kubeadm = &full[..full
        .find("# mcwan: begin")
        .expect("patch has the mcwan block")];
    let configmap = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "data": {"Corefile": kubeadm},
    });
    let path = dir.join("coredns.json");
    std::fs::write(&path, configmap.to_string()).unwrap();
    kubectl_ok(server, &["create", "-f", path.to_str().unwrap()]);

    let path = dir.join("coredns-patch.yaml");
    std::fs::write(
        &path,
        rewrite(
            &patch,
            "MCWAN_DNS_IP:53",
            &format!("127.0.0.1:{gateway_port}"),
        ),
    )
    .unwrap();
    kubectl_ok(
        server,
        &[
            "-n",
            "kube-system",
            "patch",
            "configmap",
            "coredns",
            "--type",
            "merge",
            "--patch-file",
            path.to_str().unwrap(),
        ],
    );
    let corefile = kubectl_ok(
        server,
        &[
            "-n",
            "kube-system",
            "get",
            "configmap",
            "coredns",
            "-o",
            "jsonpath={.data.Corefile}",
        ],
    );
    assert!(
        corefile.starts_with(kubeadm),
        "the patch keeps kubeadm's block:\n{corefile}"
    );
    corefile
}

#[test]
fn the_patched_kubeadm_corefile_answers_clusterset_names_as_the_gateway_and_cluster_names_from_the_api(
) {
    let server = ApiServer::start("cluster-2");
    let dir = tempfile::tempdir().unwrap();
    let gateway = Gateway::start(&[]);
    let gateway_port = gateway.dns;
    let corefile = patched_corefile(&server, dir.path(), gateway_port);

    let (dns, health, ready, metrics, upstream) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let bind = |block: &str| format!("{block}:{dns} {{\n    bind 127.0.0.1");
    let mut host = rewrite(&corefile, ".:53 {", &bind("."));
    host = rewrite(&host, "clusterset.local:53 {", &bind("clusterset.local"));
    host = rewrite(
        &host,
        "kubernetes cluster.local in-addr.arpa ip6.arpa {",
        &format!(
            "kubernetes cluster.local in-addr.arpa ip6.arpa {{\n       kubeconfig {}",
            server.kubeconfig().display()
        ),
    );
    host = rewrite(&host, "health {", &format!("health 127.0.0.1:{health} {{"));
    host = rewrite(&host, "ready\n", &format!("ready 127.0.0.1:{ready}\n"));
    // Both blocks report on the one metrics listener, as in the pod.
    assert_eq!(host.matches("prometheus :9153").count(), 2, "{host}");
    host = host.replace(
        "prometheus :9153",
        &format!("prometheus 127.0.0.1:{metrics}"),
    );
    // An upstream nobody serves: names outside the cluster's zones get SERVFAIL, not the
    // machine's resolver.
    host = rewrite(
        &host,
        "forward . /etc/resolv.conf",
        &format!("forward . 127.0.0.1:{upstream}"),
    );
    let mut coredns = CoreDns::start(&host);
    wait_coredns_ready(&mut coredns, ready, dns, "dns-version.clusterset.local");

    // clusterset.local: the gateway's answers, through CoreDNS.
    for (name, rtype) in [
        ("payment.secure.svc.clusterset.local", "A"),
        ("_http._tcp.payment.secure.svc.clusterset.local", "SRV"),
        ("ledger.secure.svc.clusterset.local", "A"),
        ("ledger-0.cluster-1.ledger.secure.svc.clusterset.local", "A"),
        ("nope.secure.svc.clusterset.local", "A"),
        ("dns-version.clusterset.local", "TXT"),
    ] {
        let ours = answer(gateway_port, name, rtype);
        let through = answer(dns, name, rtype);
        assert_eq!(
            through,
            ours,
            "{name} {rtype} through CoreDNS\n{}",
            coredns.log_tail()
        );
    }
    assert_eq!(
        answer(dns, "payment.secure.svc.clusterset.local", "A").0,
        "NOERROR"
    );
    assert_eq!(
        answer(dns, "nope.secure.svc.clusterset.local", "A").0,
        "NXDOMAIN"
    );

    // cluster.local: the kubernetes plugin, from the real API server.
    let service = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    });
    let path = dir.path().join("web.json");
    std::fs::write(&path, service.to_string()).unwrap();
    kubectl_ok(&server, &["create", "-f", path.to_str().unwrap()]);
    let cluster_ip = kubectl_ok(
        &server,
        &[
            "-n",
            "default",
            "get",
            "service",
            "web",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    wait_until("CoreDNS answers web.default.svc.cluster.local", || {
        dig(dns, &["web.default.svc.cluster.local", "+short"]).trim() == cluster_ip
    });
    assert_eq!(
        answer(dns, "nope.default.svc.cluster.local", "A").0,
        "NXDOMAIN"
    );

    // CoreDNS's own metrics count the clusterset.local queries it forwarded.
    let scraped = http_get(metrics, "/metrics").unwrap();
    assert!(
        scraped
            .lines()
            .any(|l| l.starts_with("coredns_dns_requests_total")
                && l.contains("zone=\"clusterset.local.\"")),
        "no clusterset.local requests in CoreDNS's metrics:\n{}",
        scraped
            .lines()
            .filter(|l| l.starts_with("coredns_dns_requests_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Nothing but clusterset.local went to the gateway: it refuses every other name.
    assert_eq!(
        gateway.refused(),
        0,
        "the gateway was asked a name outside its zone"
    );
}
