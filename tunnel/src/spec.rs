//! What the caller wants: one [`TunnelSpec`] per WireGuard tunnel class, one [`HandoffSpec`]
//! per SD-WAN hand-off class, and [`RouteSpec`]s. mcwan maps its `ClassPlan`/`PeerPlan` onto
//! these.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::{IpNet, Ipv4Net};

use crate::error::{Error, Result};
use crate::key::{Key, ShowPublic};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// One WireGuard tunnel class: an interface listening on the class's WAN port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelSpec {
    pub class: String,
    /// The interface name, at most 15 characters, e.g. `mcw-` + a short class name.
    pub ifname: String,
    pub listen_port: u16,
    pub private_key: Key,
    /// Our inner address with the class's prefix (a /24: the peers are on-link).
    pub address: Ipv4Net,
    pub mtu: u16,
    /// Mark on the tunnel's own UDP packets (for policy routing of the underlay).
    pub fwmark: Option<u32>,
    pub peers: Vec<PeerSpec>,
}

/// One remote gateway on a tunnel class.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The peer's cluster id.
    pub name: String,
    pub public_key: Key,
    pub endpoint: SocketAddr,
    pub allowed_ips: Vec<IpNet>,
    /// Persistent keepalive in seconds.
    pub keepalive: Option<u16>,
}

impl fmt::Debug for PeerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerSpec")
            .field("name", &self.name)
            .field("public_key", &ShowPublic(&self.public_key))
            .field("endpoint", &self.endpoint)
            .field("allowed_ips", &self.allowed_ips)
            .field("keepalive", &self.keepalive)
            .finish()
    }
}

/// One SD-WAN hand-off class: traffic to `port_range` is marked with `fwmark` (in the bits of
/// `fwmark_mask` only, so marks other components set in other bits survive), which an
/// `ip rule fwmark M/MASK` at `rule_priority` sends to `table`, whose default route is
/// `next_hop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoffSpec {
    pub class: String,
    /// Inclusive destination port range (TCP and UDP).
    pub port_range: (u16, u16),
    pub next_hop: IpAddr,
    pub table: u32,
    pub fwmark: u32,
    /// The mark bits hand-off owns; `fwmark` lies within them.
    pub fwmark_mask: u32,
    pub rule_priority: u32,
}

/// A route mcwan owns (installed with protocol [`crate::RTPROT_MCWAN`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteSpec {
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output interface name.
    pub device: Option<String>,
    pub table: u32,
    pub metric: Option<u32>,
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.destination)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(dev) = &self.device {
            write!(f, " dev {dev}")?;
        }
        write!(f, " table {}", self.table)?;
        if let Some(metric) = self.metric {
            write!(f, " metric {metric}")?;
        }
        Ok(())
    }
}

impl TunnelSpec {
    /// Checks one spec on its own.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Error::InvalidTunnel {
            ifname: self.ifname.clone(),
            reason,
        };
        validate_ifname(&self.ifname).map_err(bad)?;
        if self.listen_port == 0 {
            return Err(bad("listen port 0".into()));
        }
        if self.mtu < crate::mtu::MIN_MTU {
            return Err(bad(format!(
                "MTU {} below the minimum {}",
                self.mtu,
                crate::mtu::MIN_MTU
            )));
        }
        let mut keys = BTreeSet::new();
        let own = self.private_key.public_key();
        for peer in &self.peers {
            if !keys.insert(&peer.public_key) {
                return Err(bad(format!(
                    "peer {} repeats the public key {}",
                    peer.name, peer.public_key
                )));
            }
            if peer.public_key == own {
                return Err(bad(format!("peer {} has our own public key", peer.name)));
            }
        }
        Ok(())
    }
}

/// Checks a list of specs: each valid, names and ports unique.
pub fn validate_tunnels(specs: &[TunnelSpec]) -> Result<()> {
    let mut names = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for spec in specs {
        spec.validate()?;
        if !names.insert(spec.ifname.as_str()) {
            return Err(Error::InvalidTunnel {
                ifname: spec.ifname.clone(),
                reason: "interface name used twice".into(),
            });
        }
        if !ports.insert(spec.listen_port) {
            return Err(Error::InvalidTunnel {
                ifname: spec.ifname.clone(),
                reason: format!("listen port {} used twice", spec.listen_port),
            });
        }
    }
    Ok(())
}

fn validate_ifname(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > IFNAME_MAX {
        return Err(format!("interface name must be 1..={IFNAME_MAX} bytes"));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        return Err("interface name has a forbidden character".into());
    }
    Ok(())
}

