//! Real-kernel VM tier (run by tests/vm/run): the tunnel scenario with kernel WireGuard over
//! generic netlink, read by `wg show`.
#![allow(clippy::unwrap_used)]

mod support;

use mcwan_tunnel::Backend;

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn kernel_tunnels_carry_tcp_across_endpoint_change_and_key_rotation() {
    support::scenario::run(Backend::Kernel);
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn kernel_backend_never_touches_an_interface_without_our_alias() {
    support::scenario::foreign_interfaces_are_left_alone(Backend::Kernel);
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn auto_backend_picks_the_kernel_module() {
    let ns = support::Netns::new("auto");
    let rt = ns.runtime();
    let backend = rt.run(async {
        mcwan_tunnel::Tunnels::new(Backend::Auto)
            .await
            .unwrap()
            .backend()
    });
    assert_eq!(backend, Backend::Kernel);
    let links = ns.sh(&["ip", "-o", "link"]);
    assert!(!links.contains("mcw-wgprobe"), "{links}");
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn boringtun_and_kernel_wireguard_carry_tcp_both_ways() {
    support::scenario::interop(support::scenario::Foreign::Kernel);
}
