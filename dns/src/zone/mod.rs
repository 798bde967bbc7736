//! The zone: an immutable index from lower-cased owner name to answer data, in parts that
//! a rebuild shares.

mod apex;
mod builder;
mod error;
mod node;
mod publication;
mod serial;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;

use hickory_proto::rr::domain::Label;
use hickory_proto::rr::{LowerName, Name};

pub use self::error::{FieldProblem, ZoneError};
pub(crate) use self::node::{Node, RRset};

use self::apex::Apex;
use self::builder::ZoneBuilder;
use self::publication::Publication;
use crate::{ServiceRecord, ZoneConfig};

/// The clusterset zone, built once and never changed: swap in a new one through a
/// [`ZoneHandle`](crate::ZoneHandle) instead.
///
/// The apex (SOA, NS, `dns-version`, the empty non-terminals above the services) is one small
/// part; each service's names (`<svc>.<ns>.svc.<zone>` and below, which no other service
/// shares) are a fragment of their own. [`Zone::rebuild`] builds only the fragments of the
/// services whose records changed and shares the others with the zone it starts from (it
/// still compares every record); [`Zone::update`], told which services changed, looks at
/// nothing else, so the cost of a change follows the change, not the size of the zone.
pub struct Zone {
    config: ZoneConfig,
    apex: Apex,
    origin: LowerName,
    origin_labels: usize,
    /// The apex part's nodes.
    nodes: HashMap<LowerName, Node>,
    /// The services' fragments, by the hash of their `(namespace, name)` labels, in
    /// [`SHARDS`] shards (by the hash's low bits) that an update copies only when it changes
    /// one of their services; a hash shared by several services holds each.
    services: Vec<Arc<Shard>>,
    /// How many services with names each namespace has (its `<ns>.svc` name exists while one
    /// does).
    namespaces: Arc<BTreeMap<Box<[u8]>, usize>>,
    /// The services' part of the digest behind the serial, and of the record count.
    services_digest: u64,
    services_records: usize,
    hasher: RandomState,
    negative_soa: RRset,
    serial: u32,
    record_count: usize,
}

/// How many shards hold the services' fragments: an update copies one shard per changed
/// service (and the list of shards), whatever the size of the zone.
const SHARDS: usize = 256;

type Shard = HashMap<u64, Vec<Arc<Fragment>>>;

fn shard_of(hash: u64) -> usize {
    (hash % SHARDS as u64) as usize
}

/// One service in an update ([`Zone::update`]): its record now, or `None` when it is gone.
#[derive(Clone, Copy, Debug)]
pub struct ServiceChange<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub record: Option<&'a ServiceRecord>,
}

/// What a zone holds of its services, apart from the apex built over them.
struct Parts {
    services: Vec<Arc<Shard>>,
    namespaces: Arc<BTreeMap<Box<[u8]>, usize>>,
    services_digest: u64,
    services_records: usize,
}

/// One service's names, and the record they were built from.
struct Fragment {
    record: ServiceRecord,
    namespace: Box<[u8]>,
    name: Box<[u8]>,
    nodes: HashMap<LowerName, Node>,
    digest: u64,
    record_count: usize,
}

/// A built zone and the services that were left out of it.
#[derive(Debug)]
pub struct ZoneBuild {
    /// The zone with every valid service.
    pub zone: Zone,
    /// One error per service left out, naming the service and the field.
    pub errors: Vec<ZoneError>,
}

/// Where a query name falls in the zone.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup<'z> {
    /// Not in this zone: we are not authoritative.
    OutOfZone,
    /// In the zone, but no such name (or a name the specification forbids).
    NxDomain,
    /// A name without data of its own.
    EmptyNonTerminal,
    /// A name with data: its RRsets, sorted by type.
    Data(&'z [RRset]),
}

fn key_hash(hasher: &RandomState, namespace: &[u8], name: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(namespace);
    h.write_u8(0);
    h.write(name);
    h.finish()
}

