//! The convergence benchmark (ignored in normal runs; `bench/convergence/run`): time from a
//! ServiceExport created in cluster-1 to the DNS answer of cluster-2's gateway, one service
//! after another.

use std::time::{Duration, Instant};

use crate::support::*;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with bench/convergence/run"]
async fn convergence_from_export_to_dns_answer() {
    let services: usize = std::env::var("MCWAN_BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cs = Clusterset::start(2).await;
    for c in &cs.clusters {
        c.sim
            .create_json(mk_policy("bulk", "bulk", 40000, 20000))
            .unwrap();
    }
    let exporter = cs.sim(0);
    let dns = cs.clusters[1].dns;
    let mut times = Vec::with_capacity(services);
    for i in 0..services {
        let name = format!("svc-{i}");
        exporter
            .create_json(mk_service("shop", &name, &[("http", 80)]))
            .unwrap();
        exporter
            .create_json(mk_slice(
                "shop",
                &name,
                &[("a", "10.1.0.1")],
                &[("http", 8080)],
            ))
            .unwrap();
        let qname = format!("{name}.shop.svc.clusterset.local.");
        let started = Instant::now();
        exporter
            .create_json(mk_export("shop", &name, Some("bulk")))
            .unwrap();
        loop {
            if a_records(dns, &qname).await.is_some_and(|a| !a.is_empty()) {
                break;
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "{qname} never answered\n{}",
                cs.logs()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(started.elapsed());
    }
    let mut sorted = times.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p90, p99, max) = (
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.90),
        percentile(&sorted, 0.99),
        sorted[sorted.len() - 1],
    );
    let first = &times[..times.len().min(100)];
    let last = &times[times.len().saturating_sub(100)..];
    let mean = |t: &[Duration]| t.iter().map(|d| ms(*d)).sum::<f64>() / t.len() as f64;
    println!(
        "convergence: services={services} p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms mean(first 100)={:.1}ms mean(last 100)={:.1}ms",
        ms(p50),
        ms(p90),
        ms(p99),
        ms(max),
        mean(first),
        mean(last)
    );
    assert!(
        p99 < Duration::from_secs(1),
        "p99 {p99:?} is over the 1 s goal"
    );
}
