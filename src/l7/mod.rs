//! HTTP-aware egress for services with L7 rules: per request, the WAN class that carries it, or
//! a 403 ([`route`]), forwarded by an HTTP/1.1 and HTTP/2 proxy to the exporting gateways'
//! ingress ports of that class ([`proxy`]), with a W3C `traceparent` on every request that
//! crosses the WAN ([`trace`]) and per-rule metrics ([`metrics`]).

pub mod metrics;
pub mod proxy;
pub mod route;
pub mod trace;

use crate::model::{ClusterObjects, ServiceKey, WanRoute};

/// The seed's WANRoute for `secure/payment` (deploy/examples/wanroute-payment.yaml): GET
/// /payment over `sd-wan-priority-high`, /stats over `sd-wan-priority-low`, the rest denied.
/// `mcwan demo` tells its story; the tests and the benchmark route by it.
pub const SEED_ROUTE: &str = include_str!("../../deploy/examples/wanroute-payment.yaml");

/// [`SEED_ROUTE`] as the proxy's routes.
pub fn seed_routes() -> Result<route::Routes, String> {
    let route = seed_wan_route()?;
    route::Routes::from_model(&route.rules, &route.default)
}

/// [`SEED_ROUTE`] as mcwan reads it from a catalog.
pub fn seed_wan_route() -> Result<WanRoute, String> {
    let mut objects = ClusterObjects::default();
    let mut problems = Vec::new();
    crate::catalog::load_manifests(
        "example",
        "wanroute-payment.yaml",
        SEED_ROUTE,
        &mut objects,
        &mut problems,
    );
    if let Some(p) = problems.first() {
        return Err(p.to_string());
    }
    objects
        .wan_routes
        .remove(&ServiceKey::new("secure", "payment"))
        .ok_or_else(|| "no WANRoute secure/payment in wanroute-payment.yaml".to_owned())
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::catalog::Catalog;

    /// The example clusterset with [`super::SEED_ROUTE`] in cluster-1, and ten ingress ports
    /// per WAN policy (the seed's policies own one each, which logging's export takes).
    pub fn example_with_seed_route() -> Catalog {
        let mut catalog = crate::catalog::embedded_example();
        for objects in catalog.clusters.values_mut() {
            for (policy, port) in objects.wan_policies.values_mut().zip([31100, 31200]) {
                policy.port = port;
                policy.port_count = 10;
            }
        }
        let route = super::seed_wan_route().expect("the seed's WANRoute");
        catalog
            .clusters
            .get_mut("cluster-1")
            .expect("cluster-1")
            .wan_routes
            .insert(route.key.clone(), route);
        catalog
    }
}
