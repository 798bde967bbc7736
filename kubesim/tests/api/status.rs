//! The status subresource: status writes change only `.status`, main writes ignore it.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::{exports, mk_export, sim};

#[tokio::test]
async fn status_patch_changes_only_status() {
    let sim = sim().await;
    let api = exports(sim.client(), "default");
    let created = api
        .create(&PostParams::default(), &mk_export("web", None))
        .await
        .expect("created");
    let patch = json!({
        "metadata": {"labels": {"sneaky": "yes"}},
        "status": {"conditions": [{"type": "Valid", "status": "True"}]}
    });
    let patched = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("status patched");
    assert_eq!(patched.data["status"]["conditions"][0]["type"], "Valid");
    assert!(
        patched.metadata.labels.is_none(),
        "metadata ignored by /status"
    );
    assert_eq!(patched.metadata.generation, created.metadata.generation);
}

#[tokio::test]
async fn main_resource_writes_ignore_status() {
    let sim = sim().await;
    let api = exports(sim.client(), "default");
    let mut export = mk_export("web", None);
    export.data["status"] = json!({"conditions": [{"type": "Forged"}]});
    let created = api
        .create(&PostParams::default(), &export)
        .await
        .expect("created");
    assert!(
        created.data.get("status").is_none(),
        "status dropped on create"
    );

    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready"}]}})),
    )
    .await
    .expect("status set");
    let patched = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Forged"}]}})),
        )
        .await
        .expect("main patch accepted");
    assert_eq!(patched.data["status"]["conditions"][0]["type"], "Ready");
}

#[tokio::test]
async fn status_replace_keeps_spec_and_apply_to_status_works() {
    let sim = sim().await;
    let api = exports(sim.client(), "default");
    let created = api
        .create(&PostParams::default(), &mk_export("web", None))
        .await
        .expect("created");
    let mut body = created.clone();
    body.data["spec"] = json!({"changed": true});
    body.data["status"] = json!({"conditions": [{"type": "Valid"}]});
    let replaced = api
        .replace_status("web", &PostParams::default(), &body)
        .await
        .expect("status replaced");
    assert_eq!(replaced.data["spec"], json!({}));
    assert_eq!(replaced.data["status"]["conditions"][0]["type"], "Valid");

    let applied = json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": "web"},
        "status": {"conditions": [{"type": "Ready"}]}
    });
    let applied = api
        .patch_status(
            "web",
            &PatchParams::apply("mcwan").force(),
            &Patch::Apply(&applied),
        )
        .await
        .expect("status applied");
    assert_eq!(applied.data["status"]["conditions"][0]["type"], "Ready");
}
