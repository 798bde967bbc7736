//! The cluster-DNS side of the tests: a static-catalog gateway, `dig` through whatever sits in
//! front of it, a stand-in DNS server that answers every name with one address and remembers
//! what it was asked, and the readiness wait of CoreDNS. Used by tests/coredns.rs and
//! tests/dns_hookup.rs (which also include support/ports.rs and support/testbed.rs).

#![allow(dead_code)] // each test binary uses a part of it
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use super::free_port;
use super::testbed::CoreDns;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The static-catalog gateway of cluster-2 on the example clusterset, DNS and admin endpoint
/// on 127.0.0.1, killed when dropped.
pub struct Gateway {
    child: Child,
    /// Its DNS port (UDP and TCP).
    pub dns: u16,
    /// Its admin endpoint's port (`/metrics`).
    pub admin: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts the gateway with `extra` arguments (`--ttl 1`) and waits until it answers.
    pub fn start(extra: &[&str]) -> Self {
        let (dns, admin) = (free_port(), free_port());
        let gw = Gateway {
            child: Command::new(env!("CARGO_BIN_EXE_mcwan"))
                .args(["gateway", "--cluster-id", "cluster-2", "--catalog"])
                .arg(repo().join("examples/clusterset"))
                .args(["--dns-listen", &format!("127.0.0.1:{dns}")])
                .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
                .args(["--health-port", "0"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
            dns,
            admin,
        };
        wait_until("the gateway answers", || {
            dig(dns, &["dns-version.clusterset.local", "TXT", "+short"]).trim() == "\"1.0.0\""
        });
        gw
    }

    /// How many queries the gateway refused: every name outside its zone is refused, so a
    /// count above 0 means something sent it a query that was not for clusterset.local.
    pub fn refused(&self) -> u64 {
        self.answered(None, "REFUSED")
    }

    /// How many queries of type `qtype` (any type: `None`) the gateway answered with `rcode`,
    /// over UDP and TCP (its `mcwan_dns_queries_total`).
    pub fn answered(&self, qtype: Option<&str>, rcode: &str) -> u64 {
        let metrics = http_get(self.admin, "/metrics").expect("the gateway's /metrics");
        let rcode = format!("rcode=\"{rcode}\"");
        let qtype = qtype.map(|t| format!("qtype=\"{t}\""));
        metrics
            .lines()
            .filter(|l| l.starts_with("mcwan_dns_queries_total{") && l.contains(&rcode))
            .filter(|l| qtype.as_ref().is_none_or(|t| l.contains(t)))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
            .sum()
    }
}

/// `dig @127.0.0.1 -p PORT ARGS...`'s output.
pub fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        // Three tries, as a stub resolver makes: a resolver just started on a loaded machine
        // may miss the first datagram of its forward path; a missing answer still shows.
        .args(["@127.0.0.1", "-p", &port.to_string(), "+tries=3", "+time=2"])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils) must be installed: scripts/install-test-deps does it");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The status and the answer section of a query, each record as `name class type data`: what
/// must agree between two servers (the TTL is each server's own: a cache counts down).
pub fn answer(port: u16, name: &str, rtype: &str) -> (String, Vec<String>) {
    let (status, records) = answer_with_ttls(port, name, rtype);
    let records = records
        .into_iter()
        .map(|(record, _)| record)
        .collect::<Vec<_>>();
    (status, records)
}

/// The status and the answer section of a query, each record with its TTL apart.
pub fn answer_with_ttls(port: u16, name: &str, rtype: &str) -> (String, Vec<(String, u32)>) {
    let out = dig(port, &[name, rtype, "+noall", "+comments", "+answer"]);
    let status = out
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_owned();
    let mut records: Vec<(String, u32)> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            ([&f[..1], &f[2..]].concat().join(" "), f[1].parse().unwrap())
        })
        .collect();
    records.sort();
    (status, records)
}

