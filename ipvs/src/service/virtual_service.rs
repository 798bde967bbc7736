//! A virtual service: its identity and its scheduling configuration.

use super::{Netmask, ServiceFlags, ServiceKey};
use crate::Stats;

/// A virtual service (`ipvsadm -A`).
///
/// Build one with [`Service::new`] and the `with_*` methods; dumps return
/// it with [`Service::stats`] filled in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Service {
    /// What the kernel looks the service up by.
    pub key: ServiceKey,
    /// Scheduler name: `rr`, `wrr`, `lc`, `wlc`, `sh`, `mh`, ... or
    /// `none`. The kernel loads `ip_vs_<name>` on demand.
    pub scheduler: String,
    /// Service flags.
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (meaningful with
    /// [`ServiceFlags::PERSISTENT`]).
    pub timeout: u32,
    /// Persistence granularity.
    pub netmask: Netmask,
    /// Persistence engine (`sip`), if any.
    pub persistence_engine: Option<String>,
    /// Counters, present in what the kernel returns.
    pub stats: Option<Stats>,
}

impl Service {
    /// A non-persistent service with the given scheduler and the default
    /// full netmask.
    pub fn new(key: ServiceKey, scheduler: impl Into<String>) -> Self {
        Service {
            key,
            scheduler: scheduler.into(),
            flags: ServiceFlags::empty(),
            timeout: 0,
            netmask: Netmask::full(key.family()),
            persistence_engine: None,
            stats: None,
        }
    }

    /// Makes the service persistent for `timeout` seconds (`ipvsadm -p`).
    pub fn with_persistence(mut self, timeout: u32) -> Self {
        self.flags |= ServiceFlags::PERSISTENT;
        self.timeout = timeout;
        self
    }

    /// Adds flags.
    pub fn with_flags(mut self, flags: ServiceFlags) -> Self {
        self.flags |= flags;
        self
    }

    /// Sets the persistence netmask (`ipvsadm -M`).
    pub fn with_netmask(mut self, netmask: Netmask) -> Self {
        self.netmask = netmask;
        self
    }

    /// Sets the persistence engine (`ipvsadm --pe`).
    pub fn with_persistence_engine(mut self, name: impl Into<String>) -> Self {
        self.persistence_engine = Some(name.into());
        self
    }

    /// Whether clients stick to a real server.
    pub fn is_persistent(&self) -> bool {
        self.flags.contains(ServiceFlags::PERSISTENT)
    }

    /// The same service without counters, to compare configurations.
    pub fn without_stats(mut self) -> Self {
        self.stats = None;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AddressFamily;
    use std::net::Ipv6Addr;

    #[test]
    fn new_service_defaults_like_ipvsadm() {
        let svc = Service::new(ServiceKey::tcp(Ipv6Addr::LOCALHOST, 80), "rr");
        assert_eq!(svc.netmask, Netmask::full(AddressFamily::Ipv6));
        assert!(svc.flags.is_empty());
        assert_eq!(svc.timeout, 0);
        assert!(!svc.is_persistent());
    }

    #[test]
    fn persistence_sets_flag_and_timeout() {
        let svc =
            Service::new(ServiceKey::fwmark(1, AddressFamily::Ipv4), "sh").with_persistence(360);
        assert!(svc.is_persistent());
        assert_eq!(svc.timeout, 360);
    }
}
