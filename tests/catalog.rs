//! The static catalog source: the seeds' manifests load as written, bad objects are named with
//! their field and spare everything else.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::path::Path;

use mcwan::catalog::{load_dir, CatalogDir, CatalogError};
use mcwan::model::{Affinity, ExportGroup, Placement, ServiceKey};
use mcwan::problem::Severity;

fn example() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clusterset"))
}

/// A catalog of two clusters, `cluster-1` holding `manifests`.
fn catalog_with(manifests: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clusterset.yaml"),
        "clusters:\n- {id: cluster-1, index: 1, gateway: {wanAddress: 192.0.2.1}}\n- {id: cluster-2, index: 2, gateway: {wanAddress: 192.0.2.2}}\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("cluster-1")).unwrap();
    std::fs::create_dir(dir.path().join("cluster-2")).unwrap();
    std::fs::write(dir.path().join("cluster-1/objects.yaml"), manifests).unwrap();
    dir
}

const GOOD_SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: good, namespace: secure}\nspec: {ports: [{name: http, port: 80}]}\n";

#[test]
fn the_seed_manifests_load_as_written() {
    let catalog = load_dir(example()).unwrap();
    let c1 = &catalog.clusters["cluster-1"];
    let high = &c1.wan_policies["sd-wan-priority-high"];
    assert_eq!((high.tunnel.as_str(), high.port), ("business", 31111));
    assert_eq!(high.sla.latency_ms, Some(100));
    assert_eq!(high.sla.loss_percent, Some(1.0));
    let low = &c1.wan_policies["sd-wan-priority-low"];
    assert_eq!(
        (low.tunnel.as_str(), low.port, low.sla.jitter_ms),
        ("default", 31112, Some(1000))
    );
    let payment = &c1.exports[&ServiceKey::new("secure", "payment")];
    assert_eq!(payment.wan_policy.as_deref(), Some("sd-wan-priority-high"));
    assert_eq!(payment.group, ExportGroup::Draft);
    assert_eq!(
        c1.exports[&ServiceKey::new("insecure", "logging")].group,
        ExportGroup::Mcs
    );
    assert!(
        catalog
            .problems
            .iter()
            .all(|p| p.severity == Severity::Warning),
        "{:#?}",
        catalog.problems
    );
}

#[test]
fn the_draft_group_loads_with_a_warning_naming_api_version() {
    let catalog = load_dir(example()).unwrap();
    let warning = catalog
        .problems
        .iter()
        .find(|p| p.object.name == "payment")
        .unwrap();
    assert_eq!(warning.field.as_deref(), Some("apiVersion"));
    assert!(warning.message.contains("multicluster.x-k8s.io"));
}

#[test]
fn a_malformed_object_names_the_field_and_spares_the_others() {
    let dir = catalog_with(&format!(
        "{GOOD_SERVICE}---\napiVersion: v1\nkind: Service\nmetadata: {{name: bad, namespace: secure}}\nspec: {{ports: [{{name: http, port: 70000}}]}}\n"
    ));
    let catalog = load_dir(dir.path()).unwrap();
    let services = &catalog.clusters["cluster-1"].services;
    assert!(services.contains_key(&ServiceKey::new("secure", "good")));
    assert!(!services.contains_key(&ServiceKey::new("secure", "bad")));
    let p = &catalog.problems[0];
    assert_eq!(
        (p.cluster.as_deref(), p.object.to_string().as_str()),
        (Some("cluster-1"), "Service secure/bad")
    );
    assert_eq!(p.field.as_deref(), Some("spec.ports[0].port"));
    assert!(p.to_string().contains("70000"), "{p}");
}

#[test]
fn a_wrongly_typed_field_is_named_by_its_path() {
    let dir = catalog_with("apiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata: {name: p}\nspec: {tunnel: business, port: high}\n");
    let catalog = load_dir(dir.path()).unwrap();
    let p = &catalog.problems[0];
    assert_eq!(p.object.to_string(), "WANPolicy p");
    assert_eq!(p.field.as_deref(), Some("spec.port"));
}

