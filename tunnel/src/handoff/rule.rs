//! Policy rules for hand-off: `ip rule add fwmark M/MASK lookup T priority P proto 161`, one
//! per class, in the next hop's family, and `lookup main suppress_prefixlength 0` one priority
//! before the first of them. Ours are the rules with protocol
//! [`RTPROT_MCWAN`](crate::RTPROT_MCWAN); no other rule is ever removed.

use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::owner::RTPROT_MCWAN;
use crate::spec::HandoffSpec;

/// The kernel's main routing table.
const MAIN_TABLE: u32 = 254;

/// A rule, reduced to what mcwan compares.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InstalledRule {
    pub ipv4: bool,
    pub priority: u32,
    pub fwmark: u32,
    pub fwmask: u32,
    pub table: u32,
    /// `suppress_prefixlength`: ignore routes of this prefix length or shorter.
    pub suppress_prefixlength: Option<u32>,
    pub protocol: u8,
}

impl InstalledRule {
    pub fn of(spec: &HandoffSpec) -> Self {
        InstalledRule {
            ipv4: spec.next_hop.is_ipv4(),
            priority: spec.rule_priority,
            fwmark: spec.fwmark,
            fwmask: spec.fwmark_mask,
            table: spec.table,
            suppress_prefixlength: None,
            protocol: RTPROT_MCWAN,
        }
    }

    /// `lookup main suppress_prefixlength 0` at `priority`: the main table for everything but
    /// its default route, ahead of the class rules. Marked traffic to a directly reachable
    /// network (pods behind the gateway, the gateway's own links) keeps using it; only what
    /// would take the default route goes to a class's edge.
    pub fn main_without_default(ipv4: bool, priority: u32) -> Self {
        InstalledRule {
            ipv4,
            priority,
            fwmark: 0,
            fwmask: 0,
            table: MAIN_TABLE,
            suppress_prefixlength: Some(0),
            protocol: RTPROT_MCWAN,
        }
    }

    pub fn is_ours(&self) -> bool {
        self.protocol == RTPROT_MCWAN
    }
}

impl std::fmt::Display for InstalledRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rule {}priority {}",
            if self.ipv4 { "" } else { "(ipv6) " },
            self.priority
        )?;
        if self.fwmark != 0 {
            write!(f, " fwmark {:#x}/{:#x}", self.fwmark, self.fwmask)?;
        }
        write!(f, " lookup {}", self.table)?;
        if let Some(len) = self.suppress_prefixlength {
            write!(f, " suppress_prefixlength {len}")?;
        }
        Ok(())
    }
}

fn message(rule: &InstalledRule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if rule.ipv4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.action = RuleAction::ToTable;
    m.header.table = u8::try_from(rule.table).unwrap_or(252);
    m.attributes.push(RuleAttribute::Priority(rule.priority));
    if rule.fwmark != 0 {
        m.attributes.push(RuleAttribute::FwMark(rule.fwmark));
        m.attributes.push(RuleAttribute::FwMask(rule.fwmask));
    }
    if let Some(len) = rule.suppress_prefixlength {
        m.attributes.push(RuleAttribute::SuppressPrefixLen(len));
    }
    m.attributes.push(RuleAttribute::Table(rule.table));
    m.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::from(rule.protocol)));
    m
}

/// `ip rule add`.
pub fn add(rule: &InstalledRule) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewRule(message(rule))
}

/// `ip rule del` of exactly this rule.
pub fn del(rule: &InstalledRule) -> RouteNetlinkMessage {
    RouteNetlinkMessage::DelRule(message(rule))
}

/// The dump of one family's rules.
pub fn dump(ipv4: bool) -> RouteNetlinkMessage {
    let mut m = RuleMessage::default();
    m.header.family = if ipv4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    RouteNetlinkMessage::GetRule(m)
}

/// Reads a kernel rule.
pub fn read(m: &RuleMessage) -> InstalledRule {
    let mut rule = InstalledRule {
        ipv4: m.header.family == AddressFamily::Inet,
        priority: 0,
        fwmark: 0,
        fwmask: 0,
        table: u32::from(m.header.table),
        suppress_prefixlength: None,
        protocol: 0,
    };
    for attr in &m.attributes {
        match attr {
            RuleAttribute::Priority(p) => rule.priority = *p,
            RuleAttribute::FwMark(f) => rule.fwmark = *f,
            RuleAttribute::FwMask(m) => rule.fwmask = *m,
            // The kernel reports "no suppression" as all ones.
            RuleAttribute::SuppressPrefixLen(len) if *len != u32::MAX => {
                rule.suppress_prefixlength = Some(*len)
            }
            RuleAttribute::Table(t) => rule.table = *t,
            RuleAttribute::Protocol(p) => rule.protocol = u8::from(*p),
            _ => {}
        }
    }
    rule
}

/// (add, remove): wanted rules not installed, and our installed rules not wanted.
pub fn plan(
    installed: &[InstalledRule],
    wanted: &[InstalledRule],
) -> (Vec<InstalledRule>, Vec<InstalledRule>) {
    let add = wanted
        .iter()
        .filter(|w| !installed.contains(w))
        .cloned()
        .collect();
    let remove = installed
        .iter()
        .filter(|r| r.is_ours() && !wanted.contains(r))
        .cloned()
        .collect();
    (add, remove)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::mk_handoff;

    #[test]
    fn rule_carries_mark_table_priority_and_our_protocol() {
        let rule = InstalledRule::of(&mk_handoff("high", (31000, 31009), 1));
        let RouteNetlinkMessage::NewRule(m) = add(&rule) else {
            panic!()
        };
        assert_eq!(m.header.action, RuleAction::ToTable);
        assert!(m.attributes.contains(&RuleAttribute::FwMark(0xa01)));
        assert!(m.attributes.contains(&RuleAttribute::Table(1001)));
        assert!(m.attributes.contains(&RuleAttribute::Priority(10_001)));
        assert!(m
            .attributes
            .contains(&RuleAttribute::Protocol(RouteProtocol::Other(RTPROT_MCWAN))));
        assert_eq!(read(&m), rule);
    }

    #[test]
    fn main_without_default_round_trips() {
        let rule = InstalledRule::main_without_default(true, 999);
        let RouteNetlinkMessage::NewRule(m) = add(&rule) else {
            panic!()
        };
        assert!(m.attributes.contains(&RuleAttribute::SuppressPrefixLen(0)));
        assert!(!m
            .attributes
            .iter()
            .any(|a| matches!(a, RuleAttribute::FwMark(_))));
        assert_eq!(m.header.table, 254);
        assert_eq!(read(&m), rule);
        assert_eq!(
            rule.to_string(),
            "rule priority 999 lookup 254 suppress_prefixlength 0"
        );
    }

    #[test]
    fn plan_keeps_foreign_rules_and_replaces_changed_ours() {
        let ours = InstalledRule::of(&mk_handoff("high", (31000, 31009), 1));
        let foreign = InstalledRule {
            protocol: 4,
            ..InstalledRule::of(&mk_handoff("x", (1, 2), 9))
        };
        let mut moved = ours.clone();
        moved.table = 1010;
        let (add, remove) = plan(&[ours.clone(), foreign], &[moved.clone()]);
        assert_eq!(add, vec![moved]);
        assert_eq!(remove, vec![ours]);
    }
}
