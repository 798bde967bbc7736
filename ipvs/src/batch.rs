//! Many changes per `sendmsg`: the fast path for programming a table.
//!
//! Operations are packed into chunks, each one datagram of requests with
//! `NLM_F_ACK` and consecutive sequence numbers. The kernel handles a
//! datagram's requests one after the other, acknowledging each; the acks
//! are matched back to operations by sequence number, and every refusal
//! becomes a typed [`Error`] naming its service or destination. A failed
//! operation does not stop the ones after it.
//!
//! A chunk holds no more requests than the socket's receive buffer has
//! room for acknowledgements, so none is dropped.

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST};

use crate::{wire, Destination, Error, Handle, Operation, Service, ServiceKey};

/// How many requests go into one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLimits {
    /// Requests per send: bounded by the acknowledgements the receive
    /// buffer can queue.
    pub(crate) max_messages: usize,
    /// Bytes per send: well under the default socket send buffer.
    pub(crate) max_bytes: usize,
}

impl ChunkLimits {
    /// Kernel memory charged to the receive buffer per queued ack: a
    /// small skb's true size, rounded up.
    const ACK_TRUESIZE: usize = 1024;
    const MAX_BYTES: usize = 128 * 1024;

    /// Limits for a socket whose `SO_RCVBUF` reads `rcvbuf`.
    pub(crate) fn for_receive_buffer(rcvbuf: usize) -> Self {
        ChunkLimits {
            // Keep a quarter of the buffer for anything else queued.
            max_messages: (rcvbuf * 3 / 4 / Self::ACK_TRUESIZE).clamp(1, 4096),
            max_bytes: Self::MAX_BYTES,
        }
    }
}

/// Encodes requests from the start of `ops` into `buf` until a limit is
/// reached, numbering them from `first_seq`. Returns how many were
/// encoded: at least one when `ops` is not empty.
pub(crate) fn encode_chunk(
    ops: &[Operation],
    family_id: u16,
    first_seq: u32,
    limits: ChunkLimits,
    buf: &mut Vec<u8>,
) -> usize {
    buf.clear();
    let mut count = 0;
    for op in ops.iter().take(limits.max_messages) {
        let start = buf.len();
        let seq = first_seq.wrapping_add(count as u32);
        wire::encode(buf, op.message(), family_id, NLM_F_REQUEST | NLM_F_ACK, seq);
        if buf.len() > limits.max_bytes && count > 0 {
            buf.truncate(start);
            break;
        }
        count += 1;
    }
    count
}

/// Collects operations and sends them in as few datagrams as fit.
///
/// ```no_run
/// # async fn demo(handle: ipvs_netlink::Handle) -> Result<(), ipvs_netlink::Error> {
/// use ipvs_netlink::{Destination, Service, ServiceKey};
/// let key = ServiceKey::tcp([10, 0, 0, 1], 80);
/// let mut batch = handle.batch();
/// batch.add_service(Service::new(key, "rr"));
/// batch.add_destination(key, Destination::new([10, 1, 0, 1], 8080));
/// batch.execute().await?.into_result()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a batch does nothing until executed"]
pub struct Batch {
    handle: Handle,
    ops: Vec<Operation>,
}

impl Batch {
    pub(crate) fn new(handle: Handle) -> Self {
        Batch {
            handle,
            ops: Vec::new(),
        }
    }

    /// Appends an operation; operations are applied in order.
    pub fn push(&mut self, op: Operation) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Appends [`Operation::AddService`].
    pub fn add_service(&mut self, service: Service) -> &mut Self {
        self.push(Operation::AddService(service))
    }

    /// Appends [`Operation::EditService`].
    pub fn edit_service(&mut self, service: Service) -> &mut Self {
        self.push(Operation::EditService(service))
    }

    /// Appends [`Operation::DeleteService`].
    pub fn delete_service(&mut self, key: ServiceKey) -> &mut Self {
        self.push(Operation::DeleteService(key))
    }

    /// Appends [`Operation::AddDestination`].
    pub fn add_destination(&mut self, service: ServiceKey, destination: Destination) -> &mut Self {
        self.push(Operation::AddDestination {
            service,
            destination,
        })
    }

    /// Appends [`Operation::EditDestination`].
    pub fn edit_destination(&mut self, service: ServiceKey, destination: Destination) -> &mut Self {
        self.push(Operation::EditDestination {
            service,
            destination,
        })
    }

    /// Appends [`Operation::DeleteDestination`].
    pub fn delete_destination(
        &mut self,
        service: ServiceKey,
        destination: std::net::SocketAddr,
    ) -> &mut Self {
        self.push(Operation::DeleteDestination {
            service,
            destination,
        })
    }

