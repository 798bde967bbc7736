//! ServiceExport conditions and Events: invalid exports and conflicts, as MCS defines them.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

crate::on_both_api_servers!(
    an_unknown_wan_policy_is_valid_false_naming_it_and_a_warning_event,
    conflicting_exports_are_flagged_on_every_export_and_the_oldest_wins,
    a_plain_mcs_export_takes_the_default_wan_policy,
);

/// A ServiceExport as the MCS API examples write it (no mcw.l7mp.io annotation) takes the
/// cluster's only WANPolicy; with two and none marked it says what to do; marking one
/// `mcw.l7mp.io/is-default-policy: "true"` makes it the default.
/// The message of `shop/cart`'s Valid condition in cluster-1, once its status is `status`.
async fn valid_message(cs: &Clusterset, status: &str) -> String {
    let export = cs
        .wait_for_object(0, MCS, "serviceexports", Some("shop"), "cart", |e| {
            condition_is(e, "Valid", status)
        })
        .await;
    condition(&export, "Valid").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_plain_mcs_export_takes_the_default_wan_policy(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    let api = cs.api(0);
    api.create(mk_service("shop", "cart", &[("http", 80)]))
        .await;
    api.create(mk_slice(
        "shop",
        "cart",
        &[("a", "10.1.0.1")],
        &[("http", 8080)],
    ))
    .await;
    api.create(mk_export("shop", "cart", None)).await;
    let message = valid_message(&cs, "True").await;
    assert!(
        message.contains("WANPolicy gold") && message.contains("the only WANPolicy"),
        "{message}"
    );
    cs.wait_for_object(1, MCS, "serviceimports", Some("shop"), "cart", |_| true)
        .await;

    // A second policy, none marked: which one is meant is not known, and the export says how
    // to tell.
    api.create(mk_policy("silver", "silver", 32000, 100)).await;
    let message = valid_message(&cs, "False").await;
    assert!(
        message.contains("mcw.l7mp.io/is-default-policy"),
        "{message}"
    );

    // Marked default: silver carries it.
    let mut silver = mk_policy("silver", "silver", 32000, 100);
    silver["metadata"]["annotations"] = json!({"mcw.l7mp.io/is-default-policy": "true"});
    api.apply(silver, "test").await;
    let message = valid_message(&cs, "True").await;
    assert!(
        message.contains("WANPolicy silver") && message.contains("marked"),
        "{message}"
    );
}

async fn an_unknown_wan_policy_is_valid_false_naming_it_and_a_warning_event(backend: Backend) {
    let cs = Clusterset::start(backend, 2).await;
    let api = cs.api(0);
    api.create(mk_service("shop", "cart", &[("http", 80)]))
        .await;
    api.create(mk_export("shop", "cart", Some("platinum")))
        .await;

    let export = cs
        .wait_for_object(0, MCS, "serviceexports", Some("shop"), "cart", |e| {
            condition_is(e, "Valid", "False")
        })
        .await;
    let valid = condition(&export, "Valid").unwrap();
    assert_eq!(valid["reason"], "UnknownWANPolicy");
    let message = valid["message"].as_str().unwrap();
    assert!(message.contains("platinum"), "{message}");
    assert!(message.contains("mcw.l7mp.io/mc-wan-policy"), "{message}");
    assert!(condition_is(&export, "Ready", "False"));

    let event = cs.wait_for_event(0, "shop", "cart", "InvalidExport").await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["regarding"]["kind"], "ServiceExport");
    assert!(event["note"].as_str().unwrap().contains("platinum"));
    assert!(event["regarding"]["uid"].is_string());

    // Nothing is imported from an invalid export.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(cs
        .api(1)
        .get(MCS, "serviceimports", Some("shop"), "cart")
        .await
        .is_none());
}

fn ports(import: &Value) -> Vec<u64> {
    import["spec"]["ports"]
        .as_array()
        .expect("spec.ports is a list")
        .iter()
        .map(|p| p["port"].as_u64().expect("a numeric port"))
        .collect()
}

async fn conflicting_exports_are_flagged_on_every_export_and_the_oldest_wins(backend: Backend) {
    let cs = Clusterset::start(backend, 3).await;
    // cluster-2 exports first (port 80), cluster-1 later with another port under the same name.
    let older = cs.api(1);
    older
        .create(mk_service("shop", "api", &[("http", 80)]))
        .await;
    older.create(mk_export("shop", "api", Some("gold"))).await;
    // creationTimestamp has second precision.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let newer = cs.api(0);
    newer
        .create(mk_service("shop", "api", &[("http", 8080)]))
        .await;
    newer.create(mk_export("shop", "api", Some("gold"))).await;

    for i in [0, 1] {
        let export = cs
            .wait_for_object(i, MCS, "serviceexports", Some("shop"), "api", |e| {
                condition_is(e, "Conflict", "True")
            })
            .await;
        let conflict = condition(&export, "Conflict").unwrap();
        assert_eq!(conflict["reason"], "PortConflict");
        let message = conflict["message"].as_str().unwrap();
        assert!(message.contains("cluster cluster-2"), "{message}");
    }
    let import = cs
        .wait_for_object(2, MCS, "serviceimports", Some("shop"), "api", |_| true)
        .await;
    assert_eq!(
        ports(&import),
        [80],
        "the oldest export's port definition wins"
    );
}
