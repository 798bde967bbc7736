//! The services the zone publishes: plain data handed over by the controller.
//!
//! The controller merges every cluster's exports into one [`ServiceRecord`] per
//! `<namespace>/<name>`; this crate only turns those records into DNS data.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One multi-cluster service, as the clusterset zone publishes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Namespace of the exported service (an RFC 1123 label).
    pub namespace: String,
    /// Name of the exported service (an RFC 1123 label).
    pub name: String,
    /// ClusterSetIP or headless, with the addresses to publish.
    pub kind: ServiceRecordKind,
    /// Service ports; only named ports get SRV records.
    #[serde(default)]
    pub ports: Vec<PortRecord>,
}

impl ServiceRecord {
    /// `<namespace>/<name>`: how errors and logs name this service.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The MCS ServiceImport type with the addresses the zone publishes for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServiceRecordKind {
    /// A service reached through its ClusterSetIP(s): one A/AAAA per IP.
    #[serde(rename = "ClusterSetIP")]
    ClusterSetIp {
        /// The ClusterSetIPs allocated to the service (IPv4, IPv6 or both).
        ips: Vec<IpAddr>,
    },
    /// A headless service: the addresses of its ready endpoints in every cluster.
    #[serde(rename = "Headless")]
    Headless {
        /// Ready endpoints only; the caller has already chosen their hostnames.
        #[serde(default)]
        endpoints: Vec<HeadlessEndpoint>,
    },
}

/// One ready endpoint of a headless service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadlessEndpoint {
    /// The MCS cluster ID (KEP-2149) of the cluster the endpoint lives in.
    pub cluster_id: String,
    /// The endpoint's hostname, unique within its cluster and service.
    pub hostname: String,
    /// The endpoint's addresses; an endpoint without any is not published.
    pub ips: Vec<IpAddr>,
}

/// One service port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRecord {
    /// The port name; unnamed ports have no SRV record.
    #[serde(default)]
    pub name: Option<String>,
    /// The transport protocol, `TCP` when omitted.
    #[serde(default)]
    pub protocol: PortProtocol,
    /// The port number.
    pub port: u16,
}

/// A port's transport protocol, spelled as Kubernetes spells it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum PortProtocol {
    /// `TCP`
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// `UDP`
    #[serde(rename = "UDP")]
    Udp,
    /// `SCTP`
    #[serde(rename = "SCTP")]
    Sctp,
}

impl PortProtocol {
    /// The SRV owner label for this protocol, e.g. `_tcp`.
    pub fn srv_label(self) -> &'static str {
        match self {
            Self::Tcp => "_tcp",
            Self::Udp => "_udp",
            Self::Sctp => "_sctp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_record_uses_kubernetes_spelling_in_json() {
        let record = ServiceRecord {
            namespace: "secure".into(),
            name: "payment".into(),
            kind: ServiceRecordKind::ClusterSetIp {
                ips: vec!["10.0.0.1".parse().unwrap()],
            },
            ports: vec![PortRecord {
                name: Some("https".into()),
                protocol: PortProtocol::Tcp,
                port: 443,
            }],
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["kind"]["type"], "ClusterSetIP");
        assert_eq!(json["ports"][0]["protocol"], "TCP");
        let back: ServiceRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn headless_record_parses_with_defaults() {
        let json = r#"{"namespace":"db","name":"pg","kind":{"type":"Headless",
            "endpoints":[{"cluster_id":"east","hostname":"pg-0","ips":["10.1.0.5"]}]},
            "ports":[{"name":"sql","port":5432}]}"#;
        let record: ServiceRecord = serde_json::from_str(json).unwrap();
        assert_eq!(record.ports[0].protocol, PortProtocol::Tcp);
        assert!(
            matches!(record.kind, ServiceRecordKind::Headless { ref endpoints } if endpoints.len() == 1)
        );
    }
}
