//! Configuration of one simulated API server.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::resource::ResourceType;

/// How a [`crate::KubeSim`] behaves; [`SimConfig::default`] suits most tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Address to listen on; 127.0.0.1 by default.
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free port.
    pub port: u16,
    /// How many changes the history keeps for watches and exact lists; older
    /// versions get 410 Gone.
    pub history_limit: usize,
    /// How often a watch that asked for bookmarks receives one.
    pub bookmark_interval: Duration,
    /// How many changes a slow watch may fall behind before it is closed.
    pub watch_buffer: usize,
    /// Refuse to create namespaced objects in a namespace that does not exist, as
    /// kube-apiserver's NamespaceLifecycle admission does.
    pub require_namespaces: bool,
    /// Namespaces created at start.
    pub namespaces: Vec<String>,
    /// Base of the range ClusterIPs are allocated from.
    pub service_cidr_base: Ipv4Addr,
    /// Resources served in addition to the built-ins.
    pub extra_resources: Vec<ResourceType>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(5),
            watch_buffer: 16_384,
            require_namespaces: true,
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .map(str::to_owned)
                .to_vec(),
            service_cidr_base: Ipv4Addr::new(10, 96, 0, 0),
            extra_resources: Vec::new(),
        }
    }
}

impl SimConfig {
    /// Listen on this port (0 for any free port).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Keep this many changes of history.
    #[must_use]
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    /// Send bookmarks this often.
    #[must_use]
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Whether namespaced writes need an existing namespace.
    #[must_use]
    pub fn require_namespaces(mut self, require: bool) -> Self {
        self.require_namespaces = require;
        self
    }

    /// Serve an additional resource type.
    #[must_use]
    pub fn resource(mut self, rt: ResourceType) -> Self {
        self.extra_resources.push(rt);
        self
    }
}