#[test]
fn a_missing_required_field_is_named() {
    let dir = catalog_with("apiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata: {name: p}\nspec: {port: 31000}\n");
    let catalog = load_dir(dir.path()).unwrap();
    assert_eq!(catalog.problems[0].field.as_deref(), Some("spec.tunnel"));
}

#[test]
fn a_yaml_syntax_error_names_the_file_and_keeps_other_files() {
    let dir = catalog_with(GOOD_SERVICE);
    std::fs::write(
        dir.path().join("cluster-1/broken.yaml"),
        "kind: [unclosed\n",
    )
    .unwrap();
    let catalog = load_dir(dir.path()).unwrap();
    assert!(catalog.clusters["cluster-1"]
        .services
        .contains_key(&ServiceKey::new("secure", "good")));
    assert!(catalog
        .problems
        .iter()
        .any(|p| p.object.name.contains("broken.yaml") && p.severity == Severity::Error));
}

#[test]
fn an_endpoint_slice_without_its_service_label_is_rejected() {
    let dir = catalog_with("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, namespace: secure}\naddressType: IPv4\nendpoints: []\n");
    let catalog = load_dir(dir.path()).unwrap();
    assert_eq!(
        catalog.problems[0].field.as_deref(),
        Some("metadata.labels[\"kubernetes.io/service-name\"]")
    );
}

#[test]
fn unknown_kinds_are_ignored_with_a_warning() {
    let dir = catalog_with(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: secure}\n",
    );
    let catalog = load_dir(dir.path()).unwrap();
    assert_eq!(catalog.problems[0].severity, Severity::Warning);
    assert_eq!(catalog.problems[0].field.as_deref(), Some("kind"));
}

#[test]
fn a_list_is_read_item_by_item() {
    let dir = catalog_with(&format!(
        "apiVersion: v1\nkind: List\nitems:\n- {}\n",
        serde_json::to_string(&serde_saphyr::from_str::<serde_json::Value>(GOOD_SERVICE).unwrap())
            .unwrap()
    ));
    let catalog = load_dir(dir.path()).unwrap();
    assert!(catalog.clusters["cluster-1"]
        .services
        .contains_key(&ServiceKey::new("secure", "good")));
}

#[test]
fn an_unknown_clusterset_field_is_a_clear_error() {
    let dir = catalog_with(GOOD_SERVICE);
    std::fs::write(
        dir.path().join("clusterset.yaml"),
        "clusters:\n- {id: cluster-1, index: 1, gateway: {wanAdress: 192.0.2.1}}\n",
    )
    .unwrap();
    let err = load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, CatalogError::ClusterSet { .. }));
    let text = err.to_string();
    assert!(
        text.contains("clusters[0].gateway") && text.contains("wanAdress"),
        "{text}"
    );
}

#[test]
fn a_duplicate_cluster_index_leaves_out_that_cluster_only() {
    let dir = catalog_with(GOOD_SERVICE);
    std::fs::write(
        dir.path().join("clusterset.yaml"),
        "clusters:\n- {id: cluster-1, index: 1, gateway: {wanAddress: 192.0.2.1}}\n- {id: cluster-2, index: 1, gateway: {wanAddress: 192.0.2.2}}\n",
    )
    .unwrap();
    let catalog = load_dir(dir.path()).unwrap();
    assert!(catalog.clusters.contains_key("cluster-1"));
    assert!(!catalog.clusters.contains_key("cluster-2"));
    assert_eq!(
        catalog.problems[0].field.as_deref(),
        Some("clusters[1].index")
    );
}

fn export_annotated(annotations: &str) -> String {
    format!(
        "{GOOD_SERVICE}---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: {{name: good, namespace: secure, annotations: {{{annotations}}}}}\n"
    )
}

#[test]
fn placement_annotations_are_read() {
    let dir = catalog_with(&export_annotated(
        "mcw.l7mp.io/affinity: local, mcw.l7mp.io/cluster-priority: 'cluster-2=1, cluster-1=5'",
    ));
    let catalog = load_dir(dir.path()).unwrap();
    let export = &catalog.clusters["cluster-1"].exports[&ServiceKey::new("secure", "good")];
    assert_eq!(export.placement.affinity, Some(Affinity::Local));
    assert_eq!(export.placement.priority_of("cluster-2"), 1);
    assert_eq!(export.placement.priority_of("cluster-1"), 5);
    assert_eq!(export.placement.priority_of("cluster-9"), u32::MAX);
    assert!(catalog.problems.is_empty(), "{:#?}", catalog.problems);
}

