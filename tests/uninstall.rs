//! `mcwan uninstall` on the host kernel (host netns tier): its arguments and help, and a node
//! (a network namespace) holding mcwan's masquerade table, hand-off rules and route beside
//! other components' state, brought back to what it was before. This kernel has no IPVS, no
//! WireGuard and no dummy interfaces: the VM tier (tests/vm_uninstall.rs) covers those.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::process::{Command, Output};

use mcwan::lab::netns::Netns;

const MCWAN: &str = env!("CARGO_BIN_EXE_mcwan");

fn mcwan(args: &[&str]) -> Output {
    Command::new(MCWAN)
        .args(args)
        .env_remove("MCWAN_VIP_CIDR")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_names_the_flags_and_says_sysctls_are_left_alone() {
    let out = mcwan(&["uninstall", "--help"]);
    assert!(out.status.success(), "{}", text(&out));
    let help = text(&out);
    for word in [
        "--vip-cidr",
        "[env: MCWAN_VIP_CIDR=]",
        "[default: 241.64.0.0/16]",
        "--dry-run",
        "proto 161",
        "inet mcwan",
        "mcwan0",
        "Sysctls are left as they are",
    ] {
        assert!(help.contains(word), "no {word:?} in:\n{help}");
    }
    let top = text(&mcwan(&["--help"]));
    assert!(top.contains("uninstall"), "{top}");
}

#[test]
fn a_bad_vip_range_is_refused_naming_the_flag() {
    let out = mcwan(&["uninstall", "--vip-cidr", "241.64.0.0/99", "--dry-run"]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(
        err.contains("--vip-cidr") && err.contains("241.64.0.0/99"),
        "{err}"
    );
    let out = mcwan(&["uninstall", "--bogus"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--bogus"));
}

fn sh(ns: &Netns, cmd: &str) -> String {
    ns.exec("bash", &["-c", cmd])
        .unwrap_or_else(|e| panic!("in {}: {e:#}", ns.name))
}

fn snapshot(ns: &Netns) -> String {
    sh(
        ns,
        "ip -d link; ip address; ip rule; ip -6 rule; ip route show table all; \
         ip -6 route show table all; nft list ruleset",
    )
}

#[test]
fn uninstall_in_a_namespace_removes_mcwans_state_and_nothing_else() {
    let ns = Netns::new("mcwun-host").unwrap();
    // Others' state: a link, a table, a rule and routes of other protocols.
    sh(
        &ns,
        "set -e
         ip link add other0 type veth peer name other1
         ip link set other1 up; ip link set other0 up
         ip address add 10.250.0.1/24 dev other0
         nft add table inet other
         nft add chain inet other input '{ type filter hook input priority 0; }'
         nft add rule inet other input tcp dport 22 accept
         ip rule add fwmark 0x42 lookup 4242 priority 4242 proto static
         ip route add 10.250.1.0/24 via 10.250.0.2 table 4242 proto 42
         ip route add 10.250.2.0/24 via 10.250.0.2 proto static",
    );
    std::thread::sleep(std::time::Duration::from_secs(3)); // IPv6 DAD on other0 ends
    let before = snapshot(&ns);
    // mcwan's: what the gateway's dataplane and hand-off make.
    sh(
        &ns,
        "set -e
         nft add table inet mcwan
         nft add chain inet mcwan ipvs_mark_pre '{ type filter hook prerouting priority mangle; }'
         nft add rule inet mcwan ipvs_mark_pre ip daddr 241.64.0.0/16 meta mark set meta mark or 0x100000
         ip rule add fwmark 0x1007a67/0x100ffff lookup 131111 priority 1000 proto 161
         ip rule add lookup main suppress_prefixlength 0 priority 999 proto 161
         ip route add default via 10.250.0.254 table 131111 proto 161",
    );
    let dry = text(&ns_mcwan(&ns, &["uninstall", "--dry-run"]));
    let expected = [
        "ip rule priority 999 lookup 254 suppress_prefixlength 0 (proto 161)",
        "ip rule priority 1000 fwmark 0x1007a67/0x100ffff lookup 131111 (proto 161)",
        "ip route 0.0.0.0/0 table 131111 via 10.250.0.254 (proto 161)",
        "nftables table inet mcwan",
    ];
    let would: Vec<&str> = dry
        .lines()
        .filter_map(|l| l.strip_prefix("would remove "))
        .collect();
    assert_eq!(would, expected, "{dry}");
    assert!(
        snapshot(&ns).contains("table inet mcwan"),
        "--dry-run removed something"
    );

    let out = ns_mcwan(&ns, &["uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    let removed: Vec<String> = text(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("removed ").map(str::to_owned))
        .collect();
    assert_eq!(removed, expected);
    assert_eq!(snapshot(&ns), before);

    let again = ns_mcwan(&ns, &["uninstall"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("nothing of mcwan's on this node: nothing removed"),
        "{}",
        text(&again)
    );
    assert_eq!(snapshot(&ns), before);
}

/// A foreign mcwan0 (not a dummy) is left alone, and said so.
#[test]
fn an_mcwan0_that_is_not_a_dummy_is_left_alone() {
    let ns = Netns::new("mcwun-veth").unwrap();
    sh(&ns, "ip link add mcwan0 type veth peer name mcwan0-peer");
    let out = text(&ns_mcwan(&ns, &["uninstall"]));
    assert!(
        out.contains("interface mcwan0 is a veth device, not mcwan's dummy interface: left alone"),
        "{out}"
    );
    assert!(sh(&ns, "ip link show mcwan0").contains("mcwan0"));
}

fn ns_mcwan(ns: &Netns, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &ns.name, MCWAN])
        .args(args)
        .env_remove("MCWAN_VIP_CIDR")
        .output()
        .unwrap()
}
