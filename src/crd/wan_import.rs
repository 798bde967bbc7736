use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `WANImport` imports one service from a given ingress gateway, for clusters that do not watch
/// each other (no peer kubeconfig) or an exporting gateway outside Kubernetes. Its name and
/// namespace are the service's. The importing gateway resolves the address to a clusterset
/// member and imports the service as if it had read that member's ServiceExport: a
/// ServiceImport with a ClusterSetIP, DNS and IPVS towards the member's ingress ports.
/// `mcwan import` and `mcwan unimport` write and delete it.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "mcw.l7mp.io",
    version = "v1alpha1",
    kind = "WANImport",
    root = "WanImport",
    doc = "WANImport imports one service from a given ingress gateway, for clusters that do not watch each other or an exporting gateway outside Kubernetes. Its name and namespace are the service's. The gateway imports the service as if it had read the exporting member's ServiceExport. mcwan import and mcwan unimport write and delete it.",
    plural = "wanimports",
    namespaced,
    shortname = "wanim",
    printcolumn = r#"{"name":"Ingress-GW","type":"string","jsonPath":".spec.ingressGateway"}"#,
    printcolumn = r#"{"name":"WAN-Policy","type":"string","jsonPath":".spec.wanPolicy"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WanImportSpec {
    /// The exporting gateway's address, as `mcwan status` prints it on the exporting cluster
    /// (GW_IP_ADDRESS): its WAN address, its SD-WAN ingress address or its tunnel address.
    pub ingress_gateway: String,
    /// The WANPolicy that carries the service (default: the cluster's default policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wan_policy: Option<String>,
    /// The service's ports, each with the exporting gateway's ingress port for it.
    #[schemars(length(min = 1))]
    pub ports: Vec<WanImportPort>,
}

/// One port of the imported service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WanImportPort {
    /// The port's name (as in the exported Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// TCP (default), UDP or SCTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The service port: the port of the ClusterSetIP.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The exporting gateway's ingress port for this service port. May be left out when the
    /// WANPolicy owns a single port (`spec.portCount` 1): then it is the policy's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub ingress_port: Option<i32>,
}
