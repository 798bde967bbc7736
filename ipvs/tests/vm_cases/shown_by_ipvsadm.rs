//! What this crate programs, `ipvsadm -Ln` (and `-Sn`) shows exactly.

use ipvs_netlink::{
    AddressFamily, Destination, ForwardMethod, Netmask, Service, ServiceFlags, ServiceKey,
    TunnelChecksum, TunnelEncap,
};

use crate::vm_support::*;

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn info_reports_the_version_and_table_size_ipvsadm_shows() {
    let info = handle().await.info().await.expect("info");
    let first = ipvsadm(&["-L", "-n"])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        first,
        format!(
            "IP Virtual Server version {} (size={})",
            info.version, info.connection_table_size
        )
    );
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn tcp_service_and_destinations_show_in_ipvsadm() {
    let _guard = Cleanup::services(&[&["-t", "10.250.1.1:80"]]);
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v4(1, 1), 80);
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add service");
    let dests = ipvs.destinations(key);
    dests
        .add(Destination::new(v4(1, 11), 8080).with_weight(3))
        .execute()
        .await
        .expect("masq destination");
    dests
        .add(
            Destination::new(v4(1, 12), 80)
                .with_forward(ForwardMethod::DirectRoute)
                .with_weight(0),
        )
        .execute()
        .await
        .expect("route destination");
    dests
        .add(Destination::new(v4(1, 13), 80).with_forward(ForwardMethod::IPIP))
        .execute()
        .await
        .expect("tunnel destination");
    assert_eq!(
        listing(&["-t", "10.250.1.1:80"], &[]),
        [
            "TCP 10.250.1.1:80 rr",
            "-> 10.250.1.11:8080 Masq 3 0 0",
            "-> 10.250.1.12:80 Route 0 0 0",
            "-> 10.250.1.13:80 Tunnel 1 0 0",
        ]
    );
}