#[test]
fn a_bad_placement_annotation_is_a_warning_naming_it_and_the_export_stays() {
    for (annotations, field, why) in [
        (
            "mcw.l7mp.io/affinity: nearby",
            "metadata.annotations[\"mcw.l7mp.io/affinity\"]",
            "\"nearby\" is not one of local, remote, none",
        ),
        (
            "mcw.l7mp.io/cluster-priority: 'cluster-1=first'",
            "metadata.annotations[\"mcw.l7mp.io/cluster-priority\"]",
            "priority \"first\" of cluster-1 is not a number",
        ),
        (
            "mcw.l7mp.io/cluster-priority: 'cluster-1'",
            "metadata.annotations[\"mcw.l7mp.io/cluster-priority\"]",
            "\"cluster-1\" is not <cluster-id>=<priority>",
        ),
        (
            "mcw.l7mp.io/cluster-priority: 'cluster-1=1,cluster-1=2'",
            "metadata.annotations[\"mcw.l7mp.io/cluster-priority\"]",
            "cluster cluster-1 is listed twice",
        ),
    ] {
        let dir = catalog_with(&export_annotated(annotations));
        let catalog = load_dir(dir.path()).unwrap();
        let export = &catalog.clusters["cluster-1"].exports[&ServiceKey::new("secure", "good")];
        assert_eq!(export.placement, Placement::default(), "{annotations}");
        let p = &catalog.problems[0];
        assert_eq!(p.severity, Severity::Warning);
        assert_eq!(p.object.to_string(), "ServiceExport secure/good");
        assert_eq!(p.field.as_deref(), Some(field));
        assert!(p.message.contains(why), "{annotations}: {}", p.message);
    }
}

#[test]
fn directory_symlinks_are_not_followed_and_file_symlinks_are() {
    let dir = catalog_with(GOOD_SERVICE);
    let c1 = dir.path().join("cluster-1");
    // A loop (a link to its own parent) and a link to the catalog's root.
    std::os::unix::fs::symlink(&c1, c1.join("loop")).unwrap();
    std::os::unix::fs::symlink(dir.path(), c1.join("root")).unwrap();
    // A file symlink, as a ConfigMap volume mounts its keys.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(
        elsewhere.path().join("other.yaml"),
        GOOD_SERVICE.replace("name: good", "name: linked"),
    )
    .unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("other.yaml"), c1.join("other.yaml")).unwrap();

    let catalog = load_dir(dir.path()).unwrap();
    let services: Vec<String> = catalog.clusters["cluster-1"]
        .services
        .keys()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(services, ["secure/good", "secure/linked"]);
    let skipped: Vec<String> = catalog
        .problems
        .iter()
        .filter(|p| p.message.contains("symlink to a directory"))
        .map(|p| p.object.to_string())
        .collect();
    assert_eq!(skipped.len(), 2, "{:#?}", catalog.problems);
    assert!(
        skipped.iter().any(|o| o.ends_with("cluster-1/loop")),
        "{skipped:?}"
    );
}

fn service(name: &str, port: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: secure}}\nspec: {{ports: [{{name: http, port: {port}}}]}}\n")
}

fn ports_of(catalog: &mcwan::catalog::Catalog, name: &str) -> Option<u16> {
    catalog.clusters["cluster-1"]
        .services
        .get(&ServiceKey::new("secure", name))
        .map(|s| s.ports[0].port)
}

