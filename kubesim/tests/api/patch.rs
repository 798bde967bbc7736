//! Merge, JSON and strategic merge patches through `kube::Api::patch`.

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

use crate::support::{api_code, mk_configmap, mk_service, sim};

#[tokio::test]
async fn merge_patch_sets_and_removes_fields() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    maps.create(
        &PostParams::default(),
        &mk_configmap("cfg", &[("a", "1"), ("b", "2")]),
    )
    .await
    .expect("created");
    let patch = json!({"metadata": {"labels": {"team": "net"}}, "data": {"a": "9", "b": null}});
    let patched = maps
        .patch("cfg", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    assert_eq!(patched.data, crate::support::labels(&[("a", "9")]));
    assert_eq!(
        patched.metadata.labels,
        crate::support::labels(&[("team", "net")])
    );
}

#[tokio::test]
async fn json_patch_applies_operations_in_order() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    maps.create(&PostParams::default(), &mk_configmap("cfg", &[("a", "1")]))
        .await
        .expect("created");
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "remove", "path": "/data/a"}
    ]))
    .expect("json patch");
    let patched = maps
        .patch("cfg", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("patched");
    assert_eq!(patched.data, crate::support::labels(&[("b", "2")]));
}

#[tokio::test]
async fn failing_json_patch_test_is_invalid_and_changes_nothing() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let created = maps
        .create(&PostParams::default(), &mk_configmap("cfg", &[("a", "1")]))
        .await
        .expect("created");
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/data/a", "value": "2"},
        {"op": "test", "path": "/data/a", "value": "3"}
    ]))
    .expect("json patch");
    let (code, _) = api_code(
        maps.patch("cfg", &PatchParams::default(), &Patch::<()>::Json(ops))
            .await,
    );
    assert_eq!(code, 422);
    let now = maps.get("cfg").await.expect("fetched");
    assert_eq!(
        now.metadata.resource_version,
        created.metadata.resource_version
    );
}

#[tokio::test]
async fn strategic_merge_patch_merges_ports_by_name() {
    let sim = sim().await;
    let services: Api<Service> = Api::namespaced(sim.client(), "default");
    services
        .create(&PostParams::default(), &mk_service("web", 80))
        .await
        .expect("created");
    let patch = json!({"spec": {
        "$setElementOrder/ports": [{"name": "http"}, {"name": "dns"}],
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]
    }});
    let patched = services
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patched");
    let ports: Vec<(String, i32)> = patched
        .spec
        .and_then(|s| s.ports)
        .expect("ports")
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.port))
        .collect();
    assert_eq!(ports, [("http".to_owned(), 80), ("dns".to_owned(), 53)]);
}

#[tokio::test]
async fn patching_a_missing_object_is_not_found() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let (code, _) = api_code(
        maps.patch(
            "nope",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {}})),
        )
        .await,
    );
    assert_eq!(code, 404);
}

#[tokio::test]
async fn an_unknown_patch_media_type_is_unsupported() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    maps.create(&PostParams::default(), &mk_configmap("cfg", &[]))
        .await
        .expect("created");
    let request = hyper::Request::patch("/api/v1/namespaces/default/configmaps/cfg")
        .header("content-type", "text/plain")
        .body(b"data".to_vec())
        .expect("request");
    let (code, reason) = api_code(sim.client().request::<serde_json::Value>(request).await);
    assert_eq!((code, reason.as_str()), (415, "UnsupportedMediaType"));
}