impl Zone {
    /// Builds the zone for `services`.
    ///
    /// Fails only when `config` is unusable. A service with an unusable field
    /// is left out and reported in [`ZoneBuild::errors`]; the others are served.
    /// When two services share `<namespace>/<name>`, the first one wins.
    pub fn build(config: &ZoneConfig, services: &[ServiceRecord]) -> Result<ZoneBuild, ZoneError> {
        Self::assemble(config, services, None)
    }

    /// The zone for `services`, as [`Zone::build`] gives it, reusing this zone's names of every
    /// service whose record is unchanged (all of them are built anew when `config` differs).
    pub fn rebuild<R: Borrow<ServiceRecord>>(
        &self,
        config: &ZoneConfig,
        services: &[R],
    ) -> Result<ZoneBuild, ZoneError> {
        Self::assemble(config, services, Some(self).filter(|z| z.config == *config))
    }

    fn assemble<R: Borrow<ServiceRecord>>(
        config: &ZoneConfig,
        services: &[R],
        previous: Option<&Zone>,
    ) -> Result<ZoneBuild, ZoneError> {
        let apex = match previous {
            Some(p) => p.apex.clone(),
            None => Apex::from_config(config)?,
        };
        let origin = apex.origin.clone();
        let hasher = previous.map_or_else(RandomState::new, |p| p.hasher.clone());
        let mut errors = Vec::new();

        let mut ordered: Vec<&ServiceRecord> = services.iter().map(Borrow::borrow).collect();
        // Stable: among equal keys, the first given stays first.
        ordered.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let mut services: Vec<Shard> = vec![HashMap::new(); SHARDS];
        let mut namespaces: BTreeMap<Box<[u8]>, usize> = BTreeMap::new();
        let mut digest = 0u64;
        let mut record_count = 0usize;
        let mut last: Option<&ServiceRecord> = None;
        for service in ordered {
            if last.is_some_and(|p| p.namespace == service.namespace && p.name == service.name) {
                errors.push(ZoneError::DuplicateService {
                    service: service.key(),
                });
                continue;
            }
            last = Some(service);
            let reused = previous.and_then(|p| p.fragment_for(service));
            let fragment = match reused {
                Some(f) => f,
                None => match Publication::new(service, &origin) {
                    Ok(publication) => Arc::new(Fragment::new(service, &publication, apex.ttl)),
                    Err(error) => {
                        errors.push(error);
                        continue;
                    }
                },
            };
            if fragment.nodes.is_empty() {
                continue;
            }
            *namespaces.entry(fragment.namespace.clone()).or_default() += 1;
            digest = digest.wrapping_add(fragment.digest);
            record_count += fragment.record_count;
            let hash = key_hash(&hasher, &fragment.namespace, &fragment.name);
            services[shard_of(hash)]
                .entry(hash)
                .or_default()
                .push(fragment);
        }
        let parts = Parts {
            services: services.into_iter().map(Arc::new).collect(),
            namespaces: Arc::new(namespaces),
            services_digest: digest,
            services_records: record_count,
        };
        Ok(ZoneBuild {
            zone: Self::finish(config, apex, hasher, parts),
            errors,
        })
    }

