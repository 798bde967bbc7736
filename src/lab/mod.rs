//! A clusterset on one Linux host: each cluster's gateway, client pods and backend pods in
//! network namespaces, the gateways joined by a WAN, driven by a static catalog of the seed's
//! user stories ([`catalog`]). `mcwan demo` runs on it, and so do the end-to-end tests. It needs
//! root, IPVS and (for WireGuard mode) the WireGuard module, so on most machines it runs in the
//! test VM.
//!
//! Per cluster `i` (1..=3), with the names prefixed:
//!
//! ```text
//!  cl<i> eth0 10.i.1.2 --- lan-c 10.i.1.1  gw<i>  lan-b 10.i.2.1 --- eth0 10.i.2.2 be<i> (pods 10.i.2.11-13)
//!                                           |
//!   WireGuard mode:  wan0 192.168.100.i --- bridge in <prefix>wan (one tunnel per class on it)
//!   SD-WAN mode:     edge-hi 172.16.i.2 --- 172.16.i.1 edge<i> wan0 192.168.100.i --- bridge
//!                    edge-lo 172.16.i.6 --- 172.16.i.5 /      (ingress address 10.i.0.1 on gw<i>)
//! ```
//!
//! In SD-WAN mode each cluster's edge router is a namespace with one link per tunnel class
//! towards its gateway, so the links' counters show which class a flow took.

pub mod backend;
pub mod catalog;
pub mod netns;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use backend::{Backend, Connection};
use netns::{veth, Netns};

/// How the lab's gateways reach each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WanKind {
    /// One WireGuard tunnel per tunnel class between every two gateways.
    Wireguard,
    /// Hand-off to per-class SD-WAN edge routers.
    Sdwan,
}

/// The lab's address plan.
pub mod addr {
    pub fn client(i: u8) -> String {
        format!("10.{i}.1.2")
    }
    /// The gateway's address towards its client pods; it serves DNS there.
    pub fn gateway_lan(i: u8) -> String {
        format!("10.{i}.1.1")
    }
    pub fn pod(i: u8, host: u8) -> String {
        format!("10.{i}.2.{host}")
    }
    /// The gateway's WAN address (WireGuard mode) or its edge's (SD-WAN mode).
    pub fn wan(i: u8) -> String {
        format!("192.168.100.{i}")
    }
    /// The gateway's ingress address in SD-WAN mode.
    pub fn ingress(i: u8) -> String {
        format!("10.{i}.0.1")
    }
    /// Where a gateway reaches the namespace the lab was built from (management link).
    pub fn management_host(i: u8) -> String {
        format!("172.30.{i}.1")
    }
    /// The SD-WAN edge's next hop for a tunnel class.
    pub fn edge(i: u8, class: &str) -> String {
        match class {
            "business" => format!("172.16.{i}.1"),
            _ => format!("172.16.{i}.5"),
        }
    }
}

/// The gateway's link to its SD-WAN edge for a tunnel class.
fn edge_link(class: &str) -> &'static str {
    match class {
        "business" => "edge-hi",
        _ => "edge-lo",
    }
}

/// How to build a lab.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Prefix of every namespace name (at most 8 characters).
    pub prefix: String,
    pub wan: WanKind,
    /// The mcwan executable the gateways run.
    pub exe: PathBuf,
    /// Where the catalog and keys go. The gateways watch the catalog with inotify, so this
    /// must be a local file system (not a VM's shared folder).
    pub dir: PathBuf,
    /// Where the gateways' logs go.
    pub logs: PathBuf,
    /// A management link from each gateway to the namespace the lab is built from
    /// (`<prefix>m<i>` 172.30.i.1 there, `mgmt0` 172.30.i.2 in the gateway), for API servers
    /// served from there (Kubernetes mode).
    pub management: bool,
}

