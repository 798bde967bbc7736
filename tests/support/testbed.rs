//! The real Kubernetes control plane of the test tiers: `target/testbed/bin/apiserver serve`,
//! an embedded etcd and kube-apiserver on 127.0.0.1 built from the Kubernetes release's Go
//! modules by `testbed/build` (RBAC on, static tokens; see testbed/apiserver/main.go), and the
//! same release's kubectl.
//!
//! Each [`ApiServer`] is one cluster's control plane in a state directory of its own; stopping
//! and serving it again brings back the same data on the same port, as a restarted control
//! plane does. The process also ends when the test process that started it ends (its stdin
//! closes), so no test leaves one behind.

#![allow(dead_code)] // each test binary uses a part of it
#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::Value;

/// The folder of the testbed binaries (built by `testbed/build`).
pub fn bin_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("testbed/bin")
}

/// The `testbed/build` component that provides binary `name`.
fn component(name: &str) -> &'static str {
    match name {
        "apiserver" | "kubectl" => "apiserver",
        "coredns" => "coredns",
        "wireguard-go" => "wireguard-go",
        "helm" => "helm",
        other => panic!("no testbed component builds {other}"),
    }
}

/// The path of testbed binary `name`, its component built once per test process if the
/// binary is not there.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<&'static str, Result<(), String>>> = Mutex::new(BTreeMap::new());
    let path = bin_dir().join(name);
    if !path.exists() {
        let component = component(name);
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        let result = built.entry(component).or_insert_with(|| {
            eprintln!(
                "testbed: {} missing, running testbed/build {component}",
                path.display()
            );
            let status = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/build"))
                .arg(component)
                .status()
                .map_err(|e| format!("testbed/build: {e}"))?;
            status
                .success()
                .then_some(())
                .ok_or_else(|| format!("testbed/build {component} failed: {status}"))
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
    assert!(
        path.exists(),
        "{} not built by testbed/build",
        path.display()
    );
    path
}

/// kubectl of the testbed's Kubernetes release.
pub fn kubectl() -> Command {
    Command::new(bin("kubectl"))
}

/// One cluster's control plane.
pub struct ApiServer {
    name: String,
    dir: tempfile::TempDir,
    server: String,
    process: Option<(Child, ChildStdin, BufReader<ChildStdout>)>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiServer({} at {})", self.name, self.server)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ApiServer {
    /// Starts a new, empty control plane named `name` (the kubeconfig's context) and waits
    /// until it is ready.
    pub fn start(name: &str) -> Self {
        // The control plane picks its three ports free and binds them a moment later; another
        // test's listener can take one in between. A new state directory picks new ports.
        let mut attempt = 1;
        loop {
            let dir = tempfile::Builder::new()
                .prefix("mcwan-apiserver-")
                .tempdir()
                .unwrap();
            let mut server = Self {
                name: name.to_owned(),
                dir,
                server: String::new(),
                process: None,
            };
            match server.try_resume() {
                Ok(()) => return server,
                Err(log) if attempt < 3 && log.contains("address already in use") => {
                    eprintln!("{name}: a port was taken before the control plane bound it; again");
                    attempt += 1;
                }
                Err(log) => panic!("{name}: the control plane did not start:\n{log}"),
            }
        }
    }

    /// Serves the state directory again (after [`ApiServer::stop`]): same port, same objects,
    /// resource versions going on.
    pub fn resume(&mut self) {
        if let Err(log) = self.try_resume() {
            panic!("{}: the control plane did not start:\n{log}", self.name);
        }
    }

    /// [`ApiServer::resume`], or the log's tail when the control plane does not start.
    fn try_resume(&mut self) -> Result<(), String> {
        assert!(self.process.is_none(), "{} is running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut child = Command::new(bin("apiserver"))
            .arg("serve")
            .arg("--dir")
            .arg(self.dir.path().join("state"))
            .args(["--name", &self.name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        stdout.read_line(&mut ready).unwrap();
        let Ok(ready) = serde_json::from_str::<Value>(&ready) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(self.log_tail());
        };
        self.server = ready["server"].as_str().unwrap().to_owned();
        self.process = Some((child, stdin, stdout));
        Ok(())
    }

    /// Freezes the control plane (SIGSTOP): connections stay open and nothing answers, as with
    /// a hung or overloaded server. [`ApiServer::thaw`] lets it go on.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Ends [`ApiServer::freeze`] (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let (child, _, _) = self.process.as_ref().expect("the control plane runs");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    /// Stops the control plane (etcd and kube-apiserver); its state stays for `resume`.
    pub fn stop(&mut self) {
        if let Some((mut child, stdin, _)) = self.process.take() {
            drop(stdin); // the server shuts down when its stdin closes
            for _ in 0..200 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Compacts etcd's history up to its current revision: from now on a watch or exact list
    /// from an older version is refused (410 Gone) once it reaches etcd.
    pub fn compact(&mut self) -> u64 {
        let (_, stdin, stdout) = self.process.as_mut().expect("the control plane is running");
        writeln!(stdin, "compact").unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        answer["compacted"]
            .as_u64()
            .unwrap_or_else(|| panic!("{}: compaction failed: {line}", self.name))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The admin kubeconfig (user `admin` in `system:masters`), context = the server's name.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("state/kubeconfig")
    }

    /// A kubeconfig of the authenticated user `nobody`, bound to no role.
    pub fn kubeconfig_nobody(&self) -> PathBuf {
        self.dir.path().join("state/kubeconfig-nobody")
    }

    /// The CA that signed the serving certificate (PEM).
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/ca.crt")).unwrap()
    }

    /// The kubeconfig of the admin, with `context` as its context and cluster name.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        let mut cfg: Value =
            serde_json::from_str(&std::fs::read_to_string(self.kubeconfig()).unwrap()).unwrap();
        cfg["current-context"] = context.into();
        cfg["clusters"][0]["name"] = context.into();
        cfg["contexts"][0]["name"] = context.into();
        cfg["contexts"][0]["context"]["cluster"] = context.into();
        serde_json::to_string_pretty(&cfg).unwrap()
    }

    /// Writes [`ApiServer::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, context: &str) {
        std::fs::write(path, self.kubeconfig_yaml(context)).unwrap();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("apiserver.log")
    }

    /// The last lines the control plane logged.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path())
    }

    /// A kube client as the admin.
    pub async fn client(&self) -> kube::Client {
        client_from(&self.kubeconfig()).await
    }

    /// `kubectl` with the admin kubeconfig.
    pub fn kubectl(&self) -> Command {
        let mut cmd = kubectl();
        cmd.arg("--kubeconfig").arg(self.kubeconfig());
        cmd
    }
}

/// The last 40 lines of the log file `path` (empty if there is none).
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// CoreDNS of `testbed/coredns` (github.com/coredns/coredns), killed when dropped.
pub struct CoreDns {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for CoreDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CoreDns {
    /// Starts CoreDNS on the Corefile `corefile`; it serves the ports that Corefile names.
    pub fn start(corefile: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mcwan-coredns-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("Corefile");
        std::fs::write(&path, corefile).unwrap();
        let log = std::fs::File::create(dir.path().join("coredns.log")).unwrap();
        let child = Command::new(bin("coredns"))
            .arg("-conf")
            .arg(&path)
            .current_dir(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child, dir }
    }

    /// The last lines CoreDNS logged.
    pub fn log_tail(&self) -> String {
        tail(&self.dir.path().join("coredns.log"))
    }

    /// Whether CoreDNS is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The API of objects of `api_version` and `plural` (kind left empty: requests do not need it).
pub fn dynamic_api(
    client: &kube::Client,
    api_version: &str,
    plural: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, "");
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// The API of `obj`'s kind, in its namespace if it has one.
fn api_of(client: &kube::Client, obj: &Value) -> (Api<DynamicObject>, String) {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, obj["kind"].as_str().unwrap());
    let resource = ApiResource::from_gvk(&gvk);
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let api = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    (api, name)
}

fn to_value(obj: DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap()
}

/// Creates `obj` (its kind's plural is derived from its kind).
pub async fn create(client: &kube::Client, obj: &Value) -> Result<Value, kube::Error> {
    let (api, _) = api_of(client, obj);
    let obj: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    api.create(&PostParams::default(), &obj).await.map(to_value)
}

/// Server-side applies `obj` as `manager`, taking over conflicting fields.
pub async fn apply(
    client: &kube::Client,
    obj: &Value,
    manager: &str,
) -> Result<Value, kube::Error> {
    let (api, name) = api_of(client, obj);
    api.patch(
        &name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(obj),
    )
    .await
    .map(to_value)
}

/// Reads an object; `None` when it does not exist.
pub async fn get(
    client: &kube::Client,
    api_version: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    dynamic_api(client, api_version, plural, namespace)
        .get_opt(name)
        .await
        .map(|o| o.map(to_value))
}

/// Lists the objects of a resource, in one namespace or all.
pub async fn list(
    client: &kube::Client,
    api_version: &str,
    plural: &str,
    namespace: Option<&str>,
) -> Result<Vec<Value>, kube::Error> {
    let list = dynamic_api(client, api_version, plural, namespace)
        .list(&Default::default())
        .await?;
    Ok(list.items.into_iter().map(to_value).collect())
}

/// Deletes an object (foreground propagation is left to the server's default).
pub async fn delete(
    client: &kube::Client,
    api_version: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), kube::Error> {
    dynamic_api(client, api_version, plural, namespace)
        .delete(name, &DeleteParams::default())
        .await
        .map(|_| ())
}

/// Whether `obj`'s status has a condition of `type_` with `status`.
pub fn has_condition(obj: &Value, type_: &str, status: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == status)
}

/// Creates every CRD of `mcwan crds` and waits until each is established and served.
pub async fn install_crds(client: &kube::Client) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(out.status.success(), "mcwan crds failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut names = Vec::new();
    for doc in text.split("\n---") {
        if doc.trim().is_empty() {
            continue;
        }
        let crd: Value = serde_saphyr::from_str(doc).unwrap();
        names.push(crd["metadata"]["name"].as_str().unwrap().to_owned());
        apply(client, &crd, "mcwan-tests").await.unwrap();
    }
    let crds = dynamic_api(
        client,
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        None,
    );
    for name in names {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let crd = to_value(crds.get(&name).await.unwrap());
            if has_condition(&crd, "Established", "True") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "CRD {name} not established"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
