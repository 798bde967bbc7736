//! How IPVS forwards packets to a destination.

use std::fmt;

use crate::constants::*;

/// The forwarding method of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum ForwardMethod {
    /// NAT (`ipvsadm -m`, shown as `Masq`).
    #[default]
    Masquerade,
    /// The destination is a local address (shown as `Local`).
    Local,
    /// IP-in-IP, GUE or GRE tunnelling (`ipvsadm -i`, shown as `Tunnel`).
    Tunnel(TunnelEncap),
    /// Direct routing (`ipvsadm -g`, shown as `Route`).
    DirectRoute,
    /// Cache bypass (shown as `Bypass`).
    Bypass,
}

impl ForwardMethod {
    /// IP-in-IP tunnelling, as `ipvsadm -i` configures by default.
    pub const IPIP: ForwardMethod = ForwardMethod::Tunnel(TunnelEncap::Ipip);

    /// The `IP_VS_CONN_F_*` value of `IPVS_DEST_ATTR_FWD_METHOD`.
    pub fn conn_flags(self) -> u32 {
        match self {
            ForwardMethod::Masquerade => IP_VS_CONN_F_MASQ,
            ForwardMethod::Local => IP_VS_CONN_F_LOCALNODE,
            ForwardMethod::Tunnel(_) => IP_VS_CONN_F_TUNNEL,
            ForwardMethod::DirectRoute => IP_VS_CONN_F_DROUTE,
            ForwardMethod::Bypass => IP_VS_CONN_F_BYPASS,
        }
    }
}

impl fmt::Display for ForwardMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForwardMethod::Masquerade => "Masq",
            ForwardMethod::Local => "Local",
            ForwardMethod::Tunnel(_) => "Tunnel",
            ForwardMethod::DirectRoute => "Route",
            ForwardMethod::Bypass => "Bypass",
        })
    }
}

/// The encapsulation of a tunnelled destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum TunnelEncap {
    /// IP-in-IP (`--tun-type ipip`).
    #[default]
    Ipip,
    /// Generic UDP Encapsulation to a UDP port (`--tun-type gue --tun-port`).
    Gue {
        /// The GUE destination port (non-zero).
        port: u16,
        /// Checksum option.
        checksum: TunnelChecksum,
    },
    /// GRE (`--tun-type gre`).
    Gre {
        /// Checksum option.
        checksum: TunnelChecksum,
    },
}

impl TunnelEncap {
    /// The `IP_VS_CONN_F_TUNNEL_TYPE_*` value.
    pub fn tunnel_type(self) -> u8 {
        match self {
            TunnelEncap::Ipip => IP_VS_CONN_F_TUNNEL_TYPE_IPIP,
            TunnelEncap::Gue { .. } => IP_VS_CONN_F_TUNNEL_TYPE_GUE,
            TunnelEncap::Gre { .. } => IP_VS_CONN_F_TUNNEL_TYPE_GRE,
        }
    }

    /// The tunnel port (GUE only; 0 otherwise).
    pub fn port(self) -> u16 {
        match self {
            TunnelEncap::Gue { port, .. } => port,
            _ => 0,
        }
    }

    /// The `IP_VS_TUNNEL_ENCAP_FLAG_*` value.
    pub fn encap_flags(self) -> u16 {
        match self {
            TunnelEncap::Ipip => IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM,
            TunnelEncap::Gue { checksum, .. } | TunnelEncap::Gre { checksum } => checksum.flags(),
        }
    }

    /// Reads the three tunnel attributes. `None` for an unknown type.
    pub fn from_kernel(tunnel_type: u8, port: u16, flags: u16) -> Option<Self> {
        let checksum = TunnelChecksum::from_flags(flags);
        match tunnel_type {
            IP_VS_CONN_F_TUNNEL_TYPE_IPIP => Some(TunnelEncap::Ipip),
            IP_VS_CONN_F_TUNNEL_TYPE_GUE => Some(TunnelEncap::Gue { port, checksum }),
            IP_VS_CONN_F_TUNNEL_TYPE_GRE => Some(TunnelEncap::Gre { checksum }),
            _ => None,
        }
    }
}

/// Checksum option of a GUE or GRE tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum TunnelChecksum {
    /// No checksum (`--tun-nocsum`).
    #[default]
    None,
    /// Checksum (`--tun-csum`).
    Checksum,
    /// Remote checksum offload (`--tun-remcsum`).
    RemoteChecksum,
}

impl TunnelChecksum {
    /// The `IP_VS_TUNNEL_ENCAP_FLAG_*` value.
    pub fn flags(self) -> u16 {
        match self {
            TunnelChecksum::None => IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM,
            TunnelChecksum::Checksum => IP_VS_TUNNEL_ENCAP_FLAG_CSUM,
            TunnelChecksum::RemoteChecksum => IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM,
        }
    }

    /// Reads `IP_VS_TUNNEL_ENCAP_FLAG_*`.
    pub fn from_flags(flags: u16) -> Self {
        if flags & IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM != 0 {
            TunnelChecksum::RemoteChecksum
        } else if flags & IP_VS_TUNNEL_ENCAP_FLAG_CSUM != 0 {
            TunnelChecksum::Checksum
        } else {
            TunnelChecksum::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_values_match_ip_vs_h() {
        assert_eq!(ForwardMethod::Masquerade.conn_flags(), 0);
        assert_eq!(ForwardMethod::Local.conn_flags(), 1);
        assert_eq!(ForwardMethod::IPIP.conn_flags(), 2);
        assert_eq!(ForwardMethod::DirectRoute.conn_flags(), 3);
        assert_eq!(ForwardMethod::Bypass.conn_flags(), 4);
    }

    #[test]
    fn tunnel_values_match_ip_vs_h() {
        assert_eq!(TunnelEncap::Ipip.tunnel_type(), 0);
        let gue = TunnelEncap::Gue {
            port: 6080,
            checksum: TunnelChecksum::RemoteChecksum,
        };
        assert_eq!(
            (gue.tunnel_type(), gue.port(), gue.encap_flags()),
            (1, 6080, 2)
        );
        let gre = TunnelEncap::Gre {
            checksum: TunnelChecksum::Checksum,
        };
        assert_eq!(
            (gre.tunnel_type(), gre.port(), gre.encap_flags()),
            (2, 0, 1)
        );
    }

    #[test]
    fn tunnel_reads_back() {
        let gue = TunnelEncap::Gue {
            port: 5555,
            checksum: TunnelChecksum::Checksum,
        };
        assert_eq!(
            TunnelEncap::from_kernel(gue.tunnel_type(), gue.port(), gue.encap_flags()),
            Some(gue)
        );
        assert_eq!(TunnelEncap::from_kernel(0, 0, 0), Some(TunnelEncap::Ipip));
        assert_eq!(TunnelEncap::from_kernel(9, 0, 0), None);
    }

    #[test]
    fn display_matches_ipvsadm_columns() {
        let shown: Vec<String> = [
            ForwardMethod::Masquerade,
            ForwardMethod::Local,
            ForwardMethod::IPIP,
            ForwardMethod::DirectRoute,
            ForwardMethod::Bypass,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(shown, ["Masq", "Local", "Tunnel", "Route", "Bypass"]);
    }
}
