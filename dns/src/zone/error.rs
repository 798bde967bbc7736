//! Errors found while building a zone.

use thiserror::Error;

use crate::label::LabelError;

/// A problem with the zone settings or with one service.
///
/// Settings problems stop the build; a service problem only leaves that service
/// out of the zone (see [`ZoneBuild::errors`](crate::ZoneBuild::errors)).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ZoneError {
    /// A zone setting is unusable.
    #[error("zone config: invalid `{field}`: {problem}")]
    Config {
        /// The offending [`ZoneConfig`](crate::ZoneConfig) field.
        field: &'static str,
        /// What is wrong with it.
        problem: FieldProblem,
    },
    /// A service field is unusable; the service is not served.
    #[error("service {service}: invalid `{field}`: {problem}")]
    Service {
        /// `<namespace>/<name>`.
        service: String,
        /// The offending field, e.g. `ports[1].name` or `endpoints[0].hostname`.
        field: String,
        /// What is wrong with it.
        problem: FieldProblem,
    },
    /// The same `<namespace>/<name>` was given more than once.
    #[error("service {service}: given more than once; only the first is served")]
    DuplicateService {
        /// `<namespace>/<name>`.
        service: String,
    },
}

impl ZoneError {
    /// The `<namespace>/<name>` of the service concerned, if any.
    pub fn service(&self) -> Option<&str> {
        match self {
            Self::Config { .. } => None,
            Self::Service { service, .. } | Self::DuplicateService { service } => Some(service),
        }
    }
}

/// What is wrong with one field.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FieldProblem {
    /// Not an RFC 1123 label.
    #[error("{value:?} is not a DNS label: {reason}")]
    InvalidLabel {
        /// The offending value.
        value: String,
        /// Why it is not a label.
        reason: LabelError,
    },
    /// Not a domain name, or one that is too long.
    #[error("{value:?} is not a usable domain name: {reason}")]
    InvalidName {
        /// The offending value (a full name built from the service's fields).
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A number outside the range DNS can carry.
    #[error("{value} is larger than {max}")]
    OutOfRange {
        /// The offending value.
        value: u32,
        /// The largest allowed value.
        max: u32,
    },
    /// A name that must lie inside the zone but does not.
    #[error("{value:?} is outside the zone")]
    OutsideZone {
        /// The offending name.
        value: String,
    },
    /// A ClusterSetIP service without any ClusterSetIP.
    #[error("a ClusterSetIP service needs at least one IP")]
    NoClusterSetIp,
    /// Port 0.
    #[error("port 0 cannot be published")]
    PortZero,
}
