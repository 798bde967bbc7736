//! The desired state, behaviour by behaviour.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::catalog::{ClusterEntry, ClusterSet, GatewayEntry, WanMode};
use crate::model::*;
use crate::problem::Severity;
use crate::resolve::reason;

fn mk_policy(name: &str, tunnel: &str, port: u16, count: u16) -> WanPolicy {
    WanPolicy {
        name: name.into(),
        tunnel: tunnel.into(),
        port,
        port_count: count,
        sla: Sla::default(),
        is_default: false,
    }
}

fn mk_port(name: &str, port: u16) -> ServicePort {
    ServicePort {
        name: name.into(),
        protocol: Protocol::Tcp,
        port,
        target_port: None,
    }
}

fn mk_service(ns: &str, name: &str, ports: Vec<ServicePort>) -> Service {
    Service {
        key: ServiceKey::new(ns, name),
        service_type: ServiceType::ClusterIp,
        ports,
        session_affinity: SessionAffinity::None,
    }
}

fn mk_export(ns: &str, name: &str, policy: Option<&str>, created: Option<i64>) -> ServiceExport {
    ServiceExport {
        key: ServiceKey::new(ns, name),
        wan_policy: policy.map(str::to_owned),
        placement: Placement::default(),
        created: created.map(|s| Timestamp::from_second(s).unwrap()),
        group: ExportGroup::Mcs,
    }
}

fn mk_slice(
    ns: &str,
    svc: &str,
    port_name: &str,
    port: u16,
    ready: &[&str],
    not_ready: &[&str],
) -> EndpointSlice {
    let ep = |a: &&str, ready| Endpoint {
        addresses: vec![a.parse().unwrap()],
        ready,
        hostname: None,
    };
    EndpointSlice {
        name: format!("{svc}-slice"),
        service: ServiceKey::new(ns, svc),
        ports: vec![EndpointPort {
            name: port_name.into(),
            protocol: Protocol::Tcp,
            port,
        }],
        endpoints: ready
            .iter()
            .map(|a| ep(a, true))
            .chain(not_ready.iter().map(|a| ep(a, false)))
            .collect(),
    }
}

/// A clusterset of `n` clusters (`cluster-1`..), each with namespace `secure` and the seed's
/// two policies (with room for 10 ports each).
fn mk_catalog(n: u8) -> Catalog {
    let mut clusters = BTreeMap::new();
    let mut objects = BTreeMap::new();
    for i in 1..=n {
        let id = format!("cluster-{i}");
        clusters.insert(
            id.clone(),
            ClusterEntry {
                id: id.clone(),
                index: i,
                gateway: GatewayEntry {
                    wan_address: format!("192.0.2.{i}").parse().unwrap(),
                    ingress_address: None,
                    wireguard_public_key: None,
                    sdwan_edges: BTreeMap::from([(
                        "business".to_owned(),
                        format!("198.51.100.{i}").parse().unwrap(),
                    )]),
                },
            },
        );
        let mut o = ClusterObjects::default();
        o.namespaces.insert("secure".into());
        for p in [
            mk_policy("high", "business", 31100, 10),
            mk_policy("low", "default", 31200, 10),
        ] {
            o.wan_policies.insert(p.name.clone(), p);
        }
        objects.insert(id, o);
    }
    Catalog {
        clusterset: ClusterSet {
            name: Some("test".into()),
            wan: WanMode::Wireguard,
            inner_network: Some("10.255.0.0/16".parse().unwrap()),
            clusters,
        },
        clusters: objects,
        problems: Vec::new(),
    }
}

fn objects<'a>(c: &'a mut Catalog, cluster: &str) -> &'a mut ClusterObjects {
    c.clusters.get_mut(cluster).unwrap()
}

/// Exports `secure/<name>` from `cluster` with one port `http 8080` and two ready endpoints.
fn export_payment(c: &mut Catalog, cluster: &str, name: &str, policy: &str, created: Option<i64>) {
    let o = objects(c, cluster);
    let svc = mk_service("secure", name, vec![mk_port("http", 8080)]);
    o.services.insert(svc.key.clone(), svc.into());
    o.endpoint_slices.insert(
        ServiceKey::new("secure", name),
        vec![Arc::new(mk_slice(
            "secure",
            name,
            "http",
            8080,
            &["10.1.0.11", "10.1.0.12"],
            &["10.1.0.13"],
        ))],
    );
    let e = mk_export("secure", name, Some(policy), created);
    o.exports.insert(e.key.clone(), e.into());
}

fn plan_with(
    c: &Catalog,
    cluster: &str,
    previous: &Allocations,
    down: &DownClusters,
) -> DesiredState {
    compute(Inputs {
        catalog: c,
        cluster_id: cluster,
        config: &PlanConfig::default(),
        previous,
        down,
    })
}

fn plan(c: &Catalog, cluster: &str) -> DesiredState {
    plan_with(
        c,
        cluster,
        &Allocations::default(),
        &DownClusters::default(),
    )
}

