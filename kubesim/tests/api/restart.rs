//! Restarting the server: clients see it die, watches resume from their version.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{PostParams, WatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use serde_json::json;

use crate::support::{collect_until, mk_configmap, sim, within};

fn applied(event: &Result<Event<ConfigMap>, watcher::Error>, name: &str) -> bool {
    matches!(event, Ok(Event::Apply(cm)) if cm.metadata.name.as_deref() == Some(name))
}

fn is_relist(event: &Result<Event<ConfigMap>, watcher::Error>) -> bool {
    matches!(
        event,
        Ok(Event::Init | Event::InitApply(_) | Event::InitDone)
    )
}

#[tokio::test]
async fn open_watches_are_cut_when_the_server_stops() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let mut events = maps
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .expect("watching")
        .boxed();
    sim.stop().await;
    assert!(!sim.is_running().await);
    within("the watch to end", async {
        while let Some(event) = events.next().await {
            if event.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(maps.get_opt("x").await.is_err(), "the server is down");
}

#[tokio::test]
async fn watcher_resumes_after_a_restart_without_relisting() {
    let sim = sim().await;
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let pp = PostParams::default();
    maps.create(&pp, &mk_configmap("a", &[]))
        .await
        .expect("created");
    let mut events = watcher::watcher(maps.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    collect_until("the initial list", &mut events, |e| {
        matches!(e, Ok(Event::InitDone))
    })
    .await;
    maps.create(&pp, &mk_configmap("b", &[]))
        .await
        .expect("created");
    collect_until("b", &mut events, |e| applied(e, "b")).await;
    let rv_before = sim.resource_version();

    sim.stop().await;
    sim.create_json(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "while-down", "namespace": "default"}
    }))
    .expect("written while the listener is down");
    sim.resume().await.expect("resumed on the same port");

    maps.create(&pp, &mk_configmap("c", &[]))
        .await
        .expect("created after restart");
    let seen = collect_until("c", &mut events, |e| applied(e, "c")).await;
    assert!(
        seen.iter().any(|e| applied(e, "while-down")),
        "change made while down is delivered"
    );
    assert!(
        !seen.iter().any(is_relist),
        "kube-rs re-watches from its resource version: no relist after a plain restart"
    );
    assert!(
        sim.resource_version() > rv_before,
        "resource versions continue across restarts"
    );
}

#[tokio::test]
async fn restart_keeps_objects_and_the_port() {
    let sim = sim().await;
    let url = sim.url();
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let created = maps
        .create(&PostParams::default(), &mk_configmap("a", &[]))
        .await
        .expect("created");
    sim.restart().await.expect("restarted");
    assert_eq!(sim.url(), url);
    let fetched = maps.get("a").await.expect("still there");
    assert_eq!(
        fetched.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(fetched.metadata.uid, created.metadata.uid);
}
