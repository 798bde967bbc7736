//! The example clusterset (`examples/clusterset`), built into the binary: what `mcwan gateway`
//! and `mcwan plan` use when no `--catalog` is given, so a first run needs no files.

use super::{Catalog, ClusterSet};

/// The cluster an embedded-example gateway plays: the importing side of the seed's stories.
pub const EXAMPLE_CLUSTER: &str = "cluster-2";

macro_rules! example {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/clusterset/",
                $path
            )),
        )
    };
}

const CLUSTERSET: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/clusterset/clusterset.yaml"
));

const FILES: &[(&str, &str)] = &[
    example!("cluster-1/namespaces.yaml"),
    example!("cluster-1/wanpolicies.yaml"),
    example!("cluster-1/payment.yaml"),
    example!("cluster-1/logging.yaml"),
    example!("cluster-1/ledger.yaml"),
    example!("cluster-2/namespaces.yaml"),
    example!("cluster-2/wanpolicies.yaml"),
];

/// The example clusterset as a catalog.
pub fn example() -> Catalog {
    let mut problems = Vec::new();
    let clusterset = match crate::catalog::parse_clusterset(CLUSTERSET) {
        Ok(file) => ClusterSet::from_file(file, &mut problems),
        // The file is part of the build and covered by a test; keep the type total anyway.
        Err(_) => ClusterSet::default(),
    };
    let mut catalog = Catalog::new(clusterset, problems);
    for (path, text) in FILES {
        let Some((cluster, _)) = path.split_once('/') else {
            continue;
        };
        if let Some(objects) = catalog.clusters.get_mut(cluster) {
            super::load_manifests(cluster, path, text, objects, &mut catalog.problems);
        }
    }
    catalog
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_example_equals_the_example_directory() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clusterset"));
        let loaded = super::super::load_dir(dir).unwrap();
        let embedded = super::example();
        assert_eq!(embedded.clusterset, loaded.clusterset);
        assert_eq!(
            embedded.clusters, loaded.clusters,
            "a file of examples/clusterset is missing from FILES"
        );
    }
}
