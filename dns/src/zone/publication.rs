//! One service, checked and turned into the owner names the zone publishes.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::Name;

use super::error::{FieldProblem, ZoneError};
use crate::label::check_label;
use crate::{ServiceRecord, ServiceRecordKind};

/// A checked service: every name built, every list sorted and de-duplicated,
/// so that equal content gives an equal zone whatever the input order.
#[derive(Debug, Clone)]
pub(super) struct Publication {
    /// `<svc>.<ns>.svc.<zone>.`
    pub(super) service_name: Name,
    /// Named ports, sorted by owner name then port.
    pub(super) ports: Vec<SrvPort>,
    pub(super) kind: PublishedKind,
}

/// One named port: its SRV owner name and port number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SrvPort {
    /// `_<port>._<proto>.<svc>.<ns>.svc.<zone>.`
    pub(super) owner: Name,
    pub(super) port: u16,
}

#[derive(Debug, Clone)]
pub(super) enum PublishedKind {
    /// Sorted, de-duplicated, never empty.
    ClusterSetIp { ips: Vec<IpAddr> },
    /// Endpoints with at least one address, merged by name and sorted.
    Headless { endpoints: Vec<PublishedEndpoint> },
}

/// One ready endpoint of a headless service.
#[derive(Debug, Clone)]
pub(super) struct PublishedEndpoint {
    /// `<hostname>.<clusterid>.<svc>.<ns>.svc.<zone>.`
    pub(super) name: Name,
    /// `<clusterid>.<svc>.<ns>.svc.<zone>.`, which must answer NXDOMAIN.
    pub(super) cluster_name: Name,
    /// Sorted, de-duplicated, never empty.
    pub(super) ips: Vec<IpAddr>,
}

impl Publication {
    /// Checks `service` and builds its names below `origin`.
    pub(super) fn new(service: &ServiceRecord, origin: &Name) -> Result<Self, ZoneError> {
        let checker = Checker {
            service: service.key(),
            origin,
        };
        checker.label("namespace", &service.namespace)?;
        checker.label("name", &service.name)?;
        let base = format!("{}.{}.svc", service.name, service.namespace);
        let service_name = checker.name("name", &base)?;

        let mut ports = Vec::new();
        for (index, port) in service.ports.iter().enumerate() {
            let Some(name) = &port.name else { continue };
            checker.label(&format!("ports[{index}].name"), name)?;
            if port.port == 0 {
                return Err(checker.error(format!("ports[{index}].port"), FieldProblem::PortZero));
            }
            let owner = format!("_{name}.{}.{base}", port.protocol.srv_label());
            ports.push(SrvPort {
                owner: checker.name(&format!("ports[{index}].name"), &owner)?,
                port: port.port,
            });
        }
        ports.sort();
        ports.dedup();

        let kind = match &service.kind {
            ServiceRecordKind::ClusterSetIp { ips } => {
                if ips.is_empty() {
                    return Err(checker.error("kind.ips".into(), FieldProblem::NoClusterSetIp));
                }
                PublishedKind::ClusterSetIp {
                    ips: sorted_unique(ips.iter().copied()),
                }
            }
            ServiceRecordKind::Headless { endpoints } => {
                let mut merged: BTreeMap<(&str, &str), Vec<IpAddr>> = BTreeMap::new();
                for (index, endpoint) in endpoints.iter().enumerate() {
                    let field = |part: &str| format!("kind.endpoints[{index}].{part}");
                    checker.label(&field("cluster_id"), &endpoint.cluster_id)?;
                    checker.label(&field("hostname"), &endpoint.hostname)?;
                    merged
                        .entry((&endpoint.cluster_id, &endpoint.hostname))
                        .or_default()
                        .extend(endpoint.ips.iter().copied());
                }
                let mut published = Vec::with_capacity(merged.len());
                for ((cluster_id, hostname), ips) in merged {
                    if ips.is_empty() {
                        continue;
                    }
                    let field = "kind.endpoints.hostname";
                    let cluster = format!("{cluster_id}.{base}");
                    published.push(PublishedEndpoint {
                        name: checker.name(field, &format!("{hostname}.{cluster}"))?,
                        cluster_name: checker.name(field, &cluster)?,
                        ips: sorted_unique(ips),
                    });
                }
                PublishedKind::Headless {
                    endpoints: published,
                }
            }
        };

        Ok(Self {
            service_name,
            ports,
            kind,
        })
    }
}

struct Checker<'a> {
    service: String,
    origin: &'a Name,
}

impl Checker<'_> {
    fn error(&self, field: String, problem: FieldProblem) -> ZoneError {
        ZoneError::Service {
            service: self.service.clone(),
            field,
            problem,
        }
    }

    fn label(&self, field: &str, value: &str) -> Result<(), ZoneError> {
        check_label(value).map_err(|reason| {
            self.error(
                field.to_owned(),
                FieldProblem::InvalidLabel {
                    value: value.to_owned(),
                    reason,
                },
            )
        })
    }

    /// `relative` (made of checked labels) below the origin.
    fn name(&self, field: &str, relative: &str) -> Result<Name, ZoneError> {
        let invalid = |reason: String| {
            self.error(
                field.to_owned(),
                FieldProblem::InvalidName {
                    value: format!("{relative}.{}", self.origin),
                    reason,
                },
            )
        };
        Name::from_ascii(relative)
            .and_then(|name| name.append_domain(self.origin))
            .map_err(|error| invalid(error.to_string()))
    }
}

