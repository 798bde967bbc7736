//! The nftables part of SD-WAN hand-off, as one `nft -f` script per apply (one atomic
//! transaction).
//!
//! mcwan owns table `inet mcwan` together with its other actuators; hand-off owns only the
//! chains `handoff_prerouting` and `handoff_output` in it. Each apply re-creates their rules
//! (flush and re-add inside the same transaction, so there is no moment without them) and
//! never touches any other chain or table.
//!
//! Why two hooks: `prerouting` marks traffic the gateway forwards (pods, hosts behind it)
//! before the routing decision; `output` marks traffic the gateway itself sends (IPVS
//! connections it originates, health checks, tools). The output chain is `type route`, so the
//! kernel routes the packet again after the mark changes. The mark is set on every packet,
//! both directions, of a connection in the class's port range, judged by conntrack rather than
//! by the packet's own ports (which IPVS rewrites): connections whose original destination port
//! is in the range (into this gateway's ingress ports, or sent from here to a peer's), and
//! connections whose reply comes from a port in the range (IPVS's connections from a
//! ClusterSetIP to a peer's ingress port, whose original destination is the ClusterSetIP).

use std::fmt::Write as _;

use crate::spec::HandoffSpec;

/// The nftables table (family inet) mcwan owns.
pub const TABLE: &str = "mcwan";
/// The chains hand-off owns in it.
pub const CHAINS: [(&str, &str); 2] = [
    (
        "handoff_prerouting",
        "type filter hook prerouting priority mangle; policy accept;",
    ),
    (
        "handoff_output",
        "type route hook output priority mangle; policy accept;",
    ),
];

/// The comment on each rule, naming the class.
pub fn comment(class: &str) -> String {
    format!("mcwan hand-off class {class}")
}

/// The script that makes hand-off's chains hold exactly the rules for `specs`; with no specs
/// it removes the chains.
pub fn script(specs: &[HandoffSpec]) -> String {
    let mut out = format!("add table inet {TABLE}\n");
    for (chain, def) in CHAINS {
        let _ = writeln!(out, "add chain inet {TABLE} {chain} {{ {def} }}");
        let _ = writeln!(out, "flush chain inet {TABLE} {chain}");
        if specs.is_empty() {
            let _ = writeln!(out, "delete chain inet {TABLE} {chain}");
            continue;
        }
        for spec in specs {
            let (lo, hi) = spec.port_range;
            let range = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            };
            let comment = comment(&spec.class);
            for tuple in ["original proto-dst", "reply proto-src"] {
                let _ = writeln!(
                    out,
                    "add rule inet {TABLE} {chain} meta l4proto {{ tcp, udp }} ct {tuple} {range} \
                     meta mark set meta mark and {:#010x} or {:#010x} counter comment \"{comment}\"",
                    !spec.fwmark_mask,
                    spec.fwmark
                );
            }
        }
    }
    out
}

/// The script deleting table `inet mcwan` when `listing` (its `nft -j list table`) shows it
/// holds nothing any more.
pub fn delete_if_empty(listing: &serde_json::Value) -> Option<String> {
    let items = listing.get("nftables")?.as_array()?;
    let holds_anything = items.iter().any(|item| {
        [
            "chain",
            "set",
            "map",
            "flowtable",
            "counter",
            "quota",
            "ct helper",
            "limit",
        ]
        .iter()
        .any(|k| item.get(*k).is_some())
    });
    (!holds_anything).then(|| format!("delete table inet {TABLE}\n"))
}

/// Runs `nft` with a script on stdin.
pub async fn run(what: &str, script: &str) -> crate::Result<String> {
    run_args(what, &["-f", "-"], Some(script)).await
}

/// Runs `nft` with arguments (and optional stdin), returning stdout.
pub async fn run_args(what: &str, args: &[&str], stdin: Option<&str>) -> crate::Result<String> {
    use tokio::io::AsyncWriteExt as _;
    let err = |message: String| crate::Error::Nft {
        what: what.to_owned(),
        message,
    };
    let mut child = tokio::process::Command::new("nft")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run nft: {e}")))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.unwrap_or("").as_bytes())
            .await
            .map_err(|e| err(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| err(e.to_string()))?;
    if !output.status.success() {
        return Err(err(String::from_utf8_lossy(&output.stderr)
            .trim()
            .to_owned()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::mk_handoff;

    #[test]
    fn marks_both_directions_of_each_class_in_both_chains() {
        let text = script(&[
            mk_handoff("high", (31000, 31009), 1),
            mk_handoff("low", (32000, 32000), 2),
        ]);
        let expected = "\
add table inet mcwan
add chain inet mcwan handoff_prerouting { type filter hook prerouting priority mangle; policy accept; }
flush chain inet mcwan handoff_prerouting
add rule inet mcwan handoff_prerouting meta l4proto { tcp, udp } ct original proto-dst 31000-31009 meta mark set meta mark and 0xfffff000 or 0x00000a01 counter comment \"mcwan hand-off class high\"
add rule inet mcwan handoff_prerouting meta l4proto { tcp, udp } ct reply proto-src 31000-31009 meta mark set meta mark and 0xfffff000 or 0x00000a01 counter comment \"mcwan hand-off class high\"
add rule inet mcwan handoff_prerouting meta l4proto { tcp, udp } ct original proto-dst 32000 meta mark set meta mark and 0xfffff000 or 0x00000a02 counter comment \"mcwan hand-off class low\"
add rule inet mcwan handoff_prerouting meta l4proto { tcp, udp } ct reply proto-src 32000 meta mark set meta mark and 0xfffff000 or 0x00000a02 counter comment \"mcwan hand-off class low\"
add chain inet mcwan handoff_output { type route hook output priority mangle; policy accept; }
flush chain inet mcwan handoff_output
";
        assert!(text.starts_with(expected), "{text}");
        assert_eq!(text.lines().count(), 13);
        assert!(!text.contains("flush table") && !text.contains("flush ruleset"));
    }

    #[test]
    fn no_specs_deletes_only_our_chains() {
        let text = script(&[]);
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("delete"))
                .collect::<Vec<_>>(),
            vec![
                "delete chain inet mcwan handoff_prerouting",
                "delete chain inet mcwan handoff_output"
            ]
        );
        assert!(!text.contains("delete table"));
    }

    #[test]
    fn the_table_goes_only_when_empty() {
        let empty =
            serde_json::json!({"nftables": [{"metainfo": {}}, {"table": {"name": "mcwan"}}]});
        assert_eq!(
            delete_if_empty(&empty).as_deref(),
            Some("delete table inet mcwan\n")
        );
        let used = serde_json::json!({"nftables": [{"table": {}}, {"chain": {"name": "snat"}}]});
        assert_eq!(delete_if_empty(&used), None);
    }
}
