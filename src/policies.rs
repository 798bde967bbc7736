//! Per-cluster WAN policy checks: a tunnel class has one WAN port, and the ingress port ranges
//! of different classes do not overlap (the SD-WAN classifies by port). A policy that breaks a
//! rule is reported and left out, and the policies it collides with stay usable.
//!
//! Which of two colliding policies is left out: the one that changed. Policies that were
//! usable in the last plan and have not changed since are checked first, so editing one
//! policy into a collision refuses that edit instead of withdrawing the services of the
//! unchanged one. Without history (a first plan), by name.

use std::collections::BTreeMap;

use crate::model::{ClusterObjects, WanPolicy};
use crate::problem::{ObjectRef, Problem};

/// The usable policies of one cluster, by name.
pub fn usable(
    cluster: &str,
    objects: &ClusterObjects,
    previous: Option<&BTreeMap<String, WanPolicy>>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, WanPolicy> {
    let unchanged = |p: &WanPolicy| previous.and_then(|prev| prev.get(&p.name)) == Some(p);
    let (mut order, changed): (Vec<&WanPolicy>, Vec<&WanPolicy>) =
        objects.wan_policies.values().partition(|p| unchanged(p));
    order.extend(changed);
    let mut out: BTreeMap<String, WanPolicy> = BTreeMap::new();
    for policy in order {
        let Some(refused) = collision(cluster, policy, &out) else {
            out.insert(policy.name.clone(), policy.clone());
            continue;
        };
        problems.push(refused);
        // A refused edit keeps the version that was usable before it, if that one still fits.
        if let Some(last) = previous.and_then(|prev| prev.get(&policy.name)) {
            if last != policy && collision(cluster, last, &out).is_none() {
                problems.push(Problem::warning(
                    Some(cluster),
                    ObjectRef::cluster_scoped("WANPolicy", &policy.name),
                    None,
                    "its last usable version stays in force until the new one is fixed".into(),
                ));
                out.insert(policy.name.clone(), last.clone());
            }
        }
    }
    let marked: Vec<&str> = out
        .values()
        .filter(|p| p.is_default)
        .map(|p| p.name.as_str())
        .collect();
    if marked.len() > 1 {
        for name in &marked {
            problems.push(Problem::error(
                Some(cluster),
                ObjectRef::cluster_scoped("WANPolicy", name),
                Some("metadata.annotations[\"mcw.l7mp.io/is-default-policy\"]"),
                format!(
                    "several WANPolicies are marked default ({}): exports that name no policy are not exported until all but one are unmarked",
                    marked.join(", ")
                ),
            ));
        }
    }
    out
}

/// The problem naming what `policy` collides with among the policies in `out`, if anything.
fn collision(
    cluster: &str,
    policy: &WanPolicy,
    out: &BTreeMap<String, WanPolicy>,
) -> Option<Problem> {
    let object = ObjectRef::cluster_scoped("WANPolicy", &policy.name);
    if let Some(other) = out.values().find(|p| p.tunnel == policy.tunnel) {
        if other.port != policy.port || other.port_count != policy.port_count {
            return Some(Problem::error(
                Some(cluster),
                object,
                Some("spec.port"),
                format!(
                    "tunnel class {:?} already has ports {}-{} from WANPolicy {}; every policy of a class must use the same spec.port and spec.portCount",
                    policy.tunnel,
                    other.port_range().start(),
                    other.port_range().end(),
                    other.name
                ),
            ));
        }
    } else if let Some(other) = out
        .values()
        .find(|p| p.tunnel != policy.tunnel && overlaps(p, policy))
    {
        return Some(Problem::error(
            Some(cluster),
            object,
            Some("spec.port"),
            format!(
                "ports {}-{} overlap ports {}-{} of WANPolicy {} (tunnel class {:?}); classes need disjoint port ranges",
                policy.port_range().start(),
                policy.port_range().end(),
                other.port_range().start(),
                other.port_range().end(),
                other.name,
                other.tunnel
            ),
        ));
    }
    None
}

fn overlaps(a: &WanPolicy, b: &WanPolicy) -> bool {
    a.port_range().start() <= b.port_range().end() && b.port_range().start() <= a.port_range().end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, tunnel: &str, port: u16, port_count: u16) -> WanPolicy {
        WanPolicy {
            name: name.into(),
            tunnel: tunnel.into(),
            port,
            port_count,
            sla: Default::default(),
            is_default: false,
        }
    }

    fn objects(policies: &[WanPolicy]) -> ClusterObjects {
        ClusterObjects {
            wan_policies: policies
                .iter()
                .map(|p| (p.name.clone(), p.clone()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_edit_that_collides_is_refused_and_its_last_version_stays() {
        let high = policy("sd-wan-priority-high", "business", 31111, 1);
        let low = policy("sd-wan-priority-low", "default", 31112, 1);
        let mut problems = Vec::new();
        let before = usable(
            "c1",
            &objects(&[high.clone(), low.clone()]),
            None,
            &mut problems,
        );
        assert!(problems.is_empty());
        // high grows over low's port: high (the edit) is refused, low keeps its services, and
        // high's last usable version stays in force.
        let grown = policy("sd-wan-priority-high", "business", 31111, 5);
        let after = usable(
            "c1",
            &objects(&[grown, low.clone()]),
            Some(&before),
            &mut problems,
        );
        assert_eq!(after["sd-wan-priority-low"], low);
        assert_eq!(after["sd-wan-priority-high"], high);
        assert_eq!(
            problems[0].object.to_string(),
            "WANPolicy sd-wan-priority-high"
        );
        assert_eq!(problems[0].field.as_deref(), Some("spec.port"));
        assert!(
            problems[1].message.contains("last usable version"),
            "{problems:#?}"
        );
        // The same collision the other way round: low's edit is the one refused.
        let mut problems = Vec::new();
        let moved = policy("sd-wan-priority-low", "default", 31110, 3);
        let after = usable(
            "c1",
            &objects(&[high.clone(), moved]),
            Some(&before),
            &mut problems,
        );
        assert_eq!(after["sd-wan-priority-high"], high);
        assert_eq!(after["sd-wan-priority-low"], low);
        assert_eq!(
            problems[0].object.to_string(),
            "WANPolicy sd-wan-priority-low"
        );
    }

    #[test]
    fn without_history_the_first_by_name_wins() {
        let mut problems = Vec::new();
        let out = usable(
            "c1",
            &objects(&[
                policy("a", "business", 31111, 5),
                policy("b", "default", 31112, 1),
            ]),
            None,
            &mut problems,
        );
        assert!(out.contains_key("a") && !out.contains_key("b"));
        assert_eq!(problems[0].object.to_string(), "WANPolicy b");
    }
}

/// The WANPolicy a user means by `arg` (`--wan-policy`), among `policies` as (name, tunnel
/// class): its exact name; else the one whose tunnel class it is; else the one whose name it
/// begins; else the one whose name ends in `-<arg>` (`high` for `sd-wan-priority-high`). A
/// match of several at the first rule that matches is an error naming them, as is no match.
pub fn resolve_name(arg: &str, policies: &[(String, String)]) -> Result<String, String> {
    if policies.iter().any(|(name, _)| name == arg) {
        return Ok(arg.to_owned());
    }
    let suffix = format!("-{arg}");
    type Rule<'a> = (&'a str, &'a dyn Fn(&(String, String)) -> bool);
    let rules: [Rule<'_>; 3] = [
        ("tunnel class", &|(_, tunnel)| tunnel == arg),
        ("name prefix", &|(name, _)| name.starts_with(arg)),
        ("name suffix", &|(name, _)| name.ends_with(&suffix)),
    ];
    for (rule, matches) in rules {
        let found: Vec<&str> = policies
            .iter()
            .filter(|p| matches(p))
            .map(|(name, _)| name.as_str())
            .collect();
        match found.as_slice() {
            [] => continue,
            [one] => return Ok((*one).to_owned()),
            many => {
                return Err(format!(
                    "--wan-policy {arg:?} is ambiguous: it is the {rule} of {}; give the full name",
                    many.join(", ")
                ))
            }
        }
    }
    let known: Vec<&str> = policies.iter().map(|(n, _)| n.as_str()).collect();
    Err(format!(
        "WANPolicy {arg:?} does not exist (as a name, a tunnel class, or a prefix or suffix of a name); known policies: {}",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    ))
}

#[cfg(test)]
mod name_tests {
    use super::resolve_name;

    fn seed() -> Vec<(String, String)> {
        [
            ("sd-wan-priority-high", "business"),
            ("sd-wan-priority-low", "default"),
        ]
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .to_vec()
    }

    #[test]
    fn a_policy_is_named_by_name_tunnel_class_prefix_or_suffix() {
        let p = seed();
        for (arg, want) in [
            ("sd-wan-priority-high", "sd-wan-priority-high"),
            ("business", "sd-wan-priority-high"),
            ("default", "sd-wan-priority-low"),
            ("sd-wan-priority-l", "sd-wan-priority-low"),
            ("high", "sd-wan-priority-high"),
            ("low", "sd-wan-priority-low"),
        ] {
            assert_eq!(resolve_name(arg, &p).as_deref(), Ok(want), "{arg}");
        }
    }

    #[test]
    fn an_ambiguous_or_unknown_name_is_an_error_naming_the_candidates() {
        let p = seed();
        let e = resolve_name("sd-wan", &p).unwrap_err();
        assert!(
            e.contains("ambiguous") && e.contains("sd-wan-priority-high, sd-wan-priority-low"),
            "{e}"
        );
        let e = resolve_name("gold", &p).unwrap_err();
        assert!(
            e.contains("known policies: sd-wan-priority-high, sd-wan-priority-low"),
            "{e}"
        );
        assert!(resolve_name("x", &[])
            .unwrap_err()
            .contains("known policies: none"));
    }
}
