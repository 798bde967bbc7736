//! IPVS version and connection table size: `IPVS_CMD_GET_INFO`.

use std::fmt;

use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::Error;

/// What the kernel says about its IPVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Info {
    /// IPVS version (`IP_VS_VERSION_CODE`).
    pub version: Version,
    /// Size of the connection hash table (`ip_vs_conn_tab_size`).
    pub connection_table_size: u32,
}

/// An IPVS version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Version {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Patch level.
    pub patch: u8,
}

impl Version {
    /// Decodes `IP_VS_VERSION_CODE` (`0x010201` is 1.2.1).
    pub fn from_code(code: u32) -> Self {
        let [_, major, minor, patch] = code.to_be_bytes();
        Version {
            major,
            minor,
            patch,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The `IPVS_CMD_GET_INFO` request.
pub(crate) fn message() -> IpvsMessage {
    IpvsMessage::new(IpvsCmd::GetInfo, vec![])
}

/// Reads the `IPVS_CMD_SET_INFO` reply.
pub(crate) fn parse_reply(reply: &IpvsMessage) -> Result<Info, Error> {
    let mut version = None;
    let mut size = None;
    for attr in &reply.attrs {
        match attr {
            IpvsAttr::InfoVersion(v) => version = Some(Version::from_code(*v)),
            IpvsAttr::InfoConnTabSize(v) => size = Some(*v),
            _ => {}
        }
    }
    match (version, size) {
        (Some(version), Some(connection_table_size)) => Ok(Info {
            version,
            connection_table_size,
        }),
        _ => Err(Error::decode(
            "GET_INFO reply without version or table size",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use netlink_packet_core::ParseableParametrized;
    use netlink_packet_generic::GenlHeader;

    #[test]
    fn request_is_a_bare_get_info() {
        let msg = message();
        assert_eq!(u8::from(msg.cmd), IPVS_CMD_GET_INFO);
        assert!(msg.attrs.is_empty());
    }

    #[test]
    fn reply_attributes_use_the_info_numbering() {
        // IPVS_INFO_ATTR_VERSION = 1 and IPVS_INFO_ATTR_CONN_TAB_SIZE = 2,
        // the same numbers as IPVS_CMD_ATTR_SERVICE and _DEST.
        let mut raw = Vec::new();
        for (kind, value) in [
            (IPVS_INFO_ATTR_VERSION, 0x010201u32),
            (IPVS_INFO_ATTR_CONN_TAB_SIZE, 4096),
        ] {
            raw.extend_from_slice(&8u16.to_ne_bytes());
            raw.extend_from_slice(&kind.to_ne_bytes());
            raw.extend_from_slice(&value.to_ne_bytes());
        }
        let header = GenlHeader {
            cmd: IPVS_CMD_SET_INFO,
            version: IPVS_GENL_VERSION,
        };
        let reply = IpvsMessage::parse_with_param(&raw, header).expect("parses");
        let info = parse_reply(&reply).expect("info");
        assert_eq!(info.version.to_string(), "1.2.1");
        assert_eq!(info.connection_table_size, 4096);
    }

    #[test]
    fn incomplete_reply_is_an_error() {
        assert!(parse_reply(&IpvsMessage::new(
            IpvsCmd::SetInfo,
            vec![IpvsAttr::InfoVersion(1)]
        ))
        .is_err());
    }
}
