//! A clusterset of KubeSim API servers, one `mcwan gateway --kube` process per cluster (each
//! with its own kubeconfig and its peers' in a directory, as deployed), builders for the
//! objects users write, and a DNS client for the gateways' answers.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use mcwan_kubesim::KubeSim;
use serde_json::{json, Value};

pub const MCS: &str = "multicluster.x-k8s.io/v1alpha1";
pub const DISCOVERY: &str = "discovery.k8s.io/v1";
pub const TIMEOUT: Duration = Duration::from_secs(20);

#[path = "../support/ports.rs"]
mod ports;
pub use ports::free_port;

/// One `mcwan gateway --kube` process.
pub struct Gateway {
    child: Child,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Cluster {
    pub id: String,
    pub sim: KubeSim,
    pub dns: SocketAddr,
    admin: u16,
    dir: tempfile::TempDir,
    gateway: Option<Gateway>,
}

impl Cluster {
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    pub fn peers_dir(&self) -> PathBuf {
        self.dir.path().join("peers")
    }
}

/// Several clusters, each with an API server and (once started) a gateway.
pub struct Clusterset {
    pub clusters: Vec<Cluster>,
    dir: tempfile::TempDir,
}

/// The clusterset.yaml of `n` clusters `cluster-1`..`cluster-n`.
fn clusterset_yaml(n: usize) -> String {
    let mut out = String::from("name: test\nwan: wireguard\nclusters:\n");
    for i in 1..=n {
        out.push_str(&format!(
            "  - id: cluster-{i}\n    index: {i}\n    gateway:\n      wanAddress: 192.0.2.{i}\n"
        ));
    }
    out
}

impl Drop for Clusterset {
    fn drop(&mut self) {
        if std::env::var_os("MCWAN_TEST_LOGS").is_some() {
            for i in 0..self.clusters.len() {
                eprintln!(
                    "---- {} gateway log ----\n{}",
                    self.clusters[i].id,
                    self.log(i)
                );
            }
        }
    }
}

impl Clusterset {
    /// `n` API servers with their ClusterProperty, the WANPolicy `gold` (ports 31000-31999)
    /// and the namespace `shop`; no gateway yet.
    pub async fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clusterset.yaml"), clusterset_yaml(n)).unwrap();
        let mut clusters = Vec::new();
        for i in 1..=n {
            let id = format!("cluster-{i}");
            let sim = KubeSim::start().await.unwrap();
            sim.create_json(json!({
                "apiVersion": "about.k8s.io/v1alpha1", "kind": "ClusterProperty",
                "metadata": {"name": "cluster.clusterset.k8s.io"}, "spec": {"value": id},
            }))
            .unwrap();
            sim.create_json(mk_policy("gold", "gold", 31000, 1000))
                .unwrap();
            sim.create_namespace("shop").unwrap();
            let cdir = tempfile::tempdir().unwrap();
            sim.write_kubeconfig(&cdir.path().join("kubeconfig"), &id)
                .unwrap();
            std::fs::create_dir(cdir.path().join("peers")).unwrap();
            clusters.push(Cluster {
                id,
                sim,
                dns: SocketAddr::from(([127, 0, 0, 1], free_port())),
                admin: free_port(),
                dir: cdir,
                gateway: None,
            });
        }
        for c in &clusters {
            for peer in clusters.iter().filter(|p| p.id != c.id) {
                peer.sim
                    .write_kubeconfig(&c.peers_dir().join(&peer.id), &peer.id)
                    .unwrap();
            }
        }
        Self { clusters, dir }
    }

    /// [`Clusterset::new`], then every gateway started and answering DNS.
    pub async fn start(n: usize) -> Self {
        let mut cs = Self::new(n).await;
        for i in 0..n {
            cs.start_gateway(i).await;
        }
        cs
    }

    pub fn sim(&self, i: usize) -> &KubeSim {
        &self.clusters[i].sim
    }

