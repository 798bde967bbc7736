//! The planner against a full computation, over random change sequences.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::kube::snapshot::Observed;
use crate::kube::writes::{plan as plan_writes, WritePlanner};

/// A small seeded generator (xorshift64), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const CLUSTERS: [&str; 3] = ["cluster-1", "cluster-2", "cluster-3"];
/// `extra` is declared by no Namespace object: it exists in a cluster while something is in it.
const NAMESPACES: [&str; 3] = ["secure", "shop", "extra"];
const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

fn random_service(rng: &mut Rng, key: &ServiceKey) -> Service {
    let mut ports = vec![mk_port("http", 8080)];
    if rng.one_in(2) {
        ports.push(mk_port("grpc", 9090));
    }
    if rng.one_in(4) {
        ports.push(ServicePort {
            name: "dns".into(),
            protocol: Protocol::Udp,
            port: 53,
            target_port: Some(TargetPort::Number(5353)),
        });
    }
    let mut service = mk_service(&key.namespace, &key.name, ports);
    service.service_type = match rng.below(20) {
        0..=2 => ServiceType::Headless,
        3 => ServiceType::ExternalName,
        _ => ServiceType::ClusterIp,
    };
    if rng.one_in(5) {
        service.session_affinity = SessionAffinity::ClientIp {
            timeout_seconds: 60 * (1 + rng.below(3) as u32),
        };
    }
    service
}

fn random_export(rng: &mut Rng, key: &ServiceKey) -> ServiceExport {
    let policy = *rng.pick(&[Some("high"), Some("low"), Some("missing"), None]);
    let created = *rng.pick(&[None, Some(1), Some(2), Some(3)]);
    let mut export = mk_export(&key.namespace, &key.name, policy, created);
    export.placement = match rng.below(6) {
        0 => Placement {
            affinity: Some(Affinity::Local),
            priority: None,
        },
        1 => Placement {
            affinity: None,
            priority: priorities(&[("cluster-2", 1), ("cluster-1", 2)]),
        },
        _ => Placement::default(),
    };
    export
}

fn random_slices(rng: &mut Rng, key: &ServiceKey, cluster: usize) -> Vec<Arc<EndpointSlice>> {
    let address = |i: u64| format!("10.{cluster}.{}.{i}", rng_octet(key));
    let ready: Vec<String> = (0..rng.below(4)).map(address).collect();
    let not_ready: Vec<String> = (10..10 + rng.below(2)).map(address).collect();
    let ready: Vec<&str> = ready.iter().map(String::as_str).collect();
    let not_ready: Vec<&str> = not_ready.iter().map(String::as_str).collect();
    let mut slice = mk_slice(&key.namespace, &key.name, "http", 8080, &ready, &not_ready);
    if rng.one_in(3) {
        if let Some(ep) = slice.endpoints.first_mut() {
            ep.hostname = Some("pod-0".into());
        }
    }
    vec![Arc::new(slice)]
}

fn rng_octet(key: &ServiceKey) -> u8 {
    (crate::alloc::fnv1a(key.to_string().as_bytes()) % 200) as u8
}

/// One random change to `catalog`, `down` or `previous`; returns what it was, for a failure's
/// message.
fn change(
    rng: &mut Rng,
    catalog: &mut Catalog,
    down: &mut DownClusters,
    previous: &mut Allocations,
) -> String {
    let c = rng.below(CLUSTERS.len() as u64) as usize;
    let cluster = CLUSTERS[c];
    let key = ServiceKey::new(*rng.pick(&NAMESPACES), *rng.pick(&NAMES));
    let o = objects(catalog, cluster);
    match rng.below(100) {
        0..=19 => {
            o.services
                .insert(key.clone(), random_service(rng, &key).into());
            format!("{cluster}: Service {key} set")
        }
        20..=29 => {
            o.services.remove(&key);
            format!("{cluster}: Service {key} removed")
        }
        30..=49 => {
            o.exports
                .insert(key.clone(), random_export(rng, &key).into());
            format!("{cluster}: ServiceExport {key} set")
        }
        50..=59 => {
            o.exports.remove(&key);
            format!("{cluster}: ServiceExport {key} removed")
        }
        60..=79 => {
            o.endpoint_slices
                .insert(key.clone(), random_slices(rng, &key, c));
            format!("{cluster}: EndpointSlices {key} set")
        }
        80..=87 => {
            o.endpoint_slices.remove(&key);
            format!("{cluster}: EndpointSlices {key} removed")
        }
        88..=91 => {
            if !down.remove(cluster) {
                down.insert(cluster.to_owned());
            }
            format!("{cluster}: down toggled")
        }
        92..=94 => {
            // Now and then too few ports for the services: the pool runs out.
            let count = *rng.pick(&[60, 60, 4]);
            if let Some(p) = o.wan_policies.get_mut("high") {
                p.port_count = count;
            }
            format!("{cluster}: WANPolicy high portCount {count}")
        }
        95..=96 => {
            if !o.namespaces.remove("shop") {
                o.namespaces.insert("shop".into());
            }
            format!("{cluster}: Namespace shop toggled")
        }
        97 => {
            *previous = Allocations::default();
            "allocations forgotten (a restart)".into()
        }
        _ => {
            let routed = catalog.clusters.values().any(|o| !o.wan_routes.is_empty());
            let o = objects(catalog, cluster);
            let route = if routed {
                for o in catalog.clusters.values_mut() {
                    o.wan_routes.clear();
                }
                "removed (every WANRoute)"
            } else if rng.one_in(3) {
                o.wan_routes.insert(
                    key.clone(),
                    WanRoute {
                        key: key.clone(),
                        rules: Vec::new(),
                        default: RouteAction::WanPolicy("low".into()),
                    },
                );
                "added"
            } else {
                "not added"
            };
            format!("{cluster}: WANRoute {key} {route}")
        }
    }
}

