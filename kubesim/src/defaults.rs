//! Per-kind defaulting done by the server on every write, as kube-apiserver's
//! registry strategies do for the kinds mcwan reads.
//!
//! - Service: `type: ClusterIP`, a ClusterIP allocated from the configured range
//!   (kept across updates), `clusterIPs`, single-stack IPv4, `sessionAffinity: None`,
//!   `internalTrafficPolicy: Cluster`, ports default to TCP and `targetPort = port`.
//! - Namespace: the `kubernetes.io/metadata.name` label and `status.phase`.
//! - CustomResourceDefinition: `Established` and `NamesAccepted` conditions.

use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};

use crate::crd;
use crate::resource::ResourceType;
use crate::store::State;

/// Default `object` (the state about to be stored) of type `rt`; `old` is the stored
/// state it replaces, if any.
pub fn apply(state: &mut State, rt: &ResourceType, object: &mut Value, old: Option<&Value>) {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => service(state, object, old),
        ("", "namespaces") => namespace(object),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            // A write that changes neither names nor versions keeps the status (and so leaves
            // an unchanged CRD unchanged, as kube-apiserver does).
            let fresh = crd::status(object);
            object["status"] = match old.map(|o| &o["status"]) {
                Some(kept)
                    if kept["acceptedNames"] == fresh["acceptedNames"]
                        && kept["storedVersions"] == fresh["storedVersions"] =>
                {
                    kept.clone()
                }
                _ => fresh,
            };
        }
        _ => {}
    }
}

fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(child) => child,
        _ => unreachable!("entry was just made an object"),
    }
}

fn service(state: &mut State, object: &mut Value, old: Option<&Value>) {
    let Value::Object(root) = object else {
        return;
    };
    let spec = child(root, "spec");
    let kind = spec
        .entry("type")
        .or_insert_with(|| json!("ClusterIP"))
        .as_str()
        .unwrap_or("ClusterIP")
        .to_owned();
    spec.entry("sessionAffinity")
        .or_insert_with(|| json!("None"));
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            port.entry("protocol").or_insert_with(|| json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                port.entry("targetPort").or_insert(number);
            }
        }
    }
    if kind == "ExternalName" {
        return;
    }
    spec.entry("internalTrafficPolicy")
        .or_insert_with(|| json!("Cluster"));
    let current = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let cluster_ip = if !current.is_empty() {
        current
    } else if let Some(kept) = old
        .and_then(|o| o.pointer("/spec/clusterIP"))
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
    {
        kept.to_owned()
    } else {
        allocate(state).to_string()
    };
    spec.insert("clusterIP".into(), json!(cluster_ip));
    spec.insert("clusterIPs".into(), json!([cluster_ip]));
    spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
    spec.entry("ipFamilyPolicy")
        .or_insert_with(|| json!("SingleStack"));
    let status = child(root, "status");
    status.entry("loadBalancer").or_insert_with(|| json!({}));
}

fn allocate(state: &mut State) -> Ipv4Addr {
    let offset = state.next_service_ip;
    state.next_service_ip = state.next_service_ip.wrapping_add(1);
    Ipv4Addr::from(u32::from(state.config.service_cidr_base).wrapping_add(offset))
}

fn namespace(object: &mut Value) {
    let name = crate::meta::meta_str(object, "name").to_owned();
    let terminating = object.pointer("/metadata/deletionTimestamp").is_some();
    let Value::Object(root) = object else {
        return;
    };
    let meta = child(root, "metadata");
    child(meta, "labels").insert("kubernetes.io/metadata.name".into(), json!(name));
    let phase = if terminating { "Terminating" } else { "Active" };
    child(root, "status").insert("phase".into(), json!(phase));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use crate::store::Store;

    fn svc_type() -> ResourceType {
        ResourceType::namespaced("", "v1", "Service", "services")
    }

    #[test]
    fn services_get_cluster_ips_and_port_defaults() {
        let store = Store::new(SimConfig::default());
        let mut state = store.lock();
        let mut svc = json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}});
        apply(&mut state, &svc_type(), &mut svc, None);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);

        let mut update = json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 81}]}});
        apply(&mut state, &svc_type(), &mut update, Some(&svc));
        assert_eq!(update["spec"]["clusterIP"], "10.96.0.10");
    }

    #[test]
    fn headless_services_keep_none() {
        let store = Store::new(SimConfig::default());
        let mut state = store.lock();
        let mut svc = json!({"metadata": {"name": "a"}, "spec": {"clusterIP": "None"}});
        apply(&mut state, &svc_type(), &mut svc, None);
        assert_eq!(svc["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn namespaces_are_labelled_and_active() {
        let store = Store::new(SimConfig::default());
        let mut state = store.lock();
        let rt = ResourceType::cluster("", "v1", "Namespace", "namespaces");
        let mut ns = json!({"metadata": {"name": "team"}});
        apply(&mut state, &rt, &mut ns, None);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team"
        );
        assert_eq!(ns["status"]["phase"], "Active");
    }
}