    /// This zone with the services `changes` name replaced by their records now (or removed),
    /// as [`Zone::rebuild`] gives it for the whole list of services after the change; the
    /// other services' names are shared, and only the changed services' shards are copied. So
    /// its cost follows the number of changes, not the size of the zone. A service named twice
    /// in `changes` takes the last record given. Errors name the changed services left out.
    pub fn update(&self, changes: &[ServiceChange<'_>]) -> ZoneBuild {
        let origin = self.apex.origin.clone();
        let mut services = self.services.clone();
        let mut namespaces = Arc::clone(&self.namespaces);
        let (mut digest, mut record_count) = (self.services_digest, self.services_records);
        let mut errors = Vec::new();
        for change in changes {
            let (namespace, name) = (lowered(change.namespace), lowered(change.name));
            let hash = key_hash(&self.hasher, &namespace, &name);
            let shard = Arc::make_mut(&mut services[shard_of(hash)]);
            let list = shard.entry(hash).or_default();
            let at = list.partition_point(|f| {
                (f.record.namespace.as_str(), f.record.name.as_str())
                    < (change.namespace, change.name)
            });
            let old = list
                .get(at)
                .filter(|f| f.record.namespace == change.namespace && f.record.name == change.name)
                .cloned();
            if let (Some(old), Some(record)) = (&old, change.record) {
                if old.record == *record {
                    continue;
                }
            }
            if let Some(old) = old {
                list.remove(at);
                digest = digest.wrapping_sub(old.digest);
                record_count -= old.record_count;
                let namespaces = Arc::make_mut(&mut namespaces);
                if let Some(n) = namespaces.get_mut(&old.namespace) {
                    *n -= 1;
                    if *n == 0 {
                        namespaces.remove(&old.namespace);
                    }
                }
            }
            let fragment =
                change
                    .record
                    .and_then(|record| match Publication::new(record, &origin) {
                        Ok(publication) => Some(Fragment::new(record, &publication, self.apex.ttl)),
                        Err(error) => {
                            errors.push(error);
                            None
                        }
                    });
            match fragment {
                Some(fragment) if !fragment.nodes.is_empty() => {
                    *Arc::make_mut(&mut namespaces)
                        .entry(fragment.namespace.clone())
                        .or_default() += 1;
                    digest = digest.wrapping_add(fragment.digest);
                    record_count += fragment.record_count;
                    list.insert(at, Arc::new(fragment));
                }
                _ => {
                    if list.is_empty() {
                        shard.remove(&hash);
                    }
                }
            }
        }
        let parts = Parts {
            services,
            namespaces,
            services_digest: digest,
            services_records: record_count,
        };
        ZoneBuild {
            zone: Self::finish(&self.config, self.apex.clone(), self.hasher.clone(), parts),
            errors,
        }
    }

    /// The zone of `parts`: the apex built over their namespaces and digest.
    fn finish(config: &ZoneConfig, apex: Apex, hasher: RandomState, parts: Parts) -> Self {
        let origin = apex.origin.clone();
        let origin_labels = usize::from(origin.num_labels());
        let svc = Label::from_ascii("svc").ok();
        let namespace_names: Vec<LowerName> = parts
            .namespaces
            .keys()
            .filter_map(|ns| {
                let labels = [Label::from_raw_bytes(ns).ok()?, svc.clone()?];
                let name = Name::from_labels(labels)
                    .ok()?
                    .append_domain(&origin)
                    .ok()?;
                Some(LowerName::new(&name))
            })
            .collect();
        let built = ZoneBuilder::apex(&apex, &namespace_names, parts.services_digest);
        Self {
            config: config.clone(),
            origin: LowerName::new(&origin),
            origin_labels,
            apex,
            nodes: built.nodes,
            services: parts.services,
            namespaces: parts.namespaces,
            services_digest: parts.services_digest,
            services_records: parts.services_records,
            hasher,
            negative_soa: built.negative_soa,
            serial: built.serial,
            record_count: parts.services_records + built.record_count,
        }
    }

    /// This zone's fragment of `service`, if it was built from the same record.
    fn fragment_for(&self, service: &ServiceRecord) -> Option<Arc<Fragment>> {
        let (namespace, name) = (lowered(&service.namespace), lowered(&service.name));
        let hash = key_hash(&self.hasher, &namespace, &name);
        self.services[shard_of(hash)]
            .get(&hash)?
            .iter()
            .find(|f| f.record == *service)
            .cloned()
    }

    /// The configuration the zone was built with.
    pub fn config(&self) -> &ZoneConfig {
        &self.config
    }

    /// The SOA serial: a digest of the content, so it changes whenever the content does.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The number of records served (SOA, NS and TXT included; additional-section copies not).
    pub fn len(&self) -> usize {
        self.record_count
    }

    /// Whether the zone serves no record at all (never true for a built zone).
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// The zone apex, e.g. `clusterset.local.`.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// Finds `name` (already lower-cased) in the zone.
    pub(crate) fn lookup(&self, name: &LowerName) -> Lookup<'_> {
        let node = self
            .nodes
            .get(name)
            .or_else(|| self.service_of(name)?.nodes.get(name));
        match node {
            Some(Node::Data(rrsets)) => Lookup::Data(rrsets),
            Some(Node::EmptyNonTerminal) => Lookup::EmptyNonTerminal,
            Some(Node::Hidden) => Lookup::NxDomain,
            None if self.origin.zone_of(name) => Lookup::NxDomain,
            None => Lookup::OutOfZone,
        }
    }

