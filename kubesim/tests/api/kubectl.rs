//! `kubectl` against the simulator: discovery, get, apply, delete.

use std::path::Path;
use std::process::Output;

use kube::api::PostParams;
use mcwan_kubesim::KubeSim;

use crate::support::{exports, mk_export, sim};

const KUBECTL: &str = "/usr/bin/kubectl";

/// `kubectl` with a kubeconfig and discovery cache of its own; `None` (after a loud
/// message) when this machine has no kubectl.
async fn kubectl(sim: &KubeSim, dir: &Path, args: &[&str]) -> Option<Output> {
    if !Path::new(KUBECTL).exists() {
        eprintln!("SKIPPED: {KUBECTL} is missing, kubectl tests did not run");
        return None;
    }
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig, "kubesim")
        .expect("kubeconfig written");
    let output = tokio::process::Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(args)
        .output()
        .await
        .expect("kubectl runs");
    Some(output)
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn kubectl_lists_serviceexports_in_all_namespaces() {
    let sim = sim().await;
    sim.create_namespace("east-apps").expect("namespace");
    exports(sim.client(), "east-apps")
        .create(&PostParams::default(), &mk_export("payment", None))
        .await
        .expect("created");
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(output) = kubectl(&sim, dir.path(), &["get", "serviceexports", "-A"]).await else {
        return;
    };
    let text = stdout(&output);
    let row = text
        .lines()
        .find(|line| line.contains("payment"))
        .unwrap_or_else(|| panic!("no payment row in:\n{text}"));
    assert!(row.starts_with("east-apps"), "{row}");
    let Some(short) = kubectl(
        &sim,
        dir.path(),
        &["get", "svcex", "-n", "east-apps", "-o", "name"],
    )
    .await
    else {
        return;
    };
    assert_eq!(
        stdout(&short).trim(),
        "serviceexport.multicluster.x-k8s.io/payment"
    );
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  labels:
    app: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: PORT
";

#[tokio::test]
async fn kubectl_applies_and_deletes_a_service_manifest() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("service.yaml");
    std::fs::write(&manifest, SERVICE.replace("PORT", "80")).expect("manifest");
    let file = manifest.to_str().expect("utf-8 path");

    let Some(created) = kubectl(&sim, dir.path(), &["apply", "-f", file]).await else {
        return;
    };
    assert!(stdout(&created).contains("service/web created"));
    let stored = sim
        .get_json("v1", "services", Some("default"), "web")
        .expect("stored");
    assert_eq!(stored["spec"]["ports"][0]["port"], 80);

    std::fs::write(&manifest, SERVICE.replace("PORT", "8080")).expect("manifest");
    let Some(configured) = kubectl(&sim, dir.path(), &["apply", "-f", file]).await else {
        return;
    };
    assert!(stdout(&configured).contains("service/web configured"));
    let Some(port) = kubectl(
        &sim,
        dir.path(),
        &[
            "get",
            "service",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].port}",
        ],
    )
    .await
    else {
        return;
    };
    assert_eq!(stdout(&port), "8080");

    let Some(deleted) = kubectl(&sim, dir.path(), &["delete", "-f", file]).await else {
        return;
    };
    assert!(stdout(&deleted).contains("deleted"));
    assert!(sim
        .get_json("v1", "services", Some("default"), "web")
        .is_none());
}

#[tokio::test]
async fn kubectl_server_side_apply_records_its_manager() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("service.yaml");
    std::fs::write(&manifest, SERVICE.replace("PORT", "80")).expect("manifest");
    let file = manifest.to_str().expect("utf-8 path");
    let Some(applied) = kubectl(&sim, dir.path(), &["apply", "--server-side", "-f", file]).await
    else {
        return;
    };
    assert!(stdout(&applied).contains("serverside-applied"));
    let stored = sim
        .get_json("v1", "services", Some("default"), "web")
        .expect("stored");
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "kubectl");
}