fn export_status<'a>(s: &'a DesiredState, name: &str) -> &'a ExportStatus {
    s.exports.iter().find(|e| e.key.name == name).unwrap()
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new("secure", name)
}

#[test]
fn exported_service_is_imported_with_a_vip_from_the_cidr() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    let s = plan(&c, "cluster-2");
    assert_eq!(s.imports.len(), 1);
    let vip = s.imports[0].vip.unwrap();
    assert!(PlanConfig::default().vip_cidr.contains(&vip));
    assert_eq!(s.imports[0].clusters, vec!["cluster-1"]);
    assert!(
        matches!(&s.dns[0].kind, mcwan_dns::ServiceRecordKind::ClusterSetIp { ips } if ips == &vec![vip])
    );
}

#[test]
fn vips_are_stable_across_restarts_and_unrelated_changes() {
    let mut c = mk_catalog(2);
    for name in ["payment", "orders", "stock"] {
        export_payment(&mut c, "cluster-1", name, "high", None);
    }
    let first = plan(&c, "cluster-2");
    // A restart: no history, same catalog.
    assert_eq!(
        plan(&c, "cluster-2").allocations.vips,
        first.allocations.vips
    );
    // Unrelated changes while running: a service removed, others added.
    objects(&mut c, "cluster-1").exports.remove(&key("orders"));
    for i in 0..50 {
        export_payment(&mut c, "cluster-1", &format!("svc-{i}"), "low", None);
    }
    let second = plan_with(
        &c,
        "cluster-2",
        &first.allocations,
        &DownClusters::default(),
    );
    for name in ["payment", "stock"] {
        assert_eq!(
            second.allocations.vips[&key(name)],
            first.allocations.vips[&key(name)],
            "{name}"
        );
    }
}

#[test]
fn ingress_ports_are_in_the_policy_range_and_stable() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    export_payment(&mut c, "cluster-1", "orders", "high", None);
    let first = plan(&c, "cluster-1");
    let ports: Vec<u16> = first
        .exports
        .iter()
        .flat_map(|e| e.ingress.iter().map(|p| p.ingress_port))
        .collect();
    assert_eq!(ports.len(), 2);
    assert!(
        ports.iter().all(|p| (31100..=31109).contains(p)),
        "{ports:?}"
    );
    assert_ne!(ports[0], ports[1]);
    export_payment(&mut c, "cluster-1", "stock", "high", None);
    objects(&mut c, "cluster-1").exports.remove(&key("orders"));
    let second = plan_with(
        &c,
        "cluster-1",
        &first.allocations,
        &DownClusters::default(),
    );
    assert_eq!(
        export_status(&second, "payment").ingress,
        export_status(&first, "payment").ingress
    );
}

#[test]
fn egress_balances_to_remote_gateways_on_their_ingress_ports() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(100));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(200));
    let s = plan(&c, "cluster-2");
    let p1 = export_status(&plan(&c, "cluster-1"), "payment").ingress[0].ingress_port;
    let p3 = export_status(&plan(&c, "cluster-3"), "payment").ingress[0].ingress_port;
    assert_eq!(s.ipvs.egress.len(), 1);
    let vs = &s.ipvs.egress[0];
    assert_eq!((vs.port, vs.protocol), (8080, Protocol::Tcp));
    let subnet = s.allocations.class_subnets["business"];
    let inner = |i: u8| IpAddr::V4(tunnel::inner_address(&subnet, i).unwrap());
    let reals: Vec<(IpAddr, u16, &str)> = vs
        .reals
        .iter()
        .map(|r| (r.address, r.port, r.cluster.as_str()))
        .collect();
    assert_eq!(
        reals,
        vec![(inner(1), p1, "cluster-1"), (inner(3), p3, "cluster-3")]
    );
    assert!(s.ipvs.ingress.is_empty(), "cluster-2 exports nothing");
}

#[test]
fn ingress_maps_the_ingress_port_to_local_ready_endpoints() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    let s = plan(&c, "cluster-1");
    assert_eq!(s.ipvs.ingress.len(), 1);
    let vs = &s.ipvs.ingress[0];
    assert_eq!(
        vs.port,
        export_status(&s, "payment").ingress[0].ingress_port
    );
    let subnet = s.allocations.class_subnets["business"];
    assert_eq!(
        vs.address,
        IpAddr::V4(tunnel::inner_address(&subnet, 1).unwrap())
    );
    let reals: Vec<String> = vs
        .reals
        .iter()
        .map(|r| format!("{}:{}", r.address, r.port))
        .collect();
    assert_eq!(
        reals,
        vec!["10.1.0.11:8080", "10.1.0.12:8080"],
        "the not-ready endpoint is left out"
    );
}

