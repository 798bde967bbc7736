//! Adding a destination to a service: `IPVS_CMD_NEW_DEST`.

use super::attrs::destination_attrs;
use crate::error::EEXIST;
use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::service::attrs::key_attrs;
use crate::{Destination, Error, ServiceKey, Target};

/// The `IPVS_CMD_NEW_DEST` request: the service's key and the full
/// destination.
pub(crate) fn message(service: &ServiceKey, dest: &Destination) -> IpvsMessage {
    IpvsMessage::new(
        IpvsCmd::NewDest,
        vec![
            IpvsAttr::Service(key_attrs(service)),
            IpvsAttr::Dest(destination_attrs(dest)),
        ],
    )
}

/// What a kernel errno means when adding `dest` to `service`.
pub(crate) fn error(service: &ServiceKey, dest: &Destination, errno: i32) -> Error {
    match errno {
        EEXIST => Error::DestinationExists {
            service: *service,
            destination: dest.key(),
        },
        _ => Error::from_errno(
            Target::Destination {
                service: *service,
                destination: dest.key(),
            },
            errno,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::error::{ERANGE, ESRCH};
    use netlink_packet_core::Emitable;
    use std::net::Ipv4Addr;

    fn svc() -> ServiceKey {
        ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80)
    }

    #[test]
    fn carries_service_key_then_destination() {
        let dest = Destination::new(Ipv4Addr::new(10, 1, 1, 1), 8080);
        let msg = message(&svc(), &dest);
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_NEW_DEST);
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        let svc_len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        assert_eq!(&buf[2..4], &IPVS_CMD_ATTR_SERVICE.to_ne_bytes());
        assert_eq!(
            &buf[svc_len + 2..svc_len + 4],
            &IPVS_CMD_ATTR_DEST.to_ne_bytes()
        );
        assert_eq!(msg.service_attrs(), Some(key_attrs(&svc()).as_slice()));
        assert_eq!(msg.dest_attrs(), Some(destination_attrs(&dest).as_slice()));
    }

    #[test]
    fn errors_name_service_and_destination() {
        let dest = Destination::new(Ipv4Addr::new(10, 1, 1, 1), 8080);
        assert!(matches!(
            error(&svc(), &dest, EEXIST),
            Error::DestinationExists { .. }
        ));
        assert!(
            matches!(error(&svc(), &dest, ESRCH), Error::ServiceNotFound { service } if service == svc())
        );
        let err = error(&svc(), &dest, ERANGE);
        assert_eq!(
            err.to_string(),
            "IPVS rejected a value out of range for destination 10.1.1.1:8080 of service TCP 10.0.0.1:80 (ERANGE)"
        );
    }
}
