//! The L7 proxy over real sockets on 127.0.0.1: the seed's story (GET /payment over the
//! high-priority class, /stats over the Internet class, everything else denied) with curl as
//! the client (HTTP/1.1 and HTTP/2 prior knowledge), two real HTTP servers standing in for the
//! exporting gateways' ingress ports of the two classes, and what they received: the method,
//! path, Host, body and `traceparent`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use mcwan::l7::metrics::L7Metrics;
use mcwan::l7::proxy::{Backend, ProxyConfig, ProxyOptions, ServiceProxy};
use mcwan::l7::route::Routes;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a stand-in ingress port received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    host: String,
    traceparent: String,
    request_id: String,
    body_len: usize,
}

/// An HTTP/1.1 server on 127.0.0.1 that answers `who` and records each request.
async fn ingress(who: &'static str) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let log = log.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned()
                        };
                        let mut seen = Seen {
                            method: req.method().to_string(),
                            path: req.uri().to_string(),
                            host: header("host"),
                            traceparent: header("traceparent"),
                            request_id: header("x-request-id"),
                            body_len: 0,
                        };
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        seen.body_len = body.len();
                        log.lock().unwrap().push(seen);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                            "{who} {}\n",
                            body.len()
                        )))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// The seed's WANRoute, deploy/examples/wanroute-payment.yaml.
fn seed_routes() -> Routes {
    mcwan::l7::seed_routes().unwrap()
}

/// The WAN policies it names.
const HIGH: &str = "sd-wan-priority-high";
const LOW: &str = "sd-wan-priority-low";

/// curl's status code and body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {args:?}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
        body.trim_end().to_owned(),
    )
}

struct Proxied {
    url: String,
    high: Arc<Mutex<Vec<Seen>>>,
    internet: Arc<Mutex<Vec<Seen>>>,
    registry: Registry,
    proxy: Arc<ServiceProxy>,
    stop: CancellationToken,
}

async fn start(extra_high: Vec<Backend>) -> Proxied {
    start_with(extra_high, ProxyOptions::default()).await
}

