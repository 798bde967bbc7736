//! Programming benchmark: ipvs-netlink against `ipvsadm -R`, in the same
//! kernel, in the same run.
//!
//! Needs root, `ip_vs`, `ipvsadm` and `ip`; run it through
//! `ipvs/benches/ipvs.sh`, which boots a VM for it.
//!
//! ```text
//! program [--sizes 1000,10000,20000] [--dests 10] [--changes 101]
//! ```
//!
//! A warm-up run programs the largest table once, untimed, so that no
//! measured run pays for the VM faulting its memory in. Every
//! measurement runs in a network namespace of its own (the binary
//! re-runs itself under `ip netns exec`), so each starts from an empty
//! IPVS table with an empty destination trash: the kernel keeps deleted
//! destinations in a per-namespace trash for a while and scans it on every
//! destination add, which would bias whichever run came second.
//!
//! 1. Full programming: for each size N, N TCP services x `--dests` real
//!    servers, once with a [`Batch`](ipvs_netlink::Batch) and once with
//!    `ipvsadm -R` fed the same rules.
//! 2. Single change: with 1,000 and with the largest N services loaded,
//!    add one destination through the single-request path; median of
//!    `--changes` tries after a warm-up. `ipvsadm -a` is shown for
//!    reference.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipvs_netlink::{Destination, Handle, Service, ServiceKey};

#[derive(Debug)]
struct Options {
    sizes: Vec<usize>,
    dests: usize,
    changes: usize,
    phase: Option<String>,
    services: usize,
}

fn options() -> Options {
    let mut opts = Options {
        sizes: vec![1_000, 10_000, 20_000],
        dests: 10,
        changes: 101,
        phase: None,
        services: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--sizes" => {
                opts.sizes = value
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect()
            }
            "--dests" => opts.dests = value.parse().unwrap_or(opts.dests),
            "--changes" => opts.changes = value.parse().unwrap_or(opts.changes),
            "--phase" => opts.phase = Some(value),
            "--services" => opts.services = value.parse().unwrap_or(0),
            // `cargo bench` passes --bench; ignore what is not ours.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    opts
}

fn service_key(i: usize) -> ServiceKey {
    let ip = Ipv4Addr::new(10, 100 + (i >> 16) as u8, (i >> 8) as u8, i as u8);
    ServiceKey::tcp(ip, 80)
}

fn destination(i: usize, d: usize) -> Destination {
    Destination::new(Ipv4Addr::new(172, 16, d as u8, (i % 250) as u8 + 1), 8080)
}

