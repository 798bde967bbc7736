//! `mcwan join` on two real kube-apiservers: the peer reader it makes in cluster-1 is the one
//! the deploy base (and so `site.yml`) makes, the kubeconfig it writes into cluster-2's Secret
//! `mcwan-peers` lets cluster-2's gateway import from cluster-1 and write nothing there, and a
//! second join changes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{export_service, testbed, Backend, ClusterApi, Clusterset, TIMEOUT};

/// A kubeconfig list (`KUBECONFIG=a:b`) holding every cluster's context, named by cluster ID.
pub fn all_contexts(cs: &Clusterset) -> String {
    (0..cs.clusters.len())
        .map(|i| cs.kubeconfig(i).display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs mcwan with `KUBECONFIG=kubeconfig`; returns (exit code, stdout, stderr).
pub fn mcwan_with(kubeconfig: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("MCWAN_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What kube-controller-manager's token controller does (none runs here): once the peer
/// reader's token Secret exists, fills it with a real token of its ServiceAccount
/// (TokenRequest) and the cluster's CA. Returns the token.
pub async fn fill_peer_reader_token(api: &ClusterApi) -> String {
    let ClusterApi::Real { client, server, .. } = api else {
        panic!("the token controller stand-in runs on kube-apiserver")
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let secret = testbed::get(
            client,
            "v1",
            "secrets",
            Some("mcwan-system"),
            "mcwan-peer-reader-token",
        )
        .await
        .unwrap();
        if let Some(secret) = secret {
            if let Some(token) = secret["data"]["token"].as_str() {
                return b64d(token);
            }
            let request = hyper::Request::post(
                "/api/v1/namespaces/mcwan-system/serviceaccounts/mcwan-peer-reader/token",
            )
            .header("content-type", "application/json")
            .body(
                serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest", "spec": {}}))
                .unwrap(),
            )
            .unwrap();
            let answer: Value = client.request(request).await.unwrap();
            let token = answer["status"]["token"].as_str().unwrap().to_owned();
            let ca = server.lock().unwrap().ca_pem();
            let filled = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "mcwan-peer-reader-token", "namespace": "mcwan-system"},
                "data": {"token": b64(&token), "ca.crt": b64(&ca), "namespace": b64("mcwan-system")}});
            api.apply(filled, "kube-controller-manager").await;
            return token;
        }
        assert!(Instant::now() < deadline, "join made no token Secret");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn b64(s: &str) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec())).unwrap()
}

pub fn b64d(v: &str) -> String {
    let bytes: k8s_openapi::ByteString = serde_json::from_value(json!(v)).unwrap();
    String::from_utf8(bytes.0).unwrap()
}

/// `mcwan join --context <a> --peer-context <b>` with the token controller stand-in running
/// in `a`; returns (exit code, stdout, stderr) and the peer reader's token.
pub async fn join(
    cs: &Clusterset,
    a: usize,
    b: usize,
    extra: &[&str],
) -> ((i32, String, String), String) {
    let kubeconfig = all_contexts(cs);
    let (a_id, b_id) = (cs.clusters[a].id.clone(), cs.clusters[b].id.clone());
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    let run = tokio::task::spawn_blocking(move || {
        let mut args = vec!["join", "--context", &a_id, "--peer-context", &b_id];
        args.extend(extra.iter().map(String::as_str));
        mcwan_with(&kubeconfig, &args)
    });
    let (out, token) = tokio::join!(run, fill_peer_reader_token(cs.api(a)));
    (out.unwrap(), token)
}

/// The kubeconfig of cluster `peer` in cluster `i`'s Secret mcwan-peers.
pub async fn peer_kubeconfig(cs: &Clusterset, i: usize, peer: &str) -> String {
    let secret = cs
        .api(i)
        .get("v1", "secrets", Some("mcwan-system"), "mcwan-peers")
        .await
        .expect("Secret mcwan-system/mcwan-peers");
    b64d(
        secret["data"][peer]
            .as_str()
            .unwrap_or_else(|| panic!("no key {peer}: {secret}")),
    )
}

/// Replaces cluster `i`'s peer kubeconfig of `peer` (the admin's, as the Clusterset wrote it)
/// with the one join stored in its Secret, as the mounted Secret would.
pub async fn use_joined_kubeconfig(cs: &Clusterset, i: usize, peer: &str) -> PathBuf {
    let path = cs.peers_dir(i).join(peer);
    std::fs::write(&path, peer_kubeconfig(cs, i, peer).await).unwrap();
    path
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every field of `want` is in `have` with the same value.
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        _ => have == want,
    }
}

