//! The desired state: one pure function of (catalog, this cluster's ID, configuration, previous
//! allocations, peer health). Everything the gateway's actuators apply comes from here: DNS
//! records, IPVS tables, tunnel and route intents, the imports and the export conditions to
//! write. No I/O; deterministic for equal inputs.

mod dns;
mod exports;
mod incremental;
mod ipvs;
mod tunnel;
mod wan_import;
mod wan_route;
pub mod weights;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

pub use exports::{Condition, ExportStatus, IngressPort};
pub(crate) use incremental::differing;
pub use incremental::{Planned, Planner};
pub use ipvs::{IpvsTables, RealServer, VirtualServer};
pub use tunnel::{ClassPlan, PeerPlan, TunnelPlan};
pub use wan_route::{condition as wan_route_condition, HttpBackend, HttpClass, HttpImport};

use crate::alloc::{self, PrefixPool};
use crate::catalog::Catalog;
use crate::model::{ClusterId, Protocol, ServiceKey, ServicePort, SessionAffinity, TunnelClass};
use crate::problem::{ObjectRef, Problem};
use crate::resolve::{self, ImportType, Resolution};

/// Configuration of the plan (the parts of the gateway's configuration it depends on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanConfig {
    /// Where ClusterSetIPs come from.
    pub vip_cidr: IpNet,
    /// The WAN policy of exports without the annotation.
    pub default_wan_policy: Option<String>,
    /// IPVS scheduler of the virtual servers.
    pub scheduler: String,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            vip_cidr: IpNet::V4(
                Ipv4Net::new(std::net::Ipv4Addr::new(241, 64, 0, 0), 16).unwrap_or_default(),
            ),
            default_wan_policy: None,
            scheduler: "wrr".to_owned(),
        }
    }
}

/// A service port's identity on a gateway's ingress: which service, which port, and which
/// tunnel class carries it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IngressKey {
    pub service: ServiceKey,
    pub protocol: Protocol,
    pub port: u16,
    /// `None`: the export's own class (its WAN policy's). `Some`: another class a WANRoute of
    /// the exporting cluster sends some of the service's requests over, which needs an ingress
    /// port of its own in that class's range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<TunnelClass>,
}

impl IngressKey {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// FNV-1a of [`IngressKey::bytes`], without building them.
    fn fnv1a(&self) -> u64 {
        let mut h = crate::alloc::Fnv1a::default();
        self.write_to(&mut h);
        h.0
    }

    fn write_to(&self, out: &mut impl KeyBytes) {
        out.put(&format_args!(
            "{}/{}/{}",
            self.service, self.protocol, self.port
        ));
        if let Some(class) = &self.class {
            out.put(&format_args!("/{class}"));
        }
    }

    /// Whether `other` is the same service port, on whichever class.
    pub fn same_port(&self, other: &Self) -> bool {
        self.port == other.port && self.protocol == other.protocol && self.service == other.service
    }
}

/// Where an [`IngressKey`]'s bytes go: a buffer, or a hash fed as they come.
trait KeyBytes {
    fn put(&mut self, args: &std::fmt::Arguments<'_>);
}

impl KeyBytes for Vec<u8> {
    fn put(&mut self, args: &std::fmt::Arguments<'_>) {
        use std::io::Write as _;
        // Writing to a Vec cannot fail.
        let _ = self.write_fmt(*args);
    }
}

impl KeyBytes for crate::alloc::Fnv1a {
    fn put(&mut self, args: &std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        // Hashing cannot fail.
        let _ = self.write_fmt(*args);
    }
}

/// One cluster's ingress ports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IngressPorts(#[serde(with = "crate::serde_map")] pub BTreeMap<IngressKey, u16>);

impl IngressPorts {
    /// The ports of `key`'s service port on every class: the export's own first (class `None`
    /// sorts first), then each class a WANRoute sends requests over.
    pub fn of_port<'a>(
        &'a self,
        key: &'a IngressKey,
    ) -> impl Iterator<Item = (&'a IngressKey, &'a u16)> + 'a {
        self.0
            .range(key..)
            .take_while(move |(k, _)| k.same_port(key))
    }
}

