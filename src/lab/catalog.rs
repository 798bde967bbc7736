//! The lab's static catalog: the seed's user stories on three clusters.
//!
//! - cluster-1 exports `secure/payment` on `sd-wan-priority-high` (tunnel class `business`) and
//!   `insecure/logging` as a plain MCS ServiceExport (no annotation), which takes the default
//!   policy `sd-wan-priority-low` (class `default`, marked `mcw.l7mp.io/is-default-policy`),
//!   and the L7 split of one
//!   payment backend as two exports, `secure/payment-high-prio` (high) and
//!   `secure/payment-low-prio` (low);
//! - cluster-3 exports `secure/payment` too, as the standby: both exports rank cluster-1 first
//!   (`mcw.l7mp.io/cluster-priority: cluster-1=1,cluster-3=2`);
//! - cluster-2 exports nothing: its client pods are the ones calling.
//!
//! Every service listens on 8080; each cluster's pods are addresses of its backend namespace
//! (see [`super::addr`]).

use std::fmt::Write as _;

use super::{addr, WanKind};

/// The WAN policies every cluster has: (name, tunnel class, WAN port).
pub const POLICIES: [(&str, &str, u16); 2] = [
    ("sd-wan-priority-high", "business", 31111),
    ("sd-wan-priority-low", "default", 31211),
];

/// The policy marked default: exports that name none (logging) take it.
pub const DEFAULT_POLICY: &str = POLICIES[1].0;

/// How many ingress ports each policy owns from its WAN port on.
const PORT_COUNT: u16 = 10;

/// The port every lab service listens on.
pub const SERVICE_PORT: u16 = 8080;

/// An exported service of the lab: (namespace, name, policy, pod host numbers, priority).
struct Export {
    namespace: &'static str,
    name: &'static str,
    policy: &'static str,
    pods: &'static [u8],
    priority: Option<&'static str>,
}

const RANKING: &str = "cluster-1=1,cluster-3=2";

fn exports(cluster: u8) -> Vec<Export> {
    let e = |namespace, name, policy, pods, priority| Export {
        namespace,
        name,
        policy,
        pods,
        priority,
    };
    match cluster {
        1 => vec![
            e("secure", "payment", POLICIES[0].0, &[11, 12], Some(RANKING)),
            e("insecure", "logging", POLICIES[1].0, &[13], None),
            e(
                "secure",
                "payment-high-prio",
                POLICIES[0].0,
                &[11, 12],
                None,
            ),
            e("secure", "payment-low-prio", POLICIES[1].0, &[11, 12], None),
        ],
        3 => vec![e(
            "secure",
            "payment",
            POLICIES[0].0,
            &[11, 12],
            Some(RANKING),
        )],
        _ => Vec::new(),
    }
}

/// The pod addresses of a cluster's backend namespace.
pub fn pods(cluster: u8) -> Vec<String> {
    let mut hosts: Vec<u8> = exports(cluster)
        .iter()
        .flat_map(|e| e.pods.iter().copied())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts.iter().map(|h| addr::pod(cluster, *h)).collect()
}

/// `clusterset.yaml`. `keys` holds each cluster's WireGuard public key (WireGuard mode).
pub fn clusterset(wan: WanKind, clusters: u8, keys: &[String]) -> String {
    let mut out = String::from(
        "# The mcwan lab: three clusters in network namespaces on one host.\nname: lab\n",
    );
    match wan {
        WanKind::Wireguard => out.push_str("wan: wireguard\ninnerNetwork: 10.255.0.0/16\n"),
        WanKind::Sdwan => out.push_str("wan: sdwan\n"),
    }
    out.push_str("clusters:\n");
    for i in 1..=clusters {
        let _ = writeln!(out, "  - id: cluster-{i}\n    index: {i}\n    gateway:");
        match wan {
            WanKind::Wireguard => {
                let key = keys.get(usize::from(i - 1)).map_or("", String::as_str);
                let _ = writeln!(
                    out,
                    "      wanAddress: {}\n      wireguardPublicKey: \"{key}\"",
                    addr::wan(i)
                );
            }
            WanKind::Sdwan => {
                let _ = writeln!(
                    out,
                    "      wanAddress: {}\n      sdwanEdges:\n        business: {}\n        default: {}",
                    addr::ingress(i),
                    addr::edge(i, "business"),
                    addr::edge(i, "default")
                );
            }
        }
    }
    out
}

