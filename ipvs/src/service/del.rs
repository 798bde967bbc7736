//! Deleting a virtual service and its destinations: `IPVS_CMD_DEL_SERVICE`.

use super::attrs::key_attrs;
use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::{Error, ServiceKey, Target};

/// The `IPVS_CMD_DEL_SERVICE` request: only the identifying attributes.
pub(crate) fn message(key: &ServiceKey) -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::DelService, vec![IpvsAttr::Service(key_attrs(key))])
}

/// What a kernel errno means when deleting `key`.
pub(crate) fn error(key: &ServiceKey, errno: i32) -> Error {
    Error::from_errno(Target::Service(*key), errno)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::error::ESRCH;
    use crate::message::ServiceAttr;
    use std::net::Ipv4Addr;

    #[test]
    fn carries_only_the_key() {
        let key = ServiceKey::udp(Ipv4Addr::new(10, 0, 0, 2), 53);
        let msg = message(&key);
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_DEL_SERVICE);
        let attrs = msg.service_attrs().expect("service attribute");
        assert_eq!(attrs.len(), 4);
        assert!(!attrs.iter().any(|a| matches!(a, ServiceAttr::SchedName(_))));
    }

    #[test]
    fn esrch_is_service_not_found() {
        let key = ServiceKey::udp(Ipv4Addr::new(10, 0, 0, 2), 53);
        let err = error(&key, ESRCH);
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "IPVS service UDP 10.0.0.2:53 not found");
    }
}
