//! The admin endpoint: `/metrics` (Prometheus), `/healthz` (alive), `/readyz` (ready: the first
//! reconcile applied and DNS serving), `/status` (what the gateway believes, as JSON, or as
//! tables with `?format=table`). `mcwan status --gateway ADDR` reads `/status`.

pub mod client;
mod health;
mod metrics;
pub mod process;
mod server;

pub use health::{Check, Health};
pub use metrics::{DnsObserver, Metrics, PeerLabels};
pub use server::{serve, AdminState, StatusReport};
