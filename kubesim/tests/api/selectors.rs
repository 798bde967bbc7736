//! Label and field selectors on lists and watches.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::Api;
use serde_json::json;

use crate::support::{collect_until, labels, mk_configmap, sim};

async fn seed(maps: &Api<ConfigMap>) {
    for (name, tier) in [("a", Some("web")), ("b", Some("db")), ("c", None)] {
        let mut cm = mk_configmap(name, &[]);
        if let Some(tier) = tier {
            cm.metadata.labels = labels(&[("tier", tier)]);
        }
        maps.create(&PostParams::default(), &cm)
            .await
            .expect("created");
    }
}

async fn names(maps: &Api<ConfigMap>, lp: &ListParams) -> Vec<String> {
    maps.list(lp)
        .await
        .expect("listed")
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect()
}

#[tokio::test]
async fn label_selectors_filter_lists() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    seed(&maps).await;
    let by = |selector: &str| ListParams::default().labels(selector);
    assert_eq!(names(&maps, &by("tier=web")).await, ["a"]);
    assert_eq!(names(&maps, &by("tier==web")).await, ["a"]);
    assert_eq!(names(&maps, &by("tier!=web")).await, ["b", "c"]);
    assert_eq!(names(&maps, &by("tier in (web,db)")).await, ["a", "b"]);
    assert_eq!(names(&maps, &by("tier notin (web)")).await, ["b", "c"]);
    assert_eq!(names(&maps, &by("tier")).await, ["a", "b"]);
    assert_eq!(names(&maps, &by("!tier")).await, ["c"]);
}

#[tokio::test]
async fn field_selectors_filter_by_name_and_namespace() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    seed(&maps).await;
    let by = |selector: &str| ListParams::default().fields(selector);
    assert_eq!(names(&maps, &by("metadata.name=b")).await, ["b"]);
    assert_eq!(names(&maps, &by("metadata.name!=b")).await, ["a", "c"]);
    let all: Api<ConfigMap> = Api::all(sim.client());
    assert_eq!(
        names(&all, &by("metadata.namespace=default")).await.len(),
        3
    );
    assert!(names(&all, &by("metadata.namespace=other"))
        .await
        .is_empty());
}

#[tokio::test]
async fn a_malformed_selector_is_a_bad_request() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let result = maps
        .list(&ListParams::default().labels("tier in web"))
        .await;
    let (code, _) = crate::support::api_code(result);
    assert_eq!(code, 400);
}

#[tokio::test]
async fn watch_with_label_selector_sees_objects_enter_and_leave() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    seed(&maps).await;
    let rv = sim.resource_version().to_string();
    let mut events = maps
        .watch(&WatchParams::default().labels("tier=web").timeout(30), &rv)
        .await
        .expect("watching")
        .boxed();
    let relabel = |tier: &str| Patch::Merge(json!({"metadata": {"labels": {"tier": tier}}}));
    maps.patch("c", &PatchParams::default(), &relabel("web"))
        .await
        .expect("c joins");
    maps.patch("a", &PatchParams::default(), &relabel("db"))
        .await
        .expect("a leaves");
    let seen = collect_until(
        "a to leave",
        &mut events,
        |e| matches!(e, Ok(WatchEvent::Deleted(cm)) if cm.metadata.name.as_deref() == Some("a")),
    )
    .await;
    let summary: Vec<String> = seen
        .into_iter()
        .filter_map(|event| match event.expect("no error") {
            WatchEvent::Added(cm) => {
                Some(format!("ADDED {}", cm.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Modified(cm) => {
                Some(format!("MODIFIED {}", cm.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Deleted(cm) => {
                Some(format!("DELETED {}", cm.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Bookmark(_) => None,
            WatchEvent::Error(err) => panic!("watch error {err:?}"),
        })
        .collect();
    assert_eq!(summary, ["ADDED c", "DELETED a"]);
}
