//! Allocations in static-catalog mode are a function of durable state: over random sequences of
//! exports, unexports and gateway restarts (with `--state-dir`), no ClusterSetIP of a service
//! that stays imported ever moves, a restart changes no allocation at all, and the exporting
//! and the importing gateway always agree on every ingress port.
//!
//! The pools are tiny (a /28 of VIPs, 6 ports per class) so that collisions, where history
//! could matter, happen all the time.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use mcwan::catalog::load_dir;
use mcwan::desired::{DesiredState, IngressKey, PlanConfig};
use mcwan::gateway::{apply_static, Reconciler, StateFile};
use mcwan::model::ServiceKey;

const SERVICES: usize = 12;

/// A small deterministic generator (xorshift64*), so a failing sequence can be replayed by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const POLICIES: &str = "apiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata: {name: high}\nspec: {tunnel: business, port: 31000, portCount: 6}\n---\n\
apiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata: {name: low}\nspec: {tunnel: default, port: 31100, portCount: 6}\n---\n\
apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n";

/// Writes the catalog in which cluster-1 exports `exported` (service i over policy high when i
/// is even, low when odd).
fn write_catalog(dir: &Path, exported: &BTreeSet<usize>) {
    std::fs::write(
        dir.join("clusterset.yaml"),
        "wan: wireguard\ninnerNetwork: 10.255.0.0/16\nclusters:\n\
         - {id: cluster-1, index: 1, gateway: {wanAddress: 127.0.0.1}}\n\
         - {id: cluster-2, index: 2, gateway: {wanAddress: 127.0.0.2}}\n",
    )
    .unwrap();
    for c in ["cluster-1", "cluster-2"] {
        std::fs::create_dir_all(dir.join(c)).unwrap();
        std::fs::write(dir.join(c).join("policies.yaml"), POLICIES).unwrap();
    }
    let mut objects = String::new();
    for &i in exported {
        let policy = if i % 2 == 0 { "high" } else { "low" };
        objects.push_str(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: ns}}\nspec: {{ports: [{{name: http, port: 80}}]}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: svc-{i}-a, namespace: ns, labels: {{kubernetes.io/service-name: svc-{i}}}}}\n\
             addressType: IPv4\nendpoints: [{{addresses: [10.1.0.{}], conditions: {{ready: true}}}}]\nports: [{{name: http, port: 8080}}]\n---\n\
             apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: {{name: svc-{i}, namespace: ns, annotations: {{mcw.l7mp.io/mc-wan-policy: {policy}}}}}\n---\n",
            i + 1
        ));
    }
    std::fs::write(dir.join("cluster-1").join("exports.yaml"), objects).unwrap();
}

/// One gateway as `mcwan gateway --catalog --state-dir` runs it.
struct Gateway {
    cluster: &'static str,
    state_dir: tempfile::TempDir,
    reconciler: Reconciler,
    state: Option<StateFile>,
}

impl Gateway {
    fn start(cluster: &'static str, state_dir: tempfile::TempDir) -> Self {
        let zone_config = mcwan_dns::ZoneConfig::for_origin("clusterset.local");
        let zone = mcwan_dns::Zone::build(&zone_config, &[]).unwrap().zone;
        let mut reconciler = Reconciler::new(
            cluster.to_owned(),
            PlanConfig {
                vip_cidr: "241.64.0.0/28".parse().unwrap(),
                ..PlanConfig::default()
            },
            zone_config,
            mcwan_dns::ZoneHandle::new(zone),
            Arc::new(mcwan::admin::Metrics::new()),
            Arc::new(mcwan::admin::Health::default()),
        );
        let (file, vips) = StateFile::open(state_dir.path(), cluster).unwrap();
        reconciler.previous_mut().vips = vips;
        Self {
            cluster,
            state_dir,
            reconciler,
            state: Some(file),
        }
    }

    fn restart(self) -> Self {
        Self::start(self.cluster, self.state_dir)
    }

    fn apply(&mut self, catalog: &Path) -> Arc<DesiredState> {
        let catalog = load_dir(catalog).unwrap();
        apply_static(&mut self.reconciler, &catalog, &mut self.state);
        self.reconciler.latest().unwrap()
    }
}

fn vips(state: &DesiredState) -> BTreeMap<ServiceKey, IpAddr> {
    state
        .imports
        .iter()
        .filter_map(|i| Some((i.key.clone(), i.vip?)))
        .collect()
}

fn ingress(state: &DesiredState) -> BTreeMap<IngressKey, u16> {
    state
        .allocations
        .ingress_ports
        .get("cluster-1")
        .map(|p| p.0.clone())
        .unwrap_or_default()
}

#[test]
fn no_allocation_moves_over_random_restart_sequences() {
    let (mut restarts, mut collisions_seen) = (0, 0);
    for seed in 1..=100u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let catalog = tempfile::tempdir().unwrap();
        let mut exported = BTreeSet::new();
        write_catalog(catalog.path(), &exported);
        let mut exporter = Gateway::start("cluster-1", tempfile::tempdir().unwrap());
        let mut importer = Gateway::start("cluster-2", tempfile::tempdir().unwrap());
        let mut last_vips = vips(&importer.apply(catalog.path()));
        let mut last_ingress = ingress(&exporter.apply(catalog.path()));
        for step in 0..25 {
            let what = rng.below(10);
            let restarted = what >= 7;
            match what {
                0..=4 => {
                    exported.insert(rng.below(SERVICES));
                }
                5 | 6 => {
                    if let Some(&i) = exported.iter().nth(rng.below(exported.len().max(1))) {
                        exported.remove(&i);
                    }
                }
                7 => exporter = exporter.restart(),
                8 => importer = importer.restart(),
                _ => {
                    exporter = exporter.restart();
                    importer = importer.restart();
                }
            }
            restarts += usize::from(restarted);
            write_catalog(catalog.path(), &exported);
            let on_exporter = exporter.apply(catalog.path());
            let on_importer = importer.apply(catalog.path());
            let now_vips = vips(&on_importer);
            let now_ingress = ingress(&on_exporter);
            let context = format!("seed {seed}, step {step}, exported {exported:?}");
            // Both sides of the WAN agree on every ingress port of cluster-1's exports.
            assert_eq!(ingress(&on_importer), now_ingress, "{context}");
            // A VIP never moves while its service stays imported.
            for (key, vip) in &now_vips {
                if let Some(before) = last_vips.get(key) {
                    assert_eq!(vip, before, "{key}: VIP moved; {context}");
                }
            }
            if restarted {
                assert_eq!(now_vips, last_vips, "a restart moved VIPs; {context}");
                assert_eq!(
                    now_ingress, last_ingress,
                    "a restart moved ingress ports; {context}"
                );
            }
            let homes: BTreeSet<u16> = now_ingress.values().copied().collect();
            collisions_seen += usize::from(now_vips.len() > 8 || homes.len() > 4);
            last_vips = now_vips;
            last_ingress = now_ingress;
        }
    }
    // The sequences did exercise restarts with crowded pools.
    assert!(restarts > 500, "{restarts}");
    assert!(collisions_seen > 500, "{collisions_seen}");
}