/// History from outside, as the Kubernetes gateway adds it before a plan: a peer publishes
/// another ingress port for a service (at times one another service holds), or none; a
/// ClusterSetIP is read back (at times another's), or forgotten.
fn adjust_history(rng: &mut Rng, previous: &mut Allocations) -> String {
    if rng.one_in(2) {
        let cluster = CLUSTERS[rng.below(CLUSTERS.len() as u64) as usize];
        let Some(ports) = previous.ingress_ports.get_mut(cluster) else {
            return format!("{cluster}: no ingress ports to adjust");
        };
        let keys: Vec<IngressKey> = ports.0.keys().cloned().collect();
        if keys.is_empty() {
            return format!("{cluster}: no ingress ports to adjust");
        }
        let key = rng.pick(&keys).clone();
        if rng.one_in(4) {
            ports.0.remove(&key);
            return format!("{cluster}: the port of {key:?} unpublished");
        }
        let other = ports.0[rng.pick(&keys)];
        let port = if rng.one_in(3) {
            other
        } else {
            other.wrapping_add(1 + rng.below(6) as u16)
        };
        ports.0.insert(key.clone(), port);
        format!("{cluster}: {key:?} published on {port}")
    } else {
        let keys: Vec<ServiceKey> = previous.vips.keys().cloned().collect();
        if keys.is_empty() {
            return "no ClusterSetIP to adjust".into();
        }
        let key = rng.pick(&keys).clone();
        if rng.one_in(4) {
            previous.vips.remove(&key);
            return format!("the ClusterSetIP of {key} forgotten");
        }
        let vip: IpAddr = format!("241.64.0.{}", 1 + rng.below(30)).parse().unwrap();
        previous.vips.insert(key.clone(), vip);
        format!("{key} read back on {vip}")
    }
}

/// What the Kubernetes gateway reads back of its own ServiceExports changes: a condition or
/// generation set or gone.
fn observe(rng: &mut Rng, observed: &mut Observed) -> String {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    let key = ServiceKey::new(*rng.pick(&NAMESPACES), *rng.pick(&NAMES));
    match rng.below(3) {
        0 => {
            let status = *rng.pick(&["True", "False"]);
            let condition = Condition {
                type_: (*rng.pick(&["Valid", "Ready"])).into(),
                status: status.into(),
                reason: "Observed".into(),
                message: String::new(),
                last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                observed_generation: None,
            };
            observed
                .export_conditions
                .insert(key.clone(), vec![condition]);
            format!("{key}: a condition {status} observed")
        }
        1 => {
            let generation = 1 + rng.below(3) as i64;
            observed.export_generations.insert(key.clone(), generation);
            format!("{key}: generation {generation} observed")
        }
        _ => {
            observed.export_conditions.remove(&key);
            observed.export_generations.remove(&key);
            format!("{key}: nothing observed")
        }
    }
}

