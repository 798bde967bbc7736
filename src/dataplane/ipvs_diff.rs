//! The IPVS diff: from the kernel's table (what mcwan owns of it) to the desired one, with the
//! fewest operations. Pure: the IPVS actuator dumps, calls [`diff`], and sends the result as
//! one batch. Virtual services that still exist are edited in place, never re-created, so
//! established connections keep their IPVS entries across restarts and changes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::desired::VirtualServer;
use crate::model::Protocol;

/// A virtual service's identity in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VsKey {
    pub protocol: Protocol,
    pub address: IpAddr,
    pub port: u16,
}

/// A virtual service as the kernel holds it (or should).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VsState {
    pub scheduler: String,
    /// Persistence timeout in seconds, when persistent.
    pub persistence: Option<u32>,
    /// Real servers: (address, port) -> weight.
    pub reals: BTreeMap<(IpAddr, u16), u32>,
}

/// One change to the kernel's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    AddService(VsKey, VsState),
    EditService(VsKey, VsState),
    DelService(VsKey),
    AddReal(VsKey, (IpAddr, u16), u32),
    EditReal(VsKey, (IpAddr, u16), u32),
    DelReal(VsKey, (IpAddr, u16)),
}

/// What mcwan owns in the kernel's IPVS table: virtual services on its ClusterSetIP range, and
/// on its ingress addresses within its tunnel classes' port ranges. Everything else belongs to
/// someone else (kube-proxy, an operator) and is never touched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ownership {
    pub vip_cidr: Option<IpNet>,
    /// (ingress address, first port, last port).
    pub ingress: Vec<(IpAddr, u16, u16)>,
}

impl Ownership {
    pub fn owns(&self, key: &VsKey) -> bool {
        self.vip_cidr.is_some_and(|c| c.contains(&key.address))
            || self.ingress.iter().any(|(addr, first, last)| {
                *addr == key.address && (*first..=*last).contains(&key.port)
            })
    }
}

/// The desired tables as kernel state, keyed.
pub fn desired_table<'a>(
    servers: impl IntoIterator<Item = &'a VirtualServer>,
) -> BTreeMap<VsKey, VsState> {
    let mut out = BTreeMap::new();
    for vs in servers {
        let key = VsKey {
            protocol: vs.protocol,
            address: vs.address,
            port: vs.port,
        };
        let reals = vs
            .reals
            .iter()
            .map(|r| ((r.address, r.port), r.weight))
            .collect();
        out.insert(
            key,
            VsState {
                scheduler: vs.scheduler.clone(),
                persistence: vs.persistence,
                reals,
            },
        );
    }
    out
}

/// A real server of a virtual service, as the kernel names it.
pub type RealKey = (IpAddr, u16);

/// What becomes of a real server the desired state no longer has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// Deleted now.
    Delete,
    /// Kept at weight 0 while its connections last.
    Drain,
}

