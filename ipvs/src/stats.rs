//! Traffic counters of a service or destination.

use crate::message::StatsAttr;

/// Counters the kernel keeps per service and per destination, as
/// `ipvsadm -Ln --stats --exact` (totals) and `--rate` (rates) show them.
///
/// Read from `IPVS_*_ATTR_STATS64` when the kernel sends it (Linux 4.1+),
/// else from the 32-bit `IPVS_*_ATTR_STATS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stats {
    /// Connections scheduled.
    pub connections: u64,
    /// Packets in (client to server).
    pub packets_in: u64,
    /// Packets out (server to client).
    pub packets_out: u64,
    /// Bytes in.
    pub bytes_in: u64,
    /// Bytes out.
    pub bytes_out: u64,
    /// Connections per second (estimated).
    pub cps: u64,
    /// Packets in per second (estimated).
    pub pps_in: u64,
    /// Packets out per second (estimated).
    pub pps_out: u64,
    /// Bytes in per second (estimated).
    pub bps_in: u64,
    /// Bytes out per second (estimated).
    pub bps_out: u64,
}

impl Stats {
    /// Builds the counters from a nested statistics attribute list.
    pub fn from_attrs(attrs: &[StatsAttr]) -> Self {
        let mut stats = Stats::default();
        for attr in attrs {
            match attr {
                StatsAttr::Conns(v) => stats.connections = *v,
                StatsAttr::InPkts(v) => stats.packets_in = *v,
                StatsAttr::OutPkts(v) => stats.packets_out = *v,
                StatsAttr::InBytes(v) => stats.bytes_in = *v,
                StatsAttr::OutBytes(v) => stats.bytes_out = *v,
                StatsAttr::Cps(v) => stats.cps = *v,
                StatsAttr::InPps(v) => stats.pps_in = *v,
                StatsAttr::OutPps(v) => stats.pps_out = *v,
                StatsAttr::InBps(v) => stats.bps_in = *v,
                StatsAttr::OutBps(v) => stats.bps_out = *v,
                _ => {}
            }
        }
        stats
    }

    /// The counters as a nested statistics attribute list.
    pub fn to_attrs(&self) -> Vec<StatsAttr> {
        vec![
            StatsAttr::Conns(self.connections),
            StatsAttr::InPkts(self.packets_in),
            StatsAttr::OutPkts(self.packets_out),
            StatsAttr::InBytes(self.bytes_in),
            StatsAttr::OutBytes(self.bytes_out),
            StatsAttr::Cps(self.cps),
            StatsAttr::InPps(self.pps_in),
            StatsAttr::OutPps(self.pps_out),
            StatsAttr::InBps(self.bps_in),
            StatsAttr::OutBps(self.bps_out),
        ]
    }

    /// Picks the 64-bit counters when present, else the 32-bit ones.
    pub(crate) fn pick(
        stats32: Option<&[StatsAttr]>,
        stats64: Option<&[StatsAttr]>,
    ) -> Option<Self> {
        stats64.or(stats32).map(Stats::from_attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::*;
    use netlink_packet_core::{Emitable, NlaBuffer, Parseable};

    fn sample() -> Stats {
        Stats {
            connections: 1,
            packets_in: 2,
            packets_out: 3,
            bytes_in: 1 << 33,
            bytes_out: 5,
            cps: 6,
            pps_in: 7,
            pps_out: 8,
            bps_in: 9,
            bps_out: 10,
        }
    }

    #[test]
    fn attrs_round_trip() {
        assert_eq!(Stats::from_attrs(&sample().to_attrs()), sample());
    }

    #[test]
    fn kernel_32_bit_layout_parses() {
        // IPVS_SVC_ATTR_STATS as ip_vs_genl_fill_stats writes it: u32
        // counters except the two u64 byte counters.
        let mut raw = Vec::new();
        let mut put = |kind: u16, value: &[u8]| {
            raw.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            raw.extend_from_slice(&kind.to_ne_bytes());
            raw.extend_from_slice(value);
        };
        put(IPVS_STATS_ATTR_CONNS, &11u32.to_ne_bytes());
        put(IPVS_STATS_ATTR_INPKTS, &12u32.to_ne_bytes());
        put(IPVS_STATS_ATTR_OUTPKTS, &13u32.to_ne_bytes());
        put(IPVS_STATS_ATTR_INBYTES, &14u64.to_ne_bytes());
        put(IPVS_STATS_ATTR_OUTBYTES, &15u64.to_ne_bytes());
        put(IPVS_STATS_ATTR_CPS, &16u32.to_ne_bytes());
        let attrs: Vec<StatsAttr> = crate::message::nla::parse_nested(&raw).expect("parses");
        let stats = Stats::from_attrs(&attrs);
        assert_eq!(
            (
                stats.connections,
                stats.packets_in,
                stats.packets_out,
                stats.bytes_in,
                stats.bytes_out,
                stats.cps
            ),
            (11, 12, 13, 14, 15, 16)
        );
    }

    #[test]
    fn stats64_wins_over_stats() {
        let s32 = vec![StatsAttr::Conns(1)];
        let s64 = vec![StatsAttr::Conns(2)];
        assert_eq!(
            Stats::pick(Some(&s32), Some(&s64)).map(|s| s.connections),
            Some(2)
        );
        assert_eq!(
            Stats::pick(Some(&s32), None).map(|s| s.connections),
            Some(1)
        );
        assert_eq!(Stats::pick(None, None), None);
    }

    #[test]
    fn each_counter_is_an_8_byte_attribute_of_its_number() {
        let attr = StatsAttr::OutBps(0x0102);
        let mut buf = vec![0u8; attr.buffer_len()];
        attr.emit(&mut buf);
        assert_eq!(&buf[..2], &12u16.to_ne_bytes());
        assert_eq!(&buf[2..4], &IPVS_STATS_ATTR_OUTBPS.to_ne_bytes());
        let parsed = StatsAttr::parse(&NlaBuffer::new(&buf[..])).expect("parses");
        assert_eq!(parsed, attr);
    }
}
