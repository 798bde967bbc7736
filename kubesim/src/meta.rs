//! Object metadata helpers: timestamps, UIDs, name validation and typed accessors
//! over `serde_json::Value` objects.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

/// The current time as an RFC 3339 timestamp with second precision, as
/// `metav1.Time` serialises.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Generates random version-4 UUIDs without an extra dependency: two keyed hashes of a
/// counter under a per-process random key.
#[derive(Debug, Default)]
pub struct UidGenerator {
    key: RandomState,
    counter: AtomicU64,
}

impl UidGenerator {
    /// A fresh UUID string.
    pub fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let hi = self.key.hash_one((n, 0u8));
        let lo = self.key.hash_one((n, 1u8));
        let hi = (hi & !0xf000) | 0x4000; // version 4
        let lo = (lo & !(0xc << 60)) | (0x8 << 60); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }

    /// A 5-character lower-case alphanumeric suffix for `generateName`.
    pub fn suffix(&self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut bits = self.key.hash_one((n, 2u8));
        let mut out = String::with_capacity(5);
        for _ in 0..5 {
            let index = usize::try_from(bits % ALPHABET.len() as u64).unwrap_or(0);
            out.push(char::from(ALPHABET[index]));
            bits /= ALPHABET.len() as u64;
        }
        out
    }
}

/// Which naming rule a kind's `metadata.name` follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253.
    Subdomain,
    /// DNS-1123 label: lower-case alphanumerics and `-`, at most 63 (namespaces).
    Label,
    /// DNS-1035 label: a DNS-1123 label starting with a letter (services).
    Dns1035Label,
}

impl NameRule {
    /// The rule kube-apiserver applies to resource `plural` of `group`.
    pub fn for_resource(group: &str, plural: &str) -> Self {
        match (group, plural) {
            ("", "namespaces") => NameRule::Label,
            ("", "services") => NameRule::Dns1035Label,
            _ => NameRule::Subdomain,
        }
    }

    /// `None` when `name` is valid, else why not.
    pub fn check(self, name: &str) -> Option<String> {
        let valid = match self {
            NameRule::Subdomain => {
                name.len() <= 253 && name.split('.').all(|label| is_label(label, 253))
            }
            NameRule::Label => is_label(name, 63),
            NameRule::Dns1035Label => {
                is_label(name, 63) && name.starts_with(|c: char| c.is_ascii_lowercase())
            }
        };
        if valid {
            return None;
        }
        let rule = match self {
            NameRule::Subdomain => "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            NameRule::Label => "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            NameRule::Dns1035Label => "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        };
        Some(format!("metadata.name: Invalid value: {name:?}: {rule}"))
    }
}

fn is_label(label: &str, max: usize) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// `metadata` of an object as a map, created when absent or not an object.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = Value::Object(Map::new());
    }
    match object.get_mut("metadata") {
        Some(Value::Object(map)) => map,
        _ => unreachable!("metadata was just made an object"),
    }
}

/// A string field of `metadata`, empty when absent.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.finalizers` as strings.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.generation`, 0 when absent.
pub fn generation(object: &Value) -> i64 {
    object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_distinct_version_4_uuids() {
        let uids = UidGenerator::default();
        let a = uids.next();
        let b = uids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn generated_suffix_is_a_valid_label_part() {
        let suffix = UidGenerator::default().suffix();
        assert_eq!(suffix.len(), 5);
        assert_eq!(NameRule::Label.check(&suffix), None);
    }

    #[test]
    fn subdomain_names() {
        assert_eq!(NameRule::Subdomain.check("a.b-c.d"), None);
        assert!(NameRule::Subdomain.check("Upper").is_some());
        assert!(NameRule::Subdomain.check("").is_some());
        assert!(NameRule::Subdomain.check("a..b").is_some());
        assert!(NameRule::Subdomain.check("-a").is_some());
    }

    #[test]
    fn service_names_must_start_with_a_letter() {
        let rule = NameRule::for_resource("", "services");
        assert_eq!(rule.check("web-1"), None);
        assert!(rule.check("1web").is_some());
        assert!(rule.check("a.b").is_some());
    }

    #[test]
    fn timestamps_have_second_precision() {
        let now = now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z'));
    }
}
