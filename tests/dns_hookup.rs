//! The ways a cluster's DNS reaches the mcwan gateway other than a CoreDNS patch
//! (tests/coredns.rs covers deploy/coredns): NodeLocal DNSCache's Corefile, kube-dns's
//! stubDomains (dnsmasq) and OpenShift's DNS operator. Each runs a real resolver on the manifest
//! of deploy/dns in front of a real gateway, and `dig` through it must get the gateway's answers
//! for clusterset.local, while every other name goes to a stand-in for the cluster's DNS or the
//! node's resolvers and never to the gateway (which refuses, and counts, anything outside its
//! zone).
//!
//! Only what ties each manifest to a cluster is rewritten for the host: addresses and ports on
//! 127.0.0.1, the gateway's DNS port for the mcwan-dns Service's 53, each rewrite checked to
//! apply as often as expected. What the real component would do to the manifest (node-cache's
//! __PILLAR__ substitutions, dnsmasq-nanny's flags, the DNS operator's Corefile) is done here
//! as each does it; see docs/dns.md for what is therefore not verified.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

#[path = "support/ports.rs"]
mod ports;
use ports::free_port;

#[path = "support/testbed.rs"]
mod testbed;
use testbed::{ApiServer, CoreDns};

#[path = "support/dns.rs"]
mod dns;
use dns::{
    answer, answer_with_ttls, cluster_set_ip, dig, negative_ttl, repo, rewrite, rewrite_all,
    wait_coredns_ready, wait_dns_port, Gateway, StandIn,
};

