//! The lab's backend pods: a TCP server inside a namespace that greets each connection with
//! `<cluster> <pod address>` and then echoes lines, and the client side of it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::netns::Netns;

/// A running backend; stops (and closes its connections) on drop.
#[derive(Debug)]
pub struct Backend {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    /// Listens on `port` on every address of the namespace.
    pub fn start(ns: &Netns, cluster: &str, port: u16) -> Result<Self> {
        let listener = ns.enter(move || TcpListener::bind(("0.0.0.0", port)))??;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let cluster = cluster.to_owned();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("backend-{cluster}"))
            .spawn(move || accept(&listener, &cluster, &flag))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept(listener: &TcpListener, cluster: &str, stop: &Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let cluster = cluster.to_owned();
                let stop = stop.clone();
                let _ = std::thread::Builder::new()
                    .name("backend-conn".into())
                    .spawn(move || {
                        let _ = serve(stream, &cluster, &stop);
                    });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn serve(stream: TcpStream, cluster: &str, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let pod = stream.local_addr()?.ip();
    let mut writer = stream.try_clone()?;
    writeln!(writer, "{cluster} {pod}")?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                writer.write_all(line.as_bytes())?;
                line.clear();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A client connection to a backend (through whatever is in between).
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<TcpStream>,
    /// The greeting: `<cluster> <pod address>`.
    pub greeting: String,
}

impl Connection {
    /// Connects from inside `ns` and reads the greeting, each step within `timeout`.
    pub fn open(ns: &Netns, to: SocketAddr, timeout: Duration) -> Result<Self> {
        let stream = ns
            .enter(move || TcpStream::connect_timeout(&to, timeout))?
            .with_context(|| format!("cannot connect to {to}"))?;
        stream.set_read_timeout(Some(timeout))?;
        let mut reader = BufReader::new(stream);
        let mut greeting = String::new();
        reader
            .read_line(&mut greeting)
            .with_context(|| format!("no greeting from {to}"))?;
        anyhow::ensure!(!greeting.is_empty(), "{to} closed the connection");
        Ok(Self {
            reader,
            greeting: greeting.trim().to_owned(),
        })
    }

    /// The cluster that answered.
    pub fn cluster(&self) -> &str {
        self.greeting.split(' ').next().unwrap_or_default()
    }

    /// Sends a line and returns what came back.
    pub fn echo(&mut self, line: &str) -> Result<String> {
        self.reader
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())?;
        let mut back = String::new();
        self.reader.read_line(&mut back)?;
        Ok(back.trim().to_owned())
    }
}
