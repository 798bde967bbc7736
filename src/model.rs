//! The domain model: plain data that every source (static files, Kubernetes) converts into and
//! that the desired-state function reads. Nothing here does I/O or knows about the API server.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A cluster's identity in the clusterset (KEP-2149 `cluster.clusterset.k8s.io`).
pub type ClusterId = String;

/// The name of a WAN tunnel class (`WANPolicy.spec.tunnel`).
pub type TunnelClass = String;

/// Namespace and name of a namespaced object. Displays as `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// L4 protocol of a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Parses the Kubernetes spelling (`TCP`, `UDP`, `SCTP`; absent means TCP).
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            None | Some("TCP") => Some(Self::Tcp),
            Some("UDP") => Some(Self::Udp),
            Some("SCTP") => Some(Self::Sctp),
            Some(_) => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One port of a Service as users declare it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServicePort {
    /// Port name; the empty string for an unnamed port (as Kubernetes does).
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    /// Numeric target port, or the name of a container port, resolved via EndpointSlices.
    pub target_port: Option<TargetPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

/// How a Service is exposed, as far as multi-cluster export cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ServiceType {
    /// A Service with a cluster IP (ClusterIP, NodePort, LoadBalancer): imported as ClusterSetIP.
    ClusterIp,
    /// `clusterIP: None`: imported as Headless.
    Headless,
    /// `type: ExternalName`: cannot be exported (MCS `InvalidServiceType`).
    ExternalName,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SessionAffinity {
    None,
    ClientIp { timeout_seconds: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub key: ServiceKey,
    pub service_type: ServiceType,
    pub ports: Vec<ServicePort>,
    pub session_affinity: SessionAffinity,
}

/// One endpoint of an EndpointSlice, reduced to what the gateway needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub addresses: Vec<IpAddr>,
    pub ready: bool,
    pub hostname: Option<String>,
}

/// A named, numbered port of an EndpointSlice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// An EndpointSlice of a local Service (`kubernetes.io/service-name` label).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSlice {
    pub name: String,
    pub service: ServiceKey,
    pub ports: Vec<EndpointPort>,
    pub endpoints: Vec<Endpoint>,
}

/// Which API group a ServiceExport came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportGroup {
    /// `multicluster.x-k8s.io`, the MCS group.
    Mcs,
    /// `multicluster.k8s.io`, the draft name some early manifests use; accepted with a warning.
    Draft,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceExport {
    pub key: ServiceKey,
    /// `mcw.l7mp.io/mc-wan-policy`; `None` selects the configured default policy.
    pub wan_policy: Option<String>,
    /// `mcw.l7mp.io/affinity` and `mcw.l7mp.io/cluster-priority`, where set.
    pub placement: Placement,
    pub created: Option<Timestamp>,
    pub group: ExportGroup,
}

/// Which clusters an importing gateway prefers for a ClusterSetIP service
/// (`mcw.l7mp.io/affinity`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Affinity {
    /// Every cluster by its priority alone.
    #[default]
    None,
    /// The importing cluster's own endpoints first; other clusters take what they cannot.
    Local,
    /// Other clusters first; the importing cluster's own endpoints take what they cannot.
    Remote,
}

impl Affinity {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "local" => Some(Self::Local),
            "remote" => Some(Self::Remote),
            _ => None,
        }
    }
}

impl fmt::Display for Affinity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Local => "local",
            Self::Remote => "remote",
        })
    }
}

/// Where an export asks its service's traffic to go first. Each part is `None` where the
/// export does not set it; the clusterset service takes the values its exports set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Placement {
    pub affinity: Option<Affinity>,
    /// Cluster -> priority (lower is preferred); clusters not listed come after every listed one.
    pub priority: Option<BTreeMap<ClusterId, u32>>,
}

impl Placement {
    /// The priority of a cluster: its listed number, or after every listed one.
    pub fn priority_of(&self, cluster: &str) -> u32 {
        self.priority
            .as_ref()
            .map_or(0, |p| p.get(cluster).copied().unwrap_or(u32::MAX))
    }
}

/// Service level objectives of a WAN tunnel class (`WANPolicy.spec.sla`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sla {
    pub jitter_ms: Option<u32>,
    pub latency_ms: Option<u32>,
    pub loss_percent: Option<f64>,
}

/// `WANPolicy.mcw.l7mp.io`: a tunnel class, its WAN port and its ingress port range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WanPolicy {
    pub name: String,
    pub tunnel: TunnelClass,
    /// The class's WAN port: the WireGuard listen port, and the first ingress port.
    pub port: u16,
    /// How many ingress ports the class owns, from `port` on (`spec.portCount`, default 1).
    pub port_count: u16,
    pub sla: Sla,
    /// Marked the default of its cluster (annotation `mcw.l7mp.io/is-default-policy: "true"`):
    /// the policy of exports that name none.
    #[serde(default)]
    pub is_default: bool,
}

impl WanPolicy {
    /// The ingress port range `[port, port + port_count)`, saturating at 65535.
    pub fn port_range(&self) -> std::ops::RangeInclusive<u16> {
        let last = u32::from(self.port) + u32::from(self.port_count.max(1)) - 1;
        self.port..=u16::try_from(last).unwrap_or(u16::MAX)
    }
}

