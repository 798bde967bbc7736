//! Where kubesim and kube-apiserver must answer alike: the API behaviour the gateway and the
//! deployment depend on, asked of both (each difference found is listed in kubesim/README.md).

use serde_json::{json, Value};

use crate::support::*;

crate::on_both_api_servers!(
    a_crd_of_a_protected_group_needs_the_approval_annotation,
    an_unchanged_apply_leaves_a_crd_and_an_object_as_they_were,
    an_object_in_a_missing_namespace_is_not_found,
    a_status_written_with_the_object_is_dropped_where_status_is_a_subresource,
);

fn widget_crd(group: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}"), "annotations": annotations},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]},
    })
}

fn rv(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap()
}

async fn a_crd_of_a_protected_group_needs_the_approval_annotation(backend: Backend) {
    let cs = Clusterset::new(backend, 1).await;
    let err = cs
        .api(0)
        .try_create(widget_crd("example.k8s.io", json!({})))
        .await
        .expect_err("an unapproved CRD in a protected group was accepted");
    assert!(
        err.contains(
            "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation"
        ),
        "{err}"
    );
    let approved = json!({"api-approved.kubernetes.io": "https://github.com/kubernetes/enhancements/pull/1111"});
    cs.api(0)
        .create(widget_crd("example.k8s.io", approved))
        .await;
    cs.api(0)
        .create(widget_crd("example.x-k8s.io", json!({})))
        .await;
}

async fn an_unchanged_apply_leaves_a_crd_and_an_object_as_they_were(backend: Backend) {
    let cs = Clusterset::new(backend, 1).await;
    let api = cs.api(0);
    let crd = widget_crd("example.com", json!({}));
    api.apply(crd.clone(), "mcwan-tests").await;
    // The server marks a new CRD established (a write of its own) before it settles.
    let first = cs
        .wait_for_object(
            0,
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            None,
            "widgets.example.com",
            |crd| testbed::has_condition(crd, "Established", "True"),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let first = api
        .get(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            None,
            "widgets.example.com",
        )
        .await
        .unwrap_or(first);
    let again = api.apply(crd, "mcwan-tests").await;
    assert_eq!(rv(&first), rv(&again), "an unchanged CRD was rewritten");
    let service = mk_service("shop", "cart", &[("http", 80)]);
    let first = api.apply(service.clone(), "mcwan-tests").await;
    let again = api.apply(service, "mcwan-tests").await;
    assert_eq!(rv(&first), rv(&again), "an unchanged Service was rewritten");
}

async fn an_object_in_a_missing_namespace_is_not_found(backend: Backend) {
    let cs = Clusterset::new(backend, 1).await;
    let err = cs
        .api(0)
        .try_create(mk_service("nowhere", "cart", &[("http", 80)]))
        .await
        .expect_err("created in a namespace that does not exist");
    assert!(err.contains("namespaces \"nowhere\" not found"), "{err}");
}

async fn a_status_written_with_the_object_is_dropped_where_status_is_a_subresource(
    backend: Backend,
) {
    let cs = Clusterset::new(backend, 1).await;
    let mut export = mk_export("shop", "cart", Some("gold"));
    export["status"] = json!({"conditions": [{"type": "Valid", "status": "True", "reason": "Valid",
        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    let created = cs.api(0).create(export).await;
    assert!(created.get("status").is_none(), "{created:#}");
    let stored = cs
        .api(0)
        .get(MCS, "serviceexports", Some("shop"), "cart")
        .await
        .unwrap();
    assert!(stored.get("status").is_none(), "{stored:#}");
}
