//! What `ipvsadm -A/-a` programs, this crate reads back exactly.

use std::net::Ipv4Addr;

use ipvs_netlink::{
    AddressFamily, ConnectionCounts, Destination, ForwardMethod, Netmask, Service, ServiceFlags,
    ServiceKey, TunnelChecksum, TunnelEncap,
};

use crate::vm_support::*;

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn services_ipvsadm_programs_read_back_exactly() {
    let _guard = Cleanup::services(&[
        &["-t", "10.250.9.1:80"],
        &["-u", "[fd00:250:9::1]:53"],
        &["--sctp-service", "10.250.9.3:3868"],
        &["-f", "2509"],
        &["-f", "2510", "-6"],
    ]);
    ipvsadm(&[
        "-A",
        "-t",
        "10.250.9.1:80",
        "-s",
        "wrr",
        "-p",
        "600",
        "-M",
        "255.255.0.0",
    ]);
    ipvsadm(&["-A", "-u", "[fd00:250:9::1]:53", "-s", "rr", "-o"]);
    ipvsadm(&[
        "-A",
        "--sctp-service",
        "10.250.9.3:3868",
        "-s",
        "sh",
        "-b",
        "sh-port",
    ]);
    ipvsadm(&["-A", "-f", "2509", "-s", "lc"]);
    ipvsadm(&["-A", "-f", "2510", "-6", "-s", "rr", "-p", "30", "-M", "96"]);
    let ipvs = handle().await;
    let expected = [
        Service::new(ServiceKey::tcp(v4(9, 1), 80), "wrr")
            .with_persistence(600)
            .with_netmask(Netmask::ipv4(Ipv4Addr::new(255, 255, 0, 0))),
        Service::new(ServiceKey::udp(v6(9, 1), 53), "rr").with_flags(ServiceFlags::ONE_PACKET),
        Service::new(ServiceKey::sctp(v4(9, 3), 3868), "sh").with_flags(ServiceFlags::SH_PORT),
        Service::new(ServiceKey::fwmark(2509, AddressFamily::Ipv4), "lc"),
        Service::new(ServiceKey::fwmark(2510, AddressFamily::Ipv6), "rr")
            .with_persistence(30)
            .with_netmask(Netmask::ipv6_prefix(96)),
    ];
    let dumped = ipvs.services().dump().execute().await.expect("dump");
    for want in &expected {
        let got = ipvs.services().get(want.key).execute().await.expect("get");
        assert_eq!(&got.clone().without_stats(), want, "get {}", want.key);
        assert!(got.stats.is_some(), "get {} returns counters", want.key);
        let in_dump = dumped.iter().find(|s| s.key == want.key).expect("in dump");
        assert_eq!(&in_dump.clone().without_stats(), want, "dump {}", want.key);
    }
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn destinations_ipvsadm_programs_read_back_exactly() {
    let _guard = Cleanup::services(&[&["-t", "10.250.10.1:80"], &["-t", "[fd00:250:10::1]:80"]]);
    ipvsadm(&["-A", "-t", "10.250.10.1:80", "-s", "rr"]);
    ipvsadm(&[
        "-a",
        "-t",
        "10.250.10.1:80",
        "-r",
        "10.250.10.11:8080",
        "-m",
        "-w",
        "5",
        "-x",
        "50",
        "-y",
        "5",
    ]);
    ipvsadm(&[
        "-a",
        "-t",
        "10.250.10.1:80",
        "-r",
        "10.250.10.12:80",
        "-g",
        "-w",
        "0",
    ]);
    ipvsadm(&[
        "-a",
        "-t",
        "10.250.10.1:80",
        "-r",
        "10.250.10.13:80",
        "-i",
        "--tun-type",
        "gue",
        "--tun-port",
        "7000",
        "--tun-remcsum",
    ]);
    ipvsadm(&[
        "-a",
        "-t",
        "10.250.10.1:80",
        "-r",
        "10.250.10.14:80",
        "-i",
        "--tun-type",
        "gre",
        "--tun-csum",
    ]);
    ipvsadm(&["-A", "-t", "[fd00:250:10::1]:80", "-s", "rr"]);
    ipvsadm(&[
        "-a",
        "-t",
        "[fd00:250:10::1]:80",
        "-r",
        "[fd00:250:10::11]:80",
        "-m",
    ]);
    ipvsadm(&[
        "-a",
        "-t",
        "[fd00:250:10::1]:80",
        "-r",
        "10.250.10.21:80",
        "-i",
    ]);
    let ipvs = handle().await;
    let read = |key| {
        let ipvs = ipvs.clone();
        async move {
            let mut dests = ipvs.destinations(key).dump().execute().await.expect("dump");
            dests.sort_by_key(|d| d.key());
            dests
        }
    };
    let got = read(ServiceKey::tcp(v4(10, 1), 80)).await;
    assert!(got
        .iter()
        .all(|d| d.stats.is_some() && d.connections == Some(ConnectionCounts::default())));
    let got: Vec<Destination> = got.into_iter().map(Destination::without_stats).collect();
    assert_eq!(
        got,
        [
            Destination::new(v4(10, 11), 8080)
                .with_weight(5)
                .with_thresholds(50, 5),
            Destination::new(v4(10, 12), 80)
                .with_forward(ForwardMethod::DirectRoute)
                .with_weight(0),
            Destination::new(v4(10, 13), 80).with_forward(ForwardMethod::Tunnel(
                TunnelEncap::Gue {
                    port: 7000,
                    checksum: TunnelChecksum::RemoteChecksum,
                }
            )),
            Destination::new(v4(10, 14), 80).with_forward(ForwardMethod::Tunnel(
                TunnelEncap::Gre {
                    checksum: TunnelChecksum::Checksum
                }
            )),
        ]
    );
    let got: Vec<Destination> = read(ServiceKey::tcp(v6(10, 1), 80))
        .await
        .into_iter()
        .map(Destination::without_stats)
        .collect();
    assert_eq!(
        got,
        [
            Destination::new(v4(10, 21), 80).with_forward(ForwardMethod::IPIP),
            Destination::new(v6(10, 0x11), 80),
        ]
    );
}
