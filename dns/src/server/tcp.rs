//! The TCP accept loop: RFC 7766 framing (a two-octet length before each message), several
//! messages per connection, each answered by the pure request path in turn.
//!
//! A listener holds at most [`TcpLimits::max_connections`] connections. When a new one arrives
//! at the cap, the oldest is closed to make room (as Knot and Unbound shed idle connections
//! under pressure): a flood of idle or trickling connections cannot lock out new clients, and
//! the descriptors held stay bounded. A connection that sends nothing for the idle timeout, or
//! takes longer than it to deliver one message, is closed. Errors of `accept` never end the
//! loop: running out of descriptors backs off and retries.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::answer::{answer, Transport};
use crate::{question_type, response_code, QueryEvent, QueryObserver, ZoneHandle};

/// Limits of one TCP listener.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Connections held at once; the oldest is closed when a new one arrives at the cap.
    pub max_connections: usize,
    /// A connection idle this long, or this slow to deliver one message, is closed.
    pub idle_timeout: Duration,
}

/// Octets of a DNS header: a shorter message ends the connection.
const HEADER: usize = 12;

/// How long `accept` backs off when the process is out of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The connections of one listener, oldest first, each with the token that closes it: at the
/// cap, admitting a new one closes the oldest. (mcwan's admin endpoint uses it too.)
#[derive(Debug)]
pub struct ConnectionSlots {
    max: usize,
    open: Mutex<(u64, BTreeMap<u64, CancellationToken>)>,
}

/// One admitted connection: close it when `token` fires; give its slot back with
/// [`ConnectionSlots::release`].
#[derive(Debug)]
pub struct Admitted {
    pub id: u64,
    pub token: CancellationToken,
    /// How many older connections were closed to make room.
    pub evicted: usize,
}

impl ConnectionSlots {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            open: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Admits a connection (closed when `parent` fires too), closing the oldest at the cap.
    pub fn admit(&self, parent: &CancellationToken) -> Admitted {
        let token = parent.child_token();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut evicted = 0;
        while open.1.len() >= self.max {
            if let Some((_, oldest)) = open.1.pop_first() {
                oldest.cancel();
                evicted += 1;
            }
        }
        let id = open.0;
        open.0 += 1;
        open.1.insert(id, token.clone());
        Admitted { id, token, evicted }
    }

    /// Gives the slot of a connection that ended back.
    pub fn release(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .remove(&id);
    }

    /// Connections held now.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Serves `listener` until `cancel` fires.
pub(super) async fn serve_tcp(
    listener: TcpListener,
    zones: ZoneHandle,
    observer: Option<Arc<dyn QueryObserver>>,
    limits: TcpLimits,
    cancel: CancellationToken,
) {
    let slots = Arc::new(ConnectionSlots::new(limits.max_connections));
    let mut tasks = JoinSet::new();
    let mut shed = Shed::default();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_resource_shortage(&error) => {
                shed.note("accept", &error);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
            // A connection reset before it was accepted, and the like: the next one is fine.
            Err(error) => {
                debug!(%error, "TCP accept failed");
                continue;
            }
        };
        let Admitted { id, token, evicted } = slots.admit(&cancel);
        for _ in 0..evicted {
            shed.closed_oldest();
        }
        let zones = zones.clone();
        let observer = observer.clone();
        let slots = slots.clone();
        tasks.spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                result = connection(stream, &zones, observer.as_deref(), limits.idle_timeout) => {
                    if let Err(error) = result {
                        debug!(%peer, %error, "TCP connection ended");
                    }
                }
            }
            slots.release(id);
        });
        // Reap finished connections so the set does not grow.
        while tasks.try_join_next().is_some() {}
    }
    tasks.abort_all();
}

/// Answers the messages of one connection until the client closes it or is too slow.
async fn connection(
    mut stream: TcpStream,
    zones: &ZoneHandle,
    observer: Option<&dyn QueryObserver>,
    idle_timeout: Duration,
) -> io::Result<()> {
    let mut request = Vec::with_capacity(512);
    loop {
        let mut length = [0u8; 2];
        // Waiting for the next message: idle. A clean close here is the normal end.
        match tokio::time::timeout(idle_timeout, stream.read_exact(&mut length)).await {
            Err(_) => return Ok(()),
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(result) => result?,
        };
        let length = usize::from(u16::from_be_bytes(length));
        if length < HEADER {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a {length}-octet message is shorter than a DNS header"),
            ));
        }
        request.resize(length, 0);
        tokio::time::timeout(idle_timeout, stream.read_exact(&mut request))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "message not delivered in time")
            })??;
        let started = Instant::now();
        let Some(response) = answer(&zones.load(), &request, Transport::Tcp) else {
            continue;
        };
        if let Some(observer) = observer {
            observer.observe(&QueryEvent {
                qtype: question_type(&request),
                rcode: response_code(&response).unwrap_or_default(),
                transport: Transport::Tcp,
                elapsed: started.elapsed(),
            });
        }
        // Responses of the TCP path are limited to 65535 octets by the request path.
        let Ok(len) = u16::try_from(response.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(response.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&response);
        tokio::time::timeout(idle_timeout, stream.write_all(&framed))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "response not read in time"))??;
    }
}

fn is_resource_shortage(error: &io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    matches!(
        error.raw_os_error(),
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM)
    )
}

/// Warns about shed connections and accept failures at most once per [`Shed::EVERY`], with
/// counts, so a flood does not become a flood of log lines.
#[derive(Default)]
struct Shed {
    last: Option<Instant>,
    closed: u64,
    failed: u64,
}

impl Shed {
    const EVERY: Duration = Duration::from_secs(10);

    fn closed_oldest(&mut self) {
        self.closed += 1;
        self.maybe_warn(None);
    }

    fn note(&mut self, what: &str, error: &io::Error) {
        self.failed += 1;
        self.maybe_warn(Some((what, error)));
    }

    fn maybe_warn(&mut self, error: Option<(&str, &io::Error)>) {
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        match error {
            Some((what, error)) => warn!(
                %error,
                failed = self.failed,
                closed_oldest = self.closed,
                "DNS over TCP: {what} failed; backing off"
            ),
            None => warn!(
                closed_oldest = self.closed,
                failed = self.failed,
                "DNS over TCP: connection cap reached; closing the oldest connections"
            ),
        }
        self.closed = 0;
        self.failed = 0;
    }
}
