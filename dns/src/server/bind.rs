//! Binding a UDP socket and a TCP listener on the same address and port.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, UdpSocket};

use super::ServeError;

/// How often to retry when an ephemeral UDP port is already taken over TCP.
const EPHEMERAL_ATTEMPTS: usize = 16;

/// Binds UDP then TCP on `addr`. With port 0, retries until the port the
/// system picked for UDP is also free for TCP.
pub(super) async fn udp_and_tcp(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), ServeError> {
    let attempts = if addr.port() == 0 {
        EPHEMERAL_ATTEMPTS
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| ServeError::BindUdp { addr, source })?;
        let bound = udp
            .local_addr()
            .map_err(|source| ServeError::BindUdp { addr, source })?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) if addr.port() == 0 && source.kind() == io::ErrorKind::AddrInUse => {
                last_error = Some(ServeError::BindTcp {
                    addr: bound,
                    source,
                });
            }
            Err(source) => {
                return Err(ServeError::BindTcp {
                    addr: bound,
                    source,
                })
            }
        }
    }
    Err(last_error.unwrap_or(ServeError::NoListenAddress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ephemeral_port_is_shared_by_udp_and_tcp() {
        let (udp, tcp) = udp_and_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_eq!(udp.local_addr().unwrap(), tcp.local_addr().unwrap());
    }

    #[tokio::test]
    async fn bind_errors_name_the_address() {
        let (udp, _tcp) = udp_and_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let taken = udp.local_addr().unwrap();
        let error = udp_and_tcp(taken).await.unwrap_err();
        assert!(error.to_string().contains(&taken.to_string()), "{error}");
        assert!(matches!(error, ServeError::BindUdp { .. }), "{error}");
    }
}
