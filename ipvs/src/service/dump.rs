//! Listing every virtual service: `IPVS_CMD_GET_SERVICE` with `NLM_F_DUMP`.

use super::attrs::service_from_attrs;
use crate::message::{IpvsCmd, IpvsMessage};
use crate::{Error, Handle, Service, Target};

/// The dump request: a bare `IPVS_CMD_GET_SERVICE`.
pub(crate) fn message() -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetService, vec![])
}

/// Reads the services out of the dump's messages.
pub(crate) fn parse_entries(entries: &[IpvsMessage]) -> Result<Vec<Service>, Error> {
    entries
        .iter()
        .filter_map(IpvsMessage::service_attrs)
        .map(service_from_attrs)
        .collect()
}

/// Lists every virtual service with its counters (not its destinations).
#[derive(Debug)]
#[must_use = "a request does nothing until executed"]
pub struct DumpServicesRequest {
    handle: Handle,
}

impl DumpServicesRequest {
    pub(crate) fn new(handle: Handle) -> Self {
        DumpServicesRequest { handle }
    }

    /// The request message.
    pub fn message(&self) -> IpvsMessage {
        message()
    }

    /// Sends the dump and collects the services.
    pub async fn execute(self) -> Result<Vec<Service>, Error> {
        let entries = self.handle.dump(message(), Target::ServiceList).await?;
        parse_entries(&entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use crate::message::{IpvsAttr, ServiceAttr};

    #[test]
    fn dump_request_has_no_attributes() {
        let msg = message();
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_GET_SERVICE);
        assert!(msg.attrs.is_empty());
    }

    #[test]
    fn each_entry_becomes_a_service() {
        let entry = |mark: u32| {
            IpvsMessage::new(
                IpvsCmd::NewService,
                vec![IpvsAttr::Service(vec![
                    ServiceAttr::Af(AF_INET),
                    ServiceAttr::Fwmark(mark),
                    ServiceAttr::SchedName("rr".into()),
                ])],
            )
        };
        let services = parse_entries(&[entry(1), entry(2)]).expect("parses");
        assert_eq!(services.len(), 2);
        assert_eq!(services[1].key.to_string(), "FWM 2 (IPv4)");
    }
}
