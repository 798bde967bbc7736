//! A clusterset of API servers, one `mcwan gateway --kube` process per cluster (each with its
//! own kubeconfig and its peers' in a directory, as deployed), builders for the objects users
//! write, and a DNS client for the gateways' answers.
//!
//! Every scenario runs against both API servers ([`Backend`]): the real one (kube-apiserver and
//! etcd of `testbed/`, RBAC on) and KubeSim, so that where they differ a test fails. The
//! gateways reach a real API server through a [`Partition`] proxy the tests can cut, the way a
//! network outage looks to a gateway; the tests themselves talk to it directly.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use mcwan_kubesim::KubeSim;
use serde_json::{json, Value};
use tokio::sync::watch;

pub const MCS: &str = "multicluster.x-k8s.io/v1alpha1";
pub const DISCOVERY: &str = "discovery.k8s.io/v1";
pub const TIMEOUT: Duration = Duration::from_secs(20);

#[path = "../support/ports.rs"]
mod ports;
pub use ports::free_port;

#[path = "../support/testbed.rs"]
pub mod testbed;
use testbed::ApiServer;

/// Which API server plays the clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// kubesim/, in this test process.
    KubeSim,
    /// kube-apiserver and etcd (`testbed/apiserver`), one process per cluster.
    Real,
}

/// Runs each named scenario `async fn name(backend: Backend)` as two tests, `name::kubesim`
/// and `name::kube_apiserver`.
#[macro_export]
macro_rules! on_both_api_servers {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kubesim() {
                super::$scenario($crate::support::Backend::KubeSim).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kube_apiserver() {
                super::$scenario($crate::support::Backend::Real).await
            }
        }
    )*};
}

/// A TCP proxy in front of a real API server: the gateways' way to it, which [`Partition::cut`]
/// breaks (open connections closed, new ones closed as soon as accepted) until
/// [`Partition::heal`].
pub struct Partition {
    port: u16,
    cut: Arc<watch::Sender<bool>>,
}

