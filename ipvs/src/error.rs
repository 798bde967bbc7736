//! Errors, each naming the service or destination it is about.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::ServiceKey;

// The Linux errno values the kernel's IPVS code returns.
pub(crate) const EPERM: i32 = 1;
pub(crate) const ENOENT: i32 = 2;
pub(crate) const ESRCH: i32 = 3;
pub(crate) const ENOBUFS: i32 = 105;
pub(crate) const EEXIST: i32 = 17;
pub(crate) const EINVAL: i32 = 22;
pub(crate) const ERANGE: i32 = 34;
pub(crate) const EAFNOSUPPORT: i32 = 97;

/// What a request was about; named in error messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// A virtual service.
    Service(ServiceKey),
    /// A destination of a virtual service.
    Destination {
        /// The service.
        service: ServiceKey,
        /// The destination's address and port.
        destination: SocketAddr,
    },
    /// The list of all services.
    ServiceList,
    /// The destinations of one service.
    DestinationList(ServiceKey),
    /// The IPVS version information.
    Info,
    /// The whole IPVS table (flush).
    Table,
    /// The generic netlink family lookup.
    Family,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Service(service) => write!(f, "service {service}"),
            Target::Destination {
                service,
                destination,
            } => {
                write!(f, "destination {destination} of service {service}")
            }
            Target::ServiceList => f.write_str("the service list"),
            Target::DestinationList(service) => write!(f, "the destinations of service {service}"),
            Target::Info => f.write_str("the IPVS info"),
            Target::Table => f.write_str("the whole IPVS table"),
            Target::Family => f.write_str("the IPVS generic netlink family"),
        }
    }
}

/// An IPVS error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Adding a service that exists (`EEXIST`).
    #[error("IPVS service {service} already exists")]
    ServiceExists {
        /// The service.
        service: ServiceKey,
    },
    /// The service does not exist (`ESRCH`).
    #[error("IPVS service {service} not found")]
    ServiceNotFound {
        /// The service.
        service: ServiceKey,
    },
    /// Adding a destination that exists (`EEXIST`).
    #[error("IPVS destination {destination} of service {service} already exists")]
    DestinationExists {
        /// The service.
        service: ServiceKey,
        /// The destination.
        destination: SocketAddr,
    },
    /// The destination does not exist (`ENOENT`).
    #[error("IPVS destination {destination} of service {service} not found")]
    DestinationNotFound {
        /// The service.
        service: ServiceKey,
        /// The destination.
        destination: SocketAddr,
    },
    /// The kernel has no scheduler (or persistence engine) of that name
    /// (`ENOENT` on adding or editing a service).
    #[error(
        "IPVS scheduler {scheduler:?} of service {service} is not available \
         (no kernel module ip_vs_{scheduler}{})",
        persistence_engine.as_ref().map(|pe| format!(", or no persistence engine ip_vs_pe_{pe}")).unwrap_or_default()
    )]
    UnknownScheduler {
        /// The service.
        service: ServiceKey,
        /// The scheduler asked for.
        scheduler: String,
        /// The persistence engine asked for, if any.
        persistence_engine: Option<String>,
    },
    /// The kernel rejected the request as malformed or inconsistent
    /// (`EINVAL`): for example an IPv6 netmask outside 1..=128, a GUE
    /// tunnel without port, or a destination of another address family
    /// without tunnel forwarding.
    #[error("IPVS rejected the request for {target} as invalid (EINVAL)")]
    InvalidArgument {
        /// What the request was about.
        target: Target,
    },
    /// A value out of range (`ERANGE`): a weight above `i32::MAX`, or a
    /// lower threshold above the upper one.
    #[error("IPVS rejected a value out of range for {target} (ERANGE)")]
    OutOfRange {
        /// What the request was about.
        target: Target,
    },
    /// The address family is not supported (`EAFNOSUPPORT`), such as IPv6
    /// when the kernel has IPv6 disabled.
    #[error("IPVS does not support the address family of {target} (EAFNOSUPPORT)")]
    AddressFamilyNotSupported {
        /// What the request was about.
        target: Target,
    },
    /// The caller lacks `CAP_NET_ADMIN` (`EPERM`).
    #[error("permission denied for {target}: IPVS needs CAP_NET_ADMIN (EPERM)")]
    PermissionDenied {
        /// What the request was about.
        target: Target,
    },
    /// Any other error the kernel returned.
    #[error("IPVS failed for {target}: {}", io::Error::from_raw_os_error(*errno))]
    Kernel {
        /// What the request was about.
        target: Target,
        /// The positive errno.
        errno: i32,
    },
    /// The kernel has no `IPVS` generic netlink family.
    #[error("the IPVS generic netlink family is not registered: is the ip_vs module loaded?")]
    FamilyNotFound,
    /// A socket error.
    #[error("netlink socket error while {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel's reply could not be understood.
    #[error("malformed IPVS netlink message: {message}")]
    Decode {
        /// What was wrong.
        message: String,
    },
    /// The socket's receive buffer overflowed and acknowledgements were
    /// dropped: the outcome of that many operations is unknown.
    #[error(
        "netlink receive buffer overflowed: the outcome of {missing} IPVS operations is unknown"
    )]
    AcksLost {
        /// Operations whose acknowledgement never arrived.
        missing: usize,
    },
}