async fn resource_versions(api: &ClusterApi) -> Vec<Value> {
    let mut out = Vec::new();
    for (v, plural, ns, name) in [
        ("v1", "namespaces", None, "mcwan-system"),
        (
            "v1",
            "serviceaccounts",
            Some("mcwan-system"),
            "mcwan-peer-reader",
        ),
        (
            "v1",
            "secrets",
            Some("mcwan-system"),
            "mcwan-peer-reader-token",
        ),
        ("v1", "secrets", Some("mcwan-system"), "mcwan-peers"),
        (
            "rbac.authorization.k8s.io/v1",
            "clusterroles",
            None,
            "mcwan-peer-reader",
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
            None,
            "mcwan-peer-reader",
        ),
    ] {
        out.push(
            api.get(v, plural, ns, name)
                .await
                .map(|o| o["metadata"]["resourceVersion"].clone())
                .unwrap_or(Value::Null),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_lets_the_peer_gateway_read_and_not_write_and_runs_again_unchanged() {
    let mut cs = Clusterset::new(Backend::Real, 2).await;
    // Cluster-2's gateway gets cluster-1 only through join.
    std::fs::remove_file(cs.peers_dir(1).join("cluster-1")).unwrap();
    export_service(cs.api(0), "shop", "cart").await;

    let ((code, stdout, stderr), token) = join(&cs, 0, 1, &[]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for line in [
        "cluster-1: namespace/mcwan-system created",
        "cluster-1: serviceaccount/mcwan-peer-reader created",
        "cluster-1: secret/mcwan-peer-reader-token created",
        "cluster-1: clusterrole/mcwan-peer-reader created",
        "cluster-1: clusterrolebinding/mcwan-peer-reader created",
        "cluster-2: namespace/mcwan-system created",
        "cluster-2: secret/mcwan-peers key cluster-1 created",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    assert!(
        !stdout.contains(&token) && !stderr.contains(&token),
        "join printed the token"
    );

    // The peer reader is the deploy base's (what site.yml applies), label included.
    let base = String::from_utf8(
        testbed::kubectl()
            .arg("kustomize")
            .arg(repo().join("deploy/base"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut bytes = base.as_bytes();
    let mut compared = 0;
    for doc in serde_saphyr::read::<_, Value>(&mut bytes) {
        let doc = doc.unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap_or("");
        let (v, plural) = match doc["kind"].as_str().unwrap_or("") {
            "Namespace" if name == "mcwan-system" => ("v1", "namespaces"),
            "ServiceAccount" if name == "mcwan-peer-reader" => ("v1", "serviceaccounts"),
            "Secret" if name == "mcwan-peer-reader-token" => ("v1", "secrets"),
            "ClusterRole" if name == "mcwan-peer-reader" => {
                ("rbac.authorization.k8s.io/v1", "clusterroles")
            }
            "ClusterRoleBinding" if name == "mcwan-peer-reader" => {
                ("rbac.authorization.k8s.io/v1", "clusterrolebindings")
            }
            _ => continue,
        };
        let ns = doc["metadata"]["namespace"].as_str();
        let live = cs.api(0).get(v, plural, ns, name).await.unwrap();
        assert!(
            contains(&live, &doc),
            "{plural}/{name}: the base's\n{doc:#}\nis not what join made\n{live:#}"
        );
        compared += 1;
    }
    assert_eq!(compared, 5, "{base}");

    // The kubeconfig is the peer reader's, at cluster-1's URL.
    let path = use_joined_kubeconfig(&cs, 1, "cluster-1").await;
    let kubeconfig = std::fs::read_to_string(&path).unwrap();
    assert!(
        kubeconfig.contains(&format!("token: \"{token}\"")),
        "{kubeconfig}"
    );
    let admin = std::fs::read_to_string(cs.kubeconfig(0)).unwrap();
    let admin: Value = serde_json::from_str(&admin).unwrap();
    let url = admin["clusters"][0]["cluster"]["server"].as_str().unwrap();
    assert!(
        kubeconfig.contains(&format!("server: \"{url}\"")),
        "{kubeconfig}"
    );

    // Cluster-2's gateway reads cluster-1 with it: it imports cluster-1's export.
    cs.start_gateway(1).await;
    let vip = cs.wait_for_a(1, "shop", "cart").await;
    assert_eq!(vip.len(), 1);
    // And can write nothing there.
    let peer = testbed::client_from(&path).await;
    let denied = testbed::create(&peer, &crate::support::mk_policy("evil", "evil", 32000, 1)).await;
    match denied {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("the peer kubeconfig could create a WANPolicy: {other:?}"),
    }
    let denied = testbed::delete(
        &peer,
        "multicluster.x-k8s.io/v1alpha1",
        "serviceexports",
        Some("shop"),
        "cart",
    )
    .await;
    assert!(
        matches!(denied, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{denied:?}"
    );

    // Again: nothing changes, and nothing is rewritten.
    let before = (
        resource_versions(cs.api(0)).await,
        resource_versions(cs.api(1)).await,
    );
    let ((code, again, stderr), _) = join(&cs, 0, 1, &[]).await;
    assert_eq!(code, 0, "{again}\n{stderr}");
    let outcomes: Vec<&str> = again
        .lines()
        .filter(|l| l.starts_with("cluster-"))
        .collect();
    assert_eq!(outcomes.len(), 7, "{again}");
    assert!(
        outcomes.iter().all(|l| l.ends_with(" unchanged")),
        "{again}"
    );
    let after = (
        resource_versions(cs.api(0)).await,
        resource_versions(cs.api(1)).await,
    );
    assert_eq!(before, after, "the second join rewrote objects\n{again}");

    // A dry run says the same, prints the objects, and not the token.
    let (code, dry, stderr) = mcwan_with(
        &all_contexts(&cs),
        &[
            "join",
            "--context",
            "cluster-1",
            "--peer-context",
            "cluster-2",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{dry}\n{stderr}");
    assert!(
        dry.contains("cluster-2: secret/mcwan-peers key cluster-1 unchanged (dry run)"),
        "{dry}"
    );
    assert!(
        dry.contains("kind: ClusterRoleBinding") && dry.contains("name: mcwan-peers"),
        "{dry}"
    );
    assert!(!dry.contains(&token), "the dry run printed the token");
    assert_eq!(
        after,
        (
            resource_versions(cs.api(0)).await,
            resource_versions(cs.api(1)).await
        )
    );

    // Joining a cluster to itself is refused.
    let (code, _, stderr) = mcwan_with(
        &all_contexts(&cs),
        &[
            "join",
            "--context",
            "cluster-1",
            "--peer-context",
            "cluster-1",
        ],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("does not join itself"), "{stderr}");
}

/// A join that changes cluster-2's peers restarts its gateway DaemonSet, as `kubectl rollout
/// restart` does, and a join into a cluster whose clusterset does not list the peer warns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_restarts_the_peer_gateway_daemonset_when_its_peers_change() {
    let cs = Clusterset::new(Backend::Real, 2).await;
    let api = cs.api(1);
    api.create_namespace("mcwan-system").await;
    api.create(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "mcwan-gateway", "namespace": "mcwan-system"},
        "spec": {"selector": {"matchLabels": {"app": "gw"}},
            "template": {"metadata": {"labels": {"app": "gw"}},
                "spec": {"containers": [{"name": "gateway", "image": "mcwan"}]}}}}))
        .await;
    api.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "mcwan-clusterset-abc", "namespace": "mcwan-system"},
        "data": {"clusterset.yaml": "name: t\nclusters:\n  - id: cluster-2\n    index: 2\n    gateway: {wanAddress: 192.0.2.2}\n"}}))
        .await;
    let ((code, stdout, stderr), _) = join(&cs, 0, 1, &[]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("cluster-2: daemonset/mcwan-gateway restarted"),
        "{stdout}"
    );
    assert!(stdout.contains("does not list cluster-1"), "{stdout}");
    let ds = api
        .get(
            "apps/v1",
            "daemonsets",
            Some("mcwan-system"),
            "mcwan-gateway",
        )
        .await
        .unwrap();
    let restarted =
        &ds["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
    assert!(restarted.is_string(), "{ds:#}");
    // Unchanged peers: no restart.
    let ((code, again, _), _) = join(&cs, 0, 1, &[]).await;
    assert_eq!(code, 0);
    assert!(!again.contains("restarted"), "{again}");
    let ds2 = api
        .get(
            "apps/v1",
            "daemonsets",
            Some("mcwan-system"),
            "mcwan-gateway",
        )
        .await
        .unwrap();
    assert_eq!(
        ds["metadata"]["resourceVersion"],
        ds2["metadata"]["resourceVersion"]
    );
}
