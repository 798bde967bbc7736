//! JSON patch (RFC 6902) over JSON pointers (RFC 6901).

use serde_json::Value;

/// Why a JSON patch could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonPatchError {
    /// The patch document is not a list of operations.
    #[error("invalid JSON patch document: {0}")]
    Malformed(String),
    /// An operation's path does not exist or cannot be written.
    #[error("JSON patch operation {index} ({op} {path}): {reason}")]
    Failed {
        /// Index of the failing operation.
        index: usize,
        /// The operation name.
        op: String,
        /// The operation's path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Apply the JSON patch `patch` to `target`; on error `target` is left unchanged.
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), JsonPatchError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| JsonPatchError::Malformed("expected a JSON array".into()))?;
    let mut work = target.clone();
    for (index, op) in ops.iter().enumerate() {
        let field = |name: &str| op.get(name).and_then(Value::as_str);
        let name = field("op")
            .ok_or_else(|| JsonPatchError::Malformed(format!("operation {index} has no op")))?;
        let path = field("path")
            .ok_or_else(|| JsonPatchError::Malformed(format!("operation {index} has no path")))?;
        let fail = |reason: String| JsonPatchError::Failed {
            index,
            op: name.to_owned(),
            path: path.to_owned(),
            reason,
        };
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| fail("missing value".into()))
        };
        let from = || field("from").ok_or_else(|| fail("missing from".into()));
        match name {
            "add" => add(&mut work, path, value()?).map_err(fail)?,
            "remove" => {
                remove(&mut work, path).map_err(fail)?;
            }
            "replace" => {
                remove(&mut work, path).map_err(fail)?;
                add(&mut work, path, value()?).map_err(fail)?;
            }
            "move" => {
                let from = from()?;
                if path.starts_with(&format!("{from}/")) {
                    return Err(fail("cannot move a value into itself".into()));
                }
                let moved = remove(&mut work, from).map_err(fail)?;
                add(&mut work, path, moved).map_err(fail)?;
            }
            "copy" => {
                let copied = work
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| fail("from does not exist".into()))?;
                add(&mut work, path, copied).map_err(fail)?;
            }
            "test" => {
                let expected = value()?;
                if work.pointer(path) != Some(&expected) {
                    return Err(fail("test failed".into()));
                }
            }
            other => {
                return Err(JsonPatchError::Malformed(format!(
                    "operation {index} has unknown op {other:?}"
                )))
            }
        }
    }
    *target = work;
    Ok(())
}

/// Split a pointer into its parent pointer and unescaped last token.
fn split(path: &str) -> Result<(&str, String), String> {
    let slash = path
        .rfind('/')
        .ok_or_else(|| format!("invalid pointer {path:?}"))?;
    let token = path[slash + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..slash], token))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, token) = split(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(token, value);
            Ok(())
        }
        Some(Value::Array(list)) => {
            let index = if token == "-" {
                list.len()
            } else {
                token
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i <= list.len())
                    .ok_or_else(|| format!("invalid array index {token:?}"))?
            };
            list.insert(index, value);
            Ok(())
        }
        Some(_) => Err("parent is not a container".into()),
        None => Err("parent does not exist".into()),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, token) = split(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => map
            .remove(&token)
            .ok_or_else(|| "path does not exist".into()),
        Some(Value::Array(list)) => {
            let index = token
                .parse::<usize>()
                .ok()
                .filter(|i| *i < list.len())
                .ok_or_else(|| format!("invalid array index {token:?}"))?;
            Ok(list.remove(index))
        }
        _ => Err("path does not exist".into()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn add_replace_remove() {
        let mut doc = json!({"a": {"b": 1}, "l": [1, 3]});
        apply(
            &mut doc,
            &json!([
                {"op": "add", "path": "/a/c", "value": 2},
                {"op": "replace", "path": "/a/b", "value": 5},
                {"op": "add", "path": "/l/1", "value": 2},
                {"op": "add", "path": "/l/-", "value": 4},
                {"op": "remove", "path": "/a/c"}
            ]),
        )
        .expect("applies");
        assert_eq!(doc, json!({"a": {"b": 5}, "l": [1, 2, 3, 4]}));
    }

    #[test]
    fn move_copy_and_escaped_tokens() {
        let mut doc = json!({"metadata": {"labels": {"a/b": "x"}}});
        apply(
            &mut doc,
            &json!([
                {"op": "copy", "from": "/metadata/labels/a~1b", "path": "/c"},
                {"op": "move", "from": "/c", "path": "/d"}
            ]),
        )
        .expect("applies");
        assert_eq!(doc["d"], "x");
        assert!(doc.get("c").is_none());
    }

    #[test]
    fn failed_test_leaves_target_unchanged() {
        let mut doc = json!({"a": 1});
        let err = apply(
            &mut doc,
            &json!([
                {"op": "replace", "path": "/a", "value": 2},
                {"op": "test", "path": "/a", "value": 3}
            ]),
        )
        .expect_err("test fails");
        assert!(matches!(err, JsonPatchError::Failed { index: 1, .. }));
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn removing_a_missing_path_fails() {
        let mut doc = json!({});
        assert!(apply(&mut doc, &json!([{"op": "remove", "path": "/x"}])).is_err());
        assert!(apply(&mut doc, &json!({"op": "remove"})).is_err());
    }
}
