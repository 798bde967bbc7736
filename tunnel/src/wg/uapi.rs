//! The cross-platform userspace API (UAPI) of WireGuard: line-oriented `key=value` text over the
//! Unix socket `/var/run/wireguard/<ifname>.sock`, which mcwan's userspace device serves (for
//! `wg show` and `wg set`) and which any userspace WireGuard implementation answers.
//!
//! Everything here is pure: [`encode_set`] and [`parse_get`] for a client, [`parse_set`] and
//! [`encode_get`] for the serving side (the userspace device's socket does the I/O).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use super::{DeviceState, DeviceUpdate, PeerChange, PeerState};
use crate::error::{Error, Result};
use crate::key::Key;

/// The directory of UAPI sockets (shared by every WireGuard implementation on the host).
pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// Where the UAPI socket of `ifname` lives.
pub fn socket_path(ifname: &str) -> PathBuf {
    PathBuf::from(format!("{SOCKET_DIR}/{ifname}.sock"))
}

/// The `set=1` transaction for `update`, ending with its blank line (none when the update is
/// empty): [`SetRequest::from`] it, [`SetRequest::encode`]d.
pub fn encode_set(update: &DeviceUpdate) -> Option<String> {
    (!update.is_empty()).then(|| SetRequest::from(update).encode())
}

/// One `set=1` transaction as the standard defines it: device fields, then peer sections each
/// opened by `public_key=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetRequest {
    /// `Some(None)`: the all-zero key, which removes ours.
    pub private_key: Option<Option<Key>>,
    pub listen_port: Option<u16>,
    /// `Some(0)` removes the mark.
    pub fwmark: Option<u32>,
    /// Remove every peer before applying the sections below.
    pub replace_peers: bool,
    pub peers: Vec<PeerSet>,
}

/// One peer section of a [`SetRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSet {
    pub public_key: Key,
    pub remove: bool,
    /// Only change the peer if it exists; never create it.
    pub update_only: bool,
    /// `Some(None)`: the all-zero key, which removes the preshared key.
    pub preshared_key: Option<Option<Key>>,
    pub endpoint: Option<SocketAddr>,
    /// Seconds; `Some(0)` turns persistent keepalive off.
    pub keepalive: Option<u16>,
    /// Drop the peer's allowed IPs before adding `allowed_ips`.
    pub replace_allowed_ips: bool,
    pub allowed_ips: Vec<IpNet>,
}

