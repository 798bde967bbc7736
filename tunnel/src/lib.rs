//! WireGuard tunnels and SD-WAN hand-off routes for mcwan, applied as diffs of what mcwan owns.
//!
//! ```text
//!  mcwan desired state (ClassPlan / PeerPlan)
//!        │ mapped by mcwan onto
//!        ▼
//!  TunnelSpec[] ──▶ Tunnels::apply ─┬─ link: rtnetlink (create, MTU, ifalias = ownership, up,
//!                                   │        inner address)
//!                                   ├─ wg::diff(read device, spec) ─▶ DeviceUpdate
//!                                   │       ├─ Kernel:    wg::genl  ─▶ WG_CMD_SET_DEVICE
//!                                   │       └─ Userspace: SetRequest ─▶ our device (boringtun
//!                                   │                    noise; TUN + UDP; UAPI socket)
//!                                   └─ TunnelReport        (`wg show` reads both)
//!
//!  HandoffSpec[] ─▶ Handoff::apply ─┬─ route: default route per class table (proto 161)
//!                                   ├─ rule:  fwmark M lookup T priority P (proto 161)
//!                                   └─ nft:   inet mcwan handoff_* chains mark the port range
//!
//!  RouteSpec[] ──▶ Routes::apply (one TableScope) ─▶ rtnetlink routes (proto 161)
//! ```
//!
//! Pure parts (no I/O, unit-tested): [`Key`], [`mtu`], [`spec`] checks, [`wg::diff`],
//! [`wg::genl`] and [`wg::uapi`] message building and parsing, [`link`], [`route::builder`],
//! [`handoff::rule`] and [`handoff::nft`] builders, and the route/rule plans. The I/O is one
//! thin function per channel: `netlink::Rtnl::execute`, `wg::genl::Client`,
//! `handoff::nft::run`; the userspace device (with its UAPI socket) is its own module
//! ([`backend::userspace`]).
//!
//! **Ownership** ([`owner`]): interfaces carry the ifalias `mcwan tunnel class=<class>`; routes
//! and rules carry protocol [`RTPROT_MCWAN`] (161); nftables state lives in the hand-off
//! chains of table `inet mcwan`. Nothing else is read for removal or ever modified.
//!
//! **Backends** ([`Backend`]): kernel WireGuard when the `wireguard` genl family exists (or
//! can be loaded), else mcwan's userspace device in this process on a TUN interface (boringtun's
//! noise protocol, our packet loops, the standard UAPI socket). Both update peers in place;
//! our own key rotation only sets the private key.
//!
//! **Namespaces**: every actuator works in the network namespace of the thread that created
//! it (netlink sockets, TUN devices and the userspace device's threads are bound there).
//!
//! This crate has no `unsafe` code: boringtun, tun-rs, nix and socket2 keep theirs.

pub mod backend;
pub mod error;
pub mod handoff;
pub mod key;
pub mod link;
pub mod mtu;
pub mod netlink;
pub mod owner;
pub mod route;
pub mod spec;
pub mod status;
pub mod tunnels;
pub mod wg;

pub use backend::Backend;
pub use error::{Error, Result};
pub use handoff::{Handoff, HandoffReport};
pub use key::{key_file_exposure, Key};
pub use owner::RTPROT_MCWAN;
pub use route::{RouteReport, Routes, TableScope};
pub use spec::{HandoffSpec, PeerSpec, RouteSpec, TunnelSpec};
pub use status::{PeerStatus, TunnelStatus};
pub use tunnels::{TunnelChange, TunnelReport, Tunnels};
