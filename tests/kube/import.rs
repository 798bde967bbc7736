//! Exports in one cluster become imports (ServiceImport, EndpointSlices, DNS) in the others.

use serde_json::Value;

use crate::support::*;

crate::on_both_api_servers!(
    an_export_in_cluster_1_is_imported_with_a_vip_and_a_dns_answer_in_cluster_2,
    the_importer_sends_to_the_ingress_the_exporter_published,
    unexport_removes_the_import_its_slices_and_the_dns_name,
    no_import_where_the_namespace_is_absent_until_it_is_created,
    a_headless_export_imports_its_ready_endpoints_with_hostnames,
    a_service_with_the_longest_name_is_imported_though_its_slice_names_are_longer,
);

/// Kubernetes' EndpointSlice controller names slices `<service>-<5 random>`: past 63
/// characters (a DNS label) for long Service names, within 253 (a subdomain), which is the rule
/// for slice names.
async fn a_service_with_the_longest_name_is_imported_though_its_slice_names_are_longer(
    backend: Backend,
) {
    let cs = Clusterset::start(backend, 2).await;
    let name = format!("cart-{}", "x".repeat(58));
    assert_eq!(name.len(), 63);
    export_service(cs.api(0), "shop", &name).await;
    let import = cs
        .wait_for_object(1, MCS, "serviceimports", Some("shop"), &name, |si| {
            !ips(si).is_empty()
        })
        .await;
    let answer = cs.wait_for_a(1, "shop", &name).await;
    assert_eq!(answer[0].to_string(), ips(&import)[0]);
    cs.wait_for_object(0, MCS, "serviceexports", Some("shop"), &name, |e| {
        condition_is(e, "Ready", "True")
    })
    .await;
    // The slice's endpoint is the exporter's ingress backend: the slice was read.
    let status: Value = serde_json::from_str(&cs.admin_get(0, "/status").await.unwrap()).unwrap();
    let ingress = status["state"]["ipvs"]["ingress"].as_array().unwrap();
    let backends: Vec<&Value> = ingress
        .iter()
        .filter(|vs| vs["service"]["name"] == name.as_str())
        .flat_map(|vs| vs["reals"].as_array().unwrap())
        .collect();
    assert_eq!(
        backends.len(),
        1,
        "{ingress:#?} {:#?}",
        status["state"]["problems"]
    );
    assert_eq!(backends[0]["address"], "10.1.0.1");
}

fn ips(import: &Value) -> Vec<String> {
    import["spec"]["ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn an_export_in_cluster_1_is_imported_with_a_vip_and_a_dns_answer_in_cluster_2(
    backend: Backend,
) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;

    let import = cs
        .wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |si| {
            !ips(si).is_empty() && si["status"]["clusters"][0]["cluster"] == "cluster-1"
        })
        .await;
    assert_eq!(import["spec"]["type"], "ClusterSetIP");
    assert_eq!(import["spec"]["ports"][0]["port"], 80);
    let vip = ips(&import)[0].clone();
    let answer = cs.wait_for_a(1, "shop", "cart").await;
    assert_eq!(
        answer.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [vip]
    );

    let export = cs
        .wait_for_object(0, MCS, "serviceexports", Some("shop"), "cart", |e| {
            condition_is(e, "Ready", "True")
        })
        .await;
    assert!(condition_is(&export, "Valid", "True"));
    assert!(condition_is(&export, "Conflict", "False"));
}

