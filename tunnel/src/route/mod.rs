//! Routes mcwan owns: installed with protocol [`RTPROT_MCWAN`](crate::RTPROT_MCWAN), applied as
//! a diff within a [`TableScope`], never replacing a route that is not ours.

pub mod builder;

use std::collections::BTreeMap;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

pub use builder::InstalledRoute;

use crate::error::{Error, Result};
use crate::link::Links;
use crate::netlink::{errno, Rtnl};
use crate::spec::RouteSpec;

/// Which of mcwan's routes one [`Routes`] manages (and so may remove).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableScope {
    /// mcwan's routes in the main table (254).
    Main,
    /// mcwan's routes in dedicated tables: every table but unspec, default, main and local.
    /// SD-WAN hand-off keeps its default routes there.
    Dedicated,
}

impl TableScope {
    pub fn contains(self, table: u32) -> bool {
        match self {
            TableScope::Main => table == 254,
            TableScope::Dedicated => !matches!(table, 0 | 253..=255),
        }
    }
}

/// What one apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteReport {
    pub added: Vec<InstalledRoute>,
    pub replaced: Vec<InstalledRoute>,
    pub removed: Vec<InstalledRoute>,
}

/// The changes that bring `installed` to `wanted` (both within one scope): (add, replace,
/// remove). A wanted route whose key is held by a foreign route is an error.
pub fn plan(
    installed: &[InstalledRoute],
    wanted: &[InstalledRoute],
    scope: TableScope,
) -> Result<(
    Vec<InstalledRoute>,
    Vec<InstalledRoute>,
    Vec<InstalledRoute>,
)> {
    let family = |r: &InstalledRoute| r.destination.addr().is_ipv4();
    let by_key: BTreeMap<_, &InstalledRoute> = installed
        .iter()
        .filter(|r| scope.contains(r.table))
        .map(|r| ((family(r), r.key()), r))
        .collect();
    let (mut add, mut replace, mut remove) = (Vec::new(), Vec::new(), Vec::new());
    for want in wanted {
        match by_key.get(&(family(want), want.key())) {
            None => add.push(want.clone()),
            Some(have) if !have.is_ours() => {
                return Err(Error::InvalidRoute {
                    route: format!("{} table {}", want.destination, want.table),
                    reason: format!(
                        "a route with protocol {} not installed by mcwan is in the way",
                        have.protocol
                    ),
                })
            }
            Some(have) if *have != want => replace.push(want.clone()),
            Some(_) => {}
        }
    }
    for have in by_key.values().filter(|r| r.is_ours()) {
        if !wanted
            .iter()
            .any(|w| family(w) == family(have) && w.key() == have.key())
        {
            remove.push((*have).clone());
        }
    }
    Ok((add, replace, remove))
}

/// Route I/O for one scope.
#[derive(Debug, Clone)]
pub struct Routes {
    links: Links,
    scope: TableScope,
}

impl Routes {
    /// Routes in `scope`, over a new netlink connection in the calling thread's namespace.
    pub fn new(scope: TableScope) -> Result<Self> {
        Ok(Routes {
            links: Links::new(Rtnl::connect()?),
            scope,
        })
    }

    pub(crate) fn with_links(links: Links, scope: TableScope) -> Self {
        Routes { links, scope }
    }

    fn rtnl(&self) -> &Rtnl {
        self.links.rtnl()
    }

