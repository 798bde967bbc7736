//! `mcwan diagnose`: the checks an operator runs first when a clusterset misbehaves, each with
//! a verdict (`ok`, `warn`, `fail`) and a one-line reason; the exit code is 1 when one fails.
//!
//! | check | what it asks |
//! |---|---|
//! | `api/<cluster>` | this cluster's and each peer's API server answers `/version` |
//! | `clock/<cluster>` | the API server's `Date` header against this machine's clock |
//! | `crd/<name>` | each mcwan CRD is established and its version served (a list answers) |
//! | `access/<peer>` | the peer's kubeconfig (Secret `mcwan-peers`) may list ServiceExports |
//! | `gateway/readyz` | the gateway's admin endpoint says it is ready |
//! | `dns/gateway`, `dns/cluster` | the clusterset zone's SOA through the gateway's DNS server, and through the cluster DNS (CoreDNS) with the same SOA |
//! | `wan/<peer>/<class>` | the peer gateway's published ingress ports of each tunnel class, probed (TCP connect; UDP: no ICMP refusal) |
//!
//! Found rather than given (`--gateway`, `--dns`, `--cluster-dns`), the gateway pod's address
//! and the DNS Services' ClusterIPs are reachable only from inside the cluster (a node, a pod):
//! from elsewhere those checks warn instead of failing. The WAN probes go from where diagnose
//! runs, so they say most on the gateway node (run diagnose in each cluster for each way).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::BodyExt as _;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde::Serialize;

use super::block_on;
use super::join::{NAMESPACE, PEERS_SECRET};
use crate::cli::Output;
use crate::crd;
use crate::kube::{cluster, ANNOTATION_TUNNEL_CLASS, LABEL_SLICE_ROLE, SLICE_INGRESS};

/// A clock this far off the API server's is worth a look (the `Date` header has a resolution
/// of one second).
const SKEW_WARN: Duration = Duration::from_secs(5);
/// This far off, certificates and tokens may count as not yet valid or expired.
const SKEW_FAIL: Duration = Duration::from_secs(60);
/// At most this many ports are probed per peer and class.
const MAX_PROBES: usize = 32;

#[derive(Debug, Args)]
pub struct DiagnoseCmd {
    /// The kubeconfig context (default: the current context).
    #[arg(long, env = "MCWAN_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// A directory of peer kubeconfigs named by cluster ID (the gateway's); default: the
    /// Secret mcwan-system/mcwan-peers of this cluster.
    #[arg(long, env = "MCWAN_PEER_KUBECONFIGS")]
    pub peer_kubeconfigs: Option<PathBuf>,
    /// The gateway's admin endpoint (host:port); default: the gateway pod's address, port 9641.
    #[arg(long, env = "MCWAN_GATEWAY")]
    pub gateway: Option<String>,
    /// The gateway's DNS server (host:port); default: Service mcwan-system/mcwan-dns, port 53.
    #[arg(long)]
    pub dns: Option<SocketAddr>,
    /// The cluster DNS (CoreDNS, host:port); default: Service kube-system/kube-dns, port 53.
    #[arg(long)]
    pub cluster_dns: Option<SocketAddr>,
    /// The clusterset zone.
    #[arg(long, default_value = "clusterset.local")]
    pub zone: String,
    /// Do not probe the peer gateways' ingress ports.
    #[arg(long)]
    pub no_wan_probe: bool,
    /// How long each check may wait for an answer (a duration: 3s, 500ms; a bare number is
    /// seconds).
    #[arg(long, default_value = "3s", value_parser = crate::cli::parse_seconds, value_name = "DURATION")]
    pub timeout: Duration,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, verdict: Verdict, reason: impl Into<String>) {
        let reason: String = reason.into();
        // One line, whatever a server said.
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        self.checks.push(Check {
            name: name.into(),
            verdict,
            reason,
        });
    }

    pub fn table(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!("{:width$}  VERDICT  REASON\n", "CHECK");
        for c in &self.checks {
            out.push_str(&format!(
                "{:width$}  {:7}  {}\n",
                c.name,
                c.verdict.as_str(),
                crate::render::escape_controls(&c.reason, false)
            ));
        }
        out
    }
}

