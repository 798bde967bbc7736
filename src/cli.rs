//! The command line: `mcwan gateway`, `plan`, `status`, `export`, `import` and their
//! inverses, `crds`, `demo`, `version`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::desired::PlanConfig;

#[derive(Debug, Parser)]
#[command(
    name = "mcwan",
    version,
    about = "Multi-cluster east-west gateway for Kubernetes"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MCWAN_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// The kubeconfig file of this cluster, as kubectl's --kubeconfig (default: KUBECONFIG, then
    /// ~/.kube/config, then the in-cluster service account). Peers' kubeconfigs are apart.
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the desired state of one cluster's gateway for a static catalog.
    Plan(PlanCmd),
    /// Run the gateway: DNS for the clusterset zone, driven by a catalog.
    Gateway(Box<GatewayCmd>),
    /// Show what a running gateway believes: readiness, imports, exports, IPVS, tunnels.
    /// Without --gateway: the exports of the current Kubernetes context, their conditions,
    /// ClusterSetIPs, importing clusters and gateway ingress.
    Status(StatusCmd),
    /// Export a Service to the clusterset: create or update its ServiceExport (Kubernetes).
    Export(crate::kube::cli::ExportCmd),
    /// Withdraw a Service's export: delete its ServiceExport (Kubernetes).
    Unexport(crate::kube::cli::UnexportCmd),
    /// Import a service from a given ingress gateway, where the exporting cluster is not
    /// watched: write its WANImport (Kubernetes, or a static catalog with --catalog).
    Import(crate::kube::cli::ImportCmd),
    /// Withdraw an import made with `mcwan import`: delete its WANImport.
    Unimport(crate::kube::cli::UnimportCmd),
    /// Let the gateway of --peer-context watch the cluster of --context: make the read-only
    /// peer credentials there and store their kubeconfig in the peer's Secret mcwan-peers.
    Join(crate::kube::cli::JoinCmd),
    /// Check the cluster, its peers, the CRDs, the gateway, DNS and the WAN ports: one verdict
    /// (ok, warn, fail) and reason per check; exit code 1 when a check fails.
    Diagnose(crate::kube::cli::DiagnoseCmd),
    /// Write a support bundle (a directory or a .tar.gz): status, plan, metrics, mcwan's
    /// objects and Events, the dataplane, the gateway's logs; never a key or token.
    Gather(crate::kube::cli::GatherCmd),
    /// Remove from this node everything mcwan's dataplane owns, and nothing else: its ip rules
    /// and routes (proto 161), IPVS virtual services, nftables table inet mcwan, interface
    /// mcwan0 and tunnel interfaces. Stop the gateway first. Sysctls are left as they are
    /// (mcwan does not record their previous values).
    Uninstall(crate::dataplane::uninstall::UninstallCmd),
    /// Print the CustomResourceDefinitions mcwan uses, as YAML.
    Crds,
    /// Print mcwan's version.
    Version,
    /// Print a shell completion script: `mcwan completions bash > /etc/bash_completion.d/mcwan`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `mcwan man | man -l -`; with --dir, write one page per
    /// command there (mcwan.1, mcwan-gateway.1, ...), for /usr/share/man/man1.
    Man {
        /// Write mcwan.1 and a page per subcommand into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Show the clusterset at work: three clusters on this host (in network namespaces, or in
    /// a VM where this kernel lacks IPVS), a service resolved and called across them through
    /// its WAN class, and a failover; everything is cleaned up afterwards.
    #[cfg(feature = "lab")]
    Demo(crate::demo::DemoCmd),
}

#[derive(Clone, Debug, Args)]
pub struct PlanArgs {
    /// This gateway's cluster ID (required with --catalog).
    #[arg(long, env = "MCWAN_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// The static catalog directory (clusterset.yaml and one directory per cluster). Without it,
    /// the example clusterset built into the binary is used, as cluster-2.
    #[arg(long, env = "MCWAN_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Where ClusterSetIPs are allocated from.
    #[arg(long, default_value = "241.64.0.0/16", env = "MCWAN_VIP_CIDR")]
    pub vip_cidr: IpNet,
    /// WAN policy of ServiceExports without the mcw.l7mp.io/mc-wan-policy annotation.
    #[arg(long, env = "MCWAN_DEFAULT_WAN_POLICY")]
    pub default_wan_policy: Option<String>,
    /// IPVS scheduler of the virtual servers. It must honour weights (wrr, wlc, mh, ...):
    /// mcwan shares traffic among clusters, and fails over, by weight.
    #[arg(long, default_value = "wrr", env = "MCWAN_SCHEDULER")]
    pub scheduler: String,
}