    /// GET `path` from cluster `i`'s gateway's admin endpoint (None while it does not answer).
    pub async fn admin_get(&self, i: usize, path: &str) -> Option<String> {
        let addr = format!("127.0.0.1:{}", self.clusters[i].admin);
        mcwan::admin::client::get(&addr, path).await.ok()
    }

    /// Starts (or restarts) the gateway of cluster `i` and waits until its DNS answers.
    pub async fn start_gateway(&mut self, i: usize) {
        self.stop_gateway(i);
        let c = &self.clusters[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(c.log())
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mcwan"))
            .args(["gateway", "--kube", "--clusterset"])
            .arg(self.dir.path().join("clusterset.yaml"))
            .arg("--peer-kubeconfigs")
            .arg(c.peers_dir())
            .args(["--dns-listen", &c.dns.to_string()])
            .args(["--admin-listen", &format!("127.0.0.1:{}", c.admin)])
            .args(["--health-port", "0"])
            .args(["--peer-sync-timeout", "5"])
            .env("KUBECONFIG", c.kubeconfig())
            .env("MCWAN_LOG", "info,mcwan=debug,hickory_server=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.clusters[i].gateway = Some(Gateway { child });
        let dns = self.clusters[i].dns;
        self.wait_for("the gateway answers DNS", || async move {
            dns_query(dns, "dns-version.clusterset.local.", RecordType::TXT)
                .await
                .ok()
        })
        .await;
    }

    pub fn stop_gateway(&mut self, i: usize) {
        self.clusters[i].gateway = None;
    }

    /// The whole log of cluster `i`'s gateway.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.clusters[i].log()).unwrap_or_default()
    }

    /// Every gateway's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for c in &self.clusters {
            let text = std::fs::read_to_string(c.log()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            out.push_str(&format!("---- {} gateway log (tail) ----\n", c.id));
            for l in tail {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Polls `probe` until it returns `Some`, failing the test with the gateways' logs after
    /// [`TIMEOUT`].
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for: {what}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The ClusterSetIP answer for `name.namespace` from cluster `i`'s gateway, once it has one.
    pub async fn wait_for_a(&self, i: usize, namespace: &str, name: &str) -> Vec<Ipv4Addr> {
        let dns = self.clusters[i].dns;
        let qname = format!("{name}.{namespace}.svc.clusterset.local.");
        self.wait_for(
            &format!("an A answer for {qname} in cluster {}", i + 1),
            || {
                let qname = qname.clone();
                async move { a_records(dns, &qname).await.filter(|a| !a.is_empty()) }
            },
        )
        .await
    }

    /// Waits until cluster `i`'s gateway says NXDOMAIN for `name.namespace`.
    pub async fn wait_for_nxdomain(&self, i: usize, namespace: &str, name: &str) {
        let dns = self.clusters[i].dns;
        let qname = format!("{name}.{namespace}.svc.clusterset.local.");
        self.wait_for(
            &format!("NXDOMAIN for {qname} in cluster {}", i + 1),
            || {
                let qname = qname.clone();
                async move {
                    match dns_query(dns, &qname, RecordType::A).await {
                        Ok(m) if m.metadata.response_code == ResponseCode::NXDomain => Some(()),
                        _ => None,
                    }
                }
            },
        )
        .await
    }

    /// Waits until an object exists in cluster `i` and `check` accepts it.
    pub async fn wait_for_object(
        &self,
        i: usize,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let sim = &self.clusters[i].sim;
        let what = format!(
            "{plural} {namespace:?}/{name} in cluster {} as expected",
            i + 1
        );
        let check = &check;
        self.wait_for(&what, || async move {
            sim.get_json(api_version, plural, namespace, name)
                .filter(|v| check(v))
        })
        .await
    }

    /// Waits until an object is gone from cluster `i`.
    pub async fn wait_for_absent(
        &self,
        i: usize,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) {
        let sim = &self.clusters[i].sim;
        let what = format!("{plural} {namespace:?}/{name} gone from cluster {}", i + 1);
        self.wait_for(&what, || async move {
            match sim.get_json(api_version, plural, namespace, name) {
                None => Some(()),
                Some(_) => None,
            }
        })
        .await
    }

    pub fn kubeconfig(&self, i: usize) -> PathBuf {
        self.clusters[i].kubeconfig()
    }

    pub fn peers_dir(&self, i: usize) -> PathBuf {
        self.clusters[i].peers_dir()
    }
}

/// One DNS query over UDP.
pub async fn dns_query(
    server: SocketAddr,
    qname: &str,
    rtype: RecordType,
) -> Result<Message, String> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let mut message = Message::query();
    message.metadata.id = rand_id();
    message.add_query(Query::query(Name::from_ascii(qname).unwrap(), rtype));
    let bytes = message.to_vec().unwrap();
    socket
        .send_to(&bytes, server)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let (len, _) = tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    Message::from_vec(&buf[..len]).map_err(|e| e.to_string())
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) & 0xffff) as u16
}

