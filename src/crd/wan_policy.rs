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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaSpec>,
}

/// Service level objectives of the class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlaSpec {
    #[serde(rename = "jitter-ms", default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u32>,
    #[serde(
        rename = "latency-ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub latency_ms: Option<u32>,
    #[serde(
        rename = "loss-percent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub loss_percent: Option<f64>,
}
