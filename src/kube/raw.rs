//! Custom resources as the API server sends them, decoded into their Rust types one object at
//! a time. A watch of a typed resource fails as a whole when one object does not decode (a
//! value the CRD's schema lets through but the type cannot hold), which would read as the API
//! server being unreachable and freeze every object of the kind. Watched as [`Raw`], each
//! object that does not decode is a problem naming it and the field, and the others go on.

use std::borrow::Cow;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::convert::FieldError;

/// An object of kind `K`, its metadata decoded and the rest kept as JSON.
#[derive(Debug)]
pub struct Raw<K> {
    pub metadata: ObjectMeta,
    value: serde_json::Value,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Raw<K> {
    fn clone(&self) -> Self {
        Self {
            metadata: self.metadata.clone(),
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: DeserializeOwned> Raw<K> {
    /// The object as a `K`, or the first field that does not fit.
    pub fn decode(&self) -> Result<K, FieldError> {
        serde_path_to_error::deserialize(&self.value).map_err(|e| {
            let field = e.path().to_string();
            FieldError::new(
                if field == "." {
                    "(object)".to_owned()
                } else {
                    field
                },
                e.into_inner().to_string(),
            )
        })
    }
}

/// The annotation `kubectl apply` keeps the whole last applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from an object's metadata what mcwan never reads and what is most of its size: its
/// managed fields and `kubectl apply`'s copy of the object. The reflector stores of every
/// watched cluster hold objects without them.
pub fn slim(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED);
    }
}

impl<'de, K> Deserialize<'de> for Raw<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut value = serde_json::Value::deserialize(deserializer)?;
        // The JSON is kept too: slimmed as the metadata is (see [`slim`]).
        if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
            if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
                annotations.remove(LAST_APPLIED);
            }
        }
        // Metadata the API server wrote always decodes; without it the object is unusable.
        let metadata = value
            .get("metadata")
            .map(|m| ObjectMeta::deserialize(m).map_err(serde::de::Error::custom))
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            metadata,
            value,
            kind: PhantomData,
        })
    }
}

impl<K: kube::Resource<DynamicType = ()>> kube::Resource for Raw<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd;

    #[test]
    fn managed_fields_and_the_last_applied_copy_are_not_kept() {
        let raw: Raw<crd::ServiceExport> = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cart", "namespace": "shop",
                "annotations": {LAST_APPLIED: "{}", "mcw.l7mp.io/mc-wan-policy": "high"},
                "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
            "spec": {},
        }))
        .unwrap();
        let kept = |meta: &ObjectMeta| {
            assert_eq!(meta.managed_fields, None);
            let annotations = meta.annotations.clone().unwrap_or_default();
            assert_eq!(
                annotations.keys().collect::<Vec<_>>(),
                ["mcw.l7mp.io/mc-wan-policy"]
            );
        };
        kept(&raw.metadata);
        kept(&raw.decode().unwrap().metadata);
    }

    #[test]
    fn an_object_that_does_not_fit_its_type_names_the_field() {
        let raw: Raw<crd::WanPolicy> = serde_json::from_value(serde_json::json!({
            "apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
            "metadata": {"name": "high", "uid": "u-1"},
            "spec": {"tunnel": "business", "port": 31111, "sla": {"jitter-ms": 5_000_000_000u64}},
        }))
        .unwrap();
        assert_eq!(raw.metadata.name.as_deref(), Some("high"));
        let error = raw.decode().unwrap_err();
        assert_eq!(error.field, "spec.sla.jitter-ms");
        let good: Raw<crd::WanPolicy> = serde_json::from_value(serde_json::json!({
            "apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
            "metadata": {"name": "low"},
            "spec": {"tunnel": "default", "port": 31112},
        }))
        .unwrap();
        assert_eq!(good.decode().unwrap().spec.port, 31112);
    }
}
