//! `mcwan uninstall`: removes from a node everything mcwan's dataplane owns, and nothing else.
//!
//! ```text
//!  survey (read only) ─▶ Vec<Object>, in removal order ─▶ --dry-run: print "would remove"
//!                                                     └─▶ remove each, print "removed"
//! ```
//!
//! Ownership is decided by the same marks the actuators use to find their state again after a
//! restart:
//! 1. policy rules with protocol 161 ([`mcwan_tunnel::RTPROT_MCWAN`], SD-WAN hand-off);
//! 2. routes with protocol 161, in any table (hand-off's class tables, WAN routes);
//! 3. IPVS virtual services ([`Ownership::owns`]) on the ClusterSetIP range (`--vip-cidr`, and
//!    the range recorded in mcwan's masquerade chain) or on an ingress address and port range
//!    recorded there (the gateway marks exactly the ranges it owns);
//! 4. the nftables table `inet mcwan` (masquerade and hand-off chains);
//! 5. the ClusterSetIP interface `mcwan0` (a dummy interface);
//! 6. tunnel interfaces whose ifalias is `mcwan tunnel class=<class>` (kernel WireGuard, or a
//!    TUN of the userspace backend).
//!
//! Rules go first, so no traffic is steered into a table while it empties; IPVS services go
//! before the nftables table, whose chains are the record of the ingress ranges.
//!
//! Sysctls are left alone: the gateway sets `net.ipv4.ip_forward`, `net.ipv4.vs.conntrack` and
//! `net.ipv4.vs.expire_nodest_conn` without recording their previous values, and other
//! components (kube-proxy, the CNI) rely on the same settings.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use ipvs_netlink::ServiceKey;
use mcwan_tunnel::handoff::rule::{self, InstalledRule};
use mcwan_tunnel::link::{Link, Links};
use mcwan_tunnel::netlink::{errno, Rtnl};
use mcwan_tunnel::route::builder::{self as route, InstalledRoute};
use mcwan_tunnel::{handoff::nft, owner};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::NLM_F_ACK;

use super::ipvs::vs_key;
use super::ipvs_diff::Ownership;
use super::nat;
use super::vip_link::VIP_INTERFACE;

/// The chain of `inet mcwan` whose rules name every range the gateway masquerades (and owns).
const MARK_CHAIN: &str = "ipvs_mark_pre";

#[derive(Debug, clap::Args)]
pub struct UninstallCmd {
    /// The ClusterSetIP range the gateway used (as its --vip-cidr); IPVS virtual services in it
    /// are removed. The range recorded in mcwan's nftables table is removed as well.
    #[arg(long, default_value = "241.64.0.0/16", env = "MCWAN_VIP_CIDR")]
    pub vip_cidr: IpNet,
    /// Print what would be removed, in the order it would be, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One kernel object mcwan owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Rule(InstalledRule),
    Route(InstalledRoute),
    IpvsService(ServiceKey),
    NftTable,
    VipInterface(Link),
    Tunnel { link: Link, class: String },
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Rule(r) => write!(f, "ip {r} (proto 161)"),
            Object::Route(r) => {
                write!(f, "ip route {} table {}", r.destination, r.table)?;
                if let Some(gw) = r.gateway {
                    write!(f, " via {gw}")?;
                }
                if r.metric != 0 {
                    write!(f, " metric {}", r.metric)?;
                }
                f.write_str(" (proto 161)")
            }
            Object::IpvsService(k) => write!(f, "IPVS virtual service {k}"),
            Object::NftTable => write!(f, "nftables table {}", nat::TABLE),
            Object::VipInterface(l) => write!(f, "interface {} (ClusterSetIPs)", l.name),
            Object::Tunnel { link, class } => write!(
                f,
                "interface {} ({} tunnel of class {class})",
                link.name,
                link.kind.as_deref().unwrap_or("mcwan")
            ),
        }
    }
}

/// What a survey found: the objects to remove, in order, and what was seen but left alone.
#[derive(Debug, Default)]
pub struct Survey {
    pub objects: Vec<Object>,
    pub notes: Vec<String>,
}

