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
