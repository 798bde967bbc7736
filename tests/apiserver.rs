//! deploy/ against a real kube-apiserver (testbed/apiserver: kube-apiserver and etcd of the
//! pinned Kubernetes release, RBAC on):
//!
//! - `kubectl apply --server-side -k` of deploy/crds and of every overlay passes admission and
//!   the CRDs' structural-schema validation; the seed objects apply unchanged; malformed ones
//!   are refused with the field named;
//! - the gateways run on nothing but the ServiceAccount tokens of deploy/'s RBAC: the gateway
//!   role is enough for an export to become an import, and the peer role can read but not
//!   write.

#![allow(clippy::unwrap_used)] // tests fail on any error

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{json, Value};

#[path = "support/ports.rs"]
mod ports;
#[path = "support/testbed.rs"]
mod testbed;

use testbed::ApiServer;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`; returns (success, stdout, stderr).
fn output(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn ok(cmd: &mut Command) -> String {
    let (success, out, err) = output(cmd);
    assert!(success, "{cmd:?} failed:\n{out}\n{err}");
    out
}

/// `kubectl apply --server-side` of `manifest` (a file or `-` with `stdin`).
fn apply(server: &ApiServer, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = server.kubectl();
    cmd.args(["apply", "--server-side", "--field-manager", "mcwan-tests"])
        .args(args);
    let Some(text) = stdin else {
        return output(&mut cmd);
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// deploy/crds applied and established.
fn install_crds(server: &ApiServer) {
    let crds = repo().join("deploy/crds");
    let (success, out, err) = apply(server, &["-k", crds.to_str().unwrap()], None);
    assert!(success, "deploy/crds refused:\n{out}\n{err}");
    // kube-apiserver warns about schema parts it does not know (formats such as uint16).
    assert!(
        !err.contains("Warning"),
        "deploy/crds applied with warnings:\n{err}"
    );
    ok(server.kubectl().args([
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "--all",
    ]));
}

#[test]
fn crds_and_every_overlay_apply_server_side_and_the_seed_objects_apply_unchanged() {
    let server = ApiServer::start("deploy");
    install_crds(&server);
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/overlays"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    overlays.sort();
    assert!(overlays.len() >= 2, "{overlays:?}");
    for overlay in &overlays {
        // The overlays are alternatives for one cluster: each replaces the one before.
        let (success, out, err) = apply(
            &server,
            &["--force-conflicts", "-k", overlay.to_str().unwrap()],
            None,
        );
        assert!(success, "{} refused:\n{out}\n{err}", overlay.display());
        assert!(
            out.contains("daemonset.apps/mcwan-gateway serverside-applied"),
            "{}:\n{out}",
            overlay.display()
        );
    }
    let gateway: Value = serde_json::from_str(&ok(server.kubectl().args([
        "get",
        "-n",
        "mcwan-system",
        "daemonset",
        "mcwan-gateway",
        "-o",
        "json",
    ])))
    .unwrap();
    assert_eq!(
        gateway["spec"]["template"]["spec"]["serviceAccountName"],
        "mcwan-gateway"
    );

    // The seed objects of deploy/, as they are in the repository.
    ok(server.kubectl().args(["create", "namespace", "secure"]));
    for (seed, how) in [("deploy/policies", "-k"), ("deploy/examples", "-f")] {
        let path = repo().join(seed);
        let (success, out, err) = apply(&server, &[how, path.to_str().unwrap()], None);
        assert!(success, "{seed} refused:\n{out}\n{err}");
    }
    let policies = ok(server.kubectl().args(["get", "wanpolicies", "-o", "name"]));
    for name in ["sd-wan-priority-high", "sd-wan-priority-low"] {
        assert!(
            policies.contains(&format!("wanpolicy.mcw.l7mp.io/{name}\n")),
            "{policies}"
        );
    }
    // `kubectl get` shows the printer columns of the CRDs.
    let table = ok(server
        .kubectl()
        .args(["get", "serviceexports", "-n", "secure"]));
    assert!(table.contains("WAN-POLICY"), "{table}");
    assert!(table.contains("sd-wan-priority-high"), "{table}");
}

/// `mcwan plan -o kube`: what the gateway would write in cluster-2 for the example clusterset,
/// applied as is to kube-apiserver (CRD schemas and admission), nothing refused, every
/// object there afterwards.
#[test]
fn the_planned_objects_apply_as_they_are() {
    let server = ApiServer::start("plan");
    install_crds(&server);
    let list = ok(Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(["plan", "--cluster-id", "cluster-2", "--catalog"])
        .arg(repo().join("examples/clusterset"))
        .args(["-o", "kube"]));
    let planned: Value = serde_json::from_str(&list).unwrap();
    let items = planned["items"].as_array().unwrap();
    let mut namespaces: Vec<&str> = items
        .iter()
        .map(|i| i["metadata"]["namespace"].as_str().unwrap())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    for ns in &namespaces {
        ok(server.kubectl().args(["create", "namespace", ns]));
    }
    let (success, out, err) = apply(&server, &["-f", "-"], Some(&list));
    assert!(success, "the planned objects were refused:\n{out}\n{err}");
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"ServiceImport") && kinds.contains(&"EndpointSlice"),
        "{kinds:?}"
    );
    for item in items {
        let (kind, ns, name) = (
            item["kind"].as_str().unwrap(),
            item["metadata"]["namespace"].as_str().unwrap(),
            item["metadata"]["name"].as_str().unwrap(),
        );
        let kind = if kind == "ServiceImport" {
            "serviceimports.multicluster.x-k8s.io"
        } else {
            "endpointslices.discovery.k8s.io"
        };
        let live = kubectl_json(&server, &["get", "-n", ns, kind, name])
            .unwrap_or_else(|| panic!("{kind} {ns}/{name} not there"));
        assert_eq!(
            live["metadata"]["labels"], item["metadata"]["labels"],
            "{kind} {ns}/{name}"
        );
    }
}

#[test]
fn malformed_objects_are_refused_naming_the_object_and_the_field() {
    let server = ApiServer::start("malformed");
    install_crds(&server);
    ok(server.kubectl().args(["create", "namespace", "b"]));
    let policy = |spec: Value| {
        json!({"apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
               "metadata": {"name": "p"}, "spec": spec})
    };
    // (object, what the refusal must name)
    let cases = [
        (
            policy(json!({"tunnel": "business", "port": "high"})),
            &[
                "(/p; mcw.l7mp.io/v1alpha1, Kind=WANPolicy)",
                ".spec.port: expected numeric",
            ][..],
        ),
        (
            policy(json!({"port": 31111})),
            &[
                "The WANPolicy \"p\" is invalid",
                "spec.tunnel: Required value",
            ],
        ),
        (
            policy(json!({"tunnel": "business", "port": 70000})),
            &["The WANPolicy \"p\" is invalid", "spec.port", "65535"],
        ),
        (
            policy(json!({"tunnel": "business", "port": 31111, "portCount": 0})),
            &["The WANPolicy \"p\" is invalid", "spec.portCount", "1"],
        ),
        (
            policy(json!({"tunnel": "business", "port": 31111, "portcount": 4})),
            &[
                "Kind=WANPolicy",
                ".spec.portcount: field not declared in schema",
            ],
        ),
        (
            policy(json!({"tunnel": "business", "port": 31111, "sla": {"latency-ms": -5}})),
            &["The WANPolicy \"p\" is invalid", "spec.sla.latency-ms"],
        ),
        (
            json!({"apiVersion": "about.k8s.io/v1alpha1", "kind": "ClusterProperty",
                   "metadata": {"name": "cluster.clusterset.k8s.io"}, "spec": {}}),
            &[
                "The ClusterProperty \"cluster.clusterset.k8s.io\" is invalid",
                "spec.value: Required value",
            ],
        ),
        (
            json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                   "metadata": {"name": "a", "namespace": "b"}, "spec": {"type": "LoadBalancer"}}),
            &[
                "The ServiceImport \"a\" is invalid",
                "spec.type: Unsupported value: \"LoadBalancer\"",
            ],
        ),
        (
            json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
                   "metadata": {"name": "a", "namespace": "b"},
                   "spec": {"exportedLabels": "team=a"}}),
            &[
                "(b/a; multicluster.x-k8s.io/v1alpha1, Kind=ServiceExport)",
                ".spec.exportedLabels: expected map",
            ],
        ),
        // The seed catalog's WANPolicy has `name:` outside `metadata:` too, an indentation slip.
        (
            json!({"apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy", "name": "slip",
                   "metadata": {"name": "slip"}, "spec": {"tunnel": "business", "port": 31111}}),
            &["Kind=WANPolicy", ".name: field not declared in schema"],
        ),
    ];
    let mut wrong = Vec::new();
    for (object, named) in cases {
        let (success, out, err) = apply(&server, &["-f", "-"], Some(&object.to_string()));
        if success || !named.iter().all(|n| err.contains(n)) {
            wrong.push(format!(
                "{object}\nmust be refused naming {named:?}; got ({success}):\n{out}{err}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    let left = ok(server.kubectl().args(["get", "wanpolicies", "-o", "name"]));
    assert_eq!(left, "", "a refused object was stored");
}

// ---------------------------------------------------------------------------------------------
// The gateways on deploy/'s RBAC.

/// A ServiceAccount token of `account` in mcwan-system (TokenRequest, as kubelet mounts one).
fn token(server: &ApiServer, account: &str) -> String {
    ok(server.kubectl().args([
        "create",
        "token",
        "-n",
        "mcwan-system",
        account,
        "--duration",
        "1h",
    ]))
    .trim()
    .to_owned()
}

/// A kubeconfig of `server` authenticating with `token` only.
fn token_kubeconfig(server: &ApiServer, context: &str, token: &str, path: &Path) {
    let mut cfg: Value =
        serde_json::from_str(&server.kubeconfig_yaml(context)).expect("kubeconfig JSON");
    cfg["users"] = json!([{"name": context, "user": {"token": token}}]);
    cfg["contexts"][0]["context"]["user"] = json!(context);
    std::fs::write(path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn a_records(server: SocketAddr, qname: &str) -> Option<Vec<Ipv4Addr>> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let mut message = Message::query();
    message.metadata.id = 4242;
    message.add_query(Query::query(
        Name::from_ascii(qname).unwrap(),
        RecordType::A,
    ));
    socket
        .send_to(&message.to_vec().unwrap(), server)
        .await
        .ok()?;
    let mut buf = vec![0u8; 4096];
    let (len, _) = tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    let m = Message::from_vec(&buf[..len]).ok()?;
    (m.metadata.response_code == ResponseCode::NoError).then(|| {
        m.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    })
}

fn kubectl_json(server: &ApiServer, args: &[&str]) -> Option<Value> {
    let (success, out, _) = output(server.kubectl().args(args).args(["-o", "json"]));
    success.then(|| serde_json::from_str(&out).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_run_on_the_deploy_rbac_tokens_and_the_peer_role_only_reads() {
    let servers: Vec<ApiServer> =
        futures::future::join_all((1..=2).map(|i| {
            tokio::task::spawn_blocking(move || ApiServer::start(&format!("cluster-{i}")))
        }))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let overlay = repo().join("deploy/overlays/wireguard");
    for (i, server) in servers.iter().enumerate() {
        install_crds(server);
        let (success, out, err) = apply(server, &["-k", overlay.to_str().unwrap()], None);
        assert!(success, "{out}\n{err}");
        let property = json!({"apiVersion": "about.k8s.io/v1alpha1", "kind": "ClusterProperty",
            "metadata": {"name": "cluster.clusterset.k8s.io"},
            "spec": {"value": format!("cluster-{}", i + 1)}});
        let (success, out, err) = apply(server, &["-f", "-"], Some(&property.to_string()));
        assert!(success, "{out}\n{err}");
        ok(server.kubectl().args(["create", "namespace", "shop"]));
    }
    // Each gateway: its own cluster with the gateway role's token, its peer with the peer
    // reader's, as deploy/ and ansible/ give them.
    std::fs::write(
        dir.path().join("clusterset.yaml"),
        "name: rbac\nwan: wireguard\nclusters:\n  - id: cluster-1\n    index: 1\n    gateway:\n      \
         wanAddress: 192.0.2.1\n  - id: cluster-2\n    index: 2\n    gateway:\n      wanAddress: 192.0.2.2\n",
    )
    .unwrap();
    let mut gateways = Vec::new();
    let mut dns = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let me = format!("cluster-{}", i + 1);
        let peer = format!("cluster-{}", 2 - i);
        let cdir = dir.path().join(&me);
        std::fs::create_dir_all(cdir.join("peers")).unwrap();
        token_kubeconfig(
            server,
            &me,
            &token(server, "mcwan-gateway"),
            &cdir.join("kubeconfig"),
        );
        let peer_server = &servers[1 - i];
        token_kubeconfig(
            peer_server,
            &peer,
            &token(peer_server, "mcwan-peer-reader"),
            &cdir.join("peers").join(&peer),
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], ports::free_port()));
        let log = std::fs::File::create(cdir.join("gateway.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mcwan"))
            .args(["gateway", "--kube", "--clusterset"])
            .arg(dir.path().join("clusterset.yaml"))
            .arg("--peer-kubeconfigs")
            .arg(cdir.join("peers"))
            .args(["--dns-listen", &addr.to_string()])
            .args([
                "--admin-listen",
                &format!("127.0.0.1:{}", ports::free_port()),
            ])
            .args(["--health-port", "0"])
            .env("KUBECONFIG", cdir.join("kubeconfig"))
            .env("MCWAN_LOG", "info,mcwan=debug,hickory_server=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        gateways.push(Gateway(child));
        dns.push(addr);
    }
    let logs = || {
        ["cluster-1", "cluster-2"]
            .iter()
            .map(|c| {
                let text = std::fs::read_to_string(dir.path().join(c).join("gateway.log")).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "---- {c} ----\n{}",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // An export in cluster-1 (by its owner, the admin) becomes an import in cluster-2.
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart", "namespace": "shop"},
         "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "cart-abcde", "namespace": "shop",
                      "labels": {"kubernetes.io/service-name": "cart"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": true}}],
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
        {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
         "metadata": {"name": "cart", "namespace": "shop",
                      "annotations": {"mcw.l7mp.io/mc-wan-policy": "sd-wan-priority-high"}}},
    ]});
    let (success, out, err) = apply(&servers[0], &["-f", "-"], Some(&objects.to_string()));
    assert!(success, "{out}\n{err}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let import = loop {
        let import = kubectl_json(&servers[1], &["get", "-n", "shop", "serviceimport", "cart"]);
        let answer = a_records(dns[1], "cart.shop.svc.clusterset.local.").await;
        // spec and status are separate writes (status is a subresource): wait for both.
        if let (Some(import), Some(answer)) = (import, answer) {
            if !answer.is_empty() && !import["status"]["clusters"].is_null() {
                assert_eq!(import["spec"]["ips"][0], answer[0].to_string());
                break import;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no import of shop/cart in cluster-2\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(import["status"]["clusters"][0]["cluster"], "cluster-1");
    loop {
        let export =
            kubectl_json(&servers[0], &["get", "-n", "shop", "serviceexport", "cart"]).unwrap();
        if testbed::has_condition(&export, "Ready", "True") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the export never got Ready=True: {export:#}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let slices = ok(servers[1].kubectl().args([
        "get",
        "-n",
        "shop",
        "endpointslices",
        "-l",
        "multicluster.kubernetes.io/service-name=cart",
        "-o",
        "name",
    ]));
    assert!(
        slices.contains("endpointslice.discovery.k8s.io/cart-import-cluster-1"),
        "{slices}"
    );
    let text = logs();
    assert!(
        !text.to_lowercase().contains("forbidden"),
        "a gateway was refused something its role should allow:\n{text}"
    );

    // The peer role reads, and cannot write.
    let peer_kubeconfig = dir.path().join("cluster-2/peers/cluster-1");
    let as_peer = |args: &[&str]| {
        let mut cmd = testbed::kubectl();
        cmd.arg("--kubeconfig").arg(&peer_kubeconfig).args(args);
        output(&mut cmd)
    };
    let (success, out, err) = as_peer(&["get", "wanpolicies", "-o", "name"]);
    assert!(success, "{err}");
    assert!(
        out.contains("wanpolicy.mcw.l7mp.io/sd-wan-priority-high"),
        "{out}"
    );
    let (success, _, err) = as_peer(&["get", "-n", "shop", "serviceexport", "cart"]);
    assert!(success, "{err}");
    let writes: [&[&str]; 4] = [
        &["delete", "-n", "shop", "serviceexport", "cart"],
        &["delete", "wanpolicy", "sd-wan-priority-low"],
        &["annotate", "-n", "shop", "service", "cart", "x=y"],
        &["create", "namespace", "intruder"],
    ];
    for args in writes {
        let (success, out, err) = as_peer(args);
        assert!(!success, "the peer token could {args:?}: {out}");
        assert!(err.contains("Forbidden"), "{args:?}: {err}");
        assert!(
            err.contains("system:serviceaccount:mcwan-system:mcwan-peer-reader"),
            "{args:?}: {err}"
        );
    }
    let (success, _, err) = as_peer(&["get", "secrets", "-n", "mcwan-system"]);
    assert!(!success && err.contains("Forbidden"), "{err}");
    assert!(
        kubectl_json(&servers[0], &["get", "-n", "shop", "serviceexport", "cart"]).is_some(),
        "the export is gone"
    );
}
