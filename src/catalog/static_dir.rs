//! The static catalog source: a directory with `clusterset.yaml` and one subdirectory per
//! cluster ID holding that cluster's manifests (`*.yaml`, `*.yml`, `*.json`, in any depth).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Catalog, ClusterSet};
use crate::model::{ClusterObjects, ServiceKey};
use crate::problem::{ObjectRef, Problem, Severity};

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

/// Reads a catalog directory, with no history: what `mcwan plan` and a first start see.
pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
    let mut loader = CatalogDir::new(dir);
    loader.load()?;
    Ok(loader
        .into_catalog()
        .unwrap_or_else(|| unreachable!("a load that succeeded keeps its catalog")))
}

/// A catalog directory read again and again (the gateway's static source). Between loads it
/// keeps a digest of each file's text and what it produced, so that
///
/// - a file whose text did not change is not parsed again;
/// - a file whose new text does not load (a YAML error, an invalid object, a rewrite caught
///   half-written) keeps the last good version of each object the new text fails to give,
///   with a warning naming it, while the objects it does give take effect;
/// - a clusterset.yaml with a structural error (a duplicate cluster ID or index, a bad
///   address) keeps the last good clusterset, so no cluster drops out by accident;
/// - a cluster that exported services and now exports none is logged loudly.
#[derive(Debug)]
pub struct CatalogDir {
    dir: PathBuf,
    /// Per manifest file: its last text's digest, what it produced, and its last good objects.
    files: BTreeMap<PathBuf, FileState>,
    /// The last clusterset.yaml without structural errors.
    clusterset: Option<ClusterSet>,
    /// Exports per cluster at the last load.
    exports: BTreeMap<String, usize>,
    /// The last catalog, and the files it was made of (in order), for the next load to update.
    assembled: Option<Assembled>,
}

#[derive(Debug)]
struct Assembled {
    catalog: Catalog,
    files: Vec<(String, PathBuf)>,
}

impl Assembled {
    /// Whether the next catalog can be this one updated: the same clusterset, and no object
    /// defined twice in this one.
    fn fits(&self, clusterset: &ClusterSet) -> bool {
        &self.catalog.clusterset == clusterset
            && !self
                .catalog
                .problems
                .iter()
                .any(|p| p.message.starts_with(DEFINED_TWICE))
    }
}

/// One thing a load found, in order.
#[derive(Debug)]
enum Step {
    Problem(Problem),
    /// A manifest file of a cluster; `replaced`: the objects it gave before, when it was read
    /// again and gives others now.
    File {
        cluster: String,
        path: PathBuf,
        replaced: Option<ClusterObjects>,
    },
}

const DEFINED_TWICE: &str = "defined twice";

#[derive(Debug)]
struct FileState {
    digest: Digest,
    objects: ClusterObjects,
    problems: Vec<Problem>,
    /// The objects of the last text that loaded without an error.
    good: Option<ClusterObjects>,
}

