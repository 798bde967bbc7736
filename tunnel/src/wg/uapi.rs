//! The cross-platform userspace API (UAPI) of WireGuard: line-oriented `key=value` text over the
//! Unix socket `/var/run/wireguard/<ifname>.sock`, which boringtun serves and `wg` reads.
//!
//! [`encode_set`] and [`parse_get`] are pure; [`Client`] does the socket I/O.
//!
//! boringtun 0.7 cannot modify an existing peer (it refuses with a panic in its worker), so an
//! [`PeerChange::Update`] is encoded as a removal and a re-addition of the same key (see
//! [`encode_set`]): the interface and its routes stay, the peer re-handshakes (one round trip),
//! and TCP connections through it carry on.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{DeviceState, DeviceUpdate, PeerChange, PeerConfig, PeerState};
use crate::error::{Error, Result};
use crate::key::Key;

/// Where the UAPI socket of `ifname` lives.
pub fn socket_path(ifname: &str) -> PathBuf {
    PathBuf::from(format!("/var/run/wireguard/{ifname}.sock"))
}

/// The `set=1` transactions for `update`, each ending with its blank line.
///
/// boringtun 0.7 keeps a peer section's flags (`remove`, `endpoint`, ...) for the sections
/// after it in the same transaction, so: updated peers are removed in a first transaction;
/// the second sets the device fields, then adds peers each with every field spelled out, then
/// removes the peers that go (last, as nothing follows them).
pub fn encode_set(update: &DeviceUpdate) -> Vec<String> {
    let mut out = Vec::new();
    let updated: Vec<&PeerConfig> = update
        .peers
        .iter()
        .filter_map(|c| match c {
            PeerChange::Update(p) => Some(p),
            _ => None,
        })
        .collect();
    if !updated.is_empty() {
        let mut tx = String::from("set=1\n");
        for peer in &updated {
            let _ = writeln!(tx, "public_key={}\nremove=true", peer.public_key.to_hex());
        }
        tx.push('\n');
        out.push(tx);
    }
    let mut tx = String::from("set=1\n");
    if let Some(key) = &update.private_key {
        let _ = writeln!(tx, "private_key={}", key.to_hex());
    }
    if let Some(port) = update.listen_port {
        let _ = writeln!(tx, "listen_port={port}");
    }
    if let Some(mark) = update.fwmark {
        let _ = writeln!(tx, "fwmark={mark}");
    }
    for change in &update.peers {
        if let PeerChange::Add(peer) | PeerChange::Update(peer) = change {
            encode_peer(&mut tx, peer);
        }
    }
    for change in &update.peers {
        if let PeerChange::Remove(key) = change {
            let _ = writeln!(tx, "public_key={}\nremove=true", key.to_hex());
        }
    }
    if tx != "set=1\n" {
        tx.push('\n');
        out.push(tx);
    }
    out
}

fn encode_peer(out: &mut String, peer: &PeerConfig) {
    let _ = writeln!(out, "public_key={}", peer.public_key.to_hex());
    let _ = writeln!(out, "endpoint={}", peer.endpoint);
    let _ = writeln!(out, "persistent_keepalive_interval={}", peer.keepalive);
    let _ = writeln!(out, "replace_allowed_ips=true");
    for net in &peer.allowed_ips {
        let _ = writeln!(out, "allowed_ip={net}");
    }
}

/// Parses a `get=1` answer (without or with its final `errno=` line).
///
/// The last handshake is read as the standard's absolute time; a value before 2001 is read as
/// an age instead, because boringtun 0.7 writes the time since the handshake in that field.
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

/// A UAPI client for one interface.
#[derive(Debug, Clone)]
pub struct Client {
    ifname: String,
    path: PathBuf,
}

impl Client {
    pub fn new(ifname: &str) -> Self {
        Client {
            ifname: ifname.to_owned(),
            path: socket_path(ifname),
        }
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Uapi {
            ifname: self.ifname.clone(),
            source,
        }
    }

    async fn exchange(&self, request: &str) -> Result<String> {
        let mut stream = UnixStream::connect(&self.path)
            .await
            .map_err(|e| self.io(e))?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| self.io(e))?;
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).await.map_err(|e| self.io(e))?;
            if n == 0 {
                break;
            }
            let done = line.starts_with("errno=");
            answer.push_str(&line);
            if done {
                break;
            }
        }
        Ok(answer)
    }

    /// Reads the device.
    pub async fn get(&self) -> Result<DeviceState> {
        let answer = self.exchange("get=1\n\n").await?;
        parse_get(&self.ifname, &answer, SystemTime::now())
    }

    /// Applies an update.
    pub async fn set(&self, update: &DeviceUpdate) -> Result<()> {
        for tx in encode_set(update) {
            let answer = self.exchange(&tx).await?;
            parse_get(&self.ifname, &answer, SystemTime::now())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::mk_tunnel;

    #[test]
    fn full_config_is_device_fields_then_peers_then_a_blank_line() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let txs = encode_set(&DeviceUpdate::full(&spec));
        let peer = &spec.peers[0];
        let expected = format!(
            "set=1\nprivate_key={}\nlisten_port=51820\npublic_key={}\nendpoint=192.0.2.2:51820\n\
             persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.255.1.2/32\n\n",
            spec.private_key.to_hex(),
            peer.public_key.to_hex()
        );
        assert_eq!(txs, vec![expected]);
    }

    #[test]
    fn update_removes_first_and_removals_come_last() {
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
        let txs = encode_set(&update);
        let hex = peer.public_key.to_hex();
        assert_eq!(txs.len(), 2);
        assert_eq!(txs[0], format!("set=1\npublic_key={hex}\nremove=true\n\n"));
        assert!(txs[1].starts_with(&format!("set=1\npublic_key={hex}\nendpoint=")));
        assert!(txs[1].ends_with(&format!("public_key={}\nremove=true\n\n", gone.to_hex())));
    }

    #[test]
    fn keepalive_is_always_spelled_out_and_nothing_sends_nothing() {
        let mut spec = mk_tunnel("mcw-gold", 51820);
        spec.peers[0].keepalive = None;
        let txs = encode_set(&DeviceUpdate::full(&spec));
        assert!(txs[0].contains("persistent_keepalive_interval=0\n"));
        assert!(encode_set(&DeviceUpdate::default()).is_empty());
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
