//! The gateway's Prometheus metrics (prometheus-client, text exposition format).
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `mcwan_build_info` | `version` | always 1: which mcwan is running |
//! | `mcwan_dns_queries_total` | `qtype`, `rcode` | DNS queries answered |
//! | `mcwan_dns_query_duration_seconds` | `qtype` | time to answer, histogram |
//! | `mcwan_catalog_objects` | `cluster`, `kind` | objects in the catalog |
//! | `mcwan_problems` | `severity` | input problems currently reported |
//! | `mcwan_reconciles_total` | | desired-state computations applied |
//! | `mcwan_reconcile_duration_seconds` | | time to compute and apply, histogram |
//! | `mcwan_actuator_desired` / `mcwan_actuator_applied` | `actuator` | objects wanted / in place |
//! | `mcwan_actuator_sync_duration_seconds` | `actuator` | time of one sync, histogram |
//! | `mcwan_actuator_operations_total` | `actuator`, `op` | changes made |
//! | `mcwan_actuator_errors_total` | `actuator` | failed syncs |
//! | `mcwan_import_healthy_clusters` | `service`, `vip` | healthy clusters backing an import |
//! | `mcwan_peer_up` | `cluster`, `class` | 1 when the peer gateway passes its health checks |
//! | `mcwan_peer_rtt_seconds` | `cluster`, `class` | health probe round-trip time, histogram |
//! | `mcwan_tunnel_last_handshake_timestamp_seconds` | `cluster`, `class` | when the last WireGuard handshake completed (absent before the first) |
//! | `mcwan_tunnel_rx_bytes_total`, `mcwan_tunnel_tx_bytes_total` | `cluster`, `class` | traffic over a tunnel (counters: a device recreated keeps counting on) |
//! | `mcwan_l7_requests_total` | `service`, `class`, `rule`, `code` | requests of the L7 proxies ([`crate::l7::metrics`]) |
//! | `mcwan_l7_request_duration_seconds` | `service`, `class`, `rule` | time to a proxied response's head, histogram |
//!
//! Beside them, the `process_*` metrics of every Prometheus client ([`super::process`]).
//! | `mcwan_cluster_api_up` | `cluster` | Kubernetes mode: 1 while the cluster's API server answers |
//! | `mcwan_cluster_api_synced` | `cluster` | Kubernetes mode: 1 once every watch of the cluster has listed |

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::catalog::Catalog;
use crate::desired::{DesiredState, Import};
use crate::kube::Reachability;
use crate::model::ClusterId;
use crate::problem::Severity;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DnsLabels {
    pub qtype: &'static str,
    pub rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QtypeLabels {
    pub qtype: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CatalogLabels {
    pub cluster: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum SeverityLabel {
    Error,
    Warning,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabels {
    pub severity: SeverityLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActuatorLabels {
    pub actuator: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub actuator: &'static str,
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ImportLabels {
    pub service: String,
    pub vip: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PeerLabels {
    pub cluster: String,
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster: String,
}

/// The metrics' common prefix.
const PREFIX: &str = "mcwan";

/// Registers `metric` as `name` and notes its family name (what `# TYPE` lines show).
fn register(
    registry: &mut Registry,
    families: &mut Vec<String>,
    name: &str,
    help: &str,
    metric: impl prometheus_client::registry::Metric,
) {
    families.push(format!("{PREFIX}_{name}"));
    registry.register(name, help, metric);
}

fn latency_histogram() -> Histogram {
    // 10 µs .. ~5 s
    Histogram::new(exponential_buckets(0.000_01, 3.0, 13))
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    families: Vec<String>,
    pub dns_queries: Family<DnsLabels, Counter>,
    pub dns_duration: Family<QtypeLabels, Histogram>,
    pub catalog_objects: Family<CatalogLabels, Gauge>,
    pub problems: Family<SeverityLabels, Gauge>,
    pub reconciles: Counter,
    pub reconcile_duration: Histogram,
    pub actuator_desired: Family<ActuatorLabels, Gauge>,
    pub actuator_applied: Family<ActuatorLabels, Gauge>,
    pub actuator_sync_duration: Family<ActuatorLabels, Histogram>,
    pub actuator_operations: Family<OperationLabels, Counter>,
    pub actuator_errors: Family<ActuatorLabels, Counter>,
    pub import_healthy_clusters: Family<ImportLabels, Gauge>,
    pub peer_up: Family<PeerLabels, Gauge>,
    pub peer_rtt: Family<PeerLabels, Histogram>,
    pub tunnel_last_handshake: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    pub tunnel_rx_bytes: Family<PeerLabels, Counter>,
    pub tunnel_tx_bytes: Family<PeerLabels, Counter>,
    /// The device totals last read, per peer and direction, to add only what is new.
    tunnel_totals: std::sync::Mutex<BTreeMap<(PeerLabels, bool), u64>>,
    pub l7: crate::l7::metrics::L7Metrics,
    process: Registry,
    pub cluster_api_up: Family<ClusterLabels, Gauge>,
    pub cluster_api_synced: Family<ClusterLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let mut families = Vec::new();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        register(
            &mut registry,
            &mut families,
            "build_info",
            "Always 1; the label says which mcwan is running",
            build_info,
        );
        let dns_queries = Family::default();
        register(
            &mut registry,
            &mut families,
            "dns_queries",
            "DNS queries answered",
            dns_queries.clone(),
        );
        let dns_duration = Family::<QtypeLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        register(
            &mut registry,
            &mut families,
            "dns_query_duration_seconds",
            "Time to answer a DNS query",
            dns_duration.clone(),
        );
        let catalog_objects = Family::default();
        register(
            &mut registry,
            &mut families,
            "catalog_objects",
            "Objects in the catalog",
            catalog_objects.clone(),
        );
        let problems = Family::default();
        register(
            &mut registry,
            &mut families,
            "problems",
            "Input problems currently reported",
            problems.clone(),
        );
        let reconciles = Counter::default();
        register(
            &mut registry,
            &mut families,
            "reconciles",
            "Desired-state computations applied",
            reconciles.clone(),
        );
        let reconcile_duration = latency_histogram();
        register(
            &mut registry,
            &mut families,
            "reconcile_duration_seconds",
            "Time to compute and apply the desired state",
            reconcile_duration.clone(),
        );
        let actuator_desired = Family::default();
        register(
            &mut registry,
            &mut families,
            "actuator_desired",
            "Objects an actuator should have in place",
            actuator_desired.clone(),
        );
        let actuator_applied = Family::default();
        register(
            &mut registry,
            &mut families,
            "actuator_applied",
            "Objects an actuator has in place",
            actuator_applied.clone(),
        );
        let actuator_sync_duration = Family::<ActuatorLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        register(
            &mut registry,
            &mut families,
            "actuator_sync_duration_seconds",
            "Time of one actuator sync",
            actuator_sync_duration.clone(),
        );
        let actuator_operations = Family::default();
        register(
            &mut registry,
            &mut families,
            "actuator_operations",
            "Changes made by an actuator",
            actuator_operations.clone(),
        );
        let actuator_errors = Family::default();
        register(
            &mut registry,
            &mut families,
            "actuator_errors",
            "Failed actuator syncs",
            actuator_errors.clone(),
        );
        let import_healthy_clusters = Family::default();
        register(
            &mut registry,
            &mut families,
            "import_healthy_clusters",
            "Healthy clusters backing an imported service",
            import_healthy_clusters.clone(),
        );
        let peer_up = Family::default();
        register(
            &mut registry,
            &mut families,
            "peer_up",
            "1 when the peer gateway passes its health checks",
            peer_up.clone(),
        );
        let peer_rtt = Family::<PeerLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        register(
            &mut registry,
            &mut families,
            "peer_rtt_seconds",
            "Round-trip time of health probes to a peer gateway",
            peer_rtt.clone(),
        );
        let tunnel_last_handshake = Family::default();
        register(
            &mut registry,
            &mut families,
            "tunnel_last_handshake_timestamp_seconds",
            "When the last WireGuard handshake with a peer completed, seconds since the epoch (absent before the first)",
            tunnel_last_handshake.clone(),
        );
        let tunnel_rx_bytes = Family::default();
        register(
            &mut registry,
            &mut families,
            "tunnel_rx_bytes",
            "Bytes received from a peer over its WireGuard tunnel",
            tunnel_rx_bytes.clone(),
        );
        let tunnel_tx_bytes = Family::default();
        register(
            &mut registry,
            &mut families,
            "tunnel_tx_bytes",
            "Bytes sent to a peer over its WireGuard tunnel",
            tunnel_tx_bytes.clone(),
        );
        let l7 = crate::l7::metrics::L7Metrics::default();
        families.push(format!("{PREFIX}_l7_requests"));
        families.push(format!("{PREFIX}_l7_request_duration_seconds"));
        l7.register_unprefixed(&mut registry);
        let mut process = Registry::default();
        process.register_collector(Box::new(super::process::ProcessCollector));
        let cluster_api_up = Family::default();
        register(
            &mut registry,
            &mut families,
            "cluster_api_up",
            "1 while the cluster's API server answers the gateway's watches",
            cluster_api_up.clone(),
        );
        let cluster_api_synced = Family::default();
        register(
            &mut registry,
            &mut families,
            "cluster_api_synced",
            "1 once every watch of the cluster's API server has listed its objects",
            cluster_api_synced.clone(),
        );
        Self {
            registry,
            families,
            dns_queries,
            dns_duration,
            catalog_objects,
            problems,
            reconciles,
            reconcile_duration,
            actuator_desired,
            actuator_applied,
            actuator_sync_duration,
            actuator_operations,
            actuator_errors,
            import_healthy_clusters,
            peer_up,
            peer_rtt,
            tunnel_last_handshake,
            tunnel_rx_bytes,
            tunnel_tx_bytes,
            tunnel_totals: Default::default(),
            l7,
            process,
            cluster_api_up,
            cluster_api_synced,
        }
    }

    /// Every metric family's name, as `# TYPE` lines of the exposition give it (counters
    /// without `_total`); a family shows there only once it has a series.
    pub fn families(&self) -> impl Iterator<Item = &str> {
        self.families.iter().map(String::as_str)
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text;
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode_registry(&mut out, &self.registry);
        let _ = text::encode_registry(&mut out, &self.process);
        let _ = text::encode_eof(&mut out);
        out
    }

    /// Records one peer's tunnel as the device reports it: the handshake's time, and the
    /// byte totals (what grew since the last read is added; a total that fell, from a device
    /// recreated, is added whole).
    pub fn observe_tunnel(
        &self,
        labels: &PeerLabels,
        last_handshake: Option<std::time::SystemTime>,
        rx_total: u64,
        tx_total: u64,
    ) {
        match last_handshake.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
            Some(at) => {
                self.tunnel_last_handshake
                    .get_or_create(labels)
                    .set(at.as_secs_f64());
            }
            None => {
                self.tunnel_last_handshake.remove(labels);
            }
        }
        let mut totals = self
            .tunnel_totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (rx, total, counter) in [
            (true, rx_total, &self.tunnel_rx_bytes),
            (false, tx_total, &self.tunnel_tx_bytes),
        ] {
            let last = totals.insert((labels.clone(), rx), total).unwrap_or(0);
            let grown = if total >= last { total - last } else { total };
            counter.get_or_create(labels).inc_by(grown);
        }
    }

    /// Records a reconcile: catalog size, problems, imports.
    /// Records a reconcile that gave `state`; `last` is the state the one before gave, whose
    /// imports' gauges only the imports that differ update (one change costs one gauge).
    pub fn observe_reconcile(
        &self,
        catalog: &Catalog,
        last: Option<&DesiredState>,
        state: &DesiredState,
        took: Duration,
    ) {
        self.reconciles.inc();
        self.reconcile_duration.observe(took.as_secs_f64());
        self.catalog_objects.clear();
        for (cluster, objects) in &catalog.clusters {
            let set = |kind: &'static str, n: usize| {
                self.catalog_objects
                    .get_or_create(&CatalogLabels {
                        cluster: cluster.clone(),
                        kind,
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            };
            set("Namespace", objects.namespaces.len());
            set("Service", objects.services.len());
            set(
                "EndpointSlice",
                objects.endpoint_slices.values().map(Vec::len).sum(),
            );
            set("ServiceExport", objects.exports.len());
            set("WANPolicy", objects.wan_policies.len());
        }
        for (label, severity) in [
            (SeverityLabel::Error, Severity::Error),
            (SeverityLabel::Warning, Severity::Warning),
        ] {
            let n = state
                .problems
                .iter()
                .filter(|p| p.severity == severity)
                .count();
            self.problems
                .get_or_create(&SeverityLabels { severity: label })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let labels = |import: &Import| ImportLabels {
            service: import.key.to_string(),
            vip: import.vip.map(|v| v.to_string()).unwrap_or_default(),
        };
        let set = |import: &Import| {
            self.import_healthy_clusters
                .get_or_create(&labels(import))
                .set(i64::try_from(import.clusters.len()).unwrap_or(i64::MAX));
        };
        let Some(last) = last else {
            self.import_healthy_clusters.clear();
            state.imports.iter().for_each(|import| set(import));
            return;
        };
        // Both lists are sorted by service: one walk pairs them.
        let (mut before, mut now) = (
            last.imports.iter().peekable(),
            state.imports.iter().peekable(),
        );
        loop {
            match (before.peek(), now.peek()) {
                (None, None) => break,
                (Some(gone), None) => {
                    self.import_healthy_clusters.remove(&labels(gone));
                    before.next();
                }
                (None, Some(new)) => {
                    set(new);
                    now.next();
                }
                (Some(old), Some(new)) => match old.key.cmp(&new.key) {
                    Ordering::Less => {
                        self.import_healthy_clusters.remove(&labels(old));
                        before.next();
                    }
                    Ordering::Greater => {
                        set(new);
                        now.next();
                    }
                    Ordering::Equal => {
                        if old.vip != new.vip {
                            self.import_healthy_clusters.remove(&labels(old));
                            set(new);
                        } else if old.clusters.len() != new.clusters.len() {
                            set(new);
                        }
                        before.next();
                        now.next();
                    }
                },
            }
        }
    }

    /// Records whether each cluster's API server answers (Kubernetes mode).
    pub fn observe_clusters(&self, clusters: &BTreeMap<ClusterId, Reachability>) {
        for (cluster, reachability) in clusters {
            let labels = ClusterLabels {
                cluster: cluster.clone(),
            };
            self.cluster_api_up
                .get_or_create(&labels)
                .set(i64::from(reachability.up()));
            self.cluster_api_synced
                .get_or_create(&labels)
                .set(i64::from(reachability.synced));
        }
    }

    /// Records one sync of an actuator.
    pub fn observe_sync(
        &self,
        actuator: &'static str,
        desired: usize,
        applied: usize,
        took: Duration,
        ok: bool,
    ) {
        let labels = ActuatorLabels { actuator };
        self.actuator_desired
            .get_or_create(&labels)
            .set(i64::try_from(desired).unwrap_or(i64::MAX));
        self.actuator_applied
            .get_or_create(&labels)
            .set(i64::try_from(applied).unwrap_or(i64::MAX));
        self.actuator_sync_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if !ok {
            self.actuator_errors.get_or_create(&labels).inc();
        }
    }

    pub fn count_operations(&self, actuator: &'static str, op: &'static str, n: u64) {
        self.actuator_operations
            .get_or_create(&OperationLabels { actuator, op })
            .inc_by(n);
    }
}

/// Feeds the DNS server's answered queries into the metrics. Labels are static strings, so
/// counting a query allocates nothing.
#[derive(Debug)]
pub struct DnsObserver(pub std::sync::Arc<Metrics>);

fn qtype_label(qtype: Option<u16>) -> &'static str {
    match qtype {
        Some(1) => "A",
        Some(2) => "NS",
        Some(5) => "CNAME",
        Some(6) => "SOA",
        Some(12) => "PTR",
        Some(16) => "TXT",
        Some(28) => "AAAA",
        Some(33) => "SRV",
        Some(41) => "OPT",
        Some(251) => "IXFR",
        Some(252) => "AXFR",
        Some(255) => "ANY",
        Some(_) => "OTHER",
        None => "NONE",
    }
}

fn rcode_label(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "OTHER",
    }
}

impl mcwan_dns::QueryObserver for DnsObserver {
    fn observe(&self, event: &mcwan_dns::QueryEvent) {
        let qtype = qtype_label(event.qtype);
        self.0
            .dns_queries
            .get_or_create(&DnsLabels {
                qtype,
                rcode: rcode_label(event.rcode),
            })
            .inc();
        self.0
            .dns_duration
            .get_or_create(&QtypeLabels { qtype })
            .observe(event.elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_in_the_table_of_the_module_docs() {
        let docs: String = include_str!("metrics.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect();
        let metrics = Metrics::new();
        assert!(metrics.families().count() >= 19);
        for family in metrics.families() {
            assert!(
                docs.contains(&format!("`{family}`"))
                    || docs.contains(&format!("`{family}_total`")),
                "{family} is not in the table of src/admin/metrics.rs"
            );
        }
    }

    fn import_lines(text: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("mcwan_import_healthy_clusters{"))
            .collect();
        lines.sort_unstable();
        lines
    }

    #[test]
    fn import_gauges_updated_per_changed_import_equal_gauges_set_afresh() {
        let catalog = crate::catalog::embedded_example();
        let first = crate::desired::compute(crate::desired::Inputs {
            catalog: &catalog,
            cluster_id: crate::catalog::EXAMPLE_CLUSTER,
            config: &crate::desired::PlanConfig::default(),
            previous: &Default::default(),
            down: &Default::default(),
        });
        assert!(first.imports.len() >= 2, "{:?}", first.imports);
        // One import gone, one with another VIP and fewer clusters, one new.
        let mut second = first.clone();
        second.imports.remove(0);
        let changed = std::sync::Arc::make_mut(&mut second.imports[0]);
        changed.vip = Some("241.64.9.9".parse().unwrap());
        changed.clusters.clear();
        let mut added = (*second.imports[0]).clone();
        added.key = crate::model::ServiceKey::new("zz", "added");
        second.imports.push(added.into());

        let m = Metrics::new();
        m.observe_reconcile(&catalog, None, &first, Duration::ZERO);
        let before = m.encode();
        assert_eq!(import_lines(&before).len(), first.imports.len(), "{before}");
        m.observe_reconcile(&catalog, Some(&first), &second, Duration::ZERO);
        let afresh = Metrics::new();
        afresh.observe_reconcile(&catalog, None, &second, Duration::ZERO);
        let (now, expected) = (m.encode(), afresh.encode());
        assert_eq!(import_lines(&now), import_lines(&expected));
        assert!(now.contains("vip=\"241.64.9.9\"} 0"), "{now}");
        assert!(now.contains("service=\"zz/added\""), "{now}");
    }

    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn tunnel_bytes_count_on_across_a_recreated_device_and_the_handshake_is_a_time() {
        let m = Metrics::new();
        let peer = PeerLabels {
            cluster: "cluster-1".into(),
            class: "gold".into(),
        };
        m.observe_tunnel(&peer, None, 100, 10);
        let text = m.encode();
        assert!(
            !text.contains("mcwan_tunnel_last_handshake_timestamp_seconds{"),
            "no handshake yet, no sample (and no sentinel): {text}"
        );
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        m.observe_tunnel(&peer, Some(at), 250, 40);
        // The device was recreated: its totals start again from 0.
        m.observe_tunnel(&peer, Some(at), 30, 5);
        let text = m.encode();
        let rx = r#"mcwan_tunnel_rx_bytes_total{cluster="cluster-1",class="gold"}"#;
        let tx = r#"mcwan_tunnel_tx_bytes_total{cluster="cluster-1",class="gold"}"#;
        assert_eq!(sample(&text, rx), Some(280.0), "{text}");
        assert_eq!(sample(&text, tx), Some(45.0), "{text}");
        assert!(
            text.contains("# TYPE mcwan_tunnel_rx_bytes counter"),
            "{text}"
        );
        let ts =
            r#"mcwan_tunnel_last_handshake_timestamp_seconds{cluster="cluster-1",class="gold"}"#;
        assert_eq!(sample(&text, ts), Some(1_800_000_000.0), "{text}");
    }

    #[test]
    fn the_process_metrics_are_exposed_unprefixed() {
        let text = Metrics::new().encode();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{name} missing:\n{text}"
            );
        }
        assert!(sample(&text, "process_resident_memory_bytes ").is_some_and(|v| v > 0.0));
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
