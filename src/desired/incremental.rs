//! The desired state, kept from one catalog to the next: [`Planner::plan`] recomputes only the
//! services whose objects changed and takes every other service's part of the state from the
//! last plan, so one change costs about the same in a clusterset of 10,000 services as in one
//! of 1,000. The result is exactly [`compute`]'s (a differential test drives thousands of random
//! changes through both).
//!
//! What a service's part of the state depends on: its own objects in every cluster (Service,
//! EndpointSlices, ServiceExport), and what the whole clusterset shares (the clusterset, each
//! cluster's WAN policies and namespaces, the configuration, the down clusters, the catalog's
//! problems). Services meet in one place, the allocation pools: a changed service keeps its
//! ClusterSetIP and ingress ports, and a new one is placed around the others' (which stay
//! theirs, as in a full computation). A change to a shared input, a WANImport or WANRoute
//! anywhere, allocations adjusted from outside, a pool that ran out, or WAN policies whose port
//! ranges overlap across tunnel classes: the planner computes everything, as [`compute`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{
    compute, compute_around, is_exhaustion, Allocations, Around, DesiredState, IngressKey,
    IngressPorts, Inputs, VirtualServer,
};
use crate::catalog::Catalog;
use crate::model::{ClusterId, ClusterObjects, Protocol, ServiceKey};
use crate::problem::Problem;

/// How a plan was made: for the reconciler's log, and for the parts of the state it builds
/// further (the DNS zone), which then need to touch only the changed services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// Every service computed; `why` names what made it necessary.
    Full { why: &'static str },
    /// Only these services, whose objects changed (or whose ingress ports moved); every other
    /// service's part of the state is the last plan's.
    Services { changed: BTreeSet<ServiceKey> },
}

/// Plans catalog after catalog, remembering the last one. See the module documentation.
#[derive(Debug, Default)]
pub struct Planner {
    last: Option<Last>,
}

#[derive(Debug)]
struct Last {
    /// What the last plan was made of (its per-service objects follow each plan).
    catalog: Catalog,
    cluster_id: String,
    config: super::PlanConfig,
    down: super::DownClusters,
    state: Arc<DesiredState>,
    /// Whether planning a part of the services gives a full computation's result with these
    /// shared inputs.
    partial_ok: bool,
}

impl Planner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The desired state of `inputs`, as [`compute`] gives it.
    pub fn plan(&mut self, inputs: Inputs<'_>) -> (Arc<DesiredState>, Planned) {
        let why = match &mut self.last {
            None => "first plan",
            Some(last) => match last.shared_change(&inputs) {
                Some(why) => why,
                None => match last.plan_changed(inputs) {
                    Ok(planned) => return (last.state.clone(), planned),
                    Err(why) => why,
                },
            },
        };
        let state = Arc::new(compute(inputs));
        self.last = Some(Last {
            catalog: inputs.catalog.clone(),
            cluster_id: inputs.cluster_id.to_owned(),
            config: inputs.config.clone(),
            down: inputs.down.clone(),
            partial_ok: partial_ok(inputs.catalog, &state),
            state: state.clone(),
        });
        (state, Planned::Full { why })
    }
}

/// Whether the services of `catalog` can be planned a part at a time.
fn partial_ok(catalog: &Catalog, state: &DesiredState) -> bool {
    let routed_or_imported = catalog
        .clusters
        .values()
        .any(|o| !o.wan_imports.is_empty() || !o.wan_routes.is_empty());
    // A full pool leaves some service waiting for a slot another change may free.
    !routed_or_imported && !exhausted(state) && !ranges_overlap(state)
}

/// Whether an allocation pool ran out.
fn exhausted(state: &DesiredState) -> bool {
    state.problems.iter().any(is_exhaustion)
}

/// What a computation of the `changed` services reads of the allocations: their own
/// ClusterSetIPs (from `previous`) and ingress ports (from `ingress`), and the shared ones.
fn previous_of(
    changed: &BTreeSet<ServiceKey>,
    previous: &Allocations,
    ingress: &BTreeMap<ClusterId, IngressPorts>,
) -> Allocations {
    let vips = changed
        .iter()
        .filter_map(|k| Some((k.clone(), *previous.vips.get(k)?)))
        .collect();
    let ingress_ports = ingress
        .iter()
        .map(|(cluster, ports)| {
            let own = changed.iter().flat_map(|service| {
                let first = IngressKey {
                    service: service.clone(),
                    protocol: Protocol::Tcp,
                    port: 0,
                    class: None,
                };
                ports
                    .0
                    .range(first..)
                    .take_while(move |(k, _)| &k.service == service)
                    .map(|(k, port)| (k.clone(), *port))
            });
            (cluster.clone(), IngressPorts(own.collect()))
        })
        .collect();
    Allocations {
        vips,
        ingress_ports,
        class_subnets: previous.class_subnets.clone(),
        policies: previous.policies.clone(),
    }
}

