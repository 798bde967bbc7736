//! The whole clusterset end to end (VM tier): three clusters in network namespaces
//! ([`mcwan::lab`]), each with its gateway on real IPVS, joined by per-class WireGuard tunnels or
//! by per-class SD-WAN edges; the seed's user stories (the L7 one too), failover with the client's outage
//! measured, gradual fallback, and a gateway restart under a live connection.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mcwan::demo::until_cluster;
use mcwan::lab::{Lab, WanKind};
use mcwan_kubesim::{KubeSim, SimConfig};

/// A lab with the gateways not yet started: (lab, its directory).
#[path = "support/lab.rs"]
mod lab_support;
use lab_support::build;

/// A lab on its static catalog, every gateway started.
fn lab(prefix: &str, wan: WanKind) -> (Lab, tempfile::TempDir) {
    let (mut lab, dir) = build(prefix, wan, false);
    for i in 1..=3 {
        lab.start_gateway(i, STATIC_ARGS).unwrap();
    }
    (lab, dir)
}

/// Three debug-build gateways, their probes and the tests share two emulated CPUs in the VM: a
/// probe deadline of 250 ms (the default) is missed there under load and peers flap, so the
/// tests give probes 500 ms. `mcwan demo` runs with the defaults.
const STATIC_ARGS: &[&str] = &["--resync-seconds", "2", "--health-timeout-ms", "500"];

/// Kubernetes mode adds three API servers and nine watches to the same VM.
const KUBE_ARGS: &[&str] = &["--resync-seconds", "2", "--health-timeout-ms", "1000"];

/// A payload big enough to stand out from health checks on the class counters.
const PAYLOAD: usize = 200_000;