async fn start_with(extra_high: Vec<Backend>, options: ProxyOptions) -> Proxied {
    let (high_addr, high) = ingress("high").await;
    let (internet_addr, internet) = ingress("internet").await;
    let mut high_backends = extra_high;
    high_backends.push(Backend {
        addr: high_addr,
        weight: 1,
    });
    let config = ProxyConfig {
        service: "secure/payment".into(),
        routes: seed_routes(),
        backends: BTreeMap::from([
            (HIGH.to_owned(), high_backends),
            (
                LOW.to_owned(),
                vec![Backend {
                    addr: internet_addr,
                    weight: 1,
                }],
            ),
        ]),
    };
    let metrics = L7Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let proxy = ServiceProxy::with_options(config, metrics, options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(proxy.clone().serve(listener, stop.clone()));
    Proxied {
        url,
        high,
        internet,
        registry,
        proxy,
        stop,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_story_over_http1_and_http2() {
    let p = start(Vec::new()).await;
    let url = p.url.clone();
    let (results, h2) = blocking(move || {
        let r = [
            curl(&[
                &format!("{url}/payment?id=7"),
                "-H",
                "Host: payment.secure.svc.clusterset.local:8080",
            ]),
            curl(&[&format!("{url}/stats")]),
            curl(&["-X", "POST", "--data", "x", &format!("{url}/payment")]),
            curl(&[&format!("{url}/admin")]),
        ];
        let h2 = curl(&["--http2-prior-knowledge", &format!("{url}/payment/h2")]);
        (r, h2)
    })
    .await;
    assert_eq!(
        results[0],
        (200, "high 0".into()),
        "GET /payment: the high-priority class"
    );
    assert_eq!(
        results[1],
        (200, "internet 0".into()),
        "/stats: the Internet class"
    );
    assert_eq!(
        results[2].0, 403,
        "POST /payment is denied: {:?}",
        results[2]
    );
    assert!(
        results[2].1.contains("denied by the default action"),
        "{:?}",
        results[2]
    );
    assert_eq!(results[3].0, 403, "anything else is denied");
    assert_eq!(h2, (200, "high 0".into()), "HTTP/2 in, HTTP/1.1 out");

    let high = p.high.lock().unwrap().clone();
    let internet = p.internet.lock().unwrap().clone();
    assert_eq!(
        high.len(),
        2,
        "only the two GET /payment crossed on the high class: {high:?}"
    );
    assert_eq!(internet.len(), 1, "{internet:?}");
    assert_eq!(
        (high[0].method.as_str(), high[0].path.as_str()),
        ("GET", "/payment?id=7")
    );
    assert_eq!(
        high[0].host, "payment.secure.svc.clusterset.local:8080",
        "the client's Host travels on"
    );
    for s in high.iter().chain(&internet) {
        assert!(
            mcwan::l7::trace::is_valid(&s.traceparent),
            "a span id crossed the WAN: {s:?}"
        );
    }
    assert_ne!(
        high[0].traceparent, high[1].traceparent,
        "each request starts its own trace"
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &p.registry).unwrap();
    for line in [
        r#"mcwan_l7_requests_total{service="secure/payment",class="sd-wan-priority-high",rule="0",code="200"} 2"#,
        r#"mcwan_l7_requests_total{service="secure/payment",class="sd-wan-priority-low",rule="1",code="200"} 1"#,
        r#"mcwan_l7_requests_total{service="secure/payment",class="deny",rule="default",code="403"} 2"#,
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }
    assert!(
        text.contains("mcwan_l7_request_duration_seconds_bucket"),
        "{text}"
    );
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_and_request_ids_are_kept_and_bodies_stream_through() {
    let p = start(Vec::new()).await;
    let url = p.url.clone();
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), vec![b'x'; 8 << 20]).unwrap();
    let path = body.path().to_str().unwrap().to_owned();
    let (kept, streamed) = blocking(move || {
        (
            curl(&[
                &format!("{url}/payment"),
                "-H",
                &format!("traceparent: {trace}"),
                "-H",
                "x-request-id: r-1",
            ]),
            curl(&[
                "-X",
                "PUT",
                "--data-binary",
                &format!("@{path}"),
                &format!("{url}/stats/upload"),
            ]),
        )
    })
    .await;
    assert_eq!(kept.0, 200);
    assert_eq!(
        streamed,
        (200, format!("internet {}", 8 << 20)),
        "an 8 MiB body arrives whole"
    );
    let high = p.high.lock().unwrap().clone();
    assert_eq!(
        high[0].traceparent, trace,
        "the client's trace goes on across the WAN"
    );
    assert_eq!(high[0].request_id, "r-1");
    assert_eq!(p.internet.lock().unwrap()[0].body_len, 8 << 20);
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_is_skipped_and_a_drained_one_not_used() {
    // A port nobody listens on (bound, then closed), weighted to be tried first.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let p = start(vec![Backend {
        addr: dead,
        weight: 1000,
    }])
    .await;
    let url = p.url.clone();
    let codes = blocking(move || {
        (0..5)
            .map(|_| curl(&[&format!("{url}/payment")]).0)
            .collect::<Vec<_>>()
    })
    .await;
    assert_eq!(codes, [200; 5], "GETs fail over to the live gateway");
    // The live one drained (weight 0) and the dead one left: 503, nothing sent.
    let mut config = ProxyConfig {
        service: "secure/payment".into(),
        routes: seed_routes(),
        backends: BTreeMap::new(),
    };
    config.backends.insert(
        HIGH.into(),
        vec![Backend {
            addr: dead,
            weight: 0,
        }],
    );
    p.proxy.update(config);
    let url = p.url.clone();
    let (code, body) = blocking(move || curl(&[&format!("{url}/payment")])).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("no reachable backend in WAN class sd-wan-priority-high"),
        "{body}"
    );
    assert_eq!(p.high.lock().unwrap().len(), 5);
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_dropped_and_connections_beyond_the_limit_wait() {
    let options = ProxyOptions {
        max_connections: 1,
        client_timeout: Duration::from_millis(600),
        ..ProxyOptions::default()
    };
    let p = start_with(Vec::new(), options).await;
    let addr = p.url.trim_start_matches("http://").to_owned();
    // A client that connects and says nothing holds the only slot...
    let silent = std::net::TcpStream::connect(&addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let url = format!("{}/payment", p.url);
    let waited = tokio::task::spawn_blocking(move || curl(&[&url]));
    // ...until its time to send a request head runs out: the proxy closes it.
    let closed = blocking(move || {
        let mut buf = [0u8; 16];
        std::io::Read::read(&mut &silent, &mut buf)
    })
    .await;
    assert!(matches!(closed, Ok(0)), "{closed:?}");
    // The request that waited in the backlog is served then.
    let (code, body) = waited.await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "served after {:?}, before the slot was free",
        started.elapsed()
    );
    // A client idle after its request is closed too, and frees its slot.
    let addr2 = addr.clone();
    let idle = blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(&addr2).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /payment HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let started = Instant::now();
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    return Ok((
                        String::from_utf8_lossy(&got).into_owned(),
                        started.elapsed(),
                    ))
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    let (answer, open_for) = idle.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(open_for < Duration::from_secs(3), "{open_for:?}");
    p.stop.cancel();
}