/// Runs every check and prints the report; exit code 1 if one failed.
pub fn diagnose(cmd: DiagnoseCmd) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let report = run(&cmd).await;
        match cmd.output {
            Output::Table => print!("{}", report.table()),
            Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        }
        Ok(if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

fn with_timeout(mut config: kube::Config, timeout: Duration) -> kube::Config {
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    config
}

/// The peers' clients: from `--peer-kubeconfigs`, else from the Secret `mcwan-peers`.
async fn peers(
    cmd: &DiagnoseCmd,
    local: &Client,
    own: &str,
    timeout: Duration,
    report: &mut Report,
) -> Vec<(String, Client)> {
    let mut texts: Vec<(String, Result<String, String>)> = Vec::new();
    if let Some(dir) = &cmd.peer_kubeconfigs {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Some(id) = cluster::peer_id_of(&name) else {
                        continue;
                    };
                    if id == own || !std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
                        continue;
                    }
                    let text = std::fs::read_to_string(entry.path()).map_err(|e| e.to_string());
                    texts.push((id.to_owned(), text));
                }
            }
            Err(e) => report.add(
                "peers",
                Verdict::Fail,
                format!(
                    "cannot read the peer kubeconfig directory {}: {e}",
                    dir.display()
                ),
            ),
        }
    } else {
        let api = Api::<Secret>::namespaced(local.clone(), NAMESPACE);
        match tokio::time::timeout(timeout, api.get_opt(PEERS_SECRET)).await {
            Ok(Ok(Some(secret))) => {
                for (id, bytes) in secret.data.unwrap_or_default() {
                    if id == own {
                        continue;
                    }
                    let text = String::from_utf8(bytes.0).map_err(|_| "not UTF-8 text".to_owned());
                    texts.push((id, text));
                }
            }
            Ok(Ok(None)) => report.add(
                "peers",
                Verdict::Warn,
                format!("no Secret {NAMESPACE}/{PEERS_SECRET}: this gateway watches no peer (mcwan join --context PEER --peer-context THIS)"),
            ),
            Ok(Err(e)) => report.add(
                "peers",
                Verdict::Warn,
                format!("cannot read Secret {NAMESPACE}/{PEERS_SECRET}: {e} (give --peer-kubeconfigs)"),
            ),
            Err(_) => report.add(
                "peers",
                Verdict::Warn,
                format!("no answer reading Secret {NAMESPACE}/{PEERS_SECRET}"),
            ),
        }
    }
    texts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (id, text) in texts {
        let client = async {
            let text = text?;
            let config = Kubeconfig::from_yaml(&text).map_err(|e| e.to_string())?;
            let config =
                kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            Client::try_from(with_timeout(config, timeout)).map_err(|e| e.to_string())
        }
        .await;
        match client {
            Ok(c) => out.push((id, c)),
            Err(e) => report.add(
                format!("api/{id}"),
                Verdict::Fail,
                format!("peer {id}: its kubeconfig cannot be used: {e}"),
            ),
        }
    }
    out
}

/// `GET /version`: the server's version and its clock's offset from ours (None without a
/// usable `Date` header).
async fn version(client: &Client) -> anyhow::Result<(String, Option<f64>, Duration)> {
    let request = hyper::Request::get("/version").body(kube::client::Body::empty())?;
    let sent = Instant::now();
    let before = k8s_openapi::jiff::Timestamp::now();
    let response = client.send(request).await?;
    let rtt = sent.elapsed();
    let status = response.status();
    let date = response
        .headers()
        .get(hyper::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| {
            k8s_openapi::jiff::fmt::rfc2822::DateTimeParser::new()
                .parse_timestamp(d)
                .ok()
        });
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "/version: HTTP {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let git: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let version = git["gitVersion"].as_str().unwrap_or("?").to_owned();
    // The Date was taken between sending and receiving: compare with the middle.
    let skew = date.map(|d| {
        let mid = before.as_millisecond() as f64 + rtt.as_secs_f64() * 500.0;
        (d.as_millisecond() as f64 - mid) / 1000.0
    });
    Ok((version, skew, rtt))
}