#[test]
fn an_object_whose_new_version_fails_keeps_its_last_good_version() {
    let dir = catalog_with(&format!(
        "{}---\n{}",
        service("a", "80"),
        service("b", "81")
    ));
    let file = dir.path().join("cluster-1/objects.yaml");
    let mut source = CatalogDir::new(dir.path());
    source.load().unwrap();
    // a breaks, b changes: a keeps its last good version (with a warning naming it), b's
    // change takes effect.
    std::fs::write(
        &file,
        format!("{}---\n{}", service("a", "70000"), service("b", "82")),
    )
    .unwrap();
    let catalog = source.load().unwrap();
    assert_eq!(ports_of(catalog, "a"), Some(80));
    assert_eq!(ports_of(catalog, "b"), Some(82));
    assert!(catalog
        .problems
        .iter()
        .any(|p| p.object.to_string() == "Service secure/a"
            && p.severity == Severity::Error
            && p.field.as_deref() == Some("spec.ports[0].port")));
    assert!(catalog
        .problems
        .iter()
        .any(|p| p.object.to_string() == "Service secure/a"
            && p.message.contains("last good version stays in force")));
    // Fixed: the new version applies.
    std::fs::write(
        &file,
        format!("{}---\n{}", service("a", "90"), service("b", "82")),
    )
    .unwrap();
    let catalog = source.load().unwrap();
    assert_eq!(ports_of(catalog, "a"), Some(90));
    assert!(catalog.problems.is_empty(), "{:#?}", catalog.problems);
    // Without history (`mcwan plan`), a broken object is simply left out.
    std::fs::write(
        &file,
        format!("{}---\n{}", service("a", "70000"), service("b", "82")),
    )
    .unwrap();
    assert_eq!(ports_of(&load_dir(dir.path()).unwrap(), "a"), None);
}

#[test]
fn a_file_cut_short_into_an_error_keeps_the_objects_it_lost() {
    let whole = format!(
        "{}---\n{}---\n{}",
        service("a", "80"),
        service("b", "81"),
        service("c", "82")
    );
    let dir = catalog_with(&whole);
    let file = dir.path().join("cluster-1/objects.yaml");
    let mut source = CatalogDir::new(dir.path());
    source.load().unwrap();
    // A cut that leaves the file in error loses nothing. (A cut that happens to leave a valid
    // shorter file is a valid edit to the loader: the watcher waits for the writer to close the
    // file instead, see tests/gateway.rs.)
    let mut in_error = 0;
    for cut in 1..whole.len() {
        std::fs::write(&file, &whole).unwrap();
        source.load().unwrap();
        std::fs::write(&file, &whole[..cut]).unwrap();
        let catalog = source.load().unwrap();
        if !catalog
            .problems
            .iter()
            .any(|p| p.severity == Severity::Error)
        {
            continue;
        }
        in_error += 1;
        for name in ["a", "b", "c"] {
            assert!(
                catalog.clusters["cluster-1"]
                    .services
                    .contains_key(&ServiceKey::new("secure", name)),
                "{name} lost with the file cut at {cut}: {:?}",
                &whole[..cut]
            );
        }
    }
    assert!(
        in_error > whole.len() / 2,
        "{in_error} of {} cuts",
        whole.len()
    );
}

#[test]
fn a_structural_error_in_clusterset_yaml_keeps_the_last_good_clusterset() {
    let dir = catalog_with(GOOD_SERVICE);
    let mut source = CatalogDir::new(dir.path());
    assert!(source.load().unwrap().clusters.contains_key("cluster-2"));
    std::fs::write(
        dir.path().join("clusterset.yaml"),
        "clusters:\n- {id: cluster-1, index: 1, gateway: {wanAddress: 192.0.2.1}}\n- {id: cluster-2, index: 1, gateway: {wanAddress: 192.0.2.2}}\n",
    )
    .unwrap();
    let catalog = source.load().unwrap();
    assert!(
        catalog.clusters.contains_key("cluster-2"),
        "a cluster dropped out"
    );
    assert!(catalog
        .problems
        .iter()
        .any(|p| p.field.as_deref() == Some("clusters[1].index")));
    assert!(catalog
        .problems
        .iter()
        .any(|p| p.message.contains("last good clusterset stays in force")));
}

