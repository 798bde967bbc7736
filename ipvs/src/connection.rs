//! The netlink socket: sends request buffers, reads replies, and matches
//! them to requests by sequence number.

use std::fmt::Debug;
use std::io;

use netlink_packet_core::{
    Emitable, NetlinkDeserializable, ParseableParametrized, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{
    protocols::NETLINK_GENERIC, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket,
};

use crate::batch::ChunkLimits;
use crate::error::ENOBUFS;
use crate::wire::{self, Reply};
use crate::Error;

/// Receive buffer per datagram. The kernel's dump datagrams are at most
/// 32 KiB and its acknowledgements far smaller, so a datagram that fills
/// the buffer is taken as truncated.
const DATAGRAM_CAPACITY: usize = 64 * 1024;

/// Receive buffer asked of the kernel (capped by `net.core.rmem_max`); a
/// C `int`, as `SO_RCVBUF` takes.
const SOCKET_RECEIVE_BUFFER: i32 = 32 * 1024 * 1024;

/// A generic netlink socket bound to the kernel.
pub(crate) struct Connection {
    socket: TokioSocket,
    seq: u32,
    rx: Vec<u8>,
    limits: ChunkLimits,
}

/// The outcome of a request the kernel may refuse: `Err(errno)`.
pub(crate) type KernelResult<T> = Result<T, i32>;

impl Connection {
    /// Opens and binds the socket, in the caller's network namespace.
    pub(crate) fn open() -> Result<Self, Error> {
        let mut socket = TokioSocket::new(NETLINK_GENERIC)
            .map_err(|e| Error::io("opening the netlink socket", e))?;
        let inner = socket.socket_mut();
        inner
            .bind_auto()
            .map_err(|e| Error::io("binding the netlink socket", e))?;
        inner
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io("connecting the netlink socket", e))?;
        // Acks carry only the request's header, not the whole request.
        inner
            .set_cap_ack(true)
            .map_err(|e| Error::io("setting NETLINK_CAP_ACK", e))?;
        // Best effort: the kernel caps it at net.core.rmem_max.
        let _ = inner.set_rx_buf_sz(SOCKET_RECEIVE_BUFFER);
        let rcvbuf = inner
            .get_rx_buf_sz()
            .map_err(|e| Error::io("reading SO_RCVBUF", e))?;
        Ok(Connection {
            socket,
            seq: initial_sequence(),
            rx: Vec::with_capacity(DATAGRAM_CAPACITY),
            limits: ChunkLimits::for_receive_buffer(rcvbuf),
        })
    }

    /// How many requests one send may carry.
    pub(crate) fn limits(&self) -> ChunkLimits {
        self.limits
    }

    /// Reserves `count` consecutive sequence numbers; returns the first.
    pub(crate) fn reserve_sequence(&mut self, count: usize) -> u32 {
        let first = self.seq;
        self.seq = self.seq.wrapping_add(count as u32);
        first
    }

    async fn send(&mut self, buf: &[u8]) -> Result<(), Error> {
        match self.socket.send(buf).await {
            Ok(sent) if sent == buf.len() => Ok(()),
            Ok(sent) => Err(Error::io(
                "sending",
                io::Error::other(format!("short netlink send: {sent} of {} bytes", buf.len())),
            )),
            Err(e) => Err(Error::io("sending", e)),
        }
    }

    /// Reads one datagram into `self.rx`.
    async fn recv(&mut self) -> io::Result<()> {
        self.rx.clear();
        self.socket.recv(&mut self.rx).await?;
        self.check_truncation()
    }

    /// Reads one datagram if one is queued; `false` when none is.
    fn try_recv(&mut self) -> io::Result<bool> {
        self.rx.clear();
        match self.socket.socket_ref().recv(&mut self.rx, 0) {
            Ok(_) => self.check_truncation().map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn check_truncation(&self) -> io::Result<()> {
        if self.rx.len() >= DATAGRAM_CAPACITY {
            return Err(io::Error::other("netlink datagram truncated"));
        }
        Ok(())
    }

    /// Sends a buffer of `count` requests numbered from `first_seq`, each
    /// with `NLM_F_ACK`, and collects each one's outcome, in order.
    pub(crate) async fn send_acked(
        &mut self,
        buf: &[u8],
        first_seq: u32,
        count: usize,
    ) -> Result<Vec<KernelResult<()>>, Error> {
        self.send(buf).await?;
        let mut outcomes: Vec<Option<KernelResult<()>>> = vec![None; count];
        let mut pending = count;
        let mut overrun = false;
        while pending > 0 {
            let got = if overrun {
                match self.try_recv() {
                    Ok(true) => true,
                    Ok(false) => return Err(Error::AcksLost { missing: pending }),
                    Err(e) if e.raw_os_error() == Some(ENOBUFS) => continue,
                    Err(e) => return Err(Error::io("receiving acknowledgements", e)),
                }
            } else {
                match self.recv().await {
                    Ok(()) => true,
                    Err(e) if e.raw_os_error() == Some(ENOBUFS) => {
                        overrun = true;
                        false
                    }
                    Err(e) => return Err(Error::io("receiving acknowledgements", e)),
                }
            };
            if !got {
                continue;
            }
            for frame in wire::frames(&self.rx) {
                let frame = frame?;
                let index = wire::sequence_number(frame).wrapping_sub(first_seq) as usize;
                if index >= count || outcomes[index].is_some() {
                    continue; // a late reply to an abandoned request
                }
                if let Reply::Ack(code) = wire::decode::<crate::message::IpvsMessage>(frame)? {
                    outcomes[index] = Some(code.map_or(Ok(()), Err));
                    pending -= 1;
                }
            }
        }
        Ok(outcomes.into_iter().map(|o| o.unwrap_or(Ok(()))).collect())
    }

    /// Sends a dump request and collects every entry until `NLMSG_DONE`.
    pub(crate) async fn dump<F>(
        &mut self,
        family_id: u16,
        payload: F,
    ) -> Result<KernelResult<Vec<F>>, Error>
    where
        F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + Debug,
        GenlMessage<F>: NetlinkDeserializable,
    {
        let seq = self.reserve_sequence(1);
        let mut buf = Vec::new();
        wire::encode(
            &mut buf,
            payload,
            family_id,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
        );
        self.send(&buf).await?;
        let mut entries = Vec::new();
        loop {
            self.recv()
                .await
                .map_err(|e| Error::io("receiving a dump", e))?;
            for frame in wire::frames(&self.rx) {
                let frame = frame?;
                if wire::sequence_number(frame) != seq {
                    continue;
                }
                match wire::decode::<F>(frame)? {
                    Reply::Message(entry) => entries.push(entry),
                    Reply::Done(0) => return Ok(Ok(entries)),
                    Reply::Done(code) => return Ok(Err(-code)),
                    Reply::Ack(Some(errno)) => return Ok(Err(errno)),
                    Reply::Ack(None) => return Ok(Ok(entries)),
                    Reply::Other => {}
                }
            }
        }
    }

    /// Sends a request that the kernel answers with one message, then an
    /// acknowledgement.
    pub(crate) async fn request<F>(
        &mut self,
        family_id: u16,
        payload: F,
    ) -> Result<KernelResult<F>, Error>
    where
        F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + Debug,
        GenlMessage<F>: NetlinkDeserializable,
    {
        let seq = self.reserve_sequence(1);
        let mut buf = Vec::new();
        wire::encode(&mut buf, payload, family_id, NLM_F_REQUEST | NLM_F_ACK, seq);
        self.send(&buf).await?;
        let mut reply = None;
        loop {
            self.recv()
                .await
                .map_err(|e| Error::io("receiving a reply", e))?;
            for frame in wire::frames(&self.rx) {
                let frame = frame?;
                if wire::sequence_number(frame) != seq {
                    continue;
                }
                match wire::decode::<F>(frame)? {
                    Reply::Message(message) => reply = Some(message),
                    Reply::Ack(Some(errno)) => return Ok(Err(errno)),
                    Reply::Ack(None) | Reply::Done(_) => {
                        return reply
                            .map(Ok)
                            .ok_or_else(|| Error::decode("acknowledged without a reply"))
                    }
                    Reply::Other => {}
                }
            }
        }
    }
}

impl Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("seq", &self.seq)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A starting sequence number that differs between sockets, so replies
/// meant for an earlier socket of the same port are not mistaken.
fn initial_sequence() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(1)
}
