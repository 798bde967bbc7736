//! Destinations (real servers): the model, its attributes, and the requests.

pub(crate) mod add;
pub(crate) mod attrs;
pub(crate) mod del;
mod dump;
pub(crate) mod edit;
mod forward;
mod handle;
mod real_server;

pub use dump::DumpDestinationsRequest;
pub use forward::{ForwardMethod, TunnelChecksum, TunnelEncap};
pub use handle::DestinationHandle;
pub use real_server::{ConnectionCounts, Destination};
