//! The IPVS actuator: keeps the kernel's IPVS table equal to the desired egress and ingress
//! tables, for the part mcwan owns ([`Ownership`]).
//!
//! It remembers what it applied and sends only the difference on each sync (one batch, many
//! operations per `sendmsg`), so a change costs the same with 20 or 20,000 services. A resync
//! (at start, and periodically) dumps the kernel first: on start that adopts what a previous
//! run left, so nothing is re-created and established connections survive a restart; later it
//! repairs drift, such as a real server deleted by hand with `ipvsadm`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ipvs_netlink::{Destination, Handle, Service, ServiceKey};
use tracing::{debug, warn};

use super::ipvs_diff::{self, Leave, Op, Ownership, RealKey, VsKey, VsState};
use crate::desired::IpvsTables;
use crate::model::Protocol;

#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    #[error("IPVS: {0}")]
    Netlink(#[from] ipvs_netlink::Error),
}

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Virtual services wanted.
    pub desired: usize,
    pub services_added: usize,
    pub services_edited: usize,
    pub services_deleted: usize,
    pub reals_added: usize,
    pub reals_edited: usize,
    pub reals_deleted: usize,
    /// Operations the kernel refused, each naming the service or real server.
    pub failures: Vec<String>,
}

impl SyncReport {
    pub fn operations(&self) -> usize {
        self.services_added
            + self.services_edited
            + self.services_deleted
            + self.reals_added
            + self.reals_edited
            + self.reals_deleted
    }
}

/// How long a leaving real server may keep its connections before it is deleted anyway.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct IpvsActuator {
    handle: Handle,
    ownership: Ownership,
    /// What the kernel holds of ours, as far as we know.
    applied: BTreeMap<VsKey, VsState>,
    /// Real servers at weight 0 waiting for their connections to end, since when.
    draining: BTreeMap<(VsKey, RealKey), Instant>,
    drain_grace: Duration,
}

impl IpvsActuator {
    pub async fn new(ownership: Ownership) -> Result<Self, IpvsError> {
        Ok(Self {
            handle: Handle::new().await?,
            ownership,
            applied: BTreeMap::new(),
            draining: BTreeMap::new(),
            drain_grace: DEFAULT_DRAIN_GRACE,
        })
    }

    /// How long a leaving real server keeps its connections at most (0: deleted at once).
    pub fn set_drain_grace(&mut self, grace: Duration) {
        self.drain_grace = grace;
    }

    /// Real servers draining: while there are any, sync again now and then to delete them once
    /// their connections are gone.
    pub fn draining(&self) -> usize {
        self.draining.len()
    }

    /// The draining real servers that may go now: no connection left (active or not), or past
    /// the grace period. One dump per virtual service that has any.
    async fn drained(&self) -> Result<BTreeSet<(VsKey, RealKey)>, IpvsError> {
        let mut done = BTreeSet::new();
        let services: BTreeSet<VsKey> = self.draining.keys().map(|(k, _)| *k).collect();
        for key in services {
            let dests = self
                .handle
                .destinations(kernel_key(&key))
                .dump()
                .execute()
                .await?;
            for ((k, real), since) in self.draining.range((key, (IpAddr::from([0u8; 4]), 0))..) {
                if *k != key {
                    break;
                }
                let connections = dests
                    .iter()
                    .find(|d| (d.addr, d.port) == *real)
                    .and_then(|d| d.connections)
                    .map_or(0, |c| c.active + c.inactive);
                if connections == 0 || since.elapsed() >= self.drain_grace {
                    done.insert((key, *real));
                }
            }
        }
        Ok(done)
    }

    pub fn set_ownership(&mut self, ownership: Ownership) {
        self.ownership = ownership;
    }

    /// Reads the kernel's table (the part mcwan owns) as the base of the next sync.
    pub async fn resync(&mut self) -> Result<(), IpvsError> {
        let mut actual = BTreeMap::new();
        for service in self.handle.services().dump().execute().await? {
            let Some(key) = vs_key(&service.key) else {
                continue;
            };
            if !self.ownership.owns(&key) {
                continue;
            }
            let reals = self
                .handle
                .destinations(service.key)
                .dump()
                .execute()
                .await?
                .into_iter()
                .map(|d| ((d.addr, d.port), d.weight))
                .collect();
            let persistence = service.is_persistent().then_some(service.timeout);
            actual.insert(
                key,
                VsState {
                    scheduler: service.scheduler,
                    persistence,
                    reals,
                },
            );
        }
        debug!(services = actual.len(), "IPVS table read back");
        self.applied = actual;
        Ok(())
    }

