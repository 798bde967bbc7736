//! SD-WAN hand-off: per class, nftables marks the connections of the class's port range
//! ([`nft`]), a policy rule sends the mark to the class's table ([`rule`]), and that table's
//! default route points at the class's SD-WAN edge ([`crate::route`], scope
//! [`TableScope::Dedicated`]). One more rule, just ahead of the class rules, looks up the main
//! table without its default route, so marked packets to networks the gateway reaches directly
//! (its pods, behind IPVS) stay on them and only WAN-bound ones take the edge. All of it is
//! applied as diffs of what mcwan owns.

pub mod nft;
pub mod rule;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Result;
use crate::link::Links;
use crate::netlink::{errno, Rtnl};
use crate::route::{RouteReport, Routes, TableScope};
use crate::spec::{validate_handoffs, HandoffSpec, RouteSpec};
use rule::InstalledRule;

/// What one apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandoffReport {
    pub classes: Vec<String>,
    pub rules_added: Vec<InstalledRule>,
    pub rules_removed: Vec<InstalledRule>,
    pub routes: RouteReport,
}

/// The hand-off actuator (in the network namespace of the thread that created it).
#[derive(Debug, Clone)]
pub struct Handoff {
    rtnl: Rtnl,
    routes: Routes,
}

impl Handoff {
    pub fn new() -> Result<Self> {
        let rtnl = Rtnl::connect()?;
        let routes = Routes::with_links(Links::new(rtnl.clone()), TableScope::Dedicated);
        Ok(Handoff { rtnl, routes })
    }

    /// Makes mcwan's hand-off state exactly `specs`: routes first (a rule never points at an
    /// empty table), then rules, then the marks.
    pub async fn apply(&self, specs: &[HandoffSpec]) -> Result<HandoffReport> {
        validate_handoffs(specs)?;
        let routes: Vec<RouteSpec> = specs
            .iter()
            .map(|s| RouteSpec {
                destination: if s.next_hop.is_ipv4() {
                    IpNet::V4(Ipv4Net::default())
                } else {
                    IpNet::V6(Ipv6Net::default())
                },
                gateway: Some(s.next_hop),
                device: None,
                table: s.table,
                metric: None,
            })
            .collect();
        let route_report = self.routes.apply(&routes).await?;

        let mut installed = Vec::new();
        for ipv4 in [true, false] {
            for m in self.rtnl.dump("rules", rule::dump(ipv4)).await? {
                if let RouteNetlinkMessage::NewRule(r) = m {
                    installed.push(rule::read(&r));
                }
            }
        }
        let mut wanted: Vec<InstalledRule> = specs.iter().map(InstalledRule::of).collect();
        for ipv4 in [true, false] {
            let first = specs
                .iter()
                .filter(|s| s.next_hop.is_ipv4() == ipv4)
                .map(|s| s.rule_priority)
                .min();
            if let Some(first) = first {
                wanted.push(InstalledRule::main_without_default(ipv4, first - 1));
            }
        }
        let (add, remove) = rule::plan(&installed, &wanted);
        for r in &add {
            self.rtnl
                .execute(
                    &r.to_string(),
                    rule::add(r),
                    NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                )
                .await?;
        }
        for r in &remove {
            match self
                .rtnl
                .execute(&r.to_string(), rule::del(r), NLM_F_ACK)
                .await
            {
                Err(e) if e.errno() == Some(errno::ENOENT) => {}
                other => {
                    other?;
                }
            }
        }

        nft::run("hand-off chains", &nft::script(specs)).await?;
        if specs.is_empty() {
            let listing = nft::run_args(
                "table inet mcwan",
                &["-j", "list", "table", "inet", nft::TABLE],
                None,
            )
            .await?;
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&listing) {
                if let Some(script) = nft::delete_if_empty(&json) {
                    nft::run("table inet mcwan", &script).await?;
                }
            }
        }
        if !(add.is_empty() && remove.is_empty()) {
            tracing::info!(
                rules_added = add.len(),
                rules_removed = remove.len(),
                "hand-off rules applied"
            );
        }
        Ok(HandoffReport {
            classes: specs.iter().map(|s| s.class.clone()).collect(),
            rules_added: add,
            rules_removed: remove,
            routes: route_report,
        })
    }
}
