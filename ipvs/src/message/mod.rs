//! The wire layer: the IPVS generic netlink payload and its attributes.
//!
//! [`IpvsMessage`] plugs into `netlink-packet-generic` as a
//! [`GenlFamily`], so a request is a
//! `NetlinkMessage<GenlMessage<IpvsMessage>>` like any other generic
//! netlink message of the rust-netlink family. The typed model
//! ([`Service`](crate::Service), [`Destination`](crate::Destination), ...)
//! converts to and from these attribute lists.

mod attr;
mod cmd;
mod dest_attr;
pub(crate) mod nla;
mod service_attr;
mod stats_attr;

pub use attr::IpvsAttr;
pub use cmd::IpvsCmd;
pub use dest_attr::DestAttr;
pub use service_attr::ServiceAttr;
pub use stats_attr::StatsAttr;

use netlink_packet_core::{DecodeError, Emitable, NlasIterator, ParseableParametrized};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::constants::{IPVS_GENL_NAME, IPVS_GENL_VERSION};

/// The payload of an IPVS generic netlink message: a command and its
/// first-level attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    /// The command.
    pub cmd: IpvsCmd,
    /// The first-level attributes.
    pub attrs: Vec<IpvsAttr>,
}

impl IpvsMessage {
    /// A message with the given command and attributes.
    pub fn new(cmd: IpvsCmd, attrs: Vec<IpvsAttr>) -> Self {
        IpvsMessage { cmd, attrs }
    }

    /// The first nested service description, if any.
    pub fn service_attrs(&self) -> Option<&[ServiceAttr]> {
        self.attrs.iter().find_map(|attr| match attr {
            IpvsAttr::Service(attrs) => Some(attrs.as_slice()),
            _ => None,
        })
    }

    /// The first nested destination description, if any.
    pub fn dest_attrs(&self) -> Option<&[DestAttr]> {
        self.attrs.iter().find_map(|attr| match attr {
            IpvsAttr::Dest(attrs) => Some(attrs.as_slice()),
            _ => None,
        })
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.into()
    }

    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCmd::from(header.cmd);
        let attrs = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| IpvsAttr::parse_for(&nla, cmd)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IpvsMessage { cmd, attrs })
    }
}
