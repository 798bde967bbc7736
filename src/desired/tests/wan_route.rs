//! WANRoutes in the desired state: checked against the exporting cluster, attached to imports.

use super::*;

fn seed_route(low: &str) -> WanRoute {
    WanRoute {
        key: key("payment"),
        rules: vec![
            HttpRule {
                matches: vec![HttpMatch {
                    method: Some("GET".into()),
                    path: Some(PathMatch::PathPrefix("/payment".into())),
                    headers: vec![],
                }],
                action: RouteAction::WanPolicy("high".into()),
            },
            HttpRule {
                matches: vec![HttpMatch {
                    path: Some(PathMatch::PathPrefix("/stats".into())),
                    ..HttpMatch::default()
                }],
                action: RouteAction::WanPolicy(low.into()),
            },
        ],
        default: RouteAction::Deny,
    }
}

fn route_problems(s: &DesiredState) -> Vec<&Problem> {
    s.problems
        .iter()
        .filter(|p| p.object.kind == "WANRoute")
        .collect()
}

fn import_of<'a>(s: &'a DesiredState, name: &str) -> &'a Import {
    s.imports.iter().find(|i| i.key == key(name)).unwrap()
}

#[test]
fn an_importer_gets_the_exporters_rules_and_each_class_s_ingress() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    objects(&mut c, "cluster-1")
        .wan_routes
        .insert(key("payment"), seed_route("low"));
    let s = plan(&c, "cluster-2");
    assert!(route_problems(&s).is_empty(), "{:?}", s.problems);
    let http = import_of(&s, "payment").http.as_ref().unwrap();
    assert_eq!(http.source, "cluster-1");
    assert_eq!(http.rules, seed_route("low").rules);
    assert_eq!(http.default, RouteAction::Deny);
    let classes: Vec<(&str, &str)> = http
        .classes
        .iter()
        .map(|c| (c.wan_policy.as_str(), c.tunnel.as_str()))
        .collect();
    assert_eq!(classes, [("high", "business"), ("low", "default")]);
    // The export's own class reaches cluster-1's gateway at the ingress port IPVS would use...
    let own = export_status(&plan(&c, "cluster-1"), "payment").clone();
    let port_of = |class: Option<&str>| {
        own.ingress
            .iter()
            .find(|i| i.class.as_deref() == class)
            .map(|i| i.ingress_port)
            .unwrap()
    };
    let high = &http.classes[0];
    assert_eq!(high.backends.len(), 1);
    assert_eq!(high.backends[0].cluster, "cluster-1");
    assert_eq!(high.backends[0].service_port, 8080);
    assert_eq!(high.backends[0].port, port_of(None));
    assert!((31100..31110).contains(&high.backends[0].port));
    // ...and the other class at the ingress port cluster-1 allocated in that class's range.
    let low = &http.classes[1];
    assert!(low.without_ingress.is_empty());
    assert_eq!(low.backends.len(), 1);
    assert_eq!(low.backends[0].cluster, "cluster-1");
    assert_eq!(low.backends[0].port, port_of(Some("default")));
    assert_ne!(low.backends[0].port, high.backends[0].port);
    // The proxy listens on the ClusterSetIP's TCP port: IPVS no longer has it.
    assert!(!s.ipvs.egress.iter().any(|v| v.service == key("payment")));
}

#[test]
fn the_exporter_serves_each_routed_class_on_that_class_s_address_and_range() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    objects(&mut c, "cluster-1")
        .wan_routes
        .insert(key("payment"), seed_route("low"));
    let s = plan(&c, "cluster-1");
    let ingress: Vec<&VirtualServer> = s
        .ipvs
        .ingress
        .iter()
        .filter(|v| v.service == key("payment"))
        .collect();
    assert_eq!(ingress.len(), 2, "{ingress:?}");
    let class_of = |vs: &VirtualServer| {
        s.tunnels
            .classes
            .iter()
            .find(|c| {
                c.local_address == vs.address
                    && (c.ingress_ports.0..=c.ingress_ports.1).contains(&vs.port)
            })
            .map(|c| c.class.clone())
    };
    let mut classes: Vec<Option<String>> = ingress.iter().map(|v| class_of(v)).collect();
    classes.sort();
    assert_eq!(classes, [Some("business".into()), Some("default".into())]);
    // The same ready pods behind both.
    assert_eq!(ingress[0].reals, ingress[1].reals);
    assert!(!ingress[0].reals.is_empty());
    // Without the route, only the export's own class.
    objects(&mut c, "cluster-1").wan_routes.clear();
    let s = plan(&c, "cluster-1");
    assert_eq!(
        s.ipvs
            .ingress
            .iter()
            .filter(|v| v.service == key("payment"))
            .count(),
        1
    );
    assert!(export_status(&s, "payment")
        .ingress
        .iter()
        .all(|i| i.class.is_none()));
}

