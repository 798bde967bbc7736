//! The IPVS actuator: keeps the kernel's IPVS table equal to the desired egress and ingress
//! tables, for the part mcwan owns ([`Ownership`]).
//!
//! It remembers what it applied and sends only the difference on each sync (one batch, many
//! operations per `sendmsg`), so a change costs the same with 20 or 20,000 services. A resync
//! (at start, and periodically) dumps the kernel first: on start that adopts what a previous
//! run left, so nothing is re-created and established connections survive a restart; later it
//! repairs drift, such as a real server deleted by hand with `ipvsadm`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ipvs_netlink::{Destination, Handle, Service, ServiceKey};
use tracing::{debug, warn};

use super::ipvs_diff::{self, Op, Ownership, VsKey, VsState};
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

#[derive(Debug)]
pub struct IpvsActuator {
    handle: Handle,
    ownership: Ownership,
    /// What the kernel holds of ours, as far as we know.
    applied: BTreeMap<VsKey, VsState>,
}

impl IpvsActuator {
    pub async fn new(ownership: Ownership) -> Result<Self, IpvsError> {
        Ok(Self {
            handle: Handle::new().await?,
            ownership,
            applied: BTreeMap::new(),
        })
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
        let ops = ipvs_diff::diff(&self.applied, &desired, &self.ownership);
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
            self.applied = desired;
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

fn vs_key(key: &ServiceKey) -> Option<VsKey> {
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
