//! Reading one virtual service: `IPVS_CMD_GET_SERVICE` without `NLM_F_DUMP`.

use super::attrs::{key_attrs, service_from_attrs};
use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::{Error, Handle, Service, ServiceKey, Target};

/// The `IPVS_CMD_GET_SERVICE` request for one service.
pub(crate) fn message(key: &ServiceKey) -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetService, vec![IpvsAttr::Service(key_attrs(key))])
}

/// Reads the service out of the kernel's reply.
pub(crate) fn parse_reply(reply: &IpvsMessage) -> Result<Service, Error> {
    let attrs = reply
        .service_attrs()
        .ok_or_else(|| Error::decode("GET_SERVICE reply without a service attribute"))?;
    service_from_attrs(attrs)
}

/// Reads one service, counters included, without dumping the table.
#[derive(Debug)]
#[must_use = "a request does nothing until executed"]
pub struct GetServiceRequest {
    handle: Handle,
    key: ServiceKey,
}

impl GetServiceRequest {
    pub(crate) fn new(handle: Handle, key: ServiceKey) -> Self {
        GetServiceRequest { handle, key }
    }

    /// The request message.
    pub fn message(&self) -> IpvsMessage {
        message(&self.key)
    }

    /// Sends the request. A missing service is [`Error::ServiceNotFound`].
    pub async fn execute(self) -> Result<Service, Error> {
        let target = Target::Service(self.key);
        let reply = self.handle.request(message(&self.key), target).await?;
        parse_reply(&reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::message::ServiceAttr;
    use std::net::Ipv4Addr;

    #[test]
    fn asks_by_key() {
        let key = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 3), 8080);
        let msg = message(&key);
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_GET_SERVICE);
        assert_eq!(msg.service_attrs(), Some(key_attrs(&key).as_slice()));
    }

    #[test]
    fn reply_is_a_new_service_message() {
        let mut attrs = key_attrs(&ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 3), 8080));
        attrs.push(ServiceAttr::SchedName("rr".into()));
        let reply = IpvsMessage::new(IpvsCmd::NewService, vec![IpvsAttr::Service(attrs)]);
        assert_eq!(
            parse_reply(&reply).map(|s| s.scheduler).ok().as_deref(),
            Some("rr")
        );
        assert!(parse_reply(&IpvsMessage::new(IpvsCmd::NewService, vec![])).is_err());
    }
}
