//! SD-WAN hand-off between real namespaces: a gateway with two edge routers (high, low) and a
//! third, default edge; a server behind the edges. Traffic to each class's port range must
//! leave through its class's edge, counted by nftables counters on the edges.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use mcwan_tunnel::{Handoff, HandoffSpec};

use crate::support::{self, echo_server, veth, EchoClient, Netns};

const SERVER: &str = "10.9.9.9";

fn spec(class: &str, ports: (u16, u16), next_hop: &str, n: u32) -> HandoffSpec {
    HandoffSpec {
        class: class.into(),
        port_range: ports,
        next_hop: next_hop.parse().unwrap(),
        table: 1000 + n,
        fwmark: 0xa00 + n,
        fwmark_mask: 0xfff,
        rule_priority: 10_000 + n,
    }
}

/// An edge router counting forwarded packets towards the server per class.
fn edge(role: &str) -> Netns {
    let ns = Netns::new(role);
    ns.sh(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let script = format!(
        "table inet count {{\n\
           counter high {{}}\n\
           counter low {{}}\n\
           chain transit {{\n\
             type filter hook forward priority 0; policy accept;\n\
             ip daddr {SERVER} tcp dport 31000-31009 counter name \"high\"\n\
             ip daddr {SERVER} tcp dport 32000-32009 counter name \"low\"\n\
           }}\n\
         }}\n"
    );
    let path = std::env::temp_dir().join(format!("{}.nft", ns.name));
    std::fs::write(&path, script).unwrap();
    ns.sh(&["nft", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    ns
}

fn packets(ns: &Netns, counter: &str) -> u64 {
    let json = ns.sh(&["nft", "-j", "list", "counter", "inet", "count", counter]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i["counter"]["packets"].as_u64())
        .unwrap()
}

#[test]
fn each_class_leaves_through_its_own_edge_and_removal_restores_everything() {
    if !support::can_run() {
        return;
    }
    let gw = Netns::new("gw");
    let high = edge("hi");
    let low = edge("lo");
    let default = edge("df");
    let server = Netns::new("srv");
    veth(&gw, "to-hi", "10.1.1.1/30", &high, "to-gw", "10.1.1.2/30");
    veth(&gw, "to-lo", "10.1.2.1/30", &low, "to-gw", "10.1.2.2/30");
    veth(
        &gw,
        "to-df",
        "10.1.3.1/30",
        &default,
        "to-gw",
        "10.1.3.2/30",
    );
    veth(
        &high,
        "to-srv",
        "10.2.1.1/30",
        &server,
        "to-hi",
        "10.2.1.2/30",
    );
    veth(
        &low,
        "to-srv",
        "10.2.2.1/30",
        &server,
        "to-lo",
        "10.2.2.2/30",
    );
    // The default edge has no way to the server: only hand-off can reach it.
    gw.sh(&["ip", "route", "add", "default", "via", "10.1.3.2"]);
    for (edge, back) in [(&high, "10.1.1.1"), (&low, "10.1.2.1")] {
        edge.sh(&["ip", "route", "add", "10.1.0.0/16", "via", back]);
    }
    high.sh(&["ip", "route", "add", SERVER, "via", "10.2.1.2"]);
    low.sh(&["ip", "route", "add", SERVER, "via", "10.2.2.2"]);
    server.sh(&["ip", "addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
    server.sh(&["ip", "route", "add", "default", "via", "10.2.1.1"]);
    // Someone else's rule and table in the gateway, which hand-off must not touch.
    gw.sh(&[
        "ip", "rule", "add", "fwmark", "0x99", "lookup", "99", "priority", "999",
    ]);
    gw.sh(&[
        "ip", "route", "add", "default", "via", "10.1.3.2", "table", "99",
    ]);

    let srv_rt = server.runtime();
    echo_server(&srv_rt, format!("{SERVER}:31005").parse().unwrap());
    echo_server(&srv_rt, format!("{SERVER}:32005").parse().unwrap());

    let gw_rt = gw.runtime();
    let specs = vec![
        spec("high", (31000, 31009), "10.1.1.2", 1),
        spec("low", (32000, 32009), "10.1.2.2", 2),
    ];
    let handoff = gw_rt.run(async { Handoff::new().unwrap() });
    let (handoff, report) = {
        let specs = specs.clone();
        gw_rt.run(async move {
            let r = handoff.apply(&specs).await.unwrap();
            (handoff, r)
        })
    };
    // A rule per class, and the main table without its default route just ahead of them.
    assert_eq!(report.rules_added.len(), 3, "{report:?}");
    assert_eq!(report.routes.added.len(), 2, "{report:?}");

    for (port, line) in [(31005u16, "high"), (32005, "low")] {
        let addr: SocketAddr = format!("{SERVER}:{port}").parse().unwrap();
        let mut client = EchoClient::connect(&gw_rt, addr);
        for i in 0..5 {
            client.round_trip(&gw_rt, &format!("{line} {i}"), 10);
        }
    }
    assert!(
        packets(&high, "high") >= 5,
        "high edge saw no high-class traffic"
    );
    assert_eq!(
        packets(&high, "low"),
        0,
        "low-class traffic went through the high edge"
    );
    assert!(
        packets(&low, "low") >= 5,
        "low edge saw no low-class traffic"
    );
    assert_eq!(
        packets(&low, "high"),
        0,
        "high-class traffic went through the low edge"
    );
    assert_eq!(packets(&default, "high") + packets(&default, "low"), 0);

    // Visible ownership: rules and routes carry protocol 161.
    let rules = gw.sh(&["ip", "rule"]);
    assert!(
        rules.contains("fwmark 0xa01/0xfff lookup 1001 proto 161"),
        "{rules}"
    );
    let routes = gw.sh(&["ip", "route", "show", "table", "1002"]);
    assert!(
        routes.contains("default via 10.1.2.2") && routes.contains("proto 161"),
        "{routes}"
    );

    // Re-applying is a no-op; removing one class removes only its rule and route.
    let (handoff, report) = {
        let specs = specs.clone();
        gw_rt.run(async move {
            let r = handoff.apply(&specs).await.unwrap();
            (handoff, r)
        })
    };
    assert!(report.rules_added.is_empty() && report.rules_removed.is_empty());
    assert!(report.routes.added.is_empty() && report.routes.removed.is_empty());
    let (handoff, report) = {
        let specs = specs[..1].to_vec();
        gw_rt.run(async move {
            let r = handoff.apply(&specs).await.unwrap();
            (handoff, r)
        })
    };
    assert_eq!(report.rules_removed.len(), 1);
    assert_eq!(report.routes.removed.len(), 1);
    let ruleset = gw.sh(&["nft", "list", "table", "inet", "mcwan"]);
    assert!(
        ruleset.contains("class high") && !ruleset.contains("class low"),
        "{ruleset}"
    );

    // Removing everything leaves the foreign rule and table, and no mcwan state.
    gw_rt.run(async move { handoff.apply(&[]).await.unwrap() });
    let rules = gw.sh(&["ip", "rule"]);
    assert!(!rules.contains("proto 161"), "{rules}");
    assert!(rules.contains("fwmark 0x99 lookup 99"), "{rules}");
    assert!(gw
        .sh(&["ip", "route", "show", "table", "99"])
        .contains("default"));
    assert!(gw.sh(&["ip", "route", "show", "table", "1001"]).is_empty());
    let tables = gw.sh(&["nft", "list", "tables"]);
    assert!(!tables.contains("mcwan"), "{tables}");
}