#[test]
fn a_local_export_is_balanced_to_local_endpoints_directly() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(1));
    export_payment(&mut c, "cluster-2", "payment", "high", Some(2));
    let s = plan(&c, "cluster-1");
    let clusters: Vec<&str> = s.ipvs.egress[0]
        .reals
        .iter()
        .map(|r| r.cluster.as_str())
        .collect();
    assert_eq!(clusters, vec!["cluster-1", "cluster-1", "cluster-2"]);
    assert!(s.ipvs.egress[0]
        .reals
        .iter()
        .any(|r| r.address.to_string() == "10.1.0.11" && r.port == 8080));
}

#[test]
fn a_down_cluster_is_drained_and_traffic_fails_over() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(1));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(2));
    let down = DownClusters::from(["cluster-1".to_owned()]);
    let s = plan_with(&c, "cluster-2", &Allocations::default(), &down);
    let clusters: Vec<&str> = s.ipvs.egress[0]
        .reals
        .iter()
        .map(|r| r.cluster.as_str())
        .collect();
    assert_eq!(clusters, vec!["cluster-3"]);
    assert_eq!(s.imports[0].clusters, vec!["cluster-3"]);
    let healthy = plan(&c, "cluster-2");
    assert_eq!(
        s.imports[0].vip, healthy.imports[0].vip,
        "the VIP does not move"
    );
}

/// Sets the placement annotations' values on an export.
fn place(c: &mut Catalog, cluster: &str, name: &str, placement: Placement) {
    Arc::make_mut(objects(c, cluster).exports.get_mut(&key(name)).unwrap()).placement = placement;
}

fn priorities(pairs: &[(&str, u32)]) -> Option<BTreeMap<ClusterId, u32>> {
    Some(pairs.iter().map(|(c, p)| (c.to_string(), *p)).collect())
}

/// Marks every endpoint of `secure/<name>` in `cluster` ready.
fn all_ready(c: &mut Catalog, cluster: &str, name: &str) {
    for slice in objects(c, cluster)
        .endpoint_slices
        .get_mut(&key(name))
        .unwrap()
    {
        for e in &mut Arc::make_mut(slice).endpoints {
            e.ready = true;
        }
    }
}

/// (cluster, weight) of every real server of the first egress virtual server.
fn weights_by_cluster(s: &DesiredState) -> Vec<(String, u32)> {
    s.ipvs.egress[0]
        .reals
        .iter()
        .map(|r| (r.cluster.clone(), r.weight))
        .collect()
}

#[test]
fn without_placement_every_cluster_shares_by_ready_backends() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(1));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(2));
    let s = plan(&c, "cluster-2");
    assert_eq!(
        weights_by_cluster(&s),
        vec![("cluster-1".into(), 5000), ("cluster-3".into(), 5000)]
    );
    assert_eq!(s.ipvs.egress[0].scheduler, "wrr");
}

#[test]
fn cluster_priority_sends_everything_to_the_first_healthy_cluster() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(1));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(2));
    let ranking = Placement {
        affinity: None,
        priority: priorities(&[("cluster-3", 1), ("cluster-1", 2)]),
    };
    place(&mut c, "cluster-1", "payment", ranking);
    all_ready(&mut c, "cluster-1", "payment");
    all_ready(&mut c, "cluster-3", "payment");
    let s = plan(&c, "cluster-2");
    assert_eq!(
        weights_by_cluster(&s),
        vec![("cluster-1".into(), 0), ("cluster-3".into(), 10_000)],
        "cluster-1 stands by with weight 0"
    );
    // cluster-3's gateway dies: everything moves to cluster-1, and back when it returns.
    let down = DownClusters::from(["cluster-3".to_owned()]);
    let failed = plan_with(&c, "cluster-2", &Allocations::default(), &down);
    assert_eq!(
        weights_by_cluster(&failed),
        vec![("cluster-1".into(), 10_000)]
    );
    assert_eq!(failed.imports[0].vip, s.imports[0].vip);
}

#[test]
fn losing_backends_moves_traffic_to_the_next_priority_gradually() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(1));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(2));
    place(
        &mut c,
        "cluster-1",
        "payment",
        Placement {
            affinity: None,
            priority: priorities(&[("cluster-1", 1), ("cluster-3", 2)]),
        },
    );
    // cluster-1 has 2 of 3 endpoints ready (export_payment): 93 % after overprovisioning.
    assert_eq!(
        weights_by_cluster(&plan(&c, "cluster-2")),
        vec![("cluster-1".into(), 9333), ("cluster-3".into(), 667)]
    );
    // One of 3 ready: 46 % stays.
    let slices = objects(&mut c, "cluster-1")
        .endpoint_slices
        .get_mut(&key("payment"))
        .unwrap();
    Arc::make_mut(&mut slices[0]).endpoints[1].ready = false;
    assert_eq!(
        weights_by_cluster(&plan(&c, "cluster-2")),
        vec![("cluster-1".into(), 4666), ("cluster-3".into(), 5334)]
    );
}

