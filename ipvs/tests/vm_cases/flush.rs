//! Flushing, confined to a network namespace of its own.

use ipvs_netlink::{Service, ServiceKey};

use crate::vm_support::*;

/// Runs [`flush_child`] in a fresh network namespace, where flushing
/// touches nothing but what the child created.
#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn flush_all_dangerous_empties_only_its_own_namespace() {
    let _guard = Cleanup::services(&[&["-t", "10.250.18.1:80"]]);
    ipvsadm(&["-A", "-t", "10.250.18.1:80", "-s", "rr"]);
    let _ = run_quiet("ip", &["netns", "del", "ipvs-flush-test"]);
    run("ip", &["netns", "add", "ipvs-flush-test"]);
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "ipvs-flush-test"])
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            "vm_cases::flush::flush_child",
            "--nocapture",
        ])
        .env("IPVS_NETLINK_FLUSH_CHILD", "1")
        .output()
        .expect("run child");
    let _ = run_quiet("ip", &["netns", "del", "ipvs-flush-test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("flush child done"), "{stdout}");
    assert_eq!(
        listing(&["-t", "10.250.18.1:80"], &[]),
        ["TCP 10.250.18.1:80 rr"]
    );
}

/// The child half of the flush test; does nothing unless started by it.
#[tokio::test]
#[ignore = "real-kernel VM tier: run by tests/vm/run"]
async fn flush_child() {
    if std::env::var_os("IPVS_NETLINK_FLUSH_CHILD").is_none() {
        return;
    }
    let ipvs = handle().await;
    for i in 1..=3 {
        ipvs.services()
            .add(Service::new(ServiceKey::tcp(v4(18, i), 80), "rr"))
            .execute()
            .await
            .expect("add");
    }
    assert_eq!(
        ipvs.services().dump().execute().await.expect("dump").len(),
        3
    );
    ipvs.flush_all_dangerous().await.expect("flush");
    assert!(ipvs
        .services()
        .dump()
        .execute()
        .await
        .expect("dump")
        .is_empty());
    assert!(ipvsadm(&["-S", "-n"]).trim().is_empty());
    println!("flush child done");
}