/// Calls `service.namespace` from cluster-2 with a large echo and checks which class carried
/// it: `class`'s interface counts at least the payload both ways, the other class next to
/// nothing. Returns the greeting.
fn call_through(lab: &Lab, service: &str, namespace: &str, class: &str) -> String {
    let other = if class == "business" {
        "default"
    } else {
        "business"
    };
    let vip = lab.resolve(2, service, namespace).unwrap();
    let (used0, other0) = (
        lab.class_bytes(2, class).unwrap(),
        lab.class_bytes(2, other).unwrap(),
    );
    let mut conn = lab
        .connect(2, vip, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{service}.{namespace}: {e:#}\n{}", lab.diagnose(2)));
    let line = "x".repeat(PAYLOAD);
    assert_eq!(conn.echo(&line).unwrap().len(), PAYLOAD);
    let greeting = conn.greeting.clone();
    drop(conn);
    let used = lab.class_bytes(2, class).unwrap() - used0;
    let elsewhere = lab.class_bytes(2, other).unwrap() - other0;
    assert!(
        used >= 2 * PAYLOAD as u64,
        "{service}.{namespace}: only {used} bytes on {}",
        lab.class_interface(class)
    );
    assert!(
        elsewhere < PAYLOAD as u64 / 4,
        "{service}.{namespace}: {elsewhere} bytes on {} too",
        lab.class_interface(other)
    );
    greeting
}

/// The seed's stories, from cluster-2's client pod.
fn user_stories(lab: &Lab) {
    // payment.secure from cluster-1 on the high class; cluster-3 stands by (cluster priority).
    let answer = lab
        .dig(2, "payment.secure.svc.clusterset.local", "A")
        .unwrap();
    let vip = lab.resolve(2, "payment", "secure").unwrap();
    assert!(
        answer.starts_with("payment.secure.svc.clusterset.local.")
            && answer.contains(&vip.to_string()),
        "{answer}"
    );
    assert!(vip.to_string().starts_with("241.64."), "{vip}");
    let greeting = call_through(lab, "payment", "secure", "business");
    assert!(greeting.starts_with("cluster-1 10.1.2.1"), "{greeting}");
    // logging.insecure on the low class.
    let greeting = call_through(lab, "logging", "insecure", "default");
    assert_eq!(greeting, "cluster-1 10.1.2.13");
    // The L7 split: one backend, two exports, two classes.
    let high = call_through(lab, "payment-high-prio", "secure", "business");
    let low = call_through(lab, "payment-low-prio", "secure", "default");
    assert!(high.starts_with("cluster-1 10.1.2.1") && low.starts_with("cluster-1 10.1.2.1"));
    // What an operator sees: cluster-1 carries payment, cluster-3 stands by at weight 0 (as
    // soon as both pass their health checks).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let table = lab.ipvsadm(2).unwrap();
        let payment = virtual_server(&table, vip);
        if payment.iter().any(|l| l.ends_with("Masq 10000"))
            && payment.iter().any(|l| l.ends_with("Masq 0"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{table}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `request` from cluster-2 and checks which class carried it, as [`call_through`] does:
/// `class`'s interface counts the payload, the other next to nothing. No class: neither does.
fn carried_by<T>(lab: &Lab, what: &str, class: Option<&str>, request: impl FnOnce() -> T) -> T {
    let bytes = |c: &str| lab.class_bytes(2, c).unwrap();
    let before = [bytes("business"), bytes("default")];
    let out = request();
    let moved = [bytes("business") - before[0], bytes("default") - before[1]];
    for (c, moved) in ["business", "default"].into_iter().zip(moved) {
        if Some(c) == class {
            assert!(
                moved >= PAYLOAD as u64,
                "{what}: only {moved} bytes on {}",
                lab.class_interface(c)
            );
        } else {
            assert!(
                moved < PAYLOAD as u64 / 4,
                "{what}: {moved} bytes on {} too",
                lab.class_interface(c)
            );
        }
    }
    out
}

/// Waits until `ok` holds for what `probe` gives, at most `limit`; the failure names `what`
/// and the last value.
fn wait_until<T: std::fmt::Debug>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> T,
    ok: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let v = probe();
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The seed's L7 story on payment.secure, as written: with its WANRoute
/// (deploy/examples/wanroute-payment.yaml) in cluster-1, cluster-2's gateway proxies the
/// ClusterSetIP's port: GET /payment crosses on the business class, /stats on the default one,
/// POST /payment is denied there and crosses nothing, and the client's trace id arrives on the
/// far side (a new one is started for a request without). The per-class counters of cluster-2's
/// gateway say which tunnel carried what. A WAN cut fails over as on IPVS. Without the route,
/// payment is back on IPVS.
fn l7_story(lab: &Lab) {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    // cluster-1's ingress virtual services (not its ClusterSetIPs, 241.64.0.0/16) with a
    // payment pod behind them.
    let routed_pods = || {
        let table = lab.ipvsadm(1).unwrap();
        let mut ingress = false;
        let mut n = 0;
        for line in table.lines() {
            if line.starts_with("TCP") || line.starts_with("UDP") {
                ingress = !line.contains(" 241.64.");
            } else if ingress && line.contains("-> 10.1.2.11:8080") {
                n += 1;
            }
        }
        n
    };
    let before = routed_pods();
    let vip = lab.route_payment(Duration::from_secs(30)).unwrap();
    // The ClusterSetIP's port is the proxy's, not IPVS's; cluster-1 serves payment on one more
    // class (the same pods behind one more ingress virtual server).
    let table = lab.ipvsadm(2).unwrap();
    assert!(!table.contains(&format!("{vip}:8080")), "{table}");
    wait_until(
        Duration::from_secs(20),
        "cluster-1's ingress for the default class",
        routed_pods,
        |n| *n == before + 1,
    );

    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let sized = |path: &str| format!("{path}?size={PAYLOAD}");
    let get = carried_by(lab, "GET /payment", Some("business"), || {
        let headers = [
            ("traceparent", traceparent.as_str()),
            ("x-request-id", "seed-1"),
        ];
        // The business class's path (cluster-1's ingress on that class's port, the hand-off
        // route to it) may come up a moment after the default class's ingress counted above:
        // the proxy answers 502 until it does.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = lab
                .http(2, vip, "GET", &sized("/payment"), &headers)
                .unwrap();
            if reply.status == 502 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            assert_eq!(reply.status, 200, "{}", reply.body);
            break reply;
        }
    });
    assert_eq!(get.status, 200, "{}", get.body);
    let seen = get.body.lines().next().unwrap();
    assert!(seen.starts_with("cluster-1 10.1.2.1"), "{seen}");
    assert!(
        seen.contains(&format!("traceparent=00-{TRACE_ID}-")),
        "{seen}"
    );
    assert!(seen.ends_with("request-id=seed-1"), "{seen}");
    let stats = carried_by(lab, "GET /stats", Some("default"), || {
        let reply = lab.http(2, vip, "GET", &sized("/stats"), &[]).unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply
    });
    assert_eq!(stats.status, 200, "{}", stats.body);
    let seen = stats.body.lines().next().unwrap();
    assert!(seen.starts_with("cluster-1 10.1.2.1"), "{seen}");
    // Started for a request without one: a valid traceparent of a new trace.
    let started = seen
        .split(' ')
        .find_map(|w| w.strip_prefix("traceparent="))
        .unwrap();
    assert_eq!(started.len(), 55, "{seen}");
    assert!(
        started.starts_with("00-") && !started.contains(TRACE_ID),
        "{seen}"
    );
    let denied = carried_by(lab, "POST /payment", None, || {
        lab.http(2, vip, "POST", &sized("/payment"), &[]).unwrap()
    });
    assert_eq!(denied.status, 403, "{}", denied.body);
    let metrics = lab.metrics(2).unwrap();
    for series in [
        r#"mcwan_l7_requests_total{service="secure/payment",class="sd-wan-priority-high",rule="0",code="200"}"#,
        r#"mcwan_l7_requests_total{service="secure/payment",class="sd-wan-priority-low",rule="1",code="200"}"#,
        r#"mcwan_l7_requests_total{service="secure/payment",class="deny",rule="default",code="403"}"#,
    ] {
        assert!(metrics.contains(series), "{series} not in\n{metrics}");
    }

    // cluster-1's WAN is cut: its health checks fail and cluster-3 takes GET /payment, as the
    // IPVS path would; it comes back when the WAN does.
    let answer = || lab.http(2, vip, "GET", "/payment", &[]).map(|r| r.body);
    lab.set_wan(1, false).unwrap();
    wait_until(
        Duration::from_secs(30),
        "GET /payment from cluster-3",
        answer,
        |b| b.as_deref().is_ok_and(|b| b.starts_with("cluster-3 ")),
    )
    .unwrap();
    lab.set_wan(1, true).unwrap();
    wait_until(
        Duration::from_secs(60),
        "GET /payment from cluster-1",
        answer,
        |b| b.as_deref().is_ok_and(|b| b.starts_with("cluster-1 ")),
    )
    .unwrap();

    // Without the route, IPVS carries payment again and nothing denies a POST.
    lab.unroute_payment(Duration::from_secs(30)).unwrap();
    let post = || {
        lab.http(2, vip, "POST", "/payment", &[])
            .map(|r| (r.status, r.body))
    };
    wait_until(
        Duration::from_secs(10),
        "POST /payment through IPVS",
        post,
        |r| matches!(r, Ok((200, _))),
    )
    .unwrap();
    wait_until(
        Duration::from_secs(20),
        "cluster-1's ingress without the default class",
        routed_pods,
        |n| *n == before,
    );
}

/// The real servers of a virtual server in `ipvsadm -Ln` output, as "address:port Masq weight".
fn virtual_server(table: &str, vip: IpAddr) -> Vec<String> {
    table
        .lines()
        .skip_while(|l| !l.contains(&format!("{vip}:8080")))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("->"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[1], f[2], f[3])
        })
        .collect()
}

/// cluster-1 dies (WAN cut, gateway killed): how long cluster-2's client, calling every 50 ms,
/// gets no answer before cluster-3 answers. Then cluster-1 returns and takes its traffic back.
fn failover(lab: &mut Lab, mode: &str, restart: impl FnOnce(&mut Lab)) -> Duration {
    let vip = lab.resolve(2, "payment", "secure").unwrap();
    until_cluster(lab, vip, "cluster-1", Duration::from_secs(10)).unwrap();
    lab.set_wan(1, false).unwrap();
    let cut = Instant::now();
    lab.stop_gateway(1, false).unwrap();
    until_cluster(lab, vip, "cluster-3", Duration::from_secs(30)).unwrap();
    let outage = cut.elapsed();
    let report = format!(
        "e2e {mode}: client outage after cluster-1 died: {} ms\n",
        outage.as_millis()
    );
    eprint!("{report}");
    if let Some(logs) = std::env::var_os("MCWAN_TEST_LOGS") {
        use std::io::Write as _;
        let path = std::path::Path::new(&logs).join("outage.txt");
        let mut f = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(report.as_bytes()).unwrap();
    }
    // Every new connection now goes to cluster-3.
    for _ in 0..5 {
        let c = lab.connect(2, vip, Duration::from_secs(5)).unwrap();
        assert_eq!(c.cluster(), "cluster-3", "{}", c.greeting);
    }
    let table = lab.ipvsadm(2).unwrap();
    assert_eq!(
        virtual_server(&table, vip).len(),
        1,
        "cluster-1 drained: {table}"
    );
    // The return: cluster-1 is ranked first, so it takes payment back.
    lab.set_wan(1, true).unwrap();
    restart(lab);
    until_cluster(lab, vip, "cluster-1", Duration::from_secs(60)).unwrap();
    outage
}

/// Half of cluster-1's payment pods turn not ready: 70 % stays (overprovisioning 1.4), 30 %
/// moves to cluster-3, and it all comes back when they recover.
fn gradual_fallback(lab: &Lab) {
    let vip = lab.resolve(2, "payment", "secure").unwrap();
    let manifest = |ready12: bool| {
        mcwan::lab::catalog::manifests(1)
            .into_iter()
            .find(|(f, _)| f == "payment.secure.yaml")
            .unwrap()
            .1
            .replacen(
                "- addresses: [\"10.1.2.12\"]\n    conditions: {ready: true}",
                &format!("- addresses: [\"10.1.2.12\"]\n    conditions: {{ready: {ready12}}}"),
                1,
            )
    };
    // The pod backs payment's ingress services in cluster-1 and other services there.
    let pod_in_ingress = || lab.ipvsadm(1).unwrap().matches("10.1.2.12:").count();
    let before = pod_in_ingress();
    lab.write_manifest(1, "payment.secure.yaml", &manifest(false))
        .unwrap();
    wait_for_weights(lab, vip, &["3000", "7000"]);
    // Sample once cluster-1's ingress has let the pod go from payment too: a connection that
    // reached the pod just before is cut when its real server goes (expire_nodest_conn).
    let deadline = Instant::now() + Duration::from_secs(20);
    while pod_in_ingress() >= before {
        assert!(Instant::now() < deadline, "{}", lab.ipvsadm(1).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    let answered: std::collections::BTreeSet<String> = (0..20)
        .map(|_| {
            lab.connect(2, vip, Duration::from_secs(5))
                .unwrap()
                .cluster()
                .to_owned()
        })
        .collect();
    assert_eq!(
        answered,
        ["cluster-1".to_owned(), "cluster-3".to_owned()].into()
    );
    lab.write_manifest(1, "payment.secure.yaml", &manifest(true))
        .unwrap();
    wait_for_weights(lab, vip, &["0", "10000"]);
}

/// Waits until cluster-2's virtual server for `vip` has real servers of these weights (sorted
/// as strings).
fn wait_for_weights(lab: &Lab, vip: IpAddr, expected: &[&str]) {
    let weights = || {
        let mut w: Vec<String> = virtual_server(&lab.ipvsadm(2).unwrap(), vip)
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
            .collect();
        w.sort();
        w
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while weights() != expected {
        assert!(Instant::now() < deadline, "weights: {:?}", weights());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// cluster-2's gateway restarts under a live connection: the connection goes on, and DNS
/// answers as before.
fn restart_keeps_connections(lab: &mut Lab) {
    let vip = lab.resolve(2, "logging", "insecure").unwrap();
    let mut live = lab.connect(2, vip, Duration::from_secs(5)).unwrap();
    assert_eq!(live.echo("before").unwrap(), "before");
    lab.stop_gateway(2, true).unwrap();
    assert_eq!(live.echo("while down").unwrap(), "while down");
    lab.start_gateway(2, STATIC_ARGS).unwrap();
    assert_eq!(live.echo("after").unwrap(), "after");
    assert_eq!(lab.resolve(2, "logging", "insecure").unwrap(), vip);
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn wireguard_clusterset_end_to_end() {
    let (mut lab, _dir) = lab("e2w-", WanKind::Wireguard);
    user_stories(&lab);
    l7_story(&lab);
    let wg = lab.wg_show(2).unwrap();
    assert!(
        wg.contains("interface: mcw-business") && wg.contains("interface: mcw-default"),
        "{wg}"
    );
    gradual_fallback(&lab);
    restart_keeps_connections(&mut lab);
    let outage = failover(&mut lab, "wireguard", |lab| {
        lab.start_gateway(1, STATIC_ARGS).unwrap()
    });
    assert!(outage < Duration::from_secs(5), "outage {outage:?}");
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn sdwan_clusterset_end_to_end() {
    let (mut lab, _dir) = lab("e2s-", WanKind::Sdwan);
    user_stories(&lab);
    l7_story(&lab);
    let rules = lab.site(2).gw.ip(&["rule"]).unwrap();
    assert!(rules.contains("fwmark"), "{rules}");
    let outage = failover(&mut lab, "sdwan", |lab| {
        lab.start_gateway(1, STATIC_ARGS).unwrap()
    });
    assert!(outage < Duration::from_secs(5), "outage {outage:?}");
}

/// Kubernetes mode: each cluster's objects in an API server of its own (kubesim, served from
/// the VM's root namespace and reached over the lab's management links), the gateways watching
/// their own and their peers' API servers. The same stories; ServiceImports written; the API
/// servers stopped without the dataplane or DNS noticing; failover.
#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn kubernetes_mode_end_to_end() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut lab, dir) = build("e2k-", WanKind::Wireguard, true);
    let sims: Vec<KubeSim> = (1..=3)
        .map(|_| {
            runtime
                .block_on(KubeSim::start_with(SimConfig {
                    host: [0, 0, 0, 0].into(),
                    ..SimConfig::default()
                }))
                .unwrap()
        })
        .collect();
    for (i, sim) in (1u8..).zip(&sims) {
        sim.create_json(serde_json::json!({
            "apiVersion": "about.k8s.io/v1alpha1", "kind": "ClusterProperty",
            "metadata": {"name": "cluster.clusterset.k8s.io"}, "spec": {"value": format!("cluster-{i}")},
        }))
        .unwrap();
        for (_, text) in mcwan::lab::catalog::manifests(i) {
            for object in serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap() {
                sim.create_json(object).unwrap();
            }
        }
    }
    // Gateway i reaches every API server at its management link's far end.
    let kubeconfig = |sim: &KubeSim, gateway: u8, context: &str| {
        sim.kubeconfig_yaml(context).replace(
            &sim.url(),
            &format!(
                "http://{}:{}",
                mcwan::lab::addr::management_host(gateway),
                sim.port()
            ),
        )
    };
    for i in 1..=3u8 {
        let home = dir.path().join(format!("kube-{i}"));
        std::fs::create_dir_all(home.join("peers")).unwrap();
        for (j, sim) in (1u8..).zip(&sims) {
            let id = format!("cluster-{j}");
            let path = if j == i {
                home.join("kubeconfig")
            } else {
                home.join("peers").join(&id)
            };
            std::fs::write(path, kubeconfig(sim, i, &id)).unwrap();
        }
    }
    let start = |lab: &mut Lab, i: u8| {
        let home = dir.path().join(format!("kube-{i}"));
        lab.start_kube_gateway(i, &home.join("kubeconfig"), &home.join("peers"), KUBE_ARGS)
            .unwrap();
    };
    for i in 1..=3 {
        start(&mut lab, i);
    }
    let vip = wait_for_name(&lab, "payment", "secure");
    user_stories(&lab);

    // cluster-2's API server holds the ServiceImport with the ClusterSetIP DNS answers with.
    let import = sims[1]
        .get_json(
            "multicluster.x-k8s.io/v1alpha1",
            "serviceimports",
            Some("secure"),
            "payment",
        )
        .expect("ServiceImport secure/payment in cluster-2");
    assert_eq!(import["spec"]["ips"][0], vip.to_string(), "{import:#}");

    // Every API server down: live connections, new connections and DNS carry on.
    let mut live = lab.connect(2, vip, Duration::from_secs(5)).unwrap();
    runtime.block_on(async {
        for sim in &sims {
            sim.stop().await;
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(live.echo("api servers down").unwrap(), "api servers down");
    assert_eq!(lab.resolve(2, "payment", "secure").unwrap(), vip);
    let fresh = lab.connect(2, vip, Duration::from_secs(5)).unwrap();
    assert_eq!(fresh.cluster(), "cluster-1", "{}", fresh.greeting);
    runtime.block_on(async {
        for sim in &sims {
            sim.resume().await.unwrap();
        }
    });

    let outage = failover(&mut lab, "kubernetes", |lab| start(lab, 1));
    assert!(outage < Duration::from_secs(5), "outage {outage:?}");
}

/// Waits until cluster-2's gateway answers for a name (Kubernetes mode converges after start).
fn wait_for_name(lab: &Lab, service: &str, namespace: &str) -> IpAddr {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lab.resolve(2, service, namespace) {
            Ok(vip) => return vip,
            Err(e) => assert!(Instant::now() < deadline, "{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
