//! Per-cluster WAN policy checks: a tunnel class has one WAN port, and the ingress port ranges
//! of different classes do not overlap (the SD-WAN classifies by port). A policy that breaks a
//! rule is reported and left out; the policies before it (by name) stay usable.

use std::collections::BTreeMap;

use crate::model::{ClusterObjects, WanPolicy};
use crate::problem::{ObjectRef, Problem};

/// The usable policies of one cluster, by name.
pub fn usable(
    cluster: &str,
    objects: &ClusterObjects,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, WanPolicy> {
    let mut out: BTreeMap<String, WanPolicy> = BTreeMap::new();
    for policy in objects.wan_policies.values() {
        let object = ObjectRef::cluster_scoped("WANPolicy", &policy.name);
        let same_class = out.values().find(|p| p.tunnel == policy.tunnel);
        if let Some(other) = same_class {
            if other.port != policy.port || other.port_count != policy.port_count {
                problems.push(Problem::error(
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
                continue;
            }
        } else if let Some(other) = out
            .values()
            .find(|p| p.tunnel != policy.tunnel && overlaps(p, policy))
        {
            problems.push(Problem::error(
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
            continue;
        }
        out.insert(policy.name.clone(), policy.clone());
    }
    out
}

fn overlaps(a: &WanPolicy, b: &WanPolicy) -> bool {
    a.port_range().start() <= b.port_range().end() && b.port_range().start() <= a.port_range().end()
}
