//! The catalog: what every cluster of the clusterset exports and contains, as plain data.
//! Sources (a static directory today, Kubernetes API servers later) fill it; the desired-state
//! function reads it. It does no I/O of its own.

mod clusterset;
mod embedded;
mod manifest;
mod static_dir;

use std::collections::BTreeMap;

pub use clusterset::{
    parse_clusterset, ClusterEntry, ClusterSet, ClusterSetFile, GatewayEntry, WanMode,
};
pub use embedded::{example as embedded_example, EXAMPLE_CLUSTER};
pub use manifest::load as load_manifests;
pub use static_dir::{load_dir, CatalogDir, CatalogError, CLUSTERSET_FILE};

use crate::model::{ClusterId, ClusterObjects};
use crate::problem::Problem;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    pub clusterset: ClusterSet,
    /// Each cluster's objects, by cluster ID. Every cluster of `clusterset` has an entry.
    pub clusters: BTreeMap<ClusterId, ClusterObjects>,
    /// What could not be read, or was read with a warning.
    pub problems: Vec<Problem>,
}

impl Catalog {
    /// A catalog of `clusterset` whose clusters hold no objects yet.
    pub fn new(clusterset: ClusterSet, problems: Vec<Problem>) -> Self {
        Self {
            clusters: clusterset
                .clusters
                .keys()
                .map(|id| (id.clone(), ClusterObjects::default()))
                .collect(),
            clusterset,
            problems,
        }
    }
}
