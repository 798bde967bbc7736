//! CustomResourceDefinitions, discovery, and several simulators as several clusters.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::Discovery;
use kube::{Api, Client, Config};
use serde_json::json;

use crate::support::{api_code, sim};

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.io"},
        "spec": {
            "group": "example.io",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}
            }]
        }
    }))
    .expect("valid CRD")
}

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.io", "v1", "Widget"),
        "widgets",
    )
}

#[tokio::test]
async fn creating_a_crd_serves_its_resource_until_it_is_deleted() {
    let sim = sim().await;
    let crds: Api<CustomResourceDefinition> = Api::all(sim.client());
    let created = crds
        .create(&PostParams::default(), &widget_crd())
        .await
        .expect("CRD created");
    let established = created
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);

    let api: Api<DynamicObject> = Api::namespaced_with(sim.client(), "default", &widget_resource());
    let mut widget = DynamicObject::new("w1", &widget_resource());
    widget.data = json!({"spec": {"size": 3}});
    api.create(&PostParams::default(), &widget)
        .await
        .expect("widget created");

    let discovery = Discovery::new(sim.client()).run().await.expect("discovery");
    assert!(discovery.has_group("example.io"));

    crds.delete("widgets.example.io", &DeleteParams::default())
        .await
        .expect("CRD deleted");
    let (code, _) = api_code(api.list(&ListParams::default()).await);
    assert_eq!(code, 404);
}

#[tokio::test]
async fn discovery_finds_the_multicluster_resources() {
    let sim = sim().await;
    let discovery = Discovery::new(sim.client()).run().await.expect("discovery");
    for group in [
        "multicluster.x-k8s.io",
        "mcw.l7mp.io",
        "about.k8s.io",
        "discovery.k8s.io",
    ] {
        assert!(discovery.has_group(group), "{group} is discovered");
    }
    let (resource, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "mcw.l7mp.io",
            "v1alpha1",
            "WANPolicy",
        ))
        .expect("WANPolicy resolved");
    assert_eq!(resource.plural, "wanpolicies");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
}

#[tokio::test]
async fn kubeconfigs_give_clients_for_separate_clusters() {
    let east = sim().await;
    let west = sim().await;
    east.create_namespace("only-east").expect("namespace");
    for (sim, context, expected) in [(&east, "east", true), (&west, "west", false)] {
        let kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig_yaml(context)).expect("kubeconfig");
        let options = KubeConfigOptions {
            context: Some(context.to_owned()),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .expect("config");
        let client = Client::try_from(config).expect("client");
        let namespaces: Api<Namespace> = Api::all(client);
        let found = namespaces
            .get_opt("only-east")
            .await
            .expect("get")
            .is_some();
        assert_eq!(found, expected, "{context}");
    }
}
