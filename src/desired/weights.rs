//! How a ClusterSetIP's traffic is shared among the clusters that export it: affinity, cluster
//! priority and gradual fallback, expressed as IPVS real-server weights.
//!
//! The exporting clusters are ranked, first by affinity (`local` puts the importing cluster
//! before every other, `remote` after every other), then by cluster priority (lower first).
//! Clusters of equal rank form a *tier*. A tier's health is its ready backends over all its
//! backends (a cluster whose gateway failed its health checks counts none ready), scaled by an
//! overprovisioning factor of 1.4 and capped at 100 %, as Envoy's priority levels do: a tier
//! with 75 % of its backends ready still takes all the traffic, one with 50 % takes 70 % and
//! leaves the rest to the next tier, one with none leaves everything. So losing backends moves
//! traffic to the next tier gradually rather than all at once, and it comes back the same way.
//! When the tiers' health adds up to less than 100 %, each takes its share of what there is.
//!
//! Within a tier, traffic follows ready backends: a cluster with four ready pods takes twice
//! the traffic of one with two, as if every pod stood behind one Service (what MCS asks of a
//! ClusterSetIP). The importing cluster's own backends are real servers of their own; another
//! cluster is one real server (its gateway's ingress port), carrying that cluster's share.
//!
//! Weights add up to [`TOTAL`] over the whole virtual server (less rounding). Weight 0 keeps a
//! healthy standby cluster's real server in the table, so failing over is a weight change and
//! established connections are not cut; a cluster that is down is left out of the table.

use std::collections::BTreeMap;

use crate::model::Affinity;

/// The sum of the weights of one virtual server: basis points of its traffic.
pub const TOTAL: u32 = 10_000;

/// Overprovisioning factor, in percent: how much a tier's health is scaled (Envoy's default).
const OVERPROVISIONING_PERCENT: u64 = 140;

/// One exporting cluster of a service port, as the weights see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Smaller is preferred; see [`rank`].
    pub rank: (u8, u32),
    /// Backends that can take traffic now (0 when the cluster's gateway is down).
    pub ready: u32,
    /// All backends, ready or not.
    pub total: u32,
    /// How many real servers carry the cluster's share (its own backends, or 1 for a gateway).
    pub reals: u32,
}

/// A cluster's rank for a service: affinity first, then priority.
pub fn rank(affinity: Affinity, local: bool, priority: u32) -> (u8, u32) {
    let affinity_rank = match (affinity, local) {
        (Affinity::None, _) | (Affinity::Local, true) | (Affinity::Remote, false) => 0,
        (Affinity::Local, false) | (Affinity::Remote, true) => 1,
    };
    (affinity_rank, priority)
}

