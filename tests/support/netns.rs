//! Network-namespace topologies for tests that run as root (the VM tier and host netns tests):
//! namespaces, veth links, processes inside them, and sockets opened from inside them.

#![allow(dead_code)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Runs a shell command, failing the test with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", cmd])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace (mcwan's lab namespace: leftovers replaced, `lo` up, deleted with
/// everything in it on drop), with helpers that fail the test instead of returning errors.
#[derive(Debug)]
pub struct Netns(mcwan::lab::netns::Netns);

impl std::ops::Deref for Netns {
    type Target = mcwan::lab::netns::Netns;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Netns {
    pub fn new(name: &str) -> Self {
        Self(mcwan::lab::netns::Netns::new(name).unwrap_or_else(|e| panic!("{e:#}")))
    }

    /// Runs a shell command inside the namespace.
    pub fn sh(&self, cmd: &str) -> String {
        self.0
            .exec("bash", &["-c", cmd])
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts a long-running process inside the namespace; killed on drop of the guard. Its
    /// output goes to a log file, shown by [`Proc::log`].
    pub fn spawn(&self, program: &str, args: &[&str]) -> Proc {
        // In the VM tier, logs go where the host can read them after the run.
        let log = match std::env::var_os("MCWAN_TEST_LOGS") {
            Some(dir) => tempfile::Builder::new()
                .prefix(&format!("{}-", self.name))
                .suffix(".log")
                .disable_cleanup(true)
                .tempfile_in(dir),
            None => tempfile::NamedTempFile::new(),
        }
        .expect("log file");
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let child = self
            .0
            .spawn(std::path::Path::new(program), &args, &[], log.path())
            .unwrap_or_else(|e| panic!("{e:#}"));
        Proc {
            child: Some(child),
            log,
        }
    }

    /// Runs `f` on a thread that entered the namespace: sockets it opens belong there and keep
    /// working from any thread afterwards.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.0.enter(f).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

/// Joins two namespaces with a veth pair and addresses (`a_addr`, `b_addr` with prefix).
pub fn link(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    mcwan::lab::netns::veth(a, a_if, Some(a_addr), b, b_if, Some(b_addr))
        .unwrap_or_else(|e| panic!("{e:#}"));
}

/// A child process killed on drop.
#[derive(Debug)]
pub struct Proc {
    pub child: Option<Child>,
    log: tempfile::NamedTempFile,
}

impl Proc {
    /// What the process wrote so far (its last 4 KiB).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let start = text.len().saturating_sub(4096);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        sh(&format!("kill -TERM {}", child.id()));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running 15 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` until it returns Some, failing the test after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP backend in a namespace: greets each connection with `name\n`, then echoes lines.
pub fn tcp_backend(ns: &Netns, name: &str, port: u16) -> Proc {
    let script = format!(
        "import socket,threading\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0',{port})); s.listen(64)\n\
         def serve(c):\n\
         \x20 c.sendall(b'{name}\\n'); f=c.makefile('rb')\n\
         \x20 for line in f: c.sendall(line)\n\
         while True:\n\
         \x20 c,_=s.accept(); threading.Thread(target=serve,args=(c,),daemon=True).start()\n"
    );
    ns.spawn("/usr/bin/python3", &["-c", &script])
}
