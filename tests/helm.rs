//! The Helm chart, deploy/helm/mcwan, with the real Helm (testbed/helm, helm.sh/helm/v4):
//!
//! - `helm lint` and `helm lint --strict` pass with the default values and every values example
//!   (deploy/helm/mcwan/ci/*-values.yaml);
//! - every object `helm template` renders for each example parses *strictly* into its
//!   Kubernetes type (support/manifests.rs, as tests/deploy.rs does for kustomize), custom
//!   objects fit the CRDs, and the clusterset file loads as the gateway loads it;
//! - the gateway's arguments and MCWAN_* environment parse with mcwan's own command line, with
//!   the values the example asked for;
//! - with the values of an overlay, the chart renders the objects the kustomize overlay
//!   renders, field for field (Helm's labels, checksums and the explicit defaults aside);
//! - the PrometheusRule carries deploy/monitoring's rules (promtool loads them) and the
//!   PodMonitor selects the gateway's admin port;
//! - bad values are refused, naming the value; the packaged chart renders as the directory;
//! - `helm install`, `helm upgrade` with changed values, `helm uninstall` and a second install
//!   against a real kube-apiserver (testbed/apiserver), the objects checked through the API,
//!   the RBAC with `kubectl auth can-i`, and the gateway run as a process on what was installed;
//!   a kustomize install taken over by a release.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

#[path = "support/testbed.rs"]
mod testbed;
use testbed::ApiServer;

#[path = "support/ports.rs"]
mod ports;

#[path = "support/manifests.rs"]
mod manifests;
use manifests::{
    assert_clusterset_loads, check_manifests, committed_crds, find, kustomize, name_of, read, repo,
    yaml_docs,
};

fn chart() -> PathBuf {
    repo().join("deploy/helm/mcwan")
}

/// The values examples, by name (`wireguard` for ci/wireguard-values.yaml).
fn examples() -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(chart().join("ci"))
        .expect("deploy/helm/mcwan/ci")
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p
                .file_name()?
                .to_str()?
                .strip_suffix("-values.yaml")?
                .to_owned();
            Some((name, p))
        })
        .collect();
    files.sort();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for required in ["airgapped", "sdwan", "wireguard"] {
        assert!(names.contains(&required), "no ci/{required}-values.yaml");
    }
    files
}

