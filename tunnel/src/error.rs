//! Errors, each naming the interface, peer, class, route or rule it concerns.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading or applying tunnels, hand-offs and routes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid WireGuard key: {0}")]
    InvalidKey(String),
    #[error("cannot read WireGuard key from {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid tunnel spec for {ifname}: {reason}")]
    InvalidTunnel { ifname: String, reason: String },
    #[error("invalid hand-off spec for class {class}: {reason}")]
    InvalidHandoff { class: String, reason: String },
    #[error("invalid route {route}: {reason}")]
    InvalidRoute { route: String, reason: String },
    #[error("interface {ifname} exists but is not owned by mcwan (no mcwan ifalias): refusing to touch it")]
    NotOwned { ifname: String },
    #[error("kernel WireGuard is not available: {0}")]
    KernelUnavailable(String),
    #[error("netlink: cannot open a socket: {0}")]
    Socket(#[source] io::Error),
    #[error("netlink request for {object} failed: {message}")]
    Netlink { object: String, message: String },
    #[error("{object}: {message} (errno {errno})")]
    Kernel {
        object: String,
        errno: i32,
        message: String,
    },
    #[error("userspace WireGuard device {ifname}: {message}")]
    Userspace { ifname: String, message: String },
    #[error("UAPI of {ifname} answered errno {errno}")]
    UapiErrno { ifname: String, errno: i32 },
    #[error("UAPI of {ifname}: cannot parse {line:?}")]
    UapiParse { ifname: String, line: String },
    #[error("nft for {what}: {message}")]
    Nft { what: String, message: String },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The kernel's errno, when the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } | Error::UapiErrno { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    pub(crate) fn kernel(object: impl Into<String>, errno: i32) -> Self {
        Error::Kernel {
            object: object.into(),
            errno,
            message: io::Error::from_raw_os_error(errno).to_string(),
        }
    }
}
