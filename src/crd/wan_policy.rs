use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `WANPolicy` names a WAN tunnel class, the class's WAN port and its SLA. Cluster-scoped; the
/// same policies are expected in every cluster of the clusterset.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mcw.l7mp.io",
    version = "v1alpha1",
    kind = "WANPolicy",
    root = "WanPolicy",
    doc = "WANPolicy names a WAN tunnel class (one WireGuard tunnel or SD-WAN hand-off per class), the class's WAN port and ingress port range, and its SLA. Cluster-scoped; every cluster of the clusterset is expected to hold the same policies. A ServiceExport picks one with the mcw.l7mp.io/mc-wan-policy annotation.",
    plural = "wanpolicies",
    shortname = "wanpol",
    printcolumn = r#"{"name":"Tunnel","type":"string","jsonPath":".spec.tunnel"}"#,
    printcolumn = r#"{"name":"Port","type":"integer","jsonPath":".spec.port"}"#,
    printcolumn = r#"{"name":"Ports","type":"integer","jsonPath":".spec.portCount"}"#,
    printcolumn = r#"{"name":"Latency-ms","type":"integer","jsonPath":".spec.sla.latency-ms"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WanPolicySpec {
    /// The tunnel class (one WireGuard tunnel or SD-WAN hand-off per class).
    pub tunnel: String,
    /// The class's WAN port: the WireGuard listen port, and the first port of the ingress range.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// How many ingress ports the class owns from `port` on (one per exported service port).
    /// Defaults to 1, so the seed policies on adjacent ports keep disjoint ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port_count: Option<u16>,
    /// The service level objectives of the class, for the SD-WAN to honour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaSpec>,
}

/// Service level objectives of the class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlaSpec {
    /// The jitter objective, in milliseconds.
    #[serde(rename = "jitter-ms", default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u32>,
    /// The one-way latency objective, in milliseconds.
    #[serde(
        rename = "latency-ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub latency_ms: Option<u32>,
    /// The packet loss objective, in percent.
    #[serde(
        rename = "loss-percent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub loss_percent: Option<f64>,
}