async fn check_api(name: &str, client: &Client, timeout: Duration, report: &mut Report) -> bool {
    match tokio::time::timeout(timeout, version(client)).await {
        Ok(Ok((version, skew, rtt))) => {
            report.add(
                format!("api/{name}"),
                Verdict::Ok,
                format!("API server {version} answers in {} ms", rtt.as_millis()),
            );
            let (verdict, reason) = clock_verdict(skew);
            report.add(format!("clock/{name}"), verdict, reason);
            true
        }
        Ok(Err(e)) => {
            report.add(
                format!("api/{name}"),
                Verdict::Fail,
                format!("{name}'s API server does not answer: {e:#}"),
            );
            false
        }
        Err(_) => {
            report.add(
                format!("api/{name}"),
                Verdict::Fail,
                format!("{name}'s API server does not answer within {:?}", timeout),
            );
            false
        }
    }
}

/// The verdict on a clock offset of `skew` seconds (API server minus local).
pub fn clock_verdict(skew: Option<f64>) -> (Verdict, String) {
    let Some(skew) = skew else {
        return (
            Verdict::Warn,
            "the API server sent no usable Date header".to_owned(),
        );
    };
    let off = Duration::from_secs_f64(skew.abs());
    let text = format!(
        "the API server's clock is {:.1} s {} this machine's",
        skew.abs(),
        if skew >= 0.0 { "ahead of" } else { "behind" }
    );
    if off >= SKEW_FAIL {
        (
            Verdict::Fail,
            format!("{text}: certificates and tokens may be judged invalid"),
        )
    } else if off >= SKEW_WARN {
        (
            Verdict::Warn,
            format!("{text}: synchronise the clocks (NTP)"),
        )
    } else {
        (Verdict::Ok, format!("{text} (within {:?})", SKEW_WARN))
    }
}

/// The CRD `want` is installed, established, its versions served, and a list of it answers.
async fn check_crd(client: &Client, want: &CustomResourceDefinition, report: &mut Report) {
    let name = want.metadata.name.clone().unwrap_or_default();
    let check = format!("crd/{name}");
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = match crds.get_opt(&name).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return report.add(
                check,
                Verdict::Fail,
                "not installed: kubectl apply --server-side -k deploy/crds (or mcwan crds)",
            )
        }
        Err(e) => return report.add(check, Verdict::Fail, format!("cannot read it: {e}")),
    };
    let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
    for type_ in ["Established", "NamesAccepted"] {
        if !conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
        {
            let why = conditions
                .iter()
                .find(|c| c.type_ == type_)
                .and_then(|c| c.message.clone())
                .unwrap_or_default();
            return report.add(
                check,
                Verdict::Fail,
                format!("installed but not {type_}: {why}"),
            );
        }
    }
    for version in want.spec.versions.iter().map(|v| v.name.as_str()) {
        if !crd
            .spec
            .versions
            .iter()
            .any(|v| v.name == version && v.served)
        {
            return report.add(
                check,
                Verdict::Fail,
                format!("version {version} is not served: install this mcwan's CRDs (mcwan crds)"),
            );
        }
        let resource = ApiResource {
            group: crd.spec.group.clone(),
            version: version.to_owned(),
            api_version: format!("{}/{version}", crd.spec.group),
            kind: crd.spec.names.kind.clone(),
            plural: crd.spec.names.plural.clone(),
        };
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        if let Err(e) = api.list(&ListParams::default().limit(1)).await {
            return report.add(
                check,
                Verdict::Fail,
                format!("established, but listing {version} fails: {e}"),
            );
        }
    }
    let versions: Vec<&str> = want.spec.versions.iter().map(|v| v.name.as_str()).collect();
    report.add(
        check,
        Verdict::Ok,
        format!("established, {} served", versions.join(", ")),
    );
}

