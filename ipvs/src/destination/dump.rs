//! Listing a service's destinations: `IPVS_CMD_GET_DEST` with `NLM_F_DUMP`.

use super::attrs::destination_from_attrs;
use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::service::attrs::key_attrs;
use crate::{Destination, Error, Handle, ServiceKey, Target};

/// The dump request: `IPVS_CMD_GET_DEST` naming the service.
pub(crate) fn message(service: &ServiceKey) -> IpvsMessage {
    IpvsMessage::new(
        IpvsCmd::GetDest,
        vec![IpvsAttr::Service(key_attrs(service))],
    )
}

/// Reads the destinations out of the dump's messages.
pub(crate) fn parse_entries(
    service: &ServiceKey,
    entries: &[IpvsMessage],
) -> Result<Vec<Destination>, Error> {
    entries
        .iter()
        .filter_map(IpvsMessage::dest_attrs)
        .map(|attrs| destination_from_attrs(attrs, service.family()))
        .collect()
}

/// Lists the destinations of one service, with counters.
///
/// The kernel answers a dump for a service that does not exist with an
/// empty list, not an error.
#[derive(Debug)]
#[must_use = "a request does nothing until executed"]
pub struct DumpDestinationsRequest {
    handle: Handle,
    service: ServiceKey,
}

impl DumpDestinationsRequest {
    pub(crate) fn new(handle: Handle, service: ServiceKey) -> Self {
        DumpDestinationsRequest { handle, service }
    }

    /// The request message.
    pub fn message(&self) -> IpvsMessage {
        message(&self.service)
    }

    /// Sends the dump and collects the destinations.
    pub async fn execute(self) -> Result<Vec<Destination>, Error> {
        let target = Target::DestinationList(self.service);
        let entries = self.handle.dump(message(&self.service), target).await?;
        parse_entries(&self.service, &entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::message::DestAttr;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn names_the_service() {
        let svc = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80);
        let msg = message(&svc);
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_GET_DEST);
        assert_eq!(msg.service_attrs(), Some(key_attrs(&svc).as_slice()));
        assert_eq!(msg.dest_attrs(), None);
    }

    #[test]
    fn entries_parse_with_the_service_family() {
        let svc = ServiceKey::tcp(Ipv4Addr::new(10, 0, 0, 1), 80);
        let entry = IpvsMessage::new(
            IpvsCmd::NewDest,
            vec![IpvsAttr::Dest(vec![
                DestAttr::Addr(vec![10, 1, 1, 1]),
                DestAttr::Port(80),
            ])],
        );
        let dests = parse_entries(&svc, &[entry]).expect("parses");
        assert_eq!(dests[0].addr, IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1)));
    }
}