/// What the cluster's own DNS answers for every name (kube-dns-upstream, kubedns on 10053).
const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// What the node's upstream resolvers answer for every name.
const UPSTREAM: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The one ConfigMap of manifest `path`: its name, namespace and data, parsed strictly.
fn configmap(path: &str) -> (String, String, BTreeMap<String, String>) {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct ConfigMap {
        api_version: String,
        kind: String,
        metadata: Metadata,
        data: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Metadata {
        name: String,
        namespace: String,
        #[serde(default, rename = "labels")]
        _labels: BTreeMap<String, String>,
    }
    let cm: ConfigMap =
        serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(
        (&cm.api_version[..], &cm.kind[..]),
        ("v1", "ConfigMap"),
        "{path}"
    );
    (cm.metadata.name, cm.metadata.namespace, cm.data)
}

/// Asked through the resolver on `port`, clusterset.local names get exactly the gateway's
/// answers, and the service's A record is its ClusterSetIP.
fn clusterset_names_are_the_gateways(port: u16, gateway: &Gateway, log: impl Fn() -> String) {
    for (name, rtype) in [
        ("payment.secure.svc.clusterset.local", "A"),
        ("_http._tcp.payment.secure.svc.clusterset.local", "SRV"),
        ("ledger.secure.svc.clusterset.local", "A"),
        ("ledger-0.cluster-1.ledger.secure.svc.clusterset.local", "A"),
        ("nope.secure.svc.clusterset.local", "A"),
        ("dns-version.clusterset.local", "TXT"),
    ] {
        let ours = answer(gateway.dns, name, rtype);
        assert_eq!(answer(port, name, rtype), ours, "{name} {rtype}\n{}", log());
    }
    let vip = cluster_set_ip("secure", "payment");
    assert_eq!(
        answer(port, "payment.secure.svc.clusterset.local", "A"),
        (
            "NOERROR".to_owned(),
            vec![format!("payment.secure.svc.clusterset.local. IN A {vip}")]
        ),
        "{}",
        log()
    );
    assert_eq!(
        answer(port, "nope.secure.svc.clusterset.local", "A").0,
        "NXDOMAIN"
    );
}

/// Names outside clusterset.local go to the stand-ins, never to the gateway, and the
/// stand-ins are never asked a clusterset.local name.
fn other_names_are_not_the_gateways(
    port: u16,
    gateway: &Gateway,
    cluster_dns: &StandIn,
    upstream: &StandIn,
) {
    let cluster_name = "web.default.svc.cluster.local";
    assert_eq!(
        dig(port, &[cluster_name, "+short"]).trim(),
        CLUSTER_DNS.to_string()
    );
    assert!(
        cluster_dns.was_asked(cluster_name),
        "{:?}",
        cluster_dns.asked()
    );
    dig(port, &["10.0.96.10.in-addr.arpa", "PTR"]);
    assert!(
        cluster_dns.was_asked("10.0.96.10.in-addr.arpa"),
        "{:?}",
        cluster_dns.asked()
    );
    assert_eq!(
        dig(port, &["example.org", "+short"]).trim(),
        UPSTREAM.to_string()
    );
    assert!(upstream.was_asked("example.org"), "{:?}", upstream.asked());
    assert_eq!(
        gateway.refused(),
        0,
        "the gateway was asked a name outside clusterset.local"
    );
    for standin in [cluster_dns, upstream] {
        let leaked: Vec<String> = standin
            .asked()
            .into_iter()
            .filter(|n| n.ends_with("clusterset.local"))
            .collect();
        assert!(
            leaked.is_empty(),
            "clusterset.local names went elsewhere: {leaked:?}"
        );
    }
}

/// Every answer through `port` (positive TTLs, the negative answer's SOA TTL) lasts no longer
/// than the gateway's `ttl`.
fn ttls_are_at_most(port: u16, ttl: u32) {
    let (_, records) = answer_with_ttls(port, "payment.secure.svc.clusterset.local", "A");
    assert!(!records.is_empty());
    for (record, got) in records {
        assert!(
            got <= ttl,
            "{record} with TTL {got} above the gateway's {ttl}"
        );
    }
    let negative = negative_ttl(port, "nope.secure.svc.clusterset.local").unwrap();
    assert!(
        negative <= ttl,
        "negative TTL {negative} above the gateway's {ttl}"
    );
}

// ---------------------------------------------------------------------------------------------
// NodeLocal DNSCache

/// deploy/dns/nodelocaldns-clusterset.yaml's Corefile as node-cache runs it, on 127.0.0.1:
/// the install's substitutions (cluster.local, the local address; no kube-dns address to bind,
/// as with kube-proxy in IPVS mode), then node-cache's own (the cluster DNS and the upstream
/// servers), then the host's ports.
fn node_local_corefile(
    with_mcwan_block: bool,
    gateway: &Gateway,
    cluster_dns: &StandIn,
    upstream: &StandIn,
    dns: u16,
    health: u16,
    metrics: u16,
) -> String {
    let (name, namespace, data) = configmap("deploy/dns/nodelocaldns-clusterset.yaml");
    assert_eq!(
        (&name[..], &namespace[..]),
        ("node-local-dns", "kube-system")
    );
    let corefile = &data["Corefile"];
    assert_eq!(
        corefile.matches("clusterset.local:53 {").count(),
        1,
        "{corefile}"
    );
    let mut host = rewrite(corefile, "__PILLAR__DNS__DOMAIN__", "cluster.local");
    host = rewrite_all(&host, "__PILLAR__LOCAL__DNS__", "127.0.0.1", 6);
    host = rewrite_all(&host, " __PILLAR__DNS__SERVER__", "", 5);
    host = rewrite_all(
        &host,
        "__PILLAR__CLUSTER__DNS__",
        &format!("127.0.0.1:{}", cluster_dns.port),
        3,
    );
    host = rewrite(
        &host,
        "__PILLAR__UPSTREAM__SERVERS__",
        &format!("127.0.0.1:{}", upstream.port),
    );
    assert!(!host.contains("__PILLAR__"), "{host}");
    host = rewrite(
        &host,
        "MCWAN_DNS_IP:53",
        &format!("127.0.0.1:{}", gateway.dns),
    );
    host = rewrite_all(&host, ":53 {", &format!(":{dns} {{"), 5);
    host = rewrite_all(
        &host,
        "prometheus :9253",
        &format!("prometheus 127.0.0.1:{metrics}"),
        5,
    );
    host = rewrite(
        &host,
        "health 127.0.0.1:8080",
        &format!("health 127.0.0.1:{health}"),
    );
    if !with_mcwan_block {
        let begin = host.find("# mcwan: begin").unwrap();
        let end = host.find("# mcwan: end\n").unwrap() + "# mcwan: end\n".len();
        host.replace_range(begin..end, "");
    }
    host
}

/// The server block node-cache appends to its Corefile for each stub domain of the kube-dns
/// ConfigMap it mounts (its stubDomainBlock: `cache 30`, bound to the local addresses).
fn node_cache_stub_blocks(
    stub: &BTreeMap<String, Vec<String>>,
    local_ip: &str,
    port: u16,
) -> String {
    stub.iter()
        .map(|(domain, servers)| {
            format!(
                "\n{domain}:{port} {{\n    errors\n    cache 30\n    bind {local_ip}\n    forward . {}\n}}\n",
                servers.join(" ")
            )
        })
        .collect()
}

#[test]
fn node_local_dns_cache_sends_clusterset_names_to_the_gateway_and_caches_them_no_longer_than_its_ttl(
) {
    // A TTL below CoreDNS's default 5 s cache floor: the block must not stretch it.
    let gateway = Gateway::start(&["--ttl", "1"]);
    let cluster_dns = StandIn::start(CLUSTER_DNS);
    let upstream = StandIn::start(UPSTREAM);
    let (dns, health, metrics) = (free_port(), free_port(), free_port());
    let corefile = node_local_corefile(
        true,
        &gateway,
        &cluster_dns,
        &upstream,
        dns,
        health,
        metrics,
    );
    let mut cache = CoreDns::start(&corefile);
    wait_dns_port(dns, "dns-version.clusterset.local", || {
        assert!(
            cache.running(),
            "node-local-dns died:\n{}\n{corefile}",
            cache.log_tail()
        );
    });

    clusterset_names_are_the_gateways(dns, &gateway, || cache.log_tail());
    other_names_are_not_the_gateways(dns, &gateway, &cluster_dns, &upstream);
    ttls_are_at_most(dns, 1);

    // The cache answers a repeated name itself within the TTL, and asks the gateway again
    // once the TTL has passed.
    let name = "logging.insecure.svc.clusterset.local";
    let asked = || gateway.answered(Some("A"), "NOERROR");
    let before = asked();
    dig(dns, &[name]);
    dig(dns, &[name]);
    assert_eq!(
        asked() - before,
        1,
        "the second query within 1 s was not cached"
    );
    std::thread::sleep(Duration::from_millis(1_500));
    dig(dns, &[name]);
    assert_eq!(
        asked() - before,
        2,
        "the cache kept the answer past its TTL"
    );

    let scraped = dns::http_get(metrics, "/metrics").unwrap();
    assert!(
        scraped
            .lines()
            .any(|l| l.starts_with("coredns_dns_requests_total")
                && l.contains("zone=\"clusterset.local.\"")),
        "no clusterset.local requests in node-local-dns's metrics"
    );
}

#[test]
fn node_cache_serves_the_kube_dns_stub_domain_alone_and_refuses_it_beside_the_mcwan_block() {
    let gateway = Gateway::start(&[]);
    let cluster_dns = StandIn::start(CLUSTER_DNS);
    let upstream = StandIn::start(UPSTREAM);
    let stub = kube_dns_stub_domains(&gateway);

    // node-local-dns's default Corefile and the block node-cache writes from the kube-dns
    // ConfigMap's stub domain: clusterset.local reaches the gateway without mcwan's block.
    let (dns, health, metrics) = (free_port(), free_port(), free_port());
    let corefile = node_local_corefile(
        false,
        &gateway,
        &cluster_dns,
        &upstream,
        dns,
        health,
        metrics,
    ) + &node_cache_stub_blocks(&stub, "127.0.0.1", dns);
    assert!(!corefile.contains("mcwan"), "{corefile}");
    let mut cache = CoreDns::start(&corefile);
    wait_dns_port(dns, "dns-version.clusterset.local", || {
        assert!(
            cache.running(),
            "node-local-dns died:\n{}\n{corefile}",
            cache.log_tail()
        );
    });
    clusterset_names_are_the_gateways(dns, &gateway, || cache.log_tail());
    other_names_are_not_the_gateways(dns, &gateway, &cluster_dns, &upstream);
    ttls_are_at_most(dns, 5);
    drop(cache);

    // Both, as docs/dns.md warns: CoreDNS refuses the second clusterset.local block.
    let (dns, health, metrics) = (free_port(), free_port(), free_port());
    let corefile = node_local_corefile(
        true,
        &gateway,
        &cluster_dns,
        &upstream,
        dns,
        health,
        metrics,
    ) + &node_cache_stub_blocks(&stub, "127.0.0.1", dns);
    let mut both = CoreDns::start(&corefile);
    dns::wait_until("CoreDNS refuses two clusterset.local blocks", || {
        !both.running()
    });
    assert!(
        both.log_tail().contains("already defined"),
        "{}",
        both.log_tail()
    );
}

// ---------------------------------------------------------------------------------------------
// kube-dns stubDomains (dnsmasq)

/// kube-dns's rules for stubDomains (its config validation): each domain a DNS-1123
/// subdomain, each server an IP address, `IP:port`, or a name.
fn check_stub_domains(stub: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let subdomain_ok = |d: &str| d.len() <= 253 && d.split('.').all(label_ok);
    for (domain, servers) in stub {
        if !subdomain_ok(domain) {
            return Err(format!("stubDomains: invalid domain name {domain:?}"));
        }
        for server in servers {
            let host = match server.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => {
                    port.parse::<u16>().map_err(|_| {
                        format!("stubDomains.{domain}: invalid nameserver {server:?}")
                    })?;
                    host
                }
                _ => server,
            };
            if host.parse::<IpAddr>().is_err() && !subdomain_ok(server) {
                return Err(format!(
                    "stubDomains.{domain}: invalid nameserver {server:?}"
                ));
            }
        }
    }
    Ok(())
}

