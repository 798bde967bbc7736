//! The health responder: echoes mcwan probes (and nothing else) on the health port.
//!
//! It runs on a thread of its own with a blocking socket, not on the async runtime: a gateway
//! whose workers are busy (a large recompute, a slow machine) must still answer its peers'
//! probes in time, or they would drain it for being busy rather than dead.

use std::net::UdpSocket;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Every probe starts with this; anything else is dropped unanswered.
pub const MAGIC: &[u8] = b"MCWAN-HC1";

/// How often the responder looks at `cancel` while no probe arrives.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// Answers probes on `socket` until `cancel` fires. Blocks: run it on a thread of its own.
pub fn respond(socket: &UdpSocket, cancel: &CancellationToken) -> std::io::Result<()> {
    socket.set_read_timeout(Some(CANCEL_POLL))?;
    let mut buf = [0u8; 64];
    while !cancel.is_cancelled() {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        // Only a probe of the exact size is answered: no amplification, no reflection of junk.
        if n == MAGIC.len() + 8 && buf.starts_with(MAGIC) {
            if let Err(e) = socket.send_to(&buf[..n], from) {
                debug!(%from, error = %e, "health reply not sent");
            }
        }
    }
    Ok(())
}