/// The operations that turn the owned part of `actual` into `desired`. Services of `actual` not
/// owned are ignored; services of `desired` not owned are a bug upstream and are skipped too.
/// Order: deletions of real servers and services first (freeing nothing else depends on),
/// then additions and edits.
///
/// A real server that leaves a virtual service that stays goes as `leave` says: at once, or
/// drained first as kube-proxy's IPVS mode does: its weight goes to 0 (no new connections;
/// those in flight go on, even with `expire_nodest_conn`), and it is deleted once `leave` says
/// [`Leave::Delete`] (its connections are gone, or its grace period is over). A virtual
/// service that goes is deleted whole at once.
pub fn diff(
    actual: &BTreeMap<VsKey, VsState>,
    desired: &BTreeMap<VsKey, VsState>,
    owned: &Ownership,
    leave: impl Fn(&VsKey, &RealKey) -> Leave,
) -> Vec<Op> {
    let mut dels = Vec::new();
    let mut adds = Vec::new();
    for (key, state) in actual.iter().filter(|(k, _)| owned.owns(k)) {
        match desired.get(key) {
            None => dels.push(Op::DelService(*key)),
            Some(want) => {
                if want.scheduler != state.scheduler || want.persistence != state.persistence {
                    adds.push(Op::EditService(*key, want.clone()));
                }
                for (real, weight) in state
                    .reals
                    .iter()
                    .filter(|(r, _)| !want.reals.contains_key(r))
                {
                    match leave(key, real) {
                        Leave::Delete => dels.push(Op::DelReal(*key, *real)),
                        Leave::Drain if *weight > 0 => adds.push(Op::EditReal(*key, *real, 0)),
                        Leave::Drain => {}
                    }
                }
                for (real, weight) in &want.reals {
                    match state.reals.get(real) {
                        None => adds.push(Op::AddReal(*key, *real, *weight)),
                        Some(w) if w != weight => adds.push(Op::EditReal(*key, *real, *weight)),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    for (key, want) in desired
        .iter()
        .filter(|(k, _)| owned.owns(k) && !actual.contains_key(k))
    {
        adds.push(Op::AddService(*key, want.clone()));
        for (real, weight) in &want.reals {
            adds.push(Op::AddReal(*key, *real, *weight));
        }
    }
    dels.extend(adds);
    dels
}

/// What the kernel holds after `ops` (from [`diff`]) applied to `actual`: `desired`, and the
/// real servers still draining at weight 0.
pub fn after(
    actual: &BTreeMap<VsKey, VsState>,
    desired: &BTreeMap<VsKey, VsState>,
    ops: &[Op],
) -> BTreeMap<VsKey, VsState> {
    let mut out = desired.clone();
    for op in ops {
        if let Op::EditReal(key, real, 0) = op {
            if let Some(state) = out.get_mut(key) {
                state.reals.entry(*real).or_insert(0);
            }
        }
    }
    // Draining reals left as they were (weight 0, not yet deleted).
    for (key, state) in actual {
        let Some(want) = out.get_mut(key) else {
            continue;
        };
        for (real, weight) in &state.reals {
            let deleted = ops
                .iter()
                .any(|op| matches!(op, Op::DelReal(k, r) if k == key && r == real));
            if *weight == 0 && !deleted && !desired[key].reals.contains_key(real) {
                want.reals.entry(*real).or_insert(0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(addr: &str, port: u16) -> VsKey {
        VsKey {
            protocol: Protocol::Tcp,
            address: addr.parse().unwrap(),
            port,
        }
    }

    fn state(reals: &[(&str, u16, u32)]) -> VsState {
        VsState {
            scheduler: "rr".into(),
            persistence: None,
            reals: reals
                .iter()
                .map(|(a, p, w)| ((a.parse().unwrap(), *p), *w))
                .collect(),
        }
    }

    fn owned() -> Ownership {
        Ownership {
            vip_cidr: Some("241.64.0.0/16".parse().unwrap()),
            ingress: vec![("10.255.1.1".parse().unwrap(), 31100, 31109)],
        }
    }

    #[test]
    fn equal_tables_need_no_operation() {
        let t = BTreeMap::from([(key("241.64.0.1", 80), state(&[("10.0.0.1", 8080, 1)]))]);
        assert!(diff(&t, &t, &owned(), |_, _| Leave::Delete).is_empty());
    }

    #[test]
    fn tables_of_others_are_never_touched() {
        let actual = BTreeMap::from([
            (key("10.96.0.10", 53), state(&[("10.244.0.2", 53, 1)])), // kube-proxy's
            (key("10.255.1.1", 22), state(&[])),                      // our address, not our port
        ]);
        assert!(diff(&actual, &BTreeMap::new(), &owned(), |_, _| Leave::Delete).is_empty());
    }

    #[test]
    fn a_stale_owned_service_is_deleted_whole() {
        let actual = BTreeMap::from([(key("241.64.0.9", 80), state(&[("10.0.0.1", 8080, 1)]))]);
        assert_eq!(
            diff(&actual, &BTreeMap::new(), &owned(), |_, _| Leave::Delete),
            vec![Op::DelService(key("241.64.0.9", 80))]
        );
    }

    #[test]
    fn a_new_service_is_added_with_its_reals() {
        let desired = BTreeMap::from([(key("10.255.1.1", 31100), state(&[("10.0.0.1", 8080, 1)]))]);
        let ops = diff(&BTreeMap::new(), &desired, &owned(), |_, _| Leave::Delete);
        assert_eq!(
            ops,
            vec![
                Op::AddService(key("10.255.1.1", 31100), state(&[("10.0.0.1", 8080, 1)])),
                Op::AddReal(
                    key("10.255.1.1", 31100),
                    ("10.0.0.1".parse().unwrap(), 8080),
                    1
                ),
            ]
        );
    }

    #[test]
    fn real_server_changes_edit_in_place() {
        let k = key("241.64.0.1", 80);
        let actual = BTreeMap::from([(k, state(&[("10.0.0.1", 8080, 1), ("10.0.0.2", 8080, 1)]))]);
        let desired = BTreeMap::from([(k, state(&[("10.0.0.2", 8080, 5), ("10.0.0.3", 8080, 1)]))]);
        let ops = diff(&actual, &desired, &owned(), |_, _| Leave::Delete);
        assert_eq!(
            ops,
            vec![
                Op::DelReal(k, ("10.0.0.1".parse().unwrap(), 8080)),
                Op::EditReal(k, ("10.0.0.2".parse().unwrap(), 8080), 5),
                Op::AddReal(k, ("10.0.0.3".parse().unwrap(), 8080), 1),
            ]
        );
        assert!(
            !ops.iter()
                .any(|o| matches!(o, Op::DelService(_) | Op::AddService(..))),
            "never re-created"
        );
    }

    #[test]
    fn a_leaving_real_server_drains_at_weight_zero_then_goes_when_drained() {
        let k = key("241.64.0.1", 80);
        let gone: RealKey = ("10.0.0.1".parse().unwrap(), 8080);
        let actual = BTreeMap::from([(k, state(&[("10.0.0.1", 8080, 1), ("10.0.0.2", 8080, 1)]))]);
        let desired = BTreeMap::from([(k, state(&[("10.0.0.2", 8080, 1)]))]);
        // First: weight 0, kept.
        let ops = diff(&actual, &desired, &owned(), |_, _| Leave::Drain);
        assert_eq!(ops, vec![Op::EditReal(k, gone, 0)]);
        let draining = after(&actual, &desired, &ops);
        assert_eq!(draining[&k].reals[&gone], 0);
        // While its connections last: nothing.
        let ops = diff(&draining, &desired, &owned(), |_, _| Leave::Drain);
        assert!(ops.is_empty(), "{ops:?}");
        assert_eq!(after(&draining, &desired, &ops), draining);
        // Drained: deleted.
        let ops = diff(&draining, &desired, &owned(), |kk, r| {
            if *kk == k && *r == gone {
                Leave::Delete
            } else {
                Leave::Drain
            }
        });
        assert_eq!(ops, vec![Op::DelReal(k, gone)]);
        assert_eq!(after(&draining, &desired, &ops), desired);
        // Back before it drained: its weight again.
        let back = BTreeMap::from([(k, state(&[("10.0.0.1", 8080, 1), ("10.0.0.2", 8080, 1)]))]);
        let ops = diff(&draining, &back, &owned(), |_, _| Leave::Drain);
        assert_eq!(ops, vec![Op::EditReal(k, gone, 1)]);
        assert_eq!(after(&draining, &back, &ops), back);
    }

    #[test]
    fn a_scheduler_change_edits_the_service() {
        let k = key("241.64.0.1", 80);
        let actual = BTreeMap::from([(k, state(&[]))]);
        let mut want = state(&[]);
        want.scheduler = "wrr".into();
        want.persistence = Some(10800);
        let ops = diff(
            &actual,
            &BTreeMap::from([(k, want.clone())]),
            &owned(),
            |_, _| Leave::Delete,
        );
        assert_eq!(ops, vec![Op::EditService(k, want)]);
    }
}
