//! Served resource types: what the simulator knows about a group/version/plural.

use std::fmt;

/// Storage identity of a resource: its API group and plural. All versions of a
/// resource share one storage, as CRD versions with conversion strategy `None` do.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId {
    /// API group, empty for the core group.
    pub group: String,
    /// Lower-case plural, for instance `services`.
    pub plural: String,
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// One served resource at one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// API version within the group, for instance `v1alpha1`.
    pub version: String,
    /// Lower-case plural used in paths.
    pub plural: String,
    /// Lower-case singular name.
    pub singular: String,
    /// Kind, for instance `ServiceExport`.
    pub kind: String,
    /// Namespaced (true) or cluster-scoped (false).
    pub namespaced: bool,
    /// Whether the `status` subresource is served: writes to the main resource then
    /// ignore `.status`, and writes to `/status` change only `.status`.
    pub status_subresource: bool,
    /// Short names for `kubectl`, for instance `svc`.
    pub short_names: Vec<String>,
}

impl ResourceType {
    /// A namespaced resource without a status subresource.
    pub fn namespaced(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.to_owned(),
            namespaced: true,
            status_subresource: false,
            short_names: Vec::new(),
        }
    }

    /// A cluster-scoped resource without a status subresource.
    pub fn cluster(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            namespaced: false,
            ..Self::namespaced(group, version, kind, plural)
        }
    }

    /// Serve the `status` subresource.
    #[must_use]
    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// Set the short names advertised in discovery.
    #[must_use]
    pub fn with_short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// The storage identity (group and plural).
    pub fn id(&self) -> ResourceId {
        ResourceId {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of a list of this resource, for instance `ServiceList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The resources every simulator serves from the start.
    pub fn builtins() -> Vec<ResourceType> {
        const MCS: &str = "multicluster.x-k8s.io";
        vec![
            Self::cluster("", "v1", "Namespace", "namespaces")
                .with_status()
                .with_short_names(&["ns"]),
            Self::namespaced("", "v1", "Service", "services")
                .with_status()
                .with_short_names(&["svc"]),
            Self::namespaced("", "v1", "Event", "events").with_short_names(&["ev"]),
            Self::namespaced("", "v1", "Secret", "secrets"),
            Self::namespaced("", "v1", "ConfigMap", "configmaps").with_short_names(&["cm"]),
            Self::namespaced("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
            Self::namespaced("events.k8s.io", "v1", "Event", "events").with_short_names(&["ev"]),
            Self::namespaced("coordination.k8s.io", "v1", "Lease", "leases"),
            Self::namespaced(MCS, "v1alpha1", "ServiceExport", "serviceexports")
                .with_status()
                .with_short_names(&["svcex"]),
            Self::namespaced(MCS, "v1alpha1", "ServiceImport", "serviceimports")
                .with_status()
                .with_short_names(&["svcim"]),
            Self::cluster("mcw.l7mp.io", "v1alpha1", "WANPolicy", "wanpolicies")
                .with_short_names(&["wp"]),
            Self::namespaced("mcw.l7mp.io", "v1alpha1", "WANImport", "wanimports")
                .with_short_names(&["wanim"]),
            Self::namespaced("mcw.l7mp.io", "v1alpha1", "WANRoute", "wanroutes")
                .with_status()
                .with_short_names(&["wanrt"]),
            Self::cluster(
                "about.k8s.io",
                "v1alpha1",
                "ClusterProperty",
                "clusterproperties",
            )
            .with_short_names(&["clusterproperty"]),
            Self::cluster(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
            )
            .with_status()
            .with_short_names(&["crd", "crds"]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_api_version_has_no_group() {
        let svc = ResourceType::namespaced("", "v1", "Service", "services");
        assert_eq!(svc.api_version(), "v1");
        assert_eq!(svc.id().to_string(), "services");
    }

    #[test]
    fn grouped_api_version_joins_group_and_version() {
        let wp = ResourceType::cluster("mcw.l7mp.io", "v1alpha1", "WANPolicy", "wanpolicies");
        assert_eq!(wp.api_version(), "mcw.l7mp.io/v1alpha1");
        assert_eq!(wp.singular, "wanpolicy");
        assert_eq!(wp.list_kind(), "WANPolicyList");
        assert!(!wp.namespaced);
    }
}
