//! Helpers for the real-kernel tests: `ipvsadm` runs, normalised output,
//! and cleanup guards that delete only what a test created.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;

use ipvs_netlink::Handle;

mod netns;

pub use netns::ClientNamespace;

/// Opens a handle; the VM runner has loaded `ip_vs`.
pub async fn handle() -> Handle {
    Handle::new().await.expect("IPVS handle (is ip_vs loaded?)")
}

/// Runs `ipvsadm` and returns its standard output; panics on failure.
pub fn ipvsadm(args: &[&str]) -> String {
    let out = Command::new("ipvsadm")
        .args(args)
        .output()
        .expect("run ipvsadm");
    assert!(
        out.status.success(),
        "ipvsadm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs a command, panicking on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `ipvsadm -Ln <extra> <service>` without its two column-header lines,
/// with runs of spaces collapsed: one entry per line.
pub fn listing(service: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["-L", "-n"];
    args.extend_from_slice(extra);
    args.extend_from_slice(service);
    normalise(&ipvsadm(&args))
        .into_iter()
        .filter(|line| !line.starts_with("Prot ") && !line.starts_with("-> RemoteAddress"))
        .collect()
}

/// Collapses whitespace in each non-empty line.
pub fn normalise(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

/// The lines of `ipvsadm -Sn` (save format) about one service.
pub fn saved(service_arg: &str) -> Vec<String> {
    normalise(&ipvsadm(&["-S", "-n"]))
        .into_iter()
        .filter(|line| line.contains(&format!(" {service_arg} ")))
        .collect()
}

/// Deletes the listed `ipvsadm` service selectors (`-t addr:port`,
/// `-f 7 -6`, ...) when dropped, whatever the test's outcome.
pub struct Cleanup(Vec<Vec<String>>);

impl Cleanup {
    pub fn services(selectors: &[&[&str]]) -> Self {
        for selector in selectors {
            delete(selector); // leftovers of an earlier, aborted run
        }
        Cleanup(
            selectors
                .iter()
                .map(|s| s.iter().map(|a| a.to_string()).collect())
                .collect(),
        )
    }
}

fn delete(selector: &[&str]) {
    let mut args = vec!["-D"];
    args.extend_from_slice(selector);
    let _ = Command::new("ipvsadm").args(&args).output();
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for selector in &self.0 {
            let selector: Vec<&str> = selector.iter().map(String::as_str).collect();
            delete(&selector);
        }
    }
}

/// `10.250.<n>.<host>`.
pub fn v4(n: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 250, n, host))
}

/// `fd00:250:<n>::<host>`, with `n` written in decimal as in the
/// `ipvsadm` arguments (`v6(16, 1)` is `fd00:250:16::1`).
pub fn v6(n: u16, host: u16) -> IpAddr {
    let segment = u16::from_str_radix(&n.to_string(), 16).expect("n below 10000");
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x250, segment, 0, 0, 0, 0, host))
}

pub fn sock(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// Runs a command, returning whatever happened.
pub fn run_quiet(program: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new(program).args(args).output()
}