/// The ranges `inet mcwan`'s mark chain names, from `nft -j list table inet mcwan`: the
/// ClusterSetIP prefixes, and the (ingress address, first port, last port) ranges.
pub fn recorded_ranges(listing: &serde_json::Value) -> Ownership {
    let mut out = Ownership::default();
    let items = listing
        .get("nftables")
        .and_then(|v| v.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        if rule.get("chain").and_then(|c| c.as_str()) != Some(MARK_CHAIN) {
            continue;
        }
        let exprs = rule
            .get("expr")
            .and_then(|e| e.as_array())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut daddr: Option<IpNet> = None;
        let mut ports: Option<(u16, u16)> = None;
        for m in exprs.iter().filter_map(|e| e.get("match")) {
            let field = m
                .pointer("/left/payload/field")
                .and_then(|f| f.as_str())
                .unwrap_or_default();
            let right = m.get("right").unwrap_or(&serde_json::Value::Null);
            match field {
                "daddr" => daddr = net_of(right),
                "dport" => ports = ports_of(right),
                _ => {}
            }
        }
        match (daddr, ports) {
            (Some(net), Some((first, last))) => out.ingress.push((net.addr(), first, last)),
            // The ClusterSetIP range is marked whole, on every port.
            (Some(net), None) if out.vip_cidr.is_none() => out.vip_cidr = Some(net),
            _ => {}
        }
    }
    out
}

fn net_of(v: &serde_json::Value) -> Option<IpNet> {
    if let Some(s) = v.as_str() {
        return s.parse::<IpAddr>().ok().map(IpNet::from);
    }
    let prefix = v.get("prefix")?;
    let addr: IpAddr = prefix.get("addr")?.as_str()?.parse().ok()?;
    let len = u8::try_from(prefix.get("len")?.as_u64()?).ok()?;
    IpNet::new(addr, len).ok()
}

fn ports_of(v: &serde_json::Value) -> Option<(u16, u16)> {
    let port = |v: &serde_json::Value| v.as_u64().and_then(|p| u16::try_from(p).ok());
    if let Some(p) = port(v) {
        return Some((p, p));
    }
    let range = v.get("range")?.as_array()?;
    Some((port(range.first()?)?, port(range.get(1)?)?))
}

/// The IPVS virtual services among `services` that `vip_cidr` or the `recorded` ranges own.
pub fn owned_services(
    services: impl IntoIterator<Item = ServiceKey>,
    vip_cidr: IpNet,
    recorded: &Ownership,
) -> Vec<ServiceKey> {
    let by_flag = Ownership {
        vip_cidr: Some(vip_cidr),
        ingress: recorded.ingress.clone(),
    };
    services
        .into_iter()
        .filter(|k| vs_key(k).is_some_and(|v| by_flag.owns(&v) || recorded.owns(&v)))
        .collect()
}

/// The node's dataplane: read-only survey and removal of mcwan's objects, in the calling
/// thread's network namespace.
#[derive(Debug)]
pub struct Node {
    rtnl: Rtnl,
    links: Links,
    ipvs: Option<ipvs_netlink::Handle>,
}

impl Node {
    pub async fn connect() -> anyhow::Result<Self> {
        let rtnl = Rtnl::connect()?;
        let ipvs = match ipvs_netlink::Handle::new().await {
            Ok(h) => Some(h),
            // No IPVS in this kernel (module not loaded): no virtual service can be ours.
            Err(ipvs_netlink::Error::FamilyNotFound) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Node {
            links: Links::new(rtnl.clone()),
            rtnl,
            ipvs,
        })
    }

    /// Everything of mcwan's on the node, in removal order.
    pub async fn survey(&self, vip_cidr: IpNet) -> anyhow::Result<Survey> {
        let mut survey = Survey::default();
        for ipv4 in [true, false] {
            for m in self.rtnl.dump("ip rules", rule::dump(ipv4)).await? {
                if let RouteNetlinkMessage::NewRule(r) = m {
                    let r = rule::read(&r);
                    if r.is_ours() {
                        survey.objects.push(Object::Rule(r));
                    }
                }
            }
        }
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            for m in self.rtnl.dump("routes", route::dump(family)).await? {
                if let RouteNetlinkMessage::NewRoute(r) = m {
                    if let Some(r) = route::read(&r).filter(InstalledRoute::is_ours) {
                        survey.objects.push(Object::Route(r));
                    }
                }
            }
        }

        let listing = self.nft_table().await?;
        let recorded = listing.as_ref().map(recorded_ranges).unwrap_or_default();
        if let Some(ipvs) = &self.ipvs {
            let keys = ipvs
                .services()
                .dump()
                .execute()
                .await?
                .into_iter()
                .map(|s| s.key);
            survey.objects.extend(
                owned_services(keys, vip_cidr, &recorded)
                    .into_iter()
                    .map(Object::IpvsService),
            );
        }
        if listing.is_some() {
            survey.objects.push(Object::NftTable);
        }

