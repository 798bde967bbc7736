use k8s_openapi::api::core::v1::SessionAffinityConfig;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `ServiceImport` describes a service imported from the clusterset; mcwan owns its lifecycle in
/// every cluster where the service's namespace exists.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "multicluster.x-k8s.io",
    version = "v1alpha1",
    kind = "ServiceImport",
    doc = "ServiceImport (Multi-Cluster Services API) is a service imported from the clusterset: its ports, ClusterSetIP and the clusters backing it. mcwan's gateway writes it in every cluster where the service's namespace exists; do not edit it.",
    namespaced,
    status = "ServiceImportStatus",
    shortname = "svcim",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"IP","type":"string","jsonPath":".spec.ips"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportSpec {
    /// The service's ports, as the exporting clusters agree on them.
    #[serde(default)]
    pub ports: Vec<ServiceImportPort>,
    /// The ClusterSetIP(s) of the service (empty for Headless).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// ClusterSetIP (one virtual IP for the service) or Headless (DNS names per endpoint).
    #[serde(rename = "type")]
    pub type_: ServiceImportType,
    /// The exported Service's session affinity: None or ClientIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<String>,
    /// The exported Service's session affinity settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<SessionAffinityConfig>,
}

/// How the imported service is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceImportType {
    #[default]
    ClusterSetIP,
    Headless,
}

/// One port of the imported service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportPort {
    /// The port's name, as in the exported Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// TCP (default), UDP or SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The application protocol, as in the exported Service (e.g. http, kubernetes.io/h2c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The port number on the ClusterSetIP.
    pub port: i32,
}

/// Which clusters back the import now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportStatus {
    /// The clusters that currently back this import.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterStatus>,
}

/// One cluster backing the import.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterStatus {
    /// The cluster's ID in the clusterset.
    pub cluster: String,
}