impl std::ops::Deref for IngressPorts {
    type Target = BTreeMap<IngressKey, u16>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Allocations carried from one plan to the next (and read back from the cluster on start), so
/// they stay where they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocations {
    #[serde(with = "crate::serde_map")]
    pub vips: BTreeMap<ServiceKey, IpAddr>,
    /// Ingress ports per exporting cluster.
    pub ingress_ports: BTreeMap<ClusterId, IngressPorts>,
    /// WireGuard inner subnet per tunnel class.
    pub class_subnets: BTreeMap<TunnelClass, Ipv4Net>,
    /// The usable WAN policies of each cluster: in a collision, the unchanged ones stay usable.
    #[serde(default)]
    pub policies: BTreeMap<ClusterId, BTreeMap<String, crate::model::WanPolicy>>,
}

/// Clusters whose gateways failed their health checks: drained from IPVS and DNS.
pub type DownClusters = BTreeSet<ClusterId>;

/// A service imported into this cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Import {
    pub key: ServiceKey,
    pub import_type: ImportType,
    pub vip: Option<IpAddr>,
    pub ports: Vec<ServicePort>,
    pub session_affinity: SessionAffinity,
    /// Clusters backing the import (healthy exporters), sorted.
    pub clusters: Vec<ClusterId>,
    /// Per-request WAN classes (an exporting cluster's WANRoute), for the HTTP proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpImport>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DesiredState {
    pub cluster_id: ClusterId,
    /// Each import, shared (as each DNS record) with the plans after it that leave it as it is.
    pub imports: Vec<Arc<Import>>,
    /// This cluster's exports and their conditions.
    pub exports: Vec<ExportStatus>,
    pub dns: Vec<Arc<mcwan_dns::ServiceRecord>>,
    pub ipvs: IpvsTables,
    pub tunnels: TunnelPlan,
    pub allocations: Allocations,
    /// Problems of the catalog (first, in the catalog's order) and of the plan (sorted).
    pub problems: Vec<Problem>,
}

/// Everything the plan depends on.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub catalog: &'a Catalog,
    pub cluster_id: &'a str,
    pub config: &'a PlanConfig,
    pub previous: &'a Allocations,
    pub down: &'a DownClusters,
}

/// Computes the desired state of `inputs.cluster_id`'s gateway.
pub fn compute(inputs: Inputs<'_>) -> DesiredState {
    compute_around(inputs, None)
}

/// The allocations of the services a computation leaves out ([`Planner`] computes only the
/// services that changed): their ClusterSetIPs and ingress ports stay theirs.
#[derive(Clone, Copy)]
struct Around<'a> {
    held: &'a Allocations,
    /// The services computed now: what `held` says of them is not theirs to keep.
    computed: &'a BTreeSet<ServiceKey>,
}