    /// The fragment of the service `name` would belong to: by its labels `<svc>.<ns>.svc`
    /// just below the origin. Without allocating: this is on every query's path.
    fn service_of(&self, name: &LowerName) -> Option<&Fragment> {
        let mut labels = name.iter().rev().skip(self.origin_labels);
        if labels.next()? != b"svc" {
            return None;
        }
        let namespace = labels.next()?;
        let service = labels.next()?;
        let hash = key_hash(&self.hasher, namespace, service);
        self.services[shard_of(hash)]
            .get(&hash)?
            .iter()
            .find(|f| *f.namespace == *namespace && *f.name == *service)
            .map(AsRef::as_ref)
    }

    /// The SOA that negative answers carry in their authority section.
    pub(crate) fn negative_soa(&self) -> &RRset {
        &self.negative_soa
    }
}

/// `s` in lower case, copied only when it has upper-case letters.
fn lowered(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        s.to_ascii_lowercase().into_bytes().into()
    } else {
        s.as_bytes().into()
    }
}

impl Fragment {
    fn new(record: &ServiceRecord, publication: &Publication, ttl: u32) -> Self {
        let base = LowerName::new(&publication.service_name);
        let built = ZoneBuilder::fragment(ttl, &base, publication);
        let mut labels = base.iter();
        let name: Box<[u8]> = labels.next().unwrap_or_default().into();
        let namespace: Box<[u8]> = labels.next().unwrap_or_default().into();
        Self {
            record: record.clone(),
            namespace,
            name,
            nodes: built.nodes,
            digest: built.digest,
            record_count: built.record_count,
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zone")
            .field("origin", &self.origin.to_string())
            .field("serial", &self.serial)
            .field("records", &self.record_count)
            .field(
                "services",
                &self
                    .services
                    .iter()
                    .flat_map(|shard| shard.values())
                    .map(Vec::len)
                    .sum::<usize>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeadlessEndpoint, PortProtocol, PortRecord, ServiceRecordKind};
    use hickory_proto::rr::RecordType;

    fn clusterset_ip(ns: &str, name: &str, ip: &str) -> ServiceRecord {
        ServiceRecord {
            namespace: ns.into(),
            name: name.into(),
            kind: ServiceRecordKind::ClusterSetIp {
                ips: vec![ip.parse().unwrap()],
            },
            ports: vec![PortRecord {
                name: Some("http".into()),
                protocol: PortProtocol::Tcp,
                port: 80,
            }],
        }
    }

    fn headless(ns: &str, name: &str, endpoints: &[(&str, &str, &str)]) -> ServiceRecord {
        ServiceRecord {
            namespace: ns.into(),
            name: name.into(),
            kind: ServiceRecordKind::Headless {
                endpoints: endpoints
                    .iter()
                    .map(|(cluster, host, ip)| HeadlessEndpoint {
                        cluster_id: (*cluster).into(),
                        hostname: (*host).into(),
                        ips: vec![ip.parse().unwrap()],
                    })
                    .collect(),
            },
            ports: vec![],
        }
    }

    fn lookup<'z>(zone: &'z Zone, name: &str) -> Lookup<'z> {
        zone.lookup(&LowerName::from(Name::from_ascii(name).unwrap()))
    }

