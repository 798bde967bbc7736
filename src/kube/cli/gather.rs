//! `mcwan gather [--output DIR | FILE.tar.gz]`: a support bundle of one gateway and its
//! cluster, for a bug report.
//!
//! Each piece is gathered on its own: one that fails is named with its error in `ERRORS` and
//! the others go on. Nothing secret is written: no Secret is read, `wg show all dump` loses its
//! private and preshared key columns, and every text is scrubbed of bearer tokens (JWTs) and
//! PEM private keys before it is written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, LogParams};
use kube::Client;
use serde::Serialize;

use super::block_on;
use super::join::NAMESPACE;
use crate::crd;
use crate::kube::{local_client, LABEL_SLICE_MANAGED_BY, MANAGED_BY};

/// At most this many Events, the newest.
const MAX_EVENTS: usize = 500;

#[derive(Debug, Args)]
pub struct GatherCmd {
    /// Where to write the bundle: a directory (created; it must be empty if it exists), or a
    /// file ending in .tar.gz (default: mcwan-gather-<time>.tar.gz here).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// The kubeconfig context (default: the current context, or in-cluster). The Kubernetes
    /// pieces (objects, Events, the gateway's logs, `mcwan status`) need one.
    #[arg(long, env = "MCWAN_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// The gateway's admin endpoint (host:port), for its status, plan and metrics.
    #[arg(long, env = "MCWAN_GATEWAY", default_value = "127.0.0.1:9641")]
    pub gateway: String,
    /// Lines of each gateway container's log.
    #[arg(long, default_value_t = 10_000)]
    pub log_lines: i64,
    /// How long each piece may take (a duration: 20s, 1m; a bare number is seconds).
    #[arg(long, default_value = "20s", value_parser = crate::cli::parse_seconds, value_name = "DURATION")]
    pub timeout: Duration,
}

/// The bundle being written: a directory, and the pieces that failed.
#[derive(Debug)]
struct Bundle {
    dir: PathBuf,
    files: Vec<String>,
    errors: Vec<String>,
}

impl Bundle {
    /// Writes `text`, scrubbed, as `name` (a path inside the bundle).
    fn write(&mut self, name: &str, text: &str) {
        let path = self.dir.join(name);
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, scrub(text).as_bytes()));
        match result {
            Ok(()) => self.files.push(name.to_owned()),
            Err(e) => self.errors.push(format!("{name}: cannot write: {e}")),
        }
    }

    /// Records the result of a piece: its text as `name`, or its error in ERRORS.
    fn piece(&mut self, name: &str, result: anyhow::Result<String>) {
        match result {
            Ok(text) => self.write(name, &text),
            Err(e) => self.errors.push(format!(
                "{name}: {}",
                scrub(&format!("{e:#}")).replace('\n', " ")
            )),
        }
    }
}

/// Replaces what looks like a credential: JSON Web Tokens (service-account and OIDC bearer
/// tokens) and PEM private key blocks.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // PEM private keys first.
    while let Some(start) = rest.find("-----BEGIN") {
        let header_end = rest[start..].find('\n').map_or(rest.len(), |i| start + i);
        if rest[start..header_end].contains("PRIVATE KEY") {
            out.push_str(&rest[..start]);
            out.push_str("<private key removed by mcwan gather>");
            rest = match rest[start..].find("-----END") {
                Some(end) => {
                    let after = start + end;
                    let close = rest[after + 8..]
                        .find("-----")
                        .map_or(rest.len(), |i| after + 8 + i + 5);
                    &rest[close..]
                }
                None => "",
            };
        } else {
            out.push_str(&rest[..header_end]);
            rest = &rest[header_end..];
        }
    }
    out.push_str(rest);
    scrub_jwts(&out)
}

fn is_b64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// `eyJ...` `.` `...` `.` `...`: a JWT's three base64url parts.
fn scrub_jwts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let boundary = i == 0 || !is_b64url(char::from(bytes[i - 1]));
        if boundary && text[i..].starts_with("eyJ") {
            let mut end = i;
            let mut parts = 1;
            let mut part_len = 0;
            let mut ok = true;
            for c in text[i..].chars() {
                if is_b64url(c) {
                    part_len += 1;
                } else if c == '.' && part_len > 0 && parts < 3 {
                    parts += 1;
                    part_len = 0;
                } else {
                    break;
                }
                end += c.len_utf8();
            }
            if parts < 3 || part_len == 0 {
                ok = false;
            }
            if ok {
                out.push_str("<token removed by mcwan gather>");
                i = end;
                continue;
            }
        }
        let c = text[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `wg show all dump` without key material: an interface's line loses its private key, a
/// peer's its preshared key; a line of another shape is dropped.
pub fn wg_dump_without_keys(dump: &str) -> String {
    let mut out = String::from(
        "# wg show all dump, private and preshared keys removed\n\
         # interface: name public-key listen-port fwmark\n\
         # peer: interface public-key endpoint allowed-ips latest-handshake rx-bytes tx-bytes persistent-keepalive\n",
    );
    for line in dump.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let kept: Vec<&str> = match fields.len() {
            5 => [&fields[..1], &fields[2..]].concat(),
            9 => [&fields[..2], &fields[3..]].concat(),
            _ => continue,
        };
        out.push_str(&kept.join("\t"));
        out.push('\n');
    }
    out
}