/// The peer's kubeconfig may read what the gateway watches (and, being the peer reader's,
/// nothing more: that is not tried).
async fn check_access(id: &str, client: &Client, report: &mut Report) -> bool {
    let api = Api::<crd::ServiceExport>::all(client.clone());
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => {
            report.add(
                format!("access/{id}"),
                Verdict::Ok,
                "the peer kubeconfig lists ServiceExports",
            );
            true
        }
        Err(e) => {
            report.add(
                format!("access/{id}"),
                Verdict::Fail,
                format!("peer {id}'s API server answers, but its kubeconfig cannot list ServiceExports: {e}"),
            );
            false
        }
    }
}

/// The gateway pod's address (host network: the node's) and its admin and DNS ports.
async fn gateway_pod(client: &Client) -> Option<(String, IpAddr, u16, u16)> {
    let pods = Api::<Pod>::namespaced(client.clone(), NAMESPACE);
    let params = ListParams::default().labels("app.kubernetes.io/component=gateway");
    let list = pods.list(&params).await.ok()?;
    list.items.into_iter().find_map(|pod| {
        let name = pod.metadata.name.clone()?;
        let ip: IpAddr = pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
        let ports: Vec<_> = pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.clone().unwrap_or_default())
            .collect();
        let port = |n: &str, default: u16| {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(n))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .unwrap_or(default)
        };
        Some((name, ip, port("admin", 9641), port("dns", 10053)))
    })
}

async fn check_readyz(addr: &str, found: bool, timeout: Duration, report: &mut Report) {
    let unreachable = if found { Verdict::Warn } else { Verdict::Fail };
    let answer = tokio::time::timeout(timeout, crate::admin::client::get(addr, "/readyz")).await;
    match answer {
        Ok(Ok(body)) => report.add(
            "gateway/readyz",
            Verdict::Ok,
            format!("{addr}: ready: {}", first_line(&body)),
        ),
        Ok(Err(e)) => {
            let text = format!("{e:#}");
            if text.contains("HTTP") {
                report.add(
                    "gateway/readyz",
                    Verdict::Fail,
                    format!("{addr}: not ready: {}", text.replace('\n', "; ")),
                );
            } else {
                report.add(
                    "gateway/readyz",
                    unreachable,
                    format!("{addr}: {text}{}", if found { " (found in the cluster: run diagnose on a node, or kubectl port-forward and --gateway)" } else { "" }),
                );
            }
        }
        Err(_) => report.add(
            "gateway/readyz",
            unreachable,
            format!("{addr}: no answer within {:?}", timeout),
        ),
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// The zone's SOA from the DNS server at `server` (UDP).
pub async fn soa(server: SocketAddr, zone: &str, timeout: Duration) -> Result<String, String> {
    let name = Name::from_ascii(format!("{}.", zone.trim_end_matches('.')))
        .map_err(|e| format!("zone {zone:?}: {e}"))?;
    let bind: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    let mut message = Message::query();
    let id = random_id();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), RecordType::SOA));
    let bytes = message.to_vec().map_err(|e| e.to_string())?;
    socket.send(&bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let len = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| format!("no answer within {:?}", timeout))?
            .map_err(|e| e.to_string())?;
        let Ok(answer) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        if answer.metadata.id != id {
            continue;
        }
        if answer.metadata.response_code != ResponseCode::NoError {
            return Err(format!("{} for {name} SOA", answer.metadata.response_code));
        }
        return answer
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(format!("{} {}", soa.mname, soa.serial)),
                _ => None,
            })
            .ok_or_else(|| format!("no SOA record for {name} in the answer"));
    }
}

fn random_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) & 0xffff) as u16
}