impl Partition {
    pub async fn to(target: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(watch::Sender::new(false));
        let state = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *state.borrow() {
                    continue; // dropped: the client sees the connection closed
                }
                let mut cut = state.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Self { port, cut }
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

/// One cluster's API server, as the tests see it.
pub enum ClusterApi {
    Sim(KubeSim),
    Real {
        server: std::sync::Mutex<ApiServer>,
        client: kube::Client,
        partition: Partition,
    },
}

fn sim_error(what: &str, obj: &Value, e: impl std::fmt::Display) -> String {
    format!(
        "{what} {} {}/{}: {e}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["namespace"].as_str().unwrap_or(""),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

impl ClusterApi {
    /// A new, empty API server; the real one with mcwan's CRDs installed.
    pub async fn start(backend: Backend, name: &str) -> Self {
        match backend {
            Backend::KubeSim => Self::Sim(KubeSim::start().await.unwrap()),
            Backend::Real => {
                let server = tokio::task::spawn_blocking({
                    let name = name.to_owned();
                    move || ApiServer::start(&name)
                })
                .await
                .unwrap();
                let client = server.client().await;
                testbed::install_crds(&client).await;
                let target: SocketAddr = server
                    .server()
                    .trim_start_matches("https://")
                    .parse()
                    .unwrap();
                let partition = Partition::to(target).await;
                Self::Real {
                    server: std::sync::Mutex::new(server),
                    client,
                    partition,
                }
            }
        }
    }

    /// The kubeconfig the gateways use (through the [`Partition`] for a real server).
    pub fn write_kubeconfig(&self, path: &Path, context: &str) {
        match self {
            Self::Sim(sim) => sim.write_kubeconfig(path, context).unwrap(),
            Self::Real {
                server, partition, ..
            } => {
                let yaml = server.lock().unwrap().kubeconfig_yaml(context);
                let mut cfg: Value = serde_json::from_str(&yaml).unwrap();
                cfg["clusters"][0]["cluster"]["server"] =
                    format!("https://127.0.0.1:{}", partition.port).into();
                std::fs::write(path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
            }
        }
    }

    /// Creates `obj`, or says why not.
    pub async fn try_create(&self, obj: Value) -> Result<Value, String> {
        match self {
            Self::Sim(sim) => sim
                .create_json(obj.clone())
                .map_err(|e| sim_error("create", &obj, e)),
            Self::Real { client, .. } => testbed::create(client, &obj)
                .await
                .map_err(|e| sim_error("create", &obj, e)),
        }
    }

    /// Creates `obj`, failing the test if the server refuses it.
    pub async fn create(&self, obj: Value) -> Value {
        self.try_create(obj).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Server-side applies `obj` as `manager`.
    pub async fn apply(&self, obj: Value, manager: &str) -> Value {
        let applied = match self {
            Self::Sim(sim) => sim
                .apply_json(obj.clone(), manager)
                .map_err(|e| sim_error("apply", &obj, e)),
            Self::Real { client, .. } => testbed::apply(client, &obj, manager)
                .await
                .map_err(|e| sim_error("apply", &obj, e)),
        };
        applied.unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        match self {
            Self::Sim(sim) => sim.get_json(api_version, plural, namespace, name),
            Self::Real { client, .. } => testbed::get(client, api_version, plural, namespace, name)
                .await
                .unwrap_or_else(|e| panic!("get {plural} {namespace:?}/{name}: {e}")),
        }
    }

    pub async fn list(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        match self {
            Self::Sim(sim) => sim.list_json(api_version, plural, namespace),
            Self::Real { client, .. } => testbed::list(client, api_version, plural, namespace)
                .await
                .unwrap_or_else(|e| panic!("list {plural} in {namespace:?}: {e}")),
        }
    }

    pub async fn delete(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) {
        match self {
            Self::Sim(sim) => sim
                .delete_json(api_version, plural, namespace, name)
                .map(|_| ())
                .unwrap_or_else(|e| panic!("delete {plural} {namespace:?}/{name}: {e}")),
            Self::Real { client, .. } => {
                testbed::delete(client, api_version, plural, namespace, name)
                    .await
                    .unwrap_or_else(|e| panic!("delete {plural} {namespace:?}/{name}: {e}"))
            }
        }
    }

    pub async fn create_namespace(&self, name: &str) {
        self.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
            .await;
    }

    /// The gateways lose this API server (KubeSim stops serving; a real server's [`Partition`]
    /// is cut); the tests can still change its objects.
    pub async fn cut(&self) {
        match self {
            Self::Sim(sim) => sim.stop().await,
            Self::Real { partition, .. } => partition.cut(),
        }
    }

    /// Freezes a real API server (SIGSTOP: connections open, no answers). KubeSim runs in
    /// the test process and cannot be frozen.
    pub fn freeze(&self) {
        match self {
            Self::Sim(_) => {
                panic!("KubeSim cannot be frozen: the scenario runs on kube-apiserver only")
            }
            Self::Real { server, .. } => server.lock().unwrap().freeze(),
        }
    }

    /// Ends [`ClusterApi::freeze`].
    pub fn thaw(&self) {
        match self {
            Self::Sim(_) => panic!("KubeSim cannot be frozen"),
            Self::Real { server, .. } => server.lock().unwrap().thaw(),
        }
    }

    /// Ends [`ClusterApi::cut`].
    pub async fn heal(&self) {
        match self {
            Self::Sim(sim) => sim.resume().await.unwrap(),
            Self::Real { partition, .. } => partition.heal(),
        }
    }

    /// Ends every watch and moves the history on so that re-watching from an earlier version
    /// is refused with 410 Gone: KubeSim compacts its history; kube-apiserver is restarted
    /// (its new watch cache starts at the current version) after etcd compacted its own.
    pub async fn expire_watches(&self, i: usize) {
        self.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("bump-{i}"), "namespace": "default"}}))
            .await;
        match self {
            Self::Sim(sim) => {
                sim.close_watches();
                sim.compact();
            }
            Self::Real { server, .. } => tokio::task::block_in_place(|| {
                let mut server = server.lock().unwrap();
                server.compact();
                server.stop();
                server.resume();
            }),
        }
    }

    /// The real server's log tail (empty for KubeSim), for failure messages.
    pub fn log_tail(&self) -> String {
        match self {
            Self::Sim(_) => String::new(),
            Self::Real { server, .. } => server.lock().unwrap().log_tail(),
        }
    }
}

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
    pub api: ClusterApi,
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
    /// `n` API servers of `backend` with their ClusterProperty, the WANPolicy `gold` (ports
    /// 31000-31999) and the namespace `shop`; no gateway yet.
    pub async fn new(backend: Backend, n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clusterset.yaml"), clusterset_yaml(n)).unwrap();
        let apis = futures::future::join_all(
            (1..=n)
                .map(|i| async move { ClusterApi::start(backend, &format!("cluster-{i}")).await }),
        )
        .await;
        let mut clusters = Vec::new();
        for (i, api) in (1..=n).zip(apis) {
            let id = format!("cluster-{i}");
            api.create(json!({
                "apiVersion": "about.k8s.io/v1alpha1", "kind": "ClusterProperty",
                "metadata": {"name": "cluster.clusterset.k8s.io"}, "spec": {"value": id},
            }))
            .await;
            api.create(mk_policy("gold", "gold", 31000, 1000)).await;
            api.create_namespace("shop").await;
            let cdir = tempfile::tempdir().unwrap();
            api.write_kubeconfig(&cdir.path().join("kubeconfig"), &id);
            std::fs::create_dir(cdir.path().join("peers")).unwrap();
            clusters.push(Cluster {
                id,
                api,
                dns: SocketAddr::from(([127, 0, 0, 1], free_port())),
                admin: free_port(),
                dir: cdir,
                gateway: None,
            });
        }
        for c in &clusters {
            for peer in clusters.iter().filter(|p| p.id != c.id) {
                peer.api
                    .write_kubeconfig(&c.peers_dir().join(&peer.id), &peer.id);
            }
        }
        Self { clusters, dir }
    }

    /// [`Clusterset::new`], then every gateway started and answering DNS.
    pub async fn start(backend: Backend, n: usize) -> Self {
        let mut cs = Self::new(backend, n).await;
        for i in 0..n {
            cs.start_gateway(i).await;
        }
        cs
    }

    /// Cluster `i`'s API server.
    pub fn api(&self, i: usize) -> &ClusterApi {
        &self.clusters[i].api
    }

    /// Cluster `i`'s gateway's admin endpoint, as `host:port`.
    pub fn admin_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.clusters[i].admin)
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
            let api = c.api.log_tail();
            if !api.is_empty() {
                out.push_str(&format!(
                    "---- {} kube-apiserver log (tail) ----\n{api}\n",
                    c.id
                ));
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

    /// Waits until cluster `i` has an `events.k8s.io` Event with `reason` about the object
    /// `namespace/name`.
    pub async fn wait_for_event(
        &self,
        i: usize,
        namespace: &str,
        name: &str,
        reason: &str,
    ) -> Value {
        let api = &self.clusters[i].api;
        let what = format!(
            "a {reason} event about {namespace}/{name} in cluster {}",
            i + 1
        );
        self.wait_for(&what, || async move {
            api.list("events.k8s.io/v1", "events", Some(namespace))
                .await
                .into_iter()
                .find(|e| e["regarding"]["name"] == name && e["reason"] == reason)
        })
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
        let api = &self.clusters[i].api;
        let what = format!(
            "{plural} {namespace:?}/{name} in cluster {} as expected",
            i + 1
        );
        let check = &check;
        self.wait_for(&what, || async move {
            api.get(api_version, plural, namespace, name)
                .await
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
        let api = &self.clusters[i].api;
        let what = format!("{plural} {namespace:?}/{name} gone from cluster {}", i + 1);
        self.wait_for(&what, || async move {
            match api.get(api_version, plural, namespace, name).await {
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

/// A Service with one endpoint, exported with `gold`, in `api`.
pub async fn export_service(api: &ClusterApi, namespace: &str, name: &str) {
    api.create(mk_service(namespace, name, &[("http", 80)]))
        .await;
    api.create(mk_slice(
        namespace,
        name,
        &[("a", "10.1.0.1")],
        &[("http", 8080)],
    ))
    .await;
    api.create(mk_export(namespace, name, Some("gold"))).await;
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