fn compute_around(inputs: Inputs<'_>, around: Option<Around<'_>>) -> DesiredState {
    let Inputs {
        catalog,
        cluster_id,
        config,
        previous,
        down,
    } = inputs;
    let mut problems = catalog.problems.clone();
    let from_catalog = problems.len();
    let with_imports = wan_import::apply(catalog, cluster_id, config, previous, &mut problems);
    let (catalog, previous) = match &with_imports {
        Some((catalog, previous)) => (catalog, previous),
        None => (catalog, previous),
    };
    let policies: BTreeMap<_, _> = catalog
        .clusters
        .iter()
        .map(|(id, objects)| {
            (
                id.clone(),
                crate::policies::usable(id, objects, previous.policies.get(id), &mut problems),
            )
        })
        .collect();
    let resolution = resolve::resolve(
        &catalog.clusters,
        &policies,
        config.default_wan_policy.as_deref(),
    );
    for view in resolution.exports.values() {
        if let Some(invalid) = &view.invalid {
            problems.push(Problem::error(
                Some(&view.cluster),
                ObjectRef::namespaced("ServiceExport", &view.key),
                invalid.field.as_deref(),
                invalid.message.clone(),
            ));
        }
        if !view.conflict_reasons.is_empty() {
            problems.push(Problem::warning(
                Some(&view.cluster),
                ObjectRef::namespaced("ServiceExport", &view.key),
                None,
                format!(
                    "conflict ({}): {}",
                    view.conflict_reasons.join(","),
                    view.conflict_message
                ),
            ));
        }
    }

    let local = catalog.clusters.get(cluster_id);
    if local.is_none() {
        problems.push(Problem::error(
            None,
            ObjectRef::cluster_scoped("ClusterSet cluster", cluster_id),
            Some("clusters[].id"),
            "this gateway's cluster ID is not in the clusterset: it imports nothing".into(),
        ));
    }
    let imported: Vec<&resolve::ClusterSetService> = resolution
        .services
        .values()
        .filter(|s| local.is_some_and(|l| l.has_namespace(&s.key.namespace)))
        .collect();

    let routes = wan_route::usable(catalog, &policies, &mut problems);
    let vips = allocate_vips(&imported, config, previous, around, &mut problems);
    let route_classes = wan_route::route_classes(&routes, &resolution, &policies);
    let ingress_ports =
        allocate_ingress(&resolution, &route_classes, previous, around, &mut problems);
    let class_subnets = tunnel::class_subnets(catalog, &policies, previous, &mut problems);
    let allocations = Allocations {
        vips,
        ingress_ports,
        class_subnets,
        policies: policies.clone(),
    };

    let mut imports: Vec<Import> = imported
        .iter()
        .filter_map(|s| {
            let vip = allocations.vips.get(&s.key).copied();
            if s.import_type == ImportType::ClusterSetIp && vip.is_none() {
                return None;
            }
            Some(Import {
                key: s.key.clone(),
                import_type: s.import_type,
                vip,
                ports: s.ports.clone(),
                session_affinity: s.session_affinity,
                clusters: s
                    .members
                    .iter()
                    .map(|m| m.cluster.clone())
                    .filter(|c| !down.contains(c))
                    .collect(),
                http: None,
            })
        })
        .collect();

    let ctx = Context {
        catalog,
        cluster_id,
        config,
        down,
        allocations: &allocations,
        resolution: &resolution,
    };
    let mut ipvs = ipvs::tables(&ctx, &imports, &mut problems);
    wan_route::apply(
        &routes,
        &ctx,
        &policies,
        &mut ipvs,
        &mut imports,
        &mut problems,
    );
    let tunnels = tunnel::plan(&ctx, &policies, &mut problems);
    problems[from_catalog..].sort();
    DesiredState {
        cluster_id: cluster_id.to_owned(),
        dns: dns::records(&ctx, &imports)
            .into_iter()
            .map(Arc::new)
            .collect(),
        ipvs,
        tunnels,
        exports: exports::statuses(&ctx),
        imports: imports.into_iter().map(Arc::new).collect(),
        allocations,
        problems,
    }
}

/// What the parts of the plan share.
struct Context<'a> {
    catalog: &'a Catalog,
    cluster_id: &'a str,
    config: &'a PlanConfig,
    down: &'a DownClusters,
    allocations: &'a Allocations,
    resolution: &'a Resolution,
}

fn allocate_vips(
    imported: &[&resolve::ClusterSetService],
    config: &PlanConfig,
    previous: &Allocations,
    around: Option<Around<'_>>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<ServiceKey, IpAddr> {
    let keys: BTreeSet<ServiceKey> = imported
        .iter()
        .filter(|s| s.import_type == ImportType::ClusterSetIp)
        .map(|s| s.key.clone())
        .collect();
    let held = around.into_iter().flat_map(|a| {
        a.held
            .vips
            .iter()
            .filter(|(k, _)| !a.computed.contains(*k))
            .map(|(_, vip)| *vip)
    });
    let (vips, exhausted) = alloc::allocate_around(
        &PrefixPool(config.vip_cidr),
        &keys,
        |k| k.to_string().into_bytes(),
        &previous.vips,
        held,
    );
    for key in exhausted.0 {
        problems.push(Problem::error(
            None,
            ObjectRef::namespaced("ServiceImport", &key),
            Some("spec.ips"),
            format!(
                "{VIP_RANGE} {} is exhausted; the service is not imported",
                config.vip_cidr
            ),
        ));
    }
    vips
}

