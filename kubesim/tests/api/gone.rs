//! 410 Gone: versions older than the history window, and recovery by relisting.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams, VersionMatch, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{reflector, WatchStreamExt};
use kube::Api;
use mcwan_kubesim::SimConfig;
use serde_json::json;

use crate::support::{api_code, collect_until, mk_configmap, sim, sim_with, within};

#[tokio::test]
async fn watch_from_a_compacted_version_gets_410_expired_in_the_stream() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PostParams::default();
    maps.create(&pp, &mk_configmap("a", &[]))
        .await
        .expect("created");
    let old = sim.resource_version().to_string();
    maps.create(&pp, &mk_configmap("b", &[]))
        .await
        .expect("created");
    sim.compact();
    let mut events = maps
        .watch(&WatchParams::default(), &old)
        .await
        .expect("HTTP 200 with the error inside the stream")
        .boxed();
    let first = within("the error event", events.next())
        .await
        .expect("an event");
    match first {
        Ok(WatchEvent::Error(status)) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn the_history_window_bounds_watchable_versions() {
    let sim = sim_with(SimConfig::default().history_limit(3)).await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let first = sim.resource_version().to_string();
    for name in ["a", "b", "c", "d"] {
        maps.create(&PostParams::default(), &mk_configmap(name, &[]))
            .await
            .expect("created");
    }
    let mut events = maps
        .watch(&WatchParams::default(), &first)
        .await
        .expect("watching")
        .boxed();
    let event = within("the error event", events.next())
        .await
        .expect("an event");
    assert!(
        matches!(event, Ok(WatchEvent::Error(ref s)) if s.code == 410),
        "{event:?}"
    );
}

#[tokio::test]
async fn exact_list_older_than_the_window_is_gone() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    maps.create(&PostParams::default(), &mk_configmap("a", &[]))
        .await
        .expect("created");
    let old = sim.resource_version();
    maps.create(&PostParams::default(), &mk_configmap("b", &[]))
        .await
        .expect("created");
    let exact = |rv: u64| ListParams {
        resource_version: Some(rv.to_string()),
        version_match: Some(VersionMatch::Exact),
        ..ListParams::default()
    };
    let at_old = maps.list(&exact(old)).await.expect("still in the window");
    assert_eq!(
        at_old.items.len(),
        1,
        "the list shows the state at that version"
    );
    assert_eq!(at_old.metadata.resource_version, Some(old.to_string()));
    sim.compact();
    let (code, reason) = api_code(maps.list(&exact(old)).await);
    assert_eq!((code, reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn watcher_relists_after_gone_and_the_reflector_converges() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    for name in ["a", "b"] {
        maps.create(&PostParams::default(), &mk_configmap(name, &[]))
            .await
            .expect("created");
    }
    let (reader, writer) = reflector::store();
    let mut events = watcher::watcher(maps.clone(), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .boxed();
    collect_until("the initial list", &mut events, |e| {
        matches!(e, Ok(Event::InitDone))
    })
    .await;

    sim.stop().await;
    sim.delete_json("v1", "configmaps", Some("default"), "a")
        .expect("deleted while down");
    sim.create_json(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"}
    }))
    .expect("created while down");
    sim.compact();
    sim.resume().await.expect("resumed");

    let seen = collect_until("the relist", &mut events, |e| {
        matches!(e, Ok(Event::InitDone))
    })
    .await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Err(watcher::Error::WatchError(status)) if status.code == 410
        )),
        "the watcher saw 410 Gone before relisting: {seen:?}"
    );
    let mut names: Vec<String> = reader
        .state()
        .iter()
        .filter_map(|cm| cm.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["b", "c"]);
}