/// The TTL of the SOA record in a negative answer's authority section.
pub fn negative_ttl(port: u16, name: &str) -> Option<u32> {
    let out = dig(port, &[name, "A", "+noall", "+authority"]);
    out.lines()
        .find(|l| l.split_whitespace().nth(3) == Some("SOA"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `text` with `from` replaced by `to`, which must occur exactly once.
pub fn rewrite(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the text should hold {from:?} once:\n{text}"
    );
    text.replacen(from, to, 1)
}

/// `text` with every `from` replaced by `to`; `from` must occur exactly `count` times.
pub fn rewrite_all(text: &str, from: &str, to: &str, count: usize) -> String {
    assert_eq!(
        text.matches(from).count(),
        count,
        "the text should hold {from:?} {count} times:\n{text}"
    );
    text.replace(from, to)
}

/// An HTTP/1.0 GET on 127.0.0.1: the whole response, head and body.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Waits until CoreDNS is ready: its `/ready` (on `ready_port`) says 200 and it answers on its
/// DNS port. /ready can say 200 before the DNS listeners are bound: CoreDNS runs its plugins'
/// startup (the ready listener, the kubernetes plugin's first sync) before it listens, and a
/// query in between is refused. `probe` is a name the server answers (any status will do).
pub fn wait_coredns_ready(coredns: &mut CoreDns, ready_port: u16, dns_port: u16, probe: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http_get(ready_port, "/ready")
        .is_some_and(|r| r.lines().next().is_some_and(|l| l.contains(" 200 ")))
    {
        assert!(
            coredns.running() && Instant::now() < deadline,
            "CoreDNS not ready:\n{}",
            coredns.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_dns_port(dns_port, probe, || {
        assert!(coredns.running(), "CoreDNS died:\n{}", coredns.log_tail());
    });
}

/// Waits until the DNS server on `port` answers `probe` (any status), calling `alive` (which
/// fails the test if the server died) between tries.
pub fn wait_dns_port(port: u16, probe: &str, mut alive: impl FnMut()) {
    wait_until(&format!("something answers on DNS port {port}"), || {
        alive();
        answer(port, probe, "TXT").0 != "no answer"
    });
}

/// A stand-in DNS server on 127.0.0.1 (UDP and TCP): answers every A query with `address`
/// (TTL 30), anything else with an empty NOERROR, and records the names it was asked. It
/// stands for what a cluster's DNS forwards everything else to (the cluster DNS Service, the
/// node's resolvers), so a test can see where a name went.
pub struct StandIn {
    pub port: u16,
    pub address: Ipv4Addr,
    asked: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    pub fn start(address: Ipv4Addr) -> Self {
        let port = free_port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        let tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let log = asked.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((len, from)) = udp.recv_from(&mut buf) {
                if let Some(reply) = reply(&buf[..len], address, &log) {
                    let _ = udp.send_to(&reply, from);
                }
            }
        });
        let log = asked.clone();
        std::thread::spawn(move || {
            for stream in tcp.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve_tcp(stream, address, &log));
            }
        });
        Self {
            port,
            address,
            asked,
        }
    }

    /// The names asked so far, lower case, without the final dot.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    /// Whether `name` was asked.
    pub fn was_asked(&self, name: &str) -> bool {
        self.asked().iter().any(|n| n == name)
    }
}

fn serve_tcp(mut stream: TcpStream, address: Ipv4Addr, log: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut query).is_err() {
            return;
        }
        let Some(reply) = reply(&query, address, log) else {
            return;
        };
        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}

fn reply(query: &[u8], address: Ipv4Addr, log: &Mutex<Vec<String>>) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.response_code = ResponseCode::NoError;
    for q in &query.queries {
        let name = q.name().to_ascii().trim_end_matches('.').to_lowercase();
        log.lock().unwrap().push(name);
        if q.query_type() == RecordType::A {
            response.add_answer(Record::from_rdata(
                q.name().clone(),
                30,
                RData::A(address.into()),
            ));
        }
        response.add_query(q.clone());
    }
    response.to_vec().ok()
}

/// The ClusterSetIP of imported service `namespace/name` in cluster-2's plan of the example
/// clusterset (`mcwan plan -o json`): what the gateway's A record must hold.
pub fn cluster_set_ip(namespace: &str, name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args([
            "plan",
            "--cluster-id",
            "cluster-2",
            "-o",
            "json",
            "--catalog",
        ])
        .arg(repo().join("examples/clusterset"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["namespace"] == namespace && i["key"]["name"] == name)
        .and_then(|i| i["vip"].as_str())
        .unwrap_or_else(|| panic!("{namespace}/{name} has no ClusterSetIP in the plan"))
        .to_owned()
}
