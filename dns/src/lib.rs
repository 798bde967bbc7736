//! Authoritative DNS for the Multi-Cluster Services `clusterset.local` zone.
//!
//! The controller hands over plain [`ServiceRecord`]s; this crate turns them
//! into an immutable, indexed [`Zone`] and serves it over UDP and TCP,
//! following the MCS DNS specification (KEP-1645):
//!
//! ```text
//!  ZoneConfig + [ServiceRecord]              (controller: desired state)
//!        │  Zone::build: check each service, build every name and record,
//!        │  fill empty non-terminals, digest the content into the SOA serial
//!        ▼
//!  ZoneBuild { zone, errors }                (bad services left out, named)
//!        │  ZoneHandle::store: one atomic swap (ArcSwap)
//!        ▼
//!  ZoneHandle ──load──► request path (answer / respond):
//!        ▲               parse (hickory), lookup by lower-cased name,
//!        │               answer / NXDOMAIN / NODATA / REFUSED / ..., EDNS,
//!        │               fit to the client's size (TC), encode (hickory)
//!        │                  ▲                         ▲
//!        │         UDP: our recvmmsg/sendmmsg    TCP: hickory-server's
//!        │         loop, in place                Server + RequestHandler
//!  DnsServer::run (until the CancellationToken fires)
//! ```
//!
//! Every query sees one whole zone, old or new. [`answer`] runs the request
//! path on raw bytes without sockets: the UDP loop calls it for each datagram,
//! our TCP loop and tests and the fuzz target call it directly, so UDP and TCP
//! answer with the same bytes. The encoder primes name compression with the
//! question, so an answer's owner name is a two-octet pointer to it. With
//! [`UdpPath::Hickory`], hickory-server's UDP handling runs the same decision
//! on the request it has parsed but encodes it itself, without that pointer.
//!
//! Names served, for `<svc>` in namespace `<ns>` and zone `<zone>`:
//! `<svc>.<ns>.svc.<zone>` (A/AAAA), `_<port>._<proto>.<svc>.<ns>.svc.<zone>`
//! (SRV, target addresses in the additional section),
//! `<hostname>.<clusterid>.<svc>.<ns>.svc.<zone>` (A/AAAA, headless only),
//! `dns-version.<zone>` (TXT `"1.0.0"`), and SOA and NS at the apex.
//! `<clusterid>.<svc>.<ns>.svc.<zone>` answers NXDOMAIN, as the specification asks.
//!
//! hickory-server logs every TCP request at `info` on the `hickory_server`
//! target; a busy server should run with that target at `warn`.

mod answer;
mod config;
mod handle;
mod label;
mod observe;
mod server;
mod service;
mod zone;

pub use answer::{answer, Transport, MAX_UDP_PAYLOAD};
pub use config::{ZoneConfig, DEFAULT_ORIGIN};
pub use handle::ZoneHandle;
pub use label::LabelError;
pub use observe::{question_type, response_code, QueryEvent, QueryObserver};
pub use server::{
    serve, Admitted, ConnectionSlots, DnsServer, ServeError, ServerOptions, TcpLimits, UdpPath,
};
pub use service::{HeadlessEndpoint, PortProtocol, PortRecord, ServiceRecord, ServiceRecordKind};
pub use zone::{FieldProblem, ServiceChange, Zone, ZoneBuild, ZoneError};
