//! Adding a virtual service: `IPVS_CMD_NEW_SERVICE`.

use super::attrs::service_attrs;
use crate::error::{EEXIST, ENOENT};
use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::{Error, Service, Target};

/// The `IPVS_CMD_NEW_SERVICE` request for `service`.
pub(crate) fn message(service: &Service) -> IpvsMessage {
    IpvsMessage::new(
        IpvsCmd::NewService,
        vec![IpvsAttr::Service(service_attrs(service))],
    )
}

/// What a kernel errno means when adding `service`.
pub(crate) fn error(service: &Service, errno: i32) -> Error {
    match errno {
        EEXIST => Error::ServiceExists {
            service: service.key,
        },
        ENOENT => Error::UnknownScheduler {
            service: service.key,
            scheduler: service.scheduler.clone(),
            persistence_engine: service.persistence_engine.clone(),
        },
        _ => Error::from_errno(Target::Service(service.key), errno),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::ServiceKey;
    use netlink_packet_core::Emitable;
    use std::net::Ipv4Addr;

    fn svc() -> Service {
        Service::new(ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80), "rr")
    }

    #[test]
    fn is_new_service_with_one_nested_service_attribute() {
        let msg = message(&svc());
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_NEW_SERVICE);
        assert_eq!(msg.attrs.len(), 1);
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        assert_eq!(&buf[2..4], &IPVS_CMD_ATTR_SERVICE.to_ne_bytes());
        assert_eq!(usize::from(u16::from_ne_bytes([buf[0], buf[1]])), buf.len());
        assert!(msg.service_attrs().is_some_and(|attrs| attrs.len() == 8));
    }

    #[test]
    fn errors_name_the_service() {
        assert!(
            matches!(error(&svc(), EEXIST), Error::ServiceExists { service } if service == svc().key)
        );
        assert!(matches!(
            error(&svc(), ENOENT),
            Error::UnknownScheduler { scheduler, .. } if scheduler == "rr"
        ));
        assert!(matches!(error(&svc(), 22), Error::InvalidArgument { .. }));
    }
}
