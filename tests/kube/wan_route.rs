//! WANRoute in Kubernetes mode: a rule naming a WAN policy the cluster does not have is
//! reported as a Warning Event on the WANRoute and as its Valid condition, both naming the
//! field, and the service is imported all the same (carried whole over its export's class);
//! once fixed, the WANRoute is Valid.

use serde_json::{json, Value};

use crate::support::*;

crate::on_both_api_servers!(
    a_wan_route_naming_an_unknown_policy_is_a_warning_event_naming_the_field
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
