//! The status of this cluster's ServiceExports (the MCS conditions Valid, Ready and Conflict)
//! and WANRoutes (Valid), as the desired state computed them, with `lastTransitionTime` kept from the object when a condition's
//! status did not change, and `observedGeneration` the object's `metadata.generation` they were
//! computed from. The write's hash leaves the time out, so a recompute that changes nothing
//! writes nothing; a new generation is a change even when the conditions stay.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::object::{Kind, ObjectId, Part, Write};
use crate::desired::{self, ExportStatus};
use crate::model::ServiceKey;

fn status_word(status: bool) -> &'static str {
    if status {
        "True"
    } else {
        "False"
    }
}

/// The status write of `export`, given the conditions the object carries now and its
/// `metadata.generation` (absent when the API server sets none).
pub fn export_status(
    export: &ExportStatus,
    observed: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Write {
    conditions_write(
        ObjectId::new(
            Kind::ServiceExport,
            Part::Status,
            &export.key.namespace,
            &export.key.name,
        ),
        "multicluster.x-k8s.io/v1alpha1",
        &export.conditions,
        observed,
        generation,
        now,
    )
}

/// The status write of the WANRoute `key`: its Valid condition.
pub fn wan_route_status(
    key: &ServiceKey,
    valid: &desired::Condition,
    observed: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Write {
    conditions_write(
        ObjectId::new(Kind::WanRoute, Part::Status, &key.namespace, &key.name),
        "mcw.l7mp.io/v1alpha1",
        std::slice::from_ref(valid),
        observed,
        generation,
        now,
    )
}

fn conditions_write(
    id: ObjectId,
    api_version: &str,
    desired: &[desired::Condition],
    observed: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Write {
    let mut basis = Vec::new();
    let mut conditions = Vec::new();
    for c in desired {
        let status = status_word(c.status);
        let mut value = json!({
            "type": c.type_,
            "status": status,
            "reason": c.reason,
            "message": c.message,
        });
        if let Some(generation) = generation {
            value["observedGeneration"] = json!(generation);
        }
        basis.push(value.clone());
        let since = observed
            .iter()
            .find(|o| o.type_ == c.type_ && o.status == status)
            .map(|o| o.last_transition_time.clone())
            .unwrap_or(Time(now));
        value["lastTransitionTime"] = serde_json::to_value(&since).unwrap_or(Value::Null);
        conditions.push(value);
    }
    let body = json!({
        "apiVersion": api_version,
        "kind": id.kind.as_str(),
        "metadata": {"name": id.name, "namespace": id.namespace},
        "status": {"conditions": conditions},
    });
    Write::with_basis(id, body, &Value::Array(basis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired;
    use crate::model::ServiceKey;

    fn export(valid: bool) -> ExportStatus {
        ExportStatus {
            key: ServiceKey::new("ns", "svc"),
            wan_policy: Some("gold".into()),
            tunnel: None,
            ingress: Vec::new(),
            conditions: vec![desired::Condition {
                type_: "Valid",
                status: valid,
                reason: if valid { "Valid" } else { "UnknownWANPolicy" },
                message: String::new(),
            }],
        }
    }

    fn observed(status: &str, at: &str) -> Vec<Condition> {
        vec![Condition {
            type_: "Valid".into(),
            status: status.into(),
            reason: "Valid".into(),
            message: String::new(),
            last_transition_time: Time(at.parse().unwrap()),
            observed_generation: None,
        }]
    }

    #[test]
    fn an_unchanged_condition_keeps_its_transition_time() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let w = export_status(
            &export(true),
            &observed("True", "2024-01-01T00:00:00Z"),
            Some(3),
            now,
        );
        assert_eq!(
            w.body["status"]["conditions"][0]["lastTransitionTime"],
            "2024-01-01T00:00:00Z"
        );
    }

    #[test]
    fn a_changed_condition_gets_a_new_transition_time() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let w = export_status(
            &export(false),
            &observed("True", "2024-01-01T00:00:00Z"),
            Some(3),
            now,
        );
        assert_eq!(
            w.body["status"]["conditions"][0]["lastTransitionTime"],
            "2030-01-01T00:00:00Z"
        );
        assert_eq!(w.body["status"]["conditions"][0]["status"], "False");
    }

    #[test]
    fn the_time_alone_is_not_a_change() {
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let a = export_status(&export(true), &[], Some(1), at("2030-01-01T00:00:00Z"));
        let b = export_status(&export(true), &[], Some(1), at("2031-01-01T00:00:00Z"));
        assert_eq!(a.hash, b.hash);
        assert_ne!(
            a.hash,
            export_status(&export(false), &[], Some(1), Timestamp::UNIX_EPOCH).hash
        );
    }

    #[test]
    fn conditions_carry_the_generation_they_were_computed_from() {
        let a = export_status(&export(true), &[], Some(1), Timestamp::UNIX_EPOCH);
        assert_eq!(a.body["status"]["conditions"][0]["observedGeneration"], 1);
        let b = export_status(&export(true), &[], Some(2), Timestamp::UNIX_EPOCH);
        assert_ne!(
            a.hash, b.hash,
            "a new generation is written even when nothing else moved"
        );
        let none = export_status(&export(true), &[], None, Timestamp::UNIX_EPOCH);
        assert!(none.body["status"]["conditions"][0]
            .get("observedGeneration")
            .is_none());
    }
}