        let links = self.links.list().await?;
        for link in &links {
            if link.name == VIP_INTERFACE {
                if link.kind.as_deref() == Some("dummy") {
                    survey.objects.push(Object::VipInterface(link.clone()));
                } else {
                    survey.notes.push(format!(
                        "interface {} is a {} device, not mcwan's dummy interface: left alone",
                        link.name,
                        link.kind.as_deref().unwrap_or("plain")
                    ));
                }
            }
        }
        for link in links {
            let class = link.alias.as_deref().and_then(owner::class_of);
            if let Some(class) = class.map(str::to_owned) {
                survey.objects.push(Object::Tunnel { link, class });
            }
        }
        Ok(survey)
    }

    /// `nft -j list table inet mcwan`, or None when there is no such table.
    async fn nft_table(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let tables = nft::run_args("nftables tables", &["-j", "list", "tables"], None).await?;
        let tables: serde_json::Value = serde_json::from_str(&tables)
            .map_err(|e| anyhow::anyhow!("nft -j list tables: cannot parse its output: {e}"))?;
        let exists = tables
            .get("nftables")
            .and_then(|v| v.as_array())
            .is_some_and(|items| {
                items.iter().filter_map(|i| i.get("table")).any(|t| {
                    t.get("family").and_then(|f| f.as_str()) == Some("inet")
                        && t.get("name").and_then(|n| n.as_str()) == Some(nft::TABLE)
                })
            });
        if !exists {
            return Ok(None);
        }
        let listing = nft::run_args(
            nat::TABLE,
            &["-j", "list", "table", "inet", nft::TABLE],
            None,
        )
        .await?;
        let listing = serde_json::from_str(&listing).map_err(|e| {
            anyhow::anyhow!("nft -j list table {}: cannot parse it: {e}", nat::TABLE)
        })?;
        Ok(Some(listing))
    }

    /// Removes one object; one already gone counts as removed.
    pub async fn remove(&self, object: &Object) -> anyhow::Result<()> {
        let name = object.to_string();
        let gone =
            |e: &mcwan_tunnel::Error, codes: &[i32]| e.errno().is_some_and(|n| codes.contains(&n));
        match object {
            Object::Rule(r) => match self.rtnl.execute(&name, rule::del(r), NLM_F_ACK).await {
                Err(e) if gone(&e, &[errno::ENOENT]) => {}
                other => drop(other?),
            },
            Object::Route(r) => match self.rtnl.execute(&name, route::del(r), NLM_F_ACK).await {
                Err(e) if gone(&e, &[errno::ESRCH, errno::ENOENT]) => {}
                other => drop(other?),
            },
            Object::IpvsService(key) => {
                let Some(ipvs) = &self.ipvs else {
                    return Ok(());
                };
                match ipvs.services().del(*key).execute().await {
                    Err(ipvs_netlink::Error::ServiceNotFound { .. }) => {}
                    other => other?,
                }
            }
            Object::NftTable => {
                if self.nft_table().await?.is_some() {
                    nft::run(nat::TABLE, &format!("delete table {}\n", nat::TABLE)).await?;
                }
            }
            Object::VipInterface(link) | Object::Tunnel { link, .. } => {
                self.links.delete(link).await?
            }
        }
        Ok(())
    }
}

/// Runs `mcwan uninstall`; every line of output names one object.
pub fn run(cmd: UninstallCmd) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(uninstall(cmd))
}

