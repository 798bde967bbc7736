//! The entry point: one netlink socket, the resolved family id, and the
//! request builders.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::batch::encode_chunk;
use crate::connection::{Connection, KernelResult};
use crate::message::IpvsMessage;
use crate::{
    flush, genl_family, info, Batch, DestinationHandle, Error, Info, Operation, ServiceHandle,
    ServiceKey, Target,
};

/// A connection to the kernel's IPVS, in the network namespace of the
/// thread that created it. Cheap to clone; clones share the socket and
/// their requests take turns.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    family_id: u16,
}

impl Handle {
    /// Opens a generic netlink socket and resolves the `IPVS` family.
    ///
    /// Fails with [`Error::FamilyNotFound`] when the `ip_vs` module is not
    /// loaded.
    pub async fn new() -> Result<Self, Error> {
        let mut conn = Connection::open()?;
        let family_id = genl_family::resolve(&mut conn).await?;
        Ok(Handle {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                family_id,
            }),
        })
    }

    /// The kernel's id for the `IPVS` generic netlink family.
    pub fn family_id(&self) -> u16 {
        self.inner.family_id
    }

    /// Requests about virtual services.
    pub fn services(&self) -> ServiceHandle {
        ServiceHandle::new(self.clone())
    }

    /// Requests about the destinations of `service`.
    pub fn destinations(&self, service: ServiceKey) -> DestinationHandle {
        DestinationHandle::new(self.clone(), service)
    }

    /// An empty batch of operations.
    pub fn batch(&self) -> Batch {
        Batch::new(self.clone())
    }

    /// The IPVS version and connection table size.
    pub async fn info(&self) -> Result<Info, Error> {
        let reply = self.request(info::message(), Target::Info).await?;
        info::parse_reply(&reply)
    }

    /// Deletes **every** virtual service and destination in the namespace,
    /// including those other programs own. Meant for tests and
    /// benchmarks in a namespace or VM of their own; never call it on a
    /// shared host.
    pub async fn flush_all_dangerous(&self) -> Result<(), Error> {
        let mut conn = self.inner.conn.lock().await;
        let seq = conn.reserve_sequence(1);
        let mut buf = Vec::new();
        crate::wire::encode(
            &mut buf,
            flush::message(),
            self.inner.family_id,
            netlink_packet_core::NLM_F_REQUEST | netlink_packet_core::NLM_F_ACK,
            seq,
        );
        match conn.send_acked(&buf, seq, 1).await?.pop() {
            Some(Err(errno)) => Err(Error::from_errno(Target::Table, errno)),
            _ => Ok(()),
        }
    }

    /// Applies one operation: one datagram, one acknowledgement.
    pub(crate) async fn apply(&self, op: Operation) -> Result<(), Error> {
        match self.send_operations(std::slice::from_ref(&op)).await?.pop() {
            Some(Err(errno)) => Err(op.error(errno)),
            _ => Ok(()),
        }
    }

    /// Sends operations in chunks and returns each one's outcome, in order.
    pub(crate) async fn send_operations(
        &self,
        ops: &[Operation],
    ) -> Result<Vec<KernelResult<()>>, Error> {
        let mut conn = self.inner.conn.lock().await;
        let limits = conn.limits();
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut buf = Vec::new();
        let mut start = 0;
        while start < ops.len() {
            let first_seq = conn.reserve_sequence(limits.max_messages);
            let count = encode_chunk(
                &ops[start..],
                self.inner.family_id,
                first_seq,
                limits,
                &mut buf,
            );
            outcomes.extend(conn.send_acked(&buf, first_seq, count).await?);
            start += count;
        }
        Ok(outcomes)
    }

    /// Sends a dump request; a kernel refusal becomes an error about `target`.
    pub(crate) async fn dump(
        &self,
        message: IpvsMessage,
        target: Target,
    ) -> Result<Vec<IpvsMessage>, Error> {
        let mut conn = self.inner.conn.lock().await;
        conn.dump(self.inner.family_id, message)
            .await?
            .map_err(|errno| Error::from_errno(target, errno))
    }

    /// Sends a request answered by one message.
    pub(crate) async fn request(
        &self,
        message: IpvsMessage,
        target: Target,
    ) -> Result<IpvsMessage, Error> {
        let mut conn = self.inner.conn.lock().await;
        conn.request(self.inner.family_id, message)
            .await?
            .map_err(|errno| Error::from_errno(target, errno))
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("family_id", &self.inner.family_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_can_be_shared_across_tasks() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Handle>();
    }
}
