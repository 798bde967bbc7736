//! Errors: [`ApiError`] is what the HTTP API answers (a Kubernetes `Status`),
//! [`SimError`] is what the Rust API of [`crate::KubeSim`] returns.

use serde_json::{json, Value};

/// A failed API request, rendered on the wire as a `meta/v1` `Status` object so that
/// clients (kube-rs, client-go) map it to their API error type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    /// HTTP status code, also `Status.code`.
    pub code: u16,
    /// Machine-readable `Status.reason`, for instance `NotFound`.
    pub reason: &'static str,
    /// Human-readable `Status.message`, naming the object.
    pub message: String,
    /// `Status.details`: the group, resource plural and name involved, when known.
    pub details: Option<Details>,
}

/// The object an [`ApiError`] is about (`Status.details`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Details {
    /// API group, empty for the core group.
    pub group: String,
    /// Resource plural, reported as `details.kind` as kube-apiserver does.
    pub plural: String,
    /// Object name.
    pub name: String,
}

impl Details {
    /// Details for object `name` of resource `plural` in `group`.
    pub fn new(group: &str, plural: &str, name: &str) -> Self {
        Self {
            group: group.to_owned(),
            plural: plural.to_owned(),
            name: name.to_owned(),
        }
    }

    /// `plural.group` (or `plural` for the core group), as kube-apiserver names a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Details) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 404 NotFound for a named object.
    pub fn not_found(details: Details) -> Self {
        let message = format!("{} \"{}\" not found", details.qualified(), details.name);
        Self::new(404, "NotFound", message).with_details(details)
    }

    /// 404 NotFound for a path that names no served resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(details: Details) -> Self {
        let message = format!(
            "{} \"{}\" already exists",
            details.qualified(),
            details.name
        );
        Self::new(409, "AlreadyExists", message).with_details(details)
    }

    /// 409 Conflict: an optimistic-concurrency precondition failed.
    pub fn conflict(details: Details, why: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{}\": {why}",
            details.qualified(),
            details.name
        );
        Self::new(409, "Conflict", message).with_details(details)
    }

    /// 409 Conflict raised by server-side apply when fields are owned by another manager.
    pub fn apply_conflict(details: Details, message: String) -> Self {
        Self::new(409, "Conflict", message).with_details(details)
    }

    /// 410 Gone with reason `Expired`: a resource version older than the kept history.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 422 Invalid: the object fails validation.
    pub fn invalid(details: Details, cause: &str) -> Self {
        let message = format!(
            "{} \"{}\" is invalid: {cause}",
            details.qualified(),
            details.name
        );
        Self::new(422, "Invalid", message).with_details(details)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({method} {path})"
            ),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type:?})"),
        )
    }

    /// 504 Timeout for a resource version newer than the server's.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        Self::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        )
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = json!({
                "name": details.name,
                "group": details.group,
                "kind": details.plural,
            });
        }
        status
    }
}

/// Errors of the Rust API of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding or serving the listener failed.
    #[error("kubesim listener on {addr}: {source}")]
    Listen {
        /// The address that could not be bound.
        addr: std::net::SocketAddr,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The kube-rs client could not be built for the simulator's URL.
    #[error("kube client for {url}: {source}")]
    Client {
        /// The simulator's URL.
        url: String,
        /// The kube-rs error.
        source: Box<kube::Error>,
    },
    /// An object operation was refused, exactly as the HTTP API would refuse it.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No served resource has this apiVersion and kind or plural.
    #[error("no resource is served for {api_version} {name}")]
    UnknownResource {
        /// The apiVersion asked for.
        api_version: String,
        /// The kind or plural asked for.
        name: String,
    },
    /// Writing a file (for instance a kubeconfig) failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_names_the_object() {
        let status = ApiError::not_found(Details::new("", "services", "web")).to_status();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["message"], "services \"web\" not found");
        assert_eq!(status["details"]["kind"], "services");
    }

    #[test]
    fn qualified_name_includes_group() {
        let details = Details::new("multicluster.x-k8s.io", "serviceexports", "a");
        assert_eq!(details.qualified(), "serviceexports.multicluster.x-k8s.io");
    }
}
