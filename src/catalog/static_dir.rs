//! The static catalog source: a directory with `clusterset.yaml` and one subdirectory per
//! cluster ID holding that cluster's manifests (`*.yaml`, `*.yml`, `*.json`, in any depth).

use std::path::{Path, PathBuf};

use super::{Catalog, ClusterSet, ClusterSetFile};
use crate::problem::{ObjectRef, Problem};

pub const CLUSTERSET_FILE: &str = "clusterset.yaml";

/// Why a catalog directory cannot be used at all. Anything less is a [`Problem`] in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    ClusterSet { path: PathBuf, message: String },
}

/// Reads a catalog directory.
pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
    let path = dir.join(CLUSTERSET_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Read {
        path: path.clone(),
        source,
    })?;
    let file: ClusterSetFile = serde_path_to_error::deserialize(
        serde_yaml::Deserializer::from_str(&text),
    )
    .map_err(|e| CatalogError::ClusterSet {
        path: path.clone(),
        message: match e.path().to_string().as_str() {
            "." => e.into_inner().to_string(),
            p => format!("field {p}: {}", e.into_inner()),
        },
    })?;
    let mut problems = Vec::new();
    let clusterset = ClusterSet::from_file(file, &mut problems);
    let mut catalog = Catalog::new(clusterset, problems);
    for (id, objects) in &mut catalog.clusters {
        let cluster_dir = dir.join(id);
        if is_dir_symlink(&cluster_dir) {
            catalog
                .problems
                .push(dir_symlink_problem(Some(id), &cluster_dir));
            continue;
        }
        if !cluster_dir.is_dir() {
            catalog.problems.push(Problem::warning(
                Some(id),
                ObjectRef::cluster_scoped("directory", &cluster_dir.display().to_string()),
                None,
                "missing: the cluster has no objects".into(),
            ));
            continue;
        }
        for file in manifest_files(&cluster_dir, &mut catalog.problems, id) {
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    let name = file
                        .strip_prefix(dir)
                        .unwrap_or(&file)
                        .display()
                        .to_string();
                    super::load_manifests(id, &name, &text, objects, &mut catalog.problems);
                }
                Err(e) => catalog.problems.push(Problem::error(
                    Some(id),
                    ObjectRef::cluster_scoped("file", &file.display().to_string()),
                    None,
                    format!("cannot read: {e}"),
                )),
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir()
                && !catalog.clusters.contains_key(&name)
                && !name.starts_with('.')
            {
                catalog.problems.push(Problem::warning(
                    None,
                    ObjectRef::cluster_scoped("directory", &entry.path().display().to_string()),
                    None,
                    format!("no cluster {name:?} in {CLUSTERSET_FILE}; ignored"),
                ));
            }
        }
    }
    Ok(catalog)
}

fn is_dir_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) && path.is_dir()
}

fn dir_symlink_problem(cluster: Option<&str>, path: &Path) -> Problem {
    Problem::warning(
        cluster,
        ObjectRef::cluster_scoped("directory", &path.display().to_string()),
        None,
        "a symlink to a directory: not followed (catalog directories must be real directories)"
            .into(),
    )
}

/// Manifest files below `dir`, sorted, so loading is deterministic.
fn manifest_files(dir: &Path, problems: &mut Vec<Problem>, cluster: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                problems.push(Problem::error(
                    Some(cluster),
                    ObjectRef::cluster_scoped("directory", &d.display().to_string()),
                    None,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden {
                continue;
            }
            // Symlinks to files are followed (a ConfigMap volume is made of them); symlinks to
            // directories are not: a loop would never end, and a link to a parent would load
            // every file many times. The watcher does not follow them either.
            if entry.file_type().is_ok_and(|t| t.is_symlink()) && path.is_dir() {
                problems.push(dir_symlink_problem(Some(cluster), &path));
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
