//! Stable allocation of ClusterSetIPs and ingress ports.
//!
//! Each key hashes (FNV-1a, stable across builds and platforms) to a home slot in its pool and
//! probes linearly from there to the first free slot. Allocations from the previous run are kept
//! first, as long as they are still in the pool and not taken. So an allocation never moves
//! because of an unrelated change while the gateway runs, and the same catalog yields the same
//! allocations after a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// FNV-1a, 64 bit.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a::default();
    h.update(bytes);
    h.0
}

/// FNV-1a fed piece by piece, or written to (`write!`) without building the bytes first.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(pub u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = bytes.iter().fold(self.0, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    }
}

impl std::fmt::Write for Fnv1a {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.update(s.as_bytes());
        Ok(())
    }
}

/// A pool of slots `0..size`; `reserved` slots are never handed out.
pub trait Pool {
    type Item: Copy + Ord;
    fn size(&self) -> u64;
    fn slot(&self, item: Self::Item) -> Option<u64>;
    fn item(&self, slot: u64) -> Self::Item;
    fn reserved(&self, _slot: u64) -> bool {
        false
    }
}

/// The keys that could not be placed because the pool is full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exhausted<K>(pub Vec<K>);

/// Allocates one item per key. `keys` may come in any order; the result does not depend on it.
pub fn allocate<K, P>(
    pool: &P,
    keys: &BTreeSet<K>,
    key_bytes: impl Fn(&K) -> Vec<u8>,
    previous: &BTreeMap<K, P::Item>,
) -> (BTreeMap<K, P::Item>, Exhausted<K>)
where
    K: Ord + Clone,
    P: Pool,
{
    allocate_around(pool, keys, key_bytes, previous, std::iter::empty())
}

/// [`allocate`] for some of a pool's keys, around the items the others `held` (none of which
/// is a previous item of `keys`): the same result as allocating every key at once, when each
/// of the others keeps its previous item. `held` is read only when a key needs a new item.
pub fn allocate_around<K, P>(
    pool: &P,
    keys: &BTreeSet<K>,
    key_bytes: impl Fn(&K) -> Vec<u8>,
    previous: &BTreeMap<K, P::Item>,
    held: impl IntoIterator<Item = P::Item>,
) -> (BTreeMap<K, P::Item>, Exhausted<K>)
where
    K: Ord + Clone,
    P: Pool,
{
    let size = pool.size();
    let mut held = Some(held);
    let mut taken = BTreeSet::new();
    let mut out = BTreeMap::new();
    for key in keys {
        if let Some(slot) = previous.get(key).and_then(|item| pool.slot(*item)) {
            if !pool.reserved(slot) && taken.insert(slot) {
                out.insert(key.clone(), pool.item(slot));
            }
        }
    }
    let mut exhausted = Vec::new();
    for key in keys {
        if out.contains_key(key) {
            continue;
        }
        if let Some(held) = held.take() {
            taken.extend(held.into_iter().filter_map(|item| pool.slot(item)));
        }
        if size == 0 {
            exhausted.push(key.clone());
            continue;
        }
        let home = fnv1a(&key_bytes(key)) % size;
        let found = (0..size)
            .map(|i| (home + i) % size)
            .find(|s| !pool.reserved(*s) && !taken.contains(s));
        match found {
            Some(slot) => {
                taken.insert(slot);
                out.insert(key.clone(), pool.item(slot));
            }
            None => exhausted.push(key.clone()),
        }
    }
    (out, Exhausted(exhausted))
}

/// An IP prefix as a pool of addresses. For IPv4 prefixes shorter than /31 the network and
/// broadcast addresses are reserved. Very large IPv6 prefixes are capped at 2^32 slots.
#[derive(Clone, Copy, Debug)]
pub struct PrefixPool(pub IpNet);

const MAX_SLOTS_BITS: u8 = 32;

impl Pool for PrefixPool {
    type Item = IpAddr;

    fn size(&self) -> u64 {
        let host_bits = self.0.max_prefix_len() - self.0.prefix_len();
        1u64 << host_bits.min(MAX_SLOTS_BITS)
    }

