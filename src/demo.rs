//! `mcwan demo`: the seed's user stories on a three-cluster lab on this host (see
//! [`crate::lab`]), told step by step, cleaned up afterwards, also when interrupted.
//!
//! The lab needs root, IPVS, WireGuard and network namespaces. Where this kernel cannot give
//! them (no IPVS module, not root), the demo boots a small VM with virtme-ng and the distribution
//! kernel in /boot, as the test tier does, runs itself inside it and says so. The VM runs under
//! software emulation unless `MCWAN_VM_KVM` is set and /dev/kvm opens (nested KVM does not boot
//! on every host, so it is opt-in).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::lab::{self, netns, Lab, LabOptions, WanKind};

/// Namespace prefix of the demo's lab.
const PREFIX: &str = "mcwdemo-";

#[derive(Debug, Args)]
pub struct DemoCmd {
    /// How the gateways reach each other.
    #[arg(long, value_enum, default_value = "wireguard")]
    pub wan: WanKind,
    /// Never boot a VM: fail if this host cannot run the lab itself.
    #[arg(long)]
    pub no_vm: bool,
    /// The kernel the VM boots (default: the newest /boot/vmlinuz-*).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Set when running inside the demo's VM.
    #[arg(long, hide = true)]
    pub in_vm: bool,
}

pub fn run(cmd: DemoCmd) -> Result<()> {
    if cmd.in_vm {
        let _ = netns::run(
            "modprobe",
            &[
                "-a",
                "ip_vs",
                "ip_vs_wrr",
                "wireguard",
                "nf_tables",
                "dummy",
                "veth",
                "bridge",
                "tun",
            ],
        );
        return demo(cmd.wan);
    }
    match missing() {
        None => demo(cmd.wan),
        Some(why) if cmd.no_vm => bail!("this host cannot run the lab: {why}"),
        Some(why) => in_vm(&cmd, &why),
    }
}

/// Why this host cannot run the lab itself, if it cannot.
fn missing() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Some("it needs root (network namespaces, IPVS)".into());
    }
    for tool in ["ip", "ipvsadm", "wg", "dig", "nft"] {
        if which(tool).is_none() {
            return Some(format!("{tool} is not installed"));
        }
    }
    let _ = netns::run("modprobe", &["-a", "ip_vs", "wireguard"]);
    if !Path::new("/proc/net/ip_vs").exists() {
        let kernel = netns::run("uname", &["-r"]).unwrap_or_default();
        return Some(format!("this kernel ({}) has no IPVS", kernel.trim()));
    }
    None
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// Runs the demo inside a virtme-ng VM with this host's file system.
fn in_vm(cmd: &DemoCmd, why: &str) -> Result<()> {
    let kernel = match &cmd.kernel {
        Some(k) => k.clone(),
        None => newest_kernel().context(
            "no /boot/vmlinuz-* to boot: install one (apt install linux-image-amd64) or pass --kernel",
        )?,
    };
    let Some(vng) = which("vng") else {
        bail!("{why}, and virtme-ng is not installed to run the demo in a VM: `pip install virtme-ng` (and apt install qemu-system-x86), or run scripts/demo, which installs them");
    };
    let exe = std::env::current_exe().context("cannot find the mcwan executable")?;
    let kvm = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
        && std::env::var_os("MCWAN_VM_KVM").is_some();
    println!("mcwan demo: {why}, so the demo runs in a VM: virtme-ng boots {} with this host's file system ({}), and mcwan runs there as root.\n", kernel.display(), if kvm { "KVM" } else { "software emulation: allow a minute or two" });
    let inner = format!(
        "{} demo --in-vm --wan {}",
        exe.display(),
        match cmd.wan {
            WanKind::Wireguard => "wireguard",
            WanKind::Sdwan => "sdwan",
        }
    );
    let mut vm = std::process::Command::new(vng);
    if !kvm {
        vm.arg("--disable-kvm");
    }
    let status = vm
        .args(["-r"])
        .arg(&kernel)
        .args([
            "--user", "root", "--memory", "2G", "--cpus", "2", "--", &inner,
        ])
        .status()
        .context("cannot start virtme-ng")?;
    anyhow::ensure!(status.success(), "the demo in the VM failed ({status})");
    Ok(())
}