/// How the problems of a full allocation pool begin (see [`is_exhaustion`]).
const VIP_RANGE: &str = "the ClusterSetIP range";
const NO_INGRESS_PORT: &str = "no free ingress port for";

/// Whether `problem` says a ClusterSetIP or ingress port pool ran out.
fn is_exhaustion(problem: &Problem) -> bool {
    problem.message.starts_with(VIP_RANGE) || problem.message.starts_with(NO_INGRESS_PORT)
}

/// Ingress ports of every exporting cluster, per tunnel class range: one per exported service
/// port on the export's own class, and one per other class its WANRoute sends requests over.
fn allocate_ingress(
    resolution: &Resolution,
    route_classes: &[wan_route::RouteClass],
    previous: &Allocations,
    around: Option<Around<'_>>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<ClusterId, IngressPorts> {
    // (cluster, class) -> (range, keys)
    let mut pools: BTreeMap<
        (ClusterId, TunnelClass),
        (std::ops::RangeInclusive<u16>, BTreeSet<IngressKey>),
    > = BTreeMap::new();
    for service in resolution.services.values() {
        if service.import_type != ImportType::ClusterSetIp {
            continue;
        }
        for member in &service.members {
            let Some(policy) = &member.policy else {
                continue;
            };
            let entry = pools
                .entry((member.cluster.clone(), policy.tunnel.clone()))
                .or_insert_with(|| (policy.port_range(), BTreeSet::new()));
            for &i in &member.ports {
                let p = &service.ports[i];
                entry.1.insert(IngressKey {
                    service: service.key.clone(),
                    protocol: p.protocol,
                    port: p.port,
                    class: None,
                });
            }
        }
    }
    for extra in route_classes {
        pools
            .entry((extra.cluster.clone(), extra.class.clone()))
            .or_insert_with(|| (extra.range.clone(), BTreeSet::new()))
            .1
            .extend(extra.keys.iter().cloned());
    }
    let empty = IngressPorts::default();
    let mut out: BTreeMap<ClusterId, IngressPorts> = BTreeMap::new();
    for ((cluster, class), (range, keys)) in pools {
        let prev = previous.ingress_ports.get(&cluster).unwrap_or(&empty);
        // Another class's range may overlap this one only when every service is computed
        // (the planner checks).
        let held = around.into_iter().flat_map(|a| {
            a.held
                .ingress_ports
                .get(&cluster)
                .into_iter()
                .flat_map(|ports| ports.iter())
                .filter(|(k, port)| !a.computed.contains(&k.service) && range.contains(port))
                .map(|(_, port)| *port)
        });
        let (ports, exhausted) = alloc::allocate_around(
            &alloc::PortPool(range.clone()),
            &keys,
            IngressKey::bytes,
            prev,
            held,
        );
        for key in exhausted.0 {
            let (kind, why) = match key.class {
                None => ("ServiceExport", ""),
                Some(_) => (
                    "WANRoute",
                    ", for the requests its rules send over that class (they get none)",
                ),
            };
            problems.push(Problem::error(
                Some(&cluster),
                ObjectRef::namespaced(kind, &key.service),
                None,
                format!(
                    "{NO_INGRESS_PORT} {}/{} in tunnel class {class:?} (ports {}-{}){why}: raise spec.portCount of its WANPolicy",
                    key.port,
                    key.protocol,
                    range.start(),
                    range.end()
                ),
            ));
        }
        out.entry(cluster).or_default().0.extend(ports);
    }
    out
}

#[cfg(test)]
mod tests;
