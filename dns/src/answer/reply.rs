//! A response under construction: header, sections borrowed from the zone,
//! and the size fitting that keeps it within the client's limit.

use std::slice;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::zone::RRset;

/// The fixed DNS header.
const HEADER_LEN: usize = 12;
/// An OPT record without options: root owner, TYPE, CLASS, TTL, RDLENGTH.
const OPT_LEN: usize = 11;

/// The answer to one request, borrowing its records from the zone.
#[derive(Debug)]
pub(crate) struct Reply<'z> {
    metadata: Metadata,
    edns: Option<Edns>,
    /// The largest response the client takes.
    limit: u16,
    answers: Answers<'z>,
    answer_len: usize,
    authorities: &'z [Record],
    authority_len: usize,
    additionals: &'z [Record],
    additional_len: usize,
}

/// The answer section: the zone's RRsets as they are, or copies renamed to
/// the spelling of the query name.
#[derive(Debug)]
enum Answers<'z> {
    Zone(&'z [RRset]),
    Renamed(Vec<Record>),
}

impl<'z> Reply<'z> {
    /// An empty NOERROR response to `request`, with `edns` as its OPT, to be
    /// kept within `limit` octets.
    pub(crate) fn new(request: &Metadata, edns: Option<Edns>, limit: u16) -> Self {
        Self {
            metadata: Metadata::response_from_request(request),
            edns,
            limit,
            answers: Answers::Zone(&[]),
            answer_len: 0,
            authorities: &[],
            authority_len: 0,
            additionals: &[],
            additional_len: 0,
        }
    }

    /// A response with no records and the given code.
    pub(crate) fn with_code(mut self, code: ResponseCode) -> Self {
        self.metadata.response_code = code;
        self
    }

    /// An authoritative answer made of `answers`, with `additionals` to help.
    pub(crate) fn positive(
        mut self,
        answers: &'z [RRset],
        additionals: &'z [Record],
        additional_len: usize,
    ) -> Self {
        self.metadata.authoritative = true;
        self.answer_len = answers.iter().map(RRset::wire_len).sum();
        self.answers = Answers::Zone(answers);
        self.additionals = additionals;
        self.additional_len = additional_len;
        self
    }

    /// An authoritative NXDOMAIN or NODATA, with the zone's SOA as authority.
    pub(crate) fn negative(mut self, code: ResponseCode, soa: &'z RRset) -> Self {
        self.metadata.authoritative = true;
        self.metadata.response_code = code;
        self.authorities = soa.records();
        self.authority_len = soa.wire_len();
        self
    }

    /// Gives the answer records the owner spelling of the query (same name,
    /// other case), as resolvers expect to see their question echoed.
    pub(crate) fn rename_answers(mut self, owner: &Name) -> Self {
        if let Answers::Zone(sets) = self.answers {
            let renamed = sets
                .iter()
                .flat_map(|set| set.records())
                .map(|record| {
                    let mut copy = record.clone();
                    copy.name = owner.clone();
                    copy
                })
                .collect();
            self.answers = Answers::Renamed(renamed);
        }
        self
    }

    /// Keeps the response within the client's limit: first drops the additional
    /// section, then, if the answer still does not fit, every record, and sets TC.
    pub(crate) fn fit(mut self, queries: &Queries) -> Self {
        let limit = self.limit;
        if self.size_bound(queries) <= usize::from(limit) || self.fits(queries, limit) {
            return self;
        }
        self.additionals = &[];
        self.additional_len = 0;
        if self.fits(queries, limit) {
            return self;
        }
        self.answers = Answers::Zone(&[]);
        self.answer_len = 0;
        self.authorities = &[];
        self.authority_len = 0;
        self.metadata.truncation = true;
        self
    }

