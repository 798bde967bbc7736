//! Test support: uniquely named network namespaces (deleted on drop, even on panic), veth
//! links, and a tokio runtime on a thread inside a namespace, so that sockets, netlink
//! connections, TUN devices and boringtun threads are created there.
#![allow(clippy::unwrap_used, dead_code)]

pub mod scenario;

use std::future::Future;
use std::os::fd::AsFd as _;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A short unique tag for this process and call (hex, 5 characters).
pub fn unique_tag() -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!(
        "{:05x}",
        (std::process::id().wrapping_mul(16) + n) & 0xfffff
    )
}

/// Whether this host can run namespace tests (root with `ip netns`); prints why not.
pub fn can_run() -> bool {
    let probe = format!("mcwt-probe-{}", unique_tag());
    let ok = Command::new("ip")
        .args(["netns", "add", &probe])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        let _ = Command::new("ip").args(["netns", "del", &probe]).output();
    } else {
        eprintln!("\n#### NETNS TEST SKIPPED: needs root and `ip netns` ####\n");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("namespace tests cannot run under CI=true");
        }
    }
    ok
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn run(args: &[&str]) -> Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(role: &str) -> Self {
        let name = format!("mcwt-{}-{role}", unique_tag());
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.sh(&["ip", "link", "set", "lo", "up"]);
        ns.sh(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]);
        ns.sh(&["sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"]);
        ns
    }

    /// Runs a command inside, panicking on failure.
    pub fn sh(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// Runs a command inside.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        run(&full)
    }

    /// A tokio runtime on a thread inside this namespace.
    pub fn runtime(&self) -> NsRuntime {
        NsRuntime::new(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Joins `a` and `b` with a veth pair named `a_if`/`b_if` with the given addresses (CIDR).
pub fn veth(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    sh(&[
        "ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]);
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        ns.sh(&["ip", "addr", "add", addr, "dev", ifname]);
        ns.sh(&["ip", "link", "set", ifname, "up"]);
    }
}

/// A current-thread tokio runtime driven by a thread that entered a namespace: every task
/// spawned on it runs on that thread, so everything it opens belongs to the namespace.
#[derive(Debug)]
pub struct NsRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsRuntime {
    fn new(netns: &str) -> Self {
        let path = format!("/var/run/netns/{netns}");
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            tx.send(rt.handle().clone()).unwrap();
            rt.block_on(async {
                let _ = stop_rx.await;
            });
        });
        let handle = rx.recv().unwrap();
        NsRuntime {
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Runs `fut` inside the namespace and waits for its output.
    pub fn run<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        futures::executor::block_on(self.handle.spawn(fut)).unwrap()
    }

    /// Starts `fut` inside the namespace in the background.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP echo server on `addr` (inside `rt`'s namespace), echoing lines.
pub fn echo_server(rt: &NsRuntime, addr: std::net::SocketAddr) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = rt.run(async move { tokio::net::TcpListener::bind(addr).await.unwrap() });
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

/// A line-oriented TCP client connection living on a namespace's runtime.
#[derive(Debug)]
pub struct EchoClient {
    stream: Option<tokio::io::BufReader<tokio::net::TcpStream>>,
}

impl EchoClient {
    /// Connects from inside `rt`'s namespace (retrying while the tunnel comes up).
    pub fn connect(rt: &NsRuntime, addr: std::net::SocketAddr) -> Self {
        let stream = rt.run(async move {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let attempt = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    tokio::net::TcpStream::connect(addr),
                )
                .await;
                match attempt {
                    Ok(Ok(s)) => return s,
                    other if tokio::time::Instant::now() > deadline => {
                        panic!("cannot connect to {addr}: {other:?}")
                    }
                    _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                }
            }
        });
        EchoClient {
            stream: Some(tokio::io::BufReader::new(stream)),
        }
    }

    /// Sends a line and waits (up to `secs`) for its echo.
    pub fn round_trip(&mut self, rt: &NsRuntime, line: &str, secs: u64) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut stream = self.stream.take().unwrap();
        let line = line.to_owned();
        let stream = rt.run(async move {
            let work = async {
                stream
                    .get_mut()
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .unwrap();
                let mut answer = String::new();
                stream.read_line(&mut answer).await.unwrap();
                // Long lines are not printed whole.
                assert!(
                    answer.trim_end() == line,
                    "echo of a {}-byte line came back as {} bytes{}",
                    line.len(),
                    answer.trim_end().len(),
                    if line.len() < 200 {
                        format!(": {answer:?} for {line:?}")
                    } else {
                        String::new()
                    }
                );
            };
            tokio::time::timeout(std::time::Duration::from_secs(secs), work)
                .await
                .unwrap_or_else(|_| panic!("no echo of {line:?} within {secs}s"));
            stream
        });
        self.stream = Some(stream);
    }
}

/// wireguard-go of `testbed/wireguard-go` (built by `testbed/build wireguard-go` when missing);
/// MCWAN_WIREGUARD_GO names another binary.
pub fn wireguard_go() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("MCWAN_WIREGUARD_GO") {
        return path.into();
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("testbed/bin/wireguard-go");
    if !path.exists() {
        let status = Command::new(root.join("testbed/build"))
            .arg("wireguard-go")
            .status()
            .unwrap();
        assert!(status.success(), "testbed/build wireguard-go: {status}");
    }
    path
}

/// A wireguard-go device in a namespace, its process killed (and the device gone) on drop.
pub struct Daemon(std::process::Child);

impl Daemon {
    /// Starts `go` (wireguard-go) in `ns` for device `dev` and waits for its control socket.
    pub fn start(ns: &Netns, go: &std::path::Path, dev: &str) -> Self {
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(go)
            .args(["-f", dev])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let daemon = Daemon(child);
        let sock = std::path::PathBuf::from(format!("/var/run/wireguard/{dev}.sock"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !sock.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "wireguard-go made no {}",
                sock.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        daemon
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
