//! Watches: resource versions, bookmarks, timeouts.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::Api;

use crate::support::{collect_until, mk_configmap, sim, within};

fn name_of(event: &Result<WatchEvent<ConfigMap>, kube::Error>) -> Option<String> {
    match event {
        Ok(WatchEvent::Added(cm) | WatchEvent::Modified(cm) | WatchEvent::Deleted(cm)) => {
            cm.metadata.name.clone()
        }
        _ => None,
    }
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_only_later_events() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PostParams::default();
    maps.create(&pp, &mk_configmap("before", &[]))
        .await
        .expect("created");
    let rv = sim.resource_version().to_string();
    maps.create(&pp, &mk_configmap("after", &[]))
        .await
        .expect("created");
    let mut events = maps
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .expect("watching")
        .boxed();
    let first = within("first event", events.next())
        .await
        .expect("an event");
    assert_eq!(name_of(&first).as_deref(), Some("after"));
    maps.create(&pp, &mk_configmap("live", &[]))
        .await
        .expect("created");
    let seen = collect_until("live event", &mut events, |e| name_of(e).is_some()).await;
    assert_eq!(
        name_of(seen.last().expect("event")).as_deref(),
        Some("live")
    );
}

#[tokio::test]
async fn watch_from_zero_starts_with_the_current_state() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    maps.create(&PostParams::default(), &mk_configmap("a", &[]))
        .await
        .expect("created");
    let mut events = maps
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .expect("watching")
        .boxed();
    let first = within("initial ADDED", events.next()).await.expect("event");
    assert!(matches!(first, Ok(WatchEvent::Added(_))), "{first:?}");
}

#[tokio::test]
async fn bookmarks_arrive_with_the_current_resource_version() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    maps.create(&PostParams::default(), &mk_configmap("a", &[]))
        .await
        .expect("created");
    let rv = sim.resource_version();
    let mut events = maps
        .watch(&WatchParams::default().timeout(30), &rv.to_string())
        .await
        .expect("watching")
        .boxed();
    let seen = collect_until("a bookmark", &mut events, |e| {
        matches!(e, Ok(WatchEvent::Bookmark(_)))
    })
    .await;
    let Some(Ok(WatchEvent::Bookmark(bookmark))) = seen.last() else {
        panic!("expected a bookmark");
    };
    assert_eq!(bookmark.metadata.resource_version, rv.to_string());
}

#[tokio::test]
async fn watch_timeout_ends_the_stream() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let mut events = maps
        .watch(&WatchParams::default().disable_bookmarks().timeout(1), "0")
        .await
        .expect("watching")
        .boxed();
    within("the watch to time out", async {
        while events.next().await.is_some() {}
    })
    .await;
}

#[tokio::test]
async fn streaming_list_initial_events_end_with_a_bookmark() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    maps.create(&PostParams::default(), &mk_configmap("a", &[]))
        .await
        .expect("created");
    let config = kube::runtime::watcher::Config::default().streaming_lists();
    let mut events = kube::runtime::watcher(maps.clone(), config).boxed();
    let seen = collect_until("InitDone", &mut events, |e| {
        matches!(e, Ok(kube::runtime::watcher::Event::InitDone))
    })
    .await;
    let applied = seen
        .iter()
        .filter(|e| matches!(e, Ok(kube::runtime::watcher::Event::InitApply(_))))
        .count();
    assert_eq!(applied, 1);
}

#[tokio::test]
async fn watching_one_object_follows_only_that_object() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PostParams::default();
    maps.create(&pp, &mk_configmap("mine", &[]))
        .await
        .expect("created");
    let rv = sim.resource_version().to_string();
    let request = hyper::Request::get(format!(
        "/api/v1/namespaces/default/configmaps/mine?watch=true&resourceVersion={rv}&timeoutSeconds=30"
    ))
    .body(Vec::new())
    .expect("request");
    let mut events = sim
        .client()
        .request_events::<ConfigMap>(request)
        .await
        .expect("watching")
        .boxed();
    maps.create(&pp, &mk_configmap("other", &[]))
        .await
        .expect("created");
    maps.delete("mine", &kube::api::DeleteParams::default())
        .await
        .expect("deleted");
    let first = within("an event", events.next()).await.expect("event");
    assert!(
        matches!(first, Ok(WatchEvent::Deleted(ref cm)) if cm.metadata.name.as_deref() == Some("mine")),
        "{first:?}"
    );
}
