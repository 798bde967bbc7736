//! Deletion with finalizers, and namespace deletion.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::Api;
use serde_json::json;

use crate::support::{collect_until, mk_configmap, sim};

#[tokio::test]
async fn delete_with_finalizers_marks_the_object_until_they_are_removed() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let mut cm = mk_configmap("held", &[]);
    cm.metadata.finalizers = Some(vec!["mcw.l7mp.io/cleanup".to_owned()]);
    maps.create(&PostParams::default(), &cm)
        .await
        .expect("created");
    let rv = sim.resource_version().to_string();
    let mut events = maps
        .watch(&WatchParams::default().disable_bookmarks().timeout(30), &rv)
        .await
        .expect("watching")
        .boxed();

    let marked = maps
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete accepted")
        .left()
        .expect("the object, still present");
    assert!(marked.metadata.deletion_timestamp.is_some());
    let still = maps
        .get("held")
        .await
        .expect("kept while finalizers remain");
    assert!(still.metadata.deletion_timestamp.is_some());

    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("finalizer removed");
    assert!(maps.get_opt("held").await.expect("get").is_none());

    let seen = collect_until("DELETED", &mut events, |e| {
        matches!(e, Ok(WatchEvent::Deleted(_)))
    })
    .await;
    assert!(matches!(seen[0], Ok(WatchEvent::Modified(_))), "{seen:?}");
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let sim = sim().await;
    sim.create_namespace("team").expect("namespace");
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "team");
    maps.create(&PostParams::default(), &mk_configmap("a", &[]))
        .await
        .expect("created");
    let namespaces: Api<Namespace> = Api::all(sim.client());
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .expect("deleted");
    assert!(namespaces.get_opt("team").await.expect("get").is_none());
    assert!(sim.list_json("v1", "configmaps", Some("team")).is_empty());
}