/// Helm, with its configuration, cache and data under target/testbed/helm-home (nothing of the
/// user's is read or written; Helm keeps nothing there that one test could leave to another).
fn helm() -> Command {
    let home = testbed::bin_dir().with_file_name("helm-home");
    let mut cmd = Command::new(testbed::bin("helm"));
    cmd.env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .env_remove("HELM_NAMESPACE");
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd`, failing the test with its output if it fails; its stdout.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `helm template` of the chart as release `mcwan` in mcwan-system, CRDs included, with the
/// values files and `--set`s given.
fn template(values: &[&Path], set: &[&str]) -> Vec<Value> {
    template_of(&chart(), values, set)
}

/// [`template`] of the chart at `chart` (a directory or a packaged archive).
fn template_of(chart: &Path, values: &[&Path], set: &[&str]) -> Vec<Value> {
    let mut cmd = helm();
    cmd.args(["template", "mcwan"]).arg(chart).args([
        "--namespace",
        "mcwan-system",
        "--include-crds",
    ]);
    for file in values {
        cmd.arg("--values").arg(file);
    }
    for s in set {
        cmd.args(["--set", s]);
    }
    yaml_docs(&run(&mut cmd))
}

/// The error `helm template` stops with.
fn template_error(set: &[&str]) -> String {
    let mut cmd = helm();
    cmd.args(["template", "mcwan"]).arg(chart());
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = output(&mut cmd);
    assert!(!out.status.success(), "{set:?} rendered");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn container<'a>(ds: &'a Value, name: &str) -> &'a Value {
    ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{}: no container {name}", name_of(ds)))
}

// ---------------------------------------------------------------------------------------------
// Lint and render.

#[test]
fn chart_lints_strictly_with_every_values_example() {
    let mut runs: Vec<Vec<PathBuf>> = vec![vec![]];
    runs.extend(examples().into_iter().map(|(_, p)| vec![p]));
    for values in runs {
        for strict in [false, true] {
            let mut cmd = helm();
            cmd.arg("lint").arg(chart());
            if strict {
                cmd.arg("--strict");
            }
            for v in &values {
                cmd.arg("--values").arg(v);
            }
            let out = run(&mut cmd);
            assert!(
                out.contains("1 chart(s) linted, 0 chart(s) failed"),
                "{values:?}: {out}"
            );
            assert!(
                !out.contains("[ERROR]") && !out.contains("[WARNING]"),
                "{out}"
            );
        }
    }
}

/// `helm package` copies the linked files (crds/crds.yaml, files/mcwan.rules.yaml) into the
/// archive, which renders the same objects as the directory.
#[test]
fn the_packaged_chart_renders_as_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(helm()
        .arg("package")
        .arg(chart())
        .arg("--destination")
        .arg(dir.path()));
    let archive = dir
        .path()
        .join(format!("mcwan-{}.tgz", env!("CARGO_PKG_VERSION")));
    assert!(archive.is_file(), "{out}");
    let set = [
        "metrics.podMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
    ];
    let packaged = template_of(&archive, &[], &set);
    assert_eq!(packaged, template(&[], &set));
    assert!(packaged.iter().any(|d| d["kind"] == "PrometheusRule"));
    assert_eq!(
        packaged
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .count(),
        committed_crds().len()
    );
}

#[test]
fn every_values_example_renders_objects_of_their_kubernetes_types() {
    let crds = committed_crds();
    let mut problems = Vec::new();
    let mut runs = vec![("defaults".to_owned(), None)];
    runs.extend(examples().into_iter().map(|(n, p)| (n, Some(p))));
    for (name, values) in runs {
        let files: Vec<&Path> = values.iter().map(PathBuf::as_path).collect();
        let docs = template(&files, &[]);
        problems.extend(check_manifests(&name, &docs, &crds));
        // The CRDs are deploy/crds' (crds/crds.yaml links to it).
        let rendered: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .collect();
        assert_eq!(rendered, crds.iter().collect::<Vec<_>>(), "{name}: CRDs");
        // The clusterset file loads without a problem.
        let cm = find(&docs, "ConfigMap", "mcwan-clusterset");
        let text = cm["data"]["clusterset.yaml"].as_str().unwrap();
        let set = assert_clusterset_loads(&name, text);
        assert!(set.clusters.len() >= 2, "{name}: {text}");
        // Every namespaced object is in the release's namespace.
        for doc in &docs {
            if let Some(ns) = doc["metadata"]["namespace"].as_str() {
                assert_eq!(ns, "mcwan-system", "{name}: {}", name_of(doc));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The clap argument of `mcwan gateway` (or a global one) that reads environment variable
/// `env`, as the command-line words that set it to `value`.
fn env_as_args(env: &str, value: &str) -> Option<Vec<String>> {
    use clap::CommandFactory as _;
    let mut cli = mcwan::cli::Cli::command();
    cli.build();
    let gateway = cli.find_subcommand("gateway").unwrap();
    let arg = gateway
        .get_arguments()
        .find(|a| a.get_env().is_some_and(|e| e == env))?;
    let long = arg.get_long().unwrap();
    match arg.get_action() {
        clap::ArgAction::SetTrue => {
            let on: bool = value
                .parse()
                .unwrap_or_else(|_| panic!("{env}={value}: not a bool"));
            Some(if on {
                vec![format!("--{long}")]
            } else {
                vec![]
            })
        }
        _ => Some(vec![format!("--{long}={value}")]),
    }
}

/// The gateway's command line as the kubelet would start it: its arguments (`$(NODE_IP)`
/// expanded), then each MCWAN_* variable of its environment and ConfigMap as the option that
/// reads it.
fn gateway_words(docs: &[Value]) -> Vec<String> {
    let ds = find(docs, "DaemonSet", "mcwan-gateway");
    let gateway = container(ds, "gateway");
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for source in gateway["envFrom"].as_array().unwrap() {
        let name = source["configMapRef"]["name"].as_str().unwrap();
        let cm = find(docs, "ConfigMap", name);
        for (k, v) in cm["data"].as_object().unwrap() {
            env.insert(k.clone(), v.as_str().unwrap().to_owned());
        }
    }
    for e in gateway["env"].as_array().unwrap() {
        if let Some(value) = e["value"].as_str() {
            env.insert(e["name"].as_str().unwrap().to_owned(), value.to_owned());
        }
    }
    let mut words = vec!["mcwan".to_owned()];
    words.extend(
        gateway["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().replace("$(NODE_IP)", "10.0.0.5")),
    );
    for (name, value) in &env {
        // MCWAN_LOG is the log filter (tracing's), MCWAN_GATEWAY_NODE_IP the route agent's.
        if !name.starts_with("MCWAN_") || name == "MCWAN_LOG" || name == "MCWAN_GATEWAY_NODE_IP" {
            continue;
        }
        let args =
            env_as_args(name, value).unwrap_or_else(|| panic!("`mcwan gateway` reads no {name}"));
        words.extend(args);
    }
    words
}

/// [`gateway_words`], parsed by mcwan's own parser.
fn gateway_command(docs: &[Value]) -> mcwan::cli::GatewayCmd {
    use clap::Parser as _;
    let words = gateway_words(docs);
    let cli = mcwan::cli::Cli::try_parse_from(&words)
        .unwrap_or_else(|e| panic!("the gateway's command line does not parse: {e}\n{words:?}"));
    let mcwan::cli::Command::Gateway(cmd) = cli.command else {
        panic!("not `mcwan gateway`: {words:?}")
    };
    *cmd
}

#[test]
fn gateway_arguments_and_environment_parse_with_mcwan() {
    let examples: BTreeMap<String, PathBuf> = examples().into_iter().collect();
    for (name, path) in &examples {
        let docs = template(&[path], &[]);
        let cmd = gateway_command(&docs);
        assert!(cmd.kube.kube, "{name}");
        assert_eq!(cmd.dataplane, mcwan::cli::Dataplane::Ipvs, "{name}");
        assert_eq!(cmd.admin_listen.to_string(), "0.0.0.0:9641", "{name}");
        assert_eq!(cmd.dns_listen.to_string(), "10.0.0.5:10053", "{name}");
        assert_eq!(
            cmd.kube.clusterset.as_deref(),
            Some(Path::new("/etc/mcwan/clusterset/clusterset.yaml"))
        );
        assert_eq!(
            cmd.kube.peer_kubeconfigs.as_deref(),
            Some(Path::new("/etc/mcwan/peers"))
        );
        // The paths the options name are mounted.
        let ds = find(&docs, "DaemonSet", "mcwan-gateway");
        let mounts: BTreeMap<&str, &str> = container(ds, "gateway")["volumeMounts"]
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
        let set = assert_clusterset_loads(
            name,
            find(&docs, "ConfigMap", "mcwan-clusterset")["data"]["clusterset.yaml"]
                .as_str()
                .unwrap(),
        );
        let id = cmd
            .plan
            .cluster_id
            .clone()
            .unwrap_or_else(|| panic!("{name}: no cluster ID"));
        assert!(set.clusters.contains_key(&id), "{name}: {id}");
        match cmd.wireguard_private_key.as_deref() {
            Some(key) => {
                assert_eq!(key, Path::new("/etc/mcwan/wireguard/privateKey"), "{name}");
                assert_eq!(mounts.get("/etc/mcwan/wireguard"), Some(&"wireguard"));
            }
            None => assert!(!mounts.contains_key("/etc/mcwan/wireguard"), "{name}"),
        }
    }
    // What each example asked for.
    let wireguard = gateway_command(&template(&[&examples["wireguard"]], &[]));
    assert_eq!(wireguard.plan.cluster_id.as_deref(), Some("cluster-1"));
    assert_eq!(wireguard.plan.vip_cidr.to_string(), "241.64.0.0/16");
    assert_eq!(
        wireguard.wireguard_backend,
        mcwan::cli::WireguardBackend::Auto
    );
    assert_eq!(wireguard.health_port, 9642);
    assert_eq!(wireguard.plan.default_wan_policy, None);
    let sdwan = gateway_command(&template(&[&examples["sdwan"]], &[]));
    assert_eq!(sdwan.plan.cluster_id.as_deref(), Some("cluster-2"));
    assert_eq!(
        sdwan.plan.default_wan_policy.as_deref(),
        Some("sd-wan-priority-low")
    );
    assert_eq!(sdwan.rule_priority, 2000);
    assert_eq!(
        (
            sdwan.health_interval_ms,
            sdwan.health_timeout_ms,
            sdwan.health_fall,
            sdwan.health_rise
        ),
        (Duration::from_millis(500), Duration::from_secs(1), 5, 2)
    );
    assert_eq!(sdwan.wireguard_private_key, None);
    let airgapped = gateway_command(&template(&[&examples["airgapped"]], &[]));
    assert_eq!(airgapped.plan.vip_cidr.to_string(), "241.80.0.0/16");
    assert_eq!(airgapped.plan.scheduler, "wlc");
    assert_eq!(airgapped.drain_seconds, Duration::from_secs(30));
    // Changed values reach the command line.
    let changed = gateway_command(&template(
        &[&examples["wireguard"]],
        &[
            "metrics.port=9650",
            "dns.port=10054",
            "dns.zone=mesh.example",
            "dns.ttl=30",
            "healthCheck.port=0",
            "peers.syncTimeoutSeconds=3",
            "wan.wireguard.backend=userspace",
            "gateway.dataplane=none",
        ],
    ));
    assert_eq!(changed.admin_listen.to_string(), "0.0.0.0:9650");
    assert_eq!(changed.dns_listen.to_string(), "10.0.0.5:10054");
    assert_eq!((changed.zone.as_str(), changed.ttl), ("mesh.example", 30));
    assert_eq!(changed.health_port, 0);
    assert_eq!(changed.kube.peer_sync_timeout, Duration::from_secs(3));
    assert_eq!(
        changed.wireguard_backend,
        mcwan::cli::WireguardBackend::Userspace
    );
    assert_eq!(changed.dataplane, mcwan::cli::Dataplane::None);
}

#[test]
fn values_examples_reach_the_pods() {
    let examples: BTreeMap<String, PathBuf> = examples().into_iter().collect();
    // The air-gapped mirror: every image from the mirror by digest, pulled with its secret.
    let docs = template(&[&examples["airgapped"]], &[]);
    let image = "registry.internal.example:5000/mirror/l7mp/mcwan@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
    let daemonsets: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "DaemonSet").collect();
    assert_eq!(daemonsets.len(), 1, "the route agent is disabled");
    let pod = &daemonsets[0]["spec"]["template"]["spec"];
    assert_eq!(
        pod["imagePullSecrets"],
        json!([{"name": "internal-registry"}])
    );
    assert!(
        pod.get("initContainers").is_none(),
        "sysctlInit is disabled"
    );
    assert_eq!(pod["containers"][0]["image"], image);
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
    // Helm merges maps: the example's label comes on top of the chart's.
    assert_eq!(
        pod["nodeSelector"],
        json!({"kubernetes.io/os": "linux", "mcw.l7mp.io/gateway": "true",
               "site.example/edge": "true"})
    );
    assert_eq!(pod["tolerations"][0]["key"], "site.example/edge");
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
        json!(["edge-a"])
    );
    assert!(!docs
        .iter()
        .any(|d| d["metadata"]["name"] == "mcwan-metrics"));
    // Every image of every example's workloads is the chart's, by tag or digest.
    let version = env!("CARGO_PKG_VERSION");
    for (name, path) in &examples {
        let docs = template(&[path], &[]);
        for ds in docs.iter().filter(|d| d["kind"] == "DaemonSet") {
            let spec = &ds["spec"]["template"]["spec"];
            for c in spec["containers"]
                .as_array()
                .into_iter()
                .chain(spec["initContainers"].as_array())
                .flatten()
            {
                let image = c["image"].as_str().unwrap();
                assert!(
                    image == format!("ghcr.io/l7mp/mcwan:{version}") || image.contains("@sha256:"),
                    "{name}: {}: {image}",
                    name_of(ds)
                );
            }
        }
    }
    // The SD-WAN example: one kubeconfig per peer, each from its own Secret, named by cluster ID.
    let docs = template(&[&examples["sdwan"]], &[]);
    let ds = find(&docs, "DaemonSet", "mcwan-gateway");
    let peers = ds["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "peers")
        .unwrap();
    assert_eq!(
        peers["projected"]["sources"],
        json!([
            {"secret": {"name": "mcwan-peers", "optional": true}},
            {"secret": {"name": "cluster-1-kubeconfig",
                        "items": [{"key": "kubeconfig", "path": "cluster-1"}]}},
            {"secret": {"name": "cluster-3-kubeconfig",
                        "items": [{"key": "config", "path": "cluster-3"}]}},
        ])
    );
    let policies: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "WANPolicy")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        policies,
        ["sd-wan-priority-high", "sd-wan-priority-low", "sd-wan-bulk"]
    );
    let property = find(&docs, "ClusterProperty", "cluster.clusterset.k8s.io");
    assert_eq!(property["spec"]["value"], "cluster-2");
    // The toggles of what the kustomize components and hand-made objects do.
    let toggled = template(
        &[&examples["wireguard"]],
        &[
            "namespace.create=false",
            "clusterProperty.create=false",
            "routeAgent.intervalSeconds=5",
            "wan.wireguard.privateKeySecret=wg",
            "wan.wireguard.privateKeySecretKey=key",
            "peers.secretName=",
            "wanPolicies[0].name=bulk",
            "wanPolicies[0].tunnel=bulk",
            "wanPolicies[0].port=32000",
            "wanPolicies[0].portCount=64",
            "wanPolicies[0].default=true",
        ],
    );
    let policy = find(&toggled, "WANPolicy", "bulk");
    assert_eq!(
        policy["metadata"]["annotations"],
        json!({"mcw.l7mp.io/is-default-policy": "true"})
    );
    assert_eq!(
        policy["spec"],
        json!({"tunnel": "bulk", "port": 32000, "portCount": 64})
    );
    for kind in ["Namespace", "ClusterProperty"] {
        assert!(!toggled.iter().any(|d| d["kind"] == kind), "{kind}");
    }
    let agent = find(&toggled, "DaemonSet", "mcwan-route-agent");
    assert_eq!(
        container(agent, "route")["env"],
        json!([{"name": "MCWAN_ROUTE_INTERVAL", "value": "5"}])
    );
    let gateway = find(&toggled, "DaemonSet", "mcwan-gateway");
    let volumes = &gateway["spec"]["template"]["spec"]["volumes"];
    assert_eq!(
        volumes[1],
        json!({"name": "wireguard", "secret": {"secretName": "wg", "defaultMode": 256,
               "items": [{"key": "key", "path": "privateKey"}]}})
    );
    assert_eq!(
        volumes.as_array().unwrap().len(),
        2,
        "no peers volume: {volumes}"
    );
    assert!(gateway_command(&toggled).kube.peer_kubeconfigs.is_none());

    // A change of the clusterset or configuration changes the pod template (the gateway rolls).
    let checksum = |docs: &[Value]| {
        find(docs, "DaemonSet", "mcwan-gateway")["spec"]["template"]["metadata"]["annotations"]
            ["checksum/config"]
            .clone()
    };
    let before = checksum(&docs);
    assert_eq!(before.as_str().map(str::len), Some(64));
    let renamed = template(&[&examples["sdwan"]], &["clusterset.name=renamed"]);
    assert_ne!(checksum(&renamed), before);
    assert_eq!(checksum(&template(&[&examples["sdwan"]], &[])), before);
}

// ---------------------------------------------------------------------------------------------
// The chart against the kustomize overlays.

/// Values that make the chart render what overlay `dir` renders: its clusterset file as
/// values, no objects the overlay has not (metrics Service, ClusterProperty).
fn overlay_values(dir: &Path, scratch: &Path) -> PathBuf {
    let clusterset: Value =
        serde_saphyr::from_str(&read(&dir.join("clusterset.yaml"))).expect("clusterset.yaml");
    let mut values = json!({
        "clusterset": {"name": clusterset["name"], "clusters": clusterset["clusters"]},
        "wan": {"mode": clusterset["wan"]},
        "metrics": {"service": {"enabled": false}},
    });
    match clusterset.get("innerNetwork") {
        Some(inner) => values["wan"]["wireguard"] = json!({"innerNetwork": inner}),
        None => values["wan"]["wireguard"] = json!({"innerNetwork": ""}),
    }
    let path = scratch.join(format!(
        "{}-values.json",
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&path, values.to_string()).unwrap();
    path
}

/// `name` without kustomize's content hash (`mcwan-config-5dd4tk79hf` -> `mcwan-config`): ten
/// characters of the hex digits that kustomize's encoding keeps (0, 1, 3, a, e become g, h, k,
/// m, t).
fn unhashed(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, hash))
            if hash.len() == 10 && hash.chars().all(|c| "245678bcdfghkmt9".contains(c)) =>
        {
            base
        }
        _ => name,
    }
}

/// Removes from `helm_map` the entries `kustomize_map` has too, after checking they are equal;
/// what stays is Helm's own (labels, checksums).
fn take_common(what: &str, kustomize_map: &Value, helm_map: &mut Value, diffs: &mut Vec<String>) {
    if let Some(k) = kustomize_map.as_object() {
        for (key, value) in k {
            match helm_map.get(key) {
                Some(h) if h == value => {}
                other => diffs.push(format!("{what}.{key}: kustomize {value}, helm {other:?}")),
            }
        }
    }
}

/// The object as kustomize would have it: Helm's extra labels and annotations dropped (after
/// checking that every label and annotation of `kustomize` is there), hashed names unhashed,
/// and the gateway's explicit defaults (imagePullPolicy, the MCWAN_* env the overlay leaves to
/// the binary's defaults) dropped.
fn as_kustomize(kustomize: &Value, helm: &Value, diffs: &mut Vec<String>) -> (Value, Value) {
    let mut k = kustomize.clone();
    let mut h = helm.clone();
    let name = name_of(kustomize);
    for meta in ["/metadata", "/spec/template/metadata"] {
        for field in ["labels", "annotations"] {
            let path = format!("{meta}/{field}");
            let (Some(km), Some(hm)) = (k.pointer(&path).cloned(), h.pointer_mut(&path)) else {
                if let Some(kv) = k.pointer(&path).filter(|v| !v.is_null()) {
                    diffs.push(format!("{name}: {path}: kustomize {kv}, helm none"));
                }
                if let Some(parent) = h.pointer_mut(meta).and_then(Value::as_object_mut) {
                    parent.remove(field);
                }
                continue;
            };
            take_common(&format!("{name} {path}"), &km, hm, diffs);
            for v in [k.pointer_mut(meta), h.pointer_mut(meta)]
                .into_iter()
                .flatten()
            {
                v.as_object_mut().unwrap().remove(field);
            }
        }
    }
    for v in [&mut k, &mut h] {
        if let Some(n) = v["metadata"]["name"].as_str() {
            v["metadata"]["name"] = json!(unhashed(n));
        }
        for volume in v
            .pointer_mut("/spec/template/spec/volumes")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(n) = volume["configMap"]["name"].as_str() {
                volume["configMap"]["name"] = json!(unhashed(n));
            }
        }
        let Some(spec) = v.pointer_mut("/spec/template/spec") else {
            continue;
        };
        for list in ["containers", "initContainers"] {
            for c in spec
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                for source in c
                    .get_mut("envFrom")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(n) = source["configMapRef"]["name"].as_str() {
                        source["configMapRef"]["name"] = json!(unhashed(n));
                    }
                }
            }
        }
    }
    // The chart states imagePullPolicy and the gateway's defaults explicitly.
    if let Some(spec) = h.pointer_mut("/spec/template/spec") {
        for list in ["containers", "initContainers"] {
            for c in spec
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if c["imagePullPolicy"] == "IfNotPresent" {
                    c.as_object_mut().unwrap().remove("imagePullPolicy");
                }
            }
        }
    }
    // The gateway's environment: the overlay's is all there; what the chart adds is the
    // binary's defaults, which chart_renders_what_the_kustomize_overlays_render checks on the
    // parsed command lines.
    if kustomize["kind"] == "DaemonSet" && kustomize["metadata"]["name"] == "mcwan-gateway" {
        let k_env = k
            .pointer_mut("/spec/template/spec/containers/0/env")
            .unwrap()
            .take();
        let h_env = h
            .pointer_mut("/spec/template/spec/containers/0/env")
            .unwrap()
            .take();
        for e in k_env.as_array().unwrap() {
            if !h_env.as_array().unwrap().contains(e) {
                diffs.push(format!("{name}: env {e} of the overlay is missing"));
            }
        }
    }
    (k, h)
}

#[test]
fn chart_renders_what_the_kustomize_overlays_render() {
    let scratch = tempfile::tempdir().unwrap();
    for overlay in ["wireguard", "sdwan"] {
        let dir = repo().join("deploy/overlays").join(overlay);
        let from_kustomize = kustomize(&dir);
        let values = overlay_values(&dir, scratch.path());
        let from_helm = template(&[&values], &[]);
        let key = |d: &Value| {
            format!(
                "{} {}",
                d["kind"].as_str().unwrap(),
                unhashed(d["metadata"]["name"].as_str().unwrap())
            )
        };
        let k_keys: Vec<String> = {
            let mut v: Vec<String> = from_kustomize.iter().map(key).collect();
            v.sort();
            v
        };
        let h_keys: Vec<String> = {
            let mut v: Vec<String> = from_helm.iter().map(key).collect();
            v.sort();
            v
        };
        assert_eq!(h_keys, k_keys, "{overlay}: the objects differ");
        let mut diffs = Vec::new();
        for k in &from_kustomize {
            let h = from_helm.iter().find(|h| key(h) == key(k)).unwrap();
            let (k_obj, h_obj) = as_kustomize(k, h, &mut diffs);
            let mut found = Vec::new();
            compare_values(&key(k), &k_obj, &h_obj, &mut found);
            diffs.extend(found);
        }
        assert!(diffs.is_empty(), "{overlay}:\n{}", diffs.join("\n"));
        // The same gateway: its command lines, environment included, parse into the same
        // options.
        assert_eq!(
            format!("{:#?}", gateway_command(&from_helm)),
            format!("{:#?}", gateway_command(&from_kustomize)),
            "{overlay}"
        );
        // The same clusterset file, as the gateway reads it.
        let cm = |docs: &[Value]| {
            let text = find(docs, "ConfigMap", "mcwan-clusterset")["data"]["clusterset.yaml"]
                .as_str()
                .unwrap()
                .to_owned();
            serde_json::to_value(assert_clusterset_loads(overlay, &text)).unwrap()
        };
        assert_eq!(cm(&from_helm), cm(&from_kustomize), "{overlay}");
    }
}

/// Every difference between two values, with its path; a clusterset file is compared as YAML
/// (the chart writes it from values, in its own key order).
fn compare_values(path: &str, a: &Value, b: &Value, diffs: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(Value::String(s)), Some(Value::String(t)))
                        if key == "clusterset.yaml" =>
                    {
                        let (s, t): (Value, Value) = (
                            serde_saphyr::from_str(s).unwrap(),
                            serde_saphyr::from_str(t).unwrap(),
                        );
                        compare_values(&p, &s, &t, diffs);
                    }
                    (Some(v), Some(w)) => compare_values(&p, v, w, diffs),
                    (v, w) => diffs.push(format!("{p}: kustomize {v:?}, helm {w:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            // Volumes and mounts are a set by name (kustomize's patches put theirs first).
            let by_name = |list: &[Value]| {
                let mut list = list.to_vec();
                if path.ends_with(".volumes") || path.ends_with(".volumeMounts") {
                    list.sort_by_key(|v| v["name"].as_str().unwrap_or("").to_owned());
                }
                list
            };
            for (i, (v, w)) in by_name(x).iter().zip(&by_name(y)).enumerate() {
                compare_values(&format!("{path}[{i}]"), v, w, diffs);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        (x, y) if x == y => {}
        (x, y) => diffs.push(format!("{path}: kustomize {x}, helm {y}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Monitoring.

#[test]
fn prometheus_rule_carries_the_alert_rules_and_promtool_loads_them() {
    let examples: BTreeMap<String, PathBuf> = examples().into_iter().collect();
    let docs = template(&[&examples["wireguard"]], &[]);
    let rule = find(&docs, "PrometheusRule", "mcwan");
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let file: Value =
        serde_saphyr::from_str(&read(&repo().join("deploy/monitoring/mcwan.rules.yaml"))).unwrap();
    assert_eq!(rule["spec"]["groups"], file["groups"]);
    // The groups as the chart renders them load in promtool.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rendered.rules.json");
    std::fs::write(&path, json!({"groups": rule["spec"]["groups"]}).to_string()).unwrap();
    let out = output(Command::new("promtool").args(["check", "rules"]).arg(&path));
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The PodMonitor selects the gateway's pods on the port that serves /metrics.
    let monitor = find(&docs, "PodMonitor", "mcwan-gateway");
    let ds = find(&docs, "DaemonSet", "mcwan-gateway");
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&labels[k], v, "{k}");
    }
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let port = endpoint["port"].as_str().unwrap();
    assert!(
        container(ds, "gateway")["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port),
        "no container port {port}"
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!(["mcwan-system"])
    );
    // The metrics Service names the same port; by default there is no PodMonitor or rule.
    let svc = find(&docs, "Service", "mcwan-metrics");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "admin");
    assert_eq!(svc["spec"]["clusterIP"], "None");
    let defaults = template(&[], &[]);
    assert!(!defaults
        .iter()
        .any(|d| d["kind"] == "PodMonitor" || d["kind"] == "PrometheusRule"));
}

// ---------------------------------------------------------------------------------------------
// Bad values.

#[test]
fn bad_values_are_refused_naming_the_value() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["wan.mode=gre"],
            "at '/wan/mode': value must be one of 'wireguard', 'sdwan'",
        ),
        (
            &["gateway.dataplan=ipvs"],
            "at '/gateway': additional properties 'dataplan' not allowed",
        ),
        (&["healthCheck.fall=0"], "at '/healthCheck/fall'"),
        (&["vipCidr=241.64.0.0"], "at '/vipCidr'"),
        (&["image.digest=sha256:abc"], "at '/image/digest'"),
        (
            &["clusterId=cluster-9"],
            "clusterId: cluster-9 is not one of clusterset.clusters[].id (cluster-1, cluster-2)",
        ),
        (
            &["wan.mode=sdwan"],
            "clusterset.clusters[0].gateway.sdwanEdges: cluster cluster-1 has no SD-WAN edges",
        ),
        (
            &[
                "clusterId=cluster-1",
                "peers.kubeconfigs[0].clusterId=cluster-7",
                "peers.kubeconfigs[0].secretName=k",
            ],
            "peers.kubeconfigs[0].clusterId: cluster-7 is not one of clusterset.clusters[].id",
        ),
    ];
    let mut wrong = Vec::new();
    for (set, expected) in cases {
        let err = template_error(set);
        if !err.contains(expected) {
            wrong.push(format!("{set:?}: expected {expected:?}, got:\n{err}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// A real API server.

struct Release {
    server: ApiServer,
    client: kube::Client,
    kubeconfig: PathBuf,
}

impl Release {
    fn helm(&self, args: &[&str]) -> String {
        let mut cmd = helm();
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", "mcwan-system"]);
        run(&mut cmd)
    }

    /// A control plane of its own, and its admin kubeconfig for Helm.
    async fn start(name: &'static str) -> (Self, tempfile::TempDir) {
        let server = tokio::task::spawn_blocking(move || ApiServer::start(name))
            .await
            .unwrap();
        let client = server.client().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig, name);
        let release = Self {
            server,
            client,
            kubeconfig,
        };
        (release, dir)
    }

    /// `helm install` (with `--create-namespace`) or `helm upgrade` of the chart as `mcwan`.
    fn install(&self, verb: &str, values: &Path, set: &[&str], flags: &[&str]) -> String {
        let mut cmd = helm();
        cmd.args([verb, "mcwan"])
            .arg(chart())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--namespace", "mcwan-system"])
            .arg("--values")
            .arg(values)
            .args(flags);
        if verb == "install" {
            cmd.arg("--create-namespace");
        }
        for s in set {
            cmd.args(["--set", s]);
        }
        run(&mut cmd)
    }

    async fn get(&self, api_version: &str, plural: &str, ns: bool, name: &str) -> Option<Value> {
        let ns = ns.then_some("mcwan-system");
        testbed::get(&self.client, api_version, plural, ns, name)
            .await
            .unwrap()
    }

    /// `kubectl apply --server-side` of `objects` as the admin.
    fn server_apply(&self, objects: &Value) {
        let mut cmd = self.server.kubectl();
        cmd.args(["apply", "--server-side", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            objects.to_string().as_bytes(),
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `kubectl auth can-i VERB RESOURCE[/SUBRESOURCE]` as a ServiceAccount of mcwan-system.
    fn can(&self, account: &str, verb: &str, resource: &str) -> bool {
        let mut kubectl = self.server.kubectl();
        kubectl.args(["auth", "can-i", verb]);
        match resource.split_once('/') {
            Some((resource, sub)) => kubectl.args([resource, "--subresource", sub]),
            None => kubectl.arg(resource),
        };
        kubectl.args([
            "--as",
            &format!("system:serviceaccount:mcwan-system:{account}"),
        ]);
        let out = output(&mut kubectl);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    }
}

/// A gateway process, killed when dropped.
struct GatewayRun {
    child: std::process::Child,
    log: PathBuf,
}

impl GatewayRun {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GatewayRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mcwan gateway` as the installed DaemonSet would run it, with what the kubelet would
/// give it replaced by files here: the clusterset ConfigMap's file, an empty peers directory,
/// the gateway ServiceAccount's token as its kubeconfig; DNS and admin on free loopback ports,
/// no dataplane and no health probes (this host is not the gateway node).
async fn run_installed_gateway(release: &Release, dir: &Path) -> GatewayRun {
    let get = |plural: &'static str, name: &'static str| async move {
        let api_version = if plural == "daemonsets" {
            "apps/v1"
        } else {
            "v1"
        };
        release.get(api_version, plural, true, name).await.unwrap()
    };
    let mut installed = vec![get("daemonsets", "mcwan-gateway").await];
    installed.push(get("configmaps", "mcwan-config").await);
    let clusterset = get("configmaps", "mcwan-clusterset").await;
    let clusterset_file = dir.join("clusterset.yaml");
    std::fs::write(
        &clusterset_file,
        clusterset["data"]["clusterset.yaml"].as_str().unwrap(),
    )
    .unwrap();
    let peers = dir.join("peers");
    std::fs::create_dir_all(&peers).unwrap();
    let token = run(release.server.kubectl().args([
        "create",
        "token",
        "-n",
        "mcwan-system",
        "mcwan-gateway",
        "--duration",
        "1h",
    ]));
    let mut kubeconfig: Value =
        serde_json::from_str(&release.server.kubeconfig_yaml("gateway")).unwrap();
    kubeconfig["users"] = json!([{"name": "gateway", "user": {"token": token.trim()}}]);
    kubeconfig["contexts"][0]["context"]["user"] = json!("gateway");
    let kubeconfig_file = dir.join("gateway.kubeconfig");
    std::fs::write(&kubeconfig_file, kubeconfig.to_string()).unwrap();
    let words: Vec<String> = gateway_words(&installed)
        .into_iter()
        .skip(1)
        .map(|w| match w.split_once('=') {
            Some(("--clusterset", _)) => format!("--clusterset={}", clusterset_file.display()),
            Some(("--peer-kubeconfigs", _)) => format!("--peer-kubeconfigs={}", peers.display()),
            Some(("--dataplane", _)) => "--dataplane=none".to_owned(),
            Some(("--dns-listen", _)) => format!("--dns-listen=127.0.0.1:{}", ports::free_port()),
            Some(("--admin-listen", _)) => {
                format!("--admin-listen=127.0.0.1:{}", ports::free_port())
            }
            Some(("--health-port", _)) => "--health-port=0".to_owned(),
            _ => w,
        })
        .collect();
    let log = dir.join("gateway.log");
    let child = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(&words)
        .env("KUBECONFIG", &kubeconfig_file)
        .env("MCWAN_LOG", "info,hickory_server=warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    GatewayRun { child, log }
}

/// (apiVersion, plural, namespaced, name) of every object the release manifest has.
fn objects_of(manifest: &[Value]) -> Vec<(String, String, bool, String)> {
    manifest
        .iter()
        .filter(|d| d["kind"] != "CustomResourceDefinition")
        .map(|d| {
            let kind = d["kind"].as_str().unwrap();
            let plural = match kind {
                "WANPolicy" => "wanpolicies".to_owned(),
                "ClusterProperty" => "clusterproperties".to_owned(),
                k => format!("{}s", k.to_lowercase()),
            };
            (
                d["apiVersion"].as_str().unwrap().to_owned(),
                plural,
                d["metadata"]["namespace"].is_string(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_upgrades_and_uninstalls_on_a_real_api_server() {
    let (release, dir) = Release::start("helm").await;
    let examples: BTreeMap<String, PathBuf> = examples().into_iter().collect();
    let values = &examples["sdwan"];

    // Install: the namespace made by Helm, labelled by the chart; the CRDs first.
    let notes = release.install("install", values, &[], &[]);
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    let ns = release
        .get("v1", "namespaces", false, "mcwan-system")
        .await
        .unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    for crd in committed_crds() {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let stored = release
            .get(
                "apiextensions.k8s.io/v1",
                "customresourcedefinitions",
                false,
                name,
            )
            .await
            .unwrap_or_else(|| panic!("no CRD {name}"));
        assert!(
            testbed::has_condition(&stored, "Established", "True"),
            "{name}"
        );
    }
    let manifest = yaml_docs(&release.helm(&["get", "manifest", "mcwan"]));
    let objects = objects_of(&manifest);
    assert!(objects.len() >= 17, "{objects:?}");
    for (api_version, plural, namespaced, name) in &objects {
        assert!(
            release
                .get(api_version, plural, *namespaced, name)
                .await
                .is_some(),
            "not installed: {plural} {name}"
        );
    }
    let gateway = release
        .get("apps/v1", "daemonsets", true, "mcwan-gateway")
        .await
        .unwrap();
    let rendered = find(&manifest, "DaemonSet", "mcwan-gateway");
    assert_eq!(
        container(&gateway, "gateway")["args"],
        container(rendered, "gateway")["args"]
    );
    assert_eq!(
        release
            .get(
                "about.k8s.io/v1alpha1",
                "clusterproperties",
                false,
                "cluster.clusterset.k8s.io"
            )
            .await
            .unwrap()["spec"]["value"],
        "cluster-2"
    );
    // The installed RBAC, as the API server enforces it.
    for (account, verb, resource, allowed) in [
        (
            "mcwan-gateway",
            "patch",
            "serviceimports.multicluster.x-k8s.io",
            true,
        ),
        (
            "mcwan-gateway",
            "patch",
            "serviceexports.multicluster.x-k8s.io/status",
            true,
        ),
        ("mcwan-gateway", "watch", "wanpolicies.mcw.l7mp.io", true),
        ("mcwan-gateway", "get", "secrets", false),
        (
            "mcwan-gateway",
            "update",
            "serviceimports.multicluster.x-k8s.io",
            false,
        ),
        (
            "mcwan-peer-reader",
            "list",
            "endpointslices.discovery.k8s.io",
            true,
        ),
        (
            "mcwan-peer-reader",
            "delete",
            "wanpolicies.mcw.l7mp.io",
            false,
        ),
        (
            "mcwan-peer-reader",
            "create",
            "serviceimports.multicluster.x-k8s.io",
            false,
        ),
    ] {
        assert_eq!(
            release.can(account, verb, resource),
            allowed,
            "{account} {verb} {resource}"
        );
    }

    // The gateway, as a process here, on what the release installed: the DaemonSet's command
    // line and environment, the clusterset ConfigMap, the gateway ServiceAccount's token. It
    // takes its ID from the ClusterProperty and writes the conditions of an export.
    let gateway_run = run_installed_gateway(&release, dir.path()).await;
    release.server_apply(&json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart", "namespace": "shop"},
         "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
        {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
         "metadata": {"name": "cart", "namespace": "shop"}},
    ]}));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let export = testbed::get(
            &release.client,
            "multicluster.x-k8s.io/v1alpha1",
            "serviceexports",
            Some("shop"),
            "cart",
        )
        .await
        .unwrap()
        .unwrap();
        if testbed::has_condition(&export, "Valid", "True") {
            let message = export["status"]["conditions"].to_string();
            assert!(message.contains("sd-wan-priority-low"), "{message}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the export never got Valid=True: {export:#}\n{}",
            gateway_run.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = gateway_run.log();
    assert!(log.contains("cluster-2"), "{log}");
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
    drop(gateway_run);

    // Upgrade with changed values: a new image, VIP range and health setting; no route agent.
    let before = gateway["spec"]["template"]["metadata"]["annotations"]["checksum/config"].clone();
    release.install(
        "upgrade",
        values,
        &[
            "image.tag=0.1.1",
            "vipCidr=241.65.0.0/16",
            "healthCheck.fall=7",
            "routeAgent.enabled=false",
        ],
        &[],
    );
    let gateway = release
        .get("apps/v1", "daemonsets", true, "mcwan-gateway")
        .await
        .unwrap();
    let c = container(&gateway, "gateway");
    assert_eq!(c["image"], "ghcr.io/l7mp/mcwan:0.1.1");
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "MCWAN_HEALTH_FALL", "value": "7"})),
        "{}",
        c["env"]
    );
    assert_ne!(
        gateway["spec"]["template"]["metadata"]["annotations"]["checksum/config"],
        before
    );
    let config = release
        .get("v1", "configmaps", true, "mcwan-config")
        .await
        .unwrap();
    assert_eq!(config["data"]["MCWAN_VIP_CIDR"], "241.65.0.0/16");
    assert!(release
        .get("apps/v1", "daemonsets", true, "mcwan-route-agent")
        .await
        .is_none());
    assert!(release
        .get("v1", "serviceaccounts", true, "mcwan-route-agent")
        .await
        .is_none());
    let history = release.helm(&["history", "mcwan", "--output", "json"]);
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");

    // Uninstall: every object of the release goes, but the namespace (the operator's Secrets
    // live there) and the CRDs (Helm never deletes them: that would delete every export).
    let manifest = yaml_docs(&release.helm(&["get", "manifest", "mcwan"]));
    let out = release.helm(&["uninstall", "mcwan"]);
    assert!(out.contains("[Namespace] mcwan-system"), "{out}");
    for (api_version, plural, namespaced, name) in objects_of(&manifest) {
        let left = release.get(&api_version, &plural, namespaced, &name).await;
        if plural == "namespaces" {
            assert!(left.is_some(), "the namespace was deleted");
        } else {
            assert!(left.is_none(), "left after uninstall: {plural} {name}");
        }
    }
    assert!(release
        .get(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            false,
            "wanpolicies.mcw.l7mp.io"
        )
        .await
        .is_some());
    let secrets = testbed::list(&release.client, "v1", "secrets", Some("mcwan-system"))
        .await
        .unwrap();
    assert!(secrets.is_empty(), "{secrets:?}");

    // Installed again into the namespace the first release left.
    release.install("install", values, &[], &[]);
    assert!(release
        .get("apps/v1", "daemonsets", true, "mcwan-route-agent")
        .await
        .is_some());
}

/// A cluster deployed with `kubectl apply --server-side -k deploy/overlays/sdwan` is taken over
/// by a release of the overlay's values (docs/deploy.md, "From kustomize to Helm"): the same
/// objects, now Helm's, the workloads naming the chart's ConfigMaps; uninstalling removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_takes_over_a_kustomize_install() {
    let (release, dir) = Release::start("takeover").await;
    let overlay = repo().join("deploy/overlays/sdwan");
    let kubectl = |args: &[&str]| run(release.server.kubectl().args(args));
    kubectl(&[
        "apply",
        "--server-side",
        "-k",
        repo().join("deploy/crds").to_str().unwrap(),
    ]);
    kubectl(&["wait", "--for", "condition=Established", "crd", "--all"]);
    kubectl(&["apply", "--server-side", "-k", overlay.to_str().unwrap()]);
    let values = overlay_values(&overlay, dir.path());
    release.install(
        "upgrade",
        &values,
        &[],
        &["--install", "--take-ownership", "--force-conflicts"],
    );
    let manifest = yaml_docs(&release.helm(&["get", "manifest", "mcwan"]));
    let built = kustomize(&overlay);
    for doc in built
        .iter()
        .filter(|d| d["kind"] != "CustomResourceDefinition")
    {
        let name = unhashed(doc["metadata"]["name"].as_str().unwrap());
        assert!(
            manifest
                .iter()
                .any(|m| m["kind"] == doc["kind"] && m["metadata"]["name"] == name),
            "the release has no {} {name}",
            doc["kind"]
        );
    }
    for (api_version, plural, namespaced, name) in objects_of(&manifest) {
        let object = release
            .get(&api_version, &plural, namespaced, &name)
            .await
            .unwrap_or_else(|| panic!("no {plural} {name}"));
        assert_eq!(
            object["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm",
            "{plural} {name}"
        );
        assert_eq!(
            object["metadata"]["annotations"]["meta.helm.sh/release-name"],
            "mcwan"
        );
    }
    let gateway = release
        .get("apps/v1", "daemonsets", true, "mcwan-gateway")
        .await
        .unwrap();
    let pod = &gateway["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"], "mcwan-clusterset",
        "{pod}"
    );
    assert_eq!(
        pod["containers"][0]["envFrom"],
        json!([{"configMapRef": {"name": "mcwan-config"}}])
    );
    // The kustomize build's hashed ConfigMaps go with the selector docs/deploy.md gives.
    kubectl(&[
        "-n",
        "mcwan-system",
        "delete",
        "configmap",
        "-l",
        "app.kubernetes.io/part-of=mcwan,!app.kubernetes.io/managed-by",
    ]);
    let configmaps: Vec<String> =
        testbed::list(&release.client, "v1", "configmaps", Some("mcwan-system"))
            .await
            .unwrap()
            .iter()
            .map(|c| c["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(configmaps, ["mcwan-clusterset", "mcwan-config"]);
    release.helm(&["uninstall", "mcwan"]);
    for (api_version, plural, namespaced, name) in objects_of(&manifest) {
        let left = release.get(&api_version, &plural, namespaced, &name).await;
        assert_eq!(left.is_some(), plural == "namespaces", "{plural} {name}");
    }
}
