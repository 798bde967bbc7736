//! What the zone holds under one owner name, ready to be answered.

use hickory_proto::rr::{Name, RData, Record, RecordType};

/// All records of one type at one owner name, plus the records a response
/// carries in its additional section alongside them.
#[derive(Debug)]
pub(crate) struct RRset {
    rtype: RecordType,
    records: Box<[Record]>,
    additionals: Box<[Record]>,
    wire_len: usize,
    additional_wire_len: usize,
}

impl RRset {
    /// Builds an RRset; `records` must be non-empty and all of `rtype`.
    pub(crate) fn new(rtype: RecordType, records: Vec<Record>, additionals: Vec<Record>) -> Self {
        Self {
            rtype,
            wire_len: records.iter().map(record_wire_len).sum(),
            additional_wire_len: additionals.iter().map(record_wire_len).sum(),
            records: records.into_boxed_slice(),
            additionals: additionals.into_boxed_slice(),
        }
    }

    pub(crate) fn rtype(&self) -> RecordType {
        self.rtype
    }

    pub(crate) fn records(&self) -> &[Record] {
        &self.records
    }

    pub(crate) fn additionals(&self) -> &[Record] {
        &self.additionals
    }

    /// An upper bound of the records' encoded size (name compression only shrinks it).
    pub(crate) fn wire_len(&self) -> usize {
        self.wire_len
    }

    /// An upper bound of the additional records' encoded size.
    pub(crate) fn additional_wire_len(&self) -> usize {
        self.additional_wire_len
    }
}

/// What an owner name is in the zone.
#[derive(Debug)]
pub(crate) enum Node {
    /// A name with data: RRsets sorted by type, never empty.
    Data(Box<[RRset]>),
    /// A name without data but with names below it: NODATA for every type.
    EmptyNonTerminal,
    /// A name the MCS specification forbids (`<clusterid>.<svc>.<ns>.svc.<zone>`):
    /// NXDOMAIN, although names exist below it.
    Hidden,
}

/// The uncompressed wire size of a record: an upper bound of what it costs in a message.
pub(crate) fn record_wire_len(record: &Record) -> usize {
    // owner, then TYPE, CLASS, TTL and RDLENGTH
    name_wire_len(&record.name) + 10 + rdata_wire_len(&record.data)
}

fn rdata_wire_len(data: &RData) -> usize {
    match data {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::NS(ns) => name_wire_len(&ns.0),
        RData::SRV(srv) => 6 + name_wire_len(&srv.target),
        RData::TXT(txt) => txt.txt_data.iter().map(|s| 1 + s.len()).sum(),
        RData::SOA(soa) => name_wire_len(&soa.mname) + name_wire_len(&soa.rname) + 20,
        // The zone builds no other types; a generous bound keeps the estimate safe.
        _ => usize::from(u16::MAX),
    }
}

fn name_wire_len(name: &Name) -> usize {
    name.iter().map(|label| label.len() + 1).sum::<usize>() + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, SRV, TXT};
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

    fn encoded_len(record: &Record) -> usize {
        let mut buf = Vec::new();
        let mut encoder = BinEncoder::new(&mut buf);
        record.emit(&mut encoder).unwrap();
        buf.len()
    }

    #[test]
    fn wire_len_is_the_uncompressed_encoding() {
        let owner = Name::from_ascii("_http._tcp.web.shop.svc.clusterset.local.").unwrap();
        let target = Name::from_ascii("web.shop.svc.clusterset.local.").unwrap();
        let records = [
            Record::from_rdata(target.clone(), 5, RData::A(A::new(10, 0, 0, 1))),
            Record::from_rdata(owner, 5, RData::SRV(SRV::new(0, 100, 80, target.clone()))),
            Record::from_rdata(target, 5, RData::TXT(TXT::new(vec!["1.0.0".into()]))),
        ];
        for record in &records {
            assert!(record_wire_len(record) >= encoded_len(record), "{record}");
        }
        assert_eq!(record_wire_len(&records[0]), encoded_len(&records[0]));
    }
}
