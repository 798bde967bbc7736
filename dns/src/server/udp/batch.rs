//! A batch of datagrams: received together, answered, sent together.

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::debug;

use super::{is_answerable, BATCH};
use crate::answer::{answer, Transport};
use crate::{question_type, response_code, QueryEvent, QueryObserver, Zone};
use std::time::Instant;

/// Room for one request; longer datagrams are dropped, not answered.
const DATAGRAM: usize = 4096;

/// One datagram received into `buffers[index]`.
#[derive(Debug, Clone, Copy)]
struct Received {
    index: usize,
    len: usize,
    peer: SocketAddr,
}

/// Buffers reused from batch to batch.
pub(super) struct Batch {
    buffers: Box<[[u8; DATAGRAM]]>,
    received: Vec<Received>,
    responses: Vec<(Vec<u8>, SocketAddr)>,
}

impl Batch {
    pub(super) fn new() -> Self {
        Self {
            buffers: vec![[0; DATAGRAM]; BATCH].into_boxed_slice(),
            received: Vec::with_capacity(BATCH),
            responses: Vec::with_capacity(BATCH),
        }
    }

    /// Answers every datagram received, keeping the responses to send.
    pub(super) fn answer(&mut self, zone: &Zone, observer: Option<&dyn QueryObserver>) {
        for datagram in self.received.drain(..) {
            if !is_answerable(datagram.peer) {
                continue;
            }
            let request = &self.buffers[datagram.index][..datagram.len];
            let started = observer.map(|_| Instant::now());
            if let Some(response) = answer(zone, request, Transport::Udp) {
                if let (Some(observer), Some(started)) = (observer, started) {
                    observer.observe(&QueryEvent {
                        qtype: question_type(request),
                        rcode: response_code(&response).unwrap_or_default(),
                        transport: Transport::Udp,
                        elapsed: started.elapsed(),
                    });
                }
                self.responses.push((response, datagram.peer));
            }
        }
    }

    /// Sends every response kept, waiting while the socket's buffer is full.
    /// A response the system refuses is logged and dropped.
    pub(super) async fn send(&mut self, socket: &UdpSocket) {
        let mut sent = 0;
        while sent < self.responses.len() {
            let pending = &self.responses[sent..];
            match socket.try_io(Interest::WRITABLE, || send_some(socket, pending)) {
                Ok(count) => sent += count.max(1),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(error) = socket.writable().await {
                        debug!(%error, "UDP socket not writable");
                        break;
                    }
                }
                Err(error) => {
                    debug!(%error, peer = %pending[0].1, "UDP send failed");
                    sent += 1;
                }
            }
        }
        self.responses.clear();
    }
}

#[cfg(target_os = "linux")]
mod syscalls {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
    use tokio::net::UdpSocket;

    use super::{Batch, Received, BATCH};

    impl Batch {
        /// Receives up to [`BATCH`] datagrams without blocking (`recvmmsg`).
        pub(in crate::server::udp) fn receive(&mut self, socket: &UdpSocket) -> io::Result<()> {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
                .buffers
                .iter_mut()
                .map(|buffer| [IoSliceMut::new(buffer)])
                .collect();
            let messages = recvmmsg(
                socket.as_raw_fd(),
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(io::Error::from)?;
            for (index, message) in messages.enumerate() {
                if message.flags.contains(MsgFlags::MSG_TRUNC) {
                    continue;
                }
                if let Some(peer) = message.address.as_ref().and_then(socket_addr) {
                    self.received.push(Received {
                        index,
                        len: message.bytes,
                        peer,
                    });
                }
            }
            Ok(())
        }
    }

    fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = address.as_sockaddr_in() {
            return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
        }
        address
            .as_sockaddr_in6()
            .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
    }

    /// Sends up to [`BATCH`] responses without blocking (`sendmmsg`), returning how many went.
    pub(super) fn send_some(
        socket: &UdpSocket,
        responses: &[(Vec<u8>, SocketAddr)],
    ) -> io::Result<usize> {
        let responses = &responses[..responses.len().min(BATCH)];
        let addresses: Vec<SocketAddrAny> = responses
            .iter()
            .map(|(_, peer)| SocketAddrAny::from(*peer))
            .collect();
        let slices: Vec<[IoSlice<'_>; 1]> = responses
            .iter()
            .map(|(bytes, _)| [IoSlice::new(bytes)])
            .collect();
        let mut control: Vec<SendAncillaryBuffer<'_, '_, '_>> = responses
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut headers: Vec<MMsgHdr<'_>> = addresses
            .iter()
            .zip(&slices)
            .zip(control.iter_mut())
            .map(|((address, slice), control)| MMsgHdr::new_with_addr(address, slice, control))
            .collect();
        Ok(sendmmsg(socket, &mut headers, SendFlags::DONTWAIT)?)
    }
}

#[cfg(not(target_os = "linux"))]
mod syscalls {
    use std::io;
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

    use super::{Batch, Received, BATCH};

    impl Batch {
        /// Receives up to [`BATCH`] datagrams without blocking, one call each.
        pub(in crate::server::udp) fn receive(&mut self, socket: &UdpSocket) -> io::Result<()> {
            for index in 0..BATCH {
                match socket.try_recv_from(&mut self.buffers[index]) {
                    Ok((len, peer)) => self.received.push(Received { index, len, peer }),
                    Err(error) if index > 0 && error.kind() == io::ErrorKind::WouldBlock => break,
                    Err(error) => return Err(error),
                }
            }
            Ok(())
        }
    }

    /// Sends one response without blocking.
    pub(super) fn send_some(
        socket: &UdpSocket,
        responses: &[(Vec<u8>, SocketAddr)],
    ) -> io::Result<usize> {
        let (bytes, peer) = &responses[0];
        socket.try_send_to(bytes, *peer).map(|_| 1)
    }
}

use syscalls::send_some;