#[test]
fn local_affinity_keeps_traffic_home_and_remote_affinity_sends_it_away() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(1));
    export_payment(&mut c, "cluster-2", "payment", "high", Some(2));
    all_ready(&mut c, "cluster-1", "payment");
    all_ready(&mut c, "cluster-2", "payment");
    for (affinity, expected) in [
        (Affinity::Local, (9999, 0)),
        (Affinity::Remote, (0, 10_000)),
    ] {
        place(
            &mut c,
            "cluster-2",
            "payment",
            Placement {
                affinity: Some(affinity),
                priority: None,
            },
        );
        // cluster-1's three local endpoints are real servers of their own (3,333 each).
        let s = plan(&c, "cluster-1");
        let w = weights_by_cluster(&s);
        let local: u32 = w
            .iter()
            .filter(|(c, _)| c == "cluster-1")
            .map(|(_, w)| w)
            .sum();
        let remote: u32 = w
            .iter()
            .filter(|(c, _)| c == "cluster-2")
            .map(|(_, w)| w)
            .sum();
        assert_eq!((local, remote), expected, "{affinity}: {w:?}");
    }
}

#[test]
fn exports_that_place_differently_conflict_and_the_oldest_wins() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(1));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(2));
    let older = Placement {
        affinity: Some(Affinity::Remote),
        priority: None,
    };
    place(&mut c, "cluster-1", "payment", older);
    all_ready(&mut c, "cluster-1", "payment");
    // Unset on cluster-3: it defers, no conflict.
    let s = plan(&c, "cluster-3");
    let conflict = export_status(&s, "payment").condition("Conflict").unwrap();
    assert!(!conflict.status, "{conflict:?}");
    place(
        &mut c,
        "cluster-3",
        "payment",
        Placement {
            affinity: Some(Affinity::Local),
            priority: None,
        },
    );
    let s = plan(&c, "cluster-3");
    let conflict = export_status(&s, "payment").condition("Conflict").unwrap();
    assert!(conflict.status);
    assert_eq!(conflict.reason, reason::PLACEMENT_CONFLICT);
    assert!(
        conflict.message.contains("mcw.l7mp.io/affinity"),
        "{}",
        conflict.message
    );
    // Remote affinity (cluster-1's) rules in cluster-3: its own endpoints stand by.
    let local: u32 = weights_by_cluster(&s)
        .iter()
        .filter(|(c, _)| c == "cluster-3")
        .map(|(_, w)| w)
        .sum();
    assert_eq!(local, 0);
}

#[test]
fn no_import_where_the_namespace_does_not_exist() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    objects(&mut c, "cluster-2").namespaces.clear();
    let s = plan(&c, "cluster-2");
    assert!(s.imports.is_empty());
    assert!(s.dns.is_empty());
    assert!(s.ipvs.egress.is_empty());
}

#[test]
fn export_of_a_missing_service_is_not_valid() {
    let mut c = mk_catalog(2);
    let e = mk_export("secure", "ghost", Some("high"), None);
    objects(&mut c, "cluster-1")
        .exports
        .insert(e.key.clone(), e.into());
    let s = plan(&c, "cluster-1");
    let valid = export_status(&s, "ghost").condition("Valid").unwrap();
    assert!(!valid.status);
    assert_eq!(valid.reason, reason::NO_SERVICE);
    assert!(plan(&c, "cluster-2").imports.is_empty());
}

#[test]
fn export_of_an_external_name_service_is_not_valid() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    Arc::make_mut(
        objects(&mut c, "cluster-1")
            .services
            .get_mut(&key("payment"))
            .unwrap(),
    )
    .service_type = ServiceType::ExternalName;
    let s = plan(&c, "cluster-1");
    assert_eq!(
        export_status(&s, "payment")
            .condition("Valid")
            .unwrap()
            .reason,
        reason::INVALID_SERVICE_TYPE
    );
}

#[test]
fn unknown_wan_policy_names_the_annotation_and_spares_other_services() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    export_payment(&mut c, "cluster-1", "orders", "platinum", None);
    let s = plan(&c, "cluster-1");
    let valid = export_status(&s, "orders").condition("Valid").unwrap();
    assert!(!valid.status);
    assert_eq!(valid.reason, reason::UNKNOWN_WAN_POLICY);
    assert!(
        valid.message.contains("mcw.l7mp.io/mc-wan-policy") && valid.message.contains("platinum"),
        "{}",
        valid.message
    );
    let problem = s
        .problems
        .iter()
        .find(|p| p.object.name == "orders")
        .unwrap();
    assert_eq!(
        problem.field.as_deref(),
        Some("metadata.annotations[\"mcw.l7mp.io/mc-wan-policy\"]")
    );
    assert!(
        export_status(&s, "payment")
            .condition("Ready")
            .unwrap()
            .status
    );
    let importer = plan(&c, "cluster-2");
    assert_eq!(
        importer
            .imports
            .iter()
            .map(|i| i.key.name.as_str())
            .collect::<Vec<_>>(),
        vec!["payment"]
    );
}

