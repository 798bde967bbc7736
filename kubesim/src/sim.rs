//! [`KubeSim`]: one simulated cluster's API server, with a Rust API for tests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::SimConfig;
use crate::error::SimError;
use crate::handler::App;
use crate::kubeconfig;
use crate::meta;
use crate::operation::{Preconditions, WriteOptions, Written};
use crate::patch::fields::Scope;
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::selector::Selectors;
use crate::server::Listener;
use crate::store::Store;

/// A stateful Kubernetes API server on 127.0.0.1, for tests.
///
/// The store outlives the listener: [`KubeSim::stop`] closes the port and every
/// connection (watches included) while objects and the resource-version counter stay,
/// and [`KubeSim::resume`] serves them again on the same port. Several instances in one
/// process play several clusters. Dropping the simulator stops it.
pub struct KubeSim {
    store: Arc<Store>,
    app: Arc<App>,
    addr: SocketAddr,
    listener: tokio::sync::Mutex<Option<Listener>>,
    client: kube::Client,
}

impl std::fmt::Debug for KubeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSim")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl KubeSim {
    /// Start a simulator with the default configuration on a free port.
    pub async fn start() -> Result<Self, SimError> {
        Self::start_with(SimConfig::default()).await
    }

    /// Start a simulator with `config`.
    pub async fn start_with(config: SimConfig) -> Result<Self, SimError> {
        let requested = SocketAddr::new(config.host, config.port);
        let store = Arc::new(Store::new(config));
        let app = Arc::new(App {
            store: store.clone(),
        });
        let listener =
            Listener::bind(requested, app.clone()).map_err(|source| SimError::Listen {
                addr: requested,
                source,
            })?;
        let addr = listener.local_addr();
        let url = format!("http://{addr}");
        let client = build_client(&url)?;
        tracing::info!(%url, "kubesim serving");
        Ok(Self {
            store,
            app,
            addr,
            listener: tokio::sync::Mutex::new(Some(listener)),
            client,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address served (kept across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port served (kept across restarts).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A kube-rs client for this server (clones share one connection pool).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A kube-rs configuration for this server, default namespace `default`.
    pub fn kube_config(&self) -> kube::Config {
        config_for(&self.url()).unwrap_or_else(|_| unreachable!("the URL was parsed at start"))
    }

    /// A kubeconfig whose cluster, user and current context are named `context`.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        kubeconfig::yaml(&self.url(), context)
    }

    /// Write [`KubeSim::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path, context: &str) -> Result<(), SimError> {
        std::fs::write(path, self.kubeconfig_yaml(context)).map_err(|source| SimError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Stop serving: close the port and every connection, open watches included.
    /// The store is kept. Stopping a stopped simulator does nothing.
    pub async fn stop(&self) {
        if let Some(listener) = self.listener.lock().await.take() {
            listener.shutdown().await;
            tracing::info!(addr = %self.addr, "kubesim stopped");
        }
    }

    /// Serve again on the same port after [`KubeSim::stop`]; does nothing if serving.
    pub async fn resume(&self) -> Result<(), SimError> {
        let mut slot = self.listener.lock().await;
        if slot.is_none() {
            let listener =
                Listener::bind(self.addr, self.app.clone()).map_err(|source| SimError::Listen {
                    addr: self.addr,
                    source,
                })?;
            *slot = Some(listener);
            tracing::info!(addr = %self.addr, "kubesim resumed");
        }
        Ok(())
    }

    /// [`KubeSim::stop`] then [`KubeSim::resume`]: clients see the server die and
    /// come back with the same objects and resource versions.
    pub async fn restart(&self) -> Result<(), SimError> {
        self.stop().await;
        self.resume().await
    }

    /// Whether the listener is up.
    pub async fn is_running(&self) -> bool {
        self.listener.lock().await.is_some()
    }

    /// Drop the change history: watches and exact lists from any version older than
    /// the current one get 410 Gone from now on. Returns the current version.
    pub fn compact(&self) -> u64 {
        self.store.lock().compact()
    }

    /// End every open watch stream without closing connections, as kube-apiserver
    /// does when a watch times out.
    pub fn close_watches(&self) {
        self.store.lock().close_watches();
    }

    /// Versions up to this one may be missing from the history (410 Gone).
    pub fn compacted_resource_version(&self) -> u64 {
        self.store.lock().compacted_rv()
    }

    /// The current global resource version.
    pub fn resource_version(&self) -> u64 {
        self.store.lock().rv()
    }

    /// Serve an additional resource type.
    pub fn register(&self, rt: ResourceType) {
        self.store.lock().registry.register(rt);
    }

    fn resource(&self, api_version: &str, plural: &str) -> Result<ResourceType, SimError> {
        self.store
            .lock()
            .registry
            .by_plural(api_version, plural)
            .cloned()
            .ok_or_else(|| SimError::UnknownResource {
                api_version: api_version.to_owned(),
                name: plural.to_owned(),
            })
    }

    fn resource_of(&self, object: &Value) -> Result<ResourceType, SimError> {
        let text = |field: &str| object.get(field).and_then(Value::as_str).unwrap_or("");
        self.store
            .lock()
            .registry
            .by_kind(text("apiVersion"), text("kind"))
            .cloned()
            .ok_or_else(|| SimError::UnknownResource {
                api_version: text("apiVersion").to_owned(),
                name: text("kind").to_owned(),
            })
    }

    /// The stored object, as served at `api_version`; `namespace` is ignored for
    /// cluster-scoped resources.
    pub fn get_json(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let rt = self.resource(api_version, plural).ok()?;
        self.store
            .lock()
            .get_object(&rt, namespace.unwrap_or(""), name)
            .ok()
    }

    /// Every stored object of a resource, in one namespace or all.
    pub fn list_json(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let Ok(rt) = self.resource(api_version, plural) else {
            return Vec::new();
        };
        self.store
            .lock()
            .list_objects(&rt, namespace, &Selectors::default(), None, false)
            .map(|(items, _)| items)
            .unwrap_or_default()
    }

    /// Create `object` (its apiVersion and kind pick the resource), as a POST would.
    pub fn create_json(&self, object: Value) -> Result<Value, SimError> {
        let rt = self.resource_of(&object)?;
        let namespace = meta::meta_str(&object, "namespace").to_owned();
        let created =
            self.store
                .lock()
                .create(&rt, &namespace, object, &WriteOptions::default())?;
        Ok(created)
    }

    /// Server-side apply `object` with `field_manager`, forcing conflicts.
    pub fn apply_json(&self, object: Value, field_manager: &str) -> Result<Value, SimError> {
        let rt = self.resource_of(&object)?;
        let namespace = meta::meta_str(&object, "namespace").to_owned();
        let name = meta::meta_str(&object, "name").to_owned();
        let options = WriteOptions {
            dry_run: false,
            field_manager: Some(field_manager.to_owned()),
            force: true,
        };
        let scope = Scope::Object {
            status_subresource: rt.status_subresource,
        };
        let written = self.store.lock().patch(
            &rt,
            &namespace,
            &name,
            PatchKind::Apply,
            &object,
            scope,
            &options,
        )?;
        Ok(match written {
            Written::Created(object) | Written::Updated(object) => object,
        })
    }

    /// Replace the status of a stored object with `status`, as a PUT to `/status`.
    pub fn set_status(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, SimError> {
        let rt = self.resource(api_version, plural)?;
        let mut state = self.store.lock();
        let mut object = state.get_object(&rt, namespace.unwrap_or(""), name)?;
        object["status"] = status;
        let scope = if rt.status_subresource {
            Scope::Status
        } else {
            Scope::Object {
                status_subresource: false,
            }
        };
        let updated = state.replace(
            &rt,
            namespace.unwrap_or(""),
            name,
            object,
            scope,
            &WriteOptions::default(),
        )?;
        Ok(updated)
    }

    /// Delete an object, as a DELETE would (finalizers hold it).
    pub fn delete_json(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, SimError> {
        let rt = self.resource(api_version, plural)?;
        let deleted = self.store.lock().delete(
            &rt,
            namespace.unwrap_or(""),
            name,
            &Preconditions::default(),
            &WriteOptions::default(),
        )?;
        Ok(deleted)
    }

    /// Create a namespace.
    pub fn create_namespace(&self, name: &str) -> Result<Value, SimError> {
        self.create_json(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
    }
}

fn config_for(url: &str) -> Result<kube::Config, SimError> {
    let uri: hyper::Uri =
        url.parse()
            .map_err(|err: hyper::http::uri::InvalidUri| SimError::Client {
                url: url.to_owned(),
                source: Box::new(kube::Error::Service(Box::new(err))),
            })?;
    Ok(kube::Config::new(uri))
}

fn build_client(url: &str) -> Result<kube::Client, SimError> {
    let config = config_for(url)?;
    kube::Client::try_from(config).map_err(|source| SimError::Client {
        url: url.to_owned(),
        source: Box::new(source),
    })
}