    /// The response as hickory-server sends it.
    pub(crate) fn message<'q>(
        &'q self,
        queries: &'q Queries,
    ) -> MessageResponse<
        'q,
        'q,
        AnswerIter<'q>,
        slice::Iter<'q, Record>,
        slice::Iter<'q, Record>,
        slice::Iter<'q, Record>,
    > {
        let answers = match &self.answers {
            Answers::Zone(sets) => AnswerIter::Zone {
                sets: sets.iter(),
                current: [].iter(),
            },
            Answers::Renamed(records) => AnswerIter::Renamed(records.iter()),
        };
        MessageResponseBuilder::new(queries, self.edns.as_ref()).build(
            self.metadata,
            answers,
            self.authorities.iter(),
            [].iter(),
            self.additionals.iter(),
        )
    }

    /// Encodes the response, within the client's limit.
    ///
    /// Like hickory-server, answers SERVFAIL if the response cannot be encoded.
    pub(crate) fn encode(&self, queries: &Queries) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buffer);
        encoder.set_max_size(self.limit);
        prime_question(&mut encoder, queries);
        if self.message(queries).destructive_emit(&mut encoder).is_ok() {
            return buffer;
        }
        let mut metadata = self.metadata;
        metadata.response_code = ResponseCode::ServFail;
        metadata.authoritative = false;
        header_only(metadata)
    }

    pub(crate) fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// An upper bound of the encoded size.
    fn size_bound(&self, queries: &Queries) -> usize {
        HEADER_LEN
            + queries.as_bytes().len()
            + self.answer_len
            + self.authority_len
            + self.additional_len
            + if self.edns.is_some() { OPT_LEN } else { 0 }
    }

    /// Whether the whole response encodes within `limit` octets.
    fn fits(&self, queries: &Queries, limit: u16) -> bool {
        let mut buffer = Vec::with_capacity(usize::from(limit));
        let mut encoder = BinEncoder::new(&mut buffer);
        encoder.set_max_size(limit);
        prime_question(&mut encoder, queries);
        matches!(
            self.message(queries).destructive_emit(&mut encoder),
            Ok(info) if !info.truncation
        )
    }
}

/// Lets the answer's names point into the question, as other authoritative
/// servers do: an answer's owner name is then two octets, not the whole name.
///
/// hickory-server writes the question as the client sent it but remembers it
/// only as one piece (name, type and class together), which no name matches.
/// So the question is written here first, at the offset the message will put
/// it, and every suffix of its name is remembered as a compression target;
/// emitting the message then writes the same octets over it (the header
/// before it, the question at the same place), so the remembered offsets hold.
/// A question that is not a plain uncompressed name primes nothing.
fn prime_question(encoder: &mut BinEncoder<'_>, queries: &Queries) {
    let question = queries.as_bytes();
    if queries.len() != 1 || encoder.emit_vec(&[0; HEADER_LEN]).is_err() {
        encoder.set_offset(0);
        return;
    }
    let mut starts = Vec::with_capacity(8);
    let mut at = 0;
    let name_end = loop {
        match question.get(at) {
            Some(0) => break Some(at),
            Some(&len) if len & 0xC0 == 0 => {
                starts.push(at);
                at += 1 + usize::from(len);
            }
            _ => break None,
        }
    };
    if let Some(end) = name_end {
        // hickory remembers a name's labels without the root label that ends it.
        if encoder.emit_vec(&question[..end]).is_ok() {
            for start in starts {
                encoder.store_label_pointer(HEADER_LEN + start, HEADER_LEN + end);
            }
        }
    }
    encoder.set_offset(0);
}

/// A response holding nothing but its header.
pub(crate) fn header_only(metadata: Metadata) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(HEADER_LEN);
    let mut encoder = BinEncoder::new(&mut buffer);
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    match header.emit(&mut encoder) {
        Ok(()) => buffer,
        // A header is twelve octets into a growable buffer: this cannot fail.
        Err(_) => Vec::new(),
    }
}

/// Iterates the answer records, whichever form they take.
#[derive(Debug)]
pub(crate) enum AnswerIter<'a> {
    Zone {
        sets: slice::Iter<'a, RRset>,
        current: slice::Iter<'a, Record>,
    },
    Renamed(slice::Iter<'a, Record>),
}

impl<'a> Iterator for AnswerIter<'a> {
    type Item = &'a Record;

    fn next(&mut self) -> Option<&'a Record> {
        match self {
            Self::Renamed(records) => records.next(),
            Self::Zone { sets, current } => loop {
                if let Some(record) = current.next() {
                    return Some(record);
                }
                *current = sets.next()?.records().iter();
            },
        }
    }
}
