//! EDNS(0) negotiation (RFC 6891): which OPT we answer with and how large
//! a response may be.

use hickory_proto::op::Edns;

use super::Transport;

/// The UDP payload we advertise and never exceed (the DNS Flag Day 2020 value).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// The UDP payload every client accepts (RFC 1035 section 4.2.1).
const MIN_UDP_PAYLOAD: u16 = 512;
/// The only EDNS version we implement.
const EDNS_VERSION: u8 = 0;

/// The outcome of reading the client's OPT record.
#[derive(Debug, Clone)]
pub(crate) struct Negotiated {
    /// The OPT for the response: present exactly when the query had one.
    pub(crate) response: Option<Edns>,
    /// The largest response the client can take on this transport.
    pub(crate) limit: u16,
    /// The client asked for an EDNS version we do not implement.
    pub(crate) bad_version: bool,
}

pub(crate) fn negotiate(request: Option<&Edns>, transport: Transport) -> Negotiated {
    let Some(request) = request else {
        return Negotiated {
            response: None,
            limit: match transport {
                Transport::Udp => MIN_UDP_PAYLOAD,
                Transport::Tcp => u16::MAX,
            },
            bad_version: false,
        };
    };
    let mut response = Edns::new();
    response.set_max_payload(MAX_UDP_PAYLOAD);
    response.set_version(EDNS_VERSION);
    response.set_dnssec_ok(false);
    Negotiated {
        response: Some(response),
        limit: match transport {
            Transport::Udp => request
                .max_payload()
                .clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
            Transport::Tcp => u16::MAX,
        },
        bad_version: request.version() > EDNS_VERSION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(payload: u16, version: u8) -> Edns {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        edns.set_version(version);
        edns
    }

    #[test]
    fn without_edns_udp_is_limited_to_512_and_no_opt_is_sent() {
        let negotiated = negotiate(None, Transport::Udp);
        assert_eq!(negotiated.limit, 512);
        assert!(negotiated.response.is_none());
        assert_eq!(negotiate(None, Transport::Tcp).limit, u16::MAX);
    }

    #[test]
    fn udp_limit_is_the_smaller_payload_but_at_least_512() {
        assert_eq!(
            negotiate(Some(&client(4096, 0)), Transport::Udp).limit,
            1232
        );
        assert_eq!(
            negotiate(Some(&client(1000, 0)), Transport::Udp).limit,
            1000
        );
        assert_eq!(negotiate(Some(&client(100, 0)), Transport::Udp).limit, 512);
        assert_eq!(
            negotiate(Some(&client(100, 0)), Transport::Tcp).limit,
            u16::MAX
        );
    }

    #[test]
    fn response_opt_advertises_our_payload_at_version_zero() {
        let negotiated = negotiate(Some(&client(4096, 0)), Transport::Udp);
        let response = negotiated.response.unwrap();
        assert_eq!(response.max_payload(), MAX_UDP_PAYLOAD);
        assert_eq!(response.version(), 0);
        assert!(!negotiated.bad_version);
    }

    #[test]
    fn versions_above_zero_are_bad() {
        assert!(negotiate(Some(&client(1232, 1)), Transport::Udp).bad_version);
    }
}
