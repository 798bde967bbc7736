//! Tunnel throughput: iperf3 (1 and 4 streams) between two namespaces over a veth, through
//! mcwan's userspace backend (its own device on boringtun's noise protocol), mcwan's kernel
//! backend, plain kernel WireGuard set up with `ip` and `wg`, and wireguard-go (the userspace
//! WireGuard users pick; MCWAN_BENCH_WIREGUARD_GO names its binary, testbed/build builds it)
//! set up with `wg`. Run it as root in a VM with the wireguard and tun modules (see
//! bench/tunnel/run); without the wireguard module the kernel rows are left out.
//!
//! Every path is measured in each of MCWAN_BENCH_ROUNDS rounds (default 3) and reported as its
//! median; per-run results and TCP retransmits go to stderr.
//!
//! Environment: MCWAN_BENCH_SECS (seconds per iperf3 run, default 10), MCWAN_BENCH_ROUNDS,
//! MCWAN_BENCH_ONLY (measure only the paths whose name contains it, e.g. for a profile),
//! MCWAN_BENCH_WIREGUARD_GO (the wireguard-go binary; its row is left out without it).
#![allow(clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mcwan_tunnel::Backend;
use support::scenario::{pair, Gateway};
use support::{veth, Daemon, Netns};

const SERVER: &str = "10.255.1.2";
/// The reference path.
const PLAIN: &str = "kernel WireGuard (wg/ip)";
const WIREGUARD_GO: &str = "wireguard-go (wg)";

fn iperf(client: &Netns, server: &Netns, streams: u32, secs: u64) -> f64 {
    let mut srv = Command::new("ip")
        .args([
            "netns",
            "exec",
            &server.name,
            "iperf3",
            "-s",
            "-1",
            "-B",
            SERVER,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(server, 5201);
    let before = Cpu::sample();
    let out = client.sh(&[
        "iperf3",
        "-c",
        SERVER,
        "-t",
        &secs.to_string(),
        "-P",
        &streams.to_string(),
        "-J",
    ]);
    let cpu = Cpu::sample().since(&before);
    reap(&mut srv);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let gbps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("iperf3 -P {streams}: {}", v["error"]))
        / 1e9;
    eprintln!(
        "{streams} stream(s): {gbps:.3} Gbit/s, {} retransmits; {cpu}",
        v["end"]["sum_sent"]["retransmits"]
    );
    gbps
}

/// CPU time: the machine's busy and total jiffies (/proc/stat) and this process's threads by
/// name (the userspace device's `wg-io-<interface>` and `wg-timers-<interface>` threads), to
/// tell a saturated device thread from a saturated machine.
struct Cpu {
    busy: u64,
    total: u64,
    threads: std::collections::BTreeMap<String, u64>,
}

impl Cpu {
    fn sample() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: u64 = fields.iter().sum();
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        let mut threads = std::collections::BTreeMap::new();
        for task in std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // "tid (comm) state ..." with utime and stime the 14th and 15th fields.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_owned();
            let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let ticks: u64 = rest.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
                + rest.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
            *threads.entry(name).or_default() += ticks;
        }
        Cpu {
            busy: total - idle,
            total,
            threads,
        }
    }

    fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            busy: self.busy.saturating_sub(before.busy),
            total: self.total.saturating_sub(before.total),
            threads: self
                .threads
                .iter()
                .map(|(name, t)| {
                    (
                        name.clone(),
                        t.saturating_sub(before.threads.get(name).copied().unwrap_or(0)),
                    )
                })
                // Threads that used a tenth of a second or more (idle devices of other
                // paths wake for their timers).
                .filter(|(name, t)| *t >= 10 && name.starts_with("wg-"))
                .collect(),
        }
    }
}

impl std::fmt::Display for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Jiffies are 1/100 s on the kernels this runs on.
        let machine = 100 * self.busy / self.total.max(1);
        write!(f, "machine {machine}% busy")?;
        for (name, ticks) in &self.threads {
            write!(f, ", {name} {:.1} s", *ticks as f64 / 100.0)?;
        }
        Ok(())
    }
}

/// Waits until a TCP socket listens on `port` in `ns` (starting iperf3 in a namespace can take
/// well over a second in a busy VM).
fn wait_listening(ns: &Netns, port: u16) {
    let filter = format!("sport = :{port}");
    for _ in 0..200 {
        if !ns.sh(&["ss", "-Hltn", &filter]).trim().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port} in {}", ns.name);
}

