//! Field sets: which fields of an object a manager owns, in the `FieldsV1` encoding
//! of `metadata.managedFields`.
//!
//! A field set is a set of paths to leaves. Maps are tracked key by key; lists are
//! atomic (a list is one leaf), where kube-apiserver tracks associative lists item by
//! item.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One path from the object root to an owned leaf, for instance `["spec", "ports"]`.
pub type FieldPath = Vec<String>;

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `.status` is out of scope when it is a subresource.
    Object {
        /// Whether the kind serves a status subresource.
        status_subresource: bool,
    },
    /// The `status` subresource: only `.status`.
    Status,
}

impl Scope {
    /// Whether a top-level field belongs to this scope.
    pub fn covers(self, top_level: &str) -> bool {
        match self {
            Scope::Object { status_subresource } => !(status_subresource && top_level == "status"),
            Scope::Status => top_level == "status",
        }
    }

    /// The `subresource` recorded in managed fields entries.
    pub fn subresource(self) -> Option<&'static str> {
        match self {
            Scope::Object { .. } => None,
            Scope::Status => Some("status"),
        }
    }
}

/// Metadata fields the server owns; no manager ever owns them.
const SERVER_METADATA: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// A set of owned leaf paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    paths: BTreeSet<FieldPath>,
}

impl FieldSet {
    /// The fields an applied configuration sets, within `scope`.
    pub fn of_object(object: &Value, scope: Scope) -> Self {
        let mut set = FieldSet::default();
        let Value::Object(map) = object else {
            return set;
        };
        for (key, value) in map {
            if key == "apiVersion" || key == "kind" || !scope.covers(key) {
                continue;
            }
            let mut path = vec![key.clone()];
            if key == "metadata" {
                if let Value::Object(meta) = value {
                    for (field, value) in meta {
                        if !SERVER_METADATA.contains(&field.as_str()) {
                            path.push(field.clone());
                            set.collect(&mut path, value);
                            path.pop();
                        }
                    }
                }
                continue;
            }
            set.collect(&mut path, value);
        }
        set
    }

    fn collect(&mut self, path: &mut FieldPath, value: &Value) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    path.push(key.clone());
                    self.collect(path, child);
                    path.pop();
                }
            }
            _ => {
                self.paths.insert(path.clone());
            }
        }
    }

    /// Parse a `fieldsV1` value; keys other than `f:` ones (list item keys, `.`)
    /// make their parent a leaf.
    pub fn from_fields_v1(value: &Value) -> Self {
        let mut set = FieldSet::default();
        let mut path = Vec::new();
        set.parse(&mut path, value);
        set
    }

    fn parse(&mut self, path: &mut FieldPath, value: &Value) {
        let children: Vec<(&str, &Value)> = value
            .as_object()
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| k.strip_prefix("f:").map(|k| (k, v)))
                    .collect()
            })
            .unwrap_or_default();
        if children.is_empty() {
            if !path.is_empty() {
                self.paths.insert(path.clone());
            }
            return;
        }
        for (key, child) in children {
            path.push(key.to_owned());
            self.parse(path, child);
            path.pop();
        }
    }

    /// The `fieldsV1` encoding.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.paths {
            let mut node = &mut root;
            for segment in path {
                let entry = node
                    .entry(format!("f:{segment}"))
                    .or_insert_with(|| Value::Object(Map::new()));
                node = match entry {
                    Value::Object(map) => map,
                    _ => unreachable!("field set nodes are objects"),
                };
            }
        }
        Value::Object(root)
    }

    /// Whether the set owns nothing.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The owned paths.
    pub fn paths(&self) -> impl Iterator<Item = &FieldPath> {
        self.paths.iter()
    }

    /// Whether `path`, or a field above or below it, is owned.
    pub fn overlaps(&self, path: &FieldPath) -> bool {
        self.paths
            .iter()
            .any(|p| p.starts_with(path) || path.starts_with(p))
    }

    /// Drop every owned path that overlaps `path`.
    pub fn release(&mut self, path: &FieldPath) {
        self.paths
            .retain(|p| !(p.starts_with(path) || path.starts_with(p)));
    }
}

/// The value at `path`, if any.
pub fn value_at<'a>(object: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.iter()
        .try_fold(object, |node, segment| node.as_object()?.get(segment))
}

/// Remove the value at `path`, if present.
pub fn remove_at(object: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for segment in parents {
        match node.get_mut(segment.as_str()) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Value::Object(map) = node {
        map.remove(last);
    }
}

/// Render a path as kube-apiserver prints it in conflicts, for instance `.spec.ports`.
pub fn display(path: &FieldPath) -> String {
    path.iter().map(|s| format!(".{s}")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(path: &str) -> FieldPath {
        path.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn applied_object_fields_skip_server_metadata_and_identity() {
        let object = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a", "namespace": "b", "labels": {"app": "x"}},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}},
            "status": {"loadBalancer": {}}
        });
        let set = FieldSet::of_object(
            &object,
            Scope::Object {
                status_subresource: true,
            },
        );
        let paths: Vec<&FieldPath> = set.paths().collect();
        assert_eq!(
            paths,
            [
                &p("metadata.labels.app"),
                &p("spec.ports"),
                &p("spec.selector.app")
            ]
        );
        let status = FieldSet::of_object(&object, Scope::Status);
        assert_eq!(
            status.paths().collect::<Vec<_>>(),
            [&p("status.loadBalancer")]
        );
    }

    #[test]
    fn fields_v1_round_trip() {
        let object = json!({"spec": {"a": 1, "b": {"c": [1]}}});
        let set = FieldSet::of_object(
            &object,
            Scope::Object {
                status_subresource: false,
            },
        );
        let encoded = set.to_fields_v1();
        assert_eq!(encoded, json!({"f:spec": {"f:a": {}, "f:b": {"f:c": {}}}}));
        assert_eq!(FieldSet::from_fields_v1(&encoded), set);
    }

    #[test]
    fn list_item_keys_make_the_list_a_leaf() {
        let encoded = json!({"f:spec": {"f:ports": {"k:{\"port\":80}": {".": {}}}}});
        let set = FieldSet::from_fields_v1(&encoded);
        assert_eq!(set.paths().collect::<Vec<_>>(), [&p("spec.ports")]);
    }

    #[test]
    fn remove_and_read_paths() {
        let mut object = json!({"spec": {"a": 1, "b": 2}});
        assert_eq!(value_at(&object, &p("spec.a")), Some(&json!(1)));
        remove_at(&mut object, &p("spec.a"));
        assert_eq!(object, json!({"spec": {"b": 2}}));
        assert_eq!(display(&p("spec.b")), ".spec.b");
    }
}
