//! WANRoute in Kubernetes mode: a rule naming a WAN policy the cluster does not have is
//! reported as a Warning Event on the WANRoute and as its Valid condition, both naming the
//! field, and the service is imported all the same (carried whole over its export's class);
//! once fixed, the WANRoute is Valid. A usable WANRoute makes the exporter publish an ingress
//! slice per other class it names, and the importer's proxy routes that class's requests to
//! the port published there.

use serde_json::{json, Value};

use crate::support::*;

crate::on_both_api_servers!(
    a_wan_route_naming_an_unknown_policy_is_a_warning_event_naming_the_field,
    each_class_a_wan_route_names_is_published_and_the_importer_routes_to_it
);

const MCW: &str = "mcw.l7mp.io/v1alpha1";

fn wan_route(stats_policy: &str) -> Value {
    json!({
        "apiVersion": MCW,
        "kind": "WANRoute",
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"http": {
            "rules": [
                {"matches": [{"method": "GET", "path": {"type": "PathPrefix", "value": "/cart"}}],
                 "wanPolicy": "gold"},
                {"matches": [{"path": {"value": "/stats"}}], "wanPolicy": stats_policy},
            ],
            "default": {"deny": true},
        }},
    })
}

async fn a_wan_route_naming_an_unknown_policy_is_a_warning_event_naming_the_field(
    backend: Backend,
) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;
    // The gateway watches ServiceExports and WANRoutes on separate streams: a WANRoute seen
    // before its export is (rightly) reported as naming a service not exported here. Wait
    // until the gateway has written the export's condition, so the event is the policy's.
    cs.wait_for_object(0, MCS, "serviceexports", Some("shop"), "cart", |e| {
        condition_is(e, "Valid", "True")
    })
    .await;
    cs.api(0).create(wan_route("platinum")).await;
    let event = cs
        .wait_for_event(0, "shop", "cart", "InvalidWANRoute")
        .await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["regarding"]["kind"], "WANRoute");
    assert_eq!(event["regarding"]["apiVersion"], MCW);
    assert!(event["regarding"]["uid"].is_string());
    let note = event["note"].as_str().unwrap();
    assert!(
        note.contains("spec.http.rules[1].wanPolicy") && note.contains("platinum"),
        "{note}"
    );
    let route = cs
        .wait_for_object(0, MCW, "wanroutes", Some("shop"), "cart", |r| {
            condition_is(r, "Valid", "False")
        })
        .await;
    let valid = condition(&route, "Valid").unwrap();
    assert_eq!(valid["reason"], "UnknownWANPolicy");
    let message = valid["message"].as_str().unwrap();
    assert!(
        message.starts_with("spec.http.rules[1].wanPolicy: "),
        "{message}"
    );
    assert!(valid["observedGeneration"].is_number());
    // The rest is unaffected: cluster-2 imports the service.
    cs.wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |_| true)
        .await;

    cs.api(0).apply(wan_route("gold"), "mcwan-tests").await;
    let route = cs
        .wait_for_object(0, MCW, "wanroutes", Some("shop"), "cart", |r| {
            condition_is(r, "Valid", "True")
        })
        .await;
    assert_eq!(condition(&route, "Valid").unwrap()["reason"], "Valid");
}

async fn each_class_a_wan_route_names_is_published_and_the_importer_routes_to_it(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    for i in 0..2 {
        cs.api(i)
            .create(mk_policy("bronze", "bronze", 32000, 100))
            .await;
    }
    export_service(cs.api(0), "shop", "cart").await;
    cs.api(0).create(wan_route("bronze")).await;
    // cluster-1 publishes its export's own class, and bronze in a slice of its own.
    let slice = cs
        .wait_for_object(
            0,
            "discovery.k8s.io/v1",
            "endpointslices",
            Some("shop"),
            "cart-mcwan-cluster-1-bronze",
            |_| true,
        )
        .await;
    let annotations = &slice["metadata"]["annotations"];
    assert_eq!(annotations["mcw.l7mp.io/route-class"], "bronze");
    assert_eq!(annotations["mcw.l7mp.io/tunnel-class"], "bronze");
    assert_eq!(slice["metadata"]["labels"]["mcw.l7mp.io/slice"], "ingress");
    assert_eq!(slice["ports"][0]["name"], "http");
    let port = slice["ports"][0]["port"].as_u64().unwrap();
    assert!((32000..32100).contains(&port), "{slice:#}");
    let own = cs
        .wait_for_object(
            0,
            "discovery.k8s.io/v1",
            "endpointslices",
            Some("shop"),
            "cart-mcwan-cluster-1",
            |_| true,
        )
        .await;
    assert!(own["metadata"]["annotations"]
        .get("mcw.l7mp.io/route-class")
        .is_none());
    // cluster-2's gateway takes the rules, and sends bronze's requests to that port.
    let http = cs
        .wait_for("cluster-2's proxy of shop/cart", || async {
            let status: Value = serde_json::from_str(&cs.admin_get(1, "/status").await?).ok()?;
            let import = status["state"]["imports"]
                .as_array()?
                .iter()
                .find(|i| i["key"]["name"] == "cart")?
                .clone();
            let http = import.get("http")?.clone();
            let bronze = http["classes"]
                .as_array()?
                .iter()
                .find(|c| c["wan_policy"] == "bronze")?;
            (!bronze["backends"].as_array()?.is_empty()).then_some(http)
        })
        .await;
    let bronze = http["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["wan_policy"] == "bronze")
        .unwrap();
    assert_eq!(bronze["backends"][0]["cluster"], "cluster-1");
    assert_eq!(bronze["backends"][0]["port"], port);
    assert_eq!(
        bronze["backends"][0]["address"],
        slice["endpoints"][0]["addresses"][0]
    );
    assert_eq!(http["default"], "deny");
}