/// Runs a command of this host and returns its output, or why not.
async fn host_command(program: &str, args: &[&str], timeout: Duration) -> anyhow::Result<String> {
    let run = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| anyhow::anyhow!("{program}: no result within {:?}", timeout))?
        .with_context(|| format!("cannot run {program}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "{program} {}: {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(stdout)
}

/// This mcwan binary's own command, as text (its stdout), for `mcwan status`.
async fn mcwan_command(args: &[String], timeout: Duration) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find this mcwan binary")?;
    let run = tokio::process::Command::new(exe)
        .args(args)
        .env("MCWAN_LOG", "error")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| anyhow::anyhow!("mcwan {}: no result within {:?}", args.join(" "), timeout))?
        .context("cannot run mcwan")?;
    anyhow::ensure!(
        out.status.success(),
        "mcwan {}: {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Objects as a YAML `List`, without their managed fields.
fn yaml_list<T: Serialize>(items: &[T]) -> anyhow::Result<String> {
    let mut values = Vec::new();
    for item in items {
        let mut v = serde_json::to_value(item)?;
        if let Some(meta) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
        }
        values.push(v);
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": values});
    Ok(serde_saphyr::to_string(&list)?)
}

async fn list_all<K>(client: &Client, params: &ListParams) -> anyhow::Result<String>
where
    K: kube::Resource<DynamicType = ()>,
{
    let resource = kube::api::ApiResource::erase::<K>(&());
    let api = Api::<kube::api::DynamicObject>::all_with(client.clone(), &resource);
    let mut items = api.list(params).await?.items;
    for item in &mut items {
        item.types = Some(kube::api::TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        });
    }
    yaml_list(&items)
}

/// The newest Events of mcwan: those it reported, and those in its namespace.
async fn events(client: &Client) -> anyhow::Result<String> {
    let api = Api::<Event>::all(client.clone());
    let mut items: Vec<Event> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.reporting_controller.as_deref() == Some("mcwan")
                || e.metadata.namespace.as_deref() == Some(NAMESPACE)
        })
        .collect();
    let when = |e: &Event| {
        e.series
            .as_ref()
            .map(|s| s.last_observed_time.0)
            .or(e.event_time.as_ref().map(|t| t.0))
            .or(e.deprecated_last_timestamp.as_ref().map(|t| t.0))
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    items.sort_by_key(|e| when(e));
    let skip = items.len().saturating_sub(MAX_EVENTS);
    yaml_list(&items[skip..])
}