/// Waits a little for the one-off iperf3 server to exit, then kills it: after a run through a
/// slow tunnel the server sometimes misses the end of the test and would wait for minutes.
fn reap(server: &mut Child) {
    for _ in 0..50 {
        if matches!(server.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
}

fn mcwan_pair(backend: Backend) -> (Gateway, Gateway) {
    let (mut a, mut b) = pair(backend);
    let mut specs = a.specs(&b, "192.0.2.2");
    specs.truncate(1);
    a.apply(specs);
    let mut specs = b.specs(&a, "192.0.2.1");
    specs.truncate(1);
    b.apply(specs);
    (a, b)
}

/// Two namespaces joined by a WireGuard link set up with `ip` and `wg`: the kernel's device, or
/// wireguard-go's (`go`: its binary; its processes are returned, to be killed at the end).
fn plain_pair(go: Option<&str>) -> (Netns, Netns, Vec<Daemon>) {
    let a = Netns::new("pa");
    let b = Netns::new("pb");
    let mut daemons = Vec::new();
    veth(&a, "wan", "192.0.2.1/24", &b, "wan", "192.0.2.2/24");
    let keys: Vec<(String, String)> = (0..2)
        .map(|_| {
            let private = support::sh(&["wg", "genkey"]).trim().to_owned();
            let mut child = Command::new("wg")
                .arg("pubkey")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(private.as_bytes())
                .unwrap();
            let public = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
            (private, public.trim().to_owned())
        })
        .collect();
    for (i, ns) in [&a, &b].into_iter().enumerate() {
        let other = 1 - i;
        let key_file = std::env::temp_dir().join(format!("{}.key", ns.name));
        std::fs::write(&key_file, &keys[i].0).unwrap();
        // wireguard-go's control sockets share /var/run/wireguard: one name per namespace.
        let dev = format!("wg{i}");
        match go {
            None => {
                ns.sh(&["ip", "link", "add", &dev, "type", "wireguard"]);
            }
            Some(go) => daemons.push(Daemon::start(ns, std::path::Path::new(go), &dev)),
        }
        ns.sh(&[
            "wg",
            "set",
            &dev,
            "listen-port",
            "51820",
            "private-key",
            key_file.to_str().unwrap(),
            "peer",
            &keys[other].1,
            "endpoint",
            &format!("192.0.2.{}:51820", other + 1),
            "allowed-ips",
            &format!("10.255.1.{}/32", other + 1),
        ]);
        let _ = std::fs::remove_file(&key_file);
        ns.sh(&[
            "ip",
            "addr",
            "add",
            &format!("10.255.1.{}/24", i + 1),
            "dev",
            &dev,
        ]);
        ns.sh(&["ip", "link", "set", &dev, "mtu", "1420", "up"]);
    }
    (a, b, daemons)
}

/// Two namespaces joined by one tunnel path, kept alive while it is measured.
enum Pair {
    /// Kernel WireGuard or wireguard-go (its daemons kept running until the pair drops).
    Plain(Netns, Netns, #[allow(dead_code)] Vec<Daemon>),
    Mcwan(Box<(Gateway, Gateway)>),
}

impl Pair {
    fn mcwan(backend: Backend) -> Self {
        Pair::Mcwan(Box::new(mcwan_pair(backend)))
    }

    /// The client's and the server's namespace.
    fn ends(&self) -> (&Netns, &Netns) {
        match self {
            Pair::Plain(a, b, _) => (a, b),
            Pair::Mcwan(pair) => (&pair.0.ns, &pair.1.ns),
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes; this is a benchmark only.
    }
    if !support::can_run() {
        return;
    }
    let secs: u64 = env_or("MCWAN_BENCH_SECS", 10);
    let rounds: usize = env_or("MCWAN_BENCH_ROUNDS", 3).max(1);
    let kernel = Command::new("ip")
        .args(["link", "add", "mcwbenchprobe", "type", "wireguard"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if kernel {
        support::sh(&["ip", "link", "del", "mcwbenchprobe"]);
    } else {
        eprintln!("no kernel WireGuard here: measuring the userspace backend only");
    }

    let mut paths: Vec<(&str, Pair)> = Vec::new();
    if kernel {
        let (a, b, none) = plain_pair(None);
        paths.push((PLAIN, Pair::Plain(a, b, none)));
        paths.push(("mcwan kernel backend", Pair::mcwan(Backend::Kernel)));
    }
    match std::env::var("MCWAN_BENCH_WIREGUARD_GO") {
        Ok(go) => {
            let (a, b, daemons) = plain_pair(Some(&go));
            paths.push((WIREGUARD_GO, Pair::Plain(a, b, daemons)));
        }
        Err(_) => eprintln!("MCWAN_BENCH_WIREGUARD_GO not set: no wireguard-go row"),
    }
    paths.push(("mcwan userspace backend", Pair::mcwan(Backend::Userspace)));
    if let Ok(only) = std::env::var("MCWAN_BENCH_ONLY") {
        paths.retain(|(name, _)| name.contains(&only));
    }

    // Rounds go over every path in turn, so that a slow phase of the (shared, emulated)
    // machine hits all paths alike; each path's result is its median over the rounds.
    let mut results = vec![(Vec::new(), Vec::new()); paths.len()];
    for round in 1..=rounds {
        for ((name, pair), (ones, fours)) in paths.iter().zip(&mut results) {
            eprintln!("round {round}/{rounds}: {name}");
            let (client, server) = pair.ends();
            ones.push(iperf(client, server, 1, secs));
            fours.push(iperf(client, server, 4, secs));
        }
    }
    let rows: Vec<(&str, f64, f64)> = paths
        .iter()
        .zip(results)
        .map(|((name, _), (ones, fours))| (*name, median(ones), median(fours)))
        .collect();

    let base = rows.iter().find(|r| r.0 == PLAIN).map(|r| (r.1, r.2));
    println!("| path | 1 stream Gbit/s | 4 streams Gbit/s | 1 stream vs kernel wg | 4 streams vs kernel wg |");
    println!("|---|---:|---:|---:|---:|");
    for (name, one, four) in &rows {
        let (r1, r4) = match (kernel, base) {
            (true, Some((b1, b4))) => (format!("{:.2}x", one / b1), format!("{:.2}x", four / b4)),
            _ => ("n/a".into(), "n/a".into()),
        };
        println!("| {name} | {one:.3} | {four:.3} | {r1} | {r4} |");
    }
}