impl CatalogDir {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            files: BTreeMap::new(),
            clusterset: None,
            exports: BTreeMap::new(),
            assembled: None,
        }
    }

    /// Reads the directory as it is now.
    pub fn load(&mut self) -> Result<&Catalog, CatalogError> {
        self.load_changed(None)
    }

    /// Reads the directory as it is now, given the paths changed since the last load: a
    /// manifest file loaded before and not among them (nor under one of them) is taken as it
    /// was, unread, and the last catalog is updated in place with the objects of the files that
    /// changed. `None` reads every file and assembles the catalog anew.
    pub fn load_changed(
        &mut self,
        changed: Option<&BTreeSet<PathBuf>>,
    ) -> Result<&Catalog, CatalogError> {
        let dir = self.dir.clone();
        let path = dir.join(CLUSTERSET_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Read {
            path: path.clone(),
            source,
        })?;
        let file = crate::catalog::parse_clusterset(&text).map_err(|message| {
            CatalogError::ClusterSet {
                path: path.clone(),
                message,
            }
        })?;
        let mut problems = Vec::new();
        let parsed = ClusterSet::from_file(file, &mut problems);
        let structural = problems.iter().any(|p| p.severity == Severity::Error);
        let clusterset = match (&self.clusterset, structural) {
            (Some(last), true) => {
                problems.push(Problem::error(
                    None,
                    ObjectRef::cluster_scoped("file", CLUSTERSET_FILE),
                    None,
                    "has errors: the last good clusterset stays in force until they are fixed"
                        .into(),
                ));
                last.clone()
            }
            (_, false) => {
                self.clusterset = Some(parsed.clone());
                parsed
            }
            (None, true) => parsed,
        };
        // What the load found, in order: problems, and each cluster's manifest files (with
        // the objects a re-read file gave before, when they changed).
        let mut steps: Vec<Step> = problems.into_iter().map(Step::Problem).collect();
        let mut seen = BTreeSet::new();
        for id in clusterset.clusters.keys() {
            let cluster_dir = dir.join(id);
            if is_dir_symlink(&cluster_dir) {
                steps.push(Step::Problem(dir_symlink_problem(Some(id), &cluster_dir)));
                continue;
            }
            if !cluster_dir.is_dir() {
                steps.push(Step::Problem(Problem::warning(
                    Some(id),
                    ObjectRef::cluster_scoped("directory", &cluster_dir.display().to_string()),
                    None,
                    "missing: the cluster has no objects".into(),
                )));
                continue;
            }
            let mut listing = Vec::new();
            let files = manifest_files(&cluster_dir, &mut listing, id);
            steps.extend(listing.into_iter().map(Step::Problem));
            for file in files {
                seen.insert(file.clone());
                if let Some(changed) = changed {
                    if !may_have_changed(&file, changed) && self.files.contains_key(&file) {
                        steps.push(Step::File {
                            cluster: id.clone(),
                            path: file,
                            replaced: None,
                        });
                        continue;
                    }
                }
                let text = match std::fs::read_to_string(&file) {
                    Ok(text) => text,
                    Err(e) => {
                        steps.push(Step::Problem(Problem::error(
                            Some(id),
                            ObjectRef::cluster_scoped("file", &file.display().to_string()),
                            None,
                            format!("cannot read: {e}"),
                        )));
                        continue;
                    }
                };
                let name = file
                    .strip_prefix(&dir)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                let (state, replaced) = FileState::load(id, &name, text, self.files.remove(&file));
                self.files.insert(file.clone(), state);
                steps.push(Step::File {
                    cluster: id.clone(),
                    path: file,
                    replaced,
                });
            }
        }
        let mut catalog = self
            .assembled
            .take()
            .filter(|last| changed.is_some() && last.fits(&clusterset))
            .and_then(|last| self.update(last, &steps))
            .unwrap_or_else(|| self.assemble(clusterset, &steps));
        // Files that are gone take their objects (and their history) with them.
        self.files.retain(|f, _| seen.contains(f));
        self.note_withdrawals(&catalog);
        if let Ok(entries) = std::fs::read_dir(&dir) {
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
        let assembled = self.assembled.insert(Assembled {
            catalog,
            files: steps
                .into_iter()
                .filter_map(|s| match s {
                    Step::File { cluster, path, .. } => Some((cluster, path)),
                    Step::Problem(_) => None,
                })
                .collect(),
        });
        Ok(&assembled.catalog)
    }

    /// The catalog of the last load that succeeded, if any.
    pub fn current(&self) -> Option<&Catalog> {
        self.assembled.as_ref().map(|a| &a.catalog)
    }

    /// Gives up the catalog of the last load.
    pub fn into_catalog(self) -> Option<Catalog> {
        self.assembled.map(|a| a.catalog)
    }

    /// The catalog of `steps` assembled from every file's objects: the first definition of an
    /// object (in file order) stays, and each other one is a problem.
    fn assemble(&self, clusterset: ClusterSet, steps: &[Step]) -> Catalog {
        let mut catalog = Catalog::new(clusterset, Vec::new());
        for step in steps {
            match step {
                Step::Problem(p) => catalog.problems.push(p.clone()),
                Step::File { cluster, path, .. } => {
                    let (Some(objects), Some(state)) =
                        (catalog.clusters.get_mut(cluster), self.files.get(path))
                    else {
                        continue;
                    };
                    merge(cluster, objects, &state.objects, &mut catalog.problems);
                    catalog.problems.extend(state.problems.iter().cloned());
                }
            }
        }
        catalog
    }

    /// `last` with the objects of the files that changed since swapped for their new ones;
    /// `None` when that could give another catalog than [`Self::assemble`] (an object defined
    /// twice, a service's EndpointSlices in several files).
    fn update(&self, last: Assembled, steps: &[Step]) -> Option<Catalog> {
        let mut catalog = last.catalog;
        catalog.problems.clear();
        let now: BTreeSet<&Path> = steps
            .iter()
            .filter_map(|s| match s {
                Step::File { path, .. } => Some(path.as_path()),
                Step::Problem(_) => None,
            })
            .collect();
        let before: BTreeSet<&Path> = last.files.iter().map(|(_, p)| p.as_path()).collect();
        // Files gone (or unreadable now) take their objects with them.
        for (cluster, path) in &last.files {
            if !now.contains(path.as_path()) {
                let state = self.files.get(path)?;
                withdraw(catalog.clusters.get_mut(cluster)?, &state.objects)?;
            }
        }
        for step in steps {
            match step {
                Step::Problem(p) => catalog.problems.push(p.clone()),
                Step::File {
                    cluster,
                    path,
                    replaced,
                } => {
                    let state = self.files.get(path)?;
                    // A file the last catalog did not have gives all its objects; one it had,
                    // what replaced its objects.
                    let before = match (before.contains(path.as_path()), replaced) {
                        (false, _) => Some(&ClusterObjects::default()),
                        (true, replaced) => replaced.as_ref(),
                    };
                    if let Some(before) = before {
                        let objects = catalog.clusters.get_mut(cluster)?;
                        withdraw(objects, before)?;
                        let shared_slices = state
                            .objects
                            .endpoint_slices
                            .keys()
                            .any(|k| objects.endpoint_slices.contains_key(k));
                        if shared_slices || !add_absent(objects, &state.objects).present.is_empty()
                        {
                            return None;
                        }
                    }
                    catalog.problems.extend(state.problems.iter().cloned());
                }
            }
        }
        // Namespaces: what the cluster's files declare now.
        for objects in catalog.clusters.values_mut() {
            objects.namespaces.clear();
        }
        for step in steps {
            if let Step::File { cluster, path, .. } = step {
                if let (Some(objects), Some(state)) =
                    (catalog.clusters.get_mut(cluster), self.files.get(path))
                {
                    objects
                        .namespaces
                        .extend(state.objects.namespaces.iter().cloned());
                }
            }
        }
        Some(catalog)
    }

    /// Warns when a cluster that exported services exports none any more: every import of
    /// them is withdrawn, which is rarely what an edit meant.
    fn note_withdrawals(&mut self, catalog: &Catalog) {
        let now: BTreeMap<String, usize> = catalog
            .clusters
            .iter()
            .map(|(id, o)| (id.clone(), o.exports.len()))
            .collect();
        for (id, before) in &self.exports {
            if *before > 0 && now.get(id).copied().unwrap_or(0) == 0 {
                tracing::warn!(
                    cluster = %id,
                    before,
                    "the cluster exports nothing any more: every import of its {before} services is withdrawn (is its directory empty?)"
                );
            }
        }
        self.exports = now;
    }
}

