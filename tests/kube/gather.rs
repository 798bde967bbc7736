//! `mcwan gather` against cluster-2 of two real kube-apiservers joined with `mcwan join` and
//! its running gateway: the bundle holds each piece (or names it in ERRORS), and neither the
//! peer reader's token nor the admin's appears anywhere in it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::diagnose::netns;
use super::join::{join, mcwan_with, use_joined_kubeconfig};
use crate::support::{export_service, Backend, Clusterset};

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gather_writes_every_piece_and_no_token() {
    let mut cs = Clusterset::new(Backend::Real, 2).await;
    std::fs::remove_file(cs.peers_dir(1).join("cluster-1")).unwrap();
    export_service(cs.api(0), "shop", "cart").await;
    export_service(cs.api(1), "shop", "basket").await;
    let ((code, out, err), token) = join(&cs, 0, 1, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    use_joined_kubeconfig(&cs, 1, "cluster-1").await;
    cs.start_gateway(1).await;
    cs.wait_for_a(1, "shop", "cart").await;
    let admin: Value =
        serde_json::from_str(&std::fs::read_to_string(cs.kubeconfig(1)).unwrap()).unwrap();
    let admin_token = admin["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.len() > 20 && admin_token.len() > 8);

    let scratch = tempfile::tempdir().unwrap();
    let tarball = scratch.path().join("bundle.tar.gz");
    let (code, stdout, stderr) = mcwan_with(
        &cs.kubeconfig(1).display().to_string(),
        &[
            "gather",
            "--context",
            "cluster-2",
            "--gateway",
            &cs.admin_addr(1),
            "--output",
            &tarball.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let unpacked = scratch.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(tar.success());
    let top: Vec<_> = std::fs::read_dir(&unpacked)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(top.len(), 1, "{top:?}");
    let bundle = &top[0];
    let read = |name: &str| {
        std::fs::read_to_string(bundle.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };

    // The gateway's view: status (table and JSON), its plan, readiness, metrics.
    assert!(
        read("gateway/status.txt").contains("cart"),
        "{}",
        read("gateway/status.txt")
    );
    let status: Value = serde_json::from_str(&read("gateway/status.json")).unwrap();
    assert_eq!(status["ready"], true);
    let plan: Value = serde_json::from_str(&read("gateway/plan.json")).unwrap();
    assert!(plan.to_string().contains("cart"), "{plan}");
    assert!(read("gateway/metrics.txt").contains("mcwan_build_info"));
    // mcwan status of the cluster, table and JSON.
    assert!(
        read("status.txt").contains("basket"),
        "{}",
        read("status.txt")
    );
    let exports: Value = serde_json::from_str(&read("status.json")).unwrap();
    assert!(exports.to_string().contains("basket"), "{exports}");
    // mcwan's objects as YAML, Events.
    assert!(read("kube/serviceexports.yaml").contains("name: basket"));
    assert!(read("kube/serviceimports.yaml").contains("name: cart"));
    assert!(read("kube/wanpolicies.yaml").contains("name: gold"));
    assert!(read("kube/endpointslices.yaml").contains("cart"));
    assert!(!read("kube/serviceexports.yaml").contains("managedFields"));
    read("kube/events.yaml");
    // A piece that cannot be had is named in ERRORS, and the others were gathered anyway:
    // no kubelet runs here, so there is no gateway pod whose log the API could give.
    let errors = read("ERRORS");
    assert!(errors.contains("logs: no gateway pod"), "{errors}");
    for host in [
        "host/ipvsadm-Ln.txt",
        "host/wg-show.txt",
        "host/ip-rule.txt",
        "host/ip-route-proto-161.txt",
        "host/nft-inet-mcwan.txt",
    ] {
        assert!(
            bundle.join(host).exists() || errors.contains(&format!("{host}:")),
            "{host} neither gathered nor in ERRORS:\n{errors}"
        );
    }
    assert!(read("README").contains("gateway/metrics.txt"));

    // No token anywhere: not the peer reader's (in cluster-1's Secret, cluster-2's Secret
    // mcwan-peers and the gateway's peer kubeconfig), not the admin's.
    let mut files = Vec::new();
    files_under(bundle, &mut files);
    assert!(files.len() > 15, "{files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&token),
            "{} holds the peer reader's token",
            file.display()
        );
        assert!(
            !text.contains(&admin_token),
            "{} holds the admin's token",
            file.display()
        );
    }

    // The same into a directory; a non-empty directory is refused.
    let dir = scratch.path().join("dir");
    let (code, stdout, stderr) = mcwan_with(
        &cs.kubeconfig(1).display().to_string(),
        &[
            "gather",
            "--context",
            "cluster-2",
            "--gateway",
            &cs.admin_addr(1),
            "--output",
            &dir.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(dir.join("gateway/metrics.txt").exists());
    let (code, _, stderr) = mcwan_with(
        &cs.kubeconfig(1).display().to_string(),
        &["gather", "--output", &dir.display().to_string()],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("not empty"), "{stderr}");
}

/// `wg show all dump` of a real WireGuard device (wireguard-go in a namespace of the test,
/// with a peer and a preshared key): the bundle has both public keys and neither the private
/// nor the preshared key; a gather with no cluster and no gateway still writes its bundle,
/// every missing piece named in ERRORS.
#[test]
fn gather_lists_wireguard_without_its_keys() {
    let n = std::process::id() % 1000;
    let ns = netns::Netns::new(&format!("mcwan-gather-{n}"));
    let dev = format!("mcgwg{n}");
    let wg_go = crate::support::testbed::bin("wireguard-go");
    ns.sh(&format!(
        "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 {} {dev}",
        wg_go.display()
    ));
    let scratch = tempfile::tempdir().unwrap();
    let key = |cmd: &str, input: Option<&str>| {
        let mut c = Command::new("wg");
        c.arg(cmd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(i) = input {
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), i.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        String::from_utf8(child.wait_with_output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned()
    };
    let private = key("genkey", None);
    let public = key("pubkey", Some(&private));
    let peer_public = key("pubkey", Some(&key("genkey", None)));
    let psk = key("genpsk", None);
    let (private_file, psk_file) = (scratch.path().join("key"), scratch.path().join("psk"));
    std::fs::write(&private_file, &private).unwrap();
    std::fs::write(&psk_file, &psk).unwrap();
    netns::wait_for(
        "the WireGuard device",
        std::time::Duration::from_secs(10),
        || {
            ns.sh(&format!(
                "ip link show {dev} >/dev/null 2>&1 && echo up || true"
            ))
            .contains("up")
            .then_some(())
        },
    );
    ns.sh(&format!(
        "wg set {dev} private-key {} listen-port 51999 peer {peer_public} preshared-key {} \
         allowed-ips 10.99.0.2/32 endpoint 10.99.0.2:51999",
        private_file.display(),
        psk_file.display()
    ));
    let dir = scratch.path().join("bundle");
    let out = ns.sh(&format!(
        "KUBECONFIG=/nonexistent MCWAN_LOG=warn {} gather --gateway 127.0.0.1:1 --timeout 2s --output {}",
        env!("CARGO_BIN_EXE_mcwan"),
        dir.display()
    ));
    assert!(out.contains("wrote"), "{out}");
    let wg = std::fs::read_to_string(dir.join("host/wg-show.txt")).unwrap();
    assert!(wg.contains(&format!("{dev}\t{public}\t51999")), "{wg}");
    assert!(
        wg.contains(&peer_public) && wg.contains("10.99.0.2/32"),
        "{wg}"
    );
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    for file in &files {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        assert!(
            !text.contains(&private),
            "{} holds the private key",
            file.display()
        );
        assert!(
            !text.contains(&psk),
            "{} holds the preshared key",
            file.display()
        );
    }
    let errors = std::fs::read_to_string(dir.join("ERRORS")).unwrap();
    for piece in ["gateway/status.json:", "gateway/metrics.txt:", "kube:"] {
        assert!(errors.contains(piece), "no {piece} in ERRORS:\n{errors}");
    }
    drop(ns); // ends wireguard-go with the namespace
    let _ = std::fs::remove_file(format!("/var/run/wireguard/{dev}.sock"));
}
