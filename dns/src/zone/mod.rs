//! The zone: an immutable index from lower-cased owner name to answer data.

mod apex;
mod builder;
mod error;
mod node;
mod publication;
mod serial;

use std::collections::HashMap;
use std::fmt;

use hickory_proto::rr::{LowerName, Name};

pub use self::error::{FieldProblem, ZoneError};
pub(crate) use self::node::{Node, RRset};

use self::apex::Apex;
use self::builder::ZoneBuilder;
use self::publication::Publication;
use crate::{ServiceRecord, ZoneConfig};

/// The clusterset zone, built once and never changed: swap in a new one
/// through a [`ZoneHandle`](crate::ZoneHandle) instead.
pub struct Zone {
    origin: LowerName,
    nodes: HashMap<LowerName, Node>,
    negative_soa: RRset,
    serial: u32,
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

impl Zone {
    /// Builds the zone for `services`.
    ///
    /// Fails only when `config` is unusable. A service with an unusable field
    /// is left out and reported in [`ZoneBuild::errors`]; the others are served.
    /// When two services share `<namespace>/<name>`, the first one wins.
    pub fn build(config: &ZoneConfig, services: &[ServiceRecord]) -> Result<ZoneBuild, ZoneError> {
        let apex = Apex::from_config(config)?;
        let origin = apex.origin.clone();
        let mut builder = ZoneBuilder::new(apex);
        let mut errors = Vec::new();

        let mut ordered: Vec<&ServiceRecord> = services.iter().collect();
        // Stable: among equal keys, the first given stays first.
        ordered.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let mut previous: Option<&ServiceRecord> = None;
        for service in ordered {
            if previous.is_some_and(|p| p.namespace == service.namespace && p.name == service.name)
            {
                errors.push(ZoneError::DuplicateService {
                    service: service.key(),
                });
                continue;
            }
            previous = Some(service);
            match Publication::new(service, &origin) {
                Ok(publication) => builder.add_service(&publication),
                Err(error) => errors.push(error),
            }
        }

        let built = builder.finish();
        Ok(ZoneBuild {
            zone: Self {
                origin: LowerName::new(&origin),
                nodes: built.nodes,
                negative_soa: built.negative_soa,
                serial: built.serial,
                record_count: built.record_count,
            },
            errors,
        })
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
        match self.nodes.get(name) {
            Some(Node::Data(rrsets)) => Lookup::Data(rrsets),
            Some(Node::EmptyNonTerminal) => Lookup::EmptyNonTerminal,
            Some(Node::Hidden) => Lookup::NxDomain,
            None if self.origin.zone_of(name) => Lookup::NxDomain,
            None => Lookup::OutOfZone,
        }
    }

    /// The SOA that negative answers carry in their authority section.
    pub(crate) fn negative_soa(&self) -> &RRset {
        &self.negative_soa
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zone")
            .field("origin", &self.origin.to_string())
            .field("serial", &self.serial)
            .field("records", &self.record_count)
            .field("names", &self.nodes.len())
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

    #[test]
    fn record_count_includes_every_served_record() {
        let services = [clusterset_ip("shop", "web", "10.0.0.1")];
        let zone = Zone::build(&ZoneConfig::default(), &services).unwrap().zone;
        // SOA, NS, TXT, A, SRV
        assert_eq!(zone.len(), 5);
        assert!(!zone.is_empty());
    }
}