async fn kube_pieces(cmd: &GatherCmd, client: &Client, bundle: &mut Bundle, timeout: Duration) {
    let all = ListParams::default();
    macro_rules! piece {
        ($name:expr, $fut:expr) => {{
            let result = match tokio::time::timeout(timeout, $fut).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("no answer within {:?}", timeout)),
            };
            bundle.piece($name, result);
        }};
    }
    piece!(
        "kube/serviceexports.yaml",
        list_all::<crd::ServiceExport>(client, &all)
    );
    piece!(
        "kube/serviceimports.yaml",
        list_all::<crd::ServiceImport>(client, &all)
    );
    piece!(
        "kube/wanpolicies.yaml",
        list_all::<crd::WanPolicy>(client, &all)
    );
    piece!(
        "kube/wanimports.yaml",
        list_all::<crd::WanImport>(client, &all)
    );
    piece!(
        "kube/clusterproperties.yaml",
        list_all::<crd::ClusterProperty>(client, &all)
    );
    let mcwan_slices =
        ListParams::default().labels(&format!("{LABEL_SLICE_MANAGED_BY}={MANAGED_BY}"));
    piece!(
        "kube/endpointslices.yaml",
        list_all::<EndpointSlice>(client, &mcwan_slices)
    );
    piece!("kube/events.yaml", events(client));

    // `mcwan status`, table and JSON.
    let mut args = vec!["status".to_owned()];
    if let Some(c) = &cmd.context {
        args.push(format!("--context={c}"));
    }
    piece!("status.txt", mcwan_command(&args, timeout));
    args.push("--output=json".to_owned());
    piece!("status.json", mcwan_command(&args, timeout));

    // The gateway's logs, through the API.
    let pods = Api::<Pod>::namespaced(client.clone(), NAMESPACE);
    let gateways = ListParams::default().labels("app.kubernetes.io/component=gateway");
    match tokio::time::timeout(timeout, pods.list(&gateways)).await {
        Ok(Ok(list)) if list.items.is_empty() => bundle.errors.push(format!(
            "logs: no gateway pod in {NAMESPACE} (label app.kubernetes.io/component=gateway)"
        )),
        Ok(Ok(list)) => {
            for pod in list.items {
                let Some(name) = pod.metadata.name.clone() else {
                    continue;
                };
                let containers: Vec<String> = pod
                    .spec
                    .iter()
                    .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
                    .map(|c| c.name.clone())
                    .collect();
                let restarted: Vec<String> = pod
                    .status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
                    .filter(|c| c.restart_count > 0)
                    .map(|c| c.name.clone())
                    .collect();
                for container in containers {
                    for previous in [false, true] {
                        if previous && !restarted.contains(&container) {
                            continue;
                        }
                        let params = LogParams {
                            container: Some(container.clone()),
                            tail_lines: Some(cmd.log_lines),
                            timestamps: true,
                            previous,
                            ..Default::default()
                        };
                        let file = format!(
                            "logs/{name}.{container}{}.log",
                            if previous { ".previous" } else { "" }
                        );
                        let result =
                            match tokio::time::timeout(timeout, pods.logs(&name, &params)).await {
                                Ok(r) => r.map_err(anyhow::Error::from),
                                Err(_) => Err(anyhow::anyhow!("no answer within {:?}", timeout)),
                            };
                        bundle.piece(&file, result);
                    }
                }
            }
        }
        Ok(Err(e)) => bundle
            .errors
            .push(format!("logs: cannot list the gateway pods: {e}")),
        Err(_) => bundle
            .errors
            .push(format!("logs: no answer within {:?}", timeout)),
    }
}

