//! `mcwan gateway` as a user runs it: the binary on the example catalog, queried with `dig` over
//! real UDP and TCP sockets; catalog edits applied live; SIGTERM handled.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::net::{ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/ports.rs"]
mod ports;
use ports::free_port;

struct Gateway {
    child: Child,
    port: u16,
    catalog: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Starts the gateway for `cluster` on a copy of the example catalog and waits until it answers.
fn start(cluster: &str) -> Gateway {
    start_with_health_port(cluster, 0)
}

/// [`start`], answering health probes on UDP `health_port` (0: none).
fn start_with_health_port(cluster: &str, health_port: u16) -> Gateway {
    let catalog = tempfile::tempdir().unwrap();
    copy_dir(
        &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clusterset")),
        catalog.path(),
    );
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(["gateway", "--cluster-id", cluster, "--catalog"])
        .arg(catalog.path())
        .args(["--dns-listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", "127.0.0.1:0"])
        .args(["--health-port", &health_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gw = Gateway {
        child,
        port,
        catalog,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while dig(gw.port, &["dns-version.clusterset.local", "TXT", "+short"]).trim() != "\"1.0.0\"" {
        assert!(
            Instant::now() < deadline,
            "the gateway did not start answering"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    gw
}

/// Runs dig against the gateway; panics (the test fails) if dig is missing.
fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+tries=1", "+time=1"])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils) must be installed: scripts/install-test-deps does it");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The response code of an A query for `name`, over a raw UDP socket: cheap enough to poll.
fn rcode(port: u16, name: &str) -> Option<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let mut query = vec![0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send_to(&query, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    (n >= 12 && buf[..2] == [0x12, 0x34]).then_some(buf[3] & 0x0f)
}

fn status(answer: &str) -> &str {
    answer
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
}

/// `mcwan plan -o json` of `cluster` on `catalog`.
fn plan_json(catalog: &Path, cluster: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(["plan", "--cluster-id", cluster, "-o", "json", "--catalog"])
        .arg(catalog)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn plan_vip(catalog: &Path, cluster: &str, service: &str) -> String {
    plan_json(catalog, cluster)["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["name"] == service)
        .and_then(|i| i["vip"].as_str())
        .unwrap()
        .to_owned()
}

#[test]
fn the_example_resolves_over_udp_and_tcp_as_the_plan_says() {
    let gw = start("cluster-2");
    let vip = plan_vip(gw.catalog.path(), "cluster-2", "payment");
    wait_rcode(
        gw.port,
        "payment.secure.svc.clusterset.local",
        0,
        "payment never resolved",
    );
    assert_eq!(
        dig(gw.port, &["payment.secure.svc.clusterset.local", "+short"]).trim(),
        vip
    );
    assert_eq!(
        dig(
            gw.port,
            &["payment.secure.svc.clusterset.local", "+short", "+tcp"]
        )
        .trim(),
        vip
    );
    let srv = dig(
        gw.port,
        &[
            "_http._tcp.payment.secure.svc.clusterset.local",
            "SRV",
            "+short",
        ],
    );
    assert!(
        srv.trim()
            .ends_with("8080 payment.secure.svc.clusterset.local."),
        "{srv}"
    );
    let headless = dig(
        gw.port,
        &[
            "ledger-0.cluster-1.ledger.secure.svc.clusterset.local",
            "+short",
        ],
    );
    assert_eq!(headless.trim(), "10.1.0.31");
    let forbidden = dig(gw.port, &["cluster-1.ledger.secure.svc.clusterset.local"]);
    assert_eq!(status(&forbidden), "NXDOMAIN");
    let outside = dig(gw.port, &["example.com"]);
    assert_eq!(status(&outside), "REFUSED");
}

#[test]
fn a_catalog_change_is_answerable_within_100ms() {
    let gw = start("cluster-2");
    let name = "orders.secure.svc.clusterset.local";
    assert_eq!(status(&dig(gw.port, &[name])), "NXDOMAIN");
    let manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: orders, namespace: secure}\nspec: {ports: [{name: http, port: 80}]}\n---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: orders\n  namespace: secure\n  annotations: {mcw.l7mp.io/mc-wan-policy: sd-wan-priority-low}\n";
    // The low class has one ingress port, taken by logging: widen it in the same edit.
    let policies = gw.catalog.path().join("cluster-1/wanpolicies.yaml");
    let widened = std::fs::read_to_string(&policies)
        .unwrap()
        .replace("port: 31112", "port: 31112\n  portCount: 10");
    let tmp = gw.catalog.path().join("cluster-1/.orders.tmp");
    std::fs::write(&tmp, manifest).unwrap();
    let started = Instant::now();
    std::fs::write(&policies, widened).unwrap();
    std::fs::rename(&tmp, gw.catalog.path().join("cluster-1/orders.yaml")).unwrap();
    let mut answered = None;
    while started.elapsed() < Duration::from_secs(5) {
        if rcode(gw.port, name) == Some(0) {
            answered = Some(started.elapsed());
            break;
        }
    }
    let took = answered.expect("the new export never resolved");
    eprintln!("catalog change answerable after {took:?}");
    assert!(took < Duration::from_millis(100), "took {took:?}");
}

#[test]
fn a_file_rewritten_in_place_in_two_halves_is_never_read_half_written() {
    use std::io::Write as _;
    let gw = start("cluster-2");
    let name = "payment.secure.svc.clusterset.local";
    // `start` waits for the zone's apex; the catalog's first load follows it closely.
    let deadline = Instant::now() + Duration::from_secs(5);
    while rcode(gw.port, name) != Some(0) {
        assert!(Instant::now() < deadline, "payment never resolved");
        std::thread::sleep(Duration::from_millis(10));
    }
    let path = gw.catalog.path().join("cluster-1/payment.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Cut where the first half is a valid file of its own (the Service without its export):
    // only waiting for the writer to close the file keeps the export from blinking out.
    let cut = text.find("\n---\n").expect("several documents") + 5;
    let (first, second) = text.split_at(cut);
    let prober = {
        let port = gw.port;
        std::thread::spawn(move || {
            let started = Instant::now();
            let (mut asked, mut nxdomain) = (0, 0);
            while started.elapsed() < Duration::from_millis(600) {
                asked += 1;
                if rcode(port, name) == Some(3) {
                    nxdomain += 1;
                }
            }
            (asked, nxdomain)
        })
    };
    // Truncate and write the first half, then the rest 40 ms later, as a non-atomic writer does.
    std::thread::sleep(Duration::from_millis(100));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(first.as_bytes()).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(40));
    file.write_all(second.as_bytes()).unwrap();
    drop(file);
    let (asked, nxdomain) = prober.join().unwrap();
    assert!(asked > 50, "{asked}");
    assert_eq!(nxdomain, 0, "{nxdomain} of {asked} answers were NXDOMAIN");
}

#[test]
fn a_broken_catalog_keeps_the_last_good_zone() {
    let gw = start("cluster-2");
    // The apex answers before the catalog's first plan is served: wait for the service.
    wait_rcode(
        gw.port,
        "payment.secure.svc.clusterset.local",
        0,
        "payment never resolved",
    );
    let before = dig(gw.port, &["payment.secure.svc.clusterset.local", "+short"]);
    assert!(!before.trim().is_empty(), "no address for payment");
    std::fs::write(
        gw.catalog.path().join("clusterset.yaml"),
        "clusters: [oops\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        dig(gw.port, &["payment.secure.svc.clusterset.local", "+short"]),
        before
    );
}

#[test]
fn health_probes_are_echoed_on_the_gateways_own_addresses_and_nothing_else_is() {
    let health = free_port();
    let gw = start_with_health_port("cluster-2", health);
    // SD-WAN mode on loopback addresses: cluster-2's gateway is 127.0.0.12 on every class.
    std::fs::write(
        gw.catalog.path().join("clusterset.yaml"),
        "name: example\nwan: sdwan\nclusters:\n\
         - {id: cluster-1, index: 1, gateway: {wanAddress: 127.0.0.11, sdwanEdges: {business: 127.0.0.21, default: 127.0.0.22}}}\n\
         - {id: cluster-2, index: 2, gateway: {wanAddress: 127.0.0.12, sdwanEdges: {business: 127.0.0.21, default: 127.0.0.22}}}\n",
    )
    .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let probe = [&b"MCWAN-HC1"[..], &7u64.to_be_bytes()].concat();
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        socket.send_to(&probe, ("127.0.0.12", health)).unwrap();
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            assert_eq!(&buf[..n], &probe[..]);
            assert_eq!(
                from,
                ("127.0.0.12", health)
                    .to_socket_addrs()
                    .unwrap()
                    .next()
                    .unwrap()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no echo on the gateway's own address"
        );
    }
    // Junk, a probe with trailing bytes (amplification), and a probe to an address that is not
    // the gateway's, get no answer.
    for junk in [&b"hello"[..], &[&probe[..], b"more"].concat()] {
        socket.send_to(junk, ("127.0.0.12", health)).unwrap();
        assert!(socket.recv_from(&mut buf).is_err(), "answered {junk:?}");
    }
    socket.send_to(&probe, ("127.0.0.1", health)).unwrap();
    assert!(socket.recv_from(&mut buf).is_err(), "answered on 127.0.0.1");
}

#[test]
fn sigterm_stops_the_gateway_cleanly() {
    // With a health responder, whose thread must stop too.
    let mut gw = start_with_health_port("cluster-2", free_port());
    let pid = gw.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_and_the_gateway_keeps_answering() {
    let mut gw = start("cluster-2");
    // The apex answers as soon as DNS listens, maybe before the catalog's first plan: wait for
    // the service itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    let before = loop {
        let answer = dig(gw.port, &["payment.secure.svc.clusterset.local", "+short"]);
        if !answer.trim().is_empty() {
            break answer;
        }
        assert!(Instant::now() < deadline, "payment never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    for _ in 0..3 {
        let pid = gw.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "the gateway ended on SIGHUP"
    );
    assert_eq!(
        dig(gw.port, &["payment.secure.svc.clusterset.local", "+short"]),
        before
    );
}

#[test]
fn an_unknown_cluster_id_is_reported_but_dns_still_serves_the_apex() {
    let gw = start("cluster-9");
    assert_eq!(
        status(&dig(gw.port, &["payment.secure.svc.clusterset.local"])),
        "NXDOMAIN"
    );
    assert!(
        dig(gw.port, &["clusterset.local", "SOA", "+short"]).contains("ns.dns.clusterset.local.")
    );
}

#[test]
fn without_a_catalog_the_gateway_serves_the_embedded_example() {
    let port = free_port();
    let admin = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args([
            "gateway",
            "--dns-listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gw = Gateway {
        child,
        port,
        catalog: tempfile::tempdir().unwrap(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while rcode(gw.port, "payment.secure.svc.clusterset.local") != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the embedded example never resolved"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let vip = dig(gw.port, &["payment.secure.svc.clusterset.local", "+short"]);
    let example = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clusterset"));
    assert_eq!(vip.trim(), plan_vip(&example, "cluster-2", "payment"));

    // Its peers are not on this host: nothing is probed (the prober would have published
    // mcwan_peer_up for each of them within its first tick).
    std::thread::sleep(Duration::from_millis(500));
    let metrics = http_get(admin, "/metrics");
    assert!(metrics.contains("mcwan_reconciles_total"), "{metrics}");
    assert!(!metrics.contains("mcwan_peer_up{"), "{metrics}");
}

#[test]
fn the_embedded_example_refuses_to_program_the_dataplane() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args([
            "gateway",
            "--dataplane",
            "ipvs",
            "--dns-listen",
            "127.0.0.1:0",
        ])
        .args(["--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dataplane ipvs needs a clusterset"), "{err}");
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn plan_prints_terminal_control_characters_escaped() {
    let catalog = tempfile::tempdir().unwrap();
    copy_dir(
        &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clusterset")),
        catalog.path(),
    );
    // A WAN policy name that would clear the screen and recolour it, if printed raw.
    std::fs::write(
        catalog.path().join("cluster-1/evil.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: evil, namespace: secure}\nspec: {ports: [{port: 80}]}\n---\n\
         apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: evil\n  namespace: secure\n  \
         annotations: {mcw.l7mp.io/mc-wan-policy: \"\\e[2J\\e[31mhigh\"}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(["plan", "--cluster-id", "cluster-1", "--catalog"])
        .arg(catalog.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("secure/evil"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains(r"\u{1b}[2J"), "{text}");
}

/// The plan's egress virtual servers of `service`, as JSON.
fn plan_egress(catalog: &Path, cluster: &str, service: &str) -> Vec<serde_json::Value> {
    plan_json(catalog, cluster)["ipvs"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|vs| vs["service"]["name"] == service)
        .cloned()
        .collect()
}

/// Waits (10 s at most) until an A query for `name` gets response code `code`.
fn wait_rcode(port: u16, name: &str, code: u8, otherwise: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while rcode(port, name) != Some(code) {
        assert!(Instant::now() < deadline, "{otherwise}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mcwan_cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn mcwan_import_into_the_static_catalog_is_answered_as_the_export_would_be() {
    let gw = start("cluster-2");
    let dir = gw.catalog.path().to_str().unwrap().to_owned();
    let read = plan_egress(gw.catalog.path(), "cluster-2", "payment");
    assert_eq!(read.len(), 1);
    // cluster-1's catalog no longer lists the export: cluster-2 imports it from its gateway.
    std::fs::remove_file(gw.catalog.path().join("cluster-1/payment.yaml")).unwrap();
    let name = "payment.secure.svc.clusterset.local";
    wait_rcode(gw.port, name, 3, "payment still answered");
    let (ok, out, err) = mcwan_cli(&[
        "import",
        "payment/secure",
        "--ingress-gw",
        "192.0.2.1",
        "--wan-policy",
        "high",
        "--port",
        "http=8080",
        "--catalog",
        &dir,
        "--cluster-id",
        "cluster-2",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("WANPolicy sd-wan-priority-high"), "{out}");
    wait_rcode(gw.port, name, 0, "the import is not answered");
    let vip = plan_vip(gw.catalog.path(), "cluster-2", "payment");
    assert_eq!(dig(gw.port, &[name, "+short"]).trim(), vip);
    // The same virtual server, towards cluster-1's gateway on the policy's port, as when the
    // export was read.
    assert_eq!(plan_egress(gw.catalog.path(), "cluster-2", "payment"), read);

    let unimport = [
        "unimport",
        "payment/secure",
        "--catalog",
        &dir,
        "--cluster-id",
        "cluster-2",
    ];
    let (ok, out, err) = mcwan_cli(&unimport);
    assert!(ok, "{err}");
    assert!(out.contains("unimported secure/payment"), "{out}");
    wait_rcode(gw.port, name, 3, "payment still answered after unimport");
    let (ok, _, err) = mcwan_cli(&unimport);
    assert!(!ok);
    assert!(err.contains("has no WANImport"), "{err}");
}
