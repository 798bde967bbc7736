//! HTTP-aware egress for services with L7 rules: per request, the WAN class that carries it, or
//! a 403 ([`route`]), forwarded by an HTTP/1.1 and HTTP/2 proxy to the exporting gateways'
//! ingress ports of that class ([`proxy`]), with a W3C `traceparent` on every request that
//! crosses the WAN ([`trace`]) and per-rule metrics ([`metrics`]).

pub mod metrics;
pub mod proxy;
pub mod route;
pub mod trace;
