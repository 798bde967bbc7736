//! `mcwan plan -o gateway-api` against the real Gateway API CRDs: the seed's L7 story
//! (GET /payment over the high-priority class, /stats over the low-priority one, everything
//! else denied), rendered from a static catalog and server-side applied, with strict field
//! validation, to a real kube-apiserver (testbed/apiserver) that serves the standard-channel
//! CRDs of sigs.k8s.io/gateway-api (fetched by `testbed/build gateway-api`). The WANRoute CRD's
//! own schema is checked there too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[path = "support/testbed.rs"]
mod testbed;
use testbed::ApiServer;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Gateway API CRD manifests, fetched by `testbed/build gateway-api` when missing.
fn gateway_api_crds() -> Vec<PathBuf> {
    let dir = testbed::bin_dir().parent().unwrap().join("gateway-api");
    if !dir
        .join("gateway.networking.k8s.io_httproutes.yaml")
        .exists()
    {
        let status = Command::new(repo().join("testbed/build"))
            .arg("gateway-api")
            .status()
            .unwrap();
        assert!(status.success(), "testbed/build gateway-api: {status}");
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The example clusterset with the seed's WANRoute (deploy/examples) next to payment.secure's
/// ServiceExport in cluster-1.
fn seed_catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = repo().join("examples/clusterset");
    std::fs::copy(
        from.join("clusterset.yaml"),
        dir.path().join("clusterset.yaml"),
    )
    .unwrap();
    for cluster in ["cluster-1", "cluster-2"] {
        std::fs::create_dir(dir.path().join(cluster)).unwrap();
        for entry in std::fs::read_dir(from.join(cluster)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                dir.path().join(cluster).join(path.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    std::fs::copy(
        repo().join("deploy/examples/wanroute-payment.yaml"),
        dir.path().join("cluster-1/wanroute-payment.yaml"),
    )
    .unwrap();
    dir
}

fn plan(catalog: &Path, cluster: &str, output: &str) -> Value {
    let text = run(Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .arg("plan")
        .arg("--catalog")
        .arg(catalog)
        .args(["--cluster-id", cluster, "-o", output]));
    serde_json::from_str(&text).unwrap()
}

fn item<'a>(list: &'a Value, kind: &str, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == kind && i["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {list:#}"))
}

/// (rule name, matches, backend Service names) of an HTTPRoute's rules.
fn rules_of(route: &Value) -> Vec<(String, Value, Vec<String>)> {
    route["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let backends = r["backendRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| b["name"].as_str().unwrap().to_owned())
                .collect();
            (
                r["name"].as_str().unwrap().to_owned(),
                r["matches"].clone(),
                backends,
            )
        })
        .collect()
}

#[test]
fn the_seed_story_becomes_an_httproute_by_method_and_path_with_a_denying_default() {
    let catalog = seed_catalog();
    let objects = plan(catalog.path(), "cluster-2", "gateway-api");
    let route = item(&objects, "HTTPRoute", "payment");
    assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(route["metadata"]["namespace"], "secure");
    assert_eq!(
        route["spec"]["parentRefs"],
        serde_json::json!([{"group": "multicluster.x-k8s.io", "kind": "ServiceImport",
                            "name": "payment", "port": 8080}])
    );
    let rules = rules_of(route);
    let expected = [
        (
            "rule-0",
            serde_json::json!([{"method": "GET", "path": {"type": "PathPrefix", "value": "/payment"}}]),
            vec!["payment-sd-wan-priority-high"],
        ),
        (
            "rule-1",
            serde_json::json!([{"path": {"type": "PathPrefix", "value": "/stats"}}]),
            vec!["payment-sd-wan-priority-low"],
        ),
        // Everything else: denied, a rule that forwards nothing.
        (
            "default",
            serde_json::json!([{"path": {"type": "PathPrefix", "value": "/"}}]),
            vec![],
        ),
    ];
    assert_eq!(rules.len(), expected.len(), "{rules:?}");
    for ((name, matches, backends), (want_name, want_matches, want_backends)) in
        rules.iter().zip(expected.iter())
    {
        assert_eq!(name, want_name);
        assert_eq!(matches, want_matches, "{name}");
        assert_eq!(backends, want_backends, "{name}");
    }
    // The high-priority backend is cluster-1's gateway at payment's ingress port on its
    // export's class: what cluster-1 serves there.
    let state = plan(catalog.path(), "cluster-2", "json");
    let exporter = plan(catalog.path(), "cluster-1", "json");
    let port = exporter["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"]["name"] == "payment")
        .unwrap()["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.get("class").is_none())
        .unwrap()["ingress_port"]
        .clone();
    let real = exporter["ipvs"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["service"]["name"] == "payment" && v["port"] == port)
        .unwrap();
    // The seed's policies own one ingress port each, and logging has the low class's: payment's
    // /stats requests find none free on cluster-1, and the plan says what to raise.
    let exhausted = exporter["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["message"]
                .as_str()
                .unwrap()
                .contains("no free ingress port")
        })
        .unwrap_or_else(|| panic!("{:#}", exporter["problems"]));
    assert_eq!(exhausted["object"]["name"], "payment");
    assert!(exhausted["message"]
        .as_str()
        .unwrap()
        .contains("\"default\""));
    assert!(exhausted["message"]
        .as_str()
        .unwrap()
        .contains("spec.portCount"));
    let high = item(&objects, "EndpointSlice", "payment-sd-wan-priority-high-1");
    assert_eq!(
        high["metadata"]["labels"]["kubernetes.io/service-name"],
        "payment-sd-wan-priority-high"
    );
    assert_eq!(high["endpoints"][0]["addresses"][0], real["address"]);
    assert_eq!(high["ports"][0]["port"], port);
    assert_eq!(high["ports"][0]["name"], "http");
    let service = item(&objects, "Service", "payment-sd-wan-priority-high");
    assert_eq!(service["spec"]["ports"][0]["name"], "http");
    assert!(service["spec"].get("selector").is_none());
    // The plan carries the same rules, for the importing gateway's proxy.
    let import = state["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"]["name"] == "payment")
        .unwrap();
    assert_eq!(import["http"]["source"], "cluster-1");
    assert_eq!(import["http"]["default"], "deny");
    assert_eq!(import["http"]["rules"].as_array().unwrap().len(), 2);
}

