//! The shared, atomically swappable current zone.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::Zone;

/// A cheap-to-clone handle on the zone being served.
///
/// [`store`](Self::store) replaces the whole zone in one atomic step: every
/// query is answered from either the old zone or the new one, never a mix,
/// and the query after `store` returns sees the new zone.
#[derive(Clone, Debug)]
pub struct ZoneHandle {
    current: Arc<ArcSwap<Zone>>,
}

impl ZoneHandle {
    /// A handle serving `zone`.
    pub fn new(zone: Zone) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(zone)),
        }
    }

    /// Serves `zone` from now on, returning the zone it replaces.
    pub fn store(&self, zone: Zone) -> Arc<Zone> {
        self.current.swap(Arc::new(zone))
    }

    /// The zone being served now.
    pub fn load(&self) -> Arc<Zone> {
        self.current.load_full()
    }

    /// The zone being served now, without touching its reference count: for
    /// answering one request, not for keeping.
    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Zone>> {
        self.current.load()
    }

    /// The SOA serial of the zone being served now.
    pub fn serial(&self) -> u32 {
        self.current.load().serial()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ZoneConfig;

    #[test]
    fn store_is_seen_by_every_clone() {
        let first = Zone::build(&ZoneConfig::default(), &[]).unwrap().zone;
        let handle = ZoneHandle::new(first);
        let clone = handle.clone();
        let other = Zone::build(&ZoneConfig::for_origin("other.local"), &[])
            .unwrap()
            .zone;
        let expected = other.serial();
        let previous = handle.store(other);
        assert_eq!(previous.origin().to_string(), "clusterset.local.");
        assert_eq!(clone.serial(), expected);
        assert_eq!(clone.load().origin().to_string(), "other.local.");
    }
}
