//! Server-side apply through `Patch::Apply` with `PatchParams::apply("mcwan")`.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;

use crate::support::{api_code, exports, sim};

fn applied_configmap(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data})
}

#[tokio::test]
async fn apply_creates_then_updates() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PatchParams::apply("mcwan");
    let created = maps
        .patch(
            "cfg",
            &pp,
            &Patch::Apply(applied_configmap(json!({"a": "1"}))),
        )
        .await
        .expect("created by apply");
    assert_eq!(created.metadata.generation, Some(1));
    let managed = created.metadata.managed_fields.expect("managed fields");
    assert_eq!(managed[0].manager.as_deref(), Some("mcwan"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));

    let updated = maps
        .patch(
            "cfg",
            &pp,
            &Patch::Apply(applied_configmap(json!({"a": "2"}))),
        )
        .await
        .expect("updated by apply");
    assert_eq!(updated.data, crate::support::labels(&[("a", "2")]));
    assert_eq!(updated.metadata.uid, created.metadata.uid);
}

#[tokio::test]
async fn reapplying_drops_fields_the_manager_no_longer_applies() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PatchParams::apply("mcwan");
    maps.patch(
        "cfg",
        &pp,
        &Patch::Apply(applied_configmap(json!({"a": "1", "b": "2"}))),
    )
    .await
    .expect("applied");
    maps.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"c": "3"}})),
    )
    .await
    .expect("someone else adds a field");
    let reapplied = maps
        .patch(
            "cfg",
            &pp,
            &Patch::Apply(applied_configmap(json!({"a": "1"}))),
        )
        .await
        .expect("reapplied");
    assert_eq!(
        reapplied.data,
        crate::support::labels(&[("a", "1"), ("c", "3")])
    );
}

#[tokio::test]
async fn applying_over_another_managers_field_conflicts_unless_forced() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    maps.patch(
        "cfg",
        &PatchParams::apply("one"),
        &Patch::Apply(applied_configmap(json!({"a": "1"}))),
    )
    .await
    .expect("applied by one");
    let (code, reason) = api_code(
        maps.patch(
            "cfg",
            &PatchParams::apply("two"),
            &Patch::Apply(applied_configmap(json!({"a": "2"}))),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let forced = maps
        .patch(
            "cfg",
            &PatchParams::apply("two").force(),
            &Patch::Apply(applied_configmap(json!({"a": "2"}))),
        )
        .await
        .expect("forced");
    assert_eq!(forced.data, crate::support::labels(&[("a", "2")]));
}

#[tokio::test]
async fn apply_of_a_dynamic_object_creates_it() {
    let sim = sim().await;
    let api = exports(sim.client(), "default");
    let export = json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
        "kind": "ServiceExport",
        "metadata": {"name": "web"},
    });
    let applied = api
        .patch(
            "web",
            &PatchParams::apply("mcwan").force(),
            &Patch::Apply(&export),
        )
        .await
        .expect("applied");
    assert_eq!(applied.metadata.name.as_deref(), Some("web"));
}

#[tokio::test]
async fn an_unchanged_apply_writes_nothing() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PatchParams::apply("mcwan");
    let first = maps
        .patch(
            "cfg",
            &pp,
            &Patch::Apply(applied_configmap(json!({"a": "1"}))),
        )
        .await
        .expect("applied");
    let again = maps
        .patch(
            "cfg",
            &pp,
            &Patch::Apply(applied_configmap(json!({"a": "1"}))),
        )
        .await
        .expect("applied again");
    assert_eq!(
        first.metadata.resource_version,
        again.metadata.resource_version
    );
}