#[test]
fn default_wan_policy_applies_to_exports_without_the_annotation() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    Arc::make_mut(
        objects(&mut c, "cluster-1")
            .exports
            .get_mut(&key("payment"))
            .unwrap(),
    )
    .wan_policy = None;
    let without = plan(&c, "cluster-1");
    assert_eq!(
        export_status(&without, "payment")
            .condition("Valid")
            .unwrap()
            .reason,
        reason::UNKNOWN_WAN_POLICY
    );
    let config = PlanConfig {
        default_wan_policy: Some("low".into()),
        ..PlanConfig::default()
    };
    let with = compute(Inputs {
        catalog: &c,
        cluster_id: "cluster-1",
        config: &config,
        previous: &Allocations::default(),
        down: &DownClusters::default(),
    });
    let status = export_status(&with, "payment");
    assert_eq!(status.tunnel.as_deref(), Some("default"));
    assert!((31200..=31209).contains(&status.ingress[0].ingress_port));
}

/// payment exported from cluster-1 with no policy annotation, under `policies` (name, marked
/// default) in cluster-1: the Valid condition.
fn plain_export_valid(policies: &[(&str, bool)]) -> (Condition, DesiredState) {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    let o = objects(&mut c, "cluster-1");
    Arc::make_mut(o.exports.get_mut(&key("payment")).unwrap()).wan_policy = None;
    o.wan_policies.clear();
    for (i, (name, marked)) in policies.iter().enumerate() {
        let mut p = mk_policy(name, &format!("class-{i}"), 31100 + 100 * i as u16, 10);
        p.is_default = *marked;
        o.wan_policies.insert(p.name.clone(), p);
    }
    let state = plan(&c, "cluster-1");
    let valid = export_status(&state, "payment")
        .condition("Valid")
        .unwrap()
        .clone();
    (valid, state)
}

#[test]
fn a_plain_export_takes_the_only_policy_or_the_one_marked_default() {
    let (valid, _) = plain_export_valid(&[("sd-wan-priority-high", false)]);
    assert!(valid.status, "{valid:?}");
    assert!(
        valid.message.contains("WANPolicy sd-wan-priority-high")
            && valid.message.contains("the only WANPolicy of the cluster"),
        "{}",
        valid.message
    );
    let (valid, state) = plain_export_valid(&[("high", false), ("low", true)]);
    assert!(valid.status, "{valid:?}");
    assert!(
        valid.message.contains("WANPolicy low")
            && valid
                .message
                .contains("marked mcw.l7mp.io/is-default-policy"),
        "{}",
        valid.message
    );
    assert_eq!(
        export_status(&state, "payment").tunnel.as_deref(),
        Some("class-1")
    );
}

#[test]
fn a_plain_export_without_a_default_says_what_to_do() {
    let (valid, _) = plain_export_valid(&[]);
    assert!(!valid.status);
    assert_eq!(valid.reason, reason::UNKNOWN_WAN_POLICY);
    assert!(valid.message.contains("create one"), "{}", valid.message);
    let (valid, _) = plain_export_valid(&[("high", false), ("low", false)]);
    assert!(!valid.status);
    assert!(
        valid
            .message
            .contains("mcw.l7mp.io/is-default-policy: \"true\""),
        "{}",
        valid.message
    );
    // Two marked: the export says so, and each policy has a problem naming both.
    let (valid, state) = plain_export_valid(&[("high", true), ("low", true)]);
    assert!(!valid.status);
    assert!(valid.message.contains("(high, low)"), "{}", valid.message);
    let named: Vec<String> = state
        .problems
        .iter()
        .filter(|p| p.object.kind == "WANPolicy")
        .filter(|p| {
            p.message
                .contains("several WANPolicies are marked default (high, low)")
        })
        .map(|p| p.object.to_string())
        .collect();
    assert_eq!(named, ["WANPolicy high", "WANPolicy low"]);
}

