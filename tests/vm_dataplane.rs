//! The IPVS dataplane against the real kernel (VM tier): two gateways in network namespaces,
//! joined by a WAN link, program IPVS from one static catalog; a client in cluster-2 reaches
//! backends in cluster-1 through the ClusterSetIP, cluster-2's egress IPVS, the WAN and
//! cluster-1's ingress IPVS. Catalog changes are applied as diffs under live connections; a
//! restart keeps them; drift is repaired; what mcwan does not own is left alone.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

#[path = "support/netns.rs"]
mod netns;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use netns::{link, sh, tcp_backend, wait_for, Netns, Proc};

const MCWAN: &str = env!("CARGO_BIN_EXE_mcwan");

struct Clusterset {
    catalog: tempfile::TempDir,
    client: Netns,
    gw2: Netns,
    gw1: Netns,
    _be1: Netns,
    _be2: Netns,
    _backends: Vec<Proc>,
    /// WireGuard private key files per cluster (WireGuard mode).
    keys: Option<tempfile::TempDir>,
}

const CLUSTERSET: &str = "name: vm\nwan: sdwan\nclusters:\n\
  - {id: cluster-1, index: 1, gateway: {wanAddress: 192.168.77.1}}\n\
  - {id: cluster-2, index: 2, gateway: {wanAddress: 192.168.77.2}}\n";

const POLICY: &str = "apiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata: {name: high}\nspec: {tunnel: business, port: 31111, portCount: 10}\n---\n\
  apiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata: {name: low}\nspec: {tunnel: default, port: 31211, portCount: 10}\n";

/// The clusterset in WireGuard mode, with the gateways' public keys.
fn wireguard_clusterset(keys: &[(String, String)]) -> String {
    format!(
        "name: vm\nwan: wireguard\nclusters:\n\
         - {{id: cluster-1, index: 1, gateway: {{wanAddress: 192.168.77.1, wireguardPublicKey: \"{}\"}}}}\n\
         - {{id: cluster-2, index: 2, gateway: {{wanAddress: 192.168.77.2, wireguardPublicKey: \"{}\"}}}}\n",
        keys[0].1, keys[1].1
    )
}

fn service(name: &str, ready: &[&str]) -> String {
    service_with_policy(name, ready, "high")
}

