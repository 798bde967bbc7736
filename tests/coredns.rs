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

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/ports.rs"]
mod ports;
use ports::free_port;

#[path = "support/testbed.rs"]
mod testbed;
use testbed::{ApiServer, CoreDns};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The static-catalog gateway of cluster-2 on the example clusterset.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gateway(port: u16) -> Gateway {
    let gw = Gateway(
        Command::new(env!("CARGO_BIN_EXE_mcwan"))
            .args(["gateway", "--cluster-id", "cluster-2", "--catalog"])
            .arg(repo().join("examples/clusterset"))
            .args(["--dns-listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", "127.0.0.1:0", "--health-port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the gateway answers", || {
        dig(port, &["dns-version.clusterset.local", "TXT", "+short"]).trim() == "\"1.0.0\""
    });
    gw
}

fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        // Three tries, as a stub resolver makes: CoreDNS just started on a loaded machine may
        // miss the first datagram of its forward path; a missing answer still shows.
        .args(["@127.0.0.1", "-p", &port.to_string(), "+tries=3", "+time=2"])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils) must be installed: scripts/install-test-deps does it");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The answer section and status of a query: what must agree between two servers.
fn answer(port: u16, name: &str, rtype: &str) -> (String, Vec<String>) {
    let out = dig(port, &[name, rtype, "+noall", "+comments", "+answer"]);
    let status = out
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_owned();
    let mut records: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        // name, TTL, class, type, data: the TTL is each server's own (CoreDNS's cache counts down)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            [&f[..1], &f[2..]].concat().join(" ")
        })
        .collect();
    records.sort();
    (status, records)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `text` with `from` replaced by `to`, which must occur exactly once.
fn rewrite(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the Corefile should hold {from:?} once:\n{text}"
    );
    text.replacen(from, to, 1)
}

fn http_status(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

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
    let gateway_port = free_port();
    let _gateway = gateway(gateway_port);
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http_status(ready, "/ready")
        .is_some_and(|r| r.lines().next().is_some_and(|l| l.contains(" 200 ")))
    {
        assert!(
            coredns.running() && Instant::now() < deadline,
            "CoreDNS not ready:\n{}\n{host}",
            coredns.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // /ready can say 200 before the DNS listeners are bound: CoreDNS runs its plugins'
    // startup (the ready listener, the kubernetes plugin's first sync) before it listens, and
    // a query in between is refused. Ready is when it answers on its own port too.
    wait_until("CoreDNS answers on its DNS port", || {
        answer(dns, "dns-version.clusterset.local", "TXT").0 != "no answer"
    });

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
    let scraped = http_status(metrics, "/metrics").unwrap();
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
}
