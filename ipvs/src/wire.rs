//! Framing: generic netlink messages into a send buffer, datagrams back
//! into replies. Pure functions, tested without a socket.

use std::fmt::Debug;

use netlink_packet_core::{
    Emitable, NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    ParseableParametrized, NLMSG_ALIGNTO,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

use crate::Error;

/// Appends one request to `buf`: netlink header with `flags` and `seq`,
/// generic netlink header, then the payload's attributes.
pub(crate) fn encode<F>(buf: &mut Vec<u8>, payload: F, family_id: u16, flags: u16, seq: u32)
where
    F: GenlFamily + Emitable + Debug,
{
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family_id);
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    msg.finalize();
    let start = buf.len();
    buf.resize(start + msg.buffer_len(), 0);
    msg.serialize(&mut buf[start..]);
}

/// Splits a received datagram into its netlink messages.
pub(crate) fn frames(datagram: &[u8]) -> Frames<'_> {
    Frames { rest: datagram }
}

/// Iterator over the messages of a datagram.
pub(crate) struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8], Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let len = match NetlinkBuffer::new_checked(self.rest) {
            Ok(buf) => buf.length() as usize,
            Err(e) => {
                self.rest = &[];
                return Some(Err(Error::decode(format!("bad netlink header: {e}"))));
            }
        };
        let frame = &self.rest[..len];
        let align = usize::from(NLMSG_ALIGNTO);
        let advance = ((len + align - 1) & !(align - 1)).min(self.rest.len());
        self.rest = &self.rest[advance..];
        Some(Ok(frame))
    }
}

/// The sequence number of a message, read without parsing the payload.
pub(crate) fn sequence_number(frame: &[u8]) -> u32 {
    NetlinkBuffer::new(frame).sequence_number()
}

/// What a message received for a request says.
#[derive(Debug)]
pub(crate) enum Reply<F> {
    /// A payload message (a dump entry or a `doit` reply).
    Message(F),
    /// An acknowledgement: `None` for success, else the positive errno.
    Ack(Option<i32>),
    /// The end of a dump, with the kernel's status (0 or `-errno`).
    Done(i32),
    /// Anything else (`NLMSG_NOOP`, `NLMSG_OVERRUN`).
    Other,
}

/// Parses one message of a reply.
pub(crate) fn decode<F>(frame: &[u8]) -> Result<Reply<F>, Error>
where
    F: ParseableParametrized<[u8], GenlHeader> + Debug,
    GenlMessage<F>: NetlinkDeserializable,
{
    let msg = NetlinkMessage::<GenlMessage<F>>::deserialize(frame)
        .map_err(|e| Error::decode(e.to_string()))?;
    Ok(match msg.payload {
        NetlinkPayload::InnerMessage(genl) => Reply::Message(genl.payload),
        NetlinkPayload::Error(err) => Reply::Ack(err.code.map(|code| -code.get())),
        NetlinkPayload::Done(done) => Reply::Done(done.code),
        _ => Reply::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::message::{IpvsCmd, IpvsMessage};
    use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST};

    #[test]
    fn encoded_request_has_netlink_and_genl_headers() {
        let mut buf = Vec::new();
        encode(
            &mut buf,
            IpvsMessage::new(IpvsCmd::Flush, vec![]),
            0x1d,
            NLM_F_REQUEST | NLM_F_ACK,
            77,
        );
        assert_eq!(buf.len(), 20);
        assert_eq!(&buf[0..4], &20u32.to_ne_bytes()); // nlmsg_len
        assert_eq!(&buf[4..6], &0x1du16.to_ne_bytes()); // nlmsg_type: the family id
        assert_eq!(&buf[6..8], &(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        assert_eq!(&buf[8..12], &77u32.to_ne_bytes()); // nlmsg_seq
        assert_eq!(&buf[12..16], &0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
        assert_eq!(buf[16], IPVS_CMD_FLUSH);
        assert_eq!(buf[17], IPVS_GENL_VERSION);
        assert_eq!(&buf[18..20], &[0, 0]);
    }

    #[test]
    fn consecutive_requests_are_concatenated() {
        let mut buf = Vec::new();
        for seq in 1..=3 {
            encode(
                &mut buf,
                IpvsMessage::new(IpvsCmd::GetInfo, vec![]),
                30,
                NLM_F_REQUEST,
                seq,
            );
        }
        let seqs: Vec<u32> = frames(&buf)
            .map(|f| sequence_number(f.expect("frame")))
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    /// An ack as the kernel sends it with `NETLINK_CAP_ACK`: `nlmsgerr`
    /// with the request's header only.
    fn ack(seq: u32, error: i32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&36u32.to_ne_bytes());
        out.extend_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
        out.extend_from_slice(&0x100u16.to_ne_bytes()); // NLM_F_CAPPED
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&4242u32.to_ne_bytes());
        out.extend_from_slice(&error.to_ne_bytes());
        out.extend_from_slice(&[0u8; 16]);
        out
    }

    #[test]
    fn acks_decode_to_errno() {
        let mut datagram = ack(5, 0);
        datagram.extend(ack(6, -17));
        let replies: Vec<(u32, Option<i32>)> = frames(&datagram)
            .map(|f| {
                let f = f.expect("frame");
                match decode::<IpvsMessage>(f).expect("decodes") {
                    Reply::Ack(code) => (sequence_number(f), code),
                    other => panic!("unexpected {other:?}"),
                }
            })
            .collect();
        assert_eq!(replies, [(5, None), (6, Some(17))]);
    }

    #[test]
    fn done_carries_status() {
        let mut done = Vec::new();
        done.extend_from_slice(&20u32.to_ne_bytes());
        done.extend_from_slice(&3u16.to_ne_bytes()); // NLMSG_DONE
        done.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        done.extend_from_slice(&9u32.to_ne_bytes());
        done.extend_from_slice(&0u32.to_ne_bytes());
        done.extend_from_slice(&0i32.to_ne_bytes());
        assert!(matches!(decode::<IpvsMessage>(&done), Ok(Reply::Done(0))));
    }

    #[test]
    fn truncated_datagram_is_an_error() {
        let datagram = ack(1, 0);
        let mut frames = frames(&datagram[..10]);
        assert!(matches!(frames.next(), Some(Err(_))));
        assert!(frames.next().is_none());
    }
}