/// The ingress ports that move when `allocations`' are allocated from scratch, pool by pool (a
/// pool: a cluster's WAN policy port range), with the port each gets: what [`crate::alloc::allocate`]
/// gives without history, in one pass over the ports (each pool's keys in order, a bitmap of
/// its taken slots). `None` when a port is in no policy's range, or a pool runs out.
fn moves_from_scratch(allocations: &Allocations) -> Option<Vec<(ClusterId, IngressKey, u16)>> {
    let mut moves = Vec::new();
    for (cluster, ports) in &allocations.ingress_ports {
        let ranges: BTreeSet<(u16, u16)> = allocations
            .policies
            .get(cluster)
            .into_iter()
            .flat_map(|p| p.values())
            .map(|p| {
                let r = p.port_range();
                (*r.start(), *r.end())
            })
            .collect();
        let mut taken: BTreeMap<(u16, u16), Vec<bool>> = BTreeMap::new();
        for (key, port) in ports.iter() {
            let (start, end) = *ranges
                .range(..=(*port, u16::MAX))
                .next_back()
                .filter(|(start, end)| (start..=end).contains(&port))?;
            let size = usize::from(end - start) + 1;
            let slots = taken
                .entry((start, end))
                .or_insert_with(|| vec![false; size]);
            let home = (key.fnv1a() % size as u64) as usize;
            let slot = (0..size).map(|i| (home + i) % size).find(|s| !slots[*s])?;
            slots[slot] = true;
            let fresh = start + slot as u16;
            if fresh != *port {
                moves.push((cluster.clone(), key.clone(), fresh));
            }
        }
    }
    Some(moves)
}

/// Whether a cluster's WAN policies leave an ingress port's pool untold by its number: two
/// tunnel classes with overlapping port ranges, or one class with two ranges.
fn ranges_overlap(state: &DesiredState) -> bool {
    state.allocations.policies.values().any(|policies| {
        let mut by_class: BTreeMap<&str, (u16, u16)> = BTreeMap::new();
        for p in policies.values() {
            let r = p.port_range();
            let range = (*r.start(), *r.end());
            if *by_class.entry(p.tunnel.as_str()).or_insert(range) != range {
                return true;
            }
        }
        let mut ranges: Vec<(u16, u16)> = by_class.into_values().collect();
        ranges.sort_unstable();
        ranges.windows(2).any(|w| w[1].0 <= w[0].1)
    })
}

impl Last {
    /// What, if anything, changed among the inputs every service shares.
    fn shared_change(&self, inputs: &Inputs<'_>) -> Option<&'static str> {
        let (before, now) = (&self.catalog, inputs.catalog);
        if !self.partial_ok {
            return Some("WANImports, WANRoutes, a full pool or overlapping port ranges");
        }
        if self.cluster_id != inputs.cluster_id || &self.config != inputs.config {
            return Some("configuration");
        }
        if &self.down != inputs.down {
            return Some("down clusters");
        }
        if before.clusterset != now.clusterset {
            return Some("clusterset");
        }
        if before.problems != now.problems {
            return Some("catalog problems");
        }
        fn shared(o: &ClusterObjects) -> impl PartialEq + '_ {
            (
                &o.namespaces,
                &o.wan_policies,
                o.wan_imports.is_empty(),
                o.wan_routes.is_empty(),
            )
        }
        if before.clusters.len() != now.clusters.len()
            || before
                .clusters
                .iter()
                .zip(&now.clusters)
                .any(|((a, ao), (b, bo))| a != b || shared(ao) != shared(bo))
        {
            return Some("WAN policies, namespaces, WANImports or WANRoutes");
        }
        // History for single services (a ClusterSetIP read back, a peer's published ingress
        // ports) is planned with those services; the rest is shared.
        let last = &self.state.allocations;
        let previous = inputs.previous;
        if previous.policies != last.policies
            || (!ports_from_scratch(previous) && previous.class_subnets != last.class_subnets)
        {
            return Some("allocations adjusted");
        }
        None
    }