    fn slot(&self, item: IpAddr) -> Option<u64> {
        if !self.0.contains(&item) {
            return None;
        }
        let offset = match (self.0.network(), item) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u128::from(u32::from(a) - u32::from(n)),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) - u128::from(n),
            _ => return None,
        };
        u64::try_from(offset).ok().filter(|s| *s < self.size())
    }

    fn item(&self, slot: u64) -> IpAddr {
        match self.0.network() {
            IpAddr::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n).wrapping_add(slot as u32))),
            IpAddr::V6(n) => {
                IpAddr::V6(Ipv6Addr::from(u128::from(n).wrapping_add(u128::from(slot))))
            }
        }
    }

    fn reserved(&self, slot: u64) -> bool {
        matches!(self.0, IpNet::V4(n) if n.prefix_len() < 31 && (slot == 0 || slot == self.size() - 1))
    }
}

/// An inclusive port range as a pool.
#[derive(Clone, Debug)]
pub struct PortPool(pub std::ops::RangeInclusive<u16>);

impl Pool for PortPool {
    type Item = u16;

    fn size(&self) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            u64::from(*self.0.end() - *self.0.start()) + 1
        }
    }

    fn slot(&self, item: u16) -> Option<u64> {
        self.0
            .contains(&item)
            .then(|| u64::from(item - *self.0.start()))
    }

    fn item(&self, slot: u64) -> u16 {
        self.0.start().saturating_add(slot as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn vip_pool() -> PrefixPool {
        PrefixPool("241.0.0.0/24".parse().unwrap())
    }

    #[test]
    fn same_keys_give_same_allocation_without_history() {
        let k = keys(&["a/x", "b/y", "c/z"]);
        let (first, _) = allocate(&vip_pool(), &k, |s| s.as_bytes().to_vec(), &BTreeMap::new());
        let (second, _) = allocate(&vip_pool(), &k, |s| s.as_bytes().to_vec(), &BTreeMap::new());
        assert_eq!(first, second);
    }

    #[test]
    fn previous_allocations_survive_unrelated_changes() {
        let (first, _) = allocate(
            &vip_pool(),
            &keys(&["a/x", "b/y"]),
            |s| s.as_bytes().to_vec(),
            &BTreeMap::new(),
        );
        let (second, _) = allocate(
            &vip_pool(),
            &keys(&["a/x", "new/one", "z/z"]),
            |s| s.as_bytes().to_vec(),
            &first,
        );
        assert_eq!(first["a/x"], second["a/x"]);
    }

    #[test]
    fn network_and_broadcast_are_never_handed_out() {
        let pool = PrefixPool("241.0.0.0/30".parse().unwrap());
        let (out, exhausted) = allocate(
            &pool,
            &keys(&["a", "b", "c"]),
            |s| s.as_bytes().to_vec(),
            &BTreeMap::new(),
        );
        let addrs: BTreeSet<_> = out.values().copied().collect();
        assert_eq!(
            addrs,
            ["241.0.0.1".parse().unwrap(), "241.0.0.2".parse().unwrap()].into()
        );
        assert_eq!(exhausted.0.len(), 1);
    }

    #[test]
    fn previous_outside_the_pool_is_reallocated() {
        let prev = BTreeMap::from([("a".to_string(), "10.0.0.1".parse().unwrap())]);
        let (out, _) = allocate(&vip_pool(), &keys(&["a"]), |s| s.as_bytes().to_vec(), &prev);
        assert!(vip_pool().0.contains(&out["a"]));
    }

    #[test]
    fn ports_stay_in_range_and_are_unique() {
        let pool = PortPool(31000..=31009);
        let k: BTreeSet<String> = (0..10).map(|i| format!("svc-{i}")).collect();
        let (out, exhausted) = allocate(&pool, &k, |s| s.as_bytes().to_vec(), &BTreeMap::new());
        assert!(exhausted.0.is_empty());
        let ports: BTreeSet<u16> = out.values().copied().collect();
        assert_eq!(ports, (31000..=31009).collect());
    }

    #[test]
    fn ipv6_pools_work() {
        let pool = PrefixPool("fd00:241::/112".parse().unwrap());
        let (out, _) = allocate(
            &pool,
            &keys(&["a"]),
            |s| s.as_bytes().to_vec(),
            &BTreeMap::new(),
        );
        assert!(pool.0.contains(&out["a"]));
    }
}