#[test]
fn a_duplicated_endpoint_slice_is_reported_and_counted_once() {
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: good-1, namespace: secure, labels: {kubernetes.io/service-name: good}}\naddressType: IPv4\nendpoints: [{addresses: [10.1.0.1], conditions: {ready: true}}]\n";
    // Twice in one file, and once more in another file.
    let dir = catalog_with(&format!("{GOOD_SERVICE}---\n{slice}---\n{slice}"));
    std::fs::write(dir.path().join("cluster-1/more.yaml"), slice).unwrap();
    let catalog = load_dir(dir.path()).unwrap();
    let slices = &catalog.clusters["cluster-1"].endpoint_slices[&ServiceKey::new("secure", "good")];
    assert_eq!(slices.len(), 1);
    let twice: Vec<_> = catalog
        .problems
        .iter()
        .filter(|p| p.message.contains("defined twice"))
        .map(|p| p.object.to_string())
        .collect();
    assert_eq!(
        twice,
        ["EndpointSlice secure/good-1", "EndpointSlice secure/good-1"]
    );
}

#[test]
fn the_default_policy_annotation_is_read_and_a_bad_value_named() {
    let catalog = load_dir(example()).unwrap();
    let policies = &catalog.clusters["cluster-1"].wan_policies;
    assert!(policies["sd-wan-priority-low"].is_default);
    assert!(!policies["sd-wan-priority-high"].is_default);
    let dir = catalog_with("apiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata: {name: p, annotations: {mcw.l7mp.io/is-default-policy: \"yes\"}}\nspec: {tunnel: business, port: 31000}\n");
    let catalog = load_dir(dir.path()).unwrap();
    let p = &catalog.problems[0];
    assert_eq!(p.object.to_string(), "WANPolicy p");
    assert_eq!(
        p.field.as_deref(),
        Some("metadata.annotations[\"mcw.l7mp.io/is-default-policy\"]")
    );
}

/// A small seeded generator (xorshift64), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn loading_only_the_changed_files_equals_reading_the_whole_directory() {
    // Random edits of both clusters' directories: files added, rewritten, broken, removed and
    // renamed. After each, a loader told which paths changed (as the watcher tells it) gives
    // the same catalog as one that reads every file.
    let dir = catalog_with(&service("seed", "80"));
    let mut partial = CatalogDir::new(dir.path());
    let mut full = CatalogDir::new(dir.path());
    assert_eq!(partial.load().unwrap(), full.load().unwrap());
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    for step in 0..3000 {
        let cluster = ["cluster-1", "cluster-2"][rng.below(2) as usize];
        let cluster_dir = dir.path().join(cluster);
        let file = cluster_dir.join(format!("f{}.yaml", rng.below(6)));
        let mut changed = std::collections::BTreeSet::new();
        changed.insert(file.clone());
        let name = format!("s{}", rng.below(8));
        match rng.below(6) {
            0 | 1 => {
                let port = 80 + rng.below(3);
                let text = format!(
                    "{}---\n{}",
                    service(&name, &port.to_string()),
                    service("x", "81")
                );
                std::fs::write(&file, text).unwrap();
            }
            // Broken: a port out of range, or not YAML at all.
            2 => std::fs::write(&file, service(&name, "70000")).unwrap(),
            3 => std::fs::write(&file, "kind: [unclosed\n").unwrap(),
            4 => {
                let _ = std::fs::remove_file(&file);
            }
            _ => {
                let to = cluster_dir.join(format!("f{}.yaml", rng.below(6)));
                if std::fs::rename(&file, &to).is_ok() {
                    changed.insert(to);
                }
            }
        }
        let partial_catalog = partial.load_changed(Some(&changed)).unwrap();
        let full_catalog = full.load().unwrap();
        assert_eq!(partial_catalog, full_catalog, "step {step}: {changed:?}");
    }
    // A renamed cluster directory is one path changed: everything under it is read again.
    std::fs::rename(dir.path().join("cluster-2"), dir.path().join("gone")).unwrap();
    std::fs::rename(dir.path().join("cluster-1"), dir.path().join("cluster-2")).unwrap();
    let changed = ["cluster-1", "cluster-2", "gone"]
        .map(|d| dir.path().join(d))
        .into_iter()
        .collect();
    assert_eq!(
        partial.load_changed(Some(&changed)).unwrap(),
        full.load().unwrap()
    );
}