fn service_with_policy(name: &str, ready: &[&str], policy: &str) -> String {
    let endpoints: String = ready
        .iter()
        .map(|a| format!("- addresses: [\"{a}\"]\n  conditions: {{ready: true}}\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: secure}}\nspec: {{ports: [{{name: http, port: 8080}}]}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}-1, namespace: secure, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: 8080}}]\nendpoints:\n{endpoints}---\n\
         apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: {{name: {name}, namespace: secure, annotations: {{mcw.l7mp.io/mc-wan-policy: {policy}}}}}\n"
    )
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Write beside, then rename: the gateway never reads half a file.
    let tmp = dir.join(format!(".{}.tmp", file.replace('/', "_")));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

impl Clusterset {
    fn new(prefix: &str) -> Self {
        let catalog = tempfile::tempdir().unwrap();
        let d = catalog.path();
        write(d, "clusterset.yaml", CLUSTERSET);
        write(d, "cluster-1/policy.yaml", POLICY);
        write(d, "cluster-2/policy.yaml", POLICY);
        write(
            d,
            "cluster-1/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: secure}\n",
        );
        write(
            d,
            "cluster-2/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: secure}\n",
        );
        write(
            d,
            "cluster-1/payment.yaml",
            &service("payment", &["10.201.1.2"]),
        );
        write(
            d,
            "cluster-1/logging.yaml",
            &service("logging", &["10.201.2.2"]),
        );
        let ns = |n: &str| Netns::new(&format!("{prefix}{n}"));
        let (client, gw2, gw1, be1, be2) = (ns("cl"), ns("gw2"), ns("gw1"), ns("be1"), ns("be2"));
        link(
            &client,
            "eth0",
            "10.200.1.2/24",
            &gw2,
            "lan0",
            "10.200.1.1/24",
        );
        link(
            &gw2,
            "wan0",
            "192.168.77.2/24",
            &gw1,
            "wan0",
            "192.168.77.1/24",
        );
        link(&gw1, "lan1", "10.201.1.1/24", &be1, "eth0", "10.201.1.2/24");
        link(&gw1, "lan2", "10.201.2.1/24", &be2, "eth0", "10.201.2.2/24");
        client.sh("ip route add default via 10.200.1.1");
        be1.sh("ip route add default via 10.201.1.1");
        be2.sh("ip route add default via 10.201.2.1");
        let backends = vec![
            tcp_backend(&be1, "be1", 8080),
            tcp_backend(&be2, "be2", 8080),
        ];
        Self {
            catalog,
            client,
            gw2,
            gw1,
            _be1: be1,
            _be2: be2,
            _backends: backends,
            keys: None,
        }
    }

    /// The same topology in WireGuard mode: one tunnel per class between the gateways;
    /// payment on the high class (business), logging on the low one (default).
    fn wireguard(prefix: &str) -> Self {
        let mut cs = Self::new(prefix);
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Vec::new();
        for cluster in ["cluster-1", "cluster-2"] {
            let private = sh("wg genkey").trim().to_owned();
            let public = sh(&format!("echo {private} | wg pubkey")).trim().to_owned();
            std::fs::write(dir.path().join(cluster), format!("{private}\n")).unwrap();
            keys.push((private, public));
        }
        let d = cs.catalog.path();
        write(
            d,
            "cluster-1/logging.yaml",
            &service_with_policy("logging", &["10.201.2.2"], "low"),
        );
        write(d, "clusterset.yaml", &wireguard_clusterset(&keys));
        cs.keys = Some(dir);
        cs
    }

    fn gateway(&self, ns: &Netns, cluster: &str) -> Proc {
        let catalog = self.catalog.path().to_str().unwrap().to_owned();
        let mut args = vec![
            "gateway".to_owned(),
            "--cluster-id".to_owned(),
            cluster.to_owned(),
            "--catalog".to_owned(),
            catalog,
            "--dataplane".to_owned(),
            "ipvs".to_owned(),
            "--resync-seconds".to_owned(),
            "1".to_owned(),
            // Short, so the drain test sees the end of the grace period.
            "--drain-seconds".to_owned(),
            "4".to_owned(),
        ];
        if let Some(keys) = &self.keys {
            args.push("--wireguard-private-key".to_owned());
            args.push(keys.path().join(cluster).to_str().unwrap().to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let p = ns.spawn(MCWAN, &args);
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            match ns.run(|| http_get(9641, "/readyz")) {
                Some((200, _)) => return p,
                last => assert!(
                    std::time::Instant::now() < deadline,
                    "{cluster}'s gateway not ready after 300 s: {last:?}\n{}",
                    p.log()
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn plan(&self, cluster: &str) -> serde_json::Value {
        let out = sh(&format!(
            "{MCWAN} plan -o json --cluster-id {cluster} --catalog {}",
            self.catalog.path().display()
        ));
        serde_json::from_str(&out).unwrap()
    }

    fn vip(&self, service: &str) -> String {
        let plan = self.plan("cluster-2");
        let import = plan["imports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"]["name"] == service)
            .unwrap();
        import["vip"].as_str().unwrap().to_owned()
    }

    /// The ingress port cluster-1's gateway allocated to `service`'s first port.
    fn ingress_port(&self, service: &str) -> u64 {
        let plan = self.plan("cluster-1");
        let export = plan["exports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"]["name"] == service)
            .unwrap();
        export["ingress"][0]["ingress_port"].as_u64().unwrap()
    }

    /// A connection from the client to `vip:8080`: (stream, greeting backend).
    fn connect(&self, vip: &str) -> (BufReader<TcpStream>, String) {
        let addr = format!("{vip}:8080");
        let stream = self.client.run(move || {
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
        });
        let stream = stream.expect("connect to the ClusterSetIP");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut greeting = String::new();
        reader.read_line(&mut greeting).unwrap();
        (reader, greeting.trim().to_owned())
    }
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    std::io::Read::read_to_string(&mut s, &mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((head.split(' ').nth(1)?.parse().ok()?, body.to_owned()))
}

/// The line echoed back on a live connection.
fn echo(conn: &mut BufReader<TcpStream>, line: &str) -> String {
    conn.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let mut back = String::new();
    conn.read_line(&mut back).unwrap();
    back.trim().to_owned()
}

/// `ipvsadm -Ln` in a namespace, as (virtual server, sorted real servers) lines.
fn ipvs_table(ns: &Netns) -> String {
    ns.sh("ipvsadm -Ln")
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn client_reaches_a_remote_backend_and_changes_apply_as_diffs() {
    let cs = Clusterset::new("d1");
    let _gw1 = cs.gateway(&cs.gw1, "cluster-1");
    let _gw2 = cs.gateway(&cs.gw2, "cluster-2");
    let vip = cs.vip("payment");
    let ingress = cs.ingress_port("payment");

    // What ipvsadm shows is exactly the plan: egress in cluster-2, ingress in cluster-1.
    let t2 = ipvs_table(&cs.gw2);
    assert!(t2.contains(&format!("TCP  {vip}:8080 wrr")), "{t2}");
    assert!(t2.contains(&format!("-> 192.168.77.1:{ingress}")), "{t2}");
    let t1 = ipvs_table(&cs.gw1);
    assert!(
        t1.contains(&format!("TCP  192.168.77.1:{ingress} wrr"))
            && t1.contains("-> 10.201.1.2:8080"),
        "{t1}"
    );
    assert!(cs
        .gw2
        .sh("ip -4 addr show dev mcwan0")
        .contains(&format!("inet {vip}/32")));
    assert!(cs
        .gw2
        .sh("nft list table inet mcwan")
        .contains("masquerade"));

    // Real traffic, and a connection that stays open across the changes below.
    let (mut live, greeting) = cs.connect(&vip);
    assert_eq!(greeting, "be1");
    assert_eq!(echo(&mut live, "before"), "before");

    // A backend added: one real server more, nothing re-created, the live connection goes on.
    write(
        cs.catalog.path(),
        "cluster-1/payment.yaml",
        &service("payment", &["10.201.1.2", "10.201.2.2"]),
    );
    wait_for(
        "the second backend in cluster-1's ingress",
        Duration::from_secs(10),
        || {
            ipvs_table(&cs.gw1)
                .contains("-> 10.201.2.2:8080")
                .then_some(())
        },
    );
    assert_eq!(echo(&mut live, "after-add"), "after-add");
    let greetings: std::collections::BTreeSet<String> =
        (0..6).map(|_| cs.connect(&vip).1).collect();
    assert_eq!(greetings, ["be1".to_owned(), "be2".to_owned()].into());
    let stats = cs.gw2.sh(&format!("ipvsadm -Ln -t {vip}:8080 --stats"));
    assert!(stats.contains("Conns"), "{stats}");

    // A service removed: its virtual servers and VIP go, payment is untouched.
    let logging_vip = cs.vip("logging");
    std::fs::remove_file(cs.catalog.path().join("cluster-1/logging.yaml")).unwrap();
    wait_for(
        "logging's VIP to leave cluster-2",
        Duration::from_secs(10),
        || (!ipvs_table(&cs.gw2).contains(&logging_vip)).then_some(()),
    );
    assert!(!cs
        .gw2
        .sh("ip -4 addr show dev mcwan0")
        .contains(&logging_vip));
    assert_eq!(echo(&mut live, "after-remove"), "after-remove");
    assert!(ipvs_table(&cs.gw2).contains(&format!("TCP  {vip}:8080 wrr")));
}

/// The weight of `real`'s line under the first virtual server of `ipvsadm -Ln` that has one.
fn real_weight(table: &str, real: &str) -> Option<u32> {
    table
        .lines()
        .find(|l| l.trim_start().starts_with("->") && l.contains(real))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn a_leaving_endpoint_drains_its_connections_before_it_goes() {
    let cs = Clusterset::new("d4");
    write(
        cs.catalog.path(),
        "cluster-1/payment.yaml",
        &service("payment", &["10.201.1.2", "10.201.2.2"]),
    );
    let _gw1 = cs.gateway(&cs.gw1, "cluster-1");
    let _gw2 = cs.gateway(&cs.gw2, "cluster-2");
    let vip = cs.vip("payment");
    wait_for(
        "both backends in cluster-1's ingress",
        Duration::from_secs(10),
        || {
            let t = ipvs_table(&cs.gw1);
            (t.contains("-> 10.201.1.2:8080") && t.contains("-> 10.201.2.2:8080")).then_some(())
        },
    );
    // A long-lived connection to be1.
    let mut live = (0..20)
        .map(|_| cs.connect(&vip))
        .find(|(_, greeting)| greeting == "be1")
        .expect("no connection reached be1")
        .0;
    assert_eq!(echo(&mut live, "before"), "before");

    // be1 turns not ready: it drains at weight 0; the live connection goes on, new ones go to be2.
    write(
        cs.catalog.path(),
        "cluster-1/payment.yaml",
        &service("payment", &["10.201.2.2"]),
    );
    wait_for("be1 at weight 0", Duration::from_secs(10), || {
        (real_weight(&ipvs_table(&cs.gw1), "10.201.1.2:8080") == Some(0)).then_some(())
    });
    assert_eq!(echo(&mut live, "while-draining"), "while-draining");
    for _ in 0..6 {
        assert_eq!(cs.connect(&vip).1, "be2");
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(echo(&mut live, "still"), "still", "cut while draining");

    // Once the grace period is over (4 s here), the real server goes.
    drop(live);
    wait_for("be1 deleted", Duration::from_secs(15), || {
        (!ipvs_table(&cs.gw1).contains("10.201.1.2:8080")).then_some(())
    });
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn a_gateway_restart_keeps_established_connections() {
    let cs = Clusterset::new("d2");
    let _gw1 = cs.gateway(&cs.gw1, "cluster-1");
    let mut gw2 = cs.gateway(&cs.gw2, "cluster-2");
    let vip = cs.vip("payment");
    let (mut live, _) = cs.connect(&vip);
    let before = ipvs_table(&cs.gw2);

    assert!(gw2.terminate().success());
    assert_eq!(
        echo(&mut live, "while-down"),
        "while-down",
        "the kernel keeps forwarding"
    );
    let _gw2 = cs.gateway(&cs.gw2, "cluster-2");
    assert_eq!(echo(&mut live, "after-restart"), "after-restart");
    assert_eq!(ipvs_table(&cs.gw2), before, "adopted, not re-created");
    let conns = cs.gw2.sh(&format!("ipvsadm -Ln -t {vip}:8080"));
    assert!(
        conns
            .lines()
            .any(|l| l.contains("->") && l.split_whitespace().nth(4) == Some("1")),
        "the connection is still counted active: {conns}"
    );
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn drift_is_repaired_and_services_of_others_are_left_alone() {
    let cs = Clusterset::new("d3");
    cs.gw2
        .sh("ipvsadm -A -t 10.96.0.10:53 -s rr && ipvsadm -a -t 10.96.0.10:53 -r 10.244.0.2:53 -m");
    let _gw1 = cs.gateway(&cs.gw1, "cluster-1");
    let _gw2 = cs.gateway(&cs.gw2, "cluster-2");
    let vip = cs.vip("payment");
    let ingress = cs.ingress_port("payment");
    cs.gw2.sh(&format!(
        "ipvsadm -d -t {vip}:8080 -r 192.168.77.1:{ingress}"
    ));
    wait_for(
        "the deleted real server to come back",
        Duration::from_secs(10),
        || {
            ipvs_table(&cs.gw2)
                .contains(&format!("-> 192.168.77.1:{ingress}"))
                .then_some(())
        },
    );
    let t = ipvs_table(&cs.gw2);
    assert!(
        t.contains("TCP  10.96.0.10:53 rr") && t.contains("-> 10.244.0.2:53"),
        "another component's service survives: {t}"
    );
}

/// Bytes sent on an interface of a namespace.
fn tx_bytes(ns: &Netns, ifname: &str) -> u64 {
    let stats = ns.sh(&format!("cat /sys/class/net/{ifname}/statistics/tx_bytes"));
    stats.trim().parse().unwrap()
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn wireguard_mode_carries_each_class_through_its_own_tunnel() {
    let cs = Clusterset::wireguard("w1");
    let _gw1 = cs.gateway(&cs.gw1, "cluster-1");
    let _gw2 = cs.gateway(&cs.gw2, "cluster-2");
    let show = cs.gw2.sh("wg show mcw-business");
    assert!(
        show.contains("listening port: 31111") && show.contains("endpoint: 192.168.77.1:31111"),
        "{show}"
    );
    assert!(cs
        .gw2
        .sh("wg show mcw-default")
        .contains("listening port: 31211"));

    let payment = cs.vip("payment");
    let logging = cs.vip("logging");
    let (mut high, greeting) = cs.connect(&payment);
    assert_eq!(greeting, "be1");
    let (mut low, greeting) = cs.connect(&logging);
    assert_eq!(greeting, "be2");

    // 64 KiB over each class: it leaves by that class's tunnel, not the other's.
    let bulk = "x".repeat(1024);
    for (conn, own, other) in [
        (&mut high, "mcw-business", "mcw-default"),
        (&mut low, "mcw-default", "mcw-business"),
    ] {
        let (own0, other0) = (tx_bytes(&cs.gw2, own), tx_bytes(&cs.gw2, other));
        for _ in 0..64 {
            assert_eq!(echo(conn, &bulk), bulk);
        }
        let (own1, other1) = (tx_bytes(&cs.gw2, own), tx_bytes(&cs.gw2, other));
        assert!(
            own1 - own0 >= 64 * 1024,
            "{own} carried {} bytes",
            own1 - own0
        );
        assert!(
            other1 - other0 < 16 * 1024,
            "{other} carried {} bytes of the other class",
            other1 - other0
        );
    }
    let show = cs.gw2.sh("wg show mcw-business");
    assert!(show.contains("latest handshake"), "{show}");
}
