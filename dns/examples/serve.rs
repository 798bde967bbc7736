//! Serves a synthetic clusterset zone on one thread, for load tests:
//!
//! ```text
//! cargo run -p mcwan-dns --release --example serve -- 127.0.0.1:5300 1000 [direct|hickory]
//! dnsperf -s 127.0.0.1 -p 5300 -d queries.txt
//! ```
//!
//! The third argument picks who reads the UDP socket (see `UdpPath`).
//!
//! Service `svc-<i>.ns-<i % 10>` (i < count) has ClusterSetIP `10.<i/65536>.<i/256%256>.<i%256>`
//! and port `http/TCP/80`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mcwan_dns::{
    DnsServer, PortProtocol, PortRecord, ServerOptions, ServiceRecord, ServiceRecordKind, UdpPath,
    Zone, ZoneConfig, ZoneHandle,
};
use tokio_util::sync::CancellationToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:5300".into())
        .parse()?;
    let count: u32 = args.next().unwrap_or_else(|| "1000".into()).parse()?;
    let udp_path = match args.next().as_deref() {
        None | Some("direct") => UdpPath::Direct,
        Some("hickory") => UdpPath::Hickory,
        Some(other) => return Err(format!("unknown UDP path {other:?}").into()),
    };

    let services: Vec<ServiceRecord> = (0..count)
        .map(|i| ServiceRecord {
            namespace: format!("ns-{}", i % 10),
            name: format!("svc-{i}"),
            kind: ServiceRecordKind::ClusterSetIp {
                ips: vec![IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))],
            },
            ports: vec![PortRecord {
                name: Some("http".into()),
                protocol: PortProtocol::Tcp,
                port: 80,
            }],
        })
        .collect();
    let build = Zone::build(&ZoneConfig::default(), &services)?;
    println!("serving {} records on {listen}", build.zone.len());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        let options = ServerOptions {
            udp_path,
            ..ServerOptions::default()
        };
        DnsServer::bind(ZoneHandle::new(build.zone), &[listen], &options)
            .await?
            .run(cancel)
            .await
    })?;
    Ok(())
}