async fn service_address(
    client: &Client,
    namespace: &str,
    name: &str,
    port: u16,
) -> Option<SocketAddr> {
    let api = Api::<Service>::namespaced(client.clone(), namespace);
    let svc = api.get_opt(name).await.ok()??;
    let ip: IpAddr = svc.spec?.cluster_ip?.parse().ok()?;
    Some((ip, port).into())
}

async fn check_dns(
    cmd: &DiagnoseCmd,
    local: Option<&Client>,
    pod_dns: Option<SocketAddr>,
    timeout: Duration,
    report: &mut Report,
) {
    let zone = cmd.zone.trim_end_matches('.');
    let (gateway, found) = match cmd.dns {
        Some(a) => (Some(a), false),
        None => match local {
            Some(c) => match service_address(c, NAMESPACE, "mcwan-dns", 53).await {
                Some(a) => (Some(a), true),
                None => (pod_dns, true),
            },
            None => (None, true),
        },
    };
    let mut gateway_soa = None;
    match gateway {
        None => report.add(
            "dns/gateway",
            Verdict::Warn,
            format!(
                "no Service {NAMESPACE}/mcwan-dns and no gateway pod found: give --dns ADDR:PORT"
            ),
        ),
        Some(addr) => match soa(addr, zone, timeout).await {
            Ok(s) => {
                report.add(
                    "dns/gateway",
                    Verdict::Ok,
                    format!("{addr} answers {zone} SOA ({s})"),
                );
                gateway_soa = Some(s);
            }
            Err(e) => report.add(
                "dns/gateway",
                if found && e.starts_with("no answer") {
                    Verdict::Warn
                } else {
                    Verdict::Fail
                },
                format!(
                    "{addr} (the gateway's DNS): {e}{}",
                    if found {
                        " (found in the cluster: reachable from inside it only)"
                    } else {
                        ""
                    }
                ),
            ),
        },
    }
    let (cluster_dns, found) = match cmd.cluster_dns {
        Some(a) => (Some(a), false),
        None => match local {
            Some(c) => (
                service_address(c, "kube-system", "kube-dns", 53).await,
                true,
            ),
            None => (None, true),
        },
    };
    match cluster_dns {
        None => report.add(
            "dns/cluster",
            Verdict::Warn,
            "no Service kube-system/kube-dns found: give --cluster-dns ADDR:PORT",
        ),
        Some(addr) => match soa(addr, zone, timeout).await {
            Ok(s) => match &gateway_soa {
                Some(g) if *g != s => report.add(
                    "dns/cluster",
                    Verdict::Fail,
                    format!("{addr} answers {zone} SOA {s}, not the gateway's ({g}): the cluster DNS does not forward {zone} to the gateway (deploy/coredns/clusterset.server)"),
                ),
                Some(_) => report.add(
                    "dns/cluster",
                    Verdict::Ok,
                    format!("{addr} answers {zone} with the gateway's SOA ({s})"),
                ),
                None => report.add(
                    "dns/cluster",
                    Verdict::Warn,
                    format!("{addr} answers {zone} SOA ({s}); the gateway's own answer is not known to compare"),
                ),
            },
            Err(e) => report.add(
                "dns/cluster",
                if found && e.starts_with("no answer") { Verdict::Warn } else { Verdict::Fail },
                format!("{addr} (the cluster DNS): {e}{}", if e.contains("NXDomain") || e.contains("Non-Existent") { ": it does not forward the zone to the gateway (deploy/coredns/clusterset.server)" } else if found { " (found in the cluster: reachable from inside it only)" } else { "" }),
            ),
        },
    }
}

