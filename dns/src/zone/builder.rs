//! Turns the checked apex and services into the zone's nodes: the apex part (SOA, NS,
//! `dns-version`, the empty non-terminals above the services) and one fragment per service
//! (every name at and below `<svc>.<ns>.svc.<zone>`), each with a digest of its content.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, NS, SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::apex::Apex;
use super::node::{Node, RRset};
use super::publication::{Publication, PublishedKind};
use super::serial::SerialDigest;

/// The schema version the MCS DNS specification asks us to publish.
const DNS_SCHEMA_VERSION: &str = "1.0.0";
/// SRV priority and weight: every target is equal.
const SRV_PRIORITY: u16 = 0;
const SRV_WEIGHT: u16 = 100;

/// The finished apex part of a zone.
pub(super) struct BuiltApex {
    pub(super) nodes: HashMap<LowerName, Node>,
    pub(super) negative_soa: RRset,
    pub(super) serial: u32,
    pub(super) record_count: usize,
}

/// The finished names of one service.
pub(super) struct BuiltFragment {
    pub(super) nodes: HashMap<LowerName, Node>,
    /// A digest of the names and records (FNV-1a, 64 bits).
    pub(super) digest: u64,
    pub(super) record_count: usize,
}

/// Collects records per owner name and type, in canonical order.
pub(super) struct ZoneBuilder {
    ttl: u32,
    /// Empty non-terminals are filled in up to this name, not including it.
    top: LowerName,
    nodes: BTreeMap<LowerName, NodeDraft>,
}

#[derive(Default)]
struct NodeDraft {
    hidden: bool,
    rrsets: BTreeMap<u16, RRsetDraft>,
}

struct RRsetDraft {
    rtype: RecordType,
    records: Vec<Record>,
    additionals: Vec<Record>,
    /// Names whose addresses are already in `additionals`.
    additional_names: BTreeSet<LowerName>,
}

impl ZoneBuilder {
    /// Starts a zone with its apex data: NS, the schema version TXT and the
    /// name server's addresses (the SOA comes last, once the serial is known).
    fn new(ttl: u32, top: LowerName) -> Self {
        Self {
            ttl,
            top,
            nodes: BTreeMap::new(),
        }
    }

