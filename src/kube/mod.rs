//! Kubernetes mode: this cluster's API server and its peers' API servers (watched read-only) are
//! the catalog's source, and this cluster's API server is where the gateway writes what it owns:
//! ServiceImports, MCS EndpointSlices, the ingress slices peers read, export conditions, events.
//!
//! ```text
//!  local API server ─┐  source.rs: reflectors, one task per cluster
//!  peer API servers ─┘     │ debounced rebuild (snapshot.rs, convert.rs)
//!                          ▼
//!            Sources: one ClusterSnapshot per cluster (plain data) ──wake──┐
//!                                                                          ▼
//!   controller.rs: Catalog (+ clusterset.yaml) and allocation hints ──▶ gateway::Reconciler
//!                  (peers' published ingress ports, read-back VIPs)      (desired::compute, DNS)
//!                                                                          │ DesiredState
//!                 writes.rs (pure): publish.rs, import.rs, status.rs ◀─────┘
//!                          │ Writes                    │ problems
//!                          ▼                           ▼
//!              writer.rs: server-side apply of      events.rs: Warning Events on the
//!              what changed, delete what is gone    ServiceExports/Services/WANPolicies
//! ```
//!
//! Watches decide nothing: they rebuild a cluster's snapshot and wake the controller, which
//! plans the desired state again (the planner recomputes only the services whose objects or
//! published ports changed, and `writes::WritePlanner` plans only their writes); the writer
//! applies only the difference.

pub mod cli;
mod cluster;
mod controller;
mod events;
pub mod gateway_api;
mod health;
mod import;
mod object;
mod publish;
mod raw;
pub(crate) mod snapshot;
mod source;
mod status;
mod writer;
pub(crate) mod writes;

pub use cli::KubeArgs;
pub use cluster::{local_client, use_kubeconfig, ClusterError};
pub use controller::{KubeError, KubeGateway};
pub use health::{ClusterHealth, Reachability};
pub use object::{bounded_name, Kind, ObjectId, Part, Write, Writes};
pub use publish::ingress_slice_name;
pub use snapshot::ClusterSnapshot;

/// The objects the gateway of `cluster_id` owns in its own cluster for `state`: ServiceImports,
/// their EndpointSlices and the ingress slices it publishes for peers, as one `v1` `List`
/// (what `mcwan plan -o kube` prints). Statuses are left out: a List applies objects.
pub fn planned_objects(
    cluster_id: &str,
    catalog: &crate::catalog::Catalog,
    state: &crate::desired::DesiredState,
) -> serde_json::Value {
    let writes = writes::plan(
        cluster_id,
        catalog,
        state,
        &snapshot::Observed::default(),
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    );
    let items: Vec<&serde_json::Value> = writes
        .values()
        .filter(|w| w.id.deletable())
        .map(|w| &w.body)
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// The field manager of every server-side apply the gateway makes.
pub const FIELD_MANAGER: &str = "mcwan";
/// The field manager of the `mcwan export` command.
pub const CLI_FIELD_MANAGER: &str = "mcwan-cli";
/// The standard label naming the controller that manages an EndpointSlice.
pub const LABEL_SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// The label naming the controller that manages a ServiceImport.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of both managed-by labels on objects mcwan writes.
pub const MANAGED_BY: &str = "mcwan.l7mp.io";
/// What an mcwan EndpointSlice is: [`SLICE_INGRESS`] or [`SLICE_IMPORT`].
pub const LABEL_SLICE_ROLE: &str = "mcw.l7mp.io/slice";
/// An exporter's published ingress: its gateway's ingress address and ports.
pub const SLICE_INGRESS: &str = "ingress";
/// An importer's MCS EndpointSlice of one source cluster.
pub const SLICE_IMPORT: &str = "import";
/// The tunnel class of a published ingress slice.
pub const ANNOTATION_TUNNEL_CLASS: &str = "mcw.l7mp.io/tunnel-class";
/// On an ingress slice of a class other than the export's own: the class, whose requests a
/// WANRoute sends there.
pub const ANNOTATION_ROUTE_CLASS: &str = "mcw.l7mp.io/route-class";