/// The ingress ports a peer publishes, per tunnel class: (address, port, protocol).
async fn published_ingress(
    client: &Client,
) -> anyhow::Result<Vec<(String, Vec<(IpAddr, u16, String)>)>> {
    let api = Api::<EndpointSlice>::all(client.clone());
    let params = ListParams::default().labels(&format!("{LABEL_SLICE_ROLE}={SLICE_INGRESS}"));
    let slices = api
        .list(&params)
        .await
        .context("cannot list its ingress EndpointSlices")?;
    let mut by_class: std::collections::BTreeMap<
        String,
        std::collections::BTreeSet<(IpAddr, u16, String)>,
    > = Default::default();
    for slice in slices.items {
        let class = slice
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_TUNNEL_CLASS))
            .cloned()
            .unwrap_or_else(|| "-".to_owned());
        let ports: Vec<(u16, String)> = slice
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                Some((
                    u16::try_from(p.port?).ok()?,
                    p.protocol.unwrap_or_else(|| "TCP".to_owned()),
                ))
            })
            .collect();
        let entry = by_class.entry(class).or_default();
        for endpoint in slice.endpoints.unwrap_or_default() {
            for address in endpoint
                .addresses
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
            {
                for (port, protocol) in &ports {
                    entry.insert((address, *port, protocol.clone()));
                }
            }
        }
    }
    Ok(by_class
        .into_iter()
        .map(|(c, s)| (c, s.into_iter().collect()))
        .collect())
}

/// What a probe of one port saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// TCP: connected. UDP: no ICMP refusal.
    Open,
    Refused,
    Silent,
}

pub async fn probe(address: IpAddr, port: u16, protocol: &str, timeout: Duration) -> Probe {
    let target = SocketAddr::new(address, port);
    if protocol.eq_ignore_ascii_case("UDP") {
        let bind: SocketAddr = if address.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(socket) = tokio::net::UdpSocket::bind(bind).await else {
            return Probe::Silent;
        };
        if socket.connect(target).await.is_err() || socket.send(&[]).await.is_err() {
            return Probe::Refused;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(timeout.min(Duration::from_secs(1)), socket.recv(&mut buf)).await
        {
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
            _ => Probe::Open,
        }
    } else {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
            Ok(Ok(_)) => Probe::Open,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
            _ => Probe::Silent,
        }
    }
}

async fn check_wan(id: &str, client: &Client, timeout: Duration, report: &mut Report) {
    let classes = match published_ingress(client).await {
        Ok(c) => c,
        Err(e) => {
            return report.add(format!("wan/{id}"), Verdict::Warn, format!("{e:#}"));
        }
    };
    if classes.is_empty() {
        return report.add(
            format!("wan/{id}"),
            Verdict::Ok,
            format!("{id} publishes no ingress port (it exports nothing): nothing to probe"),
        );
    }
    for (class, ports) in classes {
        let probed: Vec<_> = ports.into_iter().take(MAX_PROBES).collect();
        let results = futures::future::join_all(
            probed
                .iter()
                .map(|(a, p, proto)| probe(*a, *p, proto, timeout)),
        )
        .await;
        let show =
            |(a, p, proto): &(IpAddr, u16, String)| format!("{}/{proto}", SocketAddr::new(*a, *p));
        let refused: Vec<String> = probed
            .iter()
            .zip(&results)
            .filter(|(_, r)| **r == Probe::Refused)
            .map(|(t, _)| show(t))
            .collect();
        let silent: Vec<String> = probed
            .iter()
            .zip(&results)
            .filter(|(_, r)| **r == Probe::Silent)
            .map(|(t, _)| show(t))
            .collect();
        let open = results.iter().filter(|r| **r == Probe::Open).count();
        let name = format!("wan/{id}/{class}");
        let total = probed.len();
        if !refused.is_empty() {
            report.add(
                name,
                Verdict::Fail,
                format!(
                    "{open} of {total} ingress ports answer; refused: {}",
                    refused.join(", ")
                ),
            );
        } else if !silent.is_empty() {
            report.add(
                name,
                Verdict::Warn,
                format!("{open} of {total} ingress ports answer; no answer within {:?} (filtered, or reachable from the gateway node only): {}", timeout, silent.join(", ")),
            );
        } else {
            let all: Vec<String> = probed.iter().map(show).collect();
            report.add(
                name,
                Verdict::Ok,
                format!(
                    "{total} ingress ports answer (UDP: no refusal): {}",
                    all.join(", ")
                ),
            );
        }
    }
}