    /// The `changed` services planned again, with `previous` allocations, around the other
    /// services' allocations; its allocations are already spliced into the last plan's.
    fn part(
        &self,
        inputs: Inputs<'_>,
        changed: &BTreeSet<ServiceKey>,
        previous: &Allocations,
    ) -> (DesiredState, Allocations) {
        let part = part_of(inputs.catalog, changed);
        let mut sub = compute_around(
            Inputs {
                catalog: &part,
                previous,
                ..inputs
            },
            Some(Around {
                held: &self.state.allocations,
                computed: changed,
            }),
        );
        let allocations = splice_allocations(
            &self.state.allocations,
            std::mem::take(&mut sub.allocations),
            changed,
        );
        (sub, allocations)
    }

    /// Plans only the services whose objects or allocation history changed. The error says
    /// why the change reaches further (a namespace appears in or leaves a cluster, a pool runs
    /// out, history gives one service what another holds).
    fn plan_changed(&mut self, inputs: Inputs<'_>) -> Result<Planned, &'static str> {
        let mut changed = BTreeSet::new();
        for ((_, before), (_, now)) in self.catalog.clusters.iter().zip(&inputs.catalog.clusters) {
            differing(&before.services, &now.services, &mut changed);
            differing(&before.exports, &now.exports, &mut changed);
            differing(&before.endpoint_slices, &now.endpoint_slices, &mut changed);
        }
        adjusted(&self.state.allocations, inputs.previous, &mut changed)
            .ok_or("allocations adjusted onto another service's")?;
        if changed.is_empty() {
            return Ok(Planned::Services {
                changed: BTreeSet::new(),
            });
        }
        // Whether a namespace exists can change with its first or last object.
        let namespaces: BTreeSet<&str> = changed.iter().map(|k| k.namespace.as_str()).collect();
        for ((_, before), (_, now)) in self.catalog.clusters.iter().zip(&inputs.catalog.clusters) {
            if namespaces
                .iter()
                .any(|ns| before.has_namespace(ns) != now.has_namespace(ns))
            {
                return Err("a namespace appeared or went");
            }
        }
        // The changed services keep their ingress ports (the history's, when there is one),
        // and new ones are placed around the others', as a full computation does.
        let history = if ports_from_scratch(inputs.previous) {
            &self.state.allocations.ingress_ports
        } else {
            &inputs.previous.ingress_ports
        };
        let with_history = previous_of(&changed, inputs.previous, history);
        let (mut sub, mut allocations) = self.part(inputs, &changed, &with_history);
        if inputs.previous.ingress_ports.is_empty() && !allocations.ingress_ports.is_empty() {
            // Ingress ports computed without history (static catalogs: every gateway must reach
            // the same ports from the catalog alone): a new service can move others' ports.
            // Those services are planned again, on the ports a computation from scratch gives.
            let moves = moves_from_scratch(&allocations).ok_or("a pool ran out")?;
            let mut moved = changed.clone();
            moved.extend(moves.iter().map(|(_, key, _)| key.service.clone()));
            if moved.len() > changed.len() {
                changed = moved;
                let mut previous =
                    previous_of(&changed, inputs.previous, &allocations.ingress_ports);
                for (cluster, key, port) in moves {
                    previous
                        .ingress_ports
                        .entry(cluster)
                        .or_default()
                        .0
                        .insert(key, port);
                }
                (sub, allocations) = self.part(inputs, &changed, &previous);
            }
        }
        let state = splice(
            &self.state,
            sub,
            allocations,
            &changed,
            inputs.catalog.problems.len(),
        );
        if exhausted(&state) {
            // Which service a full pool leaves out is for a full computation to say.
            return Err("a pool ran out");
        }
        for ((_, kept), (_, now)) in self
            .catalog
            .clusters
            .iter_mut()
            .zip(&inputs.catalog.clusters)
        {
            for key in &changed {
                copy_entry(&mut kept.services, &now.services, key);
                copy_entry(&mut kept.exports, &now.exports, key);
                copy_entry(&mut kept.endpoint_slices, &now.endpoint_slices, key);
            }
        }
        // The changed services may have filled a pool.
        self.partial_ok = partial_ok(inputs.catalog, &state);
        self.state = Arc::new(state);
        Ok(Planned::Services { changed })
    }
}

/// Whether `previous` leaves ingress ports to be computed from the catalog alone (static
/// catalogs), rather than carrying their history.
fn ports_from_scratch(previous: &Allocations) -> bool {
    previous.ingress_ports.is_empty() && previous.class_subnets.is_empty()
}

/// Adds to `out` the services whose ClusterSetIP or ingress ports `previous` sets apart from
/// `last` (history given from outside: ClusterSetIPs read back, a peer's published ports).
/// `None` when such an address or port is also another's in `previous`: which service keeps
/// it is for a full computation to say.
fn adjusted(
    last: &Allocations,
    previous: &Allocations,
    out: &mut BTreeSet<ServiceKey>,
) -> Option<()> {
    let mut services = BTreeSet::new();
    differing(&last.vips, &previous.vips, &mut services);
    let vips: BTreeSet<std::net::IpAddr> = services
        .iter()
        .filter_map(|k| previous.vips.get(k).copied())
        .collect();
    if !vips.is_empty() && previous.vips.values().filter(|v| vips.contains(v)).count() > vips.len()
    {
        return None;
    }
    if !ports_from_scratch(previous) {
        let empty = IngressPorts::default();
        let clusters: BTreeSet<&ClusterId> = last
            .ingress_ports
            .keys()
            .chain(previous.ingress_ports.keys())
            .collect();
        for cluster in clusters {
            let before = last.ingress_ports.get(cluster).unwrap_or(&empty);
            let now = previous.ingress_ports.get(cluster).unwrap_or(&empty);
            let mut moved = BTreeSet::new();
            differing(&before.0, &now.0, &mut moved);
            if moved.is_empty() {
                continue;
            }
            let ports: BTreeSet<u16> = moved.iter().filter_map(|k| now.0.get(k).copied()).collect();
            if now.0.values().filter(|p| ports.contains(p)).count() > ports.len() {
                return None;
            }
            services.extend(moved.into_iter().map(|k| k.service));
        }
    }
    out.append(&mut services);
    Some(())
}

/// Adds to `out` every key whose entry differs between `a` and `b` (one walk of both).
pub(crate) fn differing<K: Ord + Clone, V: PartialEq>(
    a: &BTreeMap<K, V>,
    b: &BTreeMap<K, V>,
    out: &mut BTreeSet<K>,
) {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => return,
            (Some((ka, _)), None) => {
                out.insert((*ka).clone());
                a.next();
            }
            (None, Some((kb, _))) => {
                out.insert((*kb).clone());
                b.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    out.insert((*ka).clone());
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    out.insert((*kb).clone());
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if va != vb {
                        out.insert((*ka).clone());
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
}

fn copy_entry<V: Clone>(
    into: &mut BTreeMap<ServiceKey, V>,
    from: &BTreeMap<ServiceKey, V>,
    key: &ServiceKey,
) {
    match from.get(key) {
        Some(v) => {
            into.insert(key.clone(), v.clone());
        }
        None => {
            into.remove(key);
        }
    }
}

/// The catalog cut down to the `changed` services: every shared object, each changed
/// service's own, and, so that namespaces exist as they do in the whole catalog, the
/// namespaces of the changed services where the whole catalog has them.
fn part_of(catalog: &Catalog, changed: &BTreeSet<ServiceKey>) -> Catalog {
    let clusters = catalog
        .clusters
        .iter()
        .map(|(id, all)| {
            let mut part = ClusterObjects {
                namespaces: all.namespaces.clone(),
                wan_policies: all.wan_policies.clone(),
                ..ClusterObjects::default()
            };
            for key in changed {
                if all.has_namespace(&key.namespace) {
                    part.namespaces.insert(key.namespace.clone());
                }
                if let Some(s) = all.services.get(key) {
                    part.services.insert(key.clone(), s.clone());
                }
                if let Some(e) = all.exports.get(key) {
                    part.exports.insert(key.clone(), e.clone());
                }
                if let Some(s) = all.endpoint_slices.get(key) {
                    part.endpoint_slices.insert(key.clone(), s.clone());
                }
            }
            (id.clone(), part)
        })
        .collect();
    Catalog {
        clusterset: catalog.clusterset.clone(),
        clusters,
        problems: catalog.problems.clone(),
    }
}

/// `last`'s allocations with the `changed` services' replaced by `sub`'s (of only them), and
/// the shared ones (subnets, policies) as `sub` has them.
fn splice_allocations(
    last: &Allocations,
    mut sub: Allocations,
    changed: &BTreeSet<ServiceKey>,
) -> Allocations {
    let kept = |key: &ServiceKey| !changed.contains(key);
    let mut vips: BTreeMap<ServiceKey, std::net::IpAddr> = last
        .vips
        .iter()
        .filter(|(k, _)| kept(k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    vips.append(&mut sub.vips);
    sub.vips = vips;
    let mut ingress_ports: BTreeMap<ClusterId, IngressPorts> = last
        .ingress_ports
        .iter()
        .map(|(cluster, ports)| {
            let kept = ports
                .iter()
                .filter(|(k, _)| kept(&k.service))
                .map(|(k, p)| (k.clone(), *p))
                .collect();
            (cluster.clone(), IngressPorts(kept))
        })
        .collect();
    for (cluster, mut ports) in std::mem::take(&mut sub.ingress_ports) {
        ingress_ports
            .entry(cluster)
            .or_default()
            .0
            .append(&mut ports.0);
    }
    ingress_ports.retain(|_, ports| !ports.is_empty());
    sub.ingress_ports = ingress_ports;
    sub
}

/// `last` with the `changed` services' parts replaced by `sub`'s (a plan of only them), and
/// `allocations` (spliced already, [`splice_allocations`]).
fn splice(
    last: &DesiredState,
    sub: DesiredState,
    allocations: Allocations,
    changed: &BTreeSet<ServiceKey>,
    from_catalog: usize,
) -> DesiredState {
    let kept = |key: &ServiceKey| !changed.contains(key);
    let changed_names: BTreeSet<(&str, &str)> = changed
        .iter()
        .map(|k| (k.namespace.as_str(), k.name.as_str()))
        .collect();
    let imports = merge_by(
        last.imports.iter().filter(|i| kept(&i.key)),
        sub.imports,
        |a, b| a.key < b.key,
    );
    let dns = merge_by(
        last.dns
            .iter()
            .filter(|r| !changed_names.contains(&(r.namespace.as_str(), r.name.as_str()))),
        sub.dns,
        |a, b| (&a.namespace, &a.name) < (&b.namespace, &b.name),
    );
    let exports = merge_by(
        last.exports.iter().filter(|e| kept(&e.key)),
        sub.exports,
        |a, b| a.key < b.key,
    );
    let vs_less = |a: &VirtualServer, b: &VirtualServer| {
        (a.address, a.port, a.protocol) < (b.address, b.port, b.protocol)
    };
    let egress = merge_by(
        last.ipvs.egress.iter().filter(|v| kept(&v.service)),
        sub.ipvs.egress,
        vs_less,
    );
    let ingress = merge_by(
        last.ipvs.ingress.iter().filter(|v| kept(&v.service)),
        sub.ipvs.ingress,
        vs_less,
    );
    // The catalog's problems as they are now (the part carried them whole), then the plan's:
    // the shared ones (the part computed them whole) and each service's.
    let (catalog_problems, sub_plan) = sub.problems.split_at(from_catalog);
    let mut plan: Vec<Problem> = last.problems[from_catalog.min(last.problems.len())..]
        .iter()
        .filter(|p| problem_service(p).is_some_and(|k| kept(&k)))
        .cloned()
        .chain(sub_plan.iter().cloned())
        .collect();
    plan.sort();
    let mut problems = catalog_problems.to_vec();
    problems.extend(plan);
    DesiredState {
        cluster_id: sub.cluster_id,
        imports,
        exports,
        dns,
        ipvs: super::IpvsTables { egress, ingress },
        tunnels: sub.tunnels,
        allocations,
        problems,
    }
}

/// The service a plan problem is about, if it is about one.
fn problem_service(p: &Problem) -> Option<ServiceKey> {
    let namespace = p.object.namespace.as_ref()?;
    Some(ServiceKey::new(namespace.as_str(), p.object.name.as_str()))
}

/// Merges `kept` (cloned) and `new`, both sorted by `less`, into one sorted list.
fn merge_by<'a, T: Clone + 'a>(
    kept: impl Iterator<Item = &'a T>,
    new: Vec<T>,
    less: impl Fn(&T, &T) -> bool,
) -> Vec<T> {
    let mut out = Vec::with_capacity(new.len());
    let mut new = new.into_iter().peekable();
    for item in kept {
        while let Some(next) = new.next_if(|n| less(n, item)) {
            out.push(next);
        }
        out.push(item.clone());
    }
    out.extend(new);
    out
}
