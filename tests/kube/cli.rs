//! `mcwan export`, `mcwan unexport` and `mcwan status` against a cluster's API server.

use serde_json::Value;

use crate::support::*;

crate::on_both_api_servers!(
    export_creates_the_service_export_and_refuses_what_does_not_exist,
    status_shows_conditions_clusterset_ip_importers_and_ingress,
);

async fn export_creates_the_service_export_and_refuses_what_does_not_exist(backend: Backend) {
    let cs = Clusterset::new(backend, 1).await;
    let kubeconfig = cs.kubeconfig(0);
    cs.api(0)
        .create(mk_service("shop", "cart", &[("http", 80)]))
        .await;

    let (ok, out, err) = mcwan(
        &kubeconfig,
        &["export", "cart/shop", "--wan-policy", "gold"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("exported shop/cart"), "{out}");
    // kubectl's ways of naming it read the same export; a bare name is in the context's
    // namespace (default), where there is none.
    for args in [
        &["status", "-n", "shop", "cart", "-o", "json"][..],
        &["status", "shop/cart", "-o", "json"],
    ] {
        let (ok, out, err) = mcwan(&kubeconfig, args);
        assert!(ok, "{args:?}: {err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report[0]["service"]["name"], "cart", "{args:?}: {out}");
    }
    let (ok, _, err) = mcwan(&kubeconfig, &["status", "cart"]);
    assert!(!ok);
    assert!(err.contains("default/cart is not exported"), "{err}");
    let export = cs
        .api(0)
        .get(MCS, "serviceexports", Some("shop"), "cart")
        .await
        .unwrap();
    assert_eq!(
        export["metadata"]["annotations"]["mcw.l7mp.io/mc-wan-policy"],
        "gold"
    );

    // Placement: the annotations, and a ranking that cannot be read refused before anything.
    let (ok, _, err) = mcwan(
        &kubeconfig,
        &[
            "export",
            "cart/shop",
            "--wan-policy",
            "gold",
            "--affinity",
            "local",
            "--cluster-priority",
            "cluster-1=1,cluster-2=2",
        ],
    );
    assert!(ok, "{err}");
    let export = cs
        .api(0)
        .get(MCS, "serviceexports", Some("shop"), "cart")
        .await
        .unwrap();
    let annotations = &export["metadata"]["annotations"];
    assert_eq!(annotations["mcw.l7mp.io/affinity"], "local");
    assert_eq!(
        annotations["mcw.l7mp.io/cluster-priority"],
        "cluster-1=1,cluster-2=2"
    );
    assert_eq!(annotations["mcw.l7mp.io/mc-wan-policy"], "gold");
    let (ok, _, err) = mcwan(
        &kubeconfig,
        &[
            "export",
            "cart/shop",
            "--cluster-priority",
            "cluster-1=first",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("--cluster-priority: priority \"first\" of cluster-1"),
        "{err}"
    );

    let (ok, _, err) = mcwan(
        &kubeconfig,
        &["export", "cart/shop", "--wan-policy", "platinum"],
    );
    assert!(!ok);
    assert!(
        err.contains("\"platinum\" does not exist") && err.contains("gold"),
        "{err}"
    );

    let (ok, _, err) = mcwan(
        &kubeconfig,
        &["export", "nope/shop", "--wan-policy", "gold"],
    );
    assert!(!ok);
    assert!(err.contains("Service shop/nope does not exist"), "{err}");

    let (ok, _, err) = mcwan(&kubeconfig, &["unexport", "cart/shop"]);
    assert!(ok, "{err}");
    assert!(cs
        .api(0)
        .get(MCS, "serviceexports", Some("shop"), "cart")
        .await
        .is_none());
    let (ok, _, err) = mcwan(&kubeconfig, &["unexport", "cart/shop"]);
    assert!(!ok);
    assert!(err.contains("not exported"), "{err}");
}

async fn status_shows_conditions_clusterset_ip_importers_and_ingress(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;
    cs.wait_for_a(1, "shop", "cart").await;
    cs.wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |_| true)
        .await;
    let local_import = cs
        .wait_for_object(0, MCS, "serviceimports", Some("shop"), "cart", |_| true)
        .await;
    let export = cs
        .wait_for_object(0, MCS, "serviceexports", Some("shop"), "cart", |e| {
            condition_is(e, "Ready", "True")
        })
        .await;
    // Every condition says which generation of the export it was computed from.
    let generation = &export["metadata"]["generation"];
    assert!(generation.as_i64().is_some_and(|g| g >= 1), "{export}");
    for c in export["status"]["conditions"].as_array().unwrap() {
        assert_eq!(&c["observedGeneration"], generation, "{c}");
    }

    let peers = cs.peers_dir(0);
    let args = [
        "status",
        "cart/shop",
        "-o",
        "json",
        "--peer-kubeconfigs",
        peers.to_str().unwrap(),
    ];
    let (ok, out, err) = mcwan(&cs.kubeconfig(0), &args);
    assert!(ok, "{err}");
    let reports: Value = serde_json::from_str(&out).unwrap();
    let r = &reports[0];
    assert_eq!(r["service"]["name"], "cart");
    assert_eq!(r["wanPolicy"], "gold");
    assert_eq!(r["clusterSetIp"], local_import["spec"]["ips"][0]);
    assert_eq!(r["importedBy"], serde_json::json!(["cluster-2"]));
    assert!(r["ingress"][0]["port"].as_u64().is_some());
    assert!(r["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Valid" && c["status"] == "True"));

    let (ok, table, err) = mcwan(&cs.kubeconfig(0), &["status"]);
    assert!(ok, "{err}");
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains("shop/cart"), "{table}");
}
