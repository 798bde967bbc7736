//! The two processes of bench/l7: a minimal HTTP/1.1 server standing in for an exporting
//! gateway's ingress port (`backend`), and mcwan's L7 proxy in front of it (`proxy ADDR`), each
//! on one thread (a current-thread runtime) so that their CPU time compares per core. Each prints its listening
//! address on stdout, then serves until killed.
//!
//!   cargo run --release --example l7_bench -- backend [LISTEN]
//!   cargo run --release --example l7_bench -- proxy 127.0.0.1:PORT [LISTEN]
//!
//! LISTEN defaults to 127.0.0.1 on a free port.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;
use mcwan::l7::metrics::L7Metrics;
use mcwan::l7::proxy::{Backend, ProxyConfig, ServiceProxy};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

async fn backend(listen: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn proxy(backend: SocketAddr, listen: SocketAddr) -> std::io::Result<()> {
    // The seed's WANRoute: GET /payment over the high-priority class, the rest as written.
    let routes = mcwan::l7::seed_routes().map_err(std::io::Error::other)?;
    let config = ProxyConfig {
        service: "secure/payment".into(),
        routes,
        backends: BTreeMap::from([(
            "sd-wan-priority-high".to_owned(),
            vec![Backend {
                addr: backend,
                weight: 1,
            }],
        )]),
    };
    let listener = TcpListener::bind(listen).await?;
    println!("{}", listener.local_addr()?);
    ServiceProxy::new(config, L7Metrics::default())
        .serve(listener, CancellationToken::new())
        .await;
    Ok(())
}

fn addr(text: &str) -> std::io::Result<SocketAddr> {
    text.parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{text}: {e}")))
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let any = "127.0.0.1:0";
    match args.as_slice() {
        [mode] if mode == "backend" => runtime.block_on(backend(addr(any)?)),
        [mode, listen] if mode == "backend" => runtime.block_on(backend(addr(listen)?)),
        [mode, to] if mode == "proxy" => runtime.block_on(proxy(addr(to)?, addr(any)?)),
        [mode, to, listen] if mode == "proxy" => runtime.block_on(proxy(addr(to)?, addr(listen)?)),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "usage: l7_bench backend [LISTEN] | l7_bench proxy BACKEND_ADDR [LISTEN]",
        )),
    }
}