fn sorted_unique(ips: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = ips.into_iter().collect();
    ips.sort_unstable();
    ips.dedup();
    ips
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeadlessEndpoint, PortProtocol, PortRecord};

    fn origin() -> Name {
        Name::from_ascii("clusterset.local.").unwrap()
    }

    fn service(kind: ServiceRecordKind, ports: Vec<PortRecord>) -> ServiceRecord {
        ServiceRecord {
            namespace: "shop".into(),
            name: "web".into(),
            kind,
            ports,
        }
    }

    fn port(name: Option<&str>, protocol: PortProtocol, port: u16) -> PortRecord {
        PortRecord {
            name: name.map(str::to_owned),
            protocol,
            port,
        }
    }

    fn endpoint(cluster_id: &str, hostname: &str, ips: &[&str]) -> HeadlessEndpoint {
        HeadlessEndpoint {
            cluster_id: cluster_id.into(),
            hostname: hostname.into(),
            ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn named_ports_get_srv_owner_names_and_unnamed_ports_none() {
        let record = service(
            ServiceRecordKind::ClusterSetIp {
                ips: vec!["10.0.0.2".parse().unwrap(), "10.0.0.1".parse().unwrap()],
            },
            vec![
                port(Some("http"), PortProtocol::Tcp, 80),
                port(None, PortProtocol::Tcp, 8080),
                port(Some("dns"), PortProtocol::Udp, 53),
                port(Some("http"), PortProtocol::Tcp, 80),
            ],
        );
        let publication = Publication::new(&record, &origin()).unwrap();
        assert_eq!(
            publication.service_name.to_string(),
            "web.shop.svc.clusterset.local."
        );
        let owners: Vec<String> = publication
            .ports
            .iter()
            .map(|p| p.owner.to_string())
            .collect();
        assert_eq!(
            owners,
            // canonical DNS order compares the rightmost labels first
            [
                "_http._tcp.web.shop.svc.clusterset.local.",
                "_dns._udp.web.shop.svc.clusterset.local."
            ]
        );
        let PublishedKind::ClusterSetIp { ips } = publication.kind else {
            panic!()
        };
        assert_eq!(
            ips,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
    }

    #[test]
    fn headless_endpoints_are_merged_and_address_less_ones_dropped() {
        let record = service(
            ServiceRecordKind::Headless {
                endpoints: vec![
                    endpoint("west", "web-0", &["10.2.0.1"]),
                    endpoint("east", "web-0", &["10.1.0.1"]),
                    endpoint("east", "web-0", &["10.1.0.9", "10.1.0.1"]),
                    endpoint("east", "web-1", &[]),
                ],
            },
            vec![],
        );
        let publication = Publication::new(&record, &origin()).unwrap();
        let PublishedKind::Headless { endpoints } = publication.kind else {
            panic!()
        };
        let names: Vec<String> = endpoints.iter().map(|e| e.name.to_string()).collect();
        assert_eq!(
            names,
            [
                "web-0.east.web.shop.svc.clusterset.local.",
                "web-0.west.web.shop.svc.clusterset.local."
            ]
        );
        assert_eq!(endpoints[0].ips.len(), 2);
        assert_eq!(
            endpoints[0].cluster_name.to_string(),
            "east.web.shop.svc.clusterset.local."
        );
    }

    #[test]
    fn errors_name_the_service_and_the_field() {
        let record = service(
            ServiceRecordKind::ClusterSetIp {
                ips: vec!["10.0.0.1".parse().unwrap()],
            },
            vec![port(Some("HTTP"), PortProtocol::Tcp, 80)],
        );
        let error = Publication::new(&record, &origin()).unwrap_err();
        assert_eq!(error.service(), Some("shop/web"));
        assert!(
            matches!(&error, ZoneError::Service { field, .. } if field == "ports[0].name"),
            "{error}"
        );
        assert!(error.to_string().contains("shop/web"), "{error}");
    }

    #[test]
    fn clusterset_ip_service_without_ip_is_an_error() {
        let record = service(ServiceRecordKind::ClusterSetIp { ips: vec![] }, vec![]);
        let error = Publication::new(&record, &origin()).unwrap_err();
        assert!(
            matches!(
                &error,
                ZoneError::Service {
                    problem: FieldProblem::NoClusterSetIp,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn names_longer_than_dns_allows_are_errors() {
        let long = "a".repeat(63);
        let record = service(
            ServiceRecordKind::Headless {
                endpoints: vec![endpoint(&long, &long, &["10.0.0.1"])],
            },
            vec![],
        );
        let record = ServiceRecord {
            namespace: long.clone(),
            name: long.clone(),
            ..record
        };
        let error = Publication::new(&record, &origin()).unwrap_err();
        assert!(
            matches!(
                &error,
                ZoneError::Service {
                    problem: FieldProblem::InvalidName { .. },
                    ..
                }
            ),
            "{error}"
        );
    }
}