/// The dnsmasq flags that dnsmasq-nanny adds for `stub` and `upstream`: `--server
/// /DOMAIN/IP#PORT` per stub server (its `IP:port` written with dnsmasq's `#`), `--server
/// IP#PORT` per upstream and then `--no-resolv`.
fn nanny_flags(stub: &BTreeMap<String, Vec<String>>, upstream: &[String]) -> Vec<String> {
    let munge = |s: &str| match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => format!("{host}#{port}"),
        _ => s.to_owned(),
    };
    let mut flags = Vec::new();
    for (domain, servers) in stub {
        for server in servers {
            flags.extend([
                "--server".to_owned(),
                format!("/{domain}/{}", munge(server)),
            ]);
        }
    }
    for server in upstream {
        flags.extend(["--server".to_owned(), munge(server)]);
    }
    if !upstream.is_empty() {
        flags.push("--no-resolv".to_owned());
    }
    flags
}

/// The stubDomains of deploy/dns/kube-dns-stubdomains.yaml, checked as kube-dns checks them,
/// with the manifest's one tie, the mcwan-dns ClusterIP (port 53), made the gateway's address
/// and port (in the `IP:port` form kube-dns also accepts).
fn kube_dns_stub_domains(gateway: &Gateway) -> BTreeMap<String, Vec<String>> {
    let (name, namespace, data) = configmap("deploy/dns/kube-dns-stubdomains.yaml");
    assert_eq!((&name[..], &namespace[..]), ("kube-dns", "kube-system"));
    assert_eq!(data.keys().collect::<Vec<_>>(), ["stubDomains"]);
    let stub: BTreeMap<String, Vec<String>> = serde_json::from_str(&data["stubDomains"]).unwrap();
    assert_eq!(
        stub,
        BTreeMap::from([(
            "clusterset.local".to_owned(),
            vec!["MCWAN_DNS_IP".to_owned()]
        )])
    );
    let stub: BTreeMap<String, Vec<String>> = serde_json::from_str(&rewrite(
        &data["stubDomains"],
        "\"MCWAN_DNS_IP\"",
        &format!("\"127.0.0.1:{}\"", gateway.dns),
    ))
    .unwrap();
    check_stub_domains(&stub).unwrap();
    stub
}