/// The manifests of one cluster, as (file name, YAML).
pub fn manifests(cluster: u8) -> Vec<(String, String)> {
    let mut files = vec![(
        "namespaces.yaml".to_owned(),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: secure}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: insecure}\n".to_owned(),
    )];
    let policies: Vec<String> = POLICIES
        .iter()
        .map(|(name, tunnel, port)| {
            let default = if *name == DEFAULT_POLICY {
                ", annotations: {mcw.l7mp.io/is-default-policy: \"true\"}"
            } else {
                ""
            };
            format!("apiVersion: mcw.l7mp.io/v1alpha1\nkind: WANPolicy\nmetadata: {{name: {name}{default}}}\nspec: {{tunnel: {tunnel}, port: {port}, portCount: {PORT_COUNT}}}\n")
        })
        .collect();
    files.push(("wanpolicies.yaml".to_owned(), policies.join("---\n")));
    for e in exports(cluster) {
        files.push((
            format!("{}.{}.yaml", e.name, e.namespace),
            service(cluster, &e),
        ));
    }
    files
}

fn service(cluster: u8, e: &Export) -> String {
    let Export {
        namespace,
        name,
        policy,
        pods,
        priority,
    } = e;
    let endpoints: String = pods
        .iter()
        .map(|h| {
            format!(
                "  - addresses: [\"{}\"]\n    conditions: {{ready: true}}\n",
                addr::pod(cluster, *h)
            )
        })
        .collect();
    // logging is exported as the MCS API examples do it: no annotation, the default policy.
    let plain = *name == "logging" && *policy == DEFAULT_POLICY;
    let mut annotations: Vec<String> = Vec::new();
    if !plain {
        annotations.push(format!("mcw.l7mp.io/mc-wan-policy: {policy}"));
    }
    if let Some(p) = priority {
        annotations.push(format!("mcw.l7mp.io/cluster-priority: \"{p}\""));
    }
    let annotations = match annotations.is_empty() {
        true => String::new(),
        false => format!(", annotations: {{{}}}", annotations.join(", ")),
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec: {{ports: [{{name: http, port: {SERVICE_PORT}}}]}}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}-1, namespace: {namespace}, labels: {{kubernetes.io/service-name: {name}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {SERVICE_PORT}}}]\nendpoints:\n{endpoints}---\n\
         apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\n\
         metadata: {{name: {name}, namespace: {namespace}{annotations}}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab's catalog as `mcwan demo` writes it, planned for cluster-2: logging, exported
    /// without an annotation, comes through the default policy's class.
    #[test]
    fn the_plain_logging_export_takes_the_default_policy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("clusterset.yaml"),
            clusterset(WanKind::Sdwan, 3, &[]),
        )
        .unwrap();
        for i in 1..=3 {
            let cluster = dir.path().join(format!("cluster-{i}"));
            std::fs::create_dir_all(&cluster).unwrap();
            for (file, text) in manifests(i) {
                std::fs::write(cluster.join(file), text).unwrap();
            }
        }
        let catalog = crate::catalog::load_dir(dir.path()).unwrap();
        let state = crate::desired::compute(crate::desired::Inputs {
            catalog: &catalog,
            cluster_id: "cluster-1",
            config: &Default::default(),
            previous: &Default::default(),
            down: &Default::default(),
        });
        let logging = state
            .exports
            .iter()
            .find(|e| e.key.name == "logging")
            .unwrap();
        assert_eq!(logging.tunnel.as_deref(), Some("default"));
        let valid = logging.condition("Valid").unwrap();
        assert!(
            valid
                .message
                .contains("marked mcw.l7mp.io/is-default-policy"),
            "{valid:?}"
        );
        assert!(
            state
                .problems
                .iter()
                .all(|p| p.severity != crate::problem::Severity::Error),
            "{:#?}",
            state.problems
        );
    }
}