fn newest_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels.pop()
}

/// Deletes the lab's namespaces (and the gateways in them) when SIGINT or SIGTERM arrives.
fn clean_up_on_signal(dir: PathBuf) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            eprintln!("\nmcwan demo: interrupted; deleting the lab's namespaces and files");
            netns::delete_all(PREFIX);
            let _ = std::fs::remove_dir_all(&dir);
            std::process::exit(130);
        })?;
    Ok(())
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("   {l}\n"))
        .collect::<String>()
}

fn demo(wan: WanKind) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("mcwan-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    clean_up_on_signal(dir.clone())?;
    let result = tell(wan, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    match &result {
        Ok(()) => {
            println!("\nmcwan demo: done; the lab's namespaces, gateways and files are gone.")
        }
        Err(_) => {
            println!("\nmcwan demo: failed; the lab's namespaces, gateways and files are gone.")
        }
    }
    result
}

fn tell(wan: WanKind, dir: &Path) -> Result<()> {
    let started = Instant::now();
    step("Building three clusters in network namespaces");
    let mut lab = Lab::build(LabOptions {
        prefix: PREFIX.to_owned(),
        wan,
        exe: std::env::current_exe()?,
        dir: dir.to_owned(),
        logs: dir.join("logs"),
        management: false,
    })?;
    println!(
        "   each cluster: a gateway, a client pod and backend pods; the WAN: {}",
        match wan {
            WanKind::Wireguard =>
                "a bridge, with one WireGuard tunnel per WAN policy class between the gateways",
            WanKind::Sdwan =>
                "a bridge behind one SD-WAN edge router per cluster, one link per class",
        }
    );
    println!(
        "   catalog: {} (the seed's user stories)",
        lab.catalog_dir().display()
    );
    for i in 1..=lab::CLUSTERS {
        let t = Instant::now();
        lab.start_gateway(i, &[])?;
        println!(
            "   cluster-{i}'s gateway is ready ({:.1} s; log {})",
            t.elapsed().as_secs_f64(),
            lab.log_file(i).display()
        );
    }

    step("payment.secure: exported by cluster-1 on sd-wan-priority-high (class business)");
    story(&lab, "payment", "secure", "business")?;
    step("logging.insecure: exported by cluster-1 on sd-wan-priority-low (class default)");
    story(&lab, "logging", "insecure", "default")?;
    step("The L7 split: one payment backend, two exports, each on its own class");
    story(&lab, "payment-high-prio", "secure", "business")?;
    story(&lab, "payment-low-prio", "secure", "default")?;

    step("The L7 story: payment.secure's WANRoute in cluster-1 (deploy/examples/wanroute-payment.yaml): GET /payment is sensitive (business), /stats is not (default), the rest is denied");
    l7_story(&lab)?;

    step("cluster-2's IPVS table (ipvsadm -Ln): each ClusterSetIP balances to the exporting gateways' ingress ports");
    print!("{}", indent(&lab.ipvsadm(2)?));
    if wan == WanKind::Wireguard {
        step("cluster-2's tunnels (wg show)");
        print!("{}", indent(&lab.wg_show(2)?));
    }

    step("Failover: cluster-1 dies (gateway killed, WAN link cut); cluster-3 also exports payment");
    let vip = lab.resolve(2, "payment", "secure")?;
    let outage = failover(&mut lab, vip)?;
    println!("   a client calling {vip}:8080 every 50 ms got no answer for {:.0} ms; then cluster-3 answered", outage.as_secs_f64() * 1000.0);
    lab.set_wan(1, true)?;
    let t = Instant::now();
    lab.start_gateway(1, &[])?;
    until_cluster(&lab, vip, "cluster-1", Duration::from_secs(120))?;
    println!("   cluster-1 is back: its gateway restarted, passed cluster-2's health checks, and answers again ({:.1} s after the restart); it is ranked first by mcw.l7mp.io/cluster-priority", t.elapsed().as_secs_f64());

    step("What cluster-2's gateway reports (mcwan status --gateway)");
    let status = lab
        .site(2)
        .gw
        .enter(|| lab::http_get("127.0.0.1:9641", "/status?format=table"))??;
    print!("{}", indent(&status.1));
    println!("\n   ({:.0} s in all)", started.elapsed().as_secs_f64());
    Ok(())
}

/// Resolves a service from cluster-2, calls it, and shows the class's interface counting it.
fn story(lab: &Lab, service: &str, namespace: &str, class: &str) -> Result<()> {
    let name = format!("{service}.{namespace}.svc.clusterset.local");
    println!(
        "   $ dig @{} {name}   (in cluster-2's client pod)",
        lab::addr::gateway_lan(2)
    );
    print!("{}", indent(lab.dig(2, &name, "A")?.trim_end()));
    let vip = lab.resolve(2, service, namespace)?;
    let ifname = lab.class_interface(class);
    let before = lab.class_bytes(2, class)?;
    let mut conn = lab.connect(2, vip, Duration::from_secs(5))?;
    let echoed = conn.echo("hello across the clusterset")?;
    let greeting = conn.greeting.clone();
    drop(conn);
    let after = lab.class_bytes(2, class)?;
    println!("   connect {vip}:8080 -> answered by {greeting:?}, echoed {echoed:?}");
    println!(
        "   the traffic left cluster-2 on {ifname} (class {class}): +{} bytes",
        after.saturating_sub(before)
    );
    Ok(())
}

/// The seed's L7 story: with payment's WANRoute, cluster-2's gateway proxies its ClusterSetIP
/// and picks the class per request; each request's bytes show on its class's interface, and
/// the backend says which trace arrived. The route is removed afterwards (payment goes back to
/// IPVS for the failover below).
fn l7_story(lab: &Lab) -> Result<()> {
    let t = Instant::now();
    let vip = lab.route_payment(Duration::from_secs(60))?;
    println!(
        "   cluster-2's gateway took the route ({:.1} s): {vip}:8080 is now its HTTP proxy, no longer an IPVS virtual service",
        t.elapsed().as_secs_f64()
    );
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (method, path, headers) in [
        ("GET", "/payment?size=100000", vec![("traceparent", trace)]),
        ("GET", "/stats?size=100000", vec![]),
        ("POST", "/payment", vec![]),
    ] {
        let before: Vec<u64> = ["business", "default"]
            .iter()
            .map(|c| lab.class_bytes(2, c))
            .collect::<Result<_>>()?;
        let reply = lab.http(2, vip, method, path, &headers)?;
        let moved: Vec<String> = ["business", "default"]
            .iter()
            .zip(before)
            .map(|(c, b)| {
                Ok(format!(
                    "{} +{}",
                    lab.class_interface(c),
                    lab.class_bytes(2, c)?.saturating_sub(b)
                ))
            })
            .collect::<Result<_>>()?;
        let sent = if headers.is_empty() {
            String::new()
        } else {
            format!(" (traceparent {trace})")
        };
        let first = reply.body.lines().next().unwrap_or_default();
        println!("   {method} {path}{sent} -> {}: {first:?}", reply.status);
        println!("      bytes: {}", moved.join(", "));
    }
    println!("   (the far side saw the client's trace id, or one the gateway started; mcwan_l7_requests_total counts each by service, class and rule)");
    lab.unroute_payment(Duration::from_secs(60))?;
    println!("   route removed: payment is an IPVS virtual service again");
    Ok(())
}

/// Kills cluster-1 (its WAN cut, its gateway killed) and measures how long a client in
/// cluster-2 calling `vip` gets no answer.
fn failover(lab: &mut Lab, vip: IpAddr) -> Result<Duration> {
    lab.set_wan(1, false)?;
    let cut = Instant::now();
    lab.stop_gateway(1, false)?;
    until_cluster(lab, vip, "cluster-3", Duration::from_secs(60))?;
    Ok(cut.elapsed())
}

/// Calls `vip` from cluster-2 every 50 ms until `cluster` answers.
pub fn until_cluster(lab: &Lab, vip: IpAddr, cluster: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let t = Instant::now();
        if let Ok(c) = lab.connect(2, vip, Duration::from_millis(300)) {
            if c.cluster() == cluster {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50).saturating_sub(t.elapsed()));
    }
    bail!("{cluster} did not answer on {vip} within {limit:?}")
}
