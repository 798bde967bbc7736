//! Traffic counters, compared with `ipvsadm -Ln --stats --exact`.

use ipvs_netlink::{Destination, Service, ServiceKey, Stats};

use crate::vm_support::*;

/// A client in its own network namespace, behind a veth pair, connects
/// three times to the VIP; the real server is a local listener on the VIP.
#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn traffic_counters_match_ipvsadm_exact_stats() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let _guard = Cleanup::services(&[&["-t", "10.250.11.1:8011"]]);
    let _net = ClientNamespace::new("ipvs-stats", "vstat", "10.250.11");
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v4(11, 1), 8011);
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add");
    ipvs.destinations(key)
        .add(Destination::new(v4(11, 1), 8011))
        .execute()
        .await
        .expect("dest");
    let listener = tokio::net::TcpListener::bind("10.250.11.1:8011")
        .await
        .expect("bind");
    let server = tokio::spawn(async move {
        for _ in 0..3 {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf).await.expect("read");
            conn.write_all(&buf[..n]).await.expect("write");
        }
    });
    for _ in 0..3 {
        let reply = tokio::task::spawn_blocking(|| {
            run(
                "ip",
                &[
                    "netns", "exec", "ipvs-stats", "bash", "-c",
                    "exec 3<>/dev/tcp/10.250.11.1/8011; echo hello-ipvs >&3; read -t 10 line <&3; echo \"$line\"",
                ],
            )
        })
        .await
        .expect("client");
        assert_eq!(reply.trim(), "hello-ipvs");
    }
    server.await.expect("server");
    // The kernel (6.1 and later) folds per-CPU counters into what it reports from its
    // estimator thread, every two seconds and later under load: wait for the traffic to show,
    // then one more period so the reads below see the final counters.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = ipvs.services().get(key).execute().await.expect("get").stats;
        if seen.is_some_and(|s| s.connections > 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no traffic counted after 60 s: {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let svc = ipvs.services().get(key).execute().await.expect("get");
    let dest = ipvs
        .destinations(key)
        .dump()
        .execute()
        .await
        .expect("dump")
        .remove(0);
    let shown = listing(&["-t", "10.250.11.1:8011"], &["--stats", "--exact"]);
    let line = |label: &str, s: Stats| {
        format!(
            "{label} {} {} {} {} {}",
            s.connections, s.packets_in, s.packets_out, s.bytes_in, s.bytes_out
        )
    };
    let svc_stats = svc.stats.expect("service counters");
    assert_eq!(
        shown,
        [
            line("TCP 10.250.11.1:8011", svc_stats),
            line(
                "-> 10.250.11.1:8011",
                dest.stats.expect("destination counters")
            ),
        ]
    );
    // The kernel may fold a quick reconnection into an existing entry, so
    // expect traffic rather than an exact connection count.
    assert!(
        (1..=3).contains(&svc_stats.connections)
            && svc_stats.packets_in >= 3
            && svc_stats.bytes_in > 0,
        "{svc_stats:?}"
    );
}