/// `ipvsadm` has no option for the bypass and local-node methods (it
/// prints `(null)` for bypass), so these round-trip through our dump.
#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn bypass_and_local_forwarding_read_back() {
    let _guard = Cleanup::services(&[&["-t", "10.250.19.1:80"]]);
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v4(19, 1), 80);
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add");
    let bypass = Destination::new(v4(19, 11), 80).with_forward(ForwardMethod::Bypass);
    let local = Destination::new(v4(19, 12), 80).with_forward(ForwardMethod::Local);
    for dest in [&bypass, &local] {
        ipvs.destinations(key)
            .add(dest.clone())
            .execute()
            .await
            .expect("add destination");
    }
    let mut got: Vec<Destination> = ipvs
        .destinations(key)
        .dump()
        .execute()
        .await
        .expect("dump")
        .into_iter()
        .map(Destination::without_stats)
        .collect();
    got.sort_by_key(Destination::key);
    assert_eq!(got, [bypass, local]);
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn udp_persistence_timeout_and_netmask_show_in_ipvsadm() {
    let _guard = Cleanup::services(&[&["-u", "10.250.2.1:53"]]);
    let ipvs = handle().await;
    let svc = Service::new(ServiceKey::udp(v4(2, 1), 53), "wrr")
        .with_persistence(120)
        .with_netmask(Netmask::prefix(AddressFamily::Ipv4, 24))
        .with_flags(ServiceFlags::ONE_PACKET);
    ipvs.services().add(svc).execute().await.expect("add");
    assert_eq!(
        listing(&["-u", "10.250.2.1:53"], &[]),
        ["UDP 10.250.2.1:53 wrr persistent 120 mask 255.255.255.0 ops"]
    );
    assert_eq!(
        saved("-u 10.250.2.1:53"),
        ["-A -u 10.250.2.1:53 -s wrr -p 120 -M 255.255.255.0 -o"]
    );
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn sctp_service_with_scheduler_flags_shows_in_ipvsadm() {
    let _guard = Cleanup::services(&[&["--sctp-service", "10.250.3.1:3868"]]);
    let ipvs = handle().await;
    let svc = Service::new(ServiceKey::sctp(v4(3, 1), 3868), "sh")
        .with_flags(ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT);
    ipvs.services().add(svc).execute().await.expect("add");
    assert_eq!(
        listing(&["--sctp-service", "10.250.3.1:3868"], &[]),
        ["SCTP 10.250.3.1:3868 sh (sh-fallback,sh-port)"]
    );
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn ipv6_service_with_mixed_family_tunnel_destination_shows_in_ipvsadm() {
    let _guard = Cleanup::services(&[&["-t", "[fd00:250:4::1]:443"]]);
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v6(4, 1), 443);
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add");
    let dests = ipvs.destinations(key);
    dests
        .add(Destination::new(v6(4, 0x10), 8443))
        .execute()
        .await
        .expect("IPv6 masq destination");
    dests
        .add(Destination::new(v4(4, 10), 443).with_forward(ForwardMethod::IPIP))
        .execute()
        .await
        .expect("IPv4 tunnel destination of an IPv6 service");
    assert_eq!(
        listing(&["-t", "[fd00:250:4::1]:443"], &["--tun-info"]),
        [
            "TCP [fd00:250:4::1]:443 rr",
            "-> [fd00:250:4::10]:8443 Masq n/a 1 0 0",
            "-> 10.250.4.10:443 Tunnel ipip 1 0 0",
        ]
    );
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn fwmark_services_of_both_families_show_in_ipvsadm() {
    let _guard = Cleanup::services(&[&["-f", "2505"], &["-f", "2506", "-6"]]);
    let ipvs = handle().await;
    let v4_key = ServiceKey::fwmark(2505, AddressFamily::Ipv4);
    let v6_key = ServiceKey::fwmark(2506, AddressFamily::Ipv6);
    ipvs.services()
        .add(Service::new(v4_key, "rr"))
        .execute()
        .await
        .expect("v4");
    let svc6 = Service::new(v6_key, "wlc")
        .with_persistence(60)
        .with_netmask(Netmask::ipv6_prefix(64));
    ipvs.services().add(svc6).execute().await.expect("v6");
    ipvs.destinations(v4_key)
        .add(Destination::new(v4(5, 10), 0).with_forward(ForwardMethod::DirectRoute))
        .execute()
        .await
        .expect("fwmark destination");
    assert_eq!(
        listing(&["-f", "2505"], &[]),
        ["FWM 2505 rr", "-> 10.250.5.10:0 Route 1 0 0"]
    );
    assert_eq!(
        listing(&["-f", "2506", "-6"], &[]),
        ["FWM 2506 IPv6 wlc persistent 60 mask 64"]
    );
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn thresholds_and_tunnel_types_show_in_ipvsadm() {
    let _guard = Cleanup::services(&[&["-t", "10.250.6.1:80"]]);
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v4(6, 1), 80);
    ipvs.services()
        .add(Service::new(key, "wrr"))
        .execute()
        .await
        .expect("add");
    let gue = TunnelEncap::Gue {
        port: 6080,
        checksum: TunnelChecksum::Checksum,
    };
    let gue_rem = TunnelEncap::Gue {
        port: 6081,
        checksum: TunnelChecksum::RemoteChecksum,
    };
    let gre = TunnelEncap::Gre {
        checksum: TunnelChecksum::Checksum,
    };
    let mut batch = ipvs.batch();
    batch
        .add_destination(
            key,
            Destination::new(v4(6, 11), 80)
                .with_weight(2)
                .with_thresholds(100, 10),
        )
        .add_destination(
            key,
            Destination::new(v4(6, 12), 80).with_forward(ForwardMethod::Tunnel(gue)),
        )
        .add_destination(
            key,
            Destination::new(v4(6, 13), 80).with_forward(ForwardMethod::Tunnel(gre)),
        )
        .add_destination(
            key,
            Destination::new(v4(6, 14), 80).with_forward(ForwardMethod::Tunnel(gue_rem)),
        );
    batch
        .execute()
        .await
        .expect("batch")
        .into_result()
        .expect("all applied");
    assert_eq!(
        listing(&["-t", "10.250.6.1:80"], &["--thresholds"]),
        [
            "TCP 10.250.6.1:80 wrr",
            "-> 10.250.6.11:80 100 10 0 0",
            "-> 10.250.6.12:80 0 0 0 0",
            "-> 10.250.6.13:80 0 0 0 0",
            "-> 10.250.6.14:80 0 0 0 0",
        ]
    );
    assert_eq!(
        saved("-t 10.250.6.1:80"),
        [
            "-A -t 10.250.6.1:80 -s wrr",
            "-a -t 10.250.6.1:80 -r 10.250.6.11:80 -m -w 2",
            "-a -t 10.250.6.1:80 -r 10.250.6.12:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
            "-a -t 10.250.6.1:80 -r 10.250.6.13:80 -i -w 1 --tun-type gre --tun-csum",
            "-a -t 10.250.6.1:80 -r 10.250.6.14:80 -i -w 1 --tun-type gue --tun-port 6081 --tun-remcsum",
        ]
    );
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn edits_show_in_ipvsadm() {
    let _guard = Cleanup::services(&[&["-t", "10.250.7.1:80"]]);
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v4(7, 1), 80);
    ipvs.services()
        .add(Service::new(key, "rr").with_persistence(300))
        .execute()
        .await
        .expect("add");
    ipvs.destinations(key)
        .add(Destination::new(v4(7, 11), 80))
        .execute()
        .await
        .expect("add destination");
    ipvs.services()
        .edit(Service::new(key, "wlc"))
        .execute()
        .await
        .expect("edit service");
    ipvs.destinations(key)
        .edit(
            Destination::new(v4(7, 11), 80)
                .with_weight(7)
                .with_forward(ForwardMethod::DirectRoute),
        )
        .execute()
        .await
        .expect("edit destination");
    assert_eq!(
        listing(&["-t", "10.250.7.1:80"], &[]),
        ["TCP 10.250.7.1:80 wlc", "-> 10.250.7.11:80 Route 7 0 0"]
    );
}

#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn deletes_show_in_ipvsadm() {
    let _guard = Cleanup::services(&[&["-t", "10.250.8.1:80"]]);
    let ipvs = handle().await;
    let key = ServiceKey::tcp(v4(8, 1), 80);
    ipvs.services()
        .add(Service::new(key, "rr"))
        .execute()
        .await
        .expect("add");
    for host in [11, 12] {
        ipvs.destinations(key)
            .add(Destination::new(v4(8, host), 80))
            .execute()
            .await
            .expect("dest");
    }
    ipvs.destinations(key)
        .del(sock(v4(8, 11), 80))
        .execute()
        .await
        .expect("del destination");
    assert_eq!(
        listing(&["-t", "10.250.8.1:80"], &[]),
        ["TCP 10.250.8.1:80 rr", "-> 10.250.8.12:80 Masq 1 0 0"]
    );
    ipvs.services()
        .del(key)
        .execute()
        .await
        .expect("del service");
    assert!(!ipvsadm(&["-S", "-n"]).contains("10.250.8."));
}
