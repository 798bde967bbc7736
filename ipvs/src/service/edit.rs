//! Changing a virtual service's scheduler, flags, timeout or netmask:
//! `IPVS_CMD_SET_SERVICE`.

use super::attrs::service_attrs;
use crate::error::ENOENT;
use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::{Error, Service, Target};

/// The `IPVS_CMD_SET_SERVICE` request: the service identified by
/// `service.key` takes every other field of `service`.
pub(crate) fn message(service: &Service) -> IpvsMessage {
    IpvsMessage::new(
        IpvsCmd::SetService,
        vec![IpvsAttr::Service(service_attrs(service))],
    )
}

/// What a kernel errno means when editing `service`.
pub(crate) fn error(service: &Service, errno: i32) -> Error {
    match errno {
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
    use crate::error::ESRCH;
    use crate::{AddressFamily, ServiceKey};

    #[test]
    fn is_set_service_with_the_full_description() {
        let svc =
            Service::new(ServiceKey::fwmark(3, AddressFamily::Ipv4), "wlc").with_persistence(60);
        let msg = message(&svc);
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_SET_SERVICE);
        assert_eq!(msg.service_attrs(), Some(service_attrs(&svc).as_slice()));
    }

    #[test]
    fn missing_service_is_not_found() {
        let svc = Service::new(ServiceKey::fwmark(3, AddressFamily::Ipv4), "wlc");
        assert!(matches!(error(&svc, ESRCH), Error::ServiceNotFound { .. }));
        assert!(matches!(
            error(&svc, ENOENT),
            Error::UnknownScheduler { .. }
        ));
    }
}
