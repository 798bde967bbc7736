//! The admin endpoint of a running gateway: Prometheus metrics parsed by the official
//! OpenMetrics parser, readiness that follows the first reconcile and the DNS listener, and
//! `mcwan status` checked against the desired state.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/ports.rs"]
mod ports;
use ports::free_port;

struct Gateway {
    child: Child,
    admin: u16,
    dns: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_example(to: &Path) {
    let from = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clusterset"));
    for entry in walk(&from) {
        let target = to.join(entry.strip_prefix(&from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn start(catalog: &Path, dns: u16) -> Gateway {
    let admin = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(["gateway", "--cluster-id", "cluster-2", "--catalog"])
        .arg(catalog)
        .args([
            "--dns-listen",
            &format!("127.0.0.1:{dns}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
            "--health-port",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gw = Gateway { child, admin, dns };
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(gw.admin, "/healthz").is_none() {
        assert!(
            Instant::now() < deadline,
            "the admin endpoint never came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    gw
}

/// GET `path`: (status code, body), or None when nothing listens.
fn http(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// Parses an exposition with the official Prometheus client's OpenMetrics parser and returns
/// the samples as (name, labels, value).
fn parse_metrics(text: &str) -> Vec<(String, serde_json::Map<String, serde_json::Value>, f64)> {
    let script = "import sys, json\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\nprint(json.dumps([[s.name, s.labels, s.value] for f in p(sys.stdin.read()) for s in f.samples]))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus-client (scripts/install-test-deps installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser rejected /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<(String, serde_json::Map<String, serde_json::Value>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    samples
}

fn sample(
    samples: &[(String, serde_json::Map<String, serde_json::Value>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(|x| x.as_str()) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

fn dns_query(port: u16, name: &str, qtype: u16) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut q = vec![0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0]);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    socket.send_to(&q, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 1500];
    socket.recv(&mut buf).unwrap();
}

fn wait_ready(gw: &Gateway, deadline: Duration) -> (u16, String) {
    let until = Instant::now() + deadline;
    loop {
        let (code, body) = http(gw.admin, "/readyz").unwrap();
        if code == 200 || Instant::now() > until {
            return (code, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_parse_and_move_with_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    let gw = start(dir.path(), free_port());
    assert_eq!(wait_ready(&gw, Duration::from_secs(10)).0, 200);
    let before = parse_metrics(&http(gw.admin, "/metrics").unwrap().1);
    assert_eq!(sample(&before, "mcwan_reconciles_total", &[]), 1.0);
    assert_eq!(
        sample(
            &before,
            "mcwan_catalog_objects",
            &[("cluster", "cluster-1"), ("kind", "ServiceExport")]
        ),
        3.0
    );
    assert_eq!(
        sample(
            &before,
            "mcwan_import_healthy_clusters",
            &[("service", "secure/payment")]
        ),
        1.0
    );
    // An edit of the catalog is one more reconcile.
    std::fs::remove_file(dir.path().join("cluster-1/logging.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let after = parse_metrics(&http(gw.admin, "/metrics").unwrap().1);
        if sample(&after, "mcwan_reconciles_total", &[]) >= 2.0 {
            assert_eq!(
                sample(
                    &after,
                    "mcwan_catalog_objects",
                    &[("cluster", "cluster-1"), ("kind", "ServiceExport")]
                ),
                2.0
            );
            assert_eq!(
                sample(
                    &after,
                    "mcwan_import_healthy_clusters",
                    &[("service", "insecure/logging")]
                ),
                0.0,
                "series removed"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reconcile counter never moved"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dns_query_counters_move_with_real_queries() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    let gw = start(dir.path(), free_port());
    assert_eq!(wait_ready(&gw, Duration::from_secs(10)).0, 200);
    for _ in 0..5 {
        dns_query(gw.dns, "payment.secure.svc.clusterset.local", 1);
    }
    dns_query(gw.dns, "nothing.secure.svc.clusterset.local", 1);
    dns_query(gw.dns, "payment.secure.svc.clusterset.local", 33);
    let m = parse_metrics(&http(gw.admin, "/metrics").unwrap().1);
    assert_eq!(
        sample(
            &m,
            "mcwan_dns_queries_total",
            &[("qtype", "A"), ("rcode", "NOERROR")]
        ),
        5.0
    );
    assert_eq!(
        sample(
            &m,
            "mcwan_dns_queries_total",
            &[("qtype", "A"), ("rcode", "NXDOMAIN")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "mcwan_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        sample(&m, "mcwan_dns_queries_total", &[("qtype", "SRV")]),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "mcwan_dns_query_duration_seconds_count",
            &[("qtype", "A")]
        ),
        6.0
    );
}

#[test]
fn readyz_waits_for_the_first_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), free_port());
    // Unready from the start ("no desired state applied yet"), then the first load of the
    // empty directory says why.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = http(gw.admin, "/readyz").unwrap();
        assert_eq!(code, 503, "{body}");
        if body.contains("[-]reconcile failed: no catalog loaded yet") {
            break;
        }
        assert!(
            body.contains("[-]reconcile failed: no desired state applied yet")
                && Instant::now() < deadline,
            "{body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    copy_example(dir.path());
    let (code, body) = wait_ready(&gw, Duration::from_secs(10));
    assert_eq!(code, 200, "{body}");
}

#[test]
fn readyz_is_unready_while_the_dns_listener_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    let dns = free_port();
    let squatter = UdpSocket::bind(("127.0.0.1", dns)).unwrap();
    let gw = start(dir.path(), dns);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, body) = http(gw.admin, "/readyz").unwrap();
        if body.contains("[-]dns failed: cannot bind") {
            assert_eq!(code, 503);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never reported the DNS failure: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(squatter);
    let (code, body) = wait_ready(&gw, Duration::from_secs(20));
    assert_eq!(code, 200, "{body}");
    dns_query(gw.dns, "payment.secure.svc.clusterset.local", 1);
}

#[test]
fn status_matches_the_desired_state() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    let gw = start(dir.path(), free_port());
    assert_eq!(wait_ready(&gw, Duration::from_secs(10)).0, 200);
    let status = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args([
            "status",
            "-o",
            "json",
            "--gateway",
            &format!("127.0.0.1:{}", gw.admin),
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let plan = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args([
            "plan",
            "--cluster-id",
            "cluster-2",
            "-o",
            "json",
            "--catalog",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(status["ready"], true);
    for part in ["imports", "exports", "ipvs", "tunnels", "dns"] {
        assert_eq!(status["state"][part], plan[part], "{part}");
    }
    let table = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(["status", "--gateway", &format!("127.0.0.1:{}", gw.admin)])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    let vip = plan["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["name"] == "payment")
        .unwrap()["vip"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(table.contains("readyz check passed"), "{table}");
    assert!(
        table.contains(&format!("secure/payment    ClusterSetIP  {vip}")),
        "{table}"
    );
}

/// A DNS query over TCP on a connection of its own: whether an answer came back.
fn dns_tcp_answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut q = vec![0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in "dns-version.clusterset.local".split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 16, 0, 1]);
    let framed = [&(q.len() as u16).to_be_bytes()[..], &q].concat();
    let mut len = [0u8; 2];
    s.write_all(&framed).is_ok() && s.read_exact(&mut len).is_ok()
}

#[test]
fn running_out_of_descriptors_does_not_end_the_gateway() {
    let catalog = tempfile::tempdir().unwrap();
    copy_example(catalog.path());
    let (dns, admin) = (free_port(), free_port());
    // A low limit (soft and hard), so a few hundred idle connections exhaust it.
    let child = Command::new("sh")
        .args(["-c", "ulimit -n 96 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_mcwan"))
        .args(["gateway", "--cluster-id", "cluster-2", "--catalog"])
        .arg(catalog.path())
        .args(["--dns-listen", &format!("127.0.0.1:{dns}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .args(["--health-port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut gw = Gateway { child, admin, dns };
    let deadline = Instant::now() + Duration::from_secs(20);
    while http(gw.admin, "/healthz").is_none() {
        assert!(
            Instant::now() < deadline,
            "the admin endpoint never came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(wait_ready(&gw, Duration::from_secs(20)).0, 200);

    // 240 idle connections on the two listeners: more than the process has descriptors.
    let mut held = Vec::new();
    for _ in 0..120 {
        held.extend(TcpStream::connect(("127.0.0.1", admin)).ok());
        held.extend(TcpStream::connect(("127.0.0.1", dns)).ok());
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "the gateway ended when it ran out of descriptors"
    );
    // UDP goes on answering meanwhile.
    dns_query(gw.dns, "dns-version.clusterset.local", 16);
    drop(held);

    // Once the flood is gone, both listeners serve again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(http(gw.admin, "/healthz").is_some_and(|(code, _)| code == 200)
        && dns_tcp_answers(gw.dns))
    {
        assert!(
            Instant::now() < deadline,
            "the listeners did not recover after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gw.child.try_wait().unwrap().is_none());
}

#[test]
fn a_slowloris_on_the_admin_endpoint_is_cut_off() {
    let catalog = tempfile::tempdir().unwrap();
    copy_example(catalog.path());
    let gw = start(catalog.path(), free_port());
    // More silent connections than the endpoint holds (256): the oldest are closed at once,
    // and a well-behaved client is served right away.
    let held: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(("127.0.0.1", gw.admin)).unwrap())
        .collect();
    let started = Instant::now();
    assert_eq!(http(gw.admin, "/healthz").map(|(code, _)| code), Some(200));
    eprintln!(
        "served after {:?} behind 300 silent connections",
        started.elapsed()
    );
    let closed = |s: &TcpStream, wait: Duration| {
        let mut s = s;
        s.set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        matches!(s.read(&mut byte), Ok(0))
    };
    assert!(
        closed(&held[0], Duration::from_secs(1)),
        "the oldest was kept"
    );
    // The rest never send their headers: closed within the header timeout (5 s).
    std::thread::sleep(Duration::from_secs(6));
    let still_open = held[100..]
        .iter()
        .filter(|s| !closed(s, Duration::from_millis(10)))
        .count();
    assert_eq!(
        still_open, 0,
        "silent connections kept past the header timeout"
    );
}

/// Raises this process's open-files limit as far as it goes; returns it.
fn raise_open_files() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

#[test]
#[ignore = "heavy (a minute): run by hand, `cargo test --test admin -- --ignored` (docs/testing.md)"]
fn ten_thousand_idle_connections_on_each_listener_neither_end_the_gateway_nor_lock_clients_out() {
    let limit = raise_open_files();
    let flood = 10_000.min(limit.saturating_sub(200) as usize);
    let catalog = tempfile::tempdir().unwrap();
    copy_example(catalog.path());
    let mut gw = start(catalog.path(), free_port());
    for (listener, port) in [("DNS over TCP", gw.dns), ("admin", gw.admin)] {
        let started = Instant::now();
        let held: Vec<TcpStream> = (0..flood)
            .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
            .collect();
        assert_eq!(held.len(), flood, "{listener}: connections refused");
        eprintln!(
            "{listener}: {flood} idle connections opened in {:?}",
            started.elapsed()
        );
        assert!(
            gw.child.try_wait().unwrap().is_none(),
            "{listener}: the gateway ended"
        );
        // UDP answers, a new DNS-over-TCP client and a new admin client are served.
        dns_query(gw.dns, "dns-version.clusterset.local", 16);
        assert!(
            dns_tcp_answers(gw.dns),
            "{listener}: a new DNS-over-TCP client was not answered"
        );
        assert_eq!(
            http(gw.admin, "/healthz").map(|(code, _)| code),
            Some(200),
            "{listener}: a new admin client was not served"
        );
        drop(held);
    }
}
