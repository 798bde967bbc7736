//! Integration tests of mcwan-dns: the request path without sockets, then a
//! real server on loopback asked by hickory's client and by `dig`.

// Test code: a failed unwrap is a failed test (clippy.toml allows it in
// `#[test]` functions; the shared builders in `support` need it too).
#![allow(clippy::unwrap_used)]

mod answer_path;
mod dig;
mod hickory_client;
mod support;
mod tcp_limits;
mod udp_paths;
mod zone_swap;