    /// The operations collected so far.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Sends every operation. `Err` only when the socket fails (then
    /// earlier chunks may have been applied); refusals by the kernel are
    /// in the report.
    pub async fn execute(self) -> Result<BatchReport, Error> {
        let Batch { handle, ops } = self;
        let attempted = ops.len();
        let outcomes = handle.send_operations(&ops).await?;
        let mut failures = Vec::new();
        for (index, (op, outcome)) in ops.into_iter().zip(outcomes).enumerate() {
            if let Err(errno) = outcome {
                let error = op.error(errno);
                failures.push(BatchFailure {
                    index,
                    operation: op,
                    error,
                });
            }
        }
        Ok(BatchReport {
            attempted,
            failures,
        })
    }
}

/// What a batch did.
#[derive(Debug)]
pub struct BatchReport {
    /// Operations sent.
    pub attempted: usize,
    /// Operations the kernel refused, in order.
    pub failures: Vec<BatchFailure>,
}

/// An operation the kernel refused.
#[derive(Debug)]
pub struct BatchFailure {
    /// Its position in the batch.
    pub index: usize,
    /// The operation.
    pub operation: Operation,
    /// Why, naming the service or destination.
    pub error: Error,
}

impl BatchReport {
    /// Whether every operation was applied.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }

    /// Operations applied.
    pub fn applied(&self) -> usize {
        self.attempted - self.failures.len()
    }

    /// `Ok(applied)`, or the first failure's error.
    pub fn into_result(self) -> Result<usize, Error> {
        let applied = self.applied();
        match self.failures.into_iter().next() {
            Some(failure) => Err(failure.error),
            None => Ok(applied),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{frames, sequence_number};
    use netlink_packet_core::NetlinkBuffer;
    use std::net::Ipv4Addr;
    use std::ops::Range;

    /// The chunks `ops` would be sent in.
    fn chunk_ranges(ops: &[Operation], limits: ChunkLimits) -> Vec<Range<usize>> {
        let mut buf = Vec::new();
        let mut ranges = Vec::new();
        let mut start = 0;
        while start < ops.len() {
            let n = encode_chunk(&ops[start..], 30, 0, limits, &mut buf);
            ranges.push(start..start + n);
            start += n;
        }
        ranges
    }

    fn ops(services: u8, dests: u8) -> Vec<Operation> {
        let mut ops = Vec::new();
        for s in 0..services {
            let key = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, s), 80);
            ops.push(Operation::AddService(Service::new(key, "rr")));
            for d in 0..dests {
                ops.push(Operation::AddDestination {
                    service: key,
                    destination: Destination::new(Ipv4Addr::new(10, 1, s, d), 8080),
                });
            }
        }
        ops
    }

    #[test]
    fn chunk_respects_the_message_limit() {
        let limits = ChunkLimits {
            max_messages: 4,
            max_bytes: 1 << 20,
        };
        let ranges = chunk_ranges(&ops(2, 4), limits);
        assert_eq!(ranges, [0..4, 4..8, 8..10]);
    }

    #[test]
    fn chunk_respects_the_byte_limit() {
        let ops = ops(1, 9);
        let mut one = Vec::new();
        encode_chunk(
            &ops[1..2],
            30,
            0,
            ChunkLimits {
                max_messages: 1,
                max_bytes: 1 << 20,
            },
            &mut one,
        );
        let limits = ChunkLimits {
            max_messages: 100,
            max_bytes: 3 * one.len(),
        };
        let mut buf = Vec::new();
        let n = encode_chunk(&ops[1..], 30, 0, limits, &mut buf);
        assert_eq!(n, 3);
        assert_eq!(buf.len(), 3 * one.len());
    }

    #[test]
    fn an_oversized_operation_still_goes_alone() {
        let limits = ChunkLimits {
            max_messages: 10,
            max_bytes: 8,
        };
        assert_eq!(chunk_ranges(&ops(1, 1), limits), [0..1, 1..2]);
    }

    #[test]
    fn each_request_is_acked_and_numbered_consecutively() {
        let ops = ops(1, 3);
        let mut buf = Vec::new();
        let limits = ChunkLimits {
            max_messages: 100,
            max_bytes: 1 << 20,
        };
        let n = encode_chunk(&ops, 0x1d, u32::MAX - 1, limits, &mut buf);
        assert_eq!(n, 4);
        let frames: Vec<&[u8]> = frames(&buf).map(|f| f.expect("frame")).collect();
        let seqs: Vec<u32> = frames.iter().map(|f| sequence_number(f)).collect();
        assert_eq!(seqs, [u32::MAX - 1, u32::MAX, 0, 1]);
        for frame in frames {
            let header = NetlinkBuffer::new(frame);
            assert_eq!(header.message_type(), 0x1d);
            assert_eq!(header.flags(), NLM_F_REQUEST | NLM_F_ACK);
        }
    }

    #[test]
    fn limits_follow_the_receive_buffer() {
        assert_eq!(ChunkLimits::for_receive_buffer(425_984).max_messages, 312);
        assert_eq!(ChunkLimits::for_receive_buffer(0).max_messages, 1);
        assert_eq!(ChunkLimits::for_receive_buffer(1 << 30).max_messages, 4096);
    }
}