/// The A records for `qname`: `Some(addresses)` on NOERROR (empty if none), `None` otherwise.
pub async fn a_records(server: SocketAddr, qname: &str) -> Option<Vec<Ipv4Addr>> {
    let m = dns_query(server, qname, RecordType::A).await.ok()?;
    if m.metadata.response_code != ResponseCode::NoError {
        return None;
    }
    Some(
        m.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect(),
    )
}

pub fn mk_policy(name: &str, tunnel: &str, port: u16, count: u16) -> Value {
    json!({
        "apiVersion": "mcw.l7mp.io/v1alpha1", "kind": "WANPolicy",
        "metadata": {"name": name},
        "spec": {"tunnel": tunnel, "port": port, "portCount": count},
    })
}

/// A ClusterIP Service with TCP ports `(name, port)`.
pub fn mk_service(namespace: &str, name: &str, ports: &[(&str, u16)]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": ports.iter().map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP"})).collect::<Vec<_>>()},
    })
}

pub fn mk_headless(namespace: &str, name: &str, ports: &[(&str, u16)]) -> Value {
    let mut svc = mk_service(namespace, name, ports);
    svc["spec"]["clusterIP"] = json!("None");
    svc
}

/// The EndpointSlice of a Service: ready endpoints `(hostname, address)`, ports as the Service's.
pub fn mk_slice(
    namespace: &str,
    service: &str,
    endpoints: &[(&str, &str)],
    ports: &[(&str, u16)],
) -> Value {
    json!({
        "apiVersion": DISCOVERY, "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-abcde"), "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints.iter().map(|(h, a)| json!({"addresses": [a], "hostname": h, "conditions": {"ready": true}})).collect::<Vec<_>>(),
        "ports": ports.iter().map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP"})).collect::<Vec<_>>(),
    })
}

pub fn mk_export(namespace: &str, name: &str, policy: Option<&str>) -> Value {
    let mut export = json!({
        "apiVersion": MCS, "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": namespace}, "spec": {},
    });
    if let Some(p) = policy {
        export["metadata"]["annotations"] = json!({"mcw.l7mp.io/mc-wan-policy": p});
    }
    export
}

/// A Service with one endpoint, exported with `gold`, in `sim`.
pub fn export_service(sim: &KubeSim, namespace: &str, name: &str) {
    sim.create_json(mk_service(namespace, name, &[("http", 80)]))
        .unwrap();
    sim.create_json(mk_slice(
        namespace,
        name,
        &[("a", "10.1.0.1")],
        &[("http", 8080)],
    ))
    .unwrap();
    sim.create_json(mk_export(namespace, name, Some("gold")))
        .unwrap();
}

/// The condition of `type_` of a ServiceExport object.
pub fn condition<'a>(export: &'a Value, type_: &str) -> Option<&'a Value> {
    export["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub fn condition_is(export: &Value, type_: &str, status: &str) -> bool {
    condition(export, type_).is_some_and(|c| c["status"] == status)
}

/// Runs the mcwan binary with `args` against `kubeconfig`; returns (success, stdout, stderr).
pub fn mcwan(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("MCWAN_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