impl HandoffSpec {
    fn validate(&self) -> Result<()> {
        let bad = |reason: &str| Error::InvalidHandoff {
            class: self.class.clone(),
            reason: reason.into(),
        };
        if self.port_range.0 == 0 || self.port_range.0 > self.port_range.1 {
            return Err(bad("port range must be non-empty and start above 0"));
        }
        if self.fwmark == 0 {
            return Err(bad("fwmark 0 cannot select a rule"));
        }
        if self.fwmark & !self.fwmark_mask != 0 {
            return Err(bad("fwmark has bits outside fwmark_mask"));
        }
        if matches!(self.table, 0 | 253..=255) {
            return Err(bad(
                "table must be a dedicated table, not unspec/default/main/local",
            ));
        }
        if self.rule_priority <= 1 {
            return Err(bad(
                "rule priority must be 2 or more: 0 is the local table's, and hand-off puts a rule one before its first",
            ));
        }
        if self.class.is_empty() || self.class.contains(['"', '\\', '\n']) {
            return Err(bad("class name must be non-empty, without quotes"));
        }
        Ok(())
    }
}

/// Checks hand-off specs: each valid; classes, tables, marks and priorities unique; port
/// ranges disjoint.
pub fn validate_handoffs(specs: &[HandoffSpec]) -> Result<()> {
    for (i, spec) in specs.iter().enumerate() {
        spec.validate()?;
        for other in &specs[..i] {
            let clash = |what: &str| Error::InvalidHandoff {
                class: spec.class.clone(),
                reason: format!("{what} shared with class {}", other.class),
            };
            if other.class == spec.class {
                return Err(clash("class name"));
            }
            if other.table == spec.table {
                return Err(clash("table"));
            }
            if other.fwmark == spec.fwmark {
                return Err(clash("fwmark"));
            }
            if other.rule_priority == spec.rule_priority
                && other.next_hop.is_ipv4() == spec.next_hop.is_ipv4()
            {
                return Err(clash("rule priority"));
            }
            if spec.port_range.0 <= other.port_range.1 && other.port_range.0 <= spec.port_range.1 {
                return Err(clash("overlapping port range"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn mk_tunnel(ifname: &str, port: u16) -> TunnelSpec {
        TunnelSpec {
            class: "gold".into(),
            ifname: ifname.into(),
            listen_port: port,
            private_key: Key::generate(),
            address: "10.255.1.1/24".parse().unwrap(),
            mtu: 1420,
            fwmark: None,
            peers: vec![mk_peer("east", "192.0.2.2:51820")],
        }
    }

    pub(crate) fn mk_peer(name: &str, endpoint: &str) -> PeerSpec {
        PeerSpec {
            name: name.into(),
            public_key: Key::generate().public_key(),
            endpoint: endpoint.parse().unwrap(),
            allowed_ips: vec!["10.255.1.2/32".parse().unwrap()],
            keepalive: Some(25),
        }
    }

    pub(crate) fn mk_handoff(class: &str, ports: (u16, u16), n: u32) -> HandoffSpec {
        HandoffSpec {
            class: class.into(),
            port_range: ports,
            next_hop: "192.0.2.1".parse().unwrap(),
            table: 1000 + n,
            fwmark: 0xa00 + n,
            fwmark_mask: 0xfff,
            rule_priority: 10_000 + n,
        }
    }

    #[test]
    fn accepts_a_plain_tunnel() {
        validate_tunnels(&[mk_tunnel("mcw-gold", 51820), mk_tunnel("mcw-silver", 51821)]).unwrap();
    }

    #[test]
    fn rejects_long_names_duplicate_names_and_ports() {
        assert!(mk_tunnel("mcw-0123456789ab", 1).validate().is_err());
        let err = validate_tunnels(&[mk_tunnel("mcw-a", 1), mk_tunnel("mcw-a", 2)]).unwrap_err();
        assert!(err.to_string().contains("mcw-a"), "{err}");
        assert!(validate_tunnels(&[mk_tunnel("mcw-a", 1), mk_tunnel("mcw-b", 1)]).is_err());
    }

    #[test]
    fn rejects_duplicate_peer_keys_naming_the_peer() {
        let mut spec = mk_tunnel("mcw-gold", 51820);
        let mut twin = spec.peers[0].clone();
        twin.name = "west".into();
        spec.peers.push(twin);
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("west") && err.contains("mcw-gold"), "{err}");
    }

    #[test]
    fn peer_debug_shows_public_key_and_tunnel_debug_hides_private_key() {
        let spec = mk_tunnel("mcw-gold", 51820);
        let shown = format!("{spec:?}");
        assert!(shown.contains(&spec.peers[0].public_key.to_base64()));
        assert!(!shown.contains(&spec.private_key.to_base64()));
    }

    #[test]
    fn handoffs_must_not_share_tables_marks_or_ports() {
        let a = mk_handoff("high", (31000, 31009), 1);
        let b = mk_handoff("low", (32000, 32009), 2);
        validate_handoffs(&[a.clone(), b.clone()]).unwrap();
        let mut c = b.clone();
        c.port_range = (31005, 31020);
        let err = validate_handoffs(&[a.clone(), c]).unwrap_err().to_string();
        assert!(err.contains("low") && err.contains("high"), "{err}");
        let mut d = b.clone();
        d.table = a.table;
        assert!(validate_handoffs(&[a.clone(), d]).is_err());
        let mut e = b;
        e.table = 254;
        assert!(validate_handoffs(&[e]).is_err());
    }
}