#[test]
fn port_conflict_oldest_export_wins_and_every_export_is_flagged() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(200));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(100));
    // cluster-1 (newer) defines `http` as 9090.
    Arc::make_mut(
        objects(&mut c, "cluster-1")
            .services
            .get_mut(&key("payment"))
            .unwrap(),
    )
    .ports = vec![mk_port("http", 9090), mk_port("metrics", 9100)];
    let s = plan(&c, "cluster-2");
    let ports: Vec<(String, u16)> = s.imports[0]
        .ports
        .iter()
        .map(|p| (p.name.clone(), p.port))
        .collect();
    assert_eq!(
        ports,
        vec![("http".into(), 8080), ("metrics".into(), 9100)],
        "the oldest wins; ports are the union"
    );
    for cluster in ["cluster-1", "cluster-3"] {
        let st = plan(&c, cluster);
        let conflict = export_status(&st, "payment")
            .condition("Conflict")
            .unwrap()
            .clone();
        assert!(conflict.status, "{cluster}");
        assert_eq!(conflict.reason, reason::PORT_CONFLICT);
        assert!(
            conflict.message.contains("cluster-3") && conflict.message.contains("oldest"),
            "{}",
            conflict.message
        );
    }
    // The newer cluster still serves its non-conflicting port.
    let metrics = s.ipvs.egress.iter().find(|v| v.port == 9100).unwrap();
    assert_eq!(
        metrics
            .reals
            .iter()
            .map(|r| r.cluster.as_str())
            .collect::<Vec<_>>(),
        vec!["cluster-1"]
    );
    let http = s.ipvs.egress.iter().find(|v| v.port == 8080).unwrap();
    assert_eq!(
        http.reals
            .iter()
            .map(|r| r.cluster.as_str())
            .collect::<Vec<_>>(),
        vec!["cluster-3"]
    );
}

#[test]
fn type_conflict_oldest_export_wins() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(100));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(200));
    Arc::make_mut(
        objects(&mut c, "cluster-3")
            .services
            .get_mut(&key("payment"))
            .unwrap(),
    )
    .service_type = ServiceType::Headless;
    let s = plan(&c, "cluster-2");
    assert_eq!(s.imports[0].import_type, resolve::ImportType::ClusterSetIp);
    assert_eq!(s.imports[0].clusters, vec!["cluster-1"]);
    let loser = plan(&c, "cluster-3");
    let st = export_status(&loser, "payment");
    assert_eq!(
        st.condition("Conflict").unwrap().reason,
        reason::TYPE_CONFLICT
    );
    assert!(!st.condition("Ready").unwrap().status);
    let winner = plan(&c, "cluster-1");
    assert!(
        export_status(&winner, "payment")
            .condition("Conflict")
            .unwrap()
            .status,
        "flagged on every export"
    );
}

#[test]
fn no_conflict_means_conflict_false_with_no_conflicts_reason() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(100));
    export_payment(&mut c, "cluster-3", "payment", "high", Some(200));
    let st = plan(&c, "cluster-1");
    let conflict = export_status(&st, "payment").condition("Conflict").unwrap();
    assert!(!conflict.status);
    assert_eq!(conflict.reason, reason::NO_CONFLICTS);
}

#[test]
fn exhausted_ingress_range_fails_ready_and_names_port_count() {
    let mut c = mk_catalog(2);
    let o = objects(&mut c, "cluster-1");
    o.wan_policies
        .insert("high".into(), mk_policy("high", "business", 31100, 1));
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    export_payment(&mut c, "cluster-1", "orders", "high", None);
    let s = plan(&c, "cluster-1");
    let ready: Vec<bool> = s
        .exports
        .iter()
        .map(|e| e.condition("Ready").unwrap().status)
        .collect();
    assert_eq!(
        ready.iter().filter(|r| **r).count(),
        1,
        "one port for two services"
    );
    let failed = s
        .exports
        .iter()
        .find(|e| !e.condition("Ready").unwrap().status)
        .unwrap();
    assert!(failed
        .condition("Ready")
        .unwrap()
        .message
        .contains("spec.portCount"));
}

#[test]
fn overlapping_policy_ranges_reject_the_later_policy() {
    let mut c = mk_catalog(2);
    objects(&mut c, "cluster-1")
        .wan_policies
        .insert("medium".into(), mk_policy("medium", "silver", 31105, 10));
    let s = plan(&c, "cluster-1");
    let p = s
        .problems
        .iter()
        .find(|p| p.object.name == "medium")
        .unwrap();
    assert_eq!(p.severity, Severity::Error);
    assert_eq!(p.field.as_deref(), Some("spec.port"));
    assert!(p.message.contains("overlap"));
}

#[test]
fn headless_services_resolve_ready_endpoints_per_cluster() {
    let mut c = mk_catalog(2);
    let o = objects(&mut c, "cluster-1");
    let mut svc = mk_service("secure", "ledger", vec![mk_port("pg", 5432)]);
    svc.service_type = ServiceType::Headless;
    o.services.insert(svc.key.clone(), svc.into());
    let mut slice = mk_slice(
        "secure",
        "ledger",
        "pg",
        5432,
        &["10.1.0.31", "10.1.0.32"],
        &["10.1.0.33"],
    );
    slice.endpoints[0].hostname = Some("ledger-0".into());
    o.endpoint_slices.insert(key("ledger"), vec![slice.into()]);
    o.exports.insert(
        key("ledger"),
        mk_export("secure", "ledger", None, None).into(),
    );
    let s = plan(&c, "cluster-2");
    assert_eq!(s.imports[0].vip, None);
    assert!(s.ipvs.egress.is_empty(), "headless services get no VIP");
    let mcwan_dns::ServiceRecordKind::Headless { endpoints } = &s.dns[0].kind else {
        panic!("not headless")
    };
    let names: Vec<String> = endpoints
        .iter()
        .map(|e| format!("{}.{}", e.hostname, e.cluster_id))
        .collect();
    assert_eq!(names, vec!["ledger-0.cluster-1", "10-1-0-32.cluster-1"]);
}

