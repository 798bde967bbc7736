//! Create, get, list, replace and their errors, through `kube::Api`.

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;
use serde_json::json;

use crate::support::{api_code, exports, mk_configmap, mk_export, mk_service, sim};

#[tokio::test]
async fn create_get_list_and_replace_a_service() {
    let sim = sim().await;
    let services: Api<Service> = Api::namespaced(sim.client(), "default");

    let created = services
        .create(&PostParams::default(), &mk_service("web", 80))
        .await
        .expect("created");
    let meta = &created.metadata;
    assert!(meta.uid.is_some());
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let spec = created.spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert!(spec
        .cluster_ip
        .as_deref()
        .is_some_and(|ip| ip.starts_with("10.96.")));

    let fetched = services.get("web").await.expect("fetched");
    assert_eq!(fetched.metadata.resource_version, meta.resource_version);

    let list = services.list(&ListParams::default()).await.expect("listed");
    assert_eq!(list.items.len(), 1);
    let list_rv: u64 = list
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("list resourceVersion");
    assert_eq!(list_rv, sim.resource_version());

    let mut changed = fetched.clone();
    changed
        .spec
        .as_mut()
        .expect("spec")
        .ports
        .as_mut()
        .expect("ports")[0]
        .port = 8080;
    let replaced = services
        .replace("web", &PostParams::default(), &changed)
        .await
        .expect("replaced");
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_eq!(replaced.spec.and_then(|s| s.cluster_ip), spec.cluster_ip);
}

#[tokio::test]
async fn creating_an_existing_object_is_already_exists() {
    let sim = sim().await;
    let services: Api<Service> = Api::namespaced(sim.client(), "default");
    let pp = PostParams::default();
    services
        .create(&pp, &mk_service("web", 80))
        .await
        .expect("created");
    let (code, reason) = api_code(services.create(&pp, &mk_service("web", 80)).await);
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
}

#[tokio::test]
async fn replacing_with_a_stale_resource_version_is_a_conflict() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PostParams::default();
    let first = maps
        .create(&pp, &mk_configmap("cfg", &[("a", "1")]))
        .await
        .expect("created");
    let mut newer = first.clone();
    newer.data = mk_configmap("cfg", &[("a", "2")]).data;
    maps.replace("cfg", &pp, &newer)
        .await
        .expect("first writer wins");
    let mut stale = first;
    stale.data = mk_configmap("cfg", &[("a", "3")]).data;
    let (code, reason) = api_code(maps.replace("cfg", &pp, &stale).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
}

#[tokio::test]
async fn getting_a_missing_object_is_not_found() {
    let sim = sim().await;
    let services: Api<Service> = Api::namespaced(sim.client(), "default");
    let (code, reason) = api_code(services.get("nope").await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert!(services.get_opt("nope").await.expect("get_opt").is_none());
}

#[tokio::test]
async fn invalid_names_are_rejected() {
    let sim = sim().await;
    let services: Api<Service> = Api::namespaced(sim.client(), "default");
    let (code, reason) = api_code(
        services
            .create(&PostParams::default(), &mk_service("Not_A_Name", 80))
            .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn objects_in_a_missing_namespace_are_rejected() {
    let sim = sim().await;
    let services: Api<Service> = Api::namespaced(sim.client(), "nowhere");
    let (code, _) = api_code(
        services
            .create(&PostParams::default(), &mk_service("web", 80))
            .await,
    );
    assert_eq!(code, 404);
    sim.create_namespace("nowhere").expect("namespace created");
    services
        .create(&PostParams::default(), &mk_service("web", 80))
        .await
        .expect("created once the namespace exists");
}

#[tokio::test]
async fn a_body_of_another_kind_is_a_bad_request() {
    let sim = sim().await;
    let request = hyper::Request::post("/api/v1/namespaces/default/services")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            )
            .expect("json"),
        )
        .expect("request");
    let (code, reason) = api_code(sim.client().request::<serde_json::Value>(request).await);
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn dynamic_objects_round_trip_with_their_own_fields() {
    let sim = sim().await;
    let api = exports(sim.client(), "default");
    api.create(&PostParams::default(), &mk_export("web", Some("gold")))
        .await
        .expect("created");
    let list = api.list(&ListParams::default()).await.expect("listed");
    assert_eq!(list.items.len(), 1);
    let export = &list.items[0];
    assert_eq!(
        export
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("mcw.l7mp.io/mc-wan-policy")),
        Some(&"gold".to_owned())
    );
    let stored = sim
        .get_json(
            "multicluster.x-k8s.io/v1alpha1",
            "serviceexports",
            Some("default"),
            "web",
        )
        .expect("stored");
    assert_eq!(stored["kind"], "ServiceExport");
}

#[tokio::test]
async fn delete_returns_the_object_and_removes_it() {
    let sim = sim().await;
    let services: Api<Service> = Api::namespaced(sim.client(), "default");
    services
        .create(&PostParams::default(), &mk_service("web", 80))
        .await
        .expect("created");
    let deleted = services
        .delete("web", &DeleteParams::default())
        .await
        .expect("deleted");
    let object = deleted.left().expect("the deleted object");
    assert_eq!(object.metadata.name.as_deref(), Some("web"));
    assert!(services.get_opt("web").await.expect("get").is_none());
}

#[tokio::test]
async fn delete_collection_removes_matching_objects() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    for name in ["a", "b"] {
        let mut cm = mk_configmap(name, &[]);
        cm.metadata.labels = crate::support::labels(&[("group", "x")]);
        maps.create(&PostParams::default(), &cm)
            .await
            .expect("created");
    }
    maps.create(&PostParams::default(), &mk_configmap("c", &[]))
        .await
        .expect("created");
    maps.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("group=x"),
    )
    .await
    .expect("deleted");
    let left: Vec<String> = maps
        .list(&ListParams::default())
        .await
        .expect("listed")
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn generation_follows_spec_changes_only() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PostParams::default();
    let created = maps
        .create(&pp, &mk_configmap("cfg", &[("a", "1")]))
        .await
        .expect("created");
    let mut labelled = created.clone();
    labelled.metadata.labels = crate::support::labels(&[("x", "y")]);
    let labelled = maps.replace("cfg", &pp, &labelled).await.expect("labelled");
    assert_eq!(labelled.metadata.generation, Some(1));
    let mut changed = labelled.clone();
    changed.data = mk_configmap("cfg", &[("a", "2")]).data;
    let changed = maps.replace("cfg", &pp, &changed).await.expect("changed");
    assert_eq!(changed.metadata.generation, Some(2));
}
