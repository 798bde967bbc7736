//! Zone-wide settings: origin, TTL and the SOA/NS data of the apex.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The zone origin the MCS specification mandates.
pub const DEFAULT_ORIGIN: &str = "clusterset.local";

/// Settings of the served zone. Every record carries `ttl`.
///
/// When deserialized, omitted fields take their defaults, and the defaults of
/// `ns_name` and `soa_rname` follow the given `origin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ZoneConfigFile")]
pub struct ZoneConfig {
    /// The zone apex, `clusterset.local` by default.
    pub origin: String,
    /// TTL of every record, 5 seconds by default.
    pub ttl: u32,
    /// The NS (and SOA MNAME) target, `ns.dns.<origin>` by default.
    pub ns_name: String,
    /// Addresses published for `ns_name` when it lies inside the zone.
    pub ns_addresses: Vec<IpAddr>,
    /// The SOA RNAME (responsible mailbox), `hostmaster.<origin>` by default.
    pub soa_rname: String,
    /// SOA REFRESH, in seconds.
    pub soa_refresh: u32,
    /// SOA RETRY, in seconds.
    pub soa_retry: u32,
    /// SOA EXPIRE, in seconds.
    pub soa_expire: u32,
    /// SOA MINIMUM: the negative-caching TTL cap, in seconds.
    pub soa_minimum: u32,
}

const DEFAULT_TTL: u32 = 5;
const DEFAULT_REFRESH: u32 = 7200;
const DEFAULT_RETRY: u32 = 1800;
const DEFAULT_EXPIRE: u32 = 86400;
const DEFAULT_MINIMUM: u32 = 5;

impl ZoneConfig {
    /// The default settings for a zone rooted at `origin`.
    pub fn for_origin(origin: &str) -> Self {
        let origin = origin.trim_end_matches('.');
        Self {
            origin: origin.to_owned(),
            ttl: DEFAULT_TTL,
            ns_name: format!("ns.dns.{origin}"),
            ns_addresses: Vec::new(),
            soa_rname: format!("hostmaster.{origin}"),
            soa_refresh: DEFAULT_REFRESH,
            soa_retry: DEFAULT_RETRY,
            soa_expire: DEFAULT_EXPIRE,
            soa_minimum: DEFAULT_MINIMUM,
        }
    }
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self::for_origin(DEFAULT_ORIGIN)
    }
}

/// The on-disk shape: every field optional, defaults derived from `origin`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneConfigFile {
    origin: Option<String>,
    ttl: Option<u32>,
    ns_name: Option<String>,
    #[serde(default)]
    ns_addresses: Vec<IpAddr>,
    soa_rname: Option<String>,
    soa_refresh: Option<u32>,
    soa_retry: Option<u32>,
    soa_expire: Option<u32>,
    soa_minimum: Option<u32>,
}

impl From<ZoneConfigFile> for ZoneConfig {
    fn from(file: ZoneConfigFile) -> Self {
        let defaults = Self::for_origin(file.origin.as_deref().unwrap_or(DEFAULT_ORIGIN));
        Self {
            ttl: file.ttl.unwrap_or(defaults.ttl),
            ns_name: file.ns_name.unwrap_or(defaults.ns_name),
            ns_addresses: file.ns_addresses,
            soa_rname: file.soa_rname.unwrap_or(defaults.soa_rname),
            soa_refresh: file.soa_refresh.unwrap_or(defaults.soa_refresh),
            soa_retry: file.soa_retry.unwrap_or(defaults.soa_retry),
            soa_expire: file.soa_expire.unwrap_or(defaults.soa_expire),
            soa_minimum: file.soa_minimum.unwrap_or(defaults.soa_minimum),
            origin: defaults.origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_follows_the_mcs_zone() {
        let config = ZoneConfig::default();
        assert_eq!(config.origin, "clusterset.local");
        assert_eq!(config.ttl, 5);
        assert_eq!(config.ns_name, "ns.dns.clusterset.local");
        assert_eq!(config.soa_rname, "hostmaster.clusterset.local");
    }

    #[test]
    fn deserialized_defaults_follow_the_given_origin() {
        let config: ZoneConfig =
            serde_json::from_str(r#"{"origin":"mesh.example.","ttl":30}"#).unwrap();
        assert_eq!(config.origin, "mesh.example");
        assert_eq!(config.ttl, 30);
        assert_eq!(config.ns_name, "ns.dns.mesh.example");
        assert_eq!(config.soa_rname, "hostmaster.mesh.example");
        assert_eq!(config.soa_minimum, DEFAULT_MINIMUM);
    }

    #[test]
    fn unknown_config_fields_are_rejected() {
        let error = serde_json::from_str::<ZoneConfig>(r#"{"tll":30}"#).unwrap_err();
        assert!(error.to_string().contains("tll"), "{error}");
    }

    #[test]
    fn config_round_trips_through_serde() {
        let config = ZoneConfig {
            ns_addresses: vec!["192.0.2.53".parse().unwrap()],
            ..ZoneConfig::default()
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<ZoneConfig>(&json).unwrap(), config);
    }
}
