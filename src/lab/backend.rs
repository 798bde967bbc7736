//! The lab's backend pods: a TCP server inside a namespace that greets each connection with
//! `<cluster> <pod address>` and then echoes lines, and the client side of it; a connection
//! whose client speaks HTTP/1 first is served HTTP instead (who answered, the trace headers
//! that arrived, and a body of the size asked for).

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

/// How long a backend waits for the client to speak first: an HTTP client does, a line client
/// waits for the greeting.
const SNIFF: Duration = Duration::from_millis(100);

/// The largest body an HTTP request may ask for with `?size=`.
const MAX_SIZE: usize = 16 << 20;

fn serve(stream: TcpStream, cluster: &str, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let pod = stream.local_addr()?.ip();
    stream.set_read_timeout(Some(SNIFF))?;
    let mut first = [0u8; 8];
    let spoke = match stream.peek(&mut first) {
        Ok(n) => n,
        Err(e) if is_timeout(&e) => 0,
        Err(e) => return Err(e),
    };
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    if spoke > 0 && looks_like_http(&first[..spoke]) {
        return serve_http(&mut reader, &mut writer, cluster, pod, stop);
    }
    writeln!(writer, "{cluster} {pod}")?;
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                writer.write_all(line.as_bytes())?;
                line.clear();
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// An upper-case method and a space: an HTTP/1 request line.
fn looks_like_http(bytes: &[u8]) -> bool {
    let method = bytes.iter().take_while(|b| b.is_ascii_uppercase()).count();
    method > 0 && bytes.get(method) == Some(&b' ')
}

/// HTTP/1.1 with keep-alive: each request is answered 200 with
/// `<cluster> <pod> <method> <target> traceparent=<value or -> request-id=<value or ->` and,
/// for `?size=N`, N more bytes of `x`, so a test can tell who answered, what arrived, and make
/// a request's bytes stand out on a tunnel's counters.
fn serve_http(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    cluster: &str,
    pod: std::net::IpAddr,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let mut head = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => head.push(line.trim_end().to_owned()),
                Err(e) if is_timeout(&e) && head.is_empty() => {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let Some(request) = head.first() else {
            continue;
        };
        let mut words = request.split(' ');
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
        let header = |name: &str| {
            head.iter().skip(1).find_map(|h| {
                let (n, v) = h.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        // A request body is read and dropped.
        let length: u64 = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        std::io::copy(
            &mut std::io::Read::take(&mut *reader, length),
            &mut std::io::sink(),
        )?;
        let size = target
            .split_once('?')
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("size=")))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_SIZE);
        let mut body = format!(
            "{cluster} {pod} {method} {target} traceparent={} request-id={}\n",
            header("traceparent").as_deref().unwrap_or("-"),
            header("x-request-id").as_deref().unwrap_or("-"),
        )
        .into_bytes();
        body.resize(body.len() + size, b'x');
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        )?;
        writer.write_all(&body)?;
        if close {
            return Ok(());
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
        Self::greeted(stream, to, timeout)
    }

    /// Reads the greeting on a connected `stream` within `timeout`.
    fn greeted(stream: TcpStream, to: SocketAddr, timeout: Duration) -> Result<Self> {
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

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// A backend on 127.0.0.1 (no namespace): its address and stop flag.
    fn local_backend() -> (SocketAddr, Arc<AtomicBool>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || accept(&listener, "cluster-9", &flag));
        (addr, stop)
    }

    #[test]
    fn a_line_client_is_greeted_and_echoed() {
        let (addr, stop) = local_backend();
        let stream = TcpStream::connect(addr).unwrap();
        let mut conn = Connection::greeted(stream, addr, Duration::from_secs(5)).unwrap();
        assert_eq!(conn.greeting, "cluster-9 127.0.0.1");
        assert_eq!(conn.cluster(), "cluster-9");
        assert_eq!(conn.echo("hello").unwrap(), "hello");
        stop.store(true, Ordering::Relaxed);
    }

    #[test]
    fn an_http_client_gets_who_answered_and_its_trace_headers_on_one_connection() {
        let (addr, stop) = local_backend();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(
                b"POST /payment?size=10 HTTP/1.1\r\nHost: x\r\ncontent-length: 3\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\nabc",
            )
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK\r\n");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix("content-length: ") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        assert_eq!(
            body,
            "cluster-9 127.0.0.1 POST /payment?size=10 traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 request-id=-\nxxxxxxxxxx"
        );
        // The connection stays for the next request.
        stream
            .write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
        assert!(
            rest.ends_with("GET /stats traceparent=- request-id=-\n"),
            "{rest}"
        );
        stop.store(true, Ordering::Relaxed);
    }

    #[test]
    fn a_chunked_body_is_read_whole() {
        assert_eq!(
            crate::lab::dechunk("5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n").as_deref(),
            Some("hello!")
        );
        assert_eq!(crate::lab::dechunk("5\r\nhel"), None);
    }
}
