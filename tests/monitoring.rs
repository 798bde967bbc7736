//! deploy/monitoring and deploy/components/monitoring: the Prometheus alert rules load in
//! promtool, their unit tests (mcwan.rules.test.yaml: each alert fires when it should and not
//! before) pass, every metric their expressions and the Grafana dashboard's queries name is one
//! the gateway exposes, every dashboard query parses, the PrometheusRule holds the rules file's
//! groups, and kube-apiserver with prometheus-operator's CRDs accepts the component's objects.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn monitoring() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/monitoring"))
}

fn promtool(args: [&str; 3]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(monitoring())
        .output()
        .expect("promtool (scripts/install-test-deps installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_load_and_their_unit_tests_pass() {
    promtool(["check", "rules", "mcwan.rules.yaml"]);
    promtool(["test", "rules", "mcwan.rules.test.yaml"]);
}

/// The metric names (`mcwan_*`, `process_*`) a PromQL expression names.
fn metric_names(expr: &str, out: &mut BTreeSet<String>) {
    for prefix in ["mcwan_", "process_"] {
        for (at, _) in expr.match_indices(prefix) {
            // A name starts a word: not the tail of another identifier.
            if expr[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                continue;
            }
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
}

/// Every family the gateway exposes: its own (also those without samples yet) and the
/// `process_*` ones of a real scrape.
fn exposed_families() -> BTreeSet<String> {
    let metrics = mcwan::admin::Metrics::new();
    let mut families: BTreeSet<String> = metrics.families().map(str::to_owned).collect();
    for line in metrics.encode().lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split(' ').next().unwrap().to_owned());
        }
    }
    families
}

fn assert_registered(what: &str, used: &BTreeSet<String>) {
    let families = exposed_families();
    for name in used {
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            families.contains(family),
            "{what} uses {name}, which the gateway does not expose; it has {families:?}"
        );
    }
}

fn yaml(path: &std::path::Path) -> serde_json::Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every `expr` of a rules file (groups[].rules[].expr).
fn rule_exprs(rules: &serde_json::Value) -> Vec<String> {
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["expr"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn alert_rules_use_only_metrics_the_gateway_registers() {
    let mut used = BTreeSet::new();
    for expr in rule_exprs(&yaml(&monitoring().join("mcwan.rules.yaml"))) {
        metric_names(&expr, &mut used);
    }
    assert!(used.len() >= 8, "metrics found in the rules: {used:?}");
    assert!(
        !used.contains("mcwan_tunnel_handshake_age_seconds"),
        "{used:?}"
    );
    assert_registered("the alert rules", &used);
}

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(monitoring().join("grafana/mcwan-dashboard.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn dashboard_exprs() -> Vec<(String, String)> {
    dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap().to_owned();
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_owned()))
        })
        .collect()
}

#[test]
fn every_dashboard_query_parses_in_promtool_and_names_exposed_metrics() {
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 15, "{exprs:?}");
    // promtool parses each query as a recording rule; Grafana's $instance becomes a regex.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut used = BTreeSet::new();
    for (i, (title, expr)) in exprs.iter().enumerate() {
        metric_names(expr, &mut used);
        let expr = expr.replace("$instance", ".*");
        assert!(
            !expr.contains('$'),
            "{title}: a variable promtool cannot read: {expr}"
        );
        rules.push_str(&format!(
            "      - record: dashboard:panel_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.rules.yaml"), rules).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules", "dashboard.rules.yaml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        used.contains("mcwan_tunnel_rx_bytes_total")
            && used.contains("process_resident_memory_bytes")
    );
    assert_registered("the dashboard", &used);
}

fn components() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/components/monitoring"
    ))
}

#[test]
fn the_prometheus_rule_holds_the_alert_rules() {
    let rule = yaml(&components().join("prometheusrule.yaml"));
    let source = yaml(&monitoring().join("mcwan.rules.yaml"));
    assert_eq!(
        rule["spec"]["groups"], source["groups"],
        "deploy/components/monitoring/prometheusrule.yaml differs from deploy/monitoring/mcwan.rules.yaml"
    );
}

#[path = "support/testbed.rs"]
mod testbed;

/// The monitoring component builds, and a real kube-apiserver serving prometheus-operator's
/// CRDs (testbed/build prometheus-operator) accepts its objects with strict field validation.
#[test]
fn the_monitoring_component_is_accepted_by_kube_apiserver_with_the_operators_crds() {
    let crds = testbed::bin_dir()
        .parent()
        .unwrap()
        .join("prometheus-operator");
    if !crds.join("monitoring.coreos.com_podmonitors.yaml").exists() {
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/testbed/build"))
            .arg("prometheus-operator")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "testbed/build prometheus-operator: {status}"
        );
    }
    let server = testbed::ApiServer::start("monitoring");
    let run = |args: &[&str]| {
        let out = server.kubectl().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let crd_dir = crds.to_str().unwrap();
    run(&["apply", "--server-side", "-f", crd_dir]);
    for crd in ["podmonitors", "prometheusrules"] {
        run(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{crd}.monitoring.coreos.com"),
        ]);
    }
    run(&["create", "namespace", "mcwan-system"]);
    let built = run(&["kustomize", components().to_str().unwrap()]);
    assert!(built.is_empty() || built.contains("kind:"), "{built}");
    // A Component builds inside a kustomization; apply its files as they are.
    let out = run(&[
        "apply",
        "--server-side",
        "--field-manager=mcwan-tests",
        "--validate=strict",
        "-f",
        &components()
            .join("metrics-service.yaml")
            .display()
            .to_string(),
        "-f",
        &components().join("podmonitor.yaml").display().to_string(),
        "-f",
        &components()
            .join("prometheusrule.yaml")
            .display()
            .to_string(),
    ]);
    for object in [
        "service/mcwan-metrics serverside-applied",
        "podmonitor.monitoring.coreos.com/mcwan-gateway serverside-applied",
        "prometheusrule.monitoring.coreos.com/mcwan serverside-applied",
    ] {
        assert!(out.contains(object), "{object} not in:\n{out}");
    }
    let stored: serde_json::Value = serde_json::from_str(&run(&[
        "get",
        "prometheusrule",
        "-n",
        "mcwan-system",
        "mcwan",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        stored["spec"]["groups"],
        yaml(&monitoring().join("mcwan.rules.yaml"))["groups"],
        "the API server keeps the rules as written"
    );
}