/// What a file's last text is known by: its length and two independent 64-bit hashes of it.
/// The text itself is not kept (at 10,000 services it is megabytes).
#[derive(Debug, PartialEq, Eq)]
struct Digest {
    len: usize,
    fnv: u64,
    sip: u64,
}

impl Digest {
    fn of(text: &str) -> Self {
        use std::hash::{Hash, Hasher};
        let mut sip = std::hash::DefaultHasher::new();
        text.hash(&mut sip);
        Self {
            len: text.len(),
            fnv: crate::alloc::fnv1a(text.as_bytes()),
            sip: sip.finish(),
        }
    }
}

impl FileState {
    /// Loads `text`, reusing `last` when the text did not change and falling back to its last
    /// good objects where the new text fails.
    /// Also gives the objects `last` gave, when these are others.
    fn load(
        cluster: &str,
        name: &str,
        text: String,
        last: Option<FileState>,
    ) -> (Self, Option<ClusterObjects>) {
        let digest = Digest::of(&text);
        let mut last = match last {
            // Unchanged: reparsed by no one, copied by no one.
            Some(last) if last.digest == digest => return (last, None),
            other => other,
        };
        let before = last
            .as_mut()
            .map(|l| std::mem::take(&mut l.objects))
            .unwrap_or_default();
        let mut objects = ClusterObjects::default();
        let mut problems = Vec::new();
        super::load_manifests(cluster, name, &text, &mut objects, &mut problems);
        let failed = problems.iter().any(|p| p.severity == Severity::Error);
        let good = match (failed, last.and_then(|l| l.good)) {
            (false, _) => Some(objects.clone()),
            (true, Some(good)) => {
                for kept in keep_missing(&mut objects, &good) {
                    problems.push(Problem::warning(
                        Some(cluster),
                        kept,
                        None,
                        format!("its new version in {name} does not load: the last good version stays in force"),
                    ));
                }
                Some(good)
            }
            (true, None) => None,
        };
        let replaced = (before != objects).then_some(before);
        let state = Self {
            digest,
            objects,
            problems,
            good,
        };
        (state, replaced)
    }
}

