//! Builders and helpers shared by the tests.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ObjectMeta};
use kube::{Api, Client};
use mcwan_kubesim::{KubeSim, SimConfig};
use serde_json::json;

/// How long any wait in these tests may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A simulator with bookmarks every 100 ms.
pub async fn sim() -> KubeSim {
    sim_with(SimConfig::default()).await
}

/// A simulator with `config` and bookmarks every 100 ms.
pub async fn sim_with(config: SimConfig) -> KubeSim {
    KubeSim::start_with(config.bookmark_interval(Duration::from_millis(100)))
        .await
        .expect("simulator starts")
}

pub fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

pub fn mk_service(name: &str, port: i32) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: labels(&[("app", name)]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: labels(&[("app", name)]),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn mk_configmap(name: &str, pairs: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: labels(pairs),
        ..ConfigMap::default()
    }
}

pub fn export_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("multicluster.x-k8s.io", "v1alpha1", "ServiceExport"),
        "serviceexports",
    )
}

pub fn exports(client: Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &export_resource())
}

pub fn mk_export(name: &str, policy: Option<&str>) -> DynamicObject {
    let mut export = DynamicObject::new(name, &export_resource());
    if let Some(policy) = policy {
        export.metadata.annotations = labels(&[("mcw.l7mp.io/mc-wan-policy", policy)]);
    }
    export.data = json!({"spec": {}});
    export
}

/// The HTTP status code of a kube-rs API error.
pub fn api_code<T: Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Run `fut` with [`PATIENCE`] or fail naming `what`.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Take items from `stream` until one satisfies `pred`; returns everything taken.
pub async fn collect_until<S, T>(
    what: &str,
    stream: &mut S,
    mut pred: impl FnMut(&T) -> bool,
) -> Vec<T>
where
    S: Stream<Item = T> + Unpin,
{
    within(what, async {
        let mut seen = Vec::new();
        while let Some(item) = stream.next().await {
            let done = pred(&item);
            seen.push(item);
            if done {
                return seen;
            }
        }
        panic!("stream ended while waiting for {what}");
    })
    .await
}
