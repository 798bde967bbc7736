//! `clusterset.yaml`: the clusters of the clusterset and the facts about their gateways that no
//! Kubernetes object carries (WAN addresses, WireGuard keys, SD-WAN edges).
//!
//! ```yaml
//! name: demo                      # optional, for humans
//! wan: wireguard                  # wireguard (default) | sdwan
//! innerNetwork: 10.255.0.0/16     # WireGuard inner addresses (default 10.255.0.0/16)
//! clusters:
//!   - id: cluster-1               # the cluster ID (ClusterProperty cluster.clusterset.k8s.io)
//!     index: 1                    # 1..=254, unique: host part of the gateway's inner addresses
//!     gateway:
//!       wanAddress: 192.168.10.1  # where peers reach this gateway
//!       ingressAddress: 192.168.10.1  # optional: what peers' IPVS targets in sdwan mode
//!       wireguardPublicKey: "base64"  # optional
//!       sdwanEdges:               # sdwan mode: the SD-WAN edge next hop per tunnel class
//!         business: 192.168.11.254
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::{ClusterId, TunnelClass};
use crate::problem::{ObjectRef, Problem};

/// How traffic crosses the WAN between gateways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WanMode {
    /// One WireGuard tunnel per tunnel class, listening on the class's WAN port.
    #[default]
    Wireguard,
    /// No encryption: policy routes per tunnel class towards the class's SD-WAN edge.
    Sdwan,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSetFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub wan: WanMode,
    #[serde(default = "default_inner_network")]
    pub inner_network: Ipv4Net,
    pub clusters: Vec<ClusterEntry>,
}

fn default_inner_network() -> Ipv4Net {
    Ipv4Net::new(std::net::Ipv4Addr::new(10, 255, 0, 0), 16).unwrap_or_default()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterEntry {
    pub id: ClusterId,
    pub index: u8,
    pub gateway: GatewayEntry,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayEntry {
    pub wan_address: IpAddr,
    #[serde(default)]
    pub ingress_address: Option<IpAddr>,
    #[serde(default)]
    pub wireguard_public_key: Option<String>,
    #[serde(default)]
    pub sdwan_edges: BTreeMap<TunnelClass, IpAddr>,
}

/// The validated clusterset: clusters by ID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSet {
    pub name: Option<String>,
    pub wan: WanMode,
    pub inner_network: Option<Ipv4Net>,
    pub clusters: BTreeMap<ClusterId, ClusterEntry>,
}

impl ClusterSet {
    /// Validates a parsed file. Clusters with a problem are left out (and named in `problems`);
    /// the others are kept.
    pub fn from_file(file: ClusterSetFile, problems: &mut Vec<Problem>) -> Self {
        let mut clusters = BTreeMap::new();
        let mut indexes = BTreeSet::new();
        let object = |id: &str| ObjectRef::cluster_scoped("ClusterSet cluster", id);
        let inner_ok = file.inner_network.prefix_len() <= 23;
        if !inner_ok {
            problems.push(Problem::error(
                None,
                ObjectRef::cluster_scoped(
                    "ClusterSet",
                    file.name.as_deref().unwrap_or("clusterset.yaml"),
                ),
                Some("innerNetwork"),
                format!(
                    "{} is too small: it must hold at least two /24s (prefix /23 or shorter)",
                    file.inner_network
                ),
            ));
        }
        for (i, entry) in file.clusters.into_iter().enumerate() {
            let field = |f: &str| format!("clusters[{i}].{f}");
            if !crate::validate::is_dns_label(&entry.id) {
                problems.push(Problem::error(
                    None,
                    object(&entry.id),
                    Some(&field("id")),
                    format!(
                        "{:?} is not a DNS label (lower-case alphanumerics and '-', at most 63)",
                        entry.id
                    ),
                ));
                continue;
            }
            if clusters.contains_key(&entry.id) {
                problems.push(Problem::error(
                    None,
                    object(&entry.id),
                    Some(&field("id")),
                    "duplicate cluster ID; the first entry is used".into(),
                ));
                continue;
            }
            if entry.index == 0 || entry.index == 255 || !indexes.insert(entry.index) {
                problems.push(Problem::error(
                    None,
                    object(&entry.id),
                    Some(&field("index")),
                    format!("{} is not a free index in 1..=254", entry.index),
                ));
                continue;
            }
            clusters.insert(entry.id.clone(), entry);
        }
        Self {
            name: file.name,
            wan: file.wan,
            inner_network: inner_ok.then_some(file.inner_network),
            clusters,
        }
    }
}

impl ClusterEntry {
    /// The address peers' IPVS sends this gateway's ingress traffic to in SD-WAN mode.
    pub fn ingress_address(&self) -> IpAddr {
        self.gateway
            .ingress_address
            .unwrap_or(self.gateway.wan_address)
    }
}

/// Parses a clusterset file. The error names the field (`field clusters[1].gateway.wan: ...`)
/// when the YAML is well formed but does not fit, and the line and column when it is not YAML.
pub fn parse_clusterset(text: &str) -> Result<ClusterSetFile, String> {
    let mut at_path = None;
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            at_path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    parsed.map_err(|e| match at_path.as_deref() {
        None | Some(".") => e.to_string(),
        Some(p) => format!("field {p}: {e}"),
    })
}
