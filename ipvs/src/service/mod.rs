//! Virtual services: the model, its attributes, and the requests.

pub(crate) mod add;
pub(crate) mod attrs;
pub(crate) mod del;
mod dump;
pub(crate) mod edit;
mod flags;
mod get;
mod handle;
mod key;
mod netmask;
mod virtual_service;

pub use dump::DumpServicesRequest;
pub use flags::ServiceFlags;
pub use get::GetServiceRequest;
pub use handle::ServiceHandle;
pub use key::{Protocol, ServiceKey};
pub use netmask::Netmask;
pub use virtual_service::Service;
