//! Builders for services and queries, a fixture zone, a server on an
//! ephemeral loopback port, and the two clients (hickory and dig).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::DnsHandle;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use mcwan_dns::{
    answer, DnsServer, HeadlessEndpoint, PortProtocol, PortRecord, ServeError, ServerOptions,
    ServiceRecord, ServiceRecordKind, Transport, Zone, ZoneConfig, ZoneHandle,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The address the fixture publishes for the zone's name server.
pub const NS_ADDRESS: &str = "192.0.2.53";
/// How many ready endpoints the `big/many` headless service has.
pub const MANY_ENDPOINTS: usize = 100;

pub fn mk_port(name: Option<&str>, protocol: PortProtocol, port: u16) -> PortRecord {
    PortRecord {
        name: name.map(str::to_owned),
        protocol,
        port,
    }
}

pub fn mk_tcp_port(name: &str, port: u16) -> PortRecord {
    mk_port(Some(name), PortProtocol::Tcp, port)
}

pub fn mk_clusterset_ip(
    ns: &str,
    name: &str,
    ips: &[&str],
    ports: Vec<PortRecord>,
) -> ServiceRecord {
    ServiceRecord {
        namespace: ns.into(),
        name: name.into(),
        kind: ServiceRecordKind::ClusterSetIp {
            ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        },
        ports,
    }
}

pub fn mk_endpoint(cluster_id: &str, hostname: &str, ips: &[&str]) -> HeadlessEndpoint {
    HeadlessEndpoint {
        cluster_id: cluster_id.into(),
        hostname: hostname.into(),
        ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
    }
}

pub fn mk_headless(
    ns: &str,
    name: &str,
    endpoints: Vec<HeadlessEndpoint>,
    ports: Vec<PortRecord>,
) -> ServiceRecord {
    ServiceRecord {
        namespace: ns.into(),
        name: name.into(),
        kind: ServiceRecordKind::Headless { endpoints },
        ports,
    }
}

/// `count` endpoints spread over two clusters, each with one IPv4 address.
pub fn mk_many_endpoints(count: usize) -> Vec<HeadlessEndpoint> {
    (0..count)
        .map(|i| {
            let cluster = if i % 2 == 0 { "east" } else { "west" };
            let ip = format!("10.9.{}.{}", i / 250, i % 250 + 1);
            mk_endpoint(cluster, &format!("pod-{i}"), &[&ip])
        })
        .collect()
}

/// The services most tests ask about:
/// - `shop/web`: ClusterSetIP 10.0.0.10 and fd00::10, ports http/TCP/80, dns/UDP/53, unnamed 8080;
/// - `db/pg`: headless, pg-0 and pg-1 in `east`, pg-0 in `west` (dual-stack), port sql/TCP/5432;
/// - `db/empty`: headless without ready endpoints;
/// - `big/many`: headless with [`MANY_ENDPOINTS`] endpoints, port http/TCP/80.
pub fn fixture_services() -> Vec<ServiceRecord> {
    vec![
        mk_clusterset_ip(
            "shop",
            "web",
            &["10.0.0.10", "fd00::10"],
            vec![
                mk_tcp_port("http", 80),
                mk_port(Some("dns"), PortProtocol::Udp, 53),
                mk_port(None, PortProtocol::Tcp, 8080),
            ],
        ),
        mk_headless(
            "db",
            "pg",
            vec![
                mk_endpoint("east", "pg-0", &["10.1.0.1"]),
                mk_endpoint("east", "pg-1", &["10.1.0.2"]),
                mk_endpoint("west", "pg-0", &["10.2.0.1", "fd00:2::1"]),
            ],
            vec![mk_tcp_port("sql", 5432)],
        ),
        mk_headless("db", "empty", vec![], vec![mk_tcp_port("sql", 5432)]),
        mk_headless(
            "big",
            "many",
            mk_many_endpoints(MANY_ENDPOINTS),
            vec![mk_tcp_port("http", 80)],
        ),
    ]
}

pub fn fixture_config() -> ZoneConfig {
    ZoneConfig {
        ns_addresses: vec![NS_ADDRESS.parse().unwrap()],
        ..ZoneConfig::default()
    }
}

pub fn fixture_zone() -> Zone {
    zone_of(&fixture_services())
}

pub fn zone_of(services: &[ServiceRecord]) -> Zone {
    let build = Zone::build(&fixture_config(), services).unwrap();
    assert!(build.errors.is_empty(), "{:?}", build.errors);
    build.zone
}

/// A name spelled exactly as given (`Name::from_str` would lower-case it).
pub fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// A standard query for `name`/`rtype`, without EDNS.
pub fn query(name_text: &str, rtype: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.id = 0x4242;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name(name_text), rtype));
    message
}

/// Adds an OPT record advertising `payload` at EDNS `version`.
pub fn with_edns(mut message: Message, payload: u16, version: u8) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    edns.set_version(version);
    message.edns = Some(edns);
    message
}

/// Runs `message` through the pure request path and parses the response.
pub fn ask(zone: &Zone, message: &Message, transport: Transport) -> Message {
    let bytes = answer(zone, &message.to_vec().unwrap(), transport).expect("a response");
    Message::from_vec(&bytes).expect("a well-formed response")
}

pub fn ask_udp(zone: &Zone, message: &Message) -> Message {
    ask(zone, message, Transport::Udp)
}

/// The record data of `records` as text, sorted.
pub fn rdata(records: &[Record]) -> Vec<String> {
    let mut data: Vec<String> = records.iter().map(|r| r.data.to_string()).collect();
    data.sort();
    data
}

/// The owner names of `records` as text.
pub fn owners(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.name.to_string()).collect()
}

