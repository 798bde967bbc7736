//! The `kubesim` binary: serves on the given port and prints a kubeconfig path.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::within;

#[tokio::test]
async fn the_binary_prints_a_kubeconfig_that_reaches_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["--port", "0", "--context", "by-hand", "--kubeconfig"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kubesim starts");
    let stdout = child.stdout.take().expect("stdout");
    let line = within("the kubeconfig path", async {
        BufReader::new(stdout).lines().next_line().await
    })
    .await
    .expect("readable stdout")
    .expect("a line");
    assert_eq!(line, path.display().to_string());

    let kubeconfig = Kubeconfig::read_from(&path).expect("kubeconfig file");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    let namespaces: Api<Namespace> = Api::all(Client::try_from(config).expect("client"));
    let list = namespaces
        .list(&ListParams::default())
        .await
        .expect("listed");
    assert!(list
        .items
        .iter()
        .any(|ns| ns.metadata.name.as_deref() == Some("default")));
    child.kill().await.expect("stopped");
}