#[test]
fn sdwan_mode_targets_ingress_addresses_and_hands_off_to_edges() {
    let mut c = mk_catalog(2);
    c.clusterset.wan = WanMode::Sdwan;
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    let s = plan(&c, "cluster-2");
    assert_eq!(s.ipvs.egress[0].reals[0].address.to_string(), "192.0.2.1");
    let business = s
        .tunnels
        .classes
        .iter()
        .find(|c| c.class == "business")
        .unwrap();
    assert_eq!(business.sdwan_next_hop.unwrap().to_string(), "198.51.100.2");
    assert_eq!(business.ingress_ports, (31100, 31109));
    let default = s
        .tunnels
        .classes
        .iter()
        .find(|c| c.class == "default")
        .unwrap();
    assert_eq!(default.sdwan_next_hop, None);
    assert!(s
        .problems
        .iter()
        .any(|p| p.field.as_deref() == Some("gateway.sdwanEdges.default")));
}

#[test]
fn wireguard_plan_has_one_tunnel_per_class_with_a_peer_per_gateway() {
    let c = mk_catalog(3);
    let s = plan(&c, "cluster-2");
    assert_eq!(
        s.tunnels
            .classes
            .iter()
            .map(|c| c.class.as_str())
            .collect::<Vec<_>>(),
        vec!["business", "default"]
    );
    let business = &s.tunnels.classes[0];
    assert_eq!(business.wan_port, 31100);
    let subnet = business.inner_subnet.unwrap();
    assert_eq!(
        business.local_address,
        IpAddr::V4(tunnel::inner_address(&subnet, 2).unwrap())
    );
    let peers: Vec<String> = business
        .peers
        .iter()
        .map(|p| format!("{} {}", p.cluster, p.endpoint))
        .collect();
    assert_eq!(
        peers,
        vec!["cluster-1 192.0.2.1:31100", "cluster-3 192.0.2.3:31100"]
    );
    assert_ne!(
        s.tunnels.classes[0].inner_subnet,
        s.tunnels.classes[1].inner_subnet
    );
}

#[test]
fn the_plan_is_deterministic() {
    let mut c = mk_catalog(3);
    export_payment(&mut c, "cluster-1", "payment", "high", Some(1));
    export_payment(&mut c, "cluster-3", "payment", "low", Some(2));
    assert_eq!(plan(&c, "cluster-2"), plan(&c, "cluster-2"));
}

fn mk_wan_import(gw: &str, policy: Option<&str>, ports: &[(&str, u16, Option<u16>)]) -> WanImport {
    WanImport {
        key: key("payment"),
        ingress_gateway: gw.parse().unwrap(),
        wan_policy: policy.map(str::to_owned),
        ports: ports
            .iter()
            .map(|(name, port, ingress)| WanImportPort {
                name: (*name).to_owned(),
                protocol: Protocol::Tcp,
                port: *port,
                ingress_port: *ingress,
            })
            .collect(),
    }
}

/// cluster-2 imports `secure/payment` from `gw` with a WANImport; cluster-1 shows nothing.
fn wan_imported(
    gw: &str,
    policy: Option<&str>,
    ports: &[(&str, u16, Option<u16>)],
) -> DesiredState {
    let mut c = mk_catalog(2);
    let import = mk_wan_import(gw, policy, ports);
    objects(&mut c, "cluster-2")
        .wan_imports
        .insert(import.key.clone(), import);
    plan(&c, "cluster-2")
}

