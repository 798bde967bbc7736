//! `mcwan uninstall` against the real kernel (VM tier): the lab's three gateways program IPVS,
//! the masquerade table, the ClusterSetIP interface, and WireGuard tunnels or SD-WAN hand-off
//! rules and routes; other components' state sits beside it in each gateway's namespace (an
//! IPVS service outside the VIP range, other nftables tables, a dummy link, a WireGuard
//! interface, rules and routes of other protocols). After the gateways stop, `mcwan uninstall`
//! brings each node back to exactly what it was before mcwan ran; `--dry-run` changes nothing;
//! a second uninstall removes nothing.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::time::{Duration, Instant};

use mcwan::lab::netns::Netns;
use mcwan::lab::{Lab, WanKind};

const MCWAN: &str = env!("CARGO_BIN_EXE_mcwan");

#[path = "support/lab.rs"]
mod lab_support;

fn lab(prefix: &str, wan: WanKind) -> (Lab, tempfile::TempDir) {
    lab_support::build(prefix, wan, false)
}

fn sh(ns: &Netns, cmd: &str) -> String {
    ns.exec("bash", &["-c", cmd])
        .unwrap_or_else(|e| panic!("in {}: {e:#}", ns.name))
}

/// What other components keep on a gateway node, which uninstall must leave as it is.
fn add_others(ns: &Netns) {
    sh(
        ns,
        "set -e
         ipvsadm -A -t 10.96.0.10:53 -s rr
         ipvsadm -a -t 10.96.0.10:53 -r 10.244.0.2:53 -m
         ipvsadm -A -u 10.96.0.10:53 -s rr
         nft add table inet other
         nft add chain inet other input '{ type filter hook input priority 0; policy accept; }'
         nft add rule inet other input tcp dport 22 counter accept
         nft add table ip nat
         nft add chain ip nat POSTROUTING '{ type nat hook postrouting priority 100; }'
         nft add rule ip nat POSTROUTING ip saddr 10.250.0.0/24 masquerade
         ip link add other0 type dummy
         ip link set other0 up
         ip address add 10.250.0.1/24 dev other0
         ip link add wg-other type wireguard
         ip address add 10.250.9.1/24 dev wg-other
         ip link set wg-other up
         ip rule add fwmark 0x42 lookup 4242 priority 4242 proto static
         ip rule add from 10.250.0.0/24 lookup 4243 priority 4243 proto 42
         ip route add 10.250.1.0/24 via 10.250.0.2 table 4242 proto 42
         ip route add default via 10.250.0.2 table 4243 proto static
         ip route add 10.250.2.0/24 via 10.250.0.2 proto static",
    );
    // IPv6 duplicate address detection ends with a local route per link-local address: let it
    // end before the snapshot.
    wait_for(
        "link-local addresses still tentative",
        Duration::from_secs(10),
        || !sh(ns, "ip -6 address").contains("tentative"),
    );
}

/// The node's network state, as an operator would compare it.
fn snapshot(ns: &Netns) -> String {
    sh(
        ns,
        "echo '## ip -d link'; ip -d link
         echo '## ip address'; ip address
         echo '## ip rule'; ip rule; ip -6 rule
         echo '## ip route'; ip route show table all; ip -6 route show table all
         echo '## nft'; nft list ruleset
         echo '## ipvsadm'; ipvsadm -Ln",
    )
}

/// The first line that differs, with context, for a readable failure.
fn diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let i = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    format!(
        "first difference at line {i}:\n  before: {:?}\n  after:  {:?}",
        a.get(i.saturating_sub(1)..(i + 3).min(a.len())),
        b.get(i.saturating_sub(1)..(i + 3).min(b.len()))
    )
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what} after {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts every gateway on nodes holding others' state, waits until each has programmed
/// `expect` (a check on the node's snapshot), stops them, and checks dry run, uninstall and a
/// second uninstall on every node.
fn uninstall_restores_every_node(prefix: &str, wan: WanKind, expect: &[&str]) {
    let (mut lab, _dir) = lab(prefix, wan);
    let mut before = Vec::new();
    for i in 1..=3 {
        let gw = &lab.site(i).gw;
        add_others(gw);
        before.push(snapshot(gw));
    }
    for i in 1..=3 {
        lab.start_gateway(i, &["--resync-seconds", "2"]).unwrap();
    }
    for i in 1..=3 {
        let gw = &lab.site(i).gw;
        wait_for(
            &format!("cluster-{i}'s dataplane not programmed"),
            Duration::from_secs(120),
            || {
                let s = snapshot(gw);
                expect.iter().all(|e| s.contains(e)) && s.contains("mcwan0: <")
            },
        );
    }
    // Egress virtual services (ClusterSetIPs) and ingress ones (the nftables record) on some
    // node, each removed.
    let (mut egress, mut ingress) = (0, 0);
    for i in 1..=3 {
        lab.stop_gateway(i, true).unwrap();
    }
    for i in 1..=3 {
        let gw = &lab.site(i).gw;
        let with_mcwan = snapshot(gw);
        assert_ne!(with_mcwan, before[usize::from(i) - 1]);

        let dry = sh(gw, &format!("{MCWAN} uninstall --dry-run"));
        assert_eq!(
            snapshot(gw),
            with_mcwan,
            "--dry-run changed cluster-{i}'s node"
        );
        for line in [
            "would remove nftables table inet mcwan",
            "would remove interface mcwan0 (ClusterSetIPs)",
        ] {
            assert!(dry.contains(line), "cluster-{i}: no {line:?} in:\n{dry}");
        }
        assert!(
            !dry.contains("10.96.0.10") && !dry.contains("other"),
            "{dry}"
        );

        let out = sh(gw, &format!("{MCWAN} uninstall"));
        let removed: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("removed "))
            .collect();
        let would: Vec<&str> = dry
            .lines()
            .filter_map(|l| l.strip_prefix("would remove "))
            .collect();
        assert_eq!(
            removed, would,
            "cluster-{i}: removed what the dry run listed, in order"
        );
        for service in removed
            .iter()
            .filter_map(|r| r.strip_prefix("IPVS virtual service "))
        {
            if service.contains(" 241.64.") {
                egress += 1;
            } else {
                ingress += 1;
            }
        }
        let after = snapshot(gw);
        let want = &before[usize::from(i) - 1];
        assert!(
            after == *want,
            "cluster-{i}'s node differs from before mcwan ran: {}\n--- uninstall said:\n{out}",
            diff(want, &after)
        );

        let again = sh(gw, &format!("{MCWAN} uninstall"));
        assert!(
            again.contains("nothing of mcwan's on this node: nothing removed"),
            "{again}"
        );
        assert!(!again.lines().any(|l| l.starts_with("removed ")), "{again}");
        assert_eq!(snapshot(gw), *want);
    }
    assert!(
        egress > 0 && ingress > 0,
        "virtual services removed: {egress} egress, {ingress} ingress"
    );
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn uninstall_leaves_a_wireguard_node_as_it_was_before_mcwan() {
    uninstall_restores_every_node(
        "u1",
        WanKind::Wireguard,
        &["mcw-business: <", "mcw-default: <", "table inet mcwan"],
    );
}

#[test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
fn uninstall_leaves_an_sdwan_node_as_it_was_before_mcwan() {
    uninstall_restores_every_node(
        "u2",
        WanKind::Sdwan,
        &["proto 161", "chain handoff_prerouting", "table inet mcwan"],
    );
}
