//! The objects the gateway writes, as data: which object (kind, part, namespace, name) and the
//! body to server-side apply, with a hash of what matters so that unchanged objects are skipped.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ApiResource;
use serde_json::Value;

use crate::alloc::fnv1a;
use crate::crd;

/// The longest object name mcwan generates (a DNS label, so it fits every kind).
pub const MAX_NAME: usize = 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    EndpointSlice,
    ServiceImport,
    ServiceExport,
    WanRoute,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndpointSlice => "EndpointSlice",
            Self::ServiceImport => "ServiceImport",
            Self::ServiceExport => "ServiceExport",
            Self::WanRoute => "WANRoute",
        }
    }

    pub fn api_resource(self) -> ApiResource {
        match self {
            Self::EndpointSlice => ApiResource::erase::<EndpointSlice>(&()),
            Self::ServiceImport => ApiResource::erase::<crd::ServiceImport>(&()),
            Self::ServiceExport => ApiResource::erase::<crd::ServiceExport>(&()),
            Self::WanRoute => ApiResource::erase::<crd::WanRoute>(&()),
        }
    }
}

/// The whole object, or its status subresource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Object,
    Status,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    pub kind: Kind,
    pub part: Part,
    pub namespace: String,
    pub name: String,
}

impl ObjectId {
    pub fn new(kind: Kind, part: Part, namespace: &str, name: &str) -> Self {
        Self {
            kind,
            part,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Whether the gateway deletes the object when it is no longer desired. It owns its
    /// EndpointSlices and ServiceImports; a ServiceExport's or WANRoute's status goes with its
    /// object.
    pub fn deletable(&self) -> bool {
        self.part == Part::Object && !matches!(self.kind, Kind::ServiceExport | Kind::WanRoute)
    }

    /// The same object's other part.
    pub fn with_part(&self, part: Part) -> Self {
        Self {
            part,
            ..self.clone()
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.as_str(), self.namespace, self.name)?;
        if self.part == Part::Status {
            f.write_str(" (status)")?;
        }
        Ok(())
    }
}

/// One server-side apply: the object and the body, with the hash the writer compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub id: ObjectId,
    pub body: Value,
    pub hash: u64,
}

impl Write {
    /// A write whose hash covers the whole body.
    pub fn new(id: ObjectId, body: Value) -> Self {
        let hash = hash(&body);
        Self { id, body, hash }
    }

    /// A write whose hash covers only `basis` (for instance conditions without their
    /// `lastTransitionTime`, which is not a change by itself).
    pub fn with_basis(id: ObjectId, body: Value, basis: &Value) -> Self {
        Self {
            id,
            body,
            hash: hash(basis),
        }
    }
}

/// FNV-1a over the JSON text of a value, without building the text.
struct Fnv(u64);

impl std::io::Write for Fnv {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hash(value: &Value) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    // Writing into the hasher cannot fail.
    let _ = serde_json::to_writer(&mut h, value);
    h.0
}

/// Everything the gateway wants written in its cluster.
/// Writes by object; each shared between the plans it is part of.
pub type Writes = BTreeMap<ObjectId, std::sync::Arc<Write>>;

/// `base` + `suffix` when it fits in [`MAX_NAME`]; otherwise `base` shortened and followed by a
/// hash of the whole name, so that distinct long names stay distinct.
pub fn bounded_name(base: &str, suffix: &str) -> String {
    let full = format!("{base}{suffix}");
    if full.len() <= MAX_NAME {
        return full;
    }
    let tag = format!("-{:08x}", fnv1a(full.as_bytes()) & 0xffff_ffff);
    let room = MAX_NAME - tag.len();
    let mut short: String = full.chars().take(room).collect();
    while short.ends_with(['-', '.']) {
        short.pop();
    }
    format!("{short}{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(
            bounded_name("payment", "-mcwan-cluster-1"),
            "payment-mcwan-cluster-1"
        );
    }

    #[test]
    fn long_names_are_shortened_with_a_hash_and_stay_distinct() {
        let a = bounded_name(&"a".repeat(60), "-mcwan-cluster-1");
        let b = bounded_name(&"a".repeat(60), "-mcwan-cluster-2");
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME);
        assert_ne!(a, b);
        assert!(crate::validate::is_dns_label(&a), "{a}");
    }

    #[test]
    fn the_streamed_hash_is_fnv1a_of_the_json_text() {
        let v = serde_json::json!({"a": [1, "x"]});
        assert_eq!(hash(&v), fnv1a(v.to_string().as_bytes()));
    }

    #[test]
    fn the_hash_covers_only_the_basis() {
        let id = ObjectId::new(Kind::ServiceExport, Part::Status, "ns", "svc");
        let a = Write::with_basis(
            id.clone(),
            serde_json::json!({"t": 1}),
            &serde_json::json!(1),
        );
        let b = Write::with_basis(id, serde_json::json!({"t": 2}), &serde_json::json!(1));
        assert_eq!(a.hash, b.hash);
    }
}
