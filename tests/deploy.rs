//! The deployment artefacts: deploy/ (kustomize base, components and overlays, CoreDNS snippet,
//! examples) and ansible/ (site.yml, gateway-host.yml and their roles).
//!
//! - Every overlay builds with `kubectl kustomize`, and every manifest (built or standalone)
//!   parses *strictly* into its Kubernetes type: deserialized into the k8s-openapi (or mcwan CRD)
//!   type, serialized back and compared with the input, so that an unknown or misspelled field
//!   fails the test with its path.
//! - Every custom object is validated against its CRD's `openAPIV3Schema` with a JSON-schema
//!   validator (OpenAPI's `nullable`, `x-kubernetes-*` and Kubernetes' strict field validation
//!   translated), which accepts the seeds' objects and rejects malformed ones with the field's
//!   path.
//! - The gateway container's arguments parse with mcwan's own command line; the route agent and
//!   sysctl scripts run for real in a network namespace.
//! - `ansible-lint` and `ansible-playbook --syntax-check` pass; the gateway_host role installs
//!   into throwaway roots twice (the second run changes nothing) and the installed binary plans
//!   from the installed catalog;
//! - site.yml deploys a two-cluster clusterset onto two real API servers (testbed/apiserver)
//!   twice: the second run changes nothing, and the peer kubeconfig it hands out can read the
//!   peer and write nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcwan::lab::netns::Netns;
use serde_json::{json, Value};

const MCWAN: &str = env!("CARGO_BIN_EXE_mcwan");

#[path = "support/testbed.rs"]
mod testbed;
use testbed::ApiServer;

#[path = "support/manifests.rs"]
mod manifests;
use manifests::{
    assert_clusterset_loads, check_manifests, committed_crds, crd_validators, find, is_custom,
    kustomize, name_of, parse_strictly, read, repo, run, schema_errors, yaml_docs,
};

#[test]
fn committed_crds_match_the_rust_types() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/crds/crds.yaml"
    ))
    .expect("deploy/crds/crds.yaml");
    let generated = mcwan::render::crds_yaml().expect("CRDs render");
    assert!(
        committed == generated,
        "deploy/crds/crds.yaml is stale: regenerate it with `cargo run -- crds > deploy/crds/crds.yaml`"
    );
}

