//! Host network-namespace tier (root): boringtun tunnels between two namespaces, and SD-WAN
//! hand-off through two edge routers.
#![allow(clippy::unwrap_used)]

mod handoff;
mod support;

use mcwan_tunnel::Backend;

#[test]
fn boringtun_tunnels_carry_tcp_across_endpoint_change_and_key_rotation() {
    if !support::can_run() {
        return;
    }
    support::scenario::run(Backend::Userspace);
}

#[test]
fn boringtun_never_touches_an_interface_without_our_alias() {
    if !support::can_run() {
        return;
    }
    support::scenario::foreign_interfaces_are_left_alone(Backend::Userspace);
}

#[test]
fn auto_backend_falls_back_to_boringtun_without_the_module() {
    if !support::can_run() {
        return;
    }
    if std::path::Path::new("/sys/module/wireguard").exists() {
        eprintln!("kernel WireGuard present: the fallback is covered by the VM tier only");
        return;
    }
    let ns = support::Netns::new("auto");
    let rt = ns.runtime();
    let backend = rt.run(async {
        mcwan_tunnel::Tunnels::new(Backend::Auto)
            .await
            .unwrap()
            .backend()
    });
    assert_eq!(backend, Backend::Userspace);
}