impl PeerSet {
    fn new(public_key: Key) -> Self {
        PeerSet {
            public_key,
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }
}

impl SetRequest {
    /// The transaction's text, `set=1` to the closing blank line.
    pub fn encode(&self) -> String {
        let mut tx = String::from("set=1\n");
        write_key(&mut tx, "private_key", &self.private_key);
        if let Some(port) = self.listen_port {
            let _ = writeln!(tx, "listen_port={port}");
        }
        if let Some(mark) = self.fwmark {
            let _ = writeln!(tx, "fwmark={mark}");
        }
        if self.replace_peers {
            tx.push_str("replace_peers=true\n");
        }
        for peer in &self.peers {
            let _ = writeln!(tx, "public_key={}", peer.public_key.to_hex());
            if peer.remove {
                tx.push_str("remove=true\n");
            }
            if peer.update_only {
                tx.push_str("update_only=true\n");
            }
            write_key(&mut tx, "preshared_key", &peer.preshared_key);
            if let Some(endpoint) = peer.endpoint {
                let _ = writeln!(tx, "endpoint={endpoint}");
            }
            if let Some(keepalive) = peer.keepalive {
                let _ = writeln!(tx, "persistent_keepalive_interval={keepalive}");
            }
            if peer.replace_allowed_ips {
                tx.push_str("replace_allowed_ips=true\n");
            }
            for net in &peer.allowed_ips {
                let _ = writeln!(tx, "allowed_ip={net}");
            }
        }
        tx.push('\n');
        tx
    }
}

/// A key field of a set: the key, or the all-zero key that removes it.
fn write_key(tx: &mut String, name: &str, key: &Option<Option<Key>>) {
    match key {
        Some(Some(key)) => {
            let _ = writeln!(tx, "{name}={}", key.to_hex());
        }
        Some(None) => {
            let _ = writeln!(tx, "{name}={}", "00".repeat(crate::key::KEY_LEN));
        }
        None => {}
    }
}

impl From<&DeviceUpdate> for SetRequest {
    /// Updated peers are written in full with `replace_allowed_ips`, so they change in place;
    /// removals come last.
    fn from(update: &DeviceUpdate) -> Self {
        let mut request = SetRequest {
            private_key: update.private_key.clone().map(Some),
            listen_port: update.listen_port,
            fwmark: update.fwmark,
            replace_peers: false,
            peers: Vec::new(),
        };
        for change in &update.peers {
            if let PeerChange::Add(peer) | PeerChange::Update(peer) = change {
                request.peers.push(PeerSet {
                    endpoint: Some(peer.endpoint),
                    keepalive: Some(peer.keepalive),
                    replace_allowed_ips: true,
                    allowed_ips: peer.allowed_ips.clone(),
                    ..PeerSet::new(peer.public_key.clone())
                });
            }
        }
        for change in &update.peers {
            if let PeerChange::Remove(key) = change {
                request.peers.push(PeerSet {
                    remove: true,
                    ..PeerSet::new(key.clone())
                });
            }
        }
        request
    }
}

/// Why a `set=1` transaction was refused: the offending line, answered as `errno=22`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetError {
    pub line: String,
    pub reason: &'static str,
}

impl std::fmt::Display for SetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.line, self.reason)
    }
}

/// Parses the body of a `set=1` transaction (the lines after `set=1`, up to the blank line).
/// Keys are checked strictly: an unknown key, a malformed value, or a peer key before any
/// `public_key=` is an error and nothing of the transaction applies.
pub fn parse_set(body: &str) -> std::result::Result<SetRequest, SetError> {
    let mut request = SetRequest::default();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let fail = |reason| SetError {
            line: line.to_owned(),
            reason,
        };
        let (key, value) = line.split_once('=').ok_or_else(|| fail("not key=value"))?;
        let optional_key = |value: &str| {
            let key = Key::from_hex(value).map_err(|_| fail("not a 64-digit hex key"))?;
            Ok(Some(key).filter(|k| k.as_bytes() != &[0; crate::key::KEY_LEN]))
        };
        let flag = |value: &str| match value {
            "true" => Ok(true),
            _ => Err(fail("only `true` is accepted")),
        };
        if key == "public_key" {
            let key = Key::from_hex(value).map_err(|_| fail("not a 64-digit hex key"))?;
            request.peers.push(PeerSet::new(key));
            continue;
        }
        match (key, request.peers.last_mut()) {
            ("private_key", None) => request.private_key = Some(optional_key(value)?),
            ("listen_port", None) => {
                request.listen_port = Some(value.parse().map_err(|_| fail("not a port"))?);
            }
            ("fwmark", None) => {
                request.fwmark = Some(value.parse().map_err(|_| fail("not a 32-bit mark"))?);
            }
            ("replace_peers", None) => request.replace_peers = flag(value)?,
            ("remove", Some(peer)) => peer.remove = flag(value)?,
            ("update_only", Some(peer)) => peer.update_only = flag(value)?,
            ("preshared_key", Some(peer)) => peer.preshared_key = Some(optional_key(value)?),
            ("endpoint", Some(peer)) => {
                peer.endpoint = Some(value.parse().map_err(|_| fail("not an address:port"))?);
            }
            ("persistent_keepalive_interval", Some(peer)) => {
                peer.keepalive = Some(value.parse().map_err(|_| fail("not 0-65535 seconds"))?);
            }
            ("replace_allowed_ips", Some(peer)) => peer.replace_allowed_ips = flag(value)?,
            ("allowed_ip", Some(peer)) => {
                let net: IpNet = value.parse().map_err(|_| fail("not an address/prefix"))?;
                peer.allowed_ips.push(net.trunc());
            }
            ("protocol_version", Some(_)) if value == "1" => {}
            ("protocol_version", Some(_)) => return Err(fail("only protocol version 1 exists")),
            (_, None) => return Err(fail("not a device key (or a peer key before public_key)")),
            (_, Some(_)) => return Err(fail("not a peer key")),
        }
    }
    Ok(request)
}