#[test]
fn crds_carry_printer_columns_for_kubectl_get() {
    let generated = mcwan::render::crds_yaml().expect("CRDs render");
    for column in ["WAN-Policy", "Valid", "Ready", "Conflict", "Tunnel", "Port"] {
        assert!(generated.contains(&format!("name: {column}\n")), "{column}");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers of this file (the shared ones are in support/manifests.rs).

fn overlays() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/overlays"))
        .expect("deploy/overlays")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn components() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("deploy/components"))
        .expect("deploy/components")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// deploy/

#[test]
fn every_overlay_builds_and_every_manifest_parses_strictly() {
    let overlays = overlays();
    let names: Vec<String> = overlays
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in ["sdwan", "wireguard"] {
        assert!(names.iter().any(|n| n == required), "no overlay {required}");
    }
    let mut problems = Vec::new();
    let mut builds = vec![repo().join("deploy/base")];
    builds.extend(overlays);
    for dir in &builds {
        let docs = kustomize(dir);
        assert!(
            docs.len() > 5,
            "{}: builds only {} objects",
            dir.display(),
            docs.len()
        );
        // Custom objects are checked against the CRDs of the same build (or the committed ones
        // for the base, which has none).
        let crds: Vec<Value> = docs
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .cloned()
            .collect();
        let crds = if crds.is_empty() {
            committed_crds()
        } else {
            crds
        };
        problems.extend(check_manifests(&dir.display().to_string(), &docs, &crds));
    }
    // Each optional component, on top of an overlay.
    let scratch = tempfile::tempdir().unwrap();
    for component in components() {
        let dir = scratch.path().join(&component);
        std::fs::create_dir(&dir).unwrap();
        let deploy = relative(&repo().join("deploy"), &dir);
        std::fs::write(
            dir.join("kustomization.yaml"),
            format!(
                "resources: [{deploy}/overlays/sdwan]\ncomponents: [{deploy}/components/{component}]\n"
            ),
        )
        .unwrap();
        let docs = kustomize(&dir);
        problems.extend(check_manifests(&component, &docs, &committed_crds()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn standalone_manifests_parse_strictly_and_fit_their_crds() {
    let mut problems = Vec::new();
    let mut count = 0;
    for dir in ["deploy/examples", "deploy/policies", "deploy/coredns"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let is_yaml = path.extension().is_some_and(|e| e == "yaml");
            if !is_yaml || path.file_name().is_some_and(|n| n == "kustomization.yaml") {
                continue;
            }
            let docs = yaml_docs(&read(&path));
            count += docs.len();
            problems.extend(check_manifests(
                &path.display().to_string(),
                &docs,
                &committed_crds(),
            ));
        }
    }
    assert!(count >= 6, "only {count} standalone manifests found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn strict_parsing_names_unknown_and_misspelled_fields() {
    let mut daemonset = kustomize(&repo().join("deploy/overlays/wireguard"))
        .into_iter()
        .find(|d| d["kind"] == "DaemonSet" && d["metadata"]["name"] == "mcwan-gateway")
        .unwrap();
    daemonset["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] =
        json!("/healthz");
    daemonset["spec"]["template"]["spec"]["hostNetwrok"] = json!(true);
    let err = parse_strictly(&daemonset).unwrap_err();
    assert!(
        err.contains(".spec.template.spec.containers[0].livenessProbe.httpGet.paht: unknown field"),
        "{err}"
    );
    assert!(
        err.contains(".spec.template.spec.hostNetwrok: unknown field"),
        "{err}"
    );
    let policy = json!({"apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
        "metadata": {"name": "p"}, "spec": {"tunnel": "t", "port": "high"}});
    let err = parse_strictly(&policy).unwrap_err();
    assert!(err.contains("spec.port"), "{err}");
}

#[test]
fn crd_schemas_accept_the_seed_objects() {
    let validators = crd_validators(&committed_crds());
    let seeds = [
        json!({"apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
            "metadata": {"name": "sd-wan-priority-high"},
            "spec": {"tunnel": "business", "port": 31111,
                     "sla": {"jitter-ms": 50, "latency-ms": 100, "loss-percent": 1}}}),
        json!({"apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
            "metadata": {"name": "sd-wan-priority-low"},
            "spec": {"tunnel": "default", "port": 31112,
                     "sla": {"jitter-ms": 1000, "latency-ms": 1000, "loss-percent": 100}}}),
        json!({"apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
            "metadata": {"name": "sd-wan-bulk"},
            "spec": {"tunnel": "bulk", "port": 32000, "portCount": 64}}),
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
            "metadata": {"name": "payment", "namespace": "secure",
                         "annotations": {"mcw.l7mp.io/mc-wan-policy": "sd-wan-priority-high"}}}),
        json!({"apiVersion": "about.k8s.io/v1alpha1", "kind": "ClusterProperty",
            "metadata": {"name": "cluster.clusterset.k8s.io"}, "spec": {"value": "cluster-1"}}),
        json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
            "metadata": {"name": "payment", "namespace": "secure"},
            "spec": {"type": "ClusterSetIP", "ips": ["241.64.0.7"],
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
            "status": {"clusters": [{"cluster": "cluster-1"}]}}),
    ];
    let mut refused = Vec::new();
    for seed in &seeds {
        let errors = schema_errors(&validators, seed).unwrap();
        if !errors.is_empty() {
            refused.push(format!("{}: {errors:?}", name_of(seed)));
        }
    }
    // The ServiceExport's status as the gateway writes it.
    let mut export = seeds[3].clone();
    export["spec"] = json!({});
    export["status"] = json!({"conditions": [{"type": "Valid", "status": "True",
        "reason": "Valid", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}]});
    assert_eq!(
        schema_errors(&validators, &export).unwrap(),
        Vec::<String>::new()
    );

    // The seed manifests of the example clusterset, with the draft ServiceExport group
    // corrected (as docs/kubernetes.md says to apply them).
    let mut checked = 0;
    for cluster in ["cluster-1", "cluster-2"] {
        for entry in std::fs::read_dir(repo().join("examples/clusterset").join(cluster)).unwrap() {
            for mut doc in yaml_docs(&read(&entry.unwrap().path())) {
                if doc["apiVersion"] == "multicluster.k8s.io/v1alpha1" {
                    doc["apiVersion"] = json!("multicluster.x-k8s.io/v1alpha1");
                }
                if !is_custom(&doc) {
                    continue;
                }
                checked += 1;
                let errors = schema_errors(&validators, &doc).unwrap();
                if doc.get("name").is_some() {
                    // The seed's WANPolicy with `name:` outside `metadata:` (an indentation
                    // slip the static catalog forgives): the API server would refuse it.
                    assert_eq!(
                        errors,
                        vec![
                            r#"/metadata: null is not of type "object""#,
                            r#": Additional properties are not allowed ('name' was unexpected)"#
                        ],
                        "{doc}"
                    );
                } else if !errors.is_empty() {
                    refused.push(format!("{}: {errors:?}", name_of(&doc)));
                }
            }
        }
    }
    assert!(checked >= 5, "only {checked} seed objects");
    assert!(
        refused.is_empty(),
        "the CRDs refuse seed objects:\n{}",
        refused.join("\n")
    );
}

#[test]
fn crd_schemas_reject_malformed_objects_naming_the_field() {
    let validators = crd_validators(&committed_crds());
    let policy = |spec: Value| {
        json!({"apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
               "metadata": {"name": "p"}, "spec": spec})
    };
    let cases = [
        (
            policy(json!({"tunnel": "business", "port": "high"})),
            r#"/spec/port: "high" is not of type "integer""#,
        ),
        (
            policy(json!({"port": 31111})),
            r#"/spec: "tunnel" is a required property"#,
        ),
        (
            policy(json!({"tunnel": "business", "port": 70000})),
            "/spec/port: 70000 is greater than the maximum of 65535.0",
        ),
        (
            policy(json!({"tunnel": "business", "port": 31111, "portCount": 0})),
            "/spec/portCount: 0 is less than the minimum of 1.0",
        ),
        (
            policy(json!({"tunnel": "business", "port": 31111, "portcount": 4})),
            "/spec: Additional properties are not allowed ('portcount' was unexpected)",
        ),
        (
            policy(json!({"tunnel": "business", "port": 31111, "sla": {"latency-ms": -5}})),
            "/spec/sla/latency-ms: -5 is less than the minimum of 0.0",
        ),
        (
            json!({"apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
                   "metadata": {"name": "p"}}),
            r#": "spec" is a required property"#,
        ),
        (
            json!({"apiVersion": "about.k8s.io/v1alpha1", "kind": "ClusterProperty",
                   "metadata": {"name": "cluster.clusterset.k8s.io"}, "spec": {}}),
            r#"/spec: "value" is a required property"#,
        ),
        (
            json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
                   "metadata": {"name": "a", "namespace": "b"}, "spec": {"type": "LoadBalancer"}}),
            r#"/spec/type: "LoadBalancer" is not one of "ClusterSetIP" or "Headless""#,
        ),
        (
            json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
                   "metadata": {"name": "a", "namespace": "b"},
                   "spec": {"exportedLabels": "team=a"}}),
            r#"/spec/exportedLabels: "team=a" is not of types "null", "object""#,
        ),
        (
            json!({"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
                   "metadata": {"name": "a", "namespace": "b"}, "spec": {},
                   "status": {"conditions": [{"type": "Valid", "status": "True", "reason": "Valid",
                       "message": "", "lastTransitionTime": "yesterday"}]}}),
            r#"/status/conditions/0/lastTransitionTime: "yesterday" is not a "date-time""#,
        ),
    ];
    let mut wrong = Vec::new();
    for (object, expected) in cases {
        let errors = schema_errors(&validators, &object).unwrap();
        if !errors.iter().any(|e| e == expected) {
            wrong.push(format!("{object}\nexpected: {expected}\ngot: {errors:#?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The clusterset files in deploy/ (and in the built ConfigMaps) load without a problem.
#[test]
fn clusterset_files_load_without_problems() {
    let mut files: Vec<(String, String)> = Vec::new();
    for dir in overlays() {
        let docs = kustomize(&dir);
        let cm = find(&docs, "ConfigMap", "mcwan-clusterset-");
        files.push((
            format!("{} ConfigMap", dir.display()),
            cm["data"]["clusterset.yaml"].as_str().unwrap().to_owned(),
        ));
        files.push((
            dir.join("clusterset.yaml").display().to_string(),
            read(&dir.join("clusterset.yaml")),
        ));
    }
    files.push((
        "base".into(),
        read(&repo().join("deploy/base/clusterset.yaml")),
    ));
    for (origin, text) in files {
        assert_clusterset_loads(&origin, &text);
    }
}

/// The gateway container's arguments are ones the binary accepts, with the values deploy/
/// promises; the image is this version's; the probes, ports and DNS Service fit together.
#[test]
fn gateway_workload_fits_the_binary() {
    use clap::Parser as _;
    let docs = kustomize(&repo().join("deploy/overlays/wireguard"));
    let ds = find(&docs, "DaemonSet", "mcwan-gateway");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"], 0);
    let gateway = &pod["containers"][0];
    let args: Vec<String> = gateway["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().replace("$(NODE_IP)", "10.0.0.5"))
        .collect();
    let cli = mcwan::cli::Cli::try_parse_from(std::iter::once("mcwan".to_owned()).chain(args))
        .unwrap_or_else(|e| panic!("the gateway's arguments do not parse: {e}"));
    let mcwan::cli::Command::Gateway(cmd) = cli.command else {
        panic!("not `mcwan gateway`")
    };
    assert!(cmd.kube.kube);
    assert_eq!(cmd.dataplane, mcwan::cli::Dataplane::Ipvs);
    assert_eq!(cmd.admin_listen.to_string(), "0.0.0.0:9641");
    assert_eq!(cmd.dns_listen.to_string(), "10.0.0.5:10053");
    assert_eq!(
        cmd.kube.clusterset.as_deref(),
        Some(Path::new("/etc/mcwan/clusterset/clusterset.yaml"))
    );
    assert_eq!(
        cmd.kube.peer_kubeconfigs.as_deref(),
        Some(Path::new("/etc/mcwan/peers"))
    );
    // The mounts behind those paths.
    let mounts: BTreeMap<&str, &str> = gateway["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap(),
                m["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(mounts.get("/etc/mcwan/clusterset"), Some(&"clusterset"));
    assert_eq!(mounts.get("/etc/mcwan/peers"), Some(&"peers"));
    assert_eq!(mounts.get("/etc/mcwan/wireguard"), Some(&"wireguard"));
    // Every image is this version's.
    let version = env!("CARGO_PKG_VERSION");
    for workload in docs.iter().filter(|d| d["kind"] == "DaemonSet") {
        let spec = &workload["spec"]["template"]["spec"];
        for c in spec["containers"]
            .as_array()
            .into_iter()
            .chain(spec["initContainers"].as_array())
            .flatten()
        {
            assert_eq!(
                c["image"],
                format!("ghcr.io/l7mp/mcwan:{version}"),
                "{}",
                name_of(workload)
            );
        }
    }
    // Least privilege: NET_ADMIN only; probes on the admin port.
    let sc = &gateway["securityContext"];
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["capabilities"]["add"], json!(["NET_ADMIN"]));
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert!(sc.get("privileged").is_none());
    assert_eq!(gateway["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(gateway["readinessProbe"]["httpGet"]["path"], "/readyz");
    let port_of = |name: &str| {
        gateway["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].as_u64().unwrap())
    };
    assert_eq!(port_of("admin"), Some(9641));
    assert_eq!(port_of("dns"), Some(10053));
    assert_eq!(port_of("dns-tcp"), Some(10053));
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(gateway[probe]["httpGet"]["port"], "admin");
    }
    assert!(
        gateway["resources"]["requests"].is_object() && gateway["resources"]["limits"].is_object()
    );
    let svc = find(&docs, "Service", "mcwan-dns");
    for port in svc["spec"]["ports"].as_array().unwrap() {
        assert_eq!(port["port"], 53);
        assert!(
            port_of(port["targetPort"].as_str().unwrap()).is_some(),
            "{port}"
        );
    }
    assert_eq!(
        svc["spec"]["selector"],
        ds["spec"]["selector"]["matchLabels"]
    );
    // The privileged init container sets every kernel setting the dataplane asks for.
    let init = pod["initContainers"][0]["args"][0].as_str().unwrap();
    for (path, value, _) in mcwan::dataplane::sysctl::SETTINGS {
        assert!(
            init.contains(&format!("set_sysctl {path} {value}")),
            "the sysctl init container does not set {path}"
        );
    }
    // Every MCWAN_* variable the gateway is given is one the binary reads (MCWAN_LOG is the log
    // filter; MCWAN_GATEWAY_NODE_IP is the route agent's).
    let help =
        String::from_utf8(run(Command::new(MCWAN).args(["gateway", "--help"])).stdout).unwrap();
    let config = find(&docs, "ConfigMap", "mcwan-config-");
    let names = gateway["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .chain(config["data"].as_object().unwrap().keys().cloned())
        .filter(|n| n.starts_with("MCWAN_") && n != "MCWAN_LOG" && n != "MCWAN_GATEWAY_NODE_IP");
    for name in names {
        assert!(
            help.contains(&format!("[env: {name}=")),
            "`mcwan gateway` reads no {name}"
        );
    }
    // The ConfigMaps the workloads name are the generated ones.
    assert_eq!(
        gateway["envFrom"][0]["configMapRef"]["name"],
        config["metadata"]["name"]
    );
    assert_eq!(config["data"]["MCWAN_VIP_CIDR"], "241.64.0.0/16");
}

/// RBAC: the gateway may do what docs/kubernetes.md lists and nothing more; peers only read.
#[test]
fn rbac_is_least_privilege() {
    let docs = kustomize(&repo().join("deploy/base"));
    let rules = |name: &str| -> BTreeMap<String, Vec<String>> {
        let role = find(&docs, "ClusterRole", name);
        let mut by_resource: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rule in role["rules"].as_array().unwrap() {
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    let key = format!("{}/{}", group.as_str().unwrap(), resource.as_str().unwrap());
                    let verbs = by_resource.entry(key).or_default();
                    verbs.extend(
                        rule["verbs"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_str().unwrap().to_owned()),
                    );
                    verbs.sort();
                }
            }
        }
        by_resource
    };
    let v = |verbs: &[&str]| {
        let mut v: Vec<String> = verbs.iter().map(|s| (*s).to_owned()).collect();
        v.sort();
        v
    };
    let read = ["get", "list", "watch"];
    let own = ["get", "list", "watch", "create", "patch", "delete"];
    let expected: BTreeMap<String, Vec<String>> = [
        ("/namespaces", v(&read)),
        ("/services", v(&read)),
        ("multicluster.x-k8s.io/serviceexports", v(&read)),
        ("mcw.l7mp.io/wanpolicies", v(&read)),
        ("mcw.l7mp.io/wanimports", v(&read)),
        ("mcw.l7mp.io/wanroutes", v(&read)),
        ("about.k8s.io/clusterproperties", v(&read)),
        ("discovery.k8s.io/endpointslices", v(&own)),
        ("multicluster.x-k8s.io/serviceimports", v(&own)),
        ("multicluster.x-k8s.io/serviceexports/status", v(&["patch"])),
        ("mcw.l7mp.io/wanroutes/status", v(&["patch"])),
        ("multicluster.x-k8s.io/serviceimports/status", v(&["patch"])),
        ("events.k8s.io/events", v(&["create", "patch"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(rules("mcwan-gateway"), expected);
    let peer = rules("mcwan-peer-reader");
    for (resource, verbs) in &peer {
        assert!(
            verbs.iter().all(|verb| read.contains(&verb.as_str())),
            "peers may only read, not {verbs:?} {resource}"
        );
    }
    for resource in [
        "/namespaces",
        "/services",
        "discovery.k8s.io/endpointslices",
        "multicluster.x-k8s.io/serviceexports",
        "mcw.l7mp.io/wanpolicies",
        "mcw.l7mp.io/wanroutes",
    ] {
        assert_eq!(peer.get(resource), Some(&v(&read)), "{resource}");
    }
    // The peer token belongs to the peer reader, which no pod runs as.
    let token = find(&docs, "Secret", "mcwan-peer-reader-token");
    assert_eq!(token["type"], "kubernetes.io/service-account-token");
    assert_eq!(
        token["metadata"]["annotations"]["kubernetes.io/service-account.name"],
        "mcwan-peer-reader"
    );
    let sa = find(&docs, "ServiceAccount", "mcwan-peer-reader");
    assert_eq!(sa["automountServiceAccountToken"], false);
    for binding in ["mcwan-gateway", "mcwan-peer-reader"] {
        let b = find(&docs, "ClusterRoleBinding", binding);
        assert_eq!(b["roleRef"]["name"], binding);
        assert_eq!(b["subjects"][0]["name"], binding);
        assert_eq!(b["subjects"][0]["namespace"], "mcwan-system");
    }
}

/// The CoreDNS patch is kubeadm's Corefile plus exactly the snippet, and forwards to the DNS
/// Service's port.
#[test]
fn coredns_snippet_and_patch_agree() {
    let snippet = read(&repo().join("deploy/coredns/clusterset.server"));
    assert!(snippet.contains("clusterset.local:53 {"), "{snippet}");
    assert!(snippet.contains("forward . MCWAN_DNS_IP:53"), "{snippet}");
    let patch = yaml_docs(&read(&repo().join("deploy/coredns/coredns-patch.yaml")));
    let corefile = patch[0]["data"]["Corefile"].as_str().unwrap();
    assert!(corefile.starts_with(".:53 {"), "{corefile}");
    assert!(
        corefile.ends_with(&snippet),
        "coredns-patch.yaml does not end with clusterset.server"
    );
    for text in [&snippet[..], corefile] {
        let opened = text.matches('{').count();
        assert_eq!(
            opened,
            text.matches('}').count(),
            "unbalanced braces:\n{text}"
        );
    }
    assert_eq!(corefile.matches("clusterset.local:53").count(), 1);
}

// ---------------------------------------------------------------------------------------------
// The scripts in the workloads, run for real in a network namespace (root).

/// Runs a `sh` script inside a namespace, failing the test if it fails.
fn sh(ns: &Netns, script: &str) -> String {
    ns.exec("sh", &["-c", script])
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// A fresh namespace for a test.
fn netns(name: &str) -> Netns {
    Netns::new(name).unwrap_or_else(|e| panic!("{e:#}"))
}

fn container_script(docs: &[Value], daemonset: &str, init: bool) -> String {
    let ds = find(docs, "DaemonSet", daemonset);
    let list = if init { "initContainers" } else { "containers" };
    let c = &ds["spec"]["template"]["spec"][list][0];
    assert_eq!(c["command"], json!(["/bin/sh", "-c"]));
    c["args"][0].as_str().unwrap().to_owned()
}

#[test]
fn route_agent_routes_the_vip_range_to_the_gateway_node() {
    let docs = kustomize(&repo().join("deploy/overlays/sdwan"));
    let script = container_script(&docs, "mcwan-route-agent", false);
    let ns = netns("mcwan-deploy-route");
    sh(
        &ns,
        "ip link add n0 type veth peer name n1 && ip addr add 198.51.100.2/24 dev n0 \
           && ip link set n0 up && ip link set n1 up",
    );
    let spawn = |gateway: &str| {
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "sh", "-c", &script])
            .env("MCWAN_VIP_CIDR", "241.64.0.0/16")
            .env("MCWAN_GATEWAY_NODE_IP", gateway)
            .env("MCWAN_ROUTE_INTERVAL", "0.2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait_route = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let route = sh(&ns, "ip route show 241.64.0.0/16");
            if route.contains(want) {
                return route;
            }
            assert!(Instant::now() < deadline, "no route {want}: {route:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let agent = spawn("198.51.100.1");
    let route = wait_route("via 198.51.100.1");
    assert!(route.contains("proto 161"), "{route}");
    // Removed by someone else: put back on the next round.
    sh(&ns, "ip route del 241.64.0.0/16");
    wait_route("via 198.51.100.1");
    // Stopping leaves the route (pods keep reaching the VIPs during an update) and exits 0.
    run(Command::new("kill").args(["-TERM", &agent.id().to_string()]));
    let out = agent.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("mcwan-route: 241.64.0.0/16 via 198.51.100.1"));
    wait_route("via 198.51.100.1");
    // A new gateway node replaces the route.
    let mut agent = spawn("198.51.100.9");
    wait_route("via 198.51.100.9");
    agent.kill().unwrap();
    agent.wait().unwrap();
    // Without the gateway node's address, it refuses to start and says what is missing.
    let out = spawn("").wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MCWAN_GATEWAY_NODE_IP"),
        "{out:?}"
    );
}

#[test]
fn sysctl_init_container_sets_forwarding() {
    let docs = kustomize(&repo().join("deploy/overlays/wireguard"));
    let script = container_script(&docs, "mcwan-gateway", true);
    let ns = netns("mcwan-deploy-sysctl");
    assert_eq!(sh(&ns, "cat /proc/sys/net/ipv4/ip_forward").trim(), "0");
    let out = run(Command::new("ip").args(["netns", "exec", &ns.name, "sh", "-c", &script]));
    assert_eq!(sh(&ns, "cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("mcwan-sysctls: net/ipv4/ip_forward = 1"),
        "{stdout}"
    );
    // Where IPVS exists, its settings are set too; where not, that is said, not fatal.
    if Path::new("/proc/sys/net/ipv4/vs/conntrack").exists() {
        assert_eq!(sh(&ns, "cat /proc/sys/net/ipv4/vs/conntrack").trim(), "1");
    } else {
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot set net/ipv4/vs/conntrack"));
    }
}

// ---------------------------------------------------------------------------------------------
// ansible/

fn ansible_dir() -> PathBuf {
    repo().join("ansible")
}

/// An Ansible command, with the testbed's kubectl first on PATH (kubernetes.core's kustomize
/// lookup runs it).
fn ansible(cmd: &str) -> Command {
    let kubectl = testbed::bin("kubectl");
    let path = std::env::join_paths(std::iter::once(kubectl.parent().unwrap().to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut c = Command::new(cmd);
    c.env("PATH", path)
        .current_dir(ansible_dir())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_CONFIG", ansible_dir().join("ansible.cfg"))
        .env("PY_COLORS", "0");
    c
}

#[test]
fn ansible_lint_and_syntax_check_pass() {
    run(ansible("ansible-playbook").args([
        "--syntax-check",
        "-i",
        "inventory.example.yml",
        "site.yml",
        "gateway-host.yml",
    ]));
    let home = tempfile::tempdir().unwrap();
    let out = ansible("ansible-lint")
        .arg("--nocolor")
        .env("HOME", home.path())
        .output()
        .expect("ansible-lint (scripts/install-test-deps installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ansible-lint failed:\n{text}");
    assert!(text.contains("Passed with production profile"), "{text}");
}

/// (changed, failed) per host from a PLAY RECAP.
fn recap(stdout: &str) -> BTreeMap<String, (u32, u32)> {
    let field = |line: &str, key: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX)
    };
    let mut hosts = BTreeMap::new();
    let Some(tail) = stdout.split("PLAY RECAP").nth(1) else {
        return hosts;
    };
    for line in tail.lines().filter(|l| l.contains(" : ok=")) {
        let host = line.split_whitespace().next().unwrap().to_owned();
        hosts.insert(host, (field(line, "changed"), field(line, "failed")));
    }
    hosts
}

fn playbook(inventory: &Path, play: &str, home: &Path) -> (String, BTreeMap<String, (u32, u32)>) {
    let out = ansible("ansible-playbook")
        .args(["-i"])
        .arg(inventory)
        .arg(play)
        .env("HOME", home)
        .output()
        .expect("ansible-playbook (scripts/install-test-deps installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{play} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts = recap(&stdout);
    (stdout, hosts)
}

fn relative(target: &Path, from: &Path) -> String {
    let target: Vec<_> = target.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = target.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(
        target[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[test]
fn gateway_host_role_installs_into_a_root_idempotently() {
    let scratch = tempfile::tempdir().unwrap();
    let roots = scratch.path();
    let inventory = roots.join("inventory.yml");
    std::fs::write(
        &inventory,
        format!(
            r#"gateway_hosts:
  vars:
    ansible_connection: local
    ansible_become: false
    ansible_python_interpreter: /usr/bin/python3
    mcwan_systemd_start: false
    mcwan_wan: wireguard
    mcwan_clusterset_name: edges
    gateway_host_binary_src: {MCWAN}
  hosts:
    edge-1:
      gateway_host_root: {root}/edge-1
      mcwan_index: 1
      mcwan_wan_address: 192.0.2.101
      gateway_host_dns_listen: 127.0.0.1:53
      gateway_host_manifests:
        - {{apiVersion: v1, kind: Namespace, metadata: {{name: secure}}}}
        - apiVersion: v1
          kind: Service
          metadata: {{name: payment, namespace: secure}}
          spec: {{ports: [{{name: http, port: 8080, protocol: TCP}}]}}
        - apiVersion: discovery.k8s.io/v1
          kind: EndpointSlice
          metadata: {{name: payment-1, namespace: secure, labels: {{kubernetes.io/service-name: payment}}}}
          addressType: IPv4
          ports: [{{name: http, port: 8080, protocol: TCP}}]
          endpoints: [{{addresses: [198.51.100.111], conditions: {{ready: true}}}}]
        - apiVersion: multicluster.x-k8s.io/v1alpha1
          kind: ServiceExport
          metadata:
            name: payment
            namespace: secure
            annotations: {{mcw.l7mp.io/mc-wan-policy: sd-wan-priority-high}}
    edge-2:
      gateway_host_root: {root}/edge-2
      mcwan_index: 2
      mcwan_wan_address: 192.0.2.102
      gateway_host_manifests:
        - {{apiVersion: v1, kind: Namespace, metadata: {{name: secure}}}}
"#,
            root = roots.display()
        ),
    )
    .unwrap();
    let home = roots.join("home");
    std::fs::create_dir(&home).unwrap();
    // A catalog directory of a cluster that left the clusterset, to be removed.
    std::fs::create_dir_all(roots.join("edge-1/etc/mcwan/catalog/edge-9")).unwrap();

    let (first, hosts) = playbook(&inventory, "gateway-host.yml", &home);
    assert_eq!(hosts.len(), 2, "{first}");
    for (host, (changed, failed)) in &hosts {
        assert!(*changed > 0 && *failed == 0, "{host}: first run\n{first}");
    }
    let key = |host: &str| read(&roots.join(host).join("etc/mcwan/wireguard/private-key"));
    let keys = (key("edge-1"), key("edge-2"));
    let (second, hosts) = playbook(&inventory, "gateway-host.yml", &home);
    for (host, (changed, failed)) in &hosts {
        assert_eq!(
            (*changed, *failed),
            (0, 0),
            "{host}: the second run changed something\n{second}"
        );
    }
    assert_eq!(
        (key("edge-1"), key("edge-2")),
        keys,
        "a WireGuard key was replaced"
    );

    for (host, other) in [("edge-1", "edge-2"), ("edge-2", "edge-1")] {
        let root = roots.join(host);
        let catalog = root.join("etc/mcwan/catalog");
        // The private key stays private; the clusterset carries both public keys.
        let key_path = root.join("etc/mcwan/wireguard/private-key");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key_path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{host}: private key mode {mode:o}");
        let set = assert_clusterset_loads(host, &read(&catalog.join("clusterset.yaml")));
        for h in [host, other] {
            let public = run(Command::new("sh").arg("-c").arg(format!(
                "wg pubkey < {}",
                roots
                    .join(h)
                    .join("etc/mcwan/wireguard/private-key")
                    .display()
            )));
            let public = String::from_utf8_lossy(&public.stdout).trim().to_owned();
            let entry = serde_json::to_value(&set).unwrap();
            assert!(
                entry.to_string().contains(&public),
                "{host}: no public key of {h}"
            );
        }
        assert!(
            !catalog.join("edge-9").exists(),
            "stale cluster directory kept"
        );
        // The installed binary plans from the installed catalog.
        let plan = run(Command::new(root.join("usr/local/bin/mcwan")).args([
            "plan",
            "--catalog",
            catalog.to_str().unwrap(),
            "--cluster-id",
            host,
            "-o",
            "json",
        ]));
        let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
        let text = plan.to_string();
        assert!(
            text.contains("payment"),
            "{host}: payment not in the plan: {text}"
        );
        assert!(!text.contains("\"severity\":\"error\""), "{host}: {text}");
        // The unit: what systemd would run, hardened, with only the capabilities it needs.
        let unit_path = root.join("etc/systemd/system/mcwan-gateway.service");
        let unit = read(&unit_path);
        let exec = unit_exec_start(&unit);
        let expected = [
            "/usr/local/bin/mcwan",
            "gateway",
            "--catalog",
            "/etc/mcwan/catalog",
            "--cluster-id",
            host,
            "--dataplane",
            "ipvs",
        ];
        assert_eq!(&exec[..8], &expected[..], "{unit}");
        let caps = if host == "edge-1" {
            "CAP_NET_ADMIN CAP_NET_BIND_SERVICE" // DNS on port 53
        } else {
            "CAP_NET_ADMIN"
        };
        assert!(
            unit.contains(&format!("\nCapabilityBoundingSet={caps}\n")),
            "{unit}"
        );
        assert!(
            unit.contains(&format!("\nAmbientCapabilities={caps}\n")),
            "{unit}"
        );
        assert!(unit.contains("\nLimitNOFILE=65536\n"), "{unit}");
        assert!(unit.contains("\nStateDirectory=mcwan\n"), "{unit}");
        assert!(
            exec.windows(2)
                .any(|w| w == ["--state-dir", "/var/lib/mcwan"]),
            "{unit}"
        );
        assert!(unit
            .contains("\nLoadCredential=wireguard-private-key:/etc/mcwan/wireguard/private-key\n"));
        assert!(
            unit.contains("\nEnvironment=MCWAN_WIREGUARD_PRIVATE_KEY=%d/wireguard-private-key\n")
        );
        // The command line systemd would run is one the binary accepts.
        {
            use clap::Parser as _;
            let cli = mcwan::cli::Cli::try_parse_from(exec.iter().map(String::as_str))
                .unwrap_or_else(|e| panic!("{host}: ExecStart does not parse: {e}"));
            assert!(matches!(cli.command, mcwan::cli::Command::Gateway(_)));
        }
        verify_unit(&root, &unit_path);
        assert_eq!(
            read(&root.join("etc/modules-load.d/mcwan.conf"))
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            vec!["ip_vs"]
        );
        let sysctls = read(&root.join("etc/sysctl.d/90-mcwan.conf"));
        for (path, value, _) in mcwan::dataplane::sysctl::SETTINGS {
            assert!(
                sysctls.contains(&format!("{} = {value}", path.replace('/', "."))),
                "{path}"
            );
        }
    }
}

/// ExecStart's words, continuation lines joined.
fn unit_exec_start(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    line.split_whitespace().map(str::to_owned).collect()
}

/// `systemd-analyze verify` (no unknown keys, the binary exists in the root) and `security`
/// (the exposure score of the hardening).
fn verify_unit(root: &Path, unit: &Path) {
    // systemd-analyze resolves the unit's dependencies (sysinit.target…) inside the root.
    let units = root.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).unwrap();
    let _ = std::os::unix::fs::symlink("/usr/lib/systemd/system", units.join("system"));
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .arg(unit)
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("mcwan-gateway"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(format!("--root={}", root.display()))
        .arg(unit));
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("mcwan-gateway.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(
        score <= 3.0,
        "exposure level {score} (systemd-analyze security):\n{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// site.yml against two real API servers (testbed/apiserver).

const COREFILE: &str = ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    \
kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    \
prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30\n    loop\n    reload\n    loadbalance\n}\n";

/// One cluster for site.yml: its control plane, with the nodes and the CoreDNS ConfigMap a
/// kubeadm cluster has (there is no kubelet or kubeadm here to make them).
struct SiteCluster {
    server: ApiServer,
    client: kube::Client,
}

impl SiteCluster {
    async fn start(index: u8) -> Self {
        let server =
            tokio::task::spawn_blocking(move || ApiServer::start(&format!("cluster-{index}")))
                .await
                .unwrap();
        let client = server.client().await;
        for (name, address) in [("gw", 10), ("worker", 20)] {
            let node = format!("{name}-{index}");
            testbed::create(
                &client,
                &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
            )
            .await
            .unwrap();
            let addresses = json!({"status": {"addresses": [
                {"type": "InternalIP", "address": format!("192.0.2.{}", address + index)},
                {"type": "Hostname", "address": node}]}});
            testbed::dynamic_api(&client, "v1", "nodes", None)
                .patch_status(
                    &node,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(addresses),
                )
                .await
                .unwrap();
        }
        testbed::create(
            &client,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "coredns", "namespace": "kube-system"},
                "data": {"Corefile": COREFILE}}),
        )
        .await
        .unwrap();
        Self { server, client }
    }

    async fn get(
        &self,
        api_version: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        testbed::get(&self.client, api_version, plural, ns, name)
            .await
            .unwrap()
    }

    async fn list(&self, api_version: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
        testbed::list(&self.client, api_version, plural, ns)
            .await
            .unwrap()
    }

    /// resourceVersion of every object site.yml touches, by kind and name.
    async fn stored_versions(&self) -> BTreeMap<String, Value> {
        let kinds = [
            ("v1", "namespaces"),
            ("v1", "serviceaccounts"),
            ("v1", "secrets"),
            ("v1", "configmaps"),
            ("v1", "services"),
            ("v1", "nodes"),
            ("apps/v1", "daemonsets"),
            ("rbac.authorization.k8s.io/v1", "clusterroles"),
            ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
            ("mcw.l7mp.io/v1alpha1", "wanpolicies"),
            ("about.k8s.io/v1alpha1", "clusterproperties"),
            ("apiextensions.k8s.io/v1", "customresourcedefinitions"),
        ];
        let mut versions = BTreeMap::new();
        for (api_version, plural) in kinds {
            for object in self.list(api_version, plural, None).await {
                let key = format!(
                    "{plural} {}/{}",
                    object["metadata"]["namespace"].as_str().unwrap_or(""),
                    object["metadata"]["name"].as_str().unwrap_or("")
                );
                versions.insert(key, object["metadata"]["resourceVersion"].clone());
            }
        }
        assert!(versions.len() > 20, "{versions:?}");
        versions
    }

    /// What kube-controller-manager's token controller does (there is none here): fills each
    /// service-account token Secret, with a real token of its ServiceAccount (TokenRequest)
    /// and the cluster's CA.
    async fn fill_tokens(&self) {
        let b64 =
            |s: &str| serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec())).unwrap();
        for secret in self.list("v1", "secrets", None).await {
            if secret["type"] != "kubernetes.io/service-account-token"
                || !secret["data"]["token"].is_null()
            {
                continue;
            }
            let namespace = secret["metadata"]["namespace"].as_str().unwrap().to_owned();
            let account = secret["metadata"]["annotations"]["kubernetes.io/service-account.name"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut kubectl = self.server.kubectl();
            kubectl.args(["create", "token", "-n", &namespace, &account]);
            let token = tokio::task::spawn_blocking(move || run(&mut kubectl))
                .await
                .unwrap();
            let token = String::from_utf8(token.stdout).unwrap();
            let filled = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": secret["metadata"]["name"], "namespace": namespace},
                "data": {"token": b64(token.trim()), "ca.crt": b64(&self.server.ca_pem()),
                         "namespace": b64(&namespace)}});
            testbed::apply(&self.client, &filled, "kube-controller-manager")
                .await
                .unwrap();
        }
    }
}

/// The tasks a playbook run reported `changed` on.
fn changed_tasks(stdout: &str) -> Vec<String> {
    let mut task = String::new();
    let mut changed = Vec::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("TASK [") {
            task = rest.split(']').next().unwrap_or("").to_owned();
        } else if line.starts_with("changed: [") && !changed.contains(&task) {
            changed.push(task.clone());
        }
    }
    changed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_playbook_deploys_a_clusterset_on_real_api_servers_idempotently() {
    let b64d = |v: &Value| {
        let bytes: k8s_openapi::ByteString =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not base64: {v}: {e}"));
        String::from_utf8(bytes.0).unwrap()
    };
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().to_owned();
    let (one, two) = tokio::join!(SiteCluster::start(1), SiteCluster::start(2));
    let clusters = [one, two];
    let mut hosts = String::new();
    for (i, cluster) in clusters.iter().enumerate() {
        let n = i + 1;
        let kubeconfig = dir.join(format!("cluster-{n}.kubeconfig"));
        cluster
            .server
            .write_kubeconfig(&kubeconfig, &format!("admin-{n}"));
        hosts.push_str(&format!(
            "    cluster-{n}:\n      mcwan_kubeconfig: {kc}\n      mcwan_kube_context: admin-{n}\n      \
             mcwan_index: {n}\n      mcwan_api_server: {url}\n      mcwan_gateway_node: gw-{n}\n      \
             mcwan_wan_address: 203.0.113.{n}\n",
            kc = kubeconfig.display(),
            url = cluster.server.server()
        ));
    }
    let inventory = dir.join("inventory.yml");
    std::fs::write(
        &inventory,
        format!(
            "clusterset:\n  vars:\n    mcwan_clusterset_name: real\n    mcwan_wan: wireguard\n    \
             mcwan_cluster_build_dir: {build}\n    mcwan_cluster_token_retries: 60\n  hosts:\n{hosts}",
            build = dir.join("build").display()
        ),
    )
    .unwrap();
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();

    // The token controller, while the playbook runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clusters = std::sync::Arc::new(clusters);
    let controller = {
        let (clusters, stop) = (clusters.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for cluster in clusters.iter() {
                    cluster.fill_tokens().await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let run_site = |inventory: PathBuf, home: PathBuf| {
        tokio::task::spawn_blocking(move || playbook(&inventory, "site.yml", &home))
    };
    let (first, recap1) = run_site(inventory.clone(), home.clone()).await.unwrap();
    assert_eq!(recap1.len(), 2, "{first}");
    for (host, (changed, failed)) in &recap1 {
        assert!(*changed > 0 && *failed == 0, "{host}: first run\n{first}");
    }
    async fn secret(cluster: &SiteCluster, name: &str) -> Value {
        cluster
            .get("v1", "secrets", Some("mcwan-system"), name)
            .await
            .unwrap_or_else(|| panic!("no Secret {name}"))
    }
    let mut wg_keys = Vec::new();
    let mut before = Vec::new();
    for cluster in clusters.iter() {
        wg_keys.push(secret(cluster, "mcwan-wireguard").await["data"].clone());
        before.push(cluster.stored_versions().await);
    }
    let (second, recap2) = run_site(inventory.clone(), home.clone()).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    controller.await.unwrap();
    // The second run writes nothing: every object keeps its resourceVersion, and no task
    // reports a change.
    let mut after = Vec::new();
    for cluster in clusters.iter() {
        after.push(cluster.stored_versions().await);
    }
    assert_eq!(before, after, "the second run rewrote objects\n{second}");
    for (host, (changed, failed)) in &recap2 {
        assert_eq!((*changed, *failed), (0, 0), "{host}\n{second}");
    }
    let changed = changed_tasks(&second);
    assert!(
        changed.is_empty(),
        "the second run changed {changed:?}\n{second}"
    );
    for (i, cluster) in clusters.iter().enumerate() {
        assert_eq!(
            wg_keys[i],
            secret(cluster, "mcwan-wireguard").await["data"],
            "a WireGuard key was replaced"
        );
    }

    for (i, cluster) in clusters.iter().enumerate() {
        let (me, peer) = (format!("cluster-{}", i + 1), format!("cluster-{}", 2 - i));
        let peer_cluster = &clusters[1 - i];
        // CRDs, identity, gateway node.
        for crd in [
            "wanpolicies.mcw.l7mp.io",
            "serviceexports.multicluster.x-k8s.io",
            "serviceimports.multicluster.x-k8s.io",
            "clusterproperties.about.k8s.io",
        ] {
            assert!(
                cluster
                    .get(
                        "apiextensions.k8s.io/v1",
                        "customresourcedefinitions",
                        None,
                        crd
                    )
                    .await
                    .is_some(),
                "{me}: {crd}"
            );
        }
        let property = cluster
            .get(
                "about.k8s.io/v1alpha1",
                "clusterproperties",
                None,
                "cluster.clusterset.k8s.io",
            )
            .await
            .unwrap();
        assert_eq!(property["spec"]["value"], me);
        let node = cluster
            .get("v1", "nodes", None, &format!("gw-{}", i + 1))
            .await
            .unwrap();
        assert_eq!(node["metadata"]["labels"]["mcw.l7mp.io/gateway"], "true");
        // The WAN policies of the inventory (the defaults: the seed's).
        let policies = cluster
            .list("mcw.l7mp.io/v1alpha1", "wanpolicies", None)
            .await;
        let names: Vec<&str> = policies
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sd-wan-priority-high", "sd-wan-priority-low"]);
        // The clusterset: both gateways, each with the public key of its private key.
        let configmaps = cluster.list("v1", "configmaps", Some("mcwan-system")).await;
        let clusterset = configmaps
            .iter()
            .find(|c| {
                c["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with("mcwan-clusterset-")
            })
            .expect("clusterset ConfigMap");
        let text = clusterset["data"]["clusterset.yaml"].as_str().unwrap();
        let set = assert_clusterset_loads(&me, text);
        assert_eq!(set.clusters.len(), 2, "{text}");
        for (j, c) in clusters.iter().enumerate() {
            let private = b64d(&secret(c, "mcwan-wireguard").await["data"]["privateKey"]);
            let mut wg = Command::new("wg")
                .arg("pubkey")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(wg.stdin.as_mut().unwrap(), private.as_bytes()).unwrap();
            let public = String::from_utf8(wg.wait_with_output().unwrap().stdout).unwrap();
            assert!(
                text.contains(public.trim()),
                "{me}: no public key of cluster-{}:\n{text}",
                j + 1
            );
        }
        let config = configmaps
            .iter()
            .find(|c| {
                c["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with("mcwan-config-")
            })
            .expect("mcwan-config ConfigMap");
        assert_eq!(
            config["data"]["MCWAN_GATEWAY_NODE_IP"],
            format!("192.0.2.{}", 11 + i)
        );
        // The gateway, rolled by a change of its peers' kubeconfigs.
        let ds = cluster
            .get(
                "apps/v1",
                "daemonsets",
                Some("mcwan-system"),
                "mcwan-gateway",
            )
            .await
            .unwrap();
        let checksum =
            &ds["spec"]["template"]["metadata"]["annotations"]["mcw.l7mp.io/peers-checksum"];
        assert_eq!(checksum.as_str().map(str::len), Some(64), "{ds}");
        let volumes = ds["spec"]["template"]["spec"]["volumes"].to_string();
        assert!(
            volumes.contains(clusterset["metadata"]["name"].as_str().unwrap()),
            "{volumes}"
        );
        // The peer's kubeconfig, which really reaches the peer's API server, as the peer
        // reader: it may read, and nothing more.
        let peers = secret(cluster, "mcwan-peers").await;
        let keys: Vec<&String> = peers["data"].as_object().unwrap().keys().collect();
        assert_eq!(keys, [&peer]);
        let kubeconfig = b64d(&peers["data"][&peer]);
        assert!(
            kubeconfig.contains(peer_cluster.server.server()),
            "{kubeconfig}"
        );
        let path = dir.join(format!("{me}-peer.kubeconfig"));
        std::fs::write(&path, &kubeconfig).unwrap();
        let out = run(testbed::kubectl().arg("--kubeconfig").arg(&path).args([
            "get",
            "wanpolicies",
            "-o",
            "name",
        ]));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "wanpolicy.mcw.l7mp.io/sd-wan-priority-high\nwanpolicy.mcw.l7mp.io/sd-wan-priority-low\n"
        );
        let refused = testbed::kubectl()
            .arg("--kubeconfig")
            .arg(&path)
            .args(["delete", "wanpolicy", "sd-wan-priority-low"])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("Forbidden"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        // CoreDNS forwards clusterset.local to the gateway's DNS Service, the rest untouched.
        let svc = cluster
            .get("v1", "services", Some("mcwan-system"), "mcwan-dns")
            .await
            .unwrap();
        let ip = svc["spec"]["clusterIP"].as_str().unwrap();
        let coredns = cluster
            .get("v1", "configmaps", Some("kube-system"), "coredns")
            .await
            .unwrap();
        let corefile = coredns["data"]["Corefile"].as_str().unwrap();
        let block =
            read(&repo().join("deploy/coredns/clusterset.server")).replace("MCWAN_DNS_IP", ip);
        assert_eq!(
            corefile,
            format!("{}\n{block}", COREFILE.trim_end()),
            "{me}"
        );
    }
    // The per-cluster kustomizations stay buildable by hand (kubectl diff -k).
    for me in ["cluster-1", "cluster-2"] {
        let docs = kustomize(&dir.join("build").join(me));
        let problems = check_manifests(me, &docs, &committed_crds());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

/// The per-cluster kustomization of docs/deploy.md (an overlay, the cluster's clusterset and
/// gateway node address, its ClusterProperty) builds into what it says.
#[test]
fn documented_per_cluster_kustomization_builds() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("clusters/cluster-1");
    std::fs::create_dir_all(&dir).unwrap();
    let deploy = relative(&repo().join("deploy"), &dir);
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  \
             - {deploy}/overlays/wireguard\n  - clusterproperty.yaml\nconfigMapGenerator:\n  \
             - name: mcwan-clusterset\n    namespace: mcwan-system\n    behavior: replace\n    \
             files: [clusterset.yaml]\n  - name: mcwan-config\n    namespace: mcwan-system\n    \
             behavior: merge\n    literals:\n      - MCWAN_GATEWAY_NODE_IP=10.0.0.11\n"
        ),
    )
    .unwrap();
    std::fs::copy(
        repo().join("deploy/examples/clusterproperty.yaml"),
        dir.join("clusterproperty.yaml"),
    )
    .unwrap();
    let clusterset = "name: prod\nwan: wireguard\nclusters:\n  - id: cluster-1\n    index: 1\n    \
        gateway: {wanAddress: 192.0.2.1}\n  - id: cluster-2\n    index: 2\n    \
        gateway: {wanAddress: 192.0.2.2}\n";
    std::fs::write(dir.join("clusterset.yaml"), clusterset).unwrap();
    let docs = kustomize(&dir);
    let problems = check_manifests("cluster-1", &docs, &committed_crds());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let config = find(&docs, "ConfigMap", "mcwan-config-");
    assert_eq!(config["data"]["MCWAN_GATEWAY_NODE_IP"], "10.0.0.11");
    assert_eq!(config["data"]["MCWAN_VIP_CIDR"], "241.64.0.0/16");
    let cm = find(&docs, "ConfigMap", "mcwan-clusterset-");
    assert_eq!(cm["data"]["clusterset.yaml"], clusterset);
    let property = find(&docs, "ClusterProperty", "cluster.clusterset.k8s.io");
    assert_eq!(property["spec"]["value"], "cluster-1");
    // Both workloads name the regenerated ConfigMaps.
    let names = [&cm["metadata"]["name"], &config["metadata"]["name"]];
    for ds in docs.iter().filter(|d| d["kind"] == "DaemonSet") {
        let text = ds.to_string();
        assert!(
            text.contains(config["metadata"]["name"].as_str().unwrap()),
            "{}",
            name_of(ds)
        );
        if ds["metadata"]["name"] == "mcwan-gateway" {
            assert!(names.iter().all(|n| text.contains(n.as_str().unwrap())));
        }
    }
}