impl PlanArgs {
    /// The cluster ID: as given, or the embedded example's when no catalog is given.
    pub fn cluster_id(&self) -> anyhow::Result<String> {
        match (&self.cluster_id, &self.catalog) {
            (Some(id), _) => Ok(id.clone()),
            (None, None) => Ok(crate::catalog::EXAMPLE_CLUSTER.to_owned()),
            (None, Some(_)) => anyhow::bail!("--cluster-id is required with --catalog"),
        }
    }

    /// Loads the catalog directory, or the embedded example.
    pub fn load_catalog(&self) -> anyhow::Result<crate::catalog::Catalog> {
        match &self.catalog {
            Some(dir) => Ok(crate::catalog::load_dir(dir)?),
            None => Ok(crate::catalog::embedded_example()),
        }
    }

    pub fn plan_config(&self) -> PlanConfig {
        PlanConfig {
            vip_cidr: self.vip_cidr,
            default_wan_policy: self.default_wan_policy.clone(),
            scheduler: self.scheduler.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Table,
    Json,
    /// The objects the gateway writes in this cluster in Kubernetes mode (ServiceImports and
    /// EndpointSlices) as a `v1` List, for `kubectl apply --server-side -f -` or a review.
    Kube,
    /// Gateway API objects for the imported services with WANRoute rules (HTTPRoutes and the
    /// per-class backend Services and EndpointSlices) as a `v1` List.
    GatewayApi,
}

#[derive(Debug, Args)]
pub struct PlanCmd {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Table)]
    pub output: PlanOutput,
}

#[derive(Debug, Args)]
pub struct GatewayCmd {
    #[command(flatten, next_help_heading = "Catalog and plan")]
    pub plan: PlanArgs,
    #[command(flatten, next_help_heading = "Kubernetes")]
    pub kube: crate::kube::KubeArgs,
    /// DNS listen address (UDP and TCP).
    #[arg(
        help_heading = "DNS",
        long,
        default_value = "127.0.0.1:5353",
        env = "MCWAN_DNS_LISTEN"
    )]
    pub dns_listen: SocketAddr,
    /// Admin endpoint (metrics, health, status) listen address.
    #[arg(
        help_heading = "Admin endpoint",
        long,
        default_value = "127.0.0.1:9641",
        env = "MCWAN_ADMIN_LISTEN"
    )]
    pub admin_listen: SocketAddr,
    /// Static-catalog mode: where the gateway keeps the ClusterSetIPs it handed out, so that a
    /// restart gives every service the VIP it had (`allocations.json`, replaced atomically).
    #[arg(help_heading = "Catalog and plan", long, env = "MCWAN_STATE_DIR")]
    pub state_dir: Option<std::path::PathBuf>,
    /// Serve /status (the clusterset's whole topology) to any client, not only loopback ones;
    /// /metrics and the health endpoints are served to all.
    #[arg(
        help_heading = "Admin endpoint",
        long,
        env = "MCWAN_ADMIN_STATUS_REMOTE"
    )]
    pub admin_status_remote: bool,
    /// UDP receive loops on the DNS socket (default: one per available core).
    #[arg(help_heading = "DNS", long, env = "MCWAN_DNS_UDP_WORKERS")]
    pub dns_udp_workers: Option<usize>,
    /// The clusterset zone.
    #[arg(
        help_heading = "DNS",
        long,
        default_value = "clusterset.local",
        env = "MCWAN_ZONE"
    )]
    pub zone: String,
    /// TTL of every record, in seconds.
    #[arg(help_heading = "DNS", long, default_value_t = 5, env = "MCWAN_TTL")]
    pub ttl: u32,
    /// What to program: `none` serves DNS only (no root needed); `ipvs` programs the VIP
    /// interface, IPVS and the masquerade rules (needs CAP_NET_ADMIN and the ip_vs module).
    #[arg(help_heading = "Dataplane (IPVS)", long, value_enum, default_value_t = Dataplane::None, env = "MCWAN_DATAPLANE")]
    pub dataplane: Dataplane,
    /// The packet mark bit mcwan uses to select traffic to masquerade.
    #[arg(help_heading = "Dataplane (IPVS)", long, default_value_t = crate::dataplane::nat::DEFAULT_MASQ_MARK, value_parser = parse_u32, env = "MCWAN_MASQ_MARK")]
    pub masq_mark: u32,
    /// How often the dataplane is read back from the kernel to repair drift (a duration: 30s,
    /// 2m; a bare number is seconds).
    #[arg(help_heading = "Dataplane (IPVS)", long = "resync", alias = "resync-seconds", default_value = "30s", value_parser = parse_seconds, value_name = "DURATION", env = "MCWAN_RESYNC_SECONDS")]
    pub resync_seconds: Duration,
    /// A real server that leaves (its endpoint no longer ready, its cluster drained) first goes
    /// to weight 0 and is deleted when its connections are gone, or after this long (0: deleted
    /// at once; a bare number is seconds).
    #[arg(help_heading = "Dataplane (IPVS)", long = "drain", alias = "drain-seconds", default_value = "60s", value_parser = parse_seconds, value_name = "DURATION", env = "MCWAN_DRAIN_SECONDS")]
    pub drain_seconds: Duration,
    /// This gateway's WireGuard private key (a file, e.g. a mounted Secret; read again on every
    /// sync, so replacing the file rotates the key). Needed in WireGuard mode.
    #[arg(
        help_heading = "WAN (WireGuard, SD-WAN)",
        long,
        env = "MCWAN_WIREGUARD_PRIVATE_KEY"
    )]
    pub wireguard_private_key: Option<std::path::PathBuf>,
    /// WireGuard implementation: the kernel module when present (auto), or userspace (mcwan's
    /// own device on boringtun's noise protocol, on a TUN interface).
    #[arg(help_heading = "WAN (WireGuard, SD-WAN)", long, value_enum, default_value_t = WireguardBackend::Auto, env = "MCWAN_WIREGUARD_BACKEND")]
    pub wireguard_backend: WireguardBackend,
    /// Priority of the `ip rule`s of SD-WAN hand-off.
    #[arg(
        help_heading = "WAN (WireGuard, SD-WAN)",
        long,
        default_value_t = 1000,
        env = "MCWAN_RULE_PRIORITY"
    )]
    pub rule_priority: u32,
    /// UDP port on which this gateway answers peers' health probes and probes theirs
    /// (0 disables health checking).
    #[arg(
        help_heading = "Health checks",
        long,
        default_value_t = 9642,
        env = "MCWAN_HEALTH_PORT"
    )]
    pub health_port: u16,
    /// Interval between health probes to each peer and class (a duration: 100ms, 1s; a bare
    /// number is milliseconds).
    #[arg(help_heading = "Health checks", long = "health-interval", alias = "health-interval-ms", default_value = "100ms", value_parser = parse_millis, value_name = "DURATION", env = "MCWAN_HEALTH_INTERVAL_MS")]
    pub health_interval_ms: Duration,
    /// A probe not answered within this long is a miss (a bare number is milliseconds).
    #[arg(help_heading = "Health checks", long = "health-timeout", alias = "health-timeout-ms", default_value = "250ms", value_parser = parse_millis, value_name = "DURATION", env = "MCWAN_HEALTH_TIMEOUT_MS")]
    pub health_timeout_ms: Duration,
    /// Consecutive misses that mark a peer down (drained).
    #[arg(
        help_heading = "Health checks",
        long,
        default_value_t = 3,
        env = "MCWAN_HEALTH_FALL"
    )]
    pub health_fall: u32,
    /// Consecutive answers that mark a peer up again.
    #[arg(
        help_heading = "Health checks",
        long,
        default_value_t = 2,
        env = "MCWAN_HEALTH_RISE"
    )]
    pub health_rise: u32,
    /// How long to wait for work in flight on shutdown (a duration; a bare number is seconds).
    #[arg(help_heading = "Process", long, default_value = "5s", value_parser = parse_seconds, value_name = "DURATION", env = "MCWAN_SHUTDOWN_GRACE")]
    pub shutdown_grace: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WireguardBackend {
    Auto,
    Kernel,
    Userspace,
}

