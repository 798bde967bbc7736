//! Destination attributes (`IPVS_DEST_ATTR_*`), nested in `IPVS_CMD_ATTR_DEST`.

use netlink_packet_core::{
    parse_u16, parse_u16_be, parse_u32, parse_u8, DecodeError, DefaultNla, Emitable, Nla,
    NlaBuffer, Parseable,
};

use super::nla::{parse_addr, parse_nested};
use super::StatsAttr;
use crate::constants::*;

/// One attribute describing a destination (real server), in its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestAttr {
    /// Real server address: 4 or 16 bytes, network order.
    Addr(Vec<u8>),
    /// Real server port, host order here, big-endian on the wire.
    Port(u16),
    /// Forwarding method (`IP_VS_CONN_F_*` under `IP_VS_CONN_F_FWD_MASK`).
    FwdMethod(u32),
    /// Weight.
    Weight(u32),
    /// Upper connection threshold.
    UpperThreshold(u32),
    /// Lower connection threshold.
    LowerThreshold(u32),
    /// Active connections (dumps only).
    ActiveConns(u32),
    /// Inactive connections (dumps only).
    InactiveConns(u32),
    /// Persistent connections (dumps only).
    PersistentConns(u32),
    /// 32-bit statistics (dumps only).
    Stats(Vec<StatsAttr>),
    /// Address family of [`DestAttr::Addr`], when it differs from the service's.
    AddrFamily(u16),
    /// 64-bit statistics (dumps only).
    Stats64(Vec<StatsAttr>),
    /// Tunnel type (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
    TunType(u8),
    /// Tunnel (GUE) destination port, host order here, big-endian on the wire.
    TunPort(u16),
    /// Tunnel encapsulation flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`).
    TunFlags(u16),
    /// An attribute this crate does not know.
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            DestAttr::TunType(_) => 1,
            DestAttr::Port(_)
            | DestAttr::AddrFamily(_)
            | DestAttr::TunPort(_)
            | DestAttr::TunFlags(_) => 2,
            DestAttr::FwdMethod(_)
            | DestAttr::Weight(_)
            | DestAttr::UpperThreshold(_)
            | DestAttr::LowerThreshold(_)
            | DestAttr::ActiveConns(_)
            | DestAttr::InactiveConns(_)
            | DestAttr::PersistentConns(_) => 4,
            DestAttr::Addr(addr) => addr.len(),
            DestAttr::Stats(stats) | DestAttr::Stats64(stats) => stats.as_slice().buffer_len(),
            DestAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DestAttr::Addr(_) => IPVS_DEST_ATTR_ADDR,
            DestAttr::Port(_) => IPVS_DEST_ATTR_PORT,
            DestAttr::FwdMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            DestAttr::Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            DestAttr::UpperThreshold(_) => IPVS_DEST_ATTR_U_THRESH,
            DestAttr::LowerThreshold(_) => IPVS_DEST_ATTR_L_THRESH,
            DestAttr::ActiveConns(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            DestAttr::InactiveConns(_) => IPVS_DEST_ATTR_INACT_CONNS,
            DestAttr::PersistentConns(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            DestAttr::Stats(_) => IPVS_DEST_ATTR_STATS,
            DestAttr::AddrFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            DestAttr::Stats64(_) => IPVS_DEST_ATTR_STATS64,
            DestAttr::TunType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            DestAttr::TunPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            DestAttr::TunFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            DestAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            DestAttr::Addr(addr) => buffer[..addr.len()].copy_from_slice(addr),
            DestAttr::Port(port) | DestAttr::TunPort(port) => {
                buffer[..2].copy_from_slice(&port.to_be_bytes())
            }
            DestAttr::AddrFamily(v) | DestAttr::TunFlags(v) => {
                buffer[..2].copy_from_slice(&v.to_ne_bytes())
            }
            DestAttr::TunType(v) => buffer[0] = *v,
            DestAttr::FwdMethod(v)
            | DestAttr::Weight(v)
            | DestAttr::UpperThreshold(v)
            | DestAttr::LowerThreshold(v)
            | DestAttr::ActiveConns(v)
            | DestAttr::InactiveConns(v)
            | DestAttr::PersistentConns(v) => buffer[..4].copy_from_slice(&v.to_ne_bytes()),
            DestAttr::Stats(stats) | DestAttr::Stats64(stats) => stats.as_slice().emit(buffer),
            DestAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DestAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let value = buf.value();
        Ok(match buf.kind() {
            IPVS_DEST_ATTR_ADDR => DestAttr::Addr(parse_addr(value)?),
            IPVS_DEST_ATTR_PORT => DestAttr::Port(parse_u16_be(value)?),
            IPVS_DEST_ATTR_FWD_METHOD => DestAttr::FwdMethod(parse_u32(value)?),
            IPVS_DEST_ATTR_WEIGHT => DestAttr::Weight(parse_u32(value)?),
            IPVS_DEST_ATTR_U_THRESH => DestAttr::UpperThreshold(parse_u32(value)?),
            IPVS_DEST_ATTR_L_THRESH => DestAttr::LowerThreshold(parse_u32(value)?),
            IPVS_DEST_ATTR_ACTIVE_CONNS => DestAttr::ActiveConns(parse_u32(value)?),
            IPVS_DEST_ATTR_INACT_CONNS => DestAttr::InactiveConns(parse_u32(value)?),
            IPVS_DEST_ATTR_PERSIST_CONNS => DestAttr::PersistentConns(parse_u32(value)?),
            IPVS_DEST_ATTR_STATS => DestAttr::Stats(parse_nested(value)?),
            IPVS_DEST_ATTR_ADDR_FAMILY => DestAttr::AddrFamily(parse_u16(value)?),
            IPVS_DEST_ATTR_STATS64 => DestAttr::Stats64(parse_nested(value)?),
            IPVS_DEST_ATTR_TUN_TYPE => DestAttr::TunType(parse_u8(value)?),
            IPVS_DEST_ATTR_TUN_PORT => DestAttr::TunPort(parse_u16_be(value)?),
            IPVS_DEST_ATTR_TUN_FLAGS => DestAttr::TunFlags(parse_u16(value)?),
            _ => DestAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}
