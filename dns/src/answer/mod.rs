//! The request path: from a parsed request and a zone to a response.
//!
//! [`answer`] runs the whole path on raw bytes, without sockets; the server
//! runs the same [`respond`] on the request hickory-server has parsed.

mod edns;
mod reply;

use std::net::{Ipv4Addr, SocketAddr};
use std::slice;

use hickory_proto::op::{Header, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use hickory_server::zone_handler::MessageRequest;

pub use self::edns::MAX_UDP_PAYLOAD;
pub(crate) use self::reply::{header_only, Reply};

use crate::zone::Lookup;
use crate::Zone;

/// The transport a request came over, which decides whether to truncate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams: responses are kept within the client's payload size.
    Udp,
    /// Streams: responses go whole (up to the 65535-octet message limit).
    Tcp,
}

impl Transport {
    /// The transport of a hickory-server protocol: UDP, or a stream.
    pub fn from_protocol(protocol: Protocol) -> Self {
        if protocol.is_datagram() {
            Self::Udp
        } else {
            Self::Tcp
        }
    }

    fn protocol(self) -> Protocol {
        match self {
            Self::Udp => Protocol::Udp,
            Self::Tcp => Protocol::Tcp,
        }
    }
}

/// Answers one DNS message, as the server would: `None` when the server sends
/// nothing back (less than a header, or a response rather than a query).
///
/// Never panics, whatever the bytes.
pub fn answer(zone: &Zone, request: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(request)).ok()?;
    // A response (QR=1) is never answered, parsable or not: answering one would let two
    // servers bounce packets at each other, and a forged source turn us into a reflector.
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    // The source address plays no part in the answer.
    let peer = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let Ok(request) = Request::from_bytes(request.to_vec(), peer, transport.protocol()) else {
        // hickory-server answers an unparsable message with a bare FORMERR.
        let mut metadata = hickory_proto::op::Metadata::response_from_request(&header.metadata);
        metadata.response_code = ResponseCode::FormErr;
        return Some(header_only(metadata));
    };
    Some(respond(zone, &request, transport).encode(&request.queries))
}

/// Decides the response to a parsed query.
pub(crate) fn respond<'z>(
    zone: &'z Zone,
    request: &MessageRequest,
    transport: Transport,
) -> Reply<'z> {
    let negotiated = edns::negotiate(request.edns.as_ref(), transport);
    let reply = Reply::new(&request.metadata, negotiated.response, negotiated.limit);
    if negotiated.bad_version {
        return reply.with_code(ResponseCode::BADVERS);
    }
    if request.metadata.op_code != OpCode::Query {
        return reply.with_code(ResponseCode::NotImp);
    }
    let [query] = request.queries.queries() else {
        return reply.with_code(ResponseCode::FormErr);
    };
    if query.query_class() != DNSClass::IN {
        return reply.with_code(ResponseCode::Refused);
    }
    let qtype = query.query_type();
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        return reply.with_code(ResponseCode::Refused);
    }

    let reply = match zone.lookup(query.name()) {
        Lookup::OutOfZone => return reply.with_code(ResponseCode::Refused),
        Lookup::NxDomain => reply.negative(ResponseCode::NXDomain, zone.negative_soa()),
        Lookup::EmptyNonTerminal => reply.negative(ResponseCode::NoError, zone.negative_soa()),
        Lookup::Data(sets) => {
            let reply = if qtype == RecordType::ANY {
                reply.positive(sets, &[], 0)
            } else if let Some(set) = sets.iter().find(|set| set.rtype() == qtype) {
                reply.positive(
                    slice::from_ref(set),
                    set.additionals(),
                    set.additional_wire_len(),
                )
            } else {
                reply.negative(ResponseCode::NoError, zone.negative_soa())
            };
            let asked = &query.original().name;
            if asked.eq_case(query.name()) {
                reply
            } else {
                reply.rename_answers(asked)
            }
        }
    };
    reply.fit(&request.queries)
}
