//! mcwan: a multi-cluster east-west gateway for Kubernetes.
//!
//! One gateway per cluster serves DNS for `*.svc.clusterset.local` (the Multi-Cluster Services
//! DNS specification), programs IPVS ClusterSetIPs that balance to the remote gateways' ingress
//! ports on each service's WAN-policy port range, and carries traffic over one WireGuard tunnel
//! (or SD-WAN hand-off) per tunnel class.
//!
//! ```text
//!  sources ──────────────▶ catalog ──────────▶ desired state ─────────▶ actuators
//!  static dir (catalog)     every cluster's     pure function:           DNS zone swap
//!  Kubernetes (kube)        exports, services,  DNS records, IPVS        IPVS, tunnels,
//!                           WAN policies         tables, tunnel intents,  kube writes
//!                           (plain data)         imports, conditions
//! ```
//!
//! - [`model`]: the domain types every source converts into.
//! - [`catalog`]: the clusterset and each cluster's objects; the static directory source.
//! - [`resolve`]: MCS export validation and conflict resolution.
//! - [`desired`]: the desired state, one pure function.
//! - [`gateway`]: the running gateway (watch, compute, apply).
//! - [`kube`]: Kubernetes mode: API servers as the source, imports and conditions written back.
//! - `lab` and `demo` (the default `lab` feature): a clusterset of network namespaces on this
//!   host, for `mcwan demo` and the tests; the shipped build (`--no-default-features`) leaves
//!   them out.

pub mod admin;
pub mod alloc;
pub mod catalog;
pub mod cli;
pub mod convert;
pub mod crd;
pub mod dataplane;
#[cfg(feature = "lab")]
pub mod demo;
pub mod desired;
pub mod files;
pub mod gateway;
pub mod kube;
pub mod l7;
#[cfg(feature = "lab")]
pub mod lab;
pub mod model;
pub mod policies;
pub mod probe;
pub mod problem;
pub mod render;
pub mod resolve;
pub mod serde_map;
pub mod validate;
