//! Problems found in input: every one names the cluster, the object and the field, so that an
//! operator can find and fix it. Problems are data; sources and the desired-state function collect
//! them, actuators turn them into log lines, conditions and events.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{ClusterId, ServiceKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The object is used, but something about it deserves attention.
    Warning,
    /// The object (and only it) is ignored.
    Error,
}

/// The object a problem is about: `Kind namespace/name`, `Kind name`, or a file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn namespaced(kind: &str, key: &ServiceKey) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: Some(key.namespace.clone()),
            name: key.name.clone(),
        }
    }

    pub fn cluster_scoped(kind: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: None,
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    pub severity: Severity,
    /// The cluster whose object this is; `None` for the clusterset file itself.
    pub cluster: Option<ClusterId>,
    pub object: ObjectRef,
    /// JSON-path-like field name (`spec.port`, `metadata.annotations["..."]`), when one is at fault.
    pub field: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn error(
        cluster: Option<&str>,
        object: ObjectRef,
        field: Option<&str>,
        message: String,
    ) -> Self {
        Self {
            severity: Severity::Error,
            cluster: cluster.map(str::to_owned),
            object,
            field: field.map(str::to_owned),
            message,
        }
    }

    pub fn warning(
        cluster: Option<&str>,
        object: ObjectRef,
        field: Option<&str>,
        message: String,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(cluster, object, field, message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cluster) = &self.cluster {
            write!(f, "cluster {cluster}: ")?;
        }
        write!(f, "{}", self.object)?;
        if let Some(field) = &self.field {
            write!(f, ": field {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}
