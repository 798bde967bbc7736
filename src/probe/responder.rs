//! The health responder: echoes mcwan probes (and nothing else) on the health port.

use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Every probe starts with this; anything else is dropped unanswered.
pub const MAGIC: &[u8] = b"MCWAN-HC1";

/// Answers probes on `socket` until `cancel` fires.
pub async fn respond(socket: Arc<UdpSocket>, cancel: CancellationToken) -> std::io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        let (n, from) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = socket.recv_from(&mut buf) => r?,
        };
        // Only a probe of the exact size is answered: no amplification, no reflection of junk.
        if n == MAGIC.len() + 8 && buf.starts_with(MAGIC) {
            if let Err(e) = socket.send_to(&buf[..n], from).await {
                debug!(%from, error = %e, "health reply not sent");
            }
        }
    }
}
