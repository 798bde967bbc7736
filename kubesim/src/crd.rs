//! CustomResourceDefinitions: creating one serves its resource, deleting it stops
//! serving it.

use serde_json::{json, Value};

use crate::resource::ResourceType;

/// The resource types a CRD object defines, one per served version.
pub fn resource_types(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let group = text(&spec["group"]);
    let names = &spec["names"];
    let plural = text(&names["plural"]);
    let kind = text(&names["kind"]);
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let singular = match text(&names["singular"]) {
        s if s.is_empty() => kind.to_ascii_lowercase(),
        s => s,
    };
    let short_names: Vec<String> = names["shortNames"]
        .as_array()
        .map(|list| list.iter().map(text).collect())
        .unwrap_or_default();
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool().unwrap_or(true))
        .map(|v| ResourceType {
            group: group.clone(),
            version: text(&v["name"]),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            status_subresource: v.pointer("/subresources/status").is_some(),
            short_names: short_names.clone(),
        })
        .filter(|rt| !rt.version.is_empty())
        .collect()
}

/// Why kube-apiserver refuses `crd`, a CRD of a protected API group (`k8s.io`,
/// `kubernetes.io` and their subdomains, KEP-1111) without the `api-approved.kubernetes.io`
/// annotation; `None` when it does not.
pub fn unapproved(crd: &Value) -> Option<String> {
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|p| group == *p || group.strip_suffix(p).is_some_and(|g| g.ends_with('.')));
    let annotation = &crd["metadata"]["annotations"]["api-approved.kubernetes.io"];
    let approved = annotation.as_str().is_some_and(|a| !a.is_empty());
    (protected && !approved).then(|| {
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must \
         have approval annotation \"api-approved.kubernetes.io\", see \
         https://github.com/kubernetes/enhancements/pull/1111"
            .to_owned()
    })
}

/// The status kube-apiserver reports once a CRD is served.
pub fn status(crd: &Value) -> Value {
    let now = crate::meta::now();
    let condition = |kind: &str, reason: &str| {
        json!({
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": "",
            "lastTransitionTime": now,
        })
    };
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool().unwrap_or(false))
        .map(|v| v["name"].clone())
        .collect();
    json!({
        "acceptedNames": crd["spec"]["names"],
        "conditions": [
            condition("NamesAccepted", "NoConflicts"),
            condition("Established", "InitialNamesAccepted"),
        ],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_of_protected_groups_need_the_approval_annotation() {
        let crd = |group: &str, annotations: Value| json!({"metadata": {"annotations": annotations}, "spec": {"group": group}});
        let approved = json!({"api-approved.kubernetes.io": "https://github.com/kubernetes/enhancements/pull/3084"});
        assert!(unapproved(&crd("about.k8s.io", json!({}))).is_some());
        assert!(unapproved(&crd("k8s.io", json!(null))).is_some());
        assert!(unapproved(&crd("x.kubernetes.io", json!({}))).is_some());
        assert_eq!(unapproved(&crd("about.k8s.io", approved)), None);
        assert_eq!(unapproved(&crd("multicluster.x-k8s.io", json!({}))), None);
        assert_eq!(unapproved(&crd("mcw.l7mp.io", json!({}))), None);
    }

    #[test]
    fn served_versions_become_resource_types() {
        let crd = json!({"spec": {
            "group": "example.io",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "scope": "Cluster",
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                {"name": "v0", "served": false, "storage": false}
            ]
        }});
        let types = resource_types(&crd);
        assert_eq!(types.len(), 1);
        let rt = &types[0];
        assert_eq!(rt.api_version(), "example.io/v1");
        assert!(!rt.namespaced);
        assert!(rt.status_subresource);
        assert_eq!(rt.singular, "widget");
        assert_eq!(status(&crd)["storedVersions"], json!(["v1"]));
    }
}