    fn types(lookup: Lookup<'_>) -> Vec<RecordType> {
        match lookup {
            Lookup::Data(sets) => sets.iter().map(RRset::rtype).collect(),
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn apex_has_soa_and_ns_and_version_txt() {
        let zone = Zone::build(&ZoneConfig::default(), &[]).unwrap().zone;
        assert_eq!(
            types(lookup(&zone, "clusterset.local.")),
            [RecordType::NS, RecordType::SOA]
        );
        assert_eq!(
            types(lookup(&zone, "dns-version.clusterset.local.")),
            [RecordType::TXT]
        );
        assert_eq!(zone.len(), 3);
    }

    #[test]
    fn ancestors_are_empty_non_terminals_and_cluster_names_hidden() {
        let services = [headless("db", "pg", &[("east", "pg-0", "10.1.0.1")])];
        let zone = Zone::build(&ZoneConfig::default(), &services).unwrap().zone;
        assert!(matches!(
            lookup(&zone, "svc.clusterset.local."),
            Lookup::EmptyNonTerminal
        ));
        assert!(matches!(
            lookup(&zone, "db.svc.clusterset.local."),
            Lookup::EmptyNonTerminal
        ));
        assert!(matches!(
            lookup(&zone, "east.pg.db.svc.clusterset.local."),
            Lookup::NxDomain
        ));
        assert_eq!(
            types(lookup(&zone, "pg-0.east.pg.db.svc.clusterset.local.")),
            [RecordType::A]
        );
        assert!(matches!(
            lookup(&zone, "other.clusterset.local."),
            Lookup::NxDomain
        ));
        assert!(matches!(lookup(&zone, "example.org."), Lookup::OutOfZone));
    }

    #[test]
    fn headless_service_without_endpoints_has_no_names() {
        let services = [headless("db", "pg", &[])];
        let zone = Zone::build(&ZoneConfig::default(), &services).unwrap().zone;
        assert!(matches!(
            lookup(&zone, "pg.db.svc.clusterset.local."),
            Lookup::NxDomain
        ));
        assert!(matches!(
            lookup(&zone, "db.svc.clusterset.local."),
            Lookup::NxDomain
        ));
    }

    #[test]
    fn a_bad_service_is_reported_and_the_others_are_served() {
        let services = [
            clusterset_ip("shop", "web", "10.0.0.1"),
            clusterset_ip("shop", "Bad_Name", "10.0.0.2"),
        ];
        let build = Zone::build(&ZoneConfig::default(), &services).unwrap();
        assert_eq!(build.errors.len(), 1);
        assert_eq!(build.errors[0].service(), Some("shop/Bad_Name"));
        assert_eq!(
            types(lookup(&build.zone, "web.shop.svc.clusterset.local.")),
            [RecordType::A]
        );
    }

    #[test]
    fn duplicate_services_keep_the_first() {
        let services = [
            clusterset_ip("shop", "web", "10.0.0.1"),
            clusterset_ip("shop", "web", "10.0.0.2"),
        ];
        let build = Zone::build(&ZoneConfig::default(), &services).unwrap();
        assert_eq!(
            build.errors,
            [ZoneError::DuplicateService {
                service: "shop/web".into()
            }]
        );
        let Lookup::Data(sets) = lookup(&build.zone, "web.shop.svc.clusterset.local.") else {
            panic!()
        };
        assert_eq!(sets[0].records()[0].data.to_string(), "10.0.0.1");
    }

    #[test]
    fn serial_follows_content_not_input_order() {
        let one = clusterset_ip("a", "x", "10.0.0.1");
        let two = clusterset_ip("b", "y", "10.0.0.2");
        let config = ZoneConfig::default();
        let forward = Zone::build(&config, &[one.clone(), two.clone()])
            .unwrap()
            .zone;
        let backward = Zone::build(&config, &[two, one.clone()]).unwrap().zone;
        let fewer = Zone::build(&config, &[one]).unwrap().zone;
        assert_eq!(forward.serial(), backward.serial());
        assert_ne!(forward.serial(), fewer.serial());
    }

    /// Every owner name a zone serves or hides, apex and services.
    fn names(zone: &Zone) -> Vec<LowerName> {
        let mut out: Vec<LowerName> = zone.nodes.keys().cloned().collect();
        for fragments in zone.services.iter().flat_map(|shard| shard.values()) {
            for f in fragments {
                out.extend(f.nodes.keys().cloned());
            }
        }
        out.sort();
        out
    }

    fn answer(zone: &Zone, name: &LowerName) -> String {
        format!("{:?}", zone.lookup(name))
    }

    /// `got` serves what `fresh` (built from scratch) serves, for every name of either and of
    /// the zone `before` they were made from.
    fn assert_same_zone(got: &Zone, fresh: &Zone, before: &Zone, step: usize) {
        assert_eq!(got.serial(), fresh.serial(), "step {step}");
        assert_eq!(got.len(), fresh.len(), "step {step}");
        let mut all = names(before);
        all.extend(names(fresh));
        assert_eq!(names(got), names(fresh), "step {step}");
        for name in &all {
            assert_eq!(
                answer(got, name),
                answer(fresh, name),
                "step {step}: {name}"
            );
        }
    }

    /// The services of step `step`: some unchanged, some changed, added or gone.
    fn services_at(step: usize) -> Vec<ServiceRecord> {
        let mut out = Vec::new();
        for i in 0..60usize {
            if (i + step).is_multiple_of(7) {
                continue; // gone at this step
            }
            let ns = format!("ns-{}", i % 5);
            let name = format!("svc-{i}");
            if i.is_multiple_of(4) {
                let n = (i + step) % 3;
                let endpoints: Vec<(&str, &str, &str)> = [
                    ("east", "db-0", "10.1.0.1"),
                    ("west", "db-1", "10.2.0.1"),
                    ("east", "db-2", "10.1.0.2"),
                ][..n]
                    .to_vec();
                let mut h = headless(&ns, &name, &endpoints);
                h.ports = vec![PortRecord {
                    name: Some("pg".into()),
                    protocol: PortProtocol::Tcp,
                    port: 5432,
                }];
                out.push(h);
            } else {
                let ip = format!(
                    "10.9.{}.{}",
                    i,
                    if i.is_multiple_of(3) { step % 2 } else { 1 }
                );
                out.push(clusterset_ip(&ns, &name, &ip));
            }
        }
        out
    }

    #[test]
    fn a_rebuilt_zone_is_the_zone_built_from_scratch() {
        let config = ZoneConfig::default();
        let mut zone = Zone::build(&config, &services_at(0)).unwrap().zone;
        for step in 1..20 {
            let services = services_at(step);
            let rebuilt = zone.rebuild(&config, &services).unwrap();
            let fresh = Zone::build(&config, &services).unwrap();
            assert!(rebuilt.errors.is_empty() && fresh.errors.is_empty());
            let (rebuilt, fresh) = (rebuilt.zone, fresh.zone);
            assert_same_zone(&rebuilt, &fresh, &zone, step);
            zone = rebuilt;
        }
    }

    /// What turns `before` into `after`, service by service (unchanged ones included now and
    /// then: an update may name a service whose record is the same).
    fn changes<'a>(
        before: &'a [ServiceRecord],
        after: &'a [ServiceRecord],
        step: usize,
    ) -> Vec<ServiceChange<'a>> {
        let key = |r: &'a ServiceRecord| (r.namespace.as_str(), r.name.as_str());
        let old: BTreeMap<_, _> = before.iter().map(|r| (key(r), r)).collect();
        let new: BTreeMap<_, _> = after.iter().map(|r| (key(r), r)).collect();
        let mut out = Vec::new();
        for (k, r) in &new {
            if old.get(k) != Some(r) || (k.1.len() + step).is_multiple_of(5) {
                out.push(ServiceChange {
                    namespace: k.0,
                    name: k.1,
                    record: Some(*r),
                });
            }
        }
        for k in old.keys().filter(|k| !new.contains_key(*k)) {
            out.push(ServiceChange {
                namespace: k.0,
                name: k.1,
                record: None,
            });
        }
        out
    }

