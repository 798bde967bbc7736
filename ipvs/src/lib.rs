//! Linux IPVS (IP Virtual Server) over generic netlink.
//!
//! Typed virtual services and destinations, pure message builders, and a
//! thin async [`Handle`] that sends them, on the rust-netlink family:
//! `netlink-packet-core` for framing, `netlink-packet-generic` for the
//! generic netlink header and the family lookup, `netlink-sys` for the
//! socket.
//!
//! ```text
//!  Service / Destination / ServiceKey          (model: plain data)
//!        │  Operation::message()                (pure builders, unit-tested
//!        ▼                                        against linux/ip_vs.h)
//!  IpvsMessage { cmd, attrs: [IpvsAttr] }       (wire layer: attribute enums)
//!        │  wire::encode()                      (netlink + genl headers, seq)
//!        ▼
//!  Handle ── one datagram per request, or per chunk of a Batch ──► kernel
//!        ◄── acks matched by sequence number, dumps until NLMSG_DONE ──┘
//!        │
//!        ▼
//!  Result<_, Error>   (typed: ServiceExists, DestinationNotFound, ...,
//!                      each naming the service or destination)
//! ```
//!
//! # Example
//!
//! ```no_run
//! use ipvs_netlink::{Destination, Handle, Service, ServiceKey};
//!
//! # async fn demo() -> Result<(), ipvs_netlink::Error> {
//! let ipvs = Handle::new().await?;
//! let key = ServiceKey::tcp([10, 96, 0, 10], 80);
//! ipvs.services().add(Service::new(key, "rr")).execute().await?;
//! ipvs.destinations(key).add(Destination::new([10, 244, 1, 5], 8080)).execute().await?;
//! for service in ipvs.services().dump().execute().await? {
//!     let dests = ipvs.destinations(service.key).dump().execute().await?;
//!     println!("{} {} -> {} destinations", service.key, service.scheduler, dests.len());
//! }
//! # Ok(()) }
//! ```
//!
//! # Single changes and batches
//!
//! Every request built from [`Handle::services`] or
//! [`Handle::destinations`] is one datagram and one acknowledgement: no
//! dump, no lookup, so a change costs the same with 20 or 20,000 services
//! loaded. A [`Batch`] packs many operations into each `sendmsg`, each
//! acknowledged and matched back by sequence number, for programming a
//! whole table quickly; one refused operation does not stop the rest, and
//! the [`BatchReport`] lists refusals as typed errors.
//!
//! The socket is driven directly (not through `netlink-proto`, whose
//! connection writes one message per `send`), so that a batch really goes
//! out as one datagram per chunk.
//!
//! # Flushing
//!
//! Deleting the whole table is only offered as
//! [`Handle::flush_all_dangerous`]: programs sharing a host's IPVS must
//! delete what they own, never everything.
//!
//! # Permissions and namespaces
//!
//! Every IPVS command needs `CAP_NET_ADMIN` ([`Error::PermissionDenied`]
//! otherwise). A [`Handle`] talks to the network namespace its socket was
//! opened in.

mod address_family;
mod batch;
mod connection;
pub mod constants;
pub mod destination;
mod error;
mod flush;
mod genl_family;
mod handle;
mod info;
pub mod message;
mod operation;
mod request;
pub mod service;
mod stats;
mod wire;

pub use address_family::AddressFamily;
pub use batch::{Batch, BatchFailure, BatchReport};
pub use destination::{
    ConnectionCounts, Destination, DestinationHandle, DumpDestinationsRequest, ForwardMethod,
    TunnelChecksum, TunnelEncap,
};
pub use error::{Error, Target};
pub use handle::Handle;
pub use info::{Info, Version};
pub use operation::Operation;
pub use request::OperationRequest;
pub use service::{
    DumpServicesRequest, GetServiceRequest, Netmask, Protocol, Service, ServiceFlags,
    ServiceHandle, ServiceKey,
};
pub use stats::Stats;