/// The answer to `get=1`: the standard's fields, the last handshake as an absolute time, and
/// `errno=0` with the closing blank line. `preshared` holds the peers that have one.
pub fn encode_get(
    private_key: Option<&Key>,
    state: &DeviceState,
    preshared: &BTreeMap<Key, Key>,
    now: SystemTime,
) -> String {
    let mut out = String::new();
    if let Some(key) = private_key {
        let _ = writeln!(out, "private_key={}", key.to_hex());
    }
    let _ = writeln!(out, "listen_port={}", state.listen_port);
    if state.fwmark != 0 {
        let _ = writeln!(out, "fwmark={}", state.fwmark);
    }
    for peer in &state.peers {
        let _ = writeln!(out, "public_key={}", peer.public_key.to_hex());
        if let Some(psk) = preshared.get(&peer.public_key) {
            let _ = writeln!(out, "preshared_key={}", psk.to_hex());
        }
        if let Some(endpoint) = peer.endpoint {
            let _ = writeln!(out, "endpoint={endpoint}");
        }
        let _ = writeln!(out, "persistent_keepalive_interval={}", peer.keepalive);
        for net in &peer.allowed_ips {
            let _ = writeln!(out, "allowed_ip={net}");
        }
        let at = peer
            .last_handshake_age
            .and_then(|age| now.checked_sub(age))
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .unwrap_or_default();
        let _ = writeln!(out, "last_handshake_time_sec={}", at.as_secs());
        let _ = writeln!(out, "last_handshake_time_nsec={}", at.subsec_nanos());
        let _ = writeln!(
            out,
            "rx_bytes={}\ntx_bytes={}",
            peer.rx_bytes, peer.tx_bytes
        );
        out.push_str("protocol_version=1\n");
    }
    out.push_str("errno=0\n\n");
    out
}

