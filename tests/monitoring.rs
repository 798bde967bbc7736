//! deploy/monitoring: the Prometheus alert rules load in promtool, their unit tests
//! (mcwan.rules.test.yaml: each alert fires when it should and not before) pass, and every
//! metric their expressions name is one the gateway registers.

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

#[test]
fn alert_rules_use_only_metrics_the_gateway_registers() {
    let rules = std::fs::read_to_string(monitoring().join("mcwan.rules.yaml")).unwrap();
    let mut used = BTreeSet::new();
    for expr in rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")) {
        for (at, _) in expr.match_indices("mcwan_") {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    assert!(used.len() >= 8, "metrics found in the rules: {used:?}");
    let metrics = mcwan::admin::Metrics::new();
    let families: BTreeSet<&str> = metrics.families().collect();
    for name in &used {
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            families.contains(family),
            "the alert rules use {name}, which the gateway does not register; it has {families:?}"
        );
    }
}
