//! WANRoute in Kubernetes mode: a rule naming a WAN policy the cluster does not have is
//! reported as a Warning Event on the WANRoute naming the field, and the service is imported
//! all the same (carried whole over its export's class).

use serde_json::json;

use crate::support::*;

crate::on_both_api_servers!(
    a_wan_route_naming_an_unknown_policy_is_a_warning_event_naming_the_field
);

async fn a_wan_route_naming_an_unknown_policy_is_a_warning_event_naming_the_field(
    backend: Backend,
) {
    let cs = Clusterset::start(backend, 2).await;
    export_service(cs.api(0), "shop", "cart").await;
    cs.api(0)
        .create(json!({
            "apiVersion": "mcw.l7mp.io/v1alpha1",
            "kind": "WANRoute",
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {"http": {
                "rules": [
                    {"matches": [{"method": "GET", "path": {"type": "PathPrefix", "value": "/cart"}}],
                     "wanPolicy": "gold"},
                    {"matches": [{"path": {"value": "/stats"}}], "wanPolicy": "platinum"},
                ],
                "default": {"deny": true},
            }},
        }))
        .await;
    let event = cs
        .wait_for_event(0, "shop", "cart", "InvalidWANRoute")
        .await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["regarding"]["kind"], "WANRoute");
    assert_eq!(event["regarding"]["apiVersion"], "mcw.l7mp.io/v1alpha1");
    assert!(event["regarding"]["uid"].is_string());
    let note = event["note"].as_str().unwrap();
    assert!(
        note.contains("spec.http.rules[1].wanPolicy") && note.contains("platinum"),
        "{note}"
    );
    // The rest is unaffected: cluster-2 imports the service.
    cs.wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |_| true)
        .await;
}