impl Error {
    pub(crate) fn decode(message: impl Into<String>) -> Self {
        Error::Decode {
            message: message.into(),
        }
    }

    pub(crate) fn io(context: &'static str, source: io::Error) -> Self {
        Error::Io { context, source }
    }

    /// The generic mapping of a kernel errno for a target; operations
    /// refine it where the errno has a precise meaning.
    pub(crate) fn from_errno(target: Target, errno: i32) -> Self {
        match (errno, &target) {
            (ESRCH, Target::Service(service)) | (ESRCH, Target::DestinationList(service)) => {
                Error::ServiceNotFound { service: *service }
            }
            (ESRCH, Target::Destination { service, .. }) => {
                Error::ServiceNotFound { service: *service }
            }
            (EINVAL, _) => Error::InvalidArgument { target },
            (ERANGE, _) => Error::OutOfRange { target },
            (EPERM, _) => Error::PermissionDenied { target },
            (EAFNOSUPPORT, _) => Error::AddressFamilyNotSupported { target },
            _ => Error::Kernel { target, errno },
        }
    }

    /// The service or destination does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::ServiceNotFound { .. } | Error::DestinationNotFound { .. }
        )
    }

    /// The service or destination exists already.
    pub fn is_exists(&self) -> bool {
        matches!(
            self,
            Error::ServiceExists { .. } | Error::DestinationExists { .. }
        )
    }

    /// The errno behind a kernel-reported error, if this is one.
    pub fn errno(&self) -> Option<i32> {
        Some(match self {
            Error::ServiceExists { .. } | Error::DestinationExists { .. } => EEXIST,
            Error::ServiceNotFound { .. } => ESRCH,
            Error::DestinationNotFound { .. } | Error::UnknownScheduler { .. } => ENOENT,
            Error::InvalidArgument { .. } => EINVAL,
            Error::OutOfRange { .. } => ERANGE,
            Error::AddressFamilyNotSupported { .. } => EAFNOSUPPORT,
            Error::PermissionDenied { .. } => EPERM,
            Error::Kernel { errno, .. } => *errno,
            Error::FamilyNotFound => ENOENT,
            Error::AcksLost { .. } => ENOBUFS,
            Error::Io { source, .. } => return source.raw_os_error(),
            Error::Decode { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn svc() -> ServiceKey {
        ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80)
    }

    #[test]
    fn messages_name_the_object() {
        let err = Error::DestinationExists {
            service: svc(),
            destination: "10.1.1.1:8080".parse().expect("addr"),
        };
        assert_eq!(
            err.to_string(),
            "IPVS destination 10.1.1.1:8080 of service TCP 10.0.0.1:80 already exists"
        );
        let err = Error::UnknownScheduler {
            service: svc(),
            scheduler: "nope".into(),
            persistence_engine: None,
        };
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert!(err.to_string().contains("TCP 10.0.0.1:80"), "{err}");
        let err = Error::from_errno(Target::Service(svc()), 12);
        assert!(
            err.to_string()
                .starts_with("IPVS failed for service TCP 10.0.0.1:80: "),
            "{err}"
        );
    }

    #[test]
    fn generic_mapping() {
        let target = Target::Service(svc());
        assert!(matches!(
            Error::from_errno(target.clone(), ESRCH),
            Error::ServiceNotFound { .. }
        ));
        assert!(matches!(
            Error::from_errno(target.clone(), EINVAL),
            Error::InvalidArgument { .. }
        ));
        assert!(matches!(
            Error::from_errno(target.clone(), EPERM),
            Error::PermissionDenied { .. }
        ));
        assert!(matches!(
            Error::from_errno(target.clone(), ERANGE),
            Error::OutOfRange { .. }
        ));
        assert!(matches!(
            Error::from_errno(target.clone(), EAFNOSUPPORT),
            Error::AddressFamilyNotSupported { .. }
        ));
        assert!(matches!(
            Error::from_errno(target, 12),
            Error::Kernel { errno: 12, .. }
        ));
    }

    #[test]
    fn errno_round_trips_through_the_typed_error() {
        for errno in [EPERM, ESRCH, EINVAL, ERANGE, EAFNOSUPPORT, 12] {
            assert_eq!(
                Error::from_errno(Target::Service(svc()), errno).errno(),
                Some(errno)
            );
        }
    }
}