async fn the_importer_sends_to_the_ingress_the_exporter_published(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;

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
    let labels = &published["metadata"]["labels"];
    assert_eq!(labels["multicluster.kubernetes.io/service-name"], "cart");
    assert_eq!(
        labels["multicluster.kubernetes.io/source-cluster"],
        "cluster-1"
    );
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "mcwan.l7mp.io"
    );
    assert_eq!(labels["mcw.l7mp.io/slice"], "ingress");
    assert!(labels.get("kubernetes.io/service-name").is_none());
    assert_eq!(
        published["metadata"]["annotations"]["mcw.l7mp.io/tunnel-class"],
        "gold"
    );
    let port = published["ports"][0]["port"].as_u64().unwrap();
    assert!(
        (31000..32000).contains(&port),
        "ingress port {port} outside gold's range"
    );
    assert_eq!(published["ports"][0]["name"], "http");

    let imported = cs
        .wait_for_object(
            1,
            DISCOVERY,
            "endpointslices",
            Some("shop"),
            "cart-import-cluster-1",
            |_| true,
        )
        .await;
    assert_eq!(
        imported["metadata"]["labels"]["mcw.l7mp.io/slice"],
        "import"
    );
    assert_eq!(
        imported["metadata"]["labels"]["multicluster.kubernetes.io/source-cluster"],
        "cluster-1"
    );
    assert_eq!(
        imported["endpoints"][0]["addresses"],
        published["endpoints"][0]["addresses"]
    );
    assert_eq!(imported["ports"][0]["port"], published["ports"][0]["port"]);
}

async fn unexport_removes_the_import_its_slices_and_the_dns_name(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;
    cs.wait_for_a(1, "shop", "cart").await;
    cs.wait_for_object(
        1,
        DISCOVERY,
        "endpointslices",
        Some("shop"),
        "cart-import-cluster-1",
        |_| true,
    )
    .await;

    cs.api(0)
        .delete(MCS, "serviceexports", Some("shop"), "cart")
        .await;
    cs.wait_for_nxdomain(1, "shop", "cart").await;
    cs.wait_for_absent(1, MCS, "serviceimports", Some("shop"), "cart")
        .await;
    cs.wait_for_absent(
        1,
        DISCOVERY,
        "endpointslices",
        Some("shop"),
        "cart-import-cluster-1",
    )
    .await;
    cs.wait_for_absent(
        0,
        DISCOVERY,
        "endpointslices",
        Some("shop"),
        "cart-mcwan-cluster-1",
    )
    .await;
}

async fn no_import_where_the_namespace_is_absent_until_it_is_created(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    cs.api(0).create_namespace("billing").await;
    export_service(cs.api(0), "billing", "ledger").await;
    cs.wait_for_object(0, MCS, "serviceexports", Some("billing"), "ledger", |e| {
        condition_is(e, "Ready", "True")
    })
    .await;
    // Give the importer time to (wrongly) act, then check it did not.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(cs
        .api(1)
        .get(MCS, "serviceimports", Some("billing"), "ledger")
        .await
        .is_none());
    cs.wait_for_nxdomain(1, "billing", "ledger").await;

    cs.api(1).create_namespace("billing").await;
    cs.wait_for_object(1, MCS, "serviceimports", Some("billing"), "ledger", |_| {
        true
    })
    .await;
    cs.wait_for_a(1, "billing", "ledger").await;
}

async fn a_headless_export_imports_its_ready_endpoints_with_hostnames(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    let api = cs.api(0);
    api.create(mk_headless("shop", "db", &[("pg", 5432)])).await;
    api.create(mk_slice(
        "shop",
        "db",
        &[("db-0", "10.1.0.7")],
        &[("pg", 5432)],
    ))
    .await;
    api.create(mk_export("shop", "db", None)).await;

    let import = cs
        .wait_for_object(1, MCS, "serviceimports", Some("shop"), "db", |_| true)
        .await;
    assert_eq!(import["spec"]["type"], "Headless");
    assert!(import["spec"].get("ips").is_none());
    let slice = cs
        .wait_for_object(
            1,
            DISCOVERY,
            "endpointslices",
            Some("shop"),
            "db-import-cluster-1",
            |_| true,
        )
        .await;
    assert_eq!(slice["endpoints"][0]["hostname"], "db-0");
    assert_eq!(slice["endpoints"][0]["addresses"][0], "10.1.0.7");
    let answer = cs.wait_for_a(1, "shop", "db").await;
    assert_eq!(answer, [std::net::Ipv4Addr::new(10, 1, 0, 7)]);
}
