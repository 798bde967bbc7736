//! The zone settings, checked and turned into DNS names and SOA values.

use std::net::IpAddr;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::Name;

use super::error::{FieldProblem, ZoneError};
use crate::ZoneConfig;

/// The checked form of a [`ZoneConfig`].
#[derive(Debug, Clone)]
pub(super) struct Apex {
    pub(super) origin: Name,
    pub(super) ttl: u32,
    pub(super) ns_name: Name,
    /// Addresses of `ns_name`, published only when it lies in the zone.
    pub(super) ns_addresses: Vec<IpAddr>,
    pub(super) rname: Name,
    pub(super) refresh: i32,
    pub(super) retry: i32,
    pub(super) expire: i32,
    pub(super) minimum: u32,
}

impl Apex {
    pub(super) fn from_config(config: &ZoneConfig) -> Result<Self, ZoneError> {
        let origin = absolute_name("origin", &config.origin)?;
        if origin.is_root() {
            return Err(ZoneError::Config {
                field: "origin",
                problem: FieldProblem::InvalidName {
                    value: config.origin.clone(),
                    reason: "the root zone is not served".into(),
                },
            });
        }
        let ns_name = absolute_name("ns_name", &config.ns_name)?;
        if !config.ns_addresses.is_empty() && !origin.zone_of(&ns_name) {
            return Err(ZoneError::Config {
                field: "ns_addresses",
                problem: FieldProblem::OutsideZone {
                    value: config.ns_name.clone(),
                },
            });
        }
        let mut ns_addresses = config.ns_addresses.clone();
        ns_addresses.sort_unstable();
        ns_addresses.dedup();
        Ok(Self {
            origin,
            ttl: config.ttl,
            ns_name,
            ns_addresses,
            rname: absolute_name("soa_rname", &config.soa_rname)?,
            refresh: signed("soa_refresh", config.soa_refresh)?,
            retry: signed("soa_retry", config.soa_retry)?,
            expire: signed("soa_expire", config.soa_expire)?,
            minimum: config.soa_minimum,
        })
    }

    /// The SOA data for the given serial.
    pub(super) fn soa(&self, serial: u32) -> SOA {
        SOA::new(
            self.ns_name.clone(),
            self.rname.clone(),
            serial,
            self.refresh,
            self.retry,
            self.expire,
            self.minimum,
        )
    }

    /// The TTL of the SOA in negative answers (RFC 2308 section 3).
    pub(super) fn negative_ttl(&self) -> u32 {
        self.ttl.min(self.minimum)
    }
}

/// Parses `value` as a lower-cased, fully qualified name.
fn absolute_name(field: &'static str, value: &str) -> Result<Name, ZoneError> {
    let invalid = |reason: String| ZoneError::Config {
        field,
        problem: FieldProblem::InvalidName {
            value: value.to_owned(),
            reason,
        },
    };
    if value.trim_end_matches('.').is_empty() {
        return Err(invalid("it is empty".into()));
    }
    let mut name = Name::from_ascii(value).map_err(|error| invalid(error.to_string()))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

fn signed(field: &'static str, value: u32) -> Result<i32, ZoneError> {
    i32::try_from(value).map_err(|_| ZoneError::Config {
        field,
        problem: FieldProblem::OutOfRange {
            value,
            max: i32::MAX.unsigned_abs(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_cased_and_absolute() {
        let config = ZoneConfig::for_origin("ClusterSet.Local");
        let apex = Apex::from_config(&config).unwrap();
        assert_eq!(apex.origin.to_string(), "clusterset.local.");
        assert_eq!(apex.ns_name.to_string(), "ns.dns.clusterset.local.");
        assert_eq!(apex.rname.to_string(), "hostmaster.clusterset.local.");
    }

    #[test]
    fn empty_origin_is_a_config_error() {
        let config = ZoneConfig {
            origin: String::new(),
            ..ZoneConfig::default()
        };
        let error = Apex::from_config(&config).unwrap_err();
        assert!(
            matches!(
                error,
                ZoneError::Config {
                    field: "origin",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn soa_timers_beyond_i32_are_config_errors() {
        let config = ZoneConfig {
            soa_expire: u32::MAX,
            ..ZoneConfig::default()
        };
        let error = Apex::from_config(&config).unwrap_err();
        assert!(
            matches!(
                error,
                ZoneError::Config {
                    field: "soa_expire",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn ns_addresses_for_an_out_of_zone_ns_are_config_errors() {
        let config = ZoneConfig {
            ns_name: "ns.example.org".into(),
            ns_addresses: vec!["192.0.2.1".parse().unwrap()],
            ..ZoneConfig::default()
        };
        let error = Apex::from_config(&config).unwrap_err();
        assert!(
            matches!(
                error,
                ZoneError::Config {
                    field: "ns_addresses",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn negative_ttl_is_the_smaller_of_ttl_and_minimum() {
        let config = ZoneConfig {
            ttl: 30,
            soa_minimum: 10,
            ..ZoneConfig::default()
        };
        assert_eq!(Apex::from_config(&config).unwrap().negative_ttl(), 10);
    }
}