    #[test]
    fn an_updated_zone_is_the_zone_built_from_scratch() {
        let config = ZoneConfig::default();
        let mut services = services_at(0);
        let mut zone = Zone::build(&config, &services).unwrap().zone;
        for step in 1..40 {
            let mut next = services_at(step);
            if step % 6 == 0 {
                // A service whose record cannot be served: left out, and named.
                next[1].name = "Not_A_Label".into();
            }
            let updated = zone.update(&changes(&services, &next, step));
            let fresh = Zone::build(&config, &next).unwrap();
            assert_eq!(
                updated.errors.len(),
                usize::from(step % 6 == 0),
                "step {step}: {:?}",
                updated.errors
            );
            assert_eq!(updated.errors.len(), fresh.errors.len());
            let (updated, fresh) = (updated.zone, fresh.zone);
            assert_same_zone(&updated, &fresh, &zone, step);
            zone = updated;
            services = next;
        }
    }

    #[test]
    fn an_update_copies_only_the_shards_of_the_changed_services() {
        let config = ZoneConfig::default();
        let services = services_at(0);
        let zone = Zone::build(&config, &services).unwrap().zone;
        let changed = clusterset_ip(&services[0].namespace, &services[0].name, "10.7.7.7");
        let updated = zone
            .update(&[ServiceChange {
                namespace: &changed.namespace,
                name: &changed.name,
                record: Some(&changed),
            }])
            .zone;
        let copied = zone
            .services
            .iter()
            .zip(&updated.services)
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .count();
        assert_eq!(copied, 1);
        assert_ne!(zone.serial(), updated.serial());
    }