#[test]
fn the_planner_gives_what_a_full_computation_gives_over_random_changes() {
    let config = PlanConfig {
        // 30 addresses for at most 15 services.
        vip_cidr: "241.64.0.0/27".parse().unwrap(),
        ..PlanConfig::default()
    };
    let mut partial_plans = 0;
    let mut full_plans = BTreeMap::new();
    let mut steps = 0;
    for seed in 1..=16u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut catalog = mk_catalog(3);
        for o in catalog.clusters.values_mut() {
            for p in o.wan_policies.values_mut() {
                p.port_count = 60;
            }
        }
        let mut down = DownClusters::default();
        let mut previous = Allocations::default();
        let mut planner = Planner::new();
        let mut write_planner = WritePlanner::default();
        let mut observed = Arc::new(Observed::default());
        let mut last_state: Option<Arc<DesiredState>> = None;
        let static_catalog = seed % 2 == 1;
        let mut history = Vec::new();
        for step in 0..400 {
            for _ in 0..=rng.below(3) {
                history.push(change(&mut rng, &mut catalog, &mut down, &mut previous));
            }
            if static_catalog {
                // As the static gateway plans: peers' ports from the catalog alone.
                previous.ingress_ports.clear();
                previous.class_subnets.clear();
            } else if rng.one_in(3) {
                history.push(adjust_history(&mut rng, &mut previous));
            }
            if rng.one_in(4) {
                history.push(observe(&mut rng, Arc::make_mut(&mut observed)));
            }
            let inputs = Inputs {
                catalog: &catalog,
                cluster_id: CLUSTERS[(seed % 3) as usize],
                config: &config,
                previous: &previous,
                down: &down,
            };
            let full = compute(inputs);
            let (planned, how) = planner.plan(inputs);
            match &how {
                Planned::Services { changed } => {
                    partial_plans += 1;
                    // The zone is updated for the changed services only: every service whose
                    // DNS records differ from the last plan's must be among them.
                    if let Some(last) = &last_state {
                        for key in dns_differences(&last.dns, &planned.dns) {
                            assert!(
                                changed.contains(&key),
                                "seed {seed} step {step}: {key}'s records changed, and the plan names only {changed:?}"
                            );
                        }
                    }
                }
                Planned::Full { why } => *full_plans.entry(*why).or_insert(0) += 1,
            }
            assert!(
                planned
                    .dns
                    .windows(2)
                    .all(|w| (&w[0].namespace, &w[0].name) < (&w[1].namespace, &w[1].name)),
                "seed {seed} step {step}: the records are not sorted by namespace and name"
            );
            last_state = Some(planned.clone());
            if *planned != full {
                let recent = &history[history.len().saturating_sub(6)..];
                panic!(
                    "seed {seed} step {step} ({how:?}): the planner differs from a full computation\nlast changes: {recent:#?}\nplanner: {planned:#?}\nfull: {full:#?}"
                );
            }
            // The Kubernetes writes of the plan: planned again for its changed services only,
            // they must be those of the full computation.
            let cluster_id = inputs.cluster_id;
            let (writes, _) = write_planner.plan(
                cluster_id,
                &catalog,
                &planned,
                &how,
                &observed,
                Timestamp::UNIX_EPOCH,
            );
            let expected = plan_writes(
                cluster_id,
                &catalog,
                &full,
                &observed,
                Timestamp::UNIX_EPOCH,
            );
            if *writes != expected {
                let differing: Vec<String> = writes
                    .iter()
                    .filter(|(id, w)| expected.get(*id) != Some(*w))
                    .map(|(id, _)| format!("planned {id}"))
                    .chain(
                        expected
                            .iter()
                            .filter(|(id, w)| writes.get(*id) != Some(*w))
                            .map(|(id, _)| format!("expected {id}")),
                    )
                    .collect();
                let recent = &history[history.len().saturating_sub(6)..];
                panic!(
                    "seed {seed} step {step} ({how:?}): the writes differ from a full plan's: {differing:#?}\nlast changes: {recent:#?}"
                );
            }
            previous = full.allocations.clone();
            steps += 1;
        }
    }
    eprintln!("partial {partial_plans} of {steps}; full: {full_plans:?}");
    // Most plans must take the partial path, or the test shows nothing about it.
    assert!(
        partial_plans * 2 > steps,
        "only {partial_plans} of {steps} plans were partial; full ones: {full_plans:?}"
    );
}

/// The services whose DNS records differ between two plans' (each sorted by service).
fn dns_differences(
    before: &[Arc<mcwan_dns::ServiceRecord>],
    after: &[Arc<mcwan_dns::ServiceRecord>],
) -> BTreeSet<ServiceKey> {
    let by_key =
        |records: &[Arc<mcwan_dns::ServiceRecord>]| -> BTreeMap<ServiceKey, Arc<mcwan_dns::ServiceRecord>> {
            records
                .iter()
                .map(|r| {
                    (
                        ServiceKey::new(r.namespace.as_str(), r.name.as_str()),
                        r.clone(),
                    )
                })
                .collect()
        };
    let (before, after) = (by_key(before), by_key(after));
    before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}
