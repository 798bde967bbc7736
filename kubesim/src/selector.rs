//! Label and field selectors, as in `labelSelector=` and `fieldSelector=`.
//!
//! Label selectors support `=`, `==`, `!=`, `in`, `notin`, `key` (exists) and `!key`
//! (does not exist). Field selectors support `=`, `==` and `!=` on any dotted path to a
//! scalar (kube-apiserver only allows a per-kind list of fields, always including
//! `metadata.name` and `metadata.namespace`).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::ApiError;

/// One label requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

impl LabelSelector {
    /// Parse the `labelSelector` query syntax.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in split_top_level(raw) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(Self { requirements })
    }

    /// Whether an object with metadata `object` matches.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|req| match req {
            LabelRequirement::Equals(k, v) => label(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => label(k).is_some_and(|l| vs.contains(l)),
            LabelRequirement::NotIn(k, vs) => label(k).is_none_or(|l| !vs.contains(l)),
            LabelRequirement::Exists(k) => label(k).is_some(),
            LabelRequirement::NotExists(k) => label(k).is_none(),
        })
    }
}

/// Split on commas that are not inside a parenthesised value set.
fn split_top_level(raw: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in raw.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&raw[start..]);
    parts
}

fn parse_requirement(part: &str) -> Result<LabelRequirement, ApiError> {
    let bad = || ApiError::bad_request(format!("unable to parse requirement: {part:?}"));
    let key = |k: &str| -> Result<String, ApiError> {
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            Err(bad())
        } else {
            Ok(k.to_owned())
        }
    };
    if let Some(rest) = part.strip_prefix('!') {
        return Ok(LabelRequirement::NotExists(key(rest)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(LabelRequirement::NotEquals(key(k)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = part.split_once("==") {
        return Ok(LabelRequirement::Equals(key(k)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = part.split_once('=') {
        return Ok(LabelRequirement::Equals(key(k)?, v.trim().to_owned()));
    }
    if let Some(open) = part.find('(') {
        let head: Vec<&str> = part[..open].split_whitespace().collect();
        let values = part[open + 1..].strip_suffix(')').ok_or_else(bad)?;
        let values: BTreeSet<String> = values
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        return match head.as_slice() {
            [k, "in"] => Ok(LabelRequirement::In(key(k)?, values)),
            [k, "notin"] => Ok(LabelRequirement::NotIn(key(k)?, values)),
            _ => Err(bad()),
        };
    }
    Ok(LabelRequirement::Exists(key(part)?))
}

/// One field requirement: a dotted path compared with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldRequirement {
    path: String,
    value: String,
    negated: bool,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parse the `fieldSelector` query syntax.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, value, negated) = if let Some((p, v)) = part.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = part.split_once("==") {
                (p, v, false)
            } else if let Some((p, v)) = part.split_once('=') {
                (p, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: {part:?}"
                )));
            };
            requirements.push(FieldRequirement {
                path: path.trim().to_owned(),
                value: value.trim().to_owned(),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    /// Whether `object` matches.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|req| {
            let actual = scalar_at(object, &req.path);
            (actual == req.value) != req.negated
        })
    }
}

/// The scalar at a dotted path as a string; absent or non-scalar reads as empty.
fn scalar_at(object: &Value, path: &str) -> String {
    let mut current = object;
    for segment in path.split('.') {
        match current.get(segment) {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Both selectors of a list or watch request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selectors {
    /// The label selector.
    pub labels: LabelSelector,
    /// The field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Parse optional raw selectors.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            labels: labels
                .map(LabelSelector::parse)
                .transpose()?
                .unwrap_or_default(),
            fields: fields
                .map(FieldSelector::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// Whether `object` matches both selectors.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labelled(labels: Value) -> Value {
        json!({"metadata": {"name": "x", "namespace": "ns", "labels": labels}})
    }

    fn matches(selector: &str, labels: Value) -> bool {
        LabelSelector::parse(selector)
            .expect("valid selector")
            .matches(&labelled(labels))
    }

    #[test]
    fn equality_operators() {
        assert!(matches("app=web", json!({"app": "web"})));
        assert!(matches("app==web", json!({"app": "web"})));
        assert!(!matches("app=web", json!({"app": "db"})));
        assert!(matches("app!=web", json!({"app": "db"})));
        assert!(matches("app!=web", json!({})));
    }

    #[test]
    fn set_operators() {
        assert!(matches(
            "tier in (a, b),app",
            json!({"tier": "b", "app": "x"})
        ));
        assert!(!matches("tier in (a,b)", json!({"tier": "c"})));
        assert!(!matches("tier in (a,b)", json!({})));
        assert!(matches("tier notin (a,b)", json!({"tier": "c"})));
        assert!(matches("tier notin (a,b)", json!({})));
    }

    #[test]
    fn existence_operators() {
        assert!(matches("app", json!({"app": ""})));
        assert!(!matches("app", json!({})));
        assert!(matches("!app", json!({})));
        assert!(!matches("!app", json!({"app": "x"})));
    }

    #[test]
    fn malformed_label_selector_is_bad_request() {
        let err = LabelSelector::parse("tier in a,b").expect_err("missing parentheses");
        assert_eq!(err.code, 400);
    }

    #[test]
    fn field_selector_on_name_and_namespace() {
        let object = labelled(json!({}));
        let sel = FieldSelector::parse("metadata.name=x,metadata.namespace!=other").expect("valid");
        assert!(sel.matches(&object));
        let sel = FieldSelector::parse("metadata.name==y").expect("valid");
        assert!(!sel.matches(&object));
    }
}
