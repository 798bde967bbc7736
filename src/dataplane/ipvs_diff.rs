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

/// The operations that turn the owned part of `actual` into `desired`. Services of `actual` not
/// owned are ignored; services of `desired` not owned are a bug upstream and are skipped too.
/// Order: deletions of real servers and services first (freeing nothing else depends on),
/// then additions and edits.
pub fn diff(
    actual: &BTreeMap<VsKey, VsState>,
    desired: &BTreeMap<VsKey, VsState>,
    owned: &Ownership,
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
                for real in state.reals.keys().filter(|r| !want.reals.contains_key(r)) {
                    dels.push(Op::DelReal(*key, *real));
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
        assert!(diff(&t, &t, &owned()).is_empty());
    }

    #[test]
    fn tables_of_others_are_never_touched() {
        let actual = BTreeMap::from([
            (key("10.96.0.10", 53), state(&[("10.244.0.2", 53, 1)])), // kube-proxy's
            (key("10.255.1.1", 22), state(&[])),                      // our address, not our port
        ]);
        assert!(diff(&actual, &BTreeMap::new(), &owned()).is_empty());
    }

    #[test]
    fn a_stale_owned_service_is_deleted_whole() {
        let actual = BTreeMap::from([(key("241.64.0.9", 80), state(&[("10.0.0.1", 8080, 1)]))]);
        assert_eq!(
            diff(&actual, &BTreeMap::new(), &owned()),
            vec![Op::DelService(key("241.64.0.9", 80))]
        );
    }

    #[test]
    fn a_new_service_is_added_with_its_reals() {
        let desired = BTreeMap::from([(key("10.255.1.1", 31100), state(&[("10.0.0.1", 8080, 1)]))]);
        let ops = diff(&BTreeMap::new(), &desired, &owned());
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
        let ops = diff(&actual, &desired, &owned());
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
    fn a_scheduler_change_edits_the_service() {
        let k = key("241.64.0.1", 80);
        let actual = BTreeMap::from([(k, state(&[]))]);
        let mut want = state(&[]);
        want.scheduler = "wrr".into();
        want.persistence = Some(10800);
        let ops = diff(&actual, &BTreeMap::from([(k, want.clone())]), &owned());
        assert_eq!(ops, vec![Op::EditService(k, want)]);
    }
}
