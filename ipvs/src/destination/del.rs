//! Removing a destination from a service: `IPVS_CMD_DEL_DEST`.

use std::net::SocketAddr;

use super::attrs::key_attrs as dest_key_attrs;
use crate::error::ENOENT;
use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::service::attrs::key_attrs;
use crate::{Error, ServiceKey, Target};

/// The `IPVS_CMD_DEL_DEST` request: both keys only.
pub(crate) fn message(service: &ServiceKey, dest: SocketAddr) -> IpvsMessage {
    IpvsMessage::new(
        IpvsCmd::DelDest,
        vec![
            IpvsAttr::Service(key_attrs(service)),
            IpvsAttr::Dest(dest_key_attrs(dest)),
        ],
    )
}

/// What a kernel errno means when deleting `dest` from `service`.
pub(crate) fn error(service: &ServiceKey, dest: SocketAddr, errno: i32) -> Error {
    match errno {
        ENOENT => Error::DestinationNotFound {
            service: *service,
            destination: dest,
        },
        _ => Error::from_errno(
            Target::Destination {
                service: *service,
                destination: dest,
            },
            errno,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::error::ESRCH;
    use crate::message::DestAttr;
    use std::net::Ipv4Addr;

    #[test]
    fn carries_address_port_and_family_only() {
        let svc = ServiceKey::udp(Ipv4Addr::new(10, 0, 0, 1), 53);
        let msg = message(&svc, "10.9.9.9:5353".parse().expect("addr"));
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_DEL_DEST);
        assert_eq!(
            msg.dest_attrs(),
            Some(
                &[
                    DestAttr::Addr(vec![10, 9, 9, 9]),
                    DestAttr::Port(5353),
                    DestAttr::AddrFamily(AF_INET)
                ][..]
            )
        );
    }

    #[test]
    fn missing_destination_and_missing_service_differ() {
        let svc = ServiceKey::udp(Ipv4Addr::new(10, 0, 0, 1), 53);
        let dest: SocketAddr = "10.9.9.9:5353".parse().expect("addr");
        assert!(matches!(
            error(&svc, dest, ENOENT),
            Error::DestinationNotFound { .. }
        ));
        assert!(matches!(
            error(&svc, dest, ESRCH),
            Error::ServiceNotFound { .. }
        ));
    }
}