    /// Makes the owned part of the kernel's table equal to `tables`.
    pub async fn sync(&mut self, tables: &IpvsTables) -> Result<SyncReport, IpvsError> {
        let desired = ipvs_diff::desired_table(tables.egress.iter().chain(tables.ingress.iter()));
        // Reals found at weight 0 and not wanted (left draining by a previous run, read back)
        // drain from now on.
        let now = Instant::now();
        for (key, state) in &self.applied {
            let Some(want) = desired.get(key) else {
                continue;
            };
            for (real, weight) in &state.reals {
                if *weight == 0 && !want.reals.contains_key(real) {
                    self.draining.entry((*key, *real)).or_insert(now);
                }
            }
        }
        // Only local endpoints drain (ingress): a pod that turns not ready may still be serving
        // connections. A remote gateway leaves the egress table because its cluster is down or
        // gone, and connections through it are lost anyway: it goes at once.
        let ingress: BTreeSet<VsKey> = ipvs_diff::desired_table(tables.ingress.iter())
            .into_keys()
            .collect();
        let drained = if self.drain_grace.is_zero() {
            BTreeSet::new()
        } else {
            self.drained().await?
        };
        let ops = ipvs_diff::diff(&self.applied, &desired, &self.ownership, |k, r| {
            if self.drain_grace.is_zero() || !ingress.contains(k) || drained.contains(&(*k, *r)) {
                Leave::Delete
            } else {
                Leave::Drain
            }
        });
        let mut report = SyncReport {
            desired: desired.len(),
            ..SyncReport::default()
        };
        if ops.is_empty() {
            return Ok(report);
        }
        let mut batch = self.handle.batch();
        for op in &ops {
            match op {
                Op::AddService(k, s) => {
                    report.services_added += 1;
                    batch.add_service(service(k, s));
                }
                Op::EditService(k, s) => {
                    report.services_edited += 1;
                    batch.edit_service(service(k, s));
                }
                Op::DelService(k) => {
                    report.services_deleted += 1;
                    batch.delete_service(kernel_key(k));
                }
                Op::AddReal(k, (addr, port), weight) => {
                    report.reals_added += 1;
                    batch.add_destination(
                        kernel_key(k),
                        Destination::new(*addr, *port).with_weight(*weight),
                    );
                }
                Op::EditReal(k, (addr, port), weight) => {
                    report.reals_edited += 1;
                    batch.edit_destination(
                        kernel_key(k),
                        Destination::new(*addr, *port).with_weight(*weight),
                    );
                }
                Op::DelReal(k, (addr, port)) => {
                    report.reals_deleted += 1;
                    batch.delete_destination(kernel_key(k), SocketAddr::new(*addr, *port));
                }
            }
        }
        let result = batch.execute().await?;
        report.failures = result
            .failures
            .iter()
            .map(|f| f.error.to_string())
            .collect();
        if report.failures.is_empty() {
            let after = ipvs_diff::after(&self.applied, &desired, &ops);
            self.note_draining(&after, &desired);
            self.applied = after;
        } else {
            for failure in &report.failures {
                warn!("IPVS operation refused: {failure}");
            }
            // Some operations failed: the kernel is not what we think. Read it back, so the
            // next sync retries exactly what is missing.
            self.resync().await?;
        }
        Ok(report)
    }
}

impl IpvsActuator {
    /// Keeps `draining` equal to the real servers of `after` that `desired` does not want.
    fn note_draining(
        &mut self,
        after: &BTreeMap<VsKey, VsState>,
        desired: &BTreeMap<VsKey, VsState>,
    ) {
        let now = Instant::now();
        let mut still = BTreeMap::new();
        for (key, state) in after {
            for real in state.reals.keys() {
                if desired.get(key).is_some_and(|d| d.reals.contains_key(real)) {
                    continue;
                }
                let since = self.draining.get(&(*key, *real)).copied().unwrap_or(now);
                still.insert((*key, *real), since);
            }
        }
        for (key, real) in still.keys().filter(|k| !self.draining.contains_key(k)) {
            debug!(service = ?key, real = ?real, "real server draining at weight 0");
        }
        self.draining = still;
    }
}

/// A kernel service's key as the diff keys it (None for fwmark services, never mcwan's).
pub(crate) fn vs_key(key: &ServiceKey) -> Option<VsKey> {
    let (protocol, addr) = match key {
        ServiceKey::Tcp(a) => (Protocol::Tcp, a),
        ServiceKey::Udp(a) => (Protocol::Udp, a),
        ServiceKey::Sctp(a) => (Protocol::Sctp, a),
        ServiceKey::Fwmark { .. } => return None,
    };
    Some(VsKey {
        protocol,
        address: addr.ip(),
        port: addr.port(),
    })
}

fn kernel_key(key: &VsKey) -> ServiceKey {
    let addr = SocketAddr::new(key.address, key.port);
    match key.protocol {
        Protocol::Tcp => ServiceKey::Tcp(addr),
        Protocol::Udp => ServiceKey::Udp(addr),
        Protocol::Sctp => ServiceKey::Sctp(addr),
    }
}

fn service(key: &VsKey, state: &VsState) -> Service {
    let service = Service::new(kernel_key(key), state.scheduler.clone());
    match state.persistence {
        Some(timeout) => service.with_persistence(timeout),
        None => service,
    }
}