async fn gather_into(cmd: &GatherCmd, dir: &Path) -> Bundle {
    let timeout = cmd.timeout.max(Duration::from_millis(100));
    let mut bundle = Bundle {
        dir: dir.to_owned(),
        files: Vec::new(),
        errors: Vec::new(),
    };

    // The gateway's own view.
    let admin = |path: &'static str| {
        let addr = cmd.gateway.clone();
        async move {
            tokio::time::timeout(timeout, crate::admin::client::get(&addr, path))
                .await
                .map_err(|_| anyhow::anyhow!("{addr}{path}: no answer within {:?}", timeout))?
        }
    };
    bundle.piece("gateway/status.txt", admin("/status?format=table").await);
    match admin("/status").await {
        Ok(json) => {
            let plan = serde_json::from_str::<serde_json::Value>(&json)
                .map_err(anyhow::Error::from)
                .and_then(|v| Ok(serde_json::to_string_pretty(&v["state"])?));
            bundle.write("gateway/status.json", &json);
            bundle.piece("gateway/plan.json", plan);
        }
        Err(e) => {
            bundle.piece("gateway/status.json", Err(e));
            bundle
                .errors
                .push("gateway/plan.json: the gateway's /status did not answer".to_owned());
        }
    }
    bundle.piece("gateway/readyz.txt", admin("/readyz").await);
    bundle.piece("gateway/metrics.txt", admin("/metrics").await);

    // This host's dataplane (meaningful on the gateway's node).
    bundle.piece(
        "host/ipvsadm-Ln.txt",
        host_command("ipvsadm", &["-Ln"], timeout).await,
    );
    bundle.piece(
        "host/wg-show.txt",
        host_command("wg", &["show", "all", "dump"], timeout)
            .await
            .map(|d| wg_dump_without_keys(&d)),
    );
    bundle.piece(
        "host/ip-rule.txt",
        host_command("ip", &["rule"], timeout).await,
    );
    bundle.piece(
        "host/ip-route-proto-161.txt",
        host_command(
            "ip",
            &["route", "show", "table", "all", "proto", "161"],
            timeout,
        )
        .await,
    );
    bundle.piece(
        "host/nft-inet-mcwan.txt",
        host_command("nft", &["list", "table", "inet", "mcwan"], timeout).await,
    );

    // The cluster.
    match tokio::time::timeout(timeout, local_client(cmd.context.as_deref())).await {
        Ok(Ok(client)) => kube_pieces(cmd, &client, &mut bundle, timeout).await,
        Ok(Err(e)) => bundle
            .errors
            .push(format!("kube: no Kubernetes pieces: {e}")),
        Err(_) => bundle
            .errors
            .push("kube: no Kubernetes pieces: no client in time".to_owned()),
    }

    let errors = if bundle.errors.is_empty() {
        String::new()
    } else {
        bundle.errors.join("\n") + "\n"
    };
    bundle.write("ERRORS", &errors);
    let mut files = bundle.files.clone();
    files.sort();
    let about = format!(
        "mcwan gather, mcwan {} at {}\ngateway admin endpoint: {}\nkube context: {}\nfiles:\n{}",
        env!("CARGO_PKG_VERSION"),
        k8s_openapi::jiff::Timestamp::now(),
        cmd.gateway,
        cmd.context.as_deref().unwrap_or("(current)"),
        files.iter().map(|f| format!("  {f}\n")).collect::<String>()
    );
    bundle.write("README", &about);
    bundle
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes the bundle and says where, and which pieces failed.
pub fn gather(cmd: GatherCmd) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let stamp = k8s_openapi::jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let output = cmd
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("mcwan-gather-{stamp}.tar.gz")));
        let tarball = output.to_string_lossy().ends_with(".tar.gz")
            || output.to_string_lossy().ends_with(".tgz");
        let (dir, scratch) = if tarball {
            anyhow::ensure!(
                !output.exists(),
                "{} exists: give another --output",
                output.display()
            );
            let scratch =
                std::env::temp_dir().join(format!("mcwan-gather-{}-{stamp}", std::process::id()));
            (scratch.join(format!("mcwan-gather-{stamp}")), Some(scratch))
        } else {
            if output.exists() {
                let empty = std::fs::read_dir(&output)
                    .with_context(|| format!("--output {}", output.display()))?
                    .next()
                    .is_none();
                anyhow::ensure!(
                    empty,
                    "--output {}: the directory is not empty",
                    output.display()
                );
            }
            (output.clone(), None)
        };
        create_private_dir(&dir)?;
        let bundle = gather_into(&cmd, &dir).await;
        if let Some(scratch) = &scratch {
            let parent = dir.parent().unwrap_or(scratch);
            let base = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let packed = std::process::Command::new("tar")
                .arg("-czf")
                .arg(&output)
                .arg("-C")
                .arg(parent)
                .arg(&base)
                .status();
            let _ = std::fs::remove_dir_all(scratch);
            match packed {
                Ok(s) if s.success() => {}
                Ok(s) => anyhow::bail!("tar -czf {}: {s}", output.display()),
                Err(e) => anyhow::bail!("cannot run tar to write {}: {e}", output.display()),
            }
        }
        println!(
            "wrote {} ({} files; {} pieces failed, listed in ERRORS)",
            output.display(),
            bundle.files.len(),
            bundle.errors.len()
        );
        for e in &bundle.errors {
            eprintln!("  {e}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wg_dump_loses_private_and_preshared_keys() {
        let private = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        let public = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
        let psk = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";
        let peer = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
        let dump = format!(
            "wg0\t{private}\t{public}\t51820\toff\n\
             wg0\t{peer}\t{psk}\t192.0.2.2:51820\t10.0.0.2/32\t1700000000\t100\t200\t25\n\
             wg1\t{private}\t{public}\t51821\n"
        );
        let out = wg_dump_without_keys(&dump);
        assert!(!out.contains(private) && !out.contains(psk), "{out}");
        assert!(out.contains(public) && out.contains(peer), "{out}");
        assert!(out.contains(&format!("wg0\t{public}\t51820\toff")), "{out}");
        assert!(out.contains("192.0.2.2:51820\t10.0.0.2/32"), "{out}");
        // A line of an unknown shape (here four fields) could hold anything: it is dropped.
        assert!(!out.contains("51821"), "{out}");
    }

    #[test]
    fn tokens_and_private_keys_are_scrubbed() {
        let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl-_x";
        let text = format!("token: \"{jwt}\"\nBearer {jwt}\nkeep eyJnot-a-token here\n");
        let out = scrub(&text);
        assert!(!out.contains(jwt), "{out}");
        assert!(out.contains("keep eyJnot-a-token here"), "{out}");
        let pem = "a\n-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\nb\n-----BEGIN CERTIFICATE-----\nMIIC\n";
        let out = scrub(pem);
        assert!(
            !out.contains("MIIEv") && out.contains("MIIC") && out.ends_with("MIIC\n"),
            "{out}"
        );
    }
}