    /// Every route of both families.
    pub async fn installed(&self) -> Result<Vec<InstalledRoute>> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            for m in self.rtnl().dump("routes", builder::dump(family)).await? {
                if let RouteNetlinkMessage::NewRoute(r) = m {
                    out.extend(builder::read(&r));
                }
            }
        }
        Ok(out)
    }

    /// Makes mcwan's routes in this scope exactly `specs`.
    pub async fn apply(&self, specs: &[RouteSpec]) -> Result<RouteReport> {
        let mut wanted = Vec::new();
        let links = if specs.iter().any(|s| s.device.is_some()) {
            self.links.list().await?
        } else {
            Vec::new()
        };
        for spec in specs {
            if !self.scope.contains(spec.table) {
                return Err(Error::InvalidRoute {
                    route: spec.to_string(),
                    reason: format!("table outside this actuator's scope {:?}", self.scope),
                });
            }
            let oif = match &spec.device {
                None => None,
                Some(dev) => Some(
                    links
                        .iter()
                        .find(|l| &l.name == dev)
                        .map(|l| l.index)
                        .ok_or_else(|| Error::InvalidRoute {
                            route: spec.to_string(),
                            reason: format!("no interface {dev}"),
                        })?,
                ),
            };
            wanted.push(builder::resolve(spec, oif));
        }
        let installed = self.installed().await?;
        let (add, replace, remove) = plan(&installed, &wanted, self.scope)?;
        for route in &add {
            self.rtnl()
                .execute(
                    &route_name(route),
                    builder::add(route),
                    NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                )
                .await?;
        }
        for route in &replace {
            self.rtnl()
                .execute(
                    &route_name(route),
                    builder::add(route),
                    NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
                )
                .await?;
        }
        for route in &remove {
            match self
                .rtnl()
                .execute(&route_name(route), builder::del(route), NLM_F_ACK)
                .await
            {
                Err(e) if e.errno() == Some(errno::ESRCH) => {}
                other => {
                    other?;
                }
            }
        }
        if !(add.is_empty() && replace.is_empty() && remove.is_empty()) {
            tracing::info!(
                added = add.len(),
                replaced = replace.len(),
                removed = remove.len(),
                scope = ?self.scope,
                "routes applied"
            );
        }
        Ok(RouteReport {
            added: add,
            replaced: replace,
            removed: remove,
        })
    }
}

fn route_name(route: &InstalledRoute) -> String {
    let mut name = format!("route {} table {}", route.destination, route.table);
    if let Some(gw) = route.gateway {
        name.push_str(&format!(" via {gw}"));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner::RTPROT_MCWAN;

    fn route(dst: &str, gw: &str, table: u32, protocol: u8) -> InstalledRoute {
        InstalledRoute {
            table,
            destination: dst.parse().unwrap(),
            gateway: Some(gw.parse().unwrap()),
            oif: None,
            metric: 0,
            protocol,
        }
    }

    #[test]
    fn adds_missing_replaces_changed_removes_stale_ours_only() {
        let installed = vec![
            route("0.0.0.0/0", "192.0.2.1", 1001, RTPROT_MCWAN),
            route("0.0.0.0/0", "192.0.2.9", 1002, RTPROT_MCWAN),
            route("0.0.0.0/0", "192.0.2.5", 1003, RTPROT_MCWAN),
            route("0.0.0.0/0", "192.0.2.7", 2000, 4),
            route("0.0.0.0/0", "192.0.2.8", 254, 4),
        ];
        let wanted = vec![
            route("0.0.0.0/0", "192.0.2.1", 1001, RTPROT_MCWAN),
            route("0.0.0.0/0", "192.0.2.2", 1002, RTPROT_MCWAN),
            route("0.0.0.0/0", "192.0.2.4", 1004, RTPROT_MCWAN),
        ];
        let (add, replace, remove) = plan(&installed, &wanted, TableScope::Dedicated).unwrap();
        assert_eq!(add, vec![wanted[2].clone()]);
        assert_eq!(replace, vec![wanted[1].clone()]);
        assert_eq!(remove, vec![installed[2].clone()]);
    }

    #[test]
    fn a_foreign_route_in_the_way_is_an_error_naming_it() {
        let installed = vec![route("0.0.0.0/0", "192.0.2.7", 1001, 4)];
        let wanted = vec![route("0.0.0.0/0", "192.0.2.1", 1001, RTPROT_MCWAN)];
        let err = plan(&installed, &wanted, TableScope::Dedicated).unwrap_err();
        assert!(err.to_string().contains("table 1001"), "{err}");
    }

    #[test]
    fn scopes_do_not_see_each_other() {
        let installed = vec![route("10.9.0.0/16", "10.255.1.2", 254, RTPROT_MCWAN)];
        let (_, _, remove) = plan(&installed, &[], TableScope::Dedicated).unwrap();
        assert!(remove.is_empty());
        let (_, _, remove) = plan(&installed, &[], TableScope::Main).unwrap();
        assert_eq!(remove.len(), 1);
    }
}
