//! The custom resources mcwan reads and writes, as Rust types. The CRD manifests in `deploy/` are
//! generated from these (`mcwan crds`), so the two cannot drift.
//!
//! - [`ServiceExport`], [`ServiceImport`]: the Multi-Cluster Services API, `multicluster.x-k8s.io/v1alpha1`.
//! - [`WanPolicy`]: `mcw.l7mp.io/v1alpha1`, cluster-scoped: a tunnel class and its WAN port.
//! - [`WanImport`]: `mcw.l7mp.io/v1alpha1`: a service imported from a given ingress gateway.
//! - [`WanRoute`]: `mcw.l7mp.io/v1alpha1`: per-request WAN classes (HTTP rules) of an exported service.
//! - [`ClusterProperty`]: `about.k8s.io/v1alpha1` (KEP-2149), the cluster's ID.

mod cluster_property;
mod service_export;
mod service_import;
mod wan_import;
mod wan_policy;
mod wan_route;

pub use cluster_property::{ClusterProperty, ClusterPropertySpec, CLUSTER_ID_PROPERTY};
pub use service_export::{
    ServiceExport, ServiceExportSchema, ServiceExportSpec, ServiceExportStatus,
};
pub use service_import::{
    ClusterStatus, ServiceImport, ServiceImportPort, ServiceImportSpec, ServiceImportStatus,
    ServiceImportType,
};
pub use wan_import::{WanImport, WanImportPort, WanImportSpec};
pub use wan_policy::{SlaSpec, WanPolicy, WanPolicySpec};
pub use wan_route::{
    HeaderMatchType, HttpHeaderMatch, HttpPathMatch, HttpWanMatch, HttpWanRoute, HttpWanRule,
    PathMatchType, WanAction, WanRoute, WanRouteSpec, WanRouteStatus,
};

/// The ServiceExport annotation that names the export's WANPolicy.
pub const WAN_POLICY_ANNOTATION: &str = "mcw.l7mp.io/mc-wan-policy";
/// The ServiceExport annotation that says which clusters importers prefer: `local`, `remote`
/// or `none`.
pub const AFFINITY_ANNOTATION: &str = "mcw.l7mp.io/affinity";
/// The ServiceExport annotation that ranks the exporting clusters: `cluster-1=1,cluster-3=2`
/// (lower is preferred; unlisted clusters come last).
pub const CLUSTER_PRIORITY_ANNOTATION: &str = "mcw.l7mp.io/cluster-priority";
/// The MCS API group.
pub const MCS_GROUP: &str = "multicluster.x-k8s.io";
/// The draft MCS group name found in early manifests; read with a warning.
pub const MCS_DRAFT_GROUP: &str = "multicluster.k8s.io";
/// Label on MCS EndpointSlices naming the imported service.
pub const LABEL_SERVICE_NAME: &str = "multicluster.kubernetes.io/service-name";
/// Label on MCS EndpointSlices naming the cluster the endpoints come from.
pub const LABEL_SOURCE_CLUSTER: &str = "multicluster.kubernetes.io/source-cluster";