    #[test]
    fn a_rebuild_shares_the_unchanged_services_and_builds_the_changed_ones() {
        let config = ZoneConfig::default();
        let before = [
            clusterset_ip("shop", "web", "10.0.0.1"),
            clusterset_ip("shop", "cart", "10.0.0.2"),
        ];
        let zone = Zone::build(&config, &before).unwrap().zone;
        let after = [
            clusterset_ip("shop", "web", "10.0.0.1"),
            clusterset_ip("shop", "cart", "10.0.0.3"),
        ];
        let rebuilt = zone.rebuild(&config, &after).unwrap().zone;
        let fragment = |z: &Zone, name: &str| {
            let name = LowerName::from(Name::from_ascii(name).unwrap());
            z.service_of(&name).map(|f| f as *const Fragment)
        };
        let web = "web.shop.svc.clusterset.local.";
        let cart = "cart.shop.svc.clusterset.local.";
        assert_eq!(fragment(&zone, web), fragment(&rebuilt, web));
        assert_ne!(fragment(&zone, cart), fragment(&rebuilt, cart));
        assert_ne!(zone.serial(), rebuilt.serial());
        // Another origin rebuilds everything.
        let other = ZoneConfig::for_origin("other.local");
        let moved = zone.rebuild(&other, &before).unwrap().zone;
        assert!(matches!(lookup(&moved, web), Lookup::OutOfZone));
        assert_eq!(
            types(lookup(&moved, "web.shop.svc.other.local.")),
            [RecordType::A]
        );
    }

    #[test]
    fn record_count_includes_every_served_record() {
        let services = [clusterset_ip("shop", "web", "10.0.0.1")];
        let zone = Zone::build(&ZoneConfig::default(), &services).unwrap().zone;
        // SOA, NS, TXT, A, SRV
        assert_eq!(zone.len(), 5);
        assert!(!zone.is_empty());
    }
}
