use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `ClusterProperty` whose value is the cluster's ID in the clusterset (KEP-2149).
pub const CLUSTER_ID_PROPERTY: &str = "cluster.clusterset.k8s.io";

/// `ClusterProperty` (KEP-2149): a cluster-scoped name/value fact about this cluster.
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[kube(
    group = "about.k8s.io",
    version = "v1alpha1",
    kind = "ClusterProperty",
    doc = "ClusterProperty (KEP-2149) is a cluster-scoped name/value fact about this cluster. mcwan reads the one named cluster.clusterset.k8s.io: the cluster's ID in the clusterset.",
    printcolumn = r#"{"name":"Value","type":"string","jsonPath":".spec.value"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct ClusterPropertySpec {
    /// The property's value (for cluster.clusterset.k8s.io: the cluster ID).
    pub value: String,
}