/// dnsmasq, killed when dropped.
struct Dnsmasq {
    child: Child,
    /// Holds its log and pid file.
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dnsmasq.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_rules_of_kube_dns_stub_domains_refuse_what_kube_dns_refuses() {
    let stub = |d: &str, s: &str| BTreeMap::from([(d.to_owned(), vec![s.to_owned()])]);
    assert!(check_stub_domains(&stub("clusterset.local", "10.96.0.53")).is_ok());
    assert!(check_stub_domains(&stub("clusterset.local", "10.96.0.53:5353")).is_ok());
    assert!(check_stub_domains(&stub("Clusterset.local", "10.96.0.53")).is_err());
    assert!(check_stub_domains(&stub("clusterset.local", "10.96.0.53:99999")).is_err());
    assert!(check_stub_domains(&stub("clusterset.local", "MCWAN_DNS_IP")).is_err());
    assert_eq!(
        nanny_flags(&stub("clusterset.local", "10.96.0.53"), &[]),
        ["--server", "/clusterset.local/10.96.0.53"]
    );
    assert_eq!(
        nanny_flags(
            &stub("clusterset.local", "127.0.0.1:5353"),
            &["10.0.0.2".to_owned()]
        ),
        [
            "--server",
            "/clusterset.local/127.0.0.1#5353",
            "--server",
            "10.0.0.2",
            "--no-resolv"
        ]
    );
}

#[test]
fn kube_dns_stub_domain_in_dnsmasq_sends_clusterset_names_to_the_gateway() {
    let gateway = Gateway::start(&[]);
    let kubedns = StandIn::start(CLUSTER_DNS);
    let upstream = StandIn::start(UPSTREAM);

    let stub = kube_dns_stub_domains(&gateway);

    // kube-dns's dnsmasq container: the arguments of its Deployment (kubedns on
    // 127.0.0.1#10053, here a stand-in), then what the nanny adds for the ConfigMap; the
    // cluster's upstreamNameservers (none in the manifest) stand for the node's resolv.conf.
    let kube_dns_args = [
        "-k",
        "--cache-size=1000",
        "--no-negcache",
        "--dns-loop-detect",
        "--log-facility=-",
        "--server=/cluster.local/127.0.0.1#10053",
        "--server=/in-addr.arpa/127.0.0.1#10053",
        "--server=/ip6.arpa/127.0.0.1#10053",
    ];
    let kubedns_at = format!("127.0.0.1#{}", kubedns.port);
    let mut args: Vec<String> = kube_dns_args
        .iter()
        .map(|a| a.replace("127.0.0.1#10053", &kubedns_at))
        .collect();
    args.extend(nanny_flags(
        &stub,
        &[format!("127.0.0.1:{}", upstream.port)],
    ));
    assert!(
        args.contains(&format!("/clusterset.local/127.0.0.1#{}", gateway.dns)),
        "{args:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("dnsmasq.log")).unwrap();
    let mut dnsmasq = Dnsmasq {
        child: Command::new("dnsmasq")
            .args(&args)
            // The host's ties: one address and port, no system files.
            .args([&format!("--port={port}"), "--listen-address=127.0.0.1"])
            .args(["--bind-interfaces", "--no-hosts", "--conf-file=/dev/null"])
            .arg(format!(
                "--pid-file={}",
                dir.path().join("dnsmasq.pid").display()
            ))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("dnsmasq (dnsmasq-base) must be installed: scripts/install-test-deps does it"),
        dir,
    };
    wait_dns_port(port, "dns-version.clusterset.local", || {
        if !matches!(dnsmasq.child.try_wait(), Ok(None)) {
            panic!("dnsmasq died:\n{}", dnsmasq.log_tail());
        }
    });
    clusterset_names_are_the_gateways(port, &gateway, || dnsmasq.log_tail());
    other_names_are_not_the_gateways(port, &gateway, &kubedns, &upstream);
    ttls_are_at_most(port, 5);
}

// ---------------------------------------------------------------------------------------------
// OpenShift's DNS operator

/// The fields of `dns.operator.openshift.io/v1` DNS that deploy/dns/openshift-dns.yaml may
/// set (named as in the operator's API), parsed strictly: a misspelt or unexpected field fails.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OpenShiftDns {
    api_version: String,
    kind: String,
    metadata: OpenShiftMetadata,
    spec: OpenShiftDnsSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenShiftMetadata {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenShiftDnsSpec {
    servers: Vec<OpenShiftServer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OpenShiftServer {
    name: String,
    zones: Vec<String>,
    forward_plugin: ForwardPlugin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ForwardPlugin {
    upstreams: Vec<String>,
    #[serde(default)]
    policy: ForwardingPolicy,
    #[serde(default)]
    protocol_strategy: ProtocolStrategy,
}

#[derive(Debug, Default, Deserialize)]
enum ForwardingPolicy {
    #[default]
    Random,
    RoundRobin,
    Sequential,
}

#[derive(Debug, Default, Deserialize)]
enum ProtocolStrategy {
    #[default]
    #[serde(rename = "")]
    Default,
    #[serde(rename = "TCP")]
    Tcp,
}

/// The server block the DNS operator writes into the dns-default ConfigMap for `server`, with
/// its default cache (900 s positive, 30 s negative at most), log level (Normal) and port
/// (5353, behind the dns-default Service's 53), cleartext transport.
fn operator_block(server: &OpenShiftServer) -> String {
    let zones: String = server.zones.iter().map(|z| format!("{z}:5353 ")).collect();
    let upstreams: String = server
        .forward_plugin
        .upstreams
        .iter()
        .map(|u| format!(" {u}"))
        .collect();
    let policy = match server.forward_plugin.policy {
        ForwardingPolicy::Random => "random",
        ForwardingPolicy::RoundRobin => "round_robin",
        ForwardingPolicy::Sequential => "sequential",
    };
    let force_tcp = match server.forward_plugin.protocol_strategy {
        ProtocolStrategy::Default => "",
        ProtocolStrategy::Tcp => "\n        force_tcp",
    };
    format!(
        "# {name}\n{zones}{{\n    prometheus 127.0.0.1:9153\n    forward .{upstreams} {{\n        policy {policy}{force_tcp}\n    }}\n    errors\n    log . {{\n        class error\n    }}\n    bufsize 1232\n    cache 900 {{\n        denial 9984 30\n    }}\n}}\n",
        name = server.name
    )
}

fn openshift_dns() -> OpenShiftDns {
    let path = "deploy/dns/openshift-dns.yaml";
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_openshift_dns_object_has_the_operators_shape_and_renders_the_committed_block() {
    let dns = openshift_dns();
    assert_eq!(dns.api_version, "operator.openshift.io/v1");
    assert_eq!(dns.kind, "DNS");
    assert_eq!(
        dns.metadata.name, "default",
        "the operator reads only `default`"
    );
    let [server] = &dns.spec.servers[..] else {
        panic!("one server expected: {:?}", dns.spec.servers)
    };
    assert_eq!(server.zones, ["clusterset.local"]);
    assert_eq!(server.forward_plugin.upstreams, ["MCWAN_DNS_IP:53"]);
    assert!(!server.name.is_empty());
    assert_eq!(
        operator_block(server),
        read("deploy/dns/openshift-clusterset.server"),
        "deploy/dns/openshift-clusterset.server is not what the operator renders from openshift-dns.yaml"
    );
    // A field the operator does not know fails, as the strict parse is meant to.
    let misspelt =
        read("deploy/dns/openshift-dns.yaml").replace("forwardPlugin:", "forwardplugin:");
    assert!(serde_saphyr::from_str::<OpenShiftDns>(&misspelt).is_err());
    let bad_policy =
        read("deploy/dns/openshift-dns.yaml").replace("policy: Sequential", "policy: Fastest");
    assert!(serde_saphyr::from_str::<OpenShiftDns>(&bad_policy).is_err());
}

#[test]
fn openshift_dns_operators_server_block_sends_clusterset_names_to_the_gateway() {
    let gateway = Gateway::start(&[]);
    let cluster_dns = StandIn::start(CLUSTER_DNS);
    let upstream = StandIn::start(UPSTREAM);
    let block = read("deploy/dns/openshift-clusterset.server");
    let (dns, ready, metrics) = (free_port(), free_port(), free_port());

    let mut host = rewrite(
        &block,
        "clusterset.local:5353 {",
        &format!("clusterset.local:{dns} {{\n    bind 127.0.0.1"),
    );
    host = rewrite(
        &host,
        "MCWAN_DNS_IP:53",
        &format!("127.0.0.1:{}", gateway.dns),
    );
    host = rewrite(
        &host,
        "prometheus 127.0.0.1:9153",
        &format!("prometheus 127.0.0.1:{metrics}"),
    );
    // The operator's own `.:5353` block, as it renders it by default, with its kubernetes
    // plugin (which needs an API server: tests/coredns.rs runs one) replaced by a forward of
    // cluster.local to a stand-in, and /etc/resolv.conf by a stand-in upstream.
    let corefile = format!(
        "{host}cluster.local:{dns} in-addr.arpa:{dns} ip6.arpa:{dns} {{
    bind 127.0.0.1
    forward . 127.0.0.1:{cluster}
}}
.:{dns} {{
    bind 127.0.0.1
    bufsize 1232
    errors
    log . {{
        class error
    }}
    ready 127.0.0.1:{ready}
    prometheus 127.0.0.1:{metrics}
    forward . 127.0.0.1:{upstream} {{
        policy sequential
    }}
    cache 900 {{
        denial 9984 30
    }}
}}
",
        cluster = cluster_dns.port,
        upstream = upstream.port,
    );
    let mut coredns = CoreDns::start(&corefile);
    wait_coredns_ready(&mut coredns, ready, dns, "dns-version.clusterset.local");

    clusterset_names_are_the_gateways(dns, &gateway, || coredns.log_tail());
    other_names_are_not_the_gateways(dns, &gateway, &cluster_dns, &upstream);
    // The operator's cache (900 s at most, CoreDNS's 5 s floor) keeps mcwan's default 5 s TTL.
    ttls_are_at_most(dns, 5);
}

// ---------------------------------------------------------------------------------------------
// The ConfigMaps on a real API server

#[test]
fn the_dns_configmaps_are_accepted_by_kube_apiserver() {
    let server = ApiServer::start("dns-hookup");
    for path in [
        "deploy/dns/nodelocaldns-clusterset.yaml",
        "deploy/dns/kube-dns-stubdomains.yaml",
    ] {
        let (name, namespace, data) = configmap(path);
        let out = server
            .kubectl()
            .args(["apply", "--server-side", "-f"])
            .arg(repo().join(path))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (key, value) in data {
            let out = server
                .kubectl()
                .args(["-n", &namespace, "get", "configmap", &name])
                .arg(format!("-o=jsonpath={{.data.{key}}}"))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), value, "{path}: {key}");
        }
    }
}