/// The weight of each real server of each candidate, in the candidates' order.
pub fn weights(candidates: &[Candidate]) -> Vec<u32> {
    let mut tiers: BTreeMap<(u8, u32), (u64, u64)> = BTreeMap::new();
    for c in candidates {
        let tier = tiers.entry(c.rank).or_default();
        tier.0 += u64::from(c.ready);
        tier.1 += u64::from(c.total);
    }
    let total = u64::from(TOTAL);
    let health = |ready: u64, all: u64| {
        (ready * total * OVERPROVISIONING_PERCENT / 100)
            .checked_div(all)
            .map_or(0, |h| h.min(total))
    };
    let sum: u64 = tiers
        .values()
        .map(|&(ready, all)| health(ready, all))
        .sum::<u64>()
        .min(total);
    let mut remaining = total;
    let loads: BTreeMap<(u8, u32), u64> = tiers
        .iter()
        .map(|(&rank, &(ready, all))| {
            let load = (health(ready, all) * total)
                .checked_div(sum)
                .map_or(0, |l| l.min(remaining));
            remaining -= load;
            (rank, load)
        })
        .collect();
    candidates
        .iter()
        .map(|c| {
            let load = loads.get(&c.rank).copied().unwrap_or(0);
            let tier_ready = tiers.get(&c.rank).map_or(0, |t| t.0);
            if load == 0 || c.ready == 0 || c.reals == 0 || tier_ready == 0 {
                return 0;
            }
            let share = load * u64::from(c.ready) / tier_ready / u64::from(c.reals);
            u32::try_from(share.max(1)).unwrap_or(TOTAL)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(rank: (u8, u32), ready: u32, total: u32, reals: u32) -> Candidate {
        Candidate {
            rank,
            ready,
            total,
            reals,
        }
    }

    #[test]
    fn one_tier_shares_by_ready_backends() {
        // cluster-1: 4 ready pods (local, 4 reals); cluster-3: 2 ready pods behind its gateway.
        let w = weights(&[c((0, 0), 4, 4, 4), c((0, 0), 2, 2, 1)]);
        assert_eq!(w, vec![1666, 3333]);
    }

    #[test]
    fn a_healthy_first_tier_takes_everything_and_the_next_stands_by() {
        let w = weights(&[c((0, 1), 3, 3, 1), c((0, 2), 3, 3, 1)]);
        assert_eq!(w, vec![TOTAL, 0]);
    }

    #[test]
    fn fallback_is_gradual() {
        // 3 of 4 ready: 105 % after overprovisioning, still everything.
        assert_eq!(
            weights(&[c((0, 1), 3, 4, 1), c((0, 2), 4, 4, 1)]),
            vec![TOTAL, 0]
        );
        // 2 of 4 ready: 70 % stays, 30 % moves to the next tier.
        assert_eq!(
            weights(&[c((0, 1), 2, 4, 1), c((0, 2), 4, 4, 1)]),
            vec![7000, 3000]
        );
        // 1 of 4: 35 %.
        assert_eq!(
            weights(&[c((0, 1), 1, 4, 1), c((0, 2), 4, 4, 1)]),
            vec![3500, 6500]
        );
        // None ready (or the gateway down): all of it moves.
        assert_eq!(
            weights(&[c((0, 1), 0, 4, 1), c((0, 2), 4, 4, 1)]),
            vec![0, TOTAL]
        );
    }

    #[test]
    fn fallback_goes_down_the_tiers_in_order() {
        let w = weights(&[
            c((0, 1), 0, 2, 1),
            c((0, 2), 0, 2, 1),
            c((0, 3), 2, 2, 1),
            c((0, 4), 2, 2, 1),
        ]);
        assert_eq!(w, vec![0, 0, TOTAL, 0]);
    }

    #[test]
    fn weak_tiers_share_what_there_is() {
        // Both at 25 %: 35 % each after overprovisioning, 70 % in all, normalised to 50/50.
        let w = weights(&[c((0, 1), 1, 4, 1), c((0, 2), 1, 4, 1)]);
        assert_eq!(w, vec![5000, 5000]);
    }

    #[test]
    fn nothing_ready_means_no_weights() {
        assert_eq!(
            weights(&[c((0, 0), 0, 3, 1), c((0, 1), 0, 0, 1)]),
            vec![0, 0]
        );
        assert_eq!(weights(&[]), Vec::<u32>::new());
    }

    #[test]
    fn tiny_shares_keep_a_weight() {
        // 10,000 ready local pods: each still gets weight 1, not 0.
        let w = weights(&[
            c((0, 0), 10_000, 10_000, 10_000),
            c((0, 0), 10_000, 10_000, 1),
        ]);
        assert_eq!(w, vec![1, 5000]);
    }

    #[test]
    fn affinity_ranks_before_priority() {
        assert!(rank(Affinity::Local, true, 9) < rank(Affinity::Local, false, 0));
        assert!(rank(Affinity::Remote, false, 9) < rank(Affinity::Remote, true, 0));
        assert_eq!(
            rank(Affinity::None, true, 3),
            rank(Affinity::None, false, 3)
        );
    }
}
