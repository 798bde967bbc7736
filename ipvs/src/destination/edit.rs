//! Changing a destination's forwarding, weight or thresholds:
//! `IPVS_CMD_SET_DEST`.

use super::attrs::destination_attrs;
use crate::error::ENOENT;
use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::service::attrs::key_attrs;
use crate::{Destination, Error, ServiceKey, Target};

/// The `IPVS_CMD_SET_DEST` request.
pub(crate) fn message(service: &ServiceKey, dest: &Destination) -> IpvsMessage {
    IpvsMessage::new(
        IpvsCmd::SetDest,
        vec![
            IpvsAttr::Service(key_attrs(service)),
            IpvsAttr::Dest(destination_attrs(dest)),
        ],
    )
}

/// What a kernel errno means when editing `dest` of `service`.
pub(crate) fn error(service: &ServiceKey, dest: &Destination, errno: i32) -> Error {
    match errno {
        ENOENT => Error::DestinationNotFound {
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
    use std::net::Ipv6Addr;

    #[test]
    fn is_set_dest_with_the_full_destination() {
        let svc = ServiceKey::tcp(Ipv6Addr::LOCALHOST, 443);
        let dest = Destination::new(Ipv6Addr::LOCALHOST, 8443).with_weight(0);
        let msg = message(&svc, &dest);
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_SET_DEST);
        assert_eq!(msg.dest_attrs(), Some(destination_attrs(&dest).as_slice()));
        assert!(matches!(
            error(&svc, &dest, ENOENT),
            Error::DestinationNotFound { .. }
        ));
    }
}
