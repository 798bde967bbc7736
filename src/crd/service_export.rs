use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaPropsOrArray, JSON,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::core::NamespaceResourceScope;
use kube::{CustomResource, CustomResourceExt, Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The schema source of the ServiceExport CRD. Use [`ServiceExport`]: unlike this derived
/// type, it reads ServiceExports without a `spec`, which the MCS API allows (and the seeds'
/// manifests have none).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "multicluster.x-k8s.io",
    version = "v1alpha1",
    kind = "ServiceExport",
    root = "ServiceExportSchema",
    doc = "ServiceExport (Multi-Cluster Services API) exports the Service of the same namespace and name to the clusterset. mcwan reads its WAN class from the mcw.l7mp.io/mc-wan-policy annotation (or the cluster's default WANPolicy) and reports the Valid, Ready and Conflict conditions.",
    namespaced,
    status = "ServiceExportStatus",
    shortname = "svcex",
    printcolumn = r#"{"name":"WAN-Policy","type":"string","jsonPath":".metadata.annotations.mcw\\.l7mp\\.io/mc-wan-policy"}"#,
    printcolumn = r#"{"name":"Valid","type":"string","jsonPath":".status.conditions[?(@.type==\"Valid\")].status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Conflict","type":"string","jsonPath":".status.conditions[?(@.type==\"Conflict\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExportSpec {
    /// Labels to put on the imported service (optional for implementations; kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_labels: Option<BTreeMap<String, String>>,
    /// Annotations to put on the imported service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_annotations: Option<BTreeMap<String, String>>,
}

/// What the exporting cluster's gateway reports about the export.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExportStatus {
    /// The export's conditions, one per type: Valid (the export and its WAN policy are usable),
    /// Ready (the gateway serves it to the clusterset), Conflict (the clusters exporting it
    /// disagree on its ports or type). Conditions of other types, set by other controllers,
    /// are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// `ServiceExport` declares that the Service of the same namespace and name is to be consumed
/// from other clusters of the clusterset. mcwan reads the `mcw.l7mp.io/mc-wan-policy` annotation.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExport {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Optional in the MCS API: an absent `spec` reads as the empty one.
    #[serde(default)]
    pub spec: ServiceExportSpec,
    #[serde(default)]
    pub status: Option<ServiceExportStatus>,
}

impl ServiceExport {
    pub fn new(name: &str, spec: ServiceExportSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// The CRD, with `spec` optional as the MCS API has it.
    pub fn crd(
    ) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition
    {
        let mut crd = ServiceExportSchema::crd();
        for version in &mut crd.spec.versions {
            let Some(root) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            else {
                continue;
            };
            if let Some(required) = root.required.as_mut() {
                required.retain(|f| f != "spec");
            }
            // A condition's status is one of Kubernetes' three words.
            if let Some(status) = root
                .properties
                .as_mut()
                .and_then(|p| p.get_mut("status"))
                .and_then(|s| s.properties.as_mut())
                .and_then(|p| p.get_mut("conditions"))
                .and_then(|c| c.items.as_mut())
                .and_then(|items| match items {
                    JSONSchemaPropsOrArray::Schema(item) => item.properties.as_mut(),
                    JSONSchemaPropsOrArray::Schemas(_) => None,
                })
                .and_then(|p| p.get_mut("status"))
            {
                status.enum_ = Some(
                    ["True", "False", "Unknown"]
                        .map(|w| JSON(serde_json::Value::from(w)))
                        .to_vec(),
                );
            }
            // An empty `required` is not a valid schema.
            if root.required.as_ref().is_some_and(Vec::is_empty) {
                root.required = None;
            }
        }
        crd
    }
}

impl Serialize for ServiceExport {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut obj = ser.serialize_struct("ServiceExport", 5)?;
        obj.serialize_field("apiVersion", &Self::api_version(&()))?;
        obj.serialize_field("kind", &Self::kind(&()))?;
        obj.serialize_field("metadata", &self.metadata)?;
        obj.serialize_field("spec", &self.spec)?;
        if let Some(status) = &self.status {
            obj.serialize_field("status", status)?;
        }
        obj.end()
    }
}

impl Resource for ServiceExport {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        ServiceExportSchema::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        ServiceExportSchema::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        ServiceExportSchema::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        ServiceExportSchema::plural(dt)
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

    #[test]
    fn a_service_export_without_spec_reads() {
        let e: ServiceExport = serde_json::from_value(serde_json::json!({
            "apiVersion": "multicluster.x-k8s.io/v1alpha1",
            "kind": "ServiceExport",
            "metadata": {"name": "payment", "namespace": "secure"}
        }))
        .unwrap();
        assert_eq!(e.spec, ServiceExportSpec::default());
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["kind"], "ServiceExport");
        assert_eq!(back["apiVersion"], "multicluster.x-k8s.io/v1alpha1");
    }

    #[test]
    fn conditions_are_a_map_keyed_by_type_with_kubernetes_status_words() {
        let crd = serde_json::to_value(ServiceExport::crd()).unwrap();
        let conditions = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            ["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"])
        );
        assert_eq!(
            conditions["items"]["properties"]["status"]["enum"],
            serde_json::json!(["True", "False", "Unknown"])
        );
    }

    #[test]
    fn the_crd_does_not_require_spec() {
        let crd = serde_json::to_value(ServiceExport::crd()).unwrap();
        let required = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["required"];
        assert!(
            !required
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == "spec")),
            "{required}"
        );
    }
}