/// A server for one zone on an ephemeral loopback port, UDP and TCP alike.
pub struct TestServer {
    pub addr: SocketAddr,
    pub zones: ZoneHandle,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    pub async fn start(zone: Zone) -> Self {
        Self::start_with(zone, &ServerOptions::default()).await
    }

    pub async fn start_with(zone: Zone, options: &ServerOptions) -> Self {
        Self::start_on(zone, "127.0.0.1:0".parse().unwrap(), options).await
    }

    pub async fn start_on(zone: Zone, listen: SocketAddr, options: &ServerOptions) -> Self {
        let zones = ZoneHandle::new(zone);
        let server = DnsServer::bind(zones.clone(), &[listen], options)
            .await
            .unwrap();
        let addr = server.udp_addrs()[0];
        assert_eq!(server.tcp_addrs(), [addr]);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(server.run(cancel.clone()));
        Self {
            addr,
            zones,
            cancel,
            task,
        }
    }

    /// Cancels the server and checks that it stops cleanly.
    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops when cancelled")
            .unwrap()
            .unwrap();
    }
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

/// Sends `message` as is over UDP with hickory's client and returns the response.
pub async fn hickory_udp(addr: SocketAddr, message: Message) -> Message {
    let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::new())
        .with_timeout(Some(CLIENT_TIMEOUT))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    exchange(client, background, message).await
}

/// Sends `message` as is over TCP with hickory's client and returns the response.
pub async fn hickory_tcp(addr: SocketAddr, message: Message) -> Message {
    let (connect, sender) = TcpClientStream::new(
        addr,
        None,
        Some(CLIENT_TIMEOUT),
        TokioRuntimeProvider::new(),
    );
    let stream = connect.await.unwrap();
    let (client, background) =
        Client::<TokioRuntimeProvider>::with_timeout(stream, sender, CLIENT_TIMEOUT);
    exchange(client, background, message).await
}

async fn exchange<B>(
    client: Client<TokioRuntimeProvider>,
    background: B,
    message: Message,
) -> Message
where
    B: std::future::Future + Send + 'static,
    B::Output: Send + 'static,
{
    let background = tokio::spawn(background);
    let mut responses = client.send(DnsRequest::new(message, DnsRequestOptions::default()));
    let response = responses
        .next()
        .await
        .expect("the client yields a response")
        .expect("the exchange succeeds");
    background.abort();
    response.into_message()
}

/// Sends `request` in one datagram from a fresh socket; returns the reply's bytes.
pub async fn raw_udp(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(request, addr).await.unwrap();
    let mut buffer = vec![0; 65_535];
    let (len, _) = tokio::time::timeout(CLIENT_TIMEOUT, socket.recv_from(&mut buffer))
        .await
        .expect("a reply within the client timeout")
        .unwrap();
    buffer.truncate(len);
    buffer
}

/// What `dig` printed, parsed.
#[derive(Debug)]
pub struct DigOutput {
    pub status: String,
    pub flags: Vec<String>,
    /// `udp: N` of the OPT pseudo-section, when the response had one.
    pub edns_udp: Option<u16>,
    pub answer: Vec<DigRecord>,
    pub authority: Vec<DigRecord>,
    pub additional: Vec<DigRecord>,
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigRecord {
    pub name: String,
    pub ttl: u32,
    pub rtype: String,
    pub data: String,
}

impl DigOutput {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn answer_data(&self) -> Vec<String> {
        let mut data: Vec<String> = self.answer.iter().map(|r| r.data.clone()).collect();
        data.sort();
        data
    }
}

/// Runs the real `dig` against `addr`; fails loudly if dig is missing.
pub async fn dig(addr: SocketAddr, args: &[&str]) -> DigOutput {
    let port = addr.port().to_string();
    let server = format!("@{}", addr.ip());
    let output = tokio::process::Command::new("dig")
        .args([server.as_str(), "-p", port.as_str()])
        .args(["+norecurse", "+time=2", "+tries=1", "+nocookie"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("`dig` must be installed (Debian package bind9-dnsutils)");
    let raw = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "dig {args:?} failed:\n{raw}");
    parse_dig(raw)
}

fn parse_dig(raw: String) -> DigOutput {
    let mut status = String::new();
    let mut flags = Vec::new();
    let mut edns_udp = None;
    let mut sections: [Vec<DigRecord>; 3] = Default::default();
    let mut current: Option<usize> = None;
    for line in raw.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            status = rest.split(',').next().unwrap_or_default().to_owned();
        } else if let Some(rest) = line.strip_prefix(";; flags:") {
            flags = rest
                .split(';')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        } else if let Some(rest) = line.split("udp: ").nth(1) {
            edns_udp = rest.trim().parse().ok();
        } else if line.starts_with(";; ANSWER SECTION") {
            current = Some(0);
        } else if line.starts_with(";; AUTHORITY SECTION") {
            current = Some(1);
        } else if line.starts_with(";; ADDITIONAL SECTION") {
            current = Some(2);
        } else if line.trim().is_empty() || line.starts_with(';') {
            current = None;
        } else if let Some(section) = current {
            let mut fields = line.split_whitespace();
            let record = DigRecord {
                name: fields.next().unwrap_or_default().to_owned(),
                ttl: fields
                    .next()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(u32::MAX),
                rtype: fields.nth(1).unwrap_or_default().to_owned(),
                data: fields.collect::<Vec<_>>().join(" "),
            };
            sections[section].push(record);
        }
    }
    let [answer, authority, additional] = sections;
    DigOutput {
        status,
        flags,
        edns_udp,
        answer,
        authority,
        additional,
        raw,
    }
}
