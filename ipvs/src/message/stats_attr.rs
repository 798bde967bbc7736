//! Statistics attributes (`IPVS_STATS_ATTR_*`), nested in
//! `IPVS_SVC_ATTR_STATS[64]` and `IPVS_DEST_ATTR_STATS[64]`.

use netlink_packet_core::{DecodeError, DefaultNla, Nla, NlaBuffer, Parseable};

use super::nla::parse_counter;
use crate::constants::*;

/// One statistics counter. Values are widened to `u64`: the kernel sends
/// `u32` or `u64` depending on the counter and the container.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatsAttr {
    Conns(u64),
    InPkts(u64),
    OutPkts(u64),
    InBytes(u64),
    OutBytes(u64),
    Cps(u64),
    InPps(u64),
    OutPps(u64),
    InBps(u64),
    OutBps(u64),
    Other(DefaultNla),
}

impl Nla for StatsAttr {
    fn value_len(&self) -> usize {
        match self {
            StatsAttr::Other(nla) => nla.value_len(),
            _ => 8,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            StatsAttr::Conns(_) => IPVS_STATS_ATTR_CONNS,
            StatsAttr::InPkts(_) => IPVS_STATS_ATTR_INPKTS,
            StatsAttr::OutPkts(_) => IPVS_STATS_ATTR_OUTPKTS,
            StatsAttr::InBytes(_) => IPVS_STATS_ATTR_INBYTES,
            StatsAttr::OutBytes(_) => IPVS_STATS_ATTR_OUTBYTES,
            StatsAttr::Cps(_) => IPVS_STATS_ATTR_CPS,
            StatsAttr::InPps(_) => IPVS_STATS_ATTR_INPPS,
            StatsAttr::OutPps(_) => IPVS_STATS_ATTR_OUTPPS,
            StatsAttr::InBps(_) => IPVS_STATS_ATTR_INBPS,
            StatsAttr::OutBps(_) => IPVS_STATS_ATTR_OUTBPS,
            StatsAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        let value = match self {
            StatsAttr::Conns(v)
            | StatsAttr::InPkts(v)
            | StatsAttr::OutPkts(v)
            | StatsAttr::InBytes(v)
            | StatsAttr::OutBytes(v)
            | StatsAttr::Cps(v)
            | StatsAttr::InPps(v)
            | StatsAttr::OutPps(v)
            | StatsAttr::InBps(v)
            | StatsAttr::OutBps(v) => *v,
            StatsAttr::Other(nla) => return nla.emit_value(buffer),
        };
        buffer[..8].copy_from_slice(&value.to_ne_bytes());
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for StatsAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let value = buf.value();
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => StatsAttr::Conns(parse_counter(value)?),
            IPVS_STATS_ATTR_INPKTS => StatsAttr::InPkts(parse_counter(value)?),
            IPVS_STATS_ATTR_OUTPKTS => StatsAttr::OutPkts(parse_counter(value)?),
            IPVS_STATS_ATTR_INBYTES => StatsAttr::InBytes(parse_counter(value)?),
            IPVS_STATS_ATTR_OUTBYTES => StatsAttr::OutBytes(parse_counter(value)?),
            IPVS_STATS_ATTR_CPS => StatsAttr::Cps(parse_counter(value)?),
            IPVS_STATS_ATTR_INPPS => StatsAttr::InPps(parse_counter(value)?),
            IPVS_STATS_ATTR_OUTPPS => StatsAttr::OutPps(parse_counter(value)?),
            IPVS_STATS_ATTR_INBPS => StatsAttr::InBps(parse_counter(value)?),
            IPVS_STATS_ATTR_OUTBPS => StatsAttr::OutBps(parse_counter(value)?),
            _ => StatsAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}
