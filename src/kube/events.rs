//! Kubernetes Events for problems with this cluster's ServiceExports, Services and WANPolicies:
//! one `Warning` event when a problem first appears (it appears again if it goes away and
//! comes back). Events are best effort: one that cannot be written is logged and tried again
//! with the next desired state.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::snapshot::Observed;
use crate::problem::{Problem, Severity};

/// Longest note kube-apiserver accepts.
const MAX_NOTE: usize = 1024;

/// One Event to publish: about which object, why, and the note.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Intent {
    pub api_version: &'static str,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub reason: &'static str,
    pub note: String,
}

fn api_version(kind: &str) -> Option<&'static str> {
    match kind {
        "ServiceExport" => Some("multicluster.x-k8s.io/v1alpha1"),
        "WANPolicy" | "WANImport" | "WANRoute" => Some("mcw.l7mp.io/v1alpha1"),
        "Service" => Some("v1"),
        "EndpointSlice" => Some("discovery.k8s.io/v1"),
        _ => None,
    }
}

fn reason(problem: &Problem) -> &'static str {
    match (problem.object.kind.as_str(), problem.severity) {
        ("ServiceExport", Severity::Error) => "InvalidExport",
        ("ServiceExport", Severity::Warning) if problem.message.starts_with("conflict") => {
            "ExportConflict"
        }
        ("ServiceExport", Severity::Warning) => "ExportWarning",
        ("WANPolicy", _) => "InvalidWANPolicy",
        ("WANImport", _) => "InvalidWANImport",
        ("WANRoute", _) => "InvalidWANRoute",
        ("EndpointSlice", _) => "InvalidEndpointSlice",
        _ => "InvalidService",
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_NOTE {
        let mut end = MAX_NOTE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The events `cluster`'s problems call for: those about its ServiceExports, Services,
/// EndpointSlices and WANPolicies.
pub fn intents(cluster: &str, problems: &[Problem], observed: &Observed) -> Vec<Intent> {
    let mut out: Vec<Intent> = problems
        .iter()
        .filter(|p| p.cluster.as_deref() == Some(cluster))
        .filter_map(|p| {
            let api_version = api_version(&p.object.kind)?;
            let note = match &p.field {
                Some(f) => format!("field {f}: {}", p.message),
                None => p.message.clone(),
            };
            Some(Intent {
                api_version,
                kind: p.object.kind.clone(),
                namespace: p.object.namespace.clone(),
                name: p.object.name.clone(),
                uid: observed.uids.get(&p.object).cloned(),
                reason: reason(p),
                note: truncate(note),
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Publishes the events of every new intent until `cancel`.
pub async fn run(
    client: Client,
    cluster: String,
    mut intents: watch::Receiver<Arc<Vec<Intent>>>,
    cancel: CancellationToken,
) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "mcwan".into(),
            instance: Some(format!("mcwan-{cluster}")),
        },
    );
    let mut published: BTreeSet<Intent> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = intents.changed() => if changed.is_err() { return },
        }
        let current: Arc<Vec<Intent>> = intents.borrow_and_update().clone();
        published.retain(|i| current.contains(i));
        let new: Vec<Intent> = current
            .iter()
            .filter(|i| !published.contains(*i))
            .cloned()
            .collect();
        for intent in new {
            let reference = ObjectReference {
                api_version: Some(intent.api_version.to_owned()),
                kind: Some(intent.kind.clone()),
                namespace: intent.namespace.clone(),
                name: Some(intent.name.clone()),
                uid: intent.uid.clone(),
                ..Default::default()
            };
            let event = Event {
                type_: EventType::Warning,
                reason: intent.reason.to_owned(),
                note: Some(intent.note.clone()),
                action: "Reconcile".to_owned(),
                secondary: None,
            };
            let object = format!(
                "{} {}{}",
                intent.kind,
                intent
                    .namespace
                    .as_ref()
                    .map(|n| format!("{n}/"))
                    .unwrap_or_default(),
                intent.name
            );
            match tokio::time::timeout(
                super::writer::CALL_TIMEOUT,
                recorder.publish(&event, &reference),
            )
            .await
            {
                Ok(Ok(())) => {
                    debug!(object, reason = intent.reason, "event published");
                    published.insert(intent);
                }
                Ok(Err(e)) => warn!(object, reason = intent.reason, "event not published: {e}"),
                Err(_) => warn!(
                    object,
                    reason = intent.reason,
                    "event not published: timed out"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceKey;
    use crate::problem::ObjectRef;

    #[test]
    fn an_unknown_wan_policy_becomes_an_invalid_export_event_naming_the_field() {
        let problem = Problem::error(
            Some("cluster-1"),
            ObjectRef::namespaced("ServiceExport", &ServiceKey::new("ns", "svc")),
            Some("metadata.annotations[\"mcw.l7mp.io/mc-wan-policy\"]"),
            "WANPolicy \"gold\" does not exist (or is invalid) in this cluster".into(),
        );
        let out = intents(
            "cluster-1",
            std::slice::from_ref(&problem),
            &Observed::default(),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].reason, "InvalidExport");
        assert!(out[0].note.starts_with("field metadata.annotations"));
        assert!(intents("cluster-2", &[problem], &Observed::default()).is_empty());
    }

    #[test]
    fn a_bad_endpoint_slice_becomes_an_event_on_the_slice() {
        let problem = Problem::error(
            Some("cluster-1"),
            ObjectRef::namespaced("EndpointSlice", &ServiceKey::new("ns", "svc-x7k2p")),
            Some("endpoints[0].addresses[0]"),
            "\"10.0.0\" is not an IP address".into(),
        );
        let out = intents("cluster-1", &[problem], &Observed::default());
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].api_version, out[0].reason),
            ("discovery.k8s.io/v1", "InvalidEndpointSlice")
        );
        assert!(out[0].note.starts_with("field endpoints[0].addresses[0]"));
    }

    #[test]
    fn problems_of_other_kinds_make_no_event() {
        let problem = Problem::error(
            None,
            ObjectRef::cluster_scoped("ClusterSet cluster", "x"),
            None,
            "bad".into(),
        );
        assert!(intents("x", &[problem], &Observed::default()).is_empty());
    }
}
