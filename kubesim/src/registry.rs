//! The registry of served resources, keyed by group, version and plural.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::resource::{ResourceId, ResourceType};

/// Every resource type the simulator serves.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    types: BTreeMap<(String, String, String), ResourceType>,
}

impl Registry {
    /// A registry holding [`ResourceType::builtins`].
    pub fn with_builtins() -> Self {
        let mut registry = Self::default();
        for rt in ResourceType::builtins() {
            registry.register(rt);
        }
        registry
    }

    /// Serve `rt`, replacing any type with the same group, version and plural.
    pub fn register(&mut self, rt: ResourceType) {
        let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
        self.types.insert(key, rt);
    }

    /// Stop serving every version of `id`.
    pub fn unregister(&mut self, id: &ResourceId) {
        self.types
            .retain(|(group, _, plural), _| !(group == &id.group && plural == &id.plural));
    }

    /// The type served at `group/version/plural`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
    }

    /// The type of `kind` served at `api_version` (`v1` or `group/version`).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .values()
            .find(|rt| rt.group == group && rt.version == version && rt.kind == kind)
    }

    /// The type of `plural` served at `api_version` (`v1` or `group/version`).
    pub fn by_plural(&self, api_version: &str, plural: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.get(group, version, plural)
    }

    /// Any served version of the resource `id`, the preferred one first.
    pub fn versions_of(&self, id: &ResourceId) -> Vec<&ResourceType> {
        let mut found: Vec<&ResourceType> = self
            .types
            .values()
            .filter(|rt| rt.group == id.group && rt.plural == id.plural)
            .collect();
        found.sort_by(|a, b| compare_versions(&a.version, &b.version));
        found
    }

    /// Served API groups (the core group `""` included), each with its versions,
    /// the preferred version first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, version, _) in self.types.keys() {
            let versions = groups.entry(group.clone()).or_default();
            if !versions.contains(version) {
                versions.push(version.clone());
            }
        }
        groups
            .into_iter()
            .map(|(group, mut versions)| {
                versions.sort_by(|a, b| compare_versions(a, b));
                (group, versions)
            })
            .collect()
    }

    /// The types served at `group/version`.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceType> + 'a {
        self.types
            .values()
            .filter(move |rt| rt.group == group && rt.version == version)
    }
}

/// Split `v1` into `("", "v1")` and `group/version` into `("group", "version")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Kubernetes version priority: GA before beta before alpha, higher numbers first,
/// anything else last in lexical order. Sorting with this puts the preferred version first.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

/// Sort key: (stability class, negated major, negated minor).
fn rank(version: &str) -> (u8, i64, i64) {
    let Some(rest) = version.strip_prefix('v') else {
        return (3, 0, 0);
    };
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let Ok(major) = rest[..digits_end].parse::<i64>() else {
        return (3, 0, 0);
    };
    let suffix = &rest[digits_end..];
    let (class, minor) = if suffix.is_empty() {
        (0, "0")
    } else if let Some(n) = suffix.strip_prefix("beta") {
        (1, n)
    } else if let Some(n) = suffix.strip_prefix("alpha") {
        (2, n)
    } else {
        return (3, 0, 0);
    };
    match minor.parse::<i64>() {
        Ok(minor) => (class, -major, -minor),
        Err(_) => (3, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_preferred_first() {
        let mut versions = vec!["v1alpha1", "v2", "v1beta2", "v1", "v1beta1", "foo"];
        versions.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            versions,
            ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }

    #[test]
    fn builtins_resolve_by_kind_and_plural() {
        let registry = Registry::with_builtins();
        let se = registry
            .by_kind("multicluster.x-k8s.io/v1alpha1", "ServiceExport")
            .expect("serviceexports are built in");
        assert_eq!(se.plural, "serviceexports");
        assert!(se.status_subresource);
        assert!(registry.by_plural("v1", "services").is_some());
        assert!(registry.by_plural("v1", "pods").is_none());
    }

    #[test]
    fn unregister_removes_every_version() {
        let mut registry = Registry::default();
        registry.register(ResourceType::namespaced("x.io", "v1", "Foo", "foos"));
        registry.register(ResourceType::namespaced("x.io", "v2", "Foo", "foos"));
        let id = ResourceId {
            group: "x.io".into(),
            plural: "foos".into(),
        };
        assert_eq!(registry.versions_of(&id)[0].version, "v2");
        registry.unregister(&id);
        assert!(registry.versions_of(&id).is_empty());
    }
}