    /// The apex part of the zone: NS (with the name server's addresses when they are in the
    /// zone), the schema version TXT, an empty non-terminal for `svc` and each namespace of
    /// `namespaces` (the `<ns>.svc.<zone>` names above the services), and the SOA, whose serial
    /// digests the apex and `services_digest` (the services' content).
    pub(super) fn apex<'a>(
        apex: &Apex,
        namespaces: impl IntoIterator<Item = &'a LowerName>,
        services_digest: u64,
    ) -> BuiltApex {
        let mut builder = Self::new(apex.ttl, LowerName::new(&apex.origin));
        let origin = apex.origin.clone();
        let ns_name = apex.ns_name.clone();
        let ns_addresses = builder.address_records(&ns_name, &apex.ns_addresses);
        builder.add(&origin, RData::NS(NS(ns_name.clone())));
        builder.add_additionals(&origin, RecordType::NS, &ns_name, &ns_addresses);
        builder.add_all(ns_addresses);
        match Name::from_ascii("dns-version").and_then(|n| n.append_domain(&origin)) {
            Ok(version_name) => builder.add(
                &version_name,
                RData::TXT(TXT::new(vec![DNS_SCHEMA_VERSION.to_owned()])),
            ),
            // Only a name already at the 255-octet limit cannot take the label.
            Err(error) => tracing::warn!(%error, "zone origin leaves no room for dns-version"),
        }
        for namespace in namespaces {
            builder.nodes.entry(namespace.clone()).or_default();
        }
        builder.add_empty_non_terminals();
        builder.normalize();
        let mut digest = SerialDigest::new();
        digest.field(apex.ns_name.to_string().as_bytes());
        digest.field(apex.rname.to_string().as_bytes());
        for timer in [apex.refresh, apex.retry, apex.expire] {
            digest.number(u64::from(timer.unsigned_abs()));
        }
        digest.number(u64::from(apex.minimum));
        builder.digest_into(&mut digest);
        let serial = SerialDigest::fold(digest.value().wrapping_add(services_digest));
        let soa = RData::SOA(apex.soa(serial));
        builder.add(&origin, soa.clone());
        let negative_soa = RRset::new(
            RecordType::SOA,
            vec![Record::from_rdata(origin, apex.negative_ttl(), soa)],
            Vec::new(),
        );
        let (nodes, record_count) = builder.freeze();
        BuiltApex {
            nodes,
            negative_soa,
            serial,
            record_count,
        }
    }

    /// The names of one checked service, `base` (`<svc>.<ns>.svc.<zone>`) and below.
    pub(super) fn fragment(ttl: u32, base: &LowerName, service: &Publication) -> BuiltFragment {
        let mut builder = Self::new(ttl, base.base_name());
        builder.add_service(service);
        builder.add_empty_non_terminals();
        builder.normalize();
        let mut digest = SerialDigest::new();
        builder.digest_into(&mut digest);
        let (nodes, record_count) = builder.freeze();
        BuiltFragment {
            nodes,
            digest: digest.value(),
            record_count,
        }
    }

    /// Adds the records of one checked service.
    fn add_service(&mut self, service: &Publication) {
        match &service.kind {
            PublishedKind::ClusterSetIp { ips } => {
                let addresses = self.address_records(&service.service_name, ips);
                for port in &service.ports {
                    self.add_srv(&port.owner, port.port, &service.service_name, &addresses);
                }
                self.add_all(addresses);
            }
            PublishedKind::Headless { endpoints } => {
                if endpoints.is_empty() {
                    return;
                }
                let mut all_ips: Vec<IpAddr> = endpoints
                    .iter()
                    .flat_map(|e| e.ips.iter().copied())
                    .collect();
                all_ips.sort_unstable();
                all_ips.dedup();
                let service_addresses = self.address_records(&service.service_name, &all_ips);
                self.add_all(service_addresses);
                for endpoint in endpoints {
                    let addresses = self.address_records(&endpoint.name, &endpoint.ips);
                    for port in &service.ports {
                        self.add_srv(&port.owner, port.port, &endpoint.name, &addresses);
                    }
                    self.add_all(addresses);
                    self.nodes
                        .entry(LowerName::new(&endpoint.cluster_name))
                        .or_default()
                        .hidden = true;
                }
            }
        }
    }

    /// RRsets are sets (RFC 2181 section 5): equal records collapse.
    fn normalize(&mut self) {
        for set in self
            .nodes
            .values_mut()
            .flat_map(|node| node.rrsets.values_mut())
        {
            set.records.sort();
            set.records.dedup();
        }
    }

    /// The nodes in lookup form, and how many records they serve.
    fn freeze(self) -> (HashMap<LowerName, Node>, usize) {
        let mut record_count = 0;
        let nodes = self
            .nodes
            .into_iter()
            .map(|(name, draft)| {
                let node = if !draft.rrsets.is_empty() {
                    let rrsets: Box<[RRset]> = draft
                        .rrsets
                        .into_values()
                        .map(|set| RRset::new(set.rtype, set.records, set.additionals))
                        .collect();
                    record_count += rrsets.iter().map(|s| s.records().len()).sum::<usize>();
                    Node::Data(rrsets)
                } else if draft.hidden {
                    Node::Hidden
                } else {
                    Node::EmptyNonTerminal
                };
                (name, node)
            })
            .collect();
        (nodes, record_count)
    }

    fn address_records(&self, owner: &Name, ips: &[IpAddr]) -> Vec<Record> {
        ips.iter()
            .map(|ip| {
                let data = match ip {
                    IpAddr::V4(v4) => RData::A(A(*v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                Record::from_rdata(owner.clone(), self.ttl, data)
            })
            .collect()
    }

    fn add_srv(&mut self, owner: &Name, port: u16, target: &Name, target_addresses: &[Record]) {
        let srv = SRV::new(SRV_PRIORITY, SRV_WEIGHT, port, target.clone());
        self.add(owner, RData::SRV(srv));
        self.add_additionals(owner, RecordType::SRV, target, target_addresses);
    }

    fn add(&mut self, owner: &Name, data: RData) {
        self.add_record(Record::from_rdata(owner.clone(), self.ttl, data));
    }

    fn add_all(&mut self, records: Vec<Record>) {
        for record in records {
            self.add_record(record);
        }
    }

    fn add_record(&mut self, record: Record) {
        let rtype = record.record_type();
        self.rrset(&record.name, rtype).records.push(record);
    }

    /// Attaches `target`'s addresses to the `rtype` RRset at `owner`, once.
    fn add_additionals(
        &mut self,
        owner: &Name,
        rtype: RecordType,
        target: &Name,
        records: &[Record],
    ) {
        let set = self.rrset(owner, rtype);
        if set.additional_names.insert(LowerName::new(target)) {
            set.additionals.extend_from_slice(records);
        }
    }

    fn rrset(&mut self, owner: &Name, rtype: RecordType) -> &mut RRsetDraft {
        self.nodes
            .entry(LowerName::new(owner))
            .or_default()
            .rrsets
            .entry(u16::from(rtype))
            .or_insert_with(|| RRsetDraft {
                rtype,
                records: Vec::new(),
                additionals: Vec::new(),
                additional_names: BTreeSet::new(),
            })
    }

    /// Every ancestor of a name, up to `top`, exists (RFC 8020): as an empty non-terminal
    /// unless it has data or is hidden.
    fn add_empty_non_terminals(&mut self) {
        let mut ancestors = Vec::new();
        for name in self.nodes.keys() {
            let mut current = name.base_name();
            while self.top.zone_of(&current) && current != self.top {
                ancestors.push(current.clone());
                current = current.base_name();
            }
        }
        for name in ancestors {
            self.nodes.entry(name).or_default();
        }
    }

    /// Feeds every name and record, in canonical order.
    fn digest_into(&self, digest: &mut SerialDigest) {
        for (name, node) in &self.nodes {
            digest.field(name.to_string().as_bytes());
            digest.number(u64::from(node.hidden));
            for set in node.rrsets.values() {
                for record in &set.records {
                    digest.number(u64::from(u16::from(set.rtype)));
                    digest.number(u64::from(record.ttl));
                    digest.field(record.data.to_string().as_bytes());
                }
            }
        }
    }
}
