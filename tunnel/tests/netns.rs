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

#[test]
fn userspace_device_serves_wg_set_and_refuses_bad_requests_without_harm() {
    if !support::can_run() {
        return;
    }
    let (mut a, mut b) = support::scenario::pair(Backend::Userspace);
    a.apply(a.specs(&b, "192.0.2.2"));
    b.apply(b.specs(&a, "192.0.2.1"));
    let addr = std::net::SocketAddr::new(b.inner(0).into(), 7100);
    support::echo_server(&b.rt, addr);
    let mut client = support::EchoClient::connect(&a.rt, addr);
    client.round_trip(&a.rt, "before", 20);
    let ifname = a.ifname(0);

    // `wg set` adds a peer through the UAPI socket; `wg show` reads it back.
    let extra = mcwan_tunnel::Key::generate().public_key().to_base64();
    a.ns.sh(&[
        "wg",
        "set",
        &ifname,
        "peer",
        &extra,
        "endpoint",
        "192.0.2.77:9",
        "allowed-ips",
        "10.9.0.0/16",
    ]);
    let dump = a.ns.sh(&["wg", "show", &ifname, "dump"]);
    assert!(
        dump.contains(&format!(
            "{extra}\t(none)\t192.0.2.77:9\t10.9.0.0/16\t0\t0\t0\toff"
        )),
        "{dump}"
    );

    // A request the device does not understand is refused (EINVAL) and changes nothing; a
    // port another device holds is refused with the kernel's errno.
    assert_eq!(
        uapi_exchange(&ifname, "set=1\nlisten_port=1\nbogus=1\n\n"),
        "errno=22\n\n"
    );
    let refused = a.ns.run(&["wg", "set", &ifname, "listen-port", "51821"]);
    assert!(!refused.status.success());
    let port = a.ns.sh(&["wg", "show", &ifname, "listen-port"]);
    assert_eq!(port.trim(), "51820");
    client.round_trip(&a.rt, "after refused requests", 20);

    // The next apply puts the device back as the spec says.
    let report = a.apply(a.specs(&b, "192.0.2.2"));
    assert_eq!(report.changed.len(), 1, "{report:?}");
    let dump = a.ns.sh(&["wg", "show", &ifname, "dump"]);
    assert!(!dump.contains(&extra), "{dump}");
    client.round_trip(&a.rt, "after reconciliation", 20);
}

/// One raw request on the UAPI socket of `ifname`; the answer up to its blank line.
fn uapi_exchange(ifname: &str, request: &str) -> String {
    use std::io::{BufRead, Write};
    let path = mcwan_tunnel::wg::uapi::socket_path(ifname);
    let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut answer = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\n" {
            answer.push_str(&line);
            return answer;
        }
        answer.push_str(&line);
    }
}

#[test]
fn boringtun_and_wireguard_go_carry_tcp_both_ways() {
    if !support::can_run() {
        return;
    }
    support::scenario::interop(support::scenario::Foreign::Go(support::wireguard_go()));
}