#[test]
fn a_service_without_rules_stays_on_ipvs() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    export_payment(&mut c, "cluster-1", "ledger", "high", None);
    objects(&mut c, "cluster-1")
        .wan_routes
        .insert(key("payment"), seed_route("low"));
    let s = plan(&c, "cluster-2");
    assert!(s.ipvs.egress.iter().any(|v| v.service == key("ledger")));
    assert!(import_of(&s, "ledger").http.is_none());
}

#[test]
fn a_route_naming_an_unknown_policy_is_ignored_and_names_the_field() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    export_payment(&mut c, "cluster-1", "ledger", "high", None);
    objects(&mut c, "cluster-1")
        .wan_routes
        .insert(key("payment"), seed_route("internet"));
    let s = plan(&c, "cluster-2");
    let problems = route_problems(&s);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = problems[0];
    assert_eq!(p.severity, Severity::Error);
    assert_eq!(p.cluster.as_deref(), Some("cluster-1"));
    assert_eq!(p.object.to_string(), "WANRoute secure/payment");
    assert_eq!(p.field.as_deref(), Some("spec.http.rules[1].wanPolicy"));
    assert!(p.message.contains("\"internet\""), "{}", p.message);
    // The service is still imported, carried whole over its export's class, as is the rest.
    assert!(import_of(&s, "payment").http.is_none());
    assert!(import_of(&s, "payment").vip.is_some());
    assert!(import_of(&s, "ledger").vip.is_some());
}

#[test]
fn a_route_for_a_service_that_is_not_exported_is_reported() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "ledger", "high", None);
    objects(&mut c, "cluster-1")
        .wan_routes
        .insert(key("payment"), seed_route("low"));
    let s = plan(&c, "cluster-2");
    let problems = route_problems(&s);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].object.to_string(), "WANRoute secure/payment");
    assert_eq!(problems[0].field, None);
    assert!(
        problems[0].message.contains("not exported"),
        "{}",
        problems[0].message
    );
    assert!(import_of(&s, "ledger").http.is_none());
}

#[test]
fn exporters_that_disagree_are_warned_and_the_first_cluster_s_rules_win() {
    let mut c = mk_catalog(3);
    for cluster in ["cluster-1", "cluster-2"] {
        export_payment(&mut c, cluster, "payment", "high", None);
    }
    objects(&mut c, "cluster-1")
        .wan_routes
        .insert(key("payment"), seed_route("low"));
    let mut other = seed_route("low");
    other.default = RouteAction::WanPolicy("low".into());
    objects(&mut c, "cluster-2")
        .wan_routes
        .insert(key("payment"), other);
    let s = plan(&c, "cluster-3");
    let problems = route_problems(&s);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert_eq!(problems[0].cluster.as_deref(), Some("cluster-2"));
    let http = import_of(&s, "payment").http.as_ref().unwrap();
    assert_eq!(http.source, "cluster-1");
    assert_eq!(http.default, RouteAction::Deny);
    // Both exporters export over "high": both gateways take its requests.
    let clusters: Vec<&str> = http.classes[0]
        .backends
        .iter()
        .map(|b| b.cluster.as_str())
        .collect();
    assert_eq!(clusters, ["cluster-1", "cluster-2"]);
}

#[test]
fn the_valid_condition_says_why_a_route_is_unusable() {
    let mut c = mk_catalog(2);
    export_payment(&mut c, "cluster-1", "payment", "high", None);
    objects(&mut c, "cluster-1")
        .wan_routes
        .insert(key("payment"), seed_route("internet"));
    objects(&mut c, "cluster-1").wan_routes.insert(
        key("ledger"),
        WanRoute {
            key: key("ledger"),
            ..seed_route("low")
        },
    );
    let s = plan(&c, "cluster-1");
    let unknown = wan_route_condition("cluster-1", &key("payment"), &s.problems);
    assert!(!unknown.status);
    assert_eq!(unknown.reason, "UnknownWANPolicy");
    assert!(
        unknown
            .message
            .starts_with("spec.http.rules[1].wanPolicy: WANPolicy \"internet\""),
        "{}",
        unknown.message
    );
    let not_exported = wan_route_condition("cluster-1", &key("ledger"), &s.problems);
    assert_eq!(not_exported.reason, "NotExported");

    objects(&mut c, "cluster-1")
        .wan_routes
        .insert(key("payment"), seed_route("low"));
    let s = plan(&c, "cluster-1");
    let valid = wan_route_condition("cluster-1", &key("payment"), &s.problems);
    assert!(valid.status);
    assert_eq!(valid.reason, "Valid");
}
