//! A stateful Kubernetes API test server.
//!
//! `mcwan-kubesim` serves the Kubernetes REST API over plain HTTP on 127.0.0.1 so
//! that the real kube-rs client (and `kubectl`) can be tested against it as against
//! kube-apiserver: list with resource versions, watch with bookmarks and 410 Gone,
//! label and field selectors, create / replace / merge, JSON and strategic patch,
//! server-side apply, status subresources, finalizers, discovery. Every semantic that
//! differs from kube-apiserver is listed in the crate's README.
//!
//! ```text
//!  kube::Client / kubectl
//!        │ HTTP/1.1 (server: one task per connection; stop() aborts them all)
//!        ▼
//!  handler ── route (path) + query ──► discovery / table     (read-only documents)
//!        │
//!        ▼
//!  operation: get, list, create, replace, patch (merge | json | strategic | apply)
//!  deletion:  delete, finalizers, namespace termination, CRD removal
//!             ── defaults, crd, patch::{merge, apply, fields}
//!        │ commit_put / commit_remove (one resource version each)
//!        ▼
//!  store: objects + global RV + bounded history ──broadcast──► watch streams
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), mcwan_kubesim::SimError> {
//! let sim = mcwan_kubesim::KubeSim::start().await?;
//! let client = sim.client();
//! sim.restart().await?; // watches are cut, resource versions continue
//! sim.compact(); // watches from older versions now get 410 Gone
//! # drop(client);
//! # Ok(())
//! # }
//! ```

mod config;
mod crd;
mod defaults;
mod deletion;
mod discovery;
mod error;
mod handler;
mod kubeconfig;
mod meta;
mod operation;
mod patch;
mod query;
mod registry;
mod resource;
mod route;
mod selector;
mod server;
mod sim;
mod store;
mod table;
mod watch;

pub use config::SimConfig;
pub use error::{ApiError, Details, SimError};
pub use resource::{ResourceId, ResourceType};
pub use sim::KubeSim;