/// Parses a `get=1` answer (without or with its final `errno=` line).
///
/// The last handshake is read as the standard's absolute time; a value before 2001 is read as
/// an age instead, as some userspace implementations (boringtun's own device) write the time
/// since the handshake in that field.
pub fn parse_get(ifname: &str, text: &str, now: SystemTime) -> Result<DeviceState> {
    let mut state = DeviceState::default();
    let mut peer: Option<PeerState> = None;
    let mut handshake_sec: Option<u64> = None;
    let mut handshake_nsec: u32 = 0;
    let bad = |line: &str| Error::UapiParse {
        ifname: ifname.to_owned(),
        line: line.to_owned(),
    };
    let finish = |peer: &mut Option<PeerState>,
                  sec: &mut Option<u64>,
                  nsec: &mut u32,
                  state: &mut DeviceState| {
        if let Some(mut p) = peer.take() {
            if let Some(s) = sec.take() {
                p.last_handshake_age = handshake_age(s, *nsec, now);
            }
            *nsec = 0;
            p.allowed_ips.sort();
            state.peers.push(p);
        }
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| bad(line))?;
        let num = || value.parse::<u64>().map_err(|_| bad(line));
        match (key, peer.as_mut()) {
            ("errno", _) => {
                let errno = value.parse::<i32>().map_err(|_| bad(line))?;
                if errno != 0 {
                    return Err(Error::UapiErrno {
                        ifname: ifname.to_owned(),
                        errno,
                    });
                }
            }
            ("public_key", _) => {
                finish(
                    &mut peer,
                    &mut handshake_sec,
                    &mut handshake_nsec,
                    &mut state,
                );
                peer = Some(PeerState {
                    public_key: Key::from_hex(value).map_err(|_| bad(line))?,
                    endpoint: None,
                    allowed_ips: Vec::new(),
                    keepalive: 0,
                    last_handshake_age: None,
                    rx_bytes: 0,
                    tx_bytes: 0,
                });
            }
            ("private_key", None) => {
                state.public_key = Some(Key::from_hex(value).map_err(|_| bad(line))?.public_key());
            }
            ("own_public_key", None) => {
                state.public_key = Some(Key::from_hex(value).map_err(|_| bad(line))?);
            }
            ("listen_port", None) => {
                state.listen_port = value.parse().map_err(|_| bad(line))?;
            }
            ("fwmark", None) => state.fwmark = value.parse().map_err(|_| bad(line))?,
            ("endpoint", Some(p)) => {
                p.endpoint = Some(value.parse::<SocketAddr>().map_err(|_| bad(line))?);
            }
            ("allowed_ip", Some(p)) => {
                p.allowed_ips
                    .push(value.parse::<IpNet>().map_err(|_| bad(line))?);
            }
            ("persistent_keepalive_interval", Some(p)) => {
                p.keepalive = value.parse().map_err(|_| bad(line))?;
            }
            ("last_handshake_time_sec", Some(_)) => handshake_sec = Some(num()?),
            ("last_handshake_time_nsec", Some(_)) => {
                handshake_nsec = value.parse().map_err(|_| bad(line))?;
            }
            ("rx_bytes", Some(p)) => p.rx_bytes = num()?,
            ("tx_bytes", Some(p)) => p.tx_bytes = num()?,
            // Known keys we do not model, and future ones.
            _ => {}
        }
    }
    finish(
        &mut peer,
        &mut handshake_sec,
        &mut handshake_nsec,
        &mut state,
    );
    Ok(state)
}

/// Seconds before this are an age, not a time (see [`parse_get`]).
const AGE_LIMIT_SECS: u64 = 1_000_000_000;