#[test]
fn the_rendered_objects_are_accepted_by_a_real_api_server_with_the_gateway_api_crds() {
    let catalog = seed_catalog();
    let objects = plan(catalog.path(), "cluster-2", "gateway-api");
    let rendered = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rendered.path(), serde_json::to_vec(&objects).unwrap()).unwrap();

    let server = ApiServer::start("cluster-2");
    let apply = |file: &Path| {
        run(server
            .kubectl()
            .args([
                "apply",
                "--server-side",
                "--field-manager=mcwan-tests",
                "--validate=strict",
                "-f",
            ])
            .arg(file))
    };
    for crd in gateway_api_crds() {
        apply(&crd);
    }
    run(server.kubectl().args([
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/httproutes.gateway.networking.k8s.io",
    ]));
    run(server.kubectl().args(["create", "namespace", "secure"]));
    let out = apply(rendered.path());
    assert!(
        out.contains("httproute.gateway.networking.k8s.io/payment serverside-applied"),
        "{out}"
    );

    let stored: Value = serde_json::from_str(&run(server.kubectl().args([
        "get",
        "httproute",
        "-n",
        "secure",
        "payment",
        "-o",
        "json",
    ])))
    .unwrap();
    // The API server keeps the rules as rendered (it only fills in defaults such as weights).
    let sent = item(&objects, "HTTPRoute", "payment");
    let names = |r: &Value| -> Vec<(String, Vec<String>)> {
        rules_of(r).into_iter().map(|(n, _, b)| (n, b)).collect()
    };
    assert_eq!(names(&stored), names(sent));
    for (stored, sent) in rules_of(&stored).iter().zip(rules_of(sent).iter()) {
        assert_eq!(stored.1, sent.1, "rule {}", sent.0);
    }
    for (kind, name) in [
        ("service", "payment-sd-wan-priority-high"),
        ("service", "payment-sd-wan-priority-low"),
        ("endpointslice", "payment-sd-wan-priority-high-1"),
    ] {
        run(server.kubectl().args(["get", kind, "-n", "secure", name]));
    }
    // Strict validation is on: a field Gateway API does not define is refused, naming it.
    let mut bad = objects.clone();
    bad["items"][0]["spec"]["rules"][0]["wanPolicy"] = "sd-wan-priority-high".into();
    std::fs::write(rendered.path(), serde_json::to_vec(&bad).unwrap()).unwrap();
    let refused = server
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager=mcwan-tests",
            "--validate=strict",
            "-f",
        ])
        .arg(rendered.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("wanPolicy"), "{stderr}");
}

#[test]
fn the_wanroute_crd_accepts_the_seed_story_and_refuses_a_rule_with_two_actions() {
    let server = ApiServer::start("cluster-1");
    let crds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        crds.path(),
        run(Command::new(env!("CARGO_BIN_EXE_mcwan")).arg("crds")),
    )
    .unwrap();
    run(server
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager=mcwan-tests",
            "-f",
        ])
        .arg(crds.path()));
    run(server.kubectl().args([
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/wanroutes.mcw.l7mp.io",
    ]));
    run(server.kubectl().args(["create", "namespace", "secure"]));
    let strict = |file: &Path| {
        server
            .kubectl()
            .args([
                "apply",
                "--server-side",
                "--field-manager=mcwan-tests",
                "--validate=strict",
                "-f",
            ])
            .arg(file)
            .output()
            .unwrap()
    };
    let example = repo().join("deploy/examples/wanroute-payment.yaml");
    let out = strict(&example);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = run(server
        .kubectl()
        .args(["get", "wanroute", "-n", "secure", "payment"]));
    assert!(printed.contains("DEFAULT"), "{printed}");

    let text = std::fs::read_to_string(&example).unwrap();
    let both = text.replacen(
        "        wanPolicy: sd-wan-priority-high",
        "        wanPolicy: sd-wan-priority-high\n        deny: true",
        1,
    );
    assert_ne!(both, text);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), both).unwrap();
    let out = strict(file.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.http.rules[0]") && stderr.contains("one of the two"),
        "{stderr}"
    );
    let bad_type = text.replacen("type: PathPrefix", "type: Prefix", 1);
    std::fs::write(file.path(), bad_type).unwrap();
    let out = strict(file.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.http.rules[0].matches[0].path.type"),
        "{stderr}"
    );
}
