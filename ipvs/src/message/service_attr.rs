//! Service attributes (`IPVS_SVC_ATTR_*`), nested in `IPVS_CMD_ATTR_SERVICE`.

use netlink_packet_core::{
    parse_u16, parse_u16_be, parse_u32, DecodeError, DefaultNla, Emitable, Nla, NlaBuffer,
    Parseable,
};

use super::nla::{emit_cstring, parse_addr, parse_cstring, parse_nested};
use super::StatsAttr;
use crate::constants::*;

/// One attribute describing a virtual service, in its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceAttr {
    /// Address family (`AF_INET` or `AF_INET6`).
    Af(u16),
    /// IP protocol number.
    Protocol(u16),
    /// Virtual address: 4 or 16 bytes, network order.
    Addr(Vec<u8>),
    /// Virtual port, host order here, big-endian on the wire.
    Port(u16),
    /// Firewall mark.
    Fwmark(u32),
    /// Scheduler name.
    SchedName(String),
    /// `struct ip_vs_flags`: the flags to set, and which of them to set.
    Flags { flags: u32, mask: u32 },
    /// Persistence timeout in seconds.
    Timeout(u32),
    /// Persistence netmask, the four bytes exactly as on the wire
    /// (an IPv4 mask in network order, or an IPv6 prefix length in host
    /// order).
    Netmask([u8; 4]),
    /// 32-bit statistics.
    Stats(Vec<StatsAttr>),
    /// Persistence engine name.
    PeName(String),
    /// 64-bit statistics.
    Stats64(Vec<StatsAttr>),
    /// An attribute this crate does not know.
    Other(DefaultNla),
}

impl Nla for ServiceAttr {
    fn value_len(&self) -> usize {
        match self {
            ServiceAttr::Af(_) | ServiceAttr::Protocol(_) | ServiceAttr::Port(_) => 2,
            ServiceAttr::Fwmark(_) | ServiceAttr::Timeout(_) | ServiceAttr::Netmask(_) => 4,
            ServiceAttr::Flags { .. } => 8,
            ServiceAttr::Addr(addr) => addr.len(),
            ServiceAttr::SchedName(name) | ServiceAttr::PeName(name) => name.len() + 1,
            ServiceAttr::Stats(stats) | ServiceAttr::Stats64(stats) => {
                stats.as_slice().buffer_len()
            }
            ServiceAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            ServiceAttr::Af(_) => IPVS_SVC_ATTR_AF,
            ServiceAttr::Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            ServiceAttr::Addr(_) => IPVS_SVC_ATTR_ADDR,
            ServiceAttr::Port(_) => IPVS_SVC_ATTR_PORT,
            ServiceAttr::Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            ServiceAttr::SchedName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            ServiceAttr::Flags { .. } => IPVS_SVC_ATTR_FLAGS,
            ServiceAttr::Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            ServiceAttr::Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            ServiceAttr::Stats(_) => IPVS_SVC_ATTR_STATS,
            ServiceAttr::PeName(_) => IPVS_SVC_ATTR_PE_NAME,
            ServiceAttr::Stats64(_) => IPVS_SVC_ATTR_STATS64,
            ServiceAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            ServiceAttr::Af(v) | ServiceAttr::Protocol(v) => {
                buffer[..2].copy_from_slice(&v.to_ne_bytes())
            }
            ServiceAttr::Port(port) => buffer[..2].copy_from_slice(&port.to_be_bytes()),
            ServiceAttr::Fwmark(v) | ServiceAttr::Timeout(v) => {
                buffer[..4].copy_from_slice(&v.to_ne_bytes())
            }
            ServiceAttr::Netmask(bytes) => buffer[..4].copy_from_slice(bytes),
            ServiceAttr::Flags { flags, mask } => {
                buffer[..4].copy_from_slice(&flags.to_ne_bytes());
                buffer[4..8].copy_from_slice(&mask.to_ne_bytes());
            }
            ServiceAttr::Addr(addr) => buffer[..addr.len()].copy_from_slice(addr),
            ServiceAttr::SchedName(name) | ServiceAttr::PeName(name) => emit_cstring(buffer, name),
            ServiceAttr::Stats(stats) | ServiceAttr::Stats64(stats) => {
                stats.as_slice().emit(buffer)
            }
            ServiceAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for ServiceAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let value = buf.value();
        Ok(match buf.kind() {
            IPVS_SVC_ATTR_AF => ServiceAttr::Af(parse_u16(value)?),
            IPVS_SVC_ATTR_PROTOCOL => ServiceAttr::Protocol(parse_u16(value)?),
            IPVS_SVC_ATTR_ADDR => ServiceAttr::Addr(parse_addr(value)?),
            IPVS_SVC_ATTR_PORT => ServiceAttr::Port(parse_u16_be(value)?),
            IPVS_SVC_ATTR_FWMARK => ServiceAttr::Fwmark(parse_u32(value)?),
            IPVS_SVC_ATTR_SCHED_NAME => ServiceAttr::SchedName(parse_cstring(value)?),
            IPVS_SVC_ATTR_FLAGS => {
                if value.len() != 8 {
                    return Err(DecodeError::invalid_number(8, value.len()));
                }
                ServiceAttr::Flags {
                    flags: parse_u32(&value[..4])?,
                    mask: parse_u32(&value[4..])?,
                }
            }
            IPVS_SVC_ATTR_TIMEOUT => ServiceAttr::Timeout(parse_u32(value)?),
            IPVS_SVC_ATTR_NETMASK => {
                let bytes: [u8; 4] = value
                    .try_into()
                    .map_err(|_| DecodeError::invalid_number(4, value.len()))?;
                ServiceAttr::Netmask(bytes)
            }
            IPVS_SVC_ATTR_STATS => ServiceAttr::Stats(parse_nested(value)?),
            IPVS_SVC_ATTR_PE_NAME => ServiceAttr::PeName(parse_cstring(value)?),
            IPVS_SVC_ATTR_STATS64 => ServiceAttr::Stats64(parse_nested(value)?),
            _ => ServiceAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}