/// Everything one cluster contributes to the catalog. Services, EndpointSlices and
/// ServiceExports are shared (`Arc`): the copies of a catalog (the source's, the planner's
/// last one) hold each object once, and comparing an object with itself is a pointer test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterObjects {
    pub namespaces: std::collections::BTreeSet<String>,
    pub services: BTreeMap<ServiceKey, Arc<Service>>,
    /// EndpointSlices grouped by the Service they belong to.
    pub endpoint_slices: BTreeMap<ServiceKey, Vec<Arc<EndpointSlice>>>,
    pub exports: BTreeMap<ServiceKey, Arc<ServiceExport>>,
    pub wan_policies: BTreeMap<String, WanPolicy>,
    /// Services this cluster imports from a given ingress gateway (`WANImport`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wan_imports: BTreeMap<ServiceKey, WanImport>,
    /// Per-request WAN classes of exported services (`WANRoute`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wan_routes: BTreeMap<ServiceKey, WanRoute>,
}

/// A service imported from a given ingress gateway (`WANImport`), for clusters that do not watch
/// each other: the importing gateway imports it as if it had read the export from the
/// clusterset member whose gateway has that address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WanImport {
    pub key: ServiceKey,
    pub ingress_gateway: IpAddr,
    /// `None`: the cluster's default policy.
    pub wan_policy: Option<String>,
    pub ports: Vec<WanImportPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WanImportPort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    /// `None`: the policy's only port.
    pub ingress_port: Option<u16>,
}

/// Whether `map` holds a key in `namespace` (one tree search: keys sort by namespace first).
fn holds<V>(map: &BTreeMap<ServiceKey, V>, namespace: &str) -> bool {
    let first = ServiceKey::new(namespace, "");
    map.range(first..)
        .next()
        .is_some_and(|(k, _)| k.namespace == namespace)
}

impl ClusterObjects {
    /// Whether the namespace exists in this cluster: declared by a Namespace object, holding any
    /// object, or `default` (which every Kubernetes cluster has).
    pub fn has_namespace(&self, namespace: &str) -> bool {
        namespace == "default"
            || self.namespaces.contains(namespace)
            || holds(&self.services, namespace)
            || holds(&self.exports, namespace)
            || holds(&self.wan_imports, namespace)
            || holds(&self.wan_routes, namespace)
    }

    /// Ready endpoint addresses of a local Service for one of its ports, with the target port
    /// each one listens on: the EndpointSlice port of the same name and protocol, else the
    /// Service's numeric target port, else the service port itself.
    pub fn ready_backends(&self, key: &ServiceKey, port: &ServicePort) -> Vec<(IpAddr, u16)> {
        self.backends(key, port, true)
    }

    /// How many backends (ready or not) a local Service has on a port: what its readiness is
    /// measured against.
    pub fn backend_total(&self, key: &ServiceKey, port: &ServicePort) -> usize {
        self.backends(key, port, false).len()
    }

    fn backends(
        &self,
        key: &ServiceKey,
        port: &ServicePort,
        ready_only: bool,
    ) -> Vec<(IpAddr, u16)> {
        let mut out = Vec::new();
        for slice in self.endpoint_slices.get(key).into_iter().flatten() {
            let target = slice
                .ports
                .iter()
                .find(|p| p.name == port.name && p.protocol == port.protocol)
                .map(|p| p.port)
                .or(match (&port.target_port, slice.ports.is_empty()) {
                    (Some(TargetPort::Number(n)), true) => Some(*n),
                    (None, true) => Some(port.port),
                    _ => None,
                });
            let Some(target) = target else { continue };
            for ep in slice.endpoints.iter().filter(|e| e.ready || !ready_only) {
                if let Some(addr) = ep.addresses.first() {
                    out.push((*addr, target));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Ready endpoints of a local Service: (hostname, addresses), for headless DNS.
    pub fn ready_endpoints(&self, key: &ServiceKey) -> Vec<&Endpoint> {
        self.endpoint_slices
            .get(key)
            .into_iter()
            .flatten()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.ready && !e.addresses.is_empty())
            .collect()
    }
}

/// `WANRoute`: per-request WAN classes of an exported HTTP service. Rules are tried in order;
/// the first with a fitting match decides, and a request no rule matches takes `default`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WanRoute {
    pub key: ServiceKey,
    pub rules: Vec<HttpRule>,
    pub default: RouteAction,
}

impl WanRoute {
    /// Each WANPolicy the route names, with the field that names it first.
    pub fn policies(&self) -> BTreeMap<&str, String> {
        let mut out = BTreeMap::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if let RouteAction::WanPolicy(p) = &rule.action {
                out.entry(p.as_str())
                    .or_insert_with(|| format!("spec.http.rules[{i}].wanPolicy"));
            }
        }
        if let RouteAction::WanPolicy(p) = &self.default {
            out.entry(p.as_str())
                .or_insert_with(|| "spec.http.default.wanPolicy".to_owned());
        }
        out
    }
}

/// One rule of a [`WanRoute`]: any of its matches (at least one) fitting a request applies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRule {
    pub matches: Vec<HttpMatch>,
    pub action: RouteAction,
}

/// Conditions on a request (Gateway API's HTTPRouteMatch); at least one is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpMatch {
    /// Upper-case HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

/// A path condition: Exact, PathPrefix (whole path elements) or RegularExpression (the whole
/// path; checked to compile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathMatch {
    Exact(String),
    PathPrefix(String),
    RegularExpression(String),
}

/// A header condition; the name is lower-case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderMatch {
    pub name: String,
    pub value: ValueMatch,
}

/// How a header value is matched: Exact, or RegularExpression (the whole value; checked to compile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum ValueMatch {
    Exact(String),
    RegularExpression(String),
}

/// What happens to a request: carried over a WANPolicy's tunnel class, or denied (403 by the
/// importing gateway).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteAction {
    WanPolicy(String),
    Deny,
}
