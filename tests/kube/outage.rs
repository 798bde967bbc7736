//! Lost API servers, compacted histories and gateway restarts: the dataplane and DNS keep the
//! last known good state and converge again without churn.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

crate::on_both_api_servers!(
    api_servers_stopped_and_resumed_converge_again_and_dns_keeps_answering,
    a_lost_api_server_shows_in_metrics_and_status_until_it_returns,
    a_compacted_history_relists_without_dns_or_write_churn,
    restarted_gateways_keep_the_vips_and_ingress_ports_they_wrote,
    what_changed_behind_the_gateways_back_is_repaired_when_the_api_server_returns,
);

fn rv(obj: &serde_json::Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .expect("a resourceVersion")
        .to_owned()
}

async fn api_servers_stopped_and_resumed_converge_again_and_dns_keeps_answering(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;
    let before = cs.wait_for_a(1, "shop", "cart").await;

    cs.api(0).cut().await;
    cs.api(1).cut().await;
    // While both API servers are down the importer's DNS keeps its answer...
    let dns = cs.clusters[1].dns;
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(
            a_records(dns, "cart.shop.svc.clusterset.local.").await,
            Some(before.clone()),
            "DNS changed while the API servers were down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and the clusters change where the gateways cannot see it.
    export_service(cs.api(0), "shop", "orders").await;

    cs.api(0).heal().await;
    cs.api(1).heal().await;
    cs.wait_for_a(1, "shop", "orders").await;
    cs.wait_for_object(1, MCS, "serviceimports", Some("shop"), "orders", |_| true)
        .await;
    assert_eq!(
        a_records(dns, "cart.shop.svc.clusterset.local.").await,
        Some(before)
    );
}

async fn a_lost_api_server_shows_in_metrics_and_status_until_it_returns(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    let api = |up: i64| {
        let cs = &cs;
        move || async move {
            let metrics = cs.admin_get(1, "/metrics").await?;
            let want = [
                format!("mcwan_cluster_api_up{{cluster=\"cluster-1\"}} {up}\n"),
                "mcwan_cluster_api_synced{cluster=\"cluster-1\"} 1\n".to_owned(),
                "mcwan_cluster_api_up{cluster=\"cluster-2\"} 1\n".to_owned(),
            ];
            want.iter().all(|line| metrics.contains(line)).then_some(())
        }
    };
    cs.wait_for(
        "cluster-2's gateway to see both API servers up and synced",
        api(1),
    )
    .await;

    cs.api(0).cut().await;
    cs.wait_for(
        "cluster-2's gateway to see cluster-1's API server down",
        api(0),
    )
    .await;
    let status: serde_json::Value =
        serde_json::from_str(&cs.admin_get(1, "/status").await.unwrap()).unwrap();
    let peer = &status["clusters"]["cluster-1"];
    assert!(peer["unreachable_seconds"].as_f64().is_some(), "{status:#}");
    assert!(
        peer["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{status:#}"
    );
    assert_eq!(
        status["clusters"]["cluster-2"]["unreachable_seconds"],
        json!(null)
    );
    let table = cs.admin_get(1, "/status?format=table").await.unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("cluster-1 "))
        .unwrap_or_else(|| panic!("no cluster-1 row in `mcwan status`:\n{table}"));
    assert!(row.contains("unreachable for"), "{table}");

    cs.api(0).heal().await;
    cs.wait_for(
        "cluster-2's gateway to see cluster-1's API server again",
        api(1),
    )
    .await;
}

/// A frozen API server (SIGSTOP: its connections stay open and nothing answers) is seen as
/// down by the liveness check, and as up again once it goes on. kube-apiserver only: KubeSim
/// runs in the test process and cannot be frozen.
mod a_frozen_api_server_is_seen_down_and_up_again {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kube_apiserver() {
        super::a_frozen_api_server_is_seen_down_and_up_again(crate::support::Backend::Real).await
    }
}

async fn a_frozen_api_server_is_seen_down_and_up_again(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    let api_up = |up: i64| {
        let cs = &cs;
        move || async move {
            let metrics = cs.admin_get(1, "/metrics").await?;
            metrics
                .contains(&format!(
                    "mcwan_cluster_api_up{{cluster=\"cluster-1\"}} {up}\n"
                ))
                .then_some(())
        }
    };
    cs.wait_for("cluster-1's API server up", api_up(1)).await;
    cs.api(0).freeze();
    let frozen = std::time::Instant::now();
    cs.wait_for("cluster-1's frozen API server seen down", api_up(0))
        .await;
    let detected = frozen.elapsed();
    cs.api(0).thaw();
    assert!(
        detected < std::time::Duration::from_secs(10),
        "{detected:?}"
    );
    cs.wait_for("cluster-1's API server seen up again", api_up(1))
        .await;
    let status: serde_json::Value =
        serde_json::from_str(&cs.admin_get(1, "/status").await.unwrap()).unwrap();
    assert_eq!(
        status["clusters"]["cluster-1"]["unreachable_seconds"],
        json!(null)
    );
}

async fn a_compacted_history_relists_without_dns_or_write_churn(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;
    let answer = cs.wait_for_a(1, "shop", "cart").await;
    let import = cs
        .wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |si| {
            si["status"]["clusters"].is_array()
        })
        .await;
    let published = cs
        .wait_for_object(
            0,
            DISCOVERY,
            "endpointslices",
            Some("shop"),
            "cart-mcwan-cluster-1",
            |_| true,
        )
        .await;
    let export = cs
        .wait_for_object(0, MCS, "serviceexports", Some("shop"), "cart", |e| {
            condition_is(e, "Ready", "True")
        })
        .await;
    // Let the writers settle before taking the versions.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let import = cs
        .api(1)
        .get(MCS, "serviceimports", Some("shop"), "cart")
        .await
        .unwrap_or(import);
    let export = cs
        .api(0)
        .get(MCS, "serviceexports", Some("shop"), "cart")
        .await
        .unwrap_or(export);

    for (i, c) in cs.clusters.iter().enumerate() {
        // End the watches and move the history on: every re-watch is 410 Gone.
        c.api.expire_watches(i).await;
    }
    let dns = cs.clusters[1].dns;
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert_eq!(
            a_records(dns, "cart.shop.svc.clusterset.local.").await,
            Some(answer.clone())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in [0, 1] {
        assert!(
            cs.log(i).contains("410 Gone"),
            "cluster {} did not relist:\n{}",
            i + 1,
            cs.logs()
        );
    }
    for (i, plural, name, old) in [
        (1, "serviceimports", "cart", &import),
        (0, "endpointslices", "cart-mcwan-cluster-1", &published),
        (0, "serviceexports", "cart", &export),
    ] {
        let api = if plural == "endpointslices" {
            DISCOVERY
        } else {
            MCS
        };
        let now = cs
            .api(i)
            .get(api, plural, Some("shop"), name)
            .await
            .unwrap();
        assert_eq!(
            rv(&now),
            rv(old),
            "{plural} shop/{name} was rewritten after the relist"
        );
    }

    // The watches live on after the relist.
    export_service(cs.api(0), "shop", "orders").await;
    cs.wait_for_a(1, "shop", "orders").await;
}

async fn restarted_gateways_keep_the_vips_and_ingress_ports_they_wrote(backend: Backend) {
    let mut cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;
    cs.wait_for_a(1, "shop", "cart").await;
    let import = cs
        .wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |_| true)
        .await;
    let slice = cs
        .wait_for_object(
            0,
            DISCOVERY,
            "endpointslices",
            Some("shop"),
            "cart-mcwan-cluster-1",
            |_| true,
        )
        .await;

    cs.stop_gateway(0);
    cs.stop_gateway(1);
    // What a previous run allocated differently from today's first choice: kept.
    let mut import = import;
    import["spec"]["ips"] = json!(["241.64.200.200"]);
    import["metadata"] = json!({"name": "cart", "namespace": "shop",
        "labels": import["metadata"]["labels"].clone()});
    import.as_object_mut().unwrap().remove("status");
    cs.api(1).apply(import, "mcwan").await;
    let mut slice = slice;
    slice["ports"][0]["port"] = json!(31500);
    slice["metadata"] = json!({"name": "cart-mcwan-cluster-1", "namespace": "shop",
        "labels": slice["metadata"]["labels"].clone(),
        "annotations": slice["metadata"]["annotations"].clone()});
    cs.api(0).apply(slice, "mcwan").await;

    cs.start_gateway(0).await;
    cs.start_gateway(1).await;
    let answer = cs.wait_for_a(1, "shop", "cart").await;
    assert_eq!(answer, [std::net::Ipv4Addr::new(241, 64, 200, 200)]);
    cs.wait_for_object(
        1,
        DISCOVERY,
        "endpointslices",
        Some("shop"),
        "cart-import-cluster-1",
        |s| s["ports"][0]["port"] == 31500,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let published = cs
        .api(0)
        .get(
            DISCOVERY,
            "endpointslices",
            Some("shop"),
            "cart-mcwan-cluster-1",
        )
        .await
        .unwrap();
    assert_eq!(published["ports"][0]["port"], 31500);
    let import = cs
        .api(1)
        .get(MCS, "serviceimports", Some("shop"), "cart")
        .await
        .unwrap();
    assert_eq!(import["spec"]["ips"], json!(["241.64.200.200"]));
}

async fn what_changed_behind_the_gateways_back_is_repaired_when_the_api_server_returns(
    backend: Backend,
) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;
    cs.wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |si| {
        si["status"]["clusters"].is_array()
    })
    .await;

    cs.api(1).cut().await;
    // While the gateway cannot see it: its ServiceImport is deleted, and a slice claiming to be
    // mcwan's appears.
    cs.api(1)
        .delete(MCS, "serviceimports", Some("shop"), "cart")
        .await;
    cs.api(1)
        .create(json!({
            "apiVersion": DISCOVERY, "kind": "EndpointSlice",
            "metadata": {"name": "stale-import-cluster-1", "namespace": "shop", "labels": {
                "endpointslice.kubernetes.io/managed-by": "mcwan.l7mp.io",
                "multicluster.kubernetes.io/service-name": "stale"}},
            "addressType": "IPv4", "endpoints": [],
        }))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cs.api(1).heal().await;

    cs.wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |si| {
        si["spec"]["ips"].is_array()
    })
    .await;
    cs.wait_for_absent(
        1,
        DISCOVERY,
        "endpointslices",
        Some("shop"),
        "stale-import-cluster-1",
    )
    .await;
}
