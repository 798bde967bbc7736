//! DNS over TCP under abuse: a flood of idle and trickling connections neither locks out new
//! clients nor stops UDP, and slow clients are closed.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use mcwan_dns::ServerOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

fn small(max_connections: usize, idle: Duration) -> ServerOptions {
    ServerOptions {
        tcp_max_connections: max_connections,
        tcp_idle_timeout: idle,
        ..ServerOptions::default()
    }
}

/// One query over a connection of its own, in RFC 7766 framing.
async fn raw_tcp(stream: &mut TcpStream, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut framed = (request.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut response = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn a_flood_of_idle_connections_does_not_lock_out_new_clients_or_udp() {
    let server = TestServer::start_with(fixture_zone(), &small(64, Duration::from_secs(30))).await;
    // Ten times the cap, held open and silent; half of them start a message and stall.
    let mut flood = Vec::new();
    for i in 0..640 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(&[0, 40, 0x12]).await.unwrap();
        }
        flood.push(s);
    }
    let request = query("web.shop.svc.clusterset.local.", RecordType::A)
        .to_vec()
        .unwrap();
    let started = Instant::now();
    let mut fresh = TcpStream::connect(server.addr).await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(2), raw_tcp(&mut fresh, &request))
        .await
        .expect("a new client is answered at once")
        .unwrap();
    let response = hickory_proto::op::Message::from_vec(&response).unwrap();
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(response.answers.len(), 1);
    eprintln!(
        "new TCP client answered in {:?} under 640 held connections",
        started.elapsed()
    );
    // The same connection goes on being answered (several messages per connection).
    raw_tcp(&mut fresh, &request).await.unwrap();
    // UDP is untouched.
    let udp = ask_udp_socket(server.addr, &request).await;
    assert_eq!(udp[3] & 0x0f, 0);
    // The oldest were closed to make room: reading them gives end of stream.
    let mut closed = 0;
    for s in flood.iter_mut().take(64) {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, 64, "the oldest connections were not closed");
    server.stop().await;
}

#[tokio::test]
async fn a_trickling_client_is_closed_after_the_idle_timeout() {
    let server =
        TestServer::start_with(fixture_zone(), &small(64, Duration::from_millis(300))).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    // A 40-octet message announced, then one octet every 100 ms: never idle for the timeout,
    // but never done with the message.
    slow.write_all(&[0, 40]).await.unwrap();
    let mut closed_after = None;
    for _ in 0..30 {
        if slow.write_all(&[0x42]).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(100), slow.read(&mut byte)).await
        {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the trickling client was never closed");
    assert!(closed_after < Duration::from_secs(1), "{closed_after:?}");
    server.stop().await;
}

async fn ask_udp_socket(addr: std::net::SocketAddr, request: &[u8]) -> Vec<u8> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(request, addr).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn a_message_shorter_than_a_header_closes_the_connection() {
    let server = TestServer::start(fixture_zone()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&[0, 0, 0, 0]).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), s.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    server.stop().await;
}