/// Every check, in order.
pub async fn run(cmd: &DiagnoseCmd) -> Report {
    let timeout = cmd.timeout.max(Duration::from_millis(100));
    let mut report = Report::default();
    let local = match cluster::local_client(cmd.context.as_deref()).await {
        Ok(c) => Some(c),
        Err(e) => {
            report.add("api/local", Verdict::Fail, e.to_string());
            None
        }
    };
    let mut pod = None;
    if let Some(client) = &local {
        let id = match tokio::time::timeout(timeout, cluster::cluster_id(client, None)).await {
            Ok(Ok((id, _))) => id,
            _ => "local".to_owned(),
        };
        if check_api(&id, client, timeout, &mut report).await {
            for want in crate::render::crds() {
                let name = want.metadata.name.clone().unwrap_or_default();
                let mut one = Report::default();
                match tokio::time::timeout(timeout, check_crd(client, &want, &mut one)).await {
                    Ok(()) => report.checks.extend(one.checks),
                    Err(_) => report.add(
                        format!("crd/{name}"),
                        Verdict::Fail,
                        format!("no answer within {timeout:?}"),
                    ),
                }
            }
            if id == "local" {
                report.add(
                    "cluster-id",
                    Verdict::Fail,
                    "no usable ClusterProperty cluster.clusterset.k8s.io: the gateway needs this cluster's ID",
                );
            }
            let peers = peers(cmd, client, &id, timeout, &mut report).await;
            for (peer, peer_client) in &peers {
                if check_api(peer, peer_client, timeout, &mut report).await
                    && check_access(peer, peer_client, &mut report).await
                    && !cmd.no_wan_probe
                {
                    check_wan(peer, peer_client, timeout, &mut report).await;
                }
            }
            if cmd.gateway.is_none() || cmd.dns.is_none() {
                pod = gateway_pod(client).await;
            }
        }
    }
    match (&cmd.gateway, &pod) {
        (Some(addr), _) => check_readyz(addr, false, timeout, &mut report).await,
        (None, Some((_, ip, admin, _))) => {
            check_readyz(&SocketAddr::new(*ip, *admin).to_string(), true, timeout, &mut report).await
        }
        (None, None) => report.add(
            "gateway/readyz",
            Verdict::Warn,
            format!("no gateway pod in {NAMESPACE} (label app.kubernetes.io/component=gateway): give --gateway ADDR:PORT"),
        ),
    }
    let pod_dns = pod.map(|(_, ip, _, dns)| SocketAddr::new(ip, dns));
    check_dns(cmd, local.as_ref(), pod_dns, timeout, &mut report).await;
    report.ok = report.checks.iter().all(|c| c.verdict != Verdict::Fail);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_offsets_are_judged_by_size() {
        assert_eq!(clock_verdict(Some(0.4)).0, Verdict::Ok);
        assert_eq!(clock_verdict(Some(-7.0)).0, Verdict::Warn);
        assert_eq!(clock_verdict(Some(120.0)).0, Verdict::Fail);
        assert_eq!(clock_verdict(None).0, Verdict::Warn);
        assert!(clock_verdict(Some(-7.0)).1.contains("behind"));
    }

    #[test]
    fn an_http_date_parses() {
        let t = k8s_openapi::jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp("Mon, 07 Dec 2026 06:30:00 GMT");
        assert!(t.is_ok(), "{t:?}");
    }

    #[test]
    fn reasons_are_one_line() {
        let mut r = Report::default();
        r.add("x", Verdict::Ok, "a\nb  c");
        assert_eq!(r.checks[0].reason, "a b c");
        assert!(r.table().lines().count() == 2);
    }
}
