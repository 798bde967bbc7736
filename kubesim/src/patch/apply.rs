//! Server-side apply: merge an applied configuration into the live object and keep
//! per-manager field ownership in `metadata.managedFields`.
//!
//! What is tracked: every `Apply` manager's owned fields (maps key by key, lists as
//! a whole). Conflicts are raised only against other `Apply` managers whose fields
//! would change; `force` takes those fields over. Fields a manager applied before and
//! no longer applies are removed unless another manager still owns them. Non-apply
//! writes (create, update, patch) do not record `Update` entries.

use serde_json::{json, Map, Value};

use super::fields::{self, FieldPath, FieldSet, Scope};

/// One apply request's parameters.
#[derive(Clone, Copy, Debug)]
pub struct ApplyRequest<'a> {
    /// The `fieldManager`.
    pub manager: &'a str,
    /// Whether to take over conflicting fields.
    pub force: bool,
    /// The part of the object addressed.
    pub scope: Scope,
    /// The apiVersion recorded in the managed fields entry.
    pub api_version: &'a str,
    /// The timestamp recorded in the managed fields entry.
    pub now: &'a str,
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The contested field.
    pub path: FieldPath,
}

/// Render conflicts the way kube-apiserver words them.
pub fn describe(conflicts: &[Conflict]) -> String {
    let plural = if conflicts.len() == 1 { "" } else { "s" };
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "conflict with \"{}\": {}",
                c.manager,
                fields::display(&c.path)
            )
        })
        .collect();
    format!(
        "Apply failed with {} conflict{plural}: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// One `managedFields` entry with its parsed field set.
#[derive(Clone, Debug)]
struct Entry {
    raw: Value,
    fields: FieldSet,
}

impl Entry {
    fn text(&self, key: &str) -> &str {
        self.raw.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn is_apply_in(&self, scope: Scope) -> bool {
        self.text("operation") == "Apply" && self.subresource() == scope.subresource()
    }

    fn subresource(&self) -> Option<&str> {
        self.raw
            .get("subresource")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

fn entries_of(object: Option<&Value>) -> Vec<Entry> {
    object
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|raw| Entry {
                    fields: raw
                        .get("fieldsV1")
                        .map(FieldSet::from_fields_v1)
                        .unwrap_or_default(),
                    raw: raw.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Apply `applied` over `existing` (or create from it when `None`). Returns the new
/// object with updated `managedFields`, or the conflicts that stop it.
pub fn apply(
    existing: Option<&Value>,
    applied: &Value,
    request: &ApplyRequest<'_>,
) -> Result<Value, Vec<Conflict>> {
    let scope = request.scope;
    let new_fields = FieldSet::of_object(applied, scope);
    let mut entries = entries_of(existing);
    let live = existing.cloned().unwrap_or_else(|| json!({}));

    let mut conflicts = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| e.is_apply_in(scope) && e.text("manager") != request.manager)
    {
        for path in new_fields.paths() {
            let owned = entry.fields.overlaps(path);
            if owned && fields::value_at(&live, path) != fields::value_at(applied, path) {
                conflicts.push(Conflict {
                    manager: entry.text("manager").to_owned(),
                    path: path.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !request.force {
        return Err(conflicts);
    }
    for conflict in &conflicts {
        for entry in entries
            .iter_mut()
            .filter(|e| e.text("manager") == conflict.manager && e.is_apply_in(scope))
        {
            entry.fields.release(&conflict.path);
        }
    }

    let mine = |e: &Entry| e.text("manager") == request.manager && e.is_apply_in(scope);
    let previous = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut result = live;
    for path in previous.paths() {
        let still_applied = new_fields.overlaps(path);
        let owned_by_other = entries.iter().any(|e| !mine(e) && e.fields.overlaps(path));
        if !still_applied && !owned_by_other {
            fields::remove_at(&mut result, path);
        }
    }
    merge_in_scope(&mut result, applied, scope);

    entries.retain(|e| !mine(e) && !e.fields.is_empty());
    if !new_fields.is_empty() {
        let mut raw = json!({
            "manager": request.manager,
            "operation": "Apply",
            "apiVersion": request.api_version,
            "time": request.now,
            "fieldsType": "FieldsV1",
            "fieldsV1": new_fields.to_fields_v1(),
        });
        if let Some(sub) = scope.subresource() {
            raw["subresource"] = json!(sub);
        }
        entries.push(Entry {
            raw,
            fields: new_fields,
        });
    }
    let managed: Vec<Value> = entries
        .into_iter()
        .map(|mut e| {
            e.raw["fieldsV1"] = e.fields.to_fields_v1();
            e.raw
        })
        .collect();
    let meta = crate::meta::metadata_mut(&mut result);
    if managed.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(managed));
    }
    Ok(result)
}

/// Merge the in-scope part of `applied` into `target`: maps merge, other values
/// replace, `null` removes.
fn merge_in_scope(target: &mut Value, applied: &Value, scope: Scope) {
    let Value::Object(applied) = applied else {
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return;
    };
    for (key, value) in applied {
        if key == "apiVersion" || key == "kind" {
            map.entry(key.clone()).or_insert_with(|| value.clone());
            continue;
        }
        if !scope.covers(key) {
            continue;
        }
        if key == "metadata" {
            if let Value::Object(meta) = value {
                let live = object_entry(map, "metadata");
                for (field, v) in meta {
                    if field != "managedFields" {
                        deep_merge(live, field, v);
                    }
                }
            }
            continue;
        }
        deep_merge(map, key, value);
    }
}

/// The map under `key`, replacing a non-map value.
fn object_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(child) => child,
        _ => unreachable!("entry was just made an object"),
    }
}

fn deep_merge(map: &mut Map<String, Value>, key: &str, value: &Value) {
    match value {
        Value::Null => {
            map.remove(key);
        }
        Value::Object(children) if !children.is_empty() => {
            let child = object_entry(map, key);
            for (k, v) in children {
                deep_merge(child, k, v);
            }
        }
        other => {
            let keep_existing_map = other.as_object().is_some_and(Map::is_empty)
                && map.get(key).is_some_and(Value::is_object);
            if !keep_existing_map {
                map.insert(key.to_owned(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2024-01-01T00:00:00Z";

    fn request(manager: &str, force: bool) -> ApplyRequest<'_> {
        ApplyRequest {
            manager,
            force,
            scope: Scope::Object {
                status_subresource: true,
            },
            api_version: "v1",
            now: NOW,
        }
    }

    #[test]
    fn apply_creates_and_records_ownership() {
        let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let result = apply(None, &applied, &request("mcwan", false)).expect("no conflicts");
        assert_eq!(result["data"]["k"], "v");
        let managed = &result["metadata"]["managedFields"][0];
        assert_eq!(managed["manager"], "mcwan");
        assert_eq!(managed["operation"], "Apply");
        assert_eq!(
            managed["fieldsV1"],
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:x": {}}}})
        );
    }

    #[test]
    fn reapply_removes_fields_no_longer_applied() {
        let first = json!({"metadata": {"name": "a"}, "data": {"k": "v", "gone": "x"}});
        let live = apply(None, &first, &request("mcwan", false)).expect("applies");
        let mut live = live;
        live["data"]["foreign"] = json!("kept");
        let second = json!({"metadata": {"name": "a"}, "data": {"k": "v2"}});
        let result = apply(Some(&live), &second, &request("mcwan", false)).expect("applies");
        assert_eq!(result["data"], json!({"k": "v2", "foreign": "kept"}));
    }

    #[test]
    fn conflicting_managers_need_force() {
        let live = apply(
            None,
            &json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
            &request("one", false),
        )
        .expect("applies");
        let other = json!({"metadata": {"name": "a"}, "data": {"k": "w"}});
        let conflicts = apply(Some(&live), &other, &request("two", false)).expect_err("conflict");
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            describe(&conflicts),
            "Apply failed with 1 conflict: conflict with \"one\": .data.k"
        );
        let forced = apply(Some(&live), &other, &request("two", true)).expect("forced");
        assert_eq!(forced["data"]["k"], "w");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, ["two"]);
    }

    #[test]
    fn same_value_is_shared_without_conflict() {
        let cfg = json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        let live = apply(None, &cfg, &request("one", false)).expect("applies");
        let shared = apply(Some(&live), &cfg, &request("two", false)).expect("no conflict");
        assert_eq!(
            shared["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn status_scope_only_touches_status() {
        let live = json!({"metadata": {"name": "a"}, "spec": {"x": 1}});
        let applied = json!({"metadata": {"name": "a"}, "spec": {"x": 2}, "status": {"ok": true}});
        let req = ApplyRequest {
            scope: Scope::Status,
            ..request("ctl", false)
        };
        let result = apply(Some(&live), &applied, &req).expect("applies");
        assert_eq!(result["spec"]["x"], 1);
        assert_eq!(result["status"]["ok"], true);
        assert_eq!(
            result["metadata"]["managedFields"][0]["subresource"],
            "status"
        );
    }
}