impl From<WireguardBackend> for mcwan_tunnel::Backend {
    fn from(b: WireguardBackend) -> Self {
        match b {
            WireguardBackend::Auto => Self::Auto,
            WireguardBackend::Kernel => Self::Kernel,
            WireguardBackend::Userspace => Self::Userspace,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dataplane {
    None,
    Ipvs,
}

fn parse_u32(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s:?}: {e}"))
}

#[derive(Debug, Args)]
pub struct StatusCmd {
    /// The gateway's admin endpoint (host:port). Without it, status is read from Kubernetes.
    #[arg(long, env = "MCWAN_GATEWAY")]
    pub gateway: Option<String>,
    #[command(flatten)]
    pub kube: crate::kube::cli::StatusArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    init_logging(cli.log_format);
    if let Some(path) = cli.kubeconfig {
        crate::kube::use_kubeconfig(path)?;
    }
    match cli.command {
        Command::Plan(cmd) => plan(cmd),
        Command::Gateway(cmd) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(crate::gateway::run(*cmd))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(StatusCmd {
            gateway: None,
            kube,
            output,
        }) => crate::kube::cli::status(kube, output),
        Command::Export(cmd) => crate::kube::cli::export(cmd),
        Command::Import(cmd) => crate::kube::cli::import(cmd),
        Command::Unimport(cmd) => crate::kube::cli::unimport(cmd),
        Command::Unexport(cmd) => crate::kube::cli::unexport(cmd),
        Command::Join(cmd) => crate::kube::cli::join(cmd),
        Command::Diagnose(cmd) => crate::kube::cli::diagnose(cmd),
        Command::Gather(cmd) => crate::kube::cli::gather(cmd),
        Command::Status(cmd) => {
            let gateway = cmd.gateway.unwrap_or_default();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let path = match cmd.output {
                Output::Table => "/status?format=table",
                Output::Json => "/status",
            };
            let text = runtime.block_on(crate::admin::client::get(&gateway, path))?;
            // A gateway's answer is printed as text it is: never as terminal control.
            print!("{}", crate::render::escape_controls(&text, true));
            Ok(ExitCode::SUCCESS)
        }
        Command::Uninstall(cmd) => crate::dataplane::uninstall::run(cmd),
        Command::Crds => {
            print!("{}", crate::render::crds_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("mcwan {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "mcwan", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => {
            let command = <Cli as clap::CommandFactory>::command();
            match dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    clap_mangen::generate_to(command, &dir).with_context(|| {
                        format!("cannot write the manual pages into {}", dir.display())
                    })?;
                }
                None => clap_mangen::Man::new(command)
                    .render(&mut std::io::stdout())
                    .context("cannot write the manual page")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "lab")]
        Command::Demo(cmd) => {
            crate::demo::run(cmd)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn plan(cmd: PlanCmd) -> anyhow::Result<ExitCode> {
    let catalog = cmd.plan.load_catalog()?;
    let cluster_id = cmd.plan.cluster_id()?;
    let config = cmd.plan.plan_config();
    let state = crate::desired::compute(crate::desired::Inputs {
        catalog: &catalog,
        cluster_id: &cluster_id,
        config: &config,
        previous: &Default::default(),
        down: &Default::default(),
    });
    match cmd.output {
        PlanOutput::Json => println!("{}", serde_json::to_string_pretty(&state)?),
        PlanOutput::Table => print!("{}", crate::render::plan_table(&state)),
        PlanOutput::Kube => println!(
            "{}",
            serde_json::to_string_pretty(&crate::kube::planned_objects(
                &cluster_id,
                &catalog,
                &state
            ))?
        ),
        PlanOutput::GatewayApi => println!(
            "{}",
            serde_json::to_string_pretty(&crate::kube::gateway_api::objects(&state))?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MCWAN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,hickory_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// A duration on the command line: a number with a unit (`100ms`, `30s`, `2m`, `1h`, or
/// `1m30s`), or a bare number in `bare_unit` (the unit the flag had before it took durations).
fn parse_duration(text: &str, bare_unit: Duration) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u32>() {
        return Ok(bare_unit * n);
    }
    let bad = || format!("{text:?} is not a duration (e.g. 250ms, 30s, 2m, 1h, 1m30s)");
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let part = u32::try_from(value)
            .ok()
            .and_then(|v| unit.checked_mul(v))
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A duration whose bare number is seconds.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    parse_duration(text, Duration::from_secs(1))
}

/// A duration whose bare number is milliseconds.
pub fn parse_millis(text: &str) -> Result<Duration, String> {
    parse_duration(text, Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// A ConfigMap (envFrom) can set every gateway flag.
    #[test]
    fn every_gateway_flag_has_an_mcwan_environment_variable() {
        let cli = Cli::command();
        let gateway = cli
            .get_subcommands()
            .find(|c| c.get_name() == "gateway")
            .expect("the gateway subcommand");
        let missing: Vec<String> = gateway
            .get_arguments()
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .filter(|a| {
                !a.get_env()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.starts_with("MCWAN_"))
            })
            .map(|a| a.get_id().to_string())
            .collect();
        assert!(missing.is_empty(), "no MCWAN_* variable: {missing:?}");
    }

    #[test]
    fn durations_take_units_and_bare_numbers_keep_the_old_unit() {
        use std::time::Duration;

        use super::{parse_millis, parse_seconds};
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_seconds("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_millis("100"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_millis("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_millis("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "s", "10x", "1.5s", "-1s", "99999999999s", "10 s"] {
            let err = parse_seconds(bad).unwrap_err();
            assert!(err.contains("is not a duration"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_old_flag_names_still_work() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["mcwan", "gateway"], args].concat()).unwrap();
            match cli.command {
                super::Command::Gateway(g) => g,
                _ => unreachable!(),
            }
        };
        let old = parse(&["--health-interval-ms", "200", "--resync-seconds", "7"]);
        let new = parse(&["--health-interval", "200ms", "--resync", "7s"]);
        assert_eq!(old.health_interval_ms, new.health_interval_ms);
        assert_eq!(old.resync_seconds, new.resync_seconds);
        assert_eq!(new.resync_seconds, std::time::Duration::from_secs(7));
    }
}
