//! Actuators that program the host's dataplane from the desired state. Each owns one kind of
//! kernel state and applies diffs to it, touching only what mcwan owns.

pub mod ipvs;
pub mod ipvs_diff;
pub mod nat;
pub mod sysctl;
pub mod uninstall;
pub mod vip_link;
pub mod wan;