/// Takes out of `objects` what `file` gave them; `None` when a service's EndpointSlices come
/// from another file too (their order would then be the files' again).
fn withdraw(objects: &mut ClusterObjects, file: &ClusterObjects) -> Option<()> {
    for key in file.services.keys() {
        objects.services.remove(key);
    }
    for key in file.exports.keys() {
        objects.exports.remove(key);
    }
    for key in file.wan_policies.keys() {
        objects.wan_policies.remove(key);
    }
    for key in file.wan_imports.keys() {
        objects.wan_imports.remove(key);
    }
    for key in file.wan_routes.keys() {
        objects.wan_routes.remove(key);
    }
    for (key, slices) in &file.endpoint_slices {
        let present = objects.endpoint_slices.remove(key).unwrap_or_default();
        if present.len() != slices.len() {
            return None;
        }
    }
    Some(())
}

/// Whether `file` is, or lies under, one of the `changed` paths. A file symlink always may
/// have: its target can change without an event in the directory.
fn may_have_changed(file: &Path, changed: &BTreeSet<PathBuf>) -> bool {
    file.ancestors().any(|p| changed.contains(p)) || file.is_symlink()
}

/// Adds to `objects` every object of `good` it lacks; returns what was added.
fn keep_missing(objects: &mut ClusterObjects, good: &ClusterObjects) -> Vec<ObjectRef> {
    let mut kept = Vec::new();
    for ns in &good.namespaces {
        if objects.namespaces.insert(ns.clone()) {
            kept.push(ObjectRef::cluster_scoped("Namespace", ns));
        }
    }
    kept.extend(add_absent(objects, good).added);
    kept
}

/// Adds one file's objects to its cluster's; an object another file defined already is a
/// problem, and the first definition (in file order) stays.
fn merge(
    cluster: &str,
    into: &mut ClusterObjects,
    from: &ClusterObjects,
    problems: &mut Vec<Problem>,
) {
    into.namespaces.extend(from.namespaces.iter().cloned());
    for object in add_absent(into, from).present {
        problems.push(Problem::error(
            Some(cluster),
            object,
            None,
            format!("{DEFINED_TWICE}; the first definition is used"),
        ));
    }
}

/// What [`add_absent`] did with each object.
#[derive(Default)]
struct Added {
    added: Vec<ObjectRef>,
    /// Objects `into` had already (left as they were).
    present: Vec<ObjectRef>,
}

/// Adds each Service, ServiceExport, WANPolicy, WANImport, WANRoute and EndpointSlice of `from` that `into` lacks.
fn add_absent(into: &mut ClusterObjects, from: &ClusterObjects) -> Added {
    let mut out = Added::default();
    add_absent_in(
        &mut into.services,
        &from.services,
        |k| ObjectRef::namespaced("Service", k),
        &mut out,
    );
    add_absent_in(
        &mut into.exports,
        &from.exports,
        |k| ObjectRef::namespaced("ServiceExport", k),
        &mut out,
    );
    add_absent_in(
        &mut into.wan_policies,
        &from.wan_policies,
        |k| ObjectRef::cluster_scoped("WANPolicy", k),
        &mut out,
    );
    add_absent_in(
        &mut into.wan_imports,
        &from.wan_imports,
        |k| ObjectRef::namespaced("WANImport", k),
        &mut out,
    );
    add_absent_in(
        &mut into.wan_routes,
        &from.wan_routes,
        |k| ObjectRef::namespaced("WANRoute", k),
        &mut out,
    );
    for (key, slices) in &from.endpoint_slices {
        let present = into.endpoint_slices.entry(key.clone()).or_default();
        for slice in slices {
            let object = ObjectRef::namespaced(
                "EndpointSlice",
                &ServiceKey::new(key.namespace.clone(), slice.name.clone()),
            );
            if present.iter().any(|s| s.name == slice.name) {
                out.present.push(object);
            } else {
                present.push(slice.clone());
                out.added.push(object);
            }
        }
    }
    out
}

fn add_absent_in<K: Ord + Clone, V: Clone>(
    into: &mut BTreeMap<K, V>,
    from: &BTreeMap<K, V>,
    object: impl Fn(&K) -> ObjectRef,
    out: &mut Added,
) {
    for (key, value) in from {
        match into.entry(key.clone()) {
            Entry::Occupied(_) => out.present.push(object(key)),
            Entry::Vacant(e) => {
                e.insert(value.clone());
                out.added.push(object(key));
            }
        }
    }
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