/// One cluster of the lab.
#[derive(Debug)]
pub struct Site {
    pub index: u8,
    pub id: String,
    pub gw: Netns,
    pub client: Netns,
    pub pods: Netns,
    pub edge: Option<Netns>,
    gateway: Option<Child>,
    _backend: Backend,
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut child) = self.gateway.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running lab; dropping it stops the gateways and deletes every namespace (and with them
/// every interface, IPVS table, tunnel and rule the gateways made).
#[derive(Debug)]
pub struct Lab {
    pub options: LabOptions,
    pub sites: Vec<Site>,
    _wan: Netns,
}

/// The number of clusters in the lab.
pub const CLUSTERS: u8 = 3;

impl Lab {
    /// Builds the namespaces, links, pods and catalog; the gateways are not started.
    pub fn build(options: LabOptions) -> Result<Self> {
        anyhow::ensure!(
            options.prefix.len() <= 8,
            "lab prefix {:?} is longer than 8 characters",
            options.prefix
        );
        netns::delete_all(&options.prefix);
        let p = &options.prefix;
        let wan = Netns::new(&format!("{p}wan"))?;
        wan.ip(&["link", "add", "br0", "type", "bridge"])?;
        wan.ip(&["link", "set", "br0", "up"])?;
        let mut sites = Vec::new();
        for i in 1..=CLUSTERS {
            sites.push(Self::build_site(&options, &wan, i)?);
        }
        let lab = Self {
            options,
            sites,
            _wan: wan,
        };
        lab.write_catalog()?;
        Ok(lab)
    }

    fn build_site(options: &LabOptions, wan: &Netns, i: u8) -> Result<Site> {
        let p = &options.prefix;
        let gw = Netns::new(&format!("{p}gw{i}"))?;
        let client = Netns::new(&format!("{p}cl{i}"))?;
        let pods = Netns::new(&format!("{p}be{i}"))?;
        gw.sysctl("net.ipv4.ip_forward", "1")?;
        veth(
            &client,
            "eth0",
            Some(&format!("{}/24", addr::client(i))),
            &gw,
            "lan-c",
            Some(&format!("{}/24", addr::gateway_lan(i))),
        )?;
        client.ip(&["route", "add", "default", "via", &addr::gateway_lan(i)])?;
        veth(
            &pods,
            "eth0",
            Some(&format!("10.{i}.2.2/24")),
            &gw,
            "lan-b",
            Some(&format!("10.{i}.2.1/24")),
        )?;
        for pod in catalog::pods(i) {
            pods.ip(&["addr", "add", &format!("{pod}/24"), "dev", "eth0"])?;
        }
        pods.ip(&["route", "add", "default", "via", &format!("10.{i}.2.1")])?;
        let port = format!("p{i}");
        let wan_addr = format!("{}/24", addr::wan(i));
        let edge = match options.wan {
            WanKind::Wireguard => {
                veth(&gw, "wan0", Some(&wan_addr), wan, &port, None)?;
                None
            }
            WanKind::Sdwan => {
                let edge = Netns::new(&format!("{p}edge{i}"))?;
                edge.sysctl("net.ipv4.ip_forward", "1")?;
                veth(&edge, "wan0", Some(&wan_addr), wan, &port, None)?;
                veth(
                    &gw,
                    "edge-hi",
                    Some(&format!("172.16.{i}.2/30")),
                    &edge,
                    "gw-hi",
                    Some(&format!("{}/30", addr::edge(i, "business"))),
                )?;
                veth(
                    &gw,
                    "edge-lo",
                    Some(&format!("172.16.{i}.6/30")),
                    &edge,
                    "gw-lo",
                    Some(&format!("{}/30", addr::edge(i, "default"))),
                )?;
                gw.ip(&["link", "add", "ingress0", "type", "dummy"])?;
                gw.ip(&[
                    "addr",
                    "add",
                    &format!("{}/32", addr::ingress(i)),
                    "dev",
                    "ingress0",
                ])?;
                gw.ip(&["link", "set", "ingress0", "up"])?;
                // What no class claims (health checks, DNS) takes the business edge.
                gw.ip(&["route", "add", "default", "via", &addr::edge(i, "business")])?;
                edge.ip(&[
                    "route",
                    "add",
                    &format!("{}/32", addr::ingress(i)),
                    "via",
                    &format!("172.16.{i}.2"),
                ])?;
                wan_routes(&edge, i)?;
                Some(edge)
            }
        };
        wan.ip(&["link", "set", &port, "master", "br0"])?;
        if options.management {
            let here = format!("{p}m{i}");
            netns::run(
                "ip",
                &[
                    "link", "add", &here, "type", "veth", "peer", "name", "mgmt0", "netns",
                    &gw.name,
                ],
            )?;
            netns::run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("{}/30", addr::management_host(i)),
                    "dev",
                    &here,
                ],
            )?;
            netns::run("ip", &["link", "set", &here, "up"])?;
            gw.ip(&["addr", "add", &format!("172.30.{i}.2/30"), "dev", "mgmt0"])?;
            gw.ip(&["link", "set", "mgmt0", "up"])?;
        }
        let backend = Backend::start(&pods, &format!("cluster-{i}"), catalog::SERVICE_PORT)?;
        Ok(Site {
            index: i,
            id: format!("cluster-{i}"),
            gw,
            client,
            pods,
            edge,
            gateway: None,
            _backend: backend,
        })
    }

    pub fn catalog_dir(&self) -> PathBuf {
        self.options.dir.join("catalog")
    }

    fn key_file(&self, i: u8) -> PathBuf {
        self.options
            .dir
            .join("keys")
            .join(format!("cluster-{i}.key"))
    }

    /// The gateway's log file.
    pub fn log_file(&self, i: u8) -> PathBuf {
        self.options.logs.join(format!("gateway-cluster-{i}.log"))
    }

    fn write_catalog(&self) -> Result<()> {
        let dir = self.catalog_dir();
        std::fs::create_dir_all(&dir)?;
        std::fs::create_dir_all(&self.options.logs)?;
        let mut public = Vec::new();
        if self.options.wan == WanKind::Wireguard {
            std::fs::create_dir_all(self.options.dir.join("keys"))?;
            for i in 1..=CLUSTERS {
                let key = mcwan_tunnel::Key::generate();
                write_private(&self.key_file(i), &format!("{}\n", key.to_base64()))?;
                public.push(key.public_key().to_base64());
            }
        }
        write_atomically(
            &dir.join("clusterset.yaml"),
            &catalog::clusterset(self.options.wan, CLUSTERS, &public),
        )?;
        for i in 1..=CLUSTERS {
            let cluster = dir.join(format!("cluster-{i}"));
            std::fs::create_dir_all(&cluster)?;
            for (file, text) in catalog::manifests(i) {
                write_atomically(&cluster.join(file), &text)?;
            }
        }
        Ok(())
    }

    /// Writes (or replaces) a manifest file of a cluster; the gateways pick it up.
    pub fn write_manifest(&self, i: u8, file: &str, text: &str) -> Result<()> {
        write_atomically(
            &self.catalog_dir().join(format!("cluster-{i}")).join(file),
            text,
        )
    }

    /// Writes the seed's WANRoute for payment.secure ([`crate::l7::SEED_ROUTE`]) into
    /// cluster-1's catalog and waits until cluster-2's gateway proxies payment's ClusterSetIP
    /// (a POST /payment is denied there). Returns the ClusterSetIP.
    pub fn route_payment(&self, limit: Duration) -> Result<IpAddr> {
        let vip = self.resolve(2, "payment", "secure")?;
        self.write_manifest(1, SEED_ROUTE_FILE, crate::l7::SEED_ROUTE)?;
        let deadline = Instant::now() + limit;
        loop {
            match self.http(2, vip, "POST", "/payment", &[]) {
                Ok(r) if r.status == 403 => return Ok(vip),
                last => {
                    if Instant::now() > deadline {
                        bail!("cluster-2's gateway did not take payment's WANRoute within {limit:?}: {last:?}");
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Removes the seed's WANRoute and waits until payment's ClusterSetIP is an IPVS virtual
    /// service of cluster-2's gateway again.
    pub fn unroute_payment(&self, limit: Duration) -> Result<()> {
        let vip = self.resolve(2, "payment", "secure")?;
        self.remove_manifest(1, SEED_ROUTE_FILE)?;
        let deadline = Instant::now() + limit;
        let service = format!("{vip}:{}", catalog::SERVICE_PORT);
        while !self.ipvsadm(2)?.contains(&service) {
            if Instant::now() > deadline {
                bail!("payment's ClusterSetIP {service} is not back in cluster-2's IPVS within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Removes a manifest file of a cluster; the gateways pick it up.
    pub fn remove_manifest(&self, i: u8, file: &str) -> Result<()> {
        let path = self.catalog_dir().join(format!("cluster-{i}")).join(file);
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))
    }

    pub fn site(&self, i: u8) -> &Site {
        &self.sites[usize::from(i - 1)]
    }

    fn site_mut(&mut self, i: u8) -> &mut Site {
        &mut self.sites[usize::from(i - 1)]
    }

    /// Starts cluster `i`'s gateway on the lab's static catalog with `extra` arguments and
    /// waits until it is ready.
    pub fn start_gateway(&mut self, i: u8, extra: &[&str]) -> Result<()> {
        let source = [
            "--cluster-id".to_owned(),
            format!("cluster-{i}"),
            "--catalog".to_owned(),
            self.catalog_dir().to_string_lossy().into_owned(),
        ];
        self.start_gateway_with(i, &source, &[], extra)
    }

    /// Starts cluster `i`'s gateway in Kubernetes mode: its own API server from `kubeconfig`,
    /// its peers' from the kubeconfigs in `peers`, the clusterset from the lab's catalog.
    pub fn start_kube_gateway(
        &mut self,
        i: u8,
        kubeconfig: &Path,
        peers: &Path,
        extra: &[&str],
    ) -> Result<()> {
        let source = [
            "--kube".to_owned(),
            "--clusterset".to_owned(),
            self.catalog_dir()
                .join("clusterset.yaml")
                .to_string_lossy()
                .into_owned(),
            "--peer-kubeconfigs".to_owned(),
            peers.to_string_lossy().into_owned(),
        ];
        let env = [(
            "KUBECONFIG".to_owned(),
            kubeconfig.to_string_lossy().into_owned(),
        )];
        self.start_gateway_with(i, &source, &env, extra)
    }

    fn start_gateway_with(
        &mut self,
        i: u8,
        source: &[String],
        env: &[(String, String)],
        extra: &[&str],
    ) -> Result<()> {
        let mut args: Vec<String> = vec!["gateway".to_owned()];
        args.extend_from_slice(source);
        args.extend(
            [
                "--dataplane",
                "ipvs",
                "--dns-listen",
                &format!("{}:53", addr::gateway_lan(i)),
                "--admin-listen",
                "127.0.0.1:9641",
            ]
            .iter()
            .map(|s| (*s).to_owned()),
        );
        if self.options.wan == WanKind::Wireguard {
            args.push("--wireguard-private-key".into());
            args.push(self.key_file(i).to_string_lossy().into_owned());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let log = self.log_file(i);
        let child = self.site(i).gw.spawn(&self.options.exe, &args, env, &log)?;
        self.site_mut(i).gateway = Some(child);
        self.wait_ready(i, Duration::from_secs(300))
    }

    fn wait_ready(&mut self, i: u8, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let status = self
                .site(i)
                .gw
                .enter(|| http_get("127.0.0.1:9641", "/readyz"))?;
            if let Ok((200, _)) = status {
                return Ok(());
            }
            if let Some(child) = self.site_mut(i).gateway.as_mut() {
                if let Some(exit) = child.try_wait()? {
                    bail!(
                        "cluster-{i}'s gateway exited ({exit}); log: {}",
                        self.log_file(i).display()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "cluster-{i}'s gateway is not ready after {limit:?} ({status:?}); log: {}",
                    self.log_file(i).display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops cluster `i`'s gateway: SIGTERM (graceful) or SIGKILL.
    pub fn stop_gateway(&mut self, i: u8, graceful: bool) -> Result<()> {
        let Some(mut child) = self.site_mut(i).gateway.take() else {
            return Ok(());
        };
        if graceful {
            netns::run("kill", &["-TERM", &child.id().to_string()])?;
        } else {
            child.kill()?;
        }
        child.wait()?;
        Ok(())
    }

    /// Cuts (or restores) cluster `i`'s WAN link: to its peers, the cluster is gone.
    pub fn set_wan(&self, i: u8, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        let site = self.site(i);
        let ns = site.edge.as_ref().unwrap_or(&site.gw);
        ns.ip(&["link", "set", "wan0", state])?;
        // The kernel dropped the routes through the link when it went down.
        match (&site.edge, up) {
            (Some(edge), true) => wan_routes(edge, i),
            _ => Ok(()),
        }
    }

    /// Asks cluster `i`'s gateway (from its client pod) for a name: `dig`'s answer section.
    pub fn dig(&self, i: u8, name: &str, qtype: &str) -> Result<String> {
        self.site(i).client.exec(
            "dig",
            &[
                "+noall",
                "+answer",
                "+time=2",
                "+tries=2",
                &format!("@{}", addr::gateway_lan(i)),
                name,
                qtype,
            ],
        )
    }

    /// The ClusterSetIP of `<name>.<namespace>.svc.clusterset.local` as cluster `i` resolves it.
    pub fn resolve(&self, i: u8, service: &str, namespace: &str) -> Result<IpAddr> {
        let name = format!("{service}.{namespace}.svc.clusterset.local");
        let answer = self.dig(i, &name, "A")?;
        answer
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .find_map(|a| a.parse().ok())
            .with_context(|| format!("no A record for {name} in cluster-{i}: {answer:?}"))
    }

    /// Connects from cluster `i`'s client pod to `vip` on the service port.
    pub fn connect(&self, i: u8, vip: IpAddr, timeout: Duration) -> Result<Connection> {
        Connection::open(
            &self.site(i).client,
            SocketAddr::new(vip, catalog::SERVICE_PORT),
            timeout,
        )
    }

    /// An HTTP/1.1 request from cluster `i`'s client pod to `vip` on the service port.
    pub fn http(
        &self,
        i: u8,
        vip: IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpReply> {
        let to = SocketAddr::new(vip, catalog::SERVICE_PORT).to_string();
        let (method, path) = (method.to_owned(), path.to_owned());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        self.site(i).client.enter(move || {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            http_request(&to, &method, &path, &headers)
        })?
    }

    /// Cluster `i`'s gateway's `/metrics`.
    pub fn metrics(&self, i: u8) -> Result<String> {
        let (status, body) = self
            .site(i)
            .gw
            .enter(|| http_get("127.0.0.1:9641", "/metrics"))??;
        anyhow::ensure!(status == 200, "cluster-{i}'s /metrics answered {status}");
        Ok(body)
    }

    /// `ipvsadm -Ln` in cluster `i`'s gateway.
    pub fn ipvsadm(&self, i: u8) -> Result<String> {
        self.site(i).gw.exec("ipvsadm", &["-Ln"])
    }

    /// `wg show` in cluster `i`'s gateway.
    pub fn wg_show(&self, i: u8) -> Result<String> {
        self.site(i).gw.exec("wg", &["show"])
    }

    /// What an operator would look at in cluster `i`'s gateway: addresses, rules, routes of
    /// every table, nftables, IPVS and tunnels (for failure reports).
    pub fn diagnose(&self, i: u8) -> String {
        let site = self.site(i);
        let mut out = String::new();
        for (what, program, args) in [
            ("ip -br addr", "ip", &["-br", "addr"][..]),
            ("ip rule", "ip", &["rule"][..]),
            (
                "ip route show table all",
                "ip",
                &["route", "show", "table", "all"][..],
            ),
            ("nft list ruleset", "nft", &["list", "ruleset"][..]),
            ("ipvsadm -Ln", "ipvsadm", &["-Ln"][..]),
            ("wg show", "wg", &["show"][..]),
        ] {
            let text = site
                .gw
                .exec(program, args)
                .unwrap_or_else(|e| format!("{e:#}\n"));
            out.push_str(&format!("--- cluster-{i} gateway: {what}\n{text}"));
        }
        for edge in self.sites.iter().filter_map(|s| s.edge.as_ref()) {
            for (what, args) in [
                ("ip route", &["route"][..]),
                ("ip -s -br link", &["-s", "-br", "link"][..]),
            ] {
                let text = edge.ip(args).unwrap_or_else(|e| format!("{e:#}\n"));
                out.push_str(&format!("--- {}: {what}\n{text}", edge.name));
            }
        }
        out
    }

    /// The interface that carries tunnel class `class` out of cluster `i`'s gateway: its
    /// WireGuard tunnel, or its link to the class's SD-WAN edge.
    pub fn class_interface(&self, class: &str) -> String {
        match self.options.wan {
            WanKind::Wireguard => format!("mcw-{class}"),
            WanKind::Sdwan => edge_link(class).to_owned(),
        }
    }

    /// Bytes sent plus received on cluster `i`'s interface of a tunnel class.
    pub fn class_bytes(&self, i: u8, class: &str) -> Result<u64> {
        let ifname = self.class_interface(class);
        let json = self
            .site(i)
            .gw
            .ip(&["-j", "-s", "link", "show", "dev", &ifname])?;
        let v: serde_json::Value = serde_json::from_str(&json)
            .with_context(|| format!("ip -j -s link show dev {ifname}"))?;
        let stats = &v[0]["stats64"];
        let bytes = |dir: &str| stats[dir]["bytes"].as_u64().unwrap_or(0);
        Ok(bytes("rx") + bytes("tx"))
    }
}

/// An SD-WAN edge's routes across the WAN to the other clusters' gateways.
fn wan_routes(edge: &Netns, i: u8) -> Result<()> {
    for j in (1..=CLUSTERS).filter(|j| *j != i) {
        for destination in [
            format!("{}/32", addr::ingress(j)),
            format!("172.16.{j}.0/29"),
        ] {
            edge.ip(&["route", "replace", &destination, "via", &addr::wan(j)])?;
        }
    }
    Ok(())
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    crate::files::replace_atomically(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut f = std::fs::File::options()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // `mode` applies only to a file created now: tighten one that was already there.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The file of cluster-1's catalog that [`Lab::route_payment`] writes.
const SEED_ROUTE_FILE: &str = "payment.wanroute.yaml";

/// A plain HTTP GET: (status, body).
pub fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let reply = http_request(addr, "GET", path, &[])?;
    Ok((reply.status, reply.body))
}

/// An HTTP/1.1 answer.
#[derive(Clone, Debug)]
pub struct HttpReply {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// One HTTP/1.1 request on a connection of its own (`Connection: close`): `method` `path` to
/// `addr`, with `headers`.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpReply> {
    use std::io::{Read as _, Write as _};
    let mut s =
        std::net::TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").context("no HTTP header")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body).context("a bad chunked body")?
    } else {
        body.to_owned()
    };
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}

/// A chunked HTTP/1.1 body's content.
pub(crate) fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_private_file_written_over_an_open_one_becomes_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster-1.key");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, "new\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    }
}