async fn uninstall(cmd: UninstallCmd) -> anyhow::Result<std::process::ExitCode> {
    let node = Node::connect().await?;
    let survey = node.survey(cmd.vip_cidr).await?;
    for note in &survey.notes {
        println!("{note}");
    }
    if survey.objects.is_empty() {
        println!("nothing of mcwan's on this node: nothing removed");
        println!("{}", SYSCTL_NOTE);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if cmd.dry_run {
        for object in &survey.objects {
            println!("would remove {object}");
        }
        println!("{} objects would be removed", survey.objects.len());
        println!("{}", SYSCTL_NOTE);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let mut failed = Vec::new();
    for object in &survey.objects {
        match node.remove(object).await {
            Ok(()) => println!("removed {object}"),
            Err(e) => {
                eprintln!("cannot remove {object}: {e:#}");
                failed.push(object.to_string());
            }
        }
    }
    println!("{} objects removed", survey.objects.len() - failed.len());
    println!("{}", SYSCTL_NOTE);
    if !failed.is_empty() {
        anyhow::bail!(
            "{} objects could not be removed: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

const SYSCTL_NOTE: &str = "sysctls left as they are (mcwan does not record their previous \
                           values): net.ipv4.ip_forward, net.ipv4.vs.conntrack, \
                           net.ipv4.vs.expire_nodest_conn";

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(script_rules: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"table": {"family": "inet", "name": "mcwan"}},
            script_rules,
        ]})
    }

    fn mark_rule(
        chain: &str,
        daddr: serde_json::Value,
        dport: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut expr = vec![serde_json::json!({"match": {"op": "==",
            "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": daddr}})];
        if let Some(p) = dport {
            expr.push(serde_json::json!({"match": {"op": "==",
                "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": p}}));
        }
        expr.push(serde_json::json!({"mangle": {"key": {"meta": {"key": "mark"}}}}));
        serde_json::json!({"rule": {"family": "inet", "table": "mcwan", "chain": chain, "expr": expr}})
    }

    #[test]
    fn the_mark_chain_records_the_vip_range_and_the_ingress_ranges() {
        let mut l = listing(mark_rule(
            "ipvs_mark_pre",
            serde_json::json!({"prefix": {"addr": "241.70.0.0", "len": 16}}),
            None,
        ));
        let items = l["nftables"].as_array_mut().unwrap();
        items.push(mark_rule(
            "ipvs_mark_pre",
            "10.255.7.1".into(),
            Some(serde_json::json!({"range": [31111, 31120]})),
        ));
        items.push(mark_rule(
            "ipvs_mark_pre",
            "10.255.7.2".into(),
            Some(31200.into()),
        ));
        // The output chain repeats the ranges; another chain's rules are not a record.
        items.push(mark_rule(
            "handoff_output",
            "10.9.9.9".into(),
            Some(1.into()),
        ));
        let got = recorded_ranges(&l);
        assert_eq!(got.vip_cidr, Some("241.70.0.0/16".parse().unwrap()));
        assert_eq!(
            got.ingress,
            vec![
                ("10.255.7.1".parse().unwrap(), 31111, 31120),
                ("10.255.7.2".parse().unwrap(), 31200, 31200)
            ]
        );
    }

    #[test]
    fn no_table_or_an_odd_listing_records_nothing() {
        assert_eq!(
            recorded_ranges(&serde_json::json!({})),
            Ownership::default()
        );
        assert_eq!(
            recorded_ranges(&listing(
                serde_json::json!({"rule": {"chain": "ipvs_mark_pre", "expr": 7}})
            )),
            Ownership::default()
        );
    }

    #[test]
    fn only_services_in_the_vip_range_or_a_recorded_ingress_range_are_ours() {
        let recorded = Ownership {
            vip_cidr: Some("241.70.0.0/16".parse().unwrap()),
            ingress: vec![("10.255.7.1".parse().unwrap(), 31111, 31120)],
        };
        let keys = [
            ServiceKey::tcp([241, 64, 0, 1], 8080),
            ServiceKey::udp([241, 70, 3, 4], 53),
            ServiceKey::tcp([10, 255, 7, 1], 31115),
            ServiceKey::tcp([10, 255, 7, 1], 31121),
            ServiceKey::tcp([10, 96, 0, 10], 53),
            ServiceKey::fwmark(7, ipvs_netlink::AddressFamily::Ipv4),
        ];
        let owned = owned_services(keys, "241.64.0.0/16".parse().unwrap(), &recorded);
        assert_eq!(owned, keys[..3].to_vec());
    }

    #[test]
    fn the_default_vip_range_is_the_gateways() {
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        let default = |verb: &str| {
            cli.find_subcommand(verb)
                .and_then(|c| c.get_arguments().find(|a| a.get_id() == "vip_cidr"))
                .map(|a| {
                    (
                        a.get_default_values().to_vec(),
                        a.get_env().map(|e| e.to_owned()),
                    )
                })
        };
        assert!(default("uninstall").is_some());
        assert_eq!(default("uninstall"), default("gateway"));
    }

    #[test]
    fn objects_are_named_as_ip_and_ipvsadm_show_them() {
        let route = InstalledRoute {
            table: 131_111,
            destination: "0.0.0.0/0".parse().unwrap(),
            gateway: Some("192.168.77.254".parse().unwrap()),
            oif: None,
            metric: 0,
            protocol: mcwan_tunnel::RTPROT_MCWAN,
        };
        assert_eq!(
            Object::Route(route).to_string(),
            "ip route 0.0.0.0/0 table 131111 via 192.168.77.254 (proto 161)"
        );
        assert_eq!(
            Object::IpvsService(ServiceKey::tcp([241, 64, 0, 1], 8080)).to_string(),
            "IPVS virtual service TCP 241.64.0.1:8080"
        );
        assert_eq!(Object::NftTable.to_string(), "nftables table inet mcwan");
    }
}