fn vip(i: usize) -> String {
    service_key(i)
        .socket_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// The same table as `ipvsadm -R` input.
fn rules(services: usize, dests: usize) -> String {
    let mut out = String::with_capacity(services * (dests + 1) * 48);
    for i in 0..services {
        let vip = vip(i);
        let _ = writeln!(out, "-A -t {vip} -s rr");
        for d in 0..dests {
            let _ = writeln!(out, "-a -t {vip} -r {} -m -w 1", destination(i, d).key());
        }
    }
    out
}

async fn program_with_batch(ipvs: &Handle, services: usize, dests: usize) -> Duration {
    let start = Instant::now();
    let mut batch = ipvs.batch();
    for i in 0..services {
        let key = service_key(i);
        batch.add_service(Service::new(key, "rr"));
        for d in 0..dests {
            batch.add_destination(key, destination(i, d));
        }
    }
    let report = batch.execute().await.expect("batch sent");
    let elapsed = start.elapsed();
    assert!(
        report.is_success(),
        "batch refused: {:?}",
        report.failures.first()
    );
    elapsed
}

fn program_with_ipvsadm(rules: &str) -> Duration {
    let start = Instant::now();
    let mut child = Command::new("ipvsadm")
        .arg("-R")
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn ipvsadm -R");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(rules.as_bytes())
        .expect("feed ipvsadm -R");
    let status = child.wait().expect("ipvsadm -R");
    let elapsed = start.elapsed();
    assert!(status.success(), "ipvsadm -R failed");
    elapsed
}

/// Checks that `services` services are loaded, the first and last with
/// `dests` destinations each.
async fn check_loaded(ipvs: &Handle, services: usize, dests: usize) {
    let loaded = ipvs.services().dump().execute().await.expect("dump");
    assert_eq!(loaded.len(), services, "every service programmed");
    for i in [0, services - 1] {
        let got = ipvs
            .destinations(service_key(i))
            .dump()
            .execute()
            .await
            .expect("dests");
        assert_eq!(
            got.len(),
            dests,
            "every destination of service {i} programmed"
        );
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// One destination added through the single-request path, `tries` times
/// (after a warm-up), each to another service; nothing is deleted, so the
/// destination trash stays empty.
async fn single_change(ipvs: &Handle, loaded: usize, tries: usize, port_base: u16) -> Duration {
    const WARM_UP: usize = 10;
    let mut samples = Vec::with_capacity(tries);
    for t in 0..tries + WARM_UP {
        let key = service_key((t * 7919) % loaded);
        let dest = Destination::new(Ipv4Addr::new(172, 31, 255, 1), port_base + t as u16);
        let start = Instant::now();
        ipvs.destinations(key)
            .add(dest)
            .execute()
            .await
            .expect("add one");
        if t >= WARM_UP {
            samples.push(start.elapsed());
        }
    }
    median(samples)
}

/// Reading one service: the kernel's service lookup, without a change.
async fn single_get(ipvs: &Handle, loaded: usize, tries: usize) -> Duration {
    let mut samples = Vec::with_capacity(tries);
    for t in 0..tries {
        let key = service_key((t * 7919) % loaded);
        let start = Instant::now();
        ipvs.services().get(key).execute().await.expect("get one");
        samples.push(start.elapsed());
    }
    median(samples)
}

/// A netlink round trip that touches no table: the fixed cost.
async fn round_trip(ipvs: &Handle, tries: usize) -> Duration {
    let mut samples = Vec::with_capacity(tries);
    for _ in 0..tries {
        let start = Instant::now();
        ipvs.info().await.expect("info");
        samples.push(start.elapsed());
    }
    median(samples)
}

/// Turns the kernel's rate estimator off in this namespace. Linux 6.1
/// walks every service's and destination's estimator every two seconds
/// under the lock a destination add takes, which at 220,000 estimators
/// under emulation is a large share of the time.
fn stop_estimation() -> bool {
    std::fs::write("/proc/sys/net/ipv4/vs/run_estimation", "0").is_ok()
}

fn single_change_ipvsadm(loaded: usize, tries: usize) -> Duration {
    let mut samples = Vec::with_capacity(tries);
    for t in 0..tries {
        let rs = format!("172.31.255.2:{}", 9000 + t);
        let vip = vip((t * 7919) % loaded);
        let start = Instant::now();
        let ok = Command::new("ipvsadm")
            .args(["-a", "-t", &vip, "-r", &rs, "-m"])
            .status();
        samples.push(start.elapsed());
        assert!(ok.map(|s| s.success()).unwrap_or(false), "ipvsadm -a");
    }
    median(samples)
}

/// Runs one measurement in the current namespace; prints `result <ns>...`.
async fn phase(opts: &Options, phase: &str) {
    let n = opts.services;
    let ipvs = Handle::new()
        .await
        .expect("IPVS handle: run as root with ip_vs loaded");
    assert!(
        ipvs.services()
            .dump()
            .execute()
            .await
            .expect("dump")
            .is_empty(),
        "fresh namespace"
    );
    match phase {
        "batch" => {
            let took = program_with_batch(&ipvs, n, opts.dests).await;
            check_loaded(&ipvs, n, opts.dests).await;
            println!("result {}", took.as_nanos());
        }
        "ipvsadm" => {
            let text = rules(n, opts.dests);
            let took = program_with_ipvsadm(&text);
            check_loaded(&ipvs, n, opts.dests).await;
            println!("result {}", took.as_nanos());
        }
        "single" => {
            program_with_batch(&ipvs, n, opts.dests).await;
            let tries = opts.changes;
            let add = single_change(&ipvs, n, tries, 9000).await;
            let get = single_get(&ipvs, n, tries).await;
            let info = round_trip(&ipvs, tries).await;
            let theirs = single_change_ipvsadm(n, tries.min(11));
            let add_quiet = if stop_estimation() {
                single_change(&ipvs, n, tries, 20000).await
            } else {
                Duration::ZERO
            };
            let results = [add, add_quiet, get, info, theirs];
            let nanos: Vec<String> = results.iter().map(|d| d.as_nanos().to_string()).collect();
            println!("result {}", nanos.join(" "));
        }
        other => panic!("unknown phase {other}"),
    }
}

/// Runs `phase` in a fresh network namespace; returns its `result` numbers.
fn in_namespace(opts: &Options, phase: &str, services: usize) -> Vec<Duration> {
    let ns = format!("ipvs-bench-{phase}-{services}");
    let _ = Command::new("ip")
        .args(["netns", "del", &ns])
        .stderr(Stdio::null())
        .status();
    let ok = Command::new("ip").args(["netns", "add", &ns]).status();
    assert!(
        ok.map(|s| s.success()).unwrap_or(false),
        "ip netns add {ns}"
    );
    // The kernel accepts only routable real servers: give the namespace a
    // route to 172.16.0.0/12, where every destination lives.
    for args in [
        &["link", "set", "lo", "up"][..],
        &["link", "add", "bench0", "type", "dummy"],
        &["addr", "add", "172.16.255.254/12", "dev", "bench0"],
        &["link", "set", "bench0", "up"],
    ] {
        let ok = Command::new("ip").args(["-n", &ns]).args(args).status();
        assert!(
            ok.map(|s| s.success()).unwrap_or(false),
            "ip -n {ns} {args:?}"
        );
    }
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(exe)
        .args(["--phase", phase, "--services", &services.to_string()])
        .args([
            "--dests",
            &opts.dests.to_string(),
            "--changes",
            &opts.changes.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run phase");
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    // Let the kernel tear the namespace's table down before the next run.
    std::thread::sleep(Duration::from_secs(5));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "phase {phase} {services} failed: {stdout}"
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("result "))
        .expect("result line")
        .split_whitespace()
        .map(|n| Duration::from_nanos(n.parse().expect("nanoseconds")))
        .collect()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn micros(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let opts = options();
    if let Some(name) = opts.phase.clone() {
        phase(&opts, &name).await;
        return;
    }
    if opts.sizes.is_empty() {
        eprintln!("no sizes");
        std::process::exit(2);
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "ipvs-netlink programming benchmark: kernel {}, {} destinations per service, \
         each run in a fresh network namespace",
        kernel.trim(),
        opts.dests
    );
    println!();
    println!(
        "{:>9} {:>9} {:>14} {:>14} {:>9}",
        "services", "dests", "ipvs-netlink", "ipvsadm -R", "speedup"
    );
    // The guest's memory is backed lazily: whichever run first allocates a
    // large table pays for faulting it in. Pay that once, untimed.
    let largest = opts.sizes.iter().copied().max().unwrap_or(0);
    let _ = in_namespace(&opts, "batch", largest);
    let mut worst_speedup = f64::INFINITY;
    for &n in &opts.sizes {
        let ours = in_namespace(&opts, "batch", n)[0];
        let theirs = in_namespace(&opts, "ipvsadm", n)[0];
        let speedup = theirs.as_secs_f64() / ours.as_secs_f64();
        worst_speedup = worst_speedup.min(speedup);
        println!(
            "{:>9} {:>9} {:>14} {:>14} {:>8.1}x",
            n,
            n * opts.dests,
            secs(ours),
            secs(theirs),
            speedup
        );
        let _ = std::io::stdout().flush();
    }

    let small = 1_000.min(opts.sizes.iter().copied().min().unwrap_or(1_000));
    let large = opts.sizes.iter().copied().max().unwrap_or(small);
    println!();
    println!(
        "single change (add one destination) and reference round trips, median of {}, \
         N services x {} loaded:",
        opts.changes, opts.dests
    );
    println!(
        "{:>9} {:>12} {:>18} {:>12} {:>12} {:>12}",
        "loaded", "add dest", "add (no estimator)", "get service", "info", "ipvsadm -a"
    );
    let mut at = Vec::new();
    for loaded in [small, large] {
        let r = in_namespace(&opts, "single", loaded);
        let quiet = if r[1].is_zero() {
            "n/a".to_owned()
        } else {
            micros(r[1])
        };
        println!(
            "{:>9} {:>12} {:>18} {:>12} {:>12} {:>12}",
            loaded,
            micros(r[0]),
            quiet,
            micros(r[2]),
            micros(r[3]),
            micros(r[4])
        );
        at.push(r);
    }
    let ratio = |i: usize| at[1][i].as_secs_f64() / at[0][i].as_secs_f64();
    println!();
    println!("full programming: worst speedup over ipvsadm -R {worst_speedup:.1}x (target >= 3x)");
    println!(
        "single change: {large} loaded / {small} loaded = {:.2} (target <= 1.2); \
         {:.2} with the estimator off; get service {:.2}; info {:.2}",
        ratio(0),
        ratio(1),
        ratio(2),
        ratio(3)
    );
}