fn handshake_age(sec: u64, nsec: u32, now: SystemTime) -> Option<Duration> {
    if sec == 0 && nsec == 0 {
        return None;
    }
    let at = Duration::new(sec, nsec);
    if sec < AGE_LIMIT_SECS {
        return Some(at);
    }
    let now = now.duration_since(UNIX_EPOCH).ok()?;
    Some(now.saturating_sub(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::mk_tunnel;
    use crate::wg::PeerConfig;

    #[test]
    fn full_config_is_device_fields_then_peers_then_a_blank_line() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let tx = encode_set(&DeviceUpdate::full(&spec)).unwrap();
        let peer = &spec.peers[0];
        let expected = format!(
            "set=1\nprivate_key={}\nlisten_port=51820\npublic_key={}\nendpoint=192.0.2.2:51820\n\
             persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.255.1.2/32\n\n",
            spec.private_key.to_hex(),
            peer.public_key.to_hex()
        );
        assert_eq!(tx, expected);
    }

    #[test]
    fn updates_are_in_place_and_removals_come_last() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let peer = PeerConfig::from_spec(&spec.peers[0]);
        let gone = Key::generate().public_key();
        let update = DeviceUpdate {
            peers: vec![
                PeerChange::Remove(gone.clone()),
                PeerChange::Update(peer.clone()),
            ],
            ..DeviceUpdate::default()
        };
        let tx = encode_set(&update).unwrap();
        let hex = peer.public_key.to_hex();
        assert!(
            tx.starts_with(&format!("set=1\npublic_key={hex}\nendpoint=")),
            "{tx}"
        );
        assert!(!tx.contains(&format!("{hex}\nremove")), "{tx}");
        assert!(tx.ends_with(&format!("public_key={}\nremove=true\n\n", gone.to_hex())));
    }

    #[test]
    fn keepalive_is_always_spelled_out_and_nothing_sends_nothing() {
        let mut spec = mk_tunnel("mcw-gold", 51820);
        spec.peers[0].keepalive = None;
        let tx = encode_set(&DeviceUpdate::full(&spec)).unwrap();
        assert!(tx.contains("persistent_keepalive_interval=0\n"));
        assert_eq!(encode_set(&DeviceUpdate::default()), None);
    }

    #[test]
    fn what_encode_set_writes_parse_set_reads_back() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let mut update = DeviceUpdate::full(&spec);
        update.fwmark = Some(7);
        update
            .peers
            .push(PeerChange::Remove(Key::generate().public_key()));
        let tx = encode_set(&update).unwrap();
        let body = tx.strip_prefix("set=1\n").unwrap();
        assert_eq!(parse_set(body).unwrap(), SetRequest::from(&update));
    }

    #[test]
    fn parse_set_reads_what_wg_set_sends() {
        let peer = Key::generate().public_key();
        let psk = Key::generate();
        let body = format!(
            "private_key={}\nlisten_port=0\nfwmark=0\nreplace_peers=true\npublic_key={}\n\
             update_only=true\npreshared_key={}\nendpoint=[2001:db8::1]:51820\n\
             persistent_keepalive_interval=0\nreplace_allowed_ips=true\n\
             allowed_ip=10.1.2.3/16\nallowed_ip=::/0\nprotocol_version=1\npublic_key={}\n\
             preshared_key={}\nremove=true\n",
            "00".repeat(32),
            peer.to_hex(),
            psk.to_hex(),
            peer.to_hex(),
            "00".repeat(32),
        );
        let set = parse_set(&body).unwrap();
        assert_eq!(set.private_key, Some(None));
        assert_eq!((set.listen_port, set.fwmark), (Some(0), Some(0)));
        assert!(set.replace_peers);
        let p = &set.peers[0];
        assert!(p.update_only && p.replace_allowed_ips && !p.remove);
        assert_eq!(p.preshared_key, Some(Some(psk)));
        assert_eq!(p.endpoint, Some("[2001:db8::1]:51820".parse().unwrap()));
        assert_eq!(p.keepalive, Some(0));
        let nets: Vec<IpNet> = vec!["10.1.0.0/16".parse().unwrap(), "::/0".parse().unwrap()];
        assert_eq!(
            p.allowed_ips, nets,
            "prefixes are truncated to their network"
        );
        assert_eq!(set.peers[1].preshared_key, Some(None));
        assert!(set.peers[1].remove);
    }

    #[test]
    fn parse_set_refuses_what_it_does_not_know_naming_the_line() {
        let peer = Key::generate().public_key().to_hex();
        for (body, line) in [
            ("listen_port=70000\n".to_owned(), "listen_port=70000"),
            ("endpoint=192.0.2.1:1\n".to_owned(), "endpoint=192.0.2.1:1"),
            (
                format!("public_key={peer}\nlisten_port=1\n"),
                "listen_port=1",
            ),
            (format!("public_key={peer}\nremove=yes\n"), "remove=yes"),
            (
                format!("public_key={peer}\nallowed_ip=10.0.0.0\n"),
                "allowed_ip=10.0.0.0",
            ),
            (
                format!("public_key={peer}\nprotocol_version=2\n"),
                "protocol_version=2",
            ),
            ("public_key=abc\n".to_owned(), "public_key=abc"),
            ("bogus\n".to_owned(), "bogus"),
        ] {
            let err = parse_set(&body).unwrap_err();
            assert_eq!(err.line, line, "{body}");
        }
    }

    #[test]
    fn what_encode_get_writes_parse_get_reads_back() {
        let private = Key::generate();
        let psk = Key::generate();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let peer = |handshake: Option<Duration>| PeerState {
            public_key: Key::generate().public_key(),
            endpoint: Some("192.0.2.9:51821".parse().unwrap()),
            allowed_ips: vec!["10.255.2.0/24".parse().unwrap()],
            keepalive: 5,
            last_handshake_age: handshake,
            rx_bytes: 10,
            tx_bytes: 20,
        };
        let state = DeviceState {
            public_key: Some(private.public_key()),
            listen_port: 51821,
            fwmark: 0x100,
            peers: vec![peer(Some(Duration::from_millis(2500))), peer(None)],
        };
        let preshared = BTreeMap::from([(state.peers[0].public_key.clone(), psk.clone())]);
        let text = encode_get(Some(&private), &state, &preshared, now);
        assert!(text.ends_with("errno=0\n\n"));
        assert!(text.contains(&format!("preshared_key={}\n", psk.to_hex())));
        assert!(text
            .contains("last_handshake_time_sec=1799999997\nlast_handshake_time_nsec=500000000\n"));
        assert_eq!(parse_get("mcw-x", &text, now).unwrap(), state);
    }

    #[test]
    fn parses_boringtun_get_with_age_style_handshake() {
        let own = Key::generate().public_key();
        let peer = Key::generate().public_key();
        let text = format!(
            "own_public_key={}\nlisten_port=51820\nfwmark=7\npublic_key={}\n\
             persistent_keepalive_interval=25\nendpoint=192.0.2.2:51820\n\
             allowed_ip=10.255.1.2/32\nallowed_ip=10.0.0.0/8\nlast_handshake_time_sec=3\n\
             last_handshake_time_nsec=500\nrx_bytes=100\ntx_bytes=200\nerrno=0\n\n",
            own.to_hex(),
            peer.to_hex()
        );
        let state = parse_get("mcw-gold", &text, SystemTime::now()).unwrap();
        assert_eq!(state.public_key, Some(own));
        assert_eq!((state.listen_port, state.fwmark), (51820, 7));
        let p = &state.peers[0];
        assert_eq!(p.public_key, peer);
        assert_eq!(p.keepalive, 25);
        assert_eq!(p.endpoint, Some("192.0.2.2:51820".parse().unwrap()));
        assert_eq!(
            p.allowed_ips,
            vec![
                "10.0.0.0/8".parse().unwrap(),
                "10.255.1.2/32".parse().unwrap()
            ]
        );
        assert_eq!(p.last_handshake_age, Some(Duration::new(3, 500)));
        assert_eq!((p.rx_bytes, p.tx_bytes), (100, 200));
    }

    #[test]
    fn parses_standard_get_with_private_key_and_absolute_handshake() {
        let private = Key::generate();
        let peer = Key::generate().public_key();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
        let text = format!(
            "private_key={}\nlisten_port=1\npublic_key={}\nlast_handshake_time_sec=1700000000\n\
             last_handshake_time_nsec=0\nprotocol_version=1\npublic_key={}\nerrno=0\n",
            private.to_hex(),
            peer.to_hex(),
            Key::generate().public_key().to_hex()
        );
        let state = parse_get("mcw-x", &text, now).unwrap();
        assert_eq!(state.public_key, Some(private.public_key()));
        assert_eq!(state.peers.len(), 2);
        assert_eq!(
            state.peers[0].last_handshake_age,
            Some(Duration::from_secs(10))
        );
        assert_eq!(state.peers[1].last_handshake_age, None);
    }

    #[test]
    fn errno_and_garbage_are_errors_naming_the_interface() {
        let err = parse_get("mcw-gold", "errno=22\n", SystemTime::now()).unwrap_err();
        assert_eq!(err.errno(), Some(22));
        assert!(err.to_string().contains("mcw-gold"));
        assert!(parse_get("mcw-gold", "listen_port=x\n", SystemTime::now()).is_err());
        assert!(parse_get("mcw-gold", "junk\n", SystemTime::now()).is_err());
    }
}