fn wan_import_problems(s: &DesiredState) -> Vec<String> {
    s.problems
        .iter()
        .filter(|p| p.object.kind == "WANImport")
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_wan_import_is_planned_as_the_export_it_names_would_be() {
    // The import as a WANImport, cluster-1 not watched...
    let s = wan_imported("192.0.2.1", Some("high"), &[("http", 8080, Some(31104))]);
    assert!(wan_import_problems(&s).is_empty(), "{:?}", s.problems);
    // ... and as cluster-1's export read with the same ingress port.
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    let mut previous = Allocations::default();
    previous
        .ingress_ports
        .entry("cluster-1".into())
        .or_default()
        .0
        .insert(
            IngressKey {
                service: key("payment"),
                protocol: Protocol::Tcp,
                port: 8080,
                class: None,
            },
            31104,
        );
    let read = plan_with(&c, "cluster-2", &previous, &DownClusters::default());
    assert_eq!(s.imports, read.imports);
    assert_eq!(s.dns, read.dns);
    assert_eq!(s.ipvs.egress, read.ipvs.egress);
    let real = &s.ipvs.egress[0].reals[0];
    assert_eq!((real.cluster.as_str(), real.port), ("cluster-1", 31104));
}

#[test]
fn a_wan_import_finds_its_exporter_by_wan_or_tunnel_address() {
    let by_wan = wan_imported("192.0.2.1", Some("high"), &[("http", 8080, Some(31100))]);
    let subnet = by_wan.allocations.class_subnets["default"];
    let inner = tunnel::inner_address(&subnet, 1).unwrap().to_string();
    let by_tunnel = wan_imported(&inner, Some("high"), &[("http", 8080, Some(31100))]);
    assert_eq!(by_wan.ipvs.egress, by_tunnel.ipvs.egress);
    assert_eq!(by_wan.ipvs.egress[0].reals[0].cluster, "cluster-1");
}

#[test]
fn a_wan_import_without_an_ingress_port_takes_a_single_port_policys() {
    let mut c = mk_catalog(2);
    for o in c.clusters.values_mut() {
        o.wan_policies
            .insert("solo".into(), mk_policy("solo", "solo", 31300, 1));
    }
    let import = mk_wan_import("192.0.2.1", Some("solo"), &[("http", 8080, None)]);
    objects(&mut c, "cluster-2")
        .wan_imports
        .insert(import.key.clone(), import);
    let s = plan(&c, "cluster-2");
    assert!(wan_import_problems(&s).is_empty(), "{:?}", s.problems);
    assert_eq!(s.ipvs.egress[0].reals[0].port, 31300);
}

#[test]
fn a_wan_import_that_cannot_be_planned_names_its_field_and_imports_nothing() {
    for (gw, policy, ports, field, says) in [
        (
            "203.0.113.9",
            Some("high"),
            vec![("http", 8080, Some(31100))],
            "spec.ingressGateway",
            "no gateway of the clusterset (gateways: cluster-1 192.0.2.1, cluster-2 192.0.2.2)",
        ),
        (
            "192.0.2.2",
            Some("high"),
            vec![("http", 8080, Some(31100))],
            "spec.ingressGateway",
            "this cluster's own gateway",
        ),
        (
            "192.0.2.1",
            Some("gold"),
            vec![("http", 8080, Some(31100))],
            "spec.wanPolicy",
            "\"gold\" does not exist; known policies: high, low",
        ),
        (
            "192.0.2.1",
            None,
            vec![("http", 8080, Some(31100))],
            "spec.wanPolicy",
            "no default WANPolicy",
        ),
        (
            "192.0.2.1",
            Some("high"),
            vec![("http", 8080, None)],
            "spec.ports[0].ingressPort",
            "owns several ingress ports (31100-31109)",
        ),
        (
            "192.0.2.1",
            Some("high"),
            vec![("http", 8080, Some(31200))],
            "spec.ports[0].ingressPort",
            "outside WANPolicy high's ingress ports 31100-31109",
        ),
        (
            "192.0.2.1",
            Some("high"),
            vec![("http", 8080, Some(31101)), ("grpc", 9090, Some(31101))],
            "spec.ports[1].ingressPort",
            "ingress port of service port 8080 too",
        ),
    ] {
        let s = wan_imported(gw, policy, &ports);
        let problems = wan_import_problems(&s);
        assert_eq!(problems.len(), 1, "{gw} {policy:?}: {problems:?}");
        assert!(
            problems[0].contains("WANImport secure/payment")
                && problems[0].contains(field)
                && problems[0].contains(says),
            "{problems:?} should name {field} and say {says:?}"
        );
        assert!(s.imports.is_empty() && s.dns.is_empty() && s.ipvs.egress.is_empty());
    }
}

#[test]
fn a_wan_import_of_a_service_the_exporter_is_read_exporting_changes_nothing() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    let without = plan(&c, "cluster-2");
    let import = mk_wan_import("192.0.2.1", Some("low"), &[("web", 80, Some(31200))]);
    objects(&mut c, "cluster-2")
        .wan_imports
        .insert(import.key.clone(), import);
    let with = plan(&c, "cluster-2");
    assert_eq!(with.imports, without.imports);
    assert_eq!(with.ipvs, without.ipvs);
    assert_eq!(with.problems, without.problems);
}

mod incremental;
mod wan_route;

#[test]
fn an_ingress_key_hashes_as_its_bytes_do() {
    for class in [None, Some("gold".to_owned())] {
        let key = IngressKey {
            service: ServiceKey::new("secure", "payment"),
            protocol: Protocol::Udp,
            port: 8443,
            class,
        };
        assert_eq!(key.fnv1a(), crate::alloc::fnv1a(&key.bytes()));
    }
    let key = IngressKey {
        service: ServiceKey::new("a", "b"),
        protocol: Protocol::Tcp,
        port: 80,
        class: Some("silver".into()),
    };
    assert_eq!(key.bytes(), b"a/b/TCP/80/silver");
}
