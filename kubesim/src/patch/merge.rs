//! The subset of strategic merge patch that `kubectl` relies on. (JSON merge patch, RFC 7386,
//! and JSON patch, RFC 6902, are the `json-patch` crate's.)
//!
//! Strategic merge patch without the Go type schemas: maps merge as in a JSON merge patch;
//! a list is merged by key only when the patch carries a `$setElementOrder/<field>`
//! directive (as kubectl's computed patches do), the key being the single field of the
//! order entries; `$patch: delete` list items are removed; `$patch: replace` replaces a
//! map; `$retainKeys` keeps only the listed keys; `$deleteFromPrimitiveList/<field>`
//! removes values. Any other list replaces the old one, as in a merge patch.

use serde_json::{Map, Value};

/// Apply a strategic merge patch to `target` in place (see the module doc for the subset).
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(&Value::Object(patch.clone()));
            return;
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return;
    };
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        map.retain(|k, _| keep.contains(&k.as_str()) || patch.contains_key(k));
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (map.get_mut(field), value) {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            map.remove(key);
            continue;
        }
        let order = patch
            .get(&format!("$setElementOrder/{key}"))
            .and_then(Value::as_array);
        match (map.get_mut(key), value, order) {
            (Some(Value::Array(existing)), Value::Array(items), Some(order)) => {
                merge_list(existing, items, order);
            }
            (Some(existing @ Value::Object(_)), Value::Object(_), _) => {
                strategic_merge_patch(existing, value);
            }
            _ => {
                map.insert(key.clone(), strip_directives(value));
            }
        }
    }
    // A `$setElementOrder` for a list the patch does not otherwise touch only reorders.
    for (key, order) in patch {
        if let (Some(field), Value::Array(order)) = (key.strip_prefix("$setElementOrder/"), order) {
            if !patch.contains_key(field) {
                if let Some(Value::Array(existing)) = map.get_mut(field) {
                    merge_list(existing, &[], order);
                }
            }
        }
    }
}

/// Merge `items` into `existing` by the key named in `order`, then order the result.
fn merge_list(existing: &mut Vec<Value>, items: &[Value], order: &[Value]) {
    let merge_key = order
        .first()
        .and_then(Value::as_object)
        .filter(|entry| entry.len() == 1)
        .and_then(|entry| entry.keys().next().cloned());
    match merge_key {
        Some(key) => {
            for item in items {
                let id = item.get(&key);
                let position = existing.iter().position(|e| e.get(&key) == id);
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        existing.remove(i);
                    }
                    (Some(i), false) => strategic_merge_patch(&mut existing[i], item),
                    (None, false) => existing.push(strip_directives(item)),
                    (None, true) => {}
                }
            }
            let rank = |e: &Value| {
                order
                    .iter()
                    .position(|o| o.get(&key) == e.get(&key))
                    .unwrap_or(usize::MAX)
            };
            existing.sort_by_key(rank);
        }
        None => {
            for item in items {
                if !existing.contains(item) {
                    existing.push(item.clone());
                }
            }
            let rank = |e: &Value| order.iter().position(|o| o == e).unwrap_or(usize::MAX);
            existing.sort_by_key(rank);
        }
    }
}

/// A copy of `value` without `$`-prefixed directive keys.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strategic_patch_merges_keyed_lists_with_element_order() {
        let mut target = json!({"spec": {"ports": [
            {"name": "http", "port": 80},
            {"name": "https", "port": 443}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/ports": [{"name": "http"}, {"name": "https"}, {"name": "dns"}],
            "ports": [{"name": "http", "port": 8080}, {"name": "dns", "port": 53}]
        }});
        strategic_merge_patch(&mut target, &patch);
        assert_eq!(
            target,
            json!({"spec": {"ports": [
                {"name": "http", "port": 8080},
                {"name": "https", "port": 443},
                {"name": "dns", "port": 53}
            ]}})
        );
    }

    #[test]
    fn strategic_patch_deletes_list_items() {
        let mut target = json!({"ports": [{"name": "a"}, {"name": "b"}]});
        let patch = json!({
            "$setElementOrder/ports": [{"name": "a"}],
            "ports": [{"name": "b", "$patch": "delete"}]
        });
        strategic_merge_patch(&mut target, &patch);
        assert_eq!(target, json!({"ports": [{"name": "a"}]}));
    }

    #[test]
    fn strategic_patch_without_order_replaces_lists() {
        let mut target = json!({"items": [1, 2], "m": {"a": 1}});
        strategic_merge_patch(&mut target, &json!({"items": [3], "m": {"b": 2}}));
        assert_eq!(target, json!({"items": [3], "m": {"a": 1, "b": 2}}));
    }

    #[test]
    fn strategic_patch_merges_primitive_lists_with_order() {
        let mut target = json!({"finalizers": ["a"]});
        strategic_merge_patch(
            &mut target,
            &json!({"$setElementOrder/finalizers": ["a", "b"], "finalizers": ["b"]}),
        );
        assert_eq!(target, json!({"finalizers": ["a", "b"]}));
    }
}
