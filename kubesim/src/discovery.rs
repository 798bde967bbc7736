//! Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/{g}/{v}`, `/version`) and a
//! minimal OpenAPI v3 index, built from the [`Registry`].
//!
//! Only the legacy (unaggregated) discovery format is served; clients that ask for
//! aggregated discovery fall back to it, as they do with older servers. The OpenAPI
//! documents declare each resource's operations and their `fieldValidation` parameter,
//! with a permissive schema (`x-kubernetes-preserve-unknown-fields`), so that
//! `kubectl apply` hands validation to the server, which accepts any fields.

use serde_json::{json, Value};

use crate::registry::Registry;
use crate::resource::ResourceType;

/// The `/version` document.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-kubesim",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "rust",
        "platform": "linux/amd64",
    })
}

/// The `/api` document.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_document(group: &str, versions: &[String]) -> Value {
    let entry = |v: &String| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({
        "name": group,
        "versions": versions.iter().map(entry).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(entry).unwrap_or(Value::Null),
    })
}

/// The `/apis` document.
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| group_document(group, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The `/apis/{group}` document, if the group is served.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let groups = registry.groups();
    let (group, versions) = groups.iter().find(|(g, _)| g == name && !g.is_empty())?;
    let mut document = group_document(group, versions);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

const OBJECT_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_entry(rt: &ResourceType) -> Value {
    json!({
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": OBJECT_VERBS,
        "shortNames": rt.short_names,
        "storageVersionHash": "",
    })
}

/// The resource list of a group version, if served.
pub fn resources(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for rt in registry.in_group_version(group, version) {
        resources.push(resource_entry(rt));
        if rt.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

fn openapi_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The `/openapi/v3` index: one document per served group version.
pub fn openapi_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let path = openapi_path(&group, &version);
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// The OpenAPI v3 document of one group version, if served.
pub fn openapi_group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for rt in registry.in_group_version(group, version) {
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        let schema_name = format!(
            "{}.{}.{}",
            if rt.group.is_empty() {
                "core"
            } else {
                &rt.group
            },
            rt.version,
            rt.kind
        );
        schemas.insert(
            schema_name.clone(),
            json!({
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": [gvk],
            }),
        );
        let field_validation = json!({
            "name": "fieldValidation", "in": "query", "schema": {"type": "string"}
        });
        let operation = |id: String| {
            json!({
                "operationId": id,
                "parameters": [field_validation],
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"content": {"application/json": {"schema": {
                    "$ref": format!("#/components/schemas/{schema_name}")
                }}}}},
            })
        };
        let scope = if rt.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let base = format!("/{}/{scope}{}", openapi_path(group, version), rt.plural);
        paths.insert(
            base.clone(),
            json!({"post": operation(format!("create{}", rt.kind))}),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "put": operation(format!("replace{}", rt.kind)),
                "patch": operation(format!("patch{}", rt.kind)),
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0-kubesim"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_list_named_groups_with_preferred_versions() {
        let registry = Registry::with_builtins();
        let doc = groups(&registry);
        let names: Vec<&str> = doc["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert!(names.contains(&"multicluster.x-k8s.io"));
        assert!(!names.contains(&""));
        let mcs = group(&registry, "multicluster.x-k8s.io").expect("served");
        assert_eq!(
            mcs["preferredVersion"]["groupVersion"],
            "multicluster.x-k8s.io/v1alpha1"
        );
    }

    #[test]
    fn resource_lists_include_status_subresources() {
        let registry = Registry::with_builtins();
        let doc = resources(&registry, "", "v1").expect("core served");
        let names: Vec<&str> = doc["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"services"));
        assert!(names.contains(&"services/status"));
        assert!(resources(&registry, "nope.io", "v1").is_none());
    }

    #[test]
    fn openapi_documents_cover_every_group_version() {
        let registry = Registry::with_builtins();
        let index = openapi_index(&registry);
        assert!(index["paths"]["api/v1"]["serverRelativeURL"].is_string());
        let doc = openapi_group_version(&registry, "mcw.l7mp.io", "v1alpha1").expect("served");
        assert!(doc["paths"]["/apis/mcw.l7mp.io/v1alpha1/wanpolicies/{name}"]["patch"].is_object());
    }
}
