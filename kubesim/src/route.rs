//! URL paths of the Kubernetes API, parsed without looking at the registry.

/// What a request path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/version`
    Version,
    /// `/healthz`, `/livez`, `/readyz`
    Health,
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every named group.
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`: the resources of a group version.
    GroupVersion {
        /// API group, empty for the core group.
        group: String,
        /// API version.
        version: String,
    },
    /// `/openapi/v3`: the index of OpenAPI v3 documents.
    OpenApiIndex,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
    OpenApiGroupVersion {
        /// API group, empty for the core group.
        group: String,
        /// API version.
        version: String,
    },
    /// A collection, an object or an object's subresource.
    Resource(ResourcePath),
}

/// A path under a group version that addresses objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group, empty for the core group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource plural.
    pub plural: String,
    /// Namespace from `/namespaces/{ns}/...`, `None` for all namespaces or cluster scope.
    pub namespace: Option<String>,
    /// Object name, `None` for a collection.
    pub name: Option<String>,
    /// Subresource, for instance `status`.
    pub subresource: Option<String>,
}

/// Subresources of a namespace, which must not be read as a namespaced collection.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Parse a request path; `None` when it addresses nothing the API serves.
pub fn parse(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Some(Route::Version),
        ["healthz" | "livez" | "readyz", ..] => Some(Route::Health),
        ["api"] => Some(Route::CoreVersions),
        ["apis"] => Some(Route::Groups),
        ["apis", group] => Some(Route::Group((*group).to_owned())),
        ["openapi", "v3"] => Some(Route::OpenApiIndex),
        ["openapi", "v3", "api", version] => Some(Route::OpenApiGroupVersion {
            group: String::new(),
            version: (*version).to_owned(),
        }),
        ["openapi", "v3", "apis", group, version] => Some(Route::OpenApiGroupVersion {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        }),
        ["api", version, rest @ ..] => under_group_version("", version, rest),
        ["apis", group, version, rest @ ..] => under_group_version(group, version, rest),
        _ => None,
    }
}

fn under_group_version(group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let gv = || Route::GroupVersion {
        group: group.to_owned(),
        version: version.to_owned(),
    };
    let path = |namespace: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourcePath {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        })
    };
    let route = match rest {
        [] => gv(),
        ["namespaces", ns, plural, tail @ ..] if !NAMESPACE_SUBRESOURCES.contains(plural) => {
            match tail {
                [] => path(Some(ns), plural, None, None),
                [name] => path(Some(ns), plural, Some(name), None),
                [name, sub] => path(Some(ns), plural, Some(name), Some(sub)),
                _ => return None,
            }
        }
        [plural] => path(None, plural, None, None),
        [plural, name] => path(None, plural, Some(name), None),
        [plural, name, sub] => path(None, plural, Some(name), Some(sub)),
        _ => return None,
    };
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match parse(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path} parsed as {other:?}"),
        }
    }

    #[test]
    fn namespaced_object_path() {
        let r = resource("/api/v1/namespaces/default/services/web");
        assert_eq!(r.group, "");
        assert_eq!(r.plural, "services");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource, None);
    }

    #[test]
    fn grouped_status_subresource_path() {
        let r =
            resource("/apis/multicluster.x-k8s.io/v1alpha1/namespaces/a/serviceexports/b/status");
        assert_eq!(r.group, "multicluster.x-k8s.io");
        assert_eq!(r.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn all_namespaces_collection_path() {
        let r = resource("/apis/discovery.k8s.io/v1/endpointslices");
        assert_eq!(r.namespace, None);
        assert_eq!(r.name, None);
    }

    #[test]
    fn namespace_object_and_its_status() {
        let r = resource("/api/v1/namespaces/foo");
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref()),
            ("namespaces", Some("foo"))
        );
        let r = resource("/api/v1/namespaces/foo/status");
        assert_eq!(r.plural, "namespaces");
        assert_eq!(r.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(parse("/api"), Some(Route::CoreVersions));
        assert_eq!(parse("/apis/"), Some(Route::Groups));
        assert_eq!(
            parse("/api/v1"),
            Some(Route::GroupVersion {
                group: String::new(),
                version: "v1".into()
            })
        );
        assert_eq!(parse("/nope"), None);
    }
}
