//! Metrics of the L7 proxies, per service, WAN class (`deny` for denied requests) and rule
//! (its index, or `default`).
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `mcwan_l7_requests_total` | `service`, `class`, `rule`, `code` | requests answered, by status code |
//! | `mcwan_l7_request_duration_seconds` | `service`, `class`, `rule` | time to the response's head, histogram |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub service: String,
    pub class: String,
    pub rule: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub service: String,
    pub class: String,
    pub rule: String,
}

impl RequestLabels {
    pub fn without_code(&self) -> RouteLabels {
        RouteLabels {
            service: self.service.clone(),
            class: self.class.clone(),
            rule: self.rule.clone(),
        }
    }
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The proxies' metric families; clones share them.
#[derive(Clone, Debug)]
pub struct L7Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for L7Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl L7Metrics {
    /// Registers the families with `registry` under their full names (`mcwan_l7_...`; the
    /// encoder adds `_total` to counters).
    pub fn register(&self, registry: &mut Registry) {
        self.register_with(registry, "mcwan_");
    }

    /// Registers the families with a registry that adds the `mcwan_` prefix itself.
    pub fn register_unprefixed(&self, registry: &mut Registry) {
        self.register_with(registry, "");
    }

    fn register_with(&self, registry: &mut Registry, prefix: &str) {
        registry.register(
            format!("{prefix}l7_requests"),
            "HTTP requests of services with L7 rules, by WAN class, rule and status code",
            self.requests.clone(),
        );
        registry.register(
            format!("{prefix}l7_request_duration_seconds"),
            "Time from a request to its response head, by WAN class and rule",
            self.duration.clone(),
        );
    }
}
