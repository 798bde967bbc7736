//! The convergence benchmark (ignored in normal runs; `bench/convergence/run`): with
//! `MCWAN_BENCH_SERVICES` services already exported from cluster-1 and imported by cluster-2,
//! the time from one more ServiceExport created in cluster-1 to the DNS answer of cluster-2's
//! gateway, `MCWAN_BENCH_SAMPLES` times, one after another; beside it, the time until CoreDNS
//! with the `multicluster` plugin, reading cluster-2's API server, answers for the
//! ServiceImport mcwan wrote. Run at two sizes, the two show how the cost of one change grows
//! with the clusterset.
//!
//! `MCWAN_BENCH_API`: `kube-apiserver` (default, testbed/) or `kubesim`;
//! `MCWAN_BENCH_COREDNS=0` leaves CoreDNS out.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::support::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CoreDNS answering `clusterset.local` from `kubeconfig`'s API server with the kubernetes
/// plugin's `multicluster` option (ServiceImports and their EndpointSlices), and the address it
/// serves on.
fn coredns(kubeconfig: &std::path::Path) -> (testbed::CoreDns, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let corefile = format!(
        "clusterset.local:{port} {{\n    bind 127.0.0.1\n    kubernetes clusterset.local {{\n        kubeconfig {kubeconfig}\n        multicluster clusterset.local\n    }}\n}}\n",
        port = addr.port(),
        kubeconfig = kubeconfig.display(),
    );
    (testbed::CoreDns::start(&corefile), addr)
}

async fn answered(dns: SocketAddr, qname: &str) -> bool {
    a_records(dns, qname).await.is_some_and(|a| !a.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with bench/convergence/run"]
async fn convergence_from_export_to_dns_answer() {
    let services = env_number("MCWAN_BENCH_SERVICES", 1000);
    let samples = env_number("MCWAN_BENCH_SAMPLES", 100).max(1);
    let backend = match std::env::var("MCWAN_BENCH_API").as_deref() {
        Ok("kubesim") => Backend::KubeSim,
        Ok("kube-apiserver") | Err(_) => Backend::Real,
        Ok(other) => panic!("MCWAN_BENCH_API={other}: kube-apiserver or kubesim"),
    };
    let cs = Clusterset::start(backend, 2).await;
    for c in &cs.clusters {
        c.api.create(mk_policy("bulk", "bulk", 40000, 20000)).await;
    }
    let exporter = cs.api(0);
    let dns = cs.clusters[1].dns;

    // The clusterset's size: exported at once, then waited for.
    let started = Instant::now();
    let objects = (0..services).flat_map(|i| {
        let name = format!("bulk-{i}");
        [
            mk_service("shop", &name, &[("http", 80)]),
            mk_slice("shop", &name, &[("a", "10.1.0.1")], &[("http", 8080)]),
            mk_export("shop", &name, Some("bulk")),
        ]
    });
    futures::stream::iter(objects)
        .for_each_concurrent(16, |obj| async move {
            exporter.create(obj).await;
        })
        .await;
    if services > 0 {
        let last = format!("bulk-{}.shop.svc.clusterset.local.", services - 1);
        let deadline = Instant::now() + Duration::from_secs(1200);
        while !answered(dns, &last).await {
            assert!(Instant::now() < deadline, "{last} never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Settled: both gateways have written everything the bulk asks of them (cluster-1 its
        // ingress slices and export conditions, cluster-2 its ServiceImports and their
        // slices), so that a sample measures one change, not the tail of the bulk.
        loop {
            let slices = |i: usize, role: &'static str| {
                let api = cs.api(i);
                async move {
                    api.list(DISCOVERY, "endpointslices", Some("shop"))
                        .await
                        .iter()
                        .filter(|s| s["metadata"]["labels"]["mcw.l7mp.io/slice"] == role)
                        .count()
                }
            };
            let ready = exporter
                .list(MCS, "serviceexports", Some("shop"))
                .await
                .iter()
                .filter(|e| condition_is(e, "Ready", "True"))
                .count();
            let imported = cs
                .api(1)
                .list(MCS, "serviceimports", Some("shop"))
                .await
                .len();
            let counts = [
                ready,
                slices(0, "ingress").await,
                imported,
                slices(1, "import").await,
            ];
            if counts.iter().all(|&n| n >= services) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "of {services}: {counts:?} (exports Ready, ingress slices, imports, import slices)\n{}",
                cs.logs()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let populated = started.elapsed();

    let with_coredns = std::env::var("MCWAN_BENCH_COREDNS").map_or(true, |v| v != "0");
    let coredns = (backend == Backend::Real && with_coredns).then(|| {
        let ClusterApi::Real { server, .. } = &cs.clusters[1].api else {
            unreachable!()
        };
        coredns(&server.lock().unwrap().kubeconfig())
    });
    if let Some(coredns) = &coredns {
        if services > 0 {
            let last = format!("bulk-{}.shop.svc.clusterset.local.", services - 1);
            let deadline = Instant::now() + Duration::from_secs(120);
            while !answered(coredns.1, &last).await {
                assert!(Instant::now() < deadline, "CoreDNS never answered {last}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    let mut gateway_times = Vec::with_capacity(samples);
    let mut coredns_times = Vec::with_capacity(samples);
    for i in 0..samples {
        let name = format!("svc-{i}");
        exporter
            .create(mk_service("shop", &name, &[("http", 80)]))
            .await;
        exporter
            .create(mk_slice(
                "shop",
                &name,
                &[("a", "10.1.0.1")],
                &[("http", 8080)],
            ))
            .await;
        let qname = format!("{name}.shop.svc.clusterset.local.");
        let started = Instant::now();
        exporter
            .create(mk_export("shop", &name, Some("bulk")))
            .await;
        let (mut gateway, mut peer) = (None, None);
        while gateway.is_none() || (coredns.is_some() && peer.is_none()) {
            if gateway.is_none() && answered(dns, &qname).await {
                gateway = Some(started.elapsed());
            }
            if let Some(coredns) = coredns.as_ref().filter(|_| peer.is_none()) {
                if answered(coredns.1, &qname).await {
                    peer = Some(started.elapsed());
                }
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "{qname} never answered (gateway: {gateway:?}, CoreDNS: {peer:?})\n{}",
                cs.logs()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        gateway_times.extend(gateway);
        coredns_times.extend(peer);
    }
    let api = match backend {
        Backend::Real => "kube-apiserver",
        Backend::KubeSim => "kubesim",
    };
    println!(
        "convergence: api={api} services={services} samples={samples} populated_in={:.1}s",
        populated.as_secs_f64()
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let report = |what: &str, times: &[Duration]| {
        let mut sorted = times.to_vec();
        sorted.sort();
        println!(
            "convergence: {what} p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms",
            ms(percentile(&sorted, 0.50)),
            ms(percentile(&sorted, 0.90)),
            ms(percentile(&sorted, 0.99)),
            ms(sorted[sorted.len() - 1]),
        );
        percentile(&sorted, 0.99)
    };
    let p99 = report("mcwan-gateway", &gateway_times);
    if !coredns_times.is_empty() {
        report("coredns-multicluster", &coredns_times);
    }
    assert!(
        p99 < Duration::from_secs(1),
        "p99 {p99:?} is over the 1 s goal"
    );
}
