//! The object store: objects by resource, namespace and name; one global
//! resource-version counter (as etcd's revision); a bounded history of changes for
//! watches; a broadcast channel that live watches follow.
//!
//! Every committed write bumps the counter by one and records exactly one [`Change`],
//! so "all changes after version N" is well defined as long as N is not older than the
//! history window ([`State::compacted_rv`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::error::ApiError;
use crate::meta::{self, UidGenerator};
use crate::registry::Registry;
use crate::resource::{ResourceId, ResourceType};
use crate::selector::Selectors;

/// Namespace and name; cluster-scoped objects have an empty namespace.
pub type ObjectKey = (String, String);

/// One committed write, as watches see it.
#[derive(Clone, Debug)]
pub struct Change {
    /// The resource version the write produced.
    pub rv: u64,
    /// The resource written.
    pub resource: ResourceId,
    /// The object after the write; for a deletion, its last state stamped with `rv`.
    pub object: Arc<Value>,
    /// The object before the write, `None` for a creation.
    pub prev: Option<Arc<Value>>,
    /// Whether the write removed the object.
    pub deleted: bool,
}

impl Change {
    /// Namespace of the object changed (empty when cluster-scoped).
    pub fn namespace(&self) -> &str {
        meta::meta_str(&self.object, "namespace")
    }
}

/// The mutable state behind the store's lock.
#[derive(Debug)]
pub struct State {
    /// Served resources.
    pub registry: Registry,
    objects: HashMap<ResourceId, BTreeMap<ObjectKey, Arc<Value>>>,
    rv: u64,
    history: VecDeque<Arc<Change>>,
    compacted_rv: u64,
    events: broadcast::Sender<Arc<Change>>,
    watch_epoch: CancellationToken,
    /// Generates UIDs and `generateName` suffixes.
    pub uids: UidGenerator,
    /// The next ClusterIP to hand out, as an offset into the service CIDR.
    pub next_service_ip: u32,
    /// The configuration the simulator started with.
    pub config: SimConfig,
}

impl State {
    fn new(config: SimConfig) -> Self {
        let mut registry = Registry::with_builtins();
        for rt in &config.extra_resources {
            registry.register(rt.clone());
        }
        let (events, _) = broadcast::channel(config.watch_buffer.max(1));
        Self {
            registry,
            objects: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted_rv: 0,
            events,
            watch_epoch: CancellationToken::new(),
            uids: UidGenerator::default(),
            next_service_ip: 10,
            config,
        }
    }

    /// The current (latest committed) resource version.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// Changes up to and including this version may have been dropped from history:
    /// a watch or exact list from an older version gets 410 Gone.
    pub fn compacted_rv(&self) -> u64 {
        self.compacted_rv
    }

    /// The object `name` in `namespace` ("" when cluster-scoped).
    pub fn object(&self, id: &ResourceId, namespace: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects
            .get(id)?
            .get(&(namespace.to_owned(), name.to_owned()))
    }

    /// Objects of `id`, in one namespace or all, ordered by namespace and name.
    pub fn objects<'a>(
        &'a self,
        id: &ResourceId,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        self.objects
            .get(id)
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|want| ns == want))
            .map(|(_, object)| object)
    }

    /// Resources that have at least one stored object.
    pub fn stored_resources(&self) -> Vec<ResourceId> {
        self.objects
            .iter()
            .filter(|(_, objects)| !objects.is_empty())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Store `object` (created or updated) at a new resource version and record the change.
    pub fn commit_put(&mut self, id: &ResourceId, mut object: Value) -> Arc<Value> {
        self.rv += 1;
        meta::metadata_mut(&mut object)
            .insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let key = key_of(&object);
        let object = Arc::new(object);
        let prev = self
            .objects
            .entry(id.clone())
            .or_default()
            .insert(key, object.clone());
        self.record(Change {
            rv: self.rv,
            resource: id.clone(),
            object: object.clone(),
            prev,
            deleted: false,
        });
        object
    }

    /// Remove an object at a new resource version; `last` is its final state (for
    /// instance with its last finalizer gone). Returns the removed object as stamped.
    pub fn commit_remove(&mut self, id: &ResourceId, mut last: Value) -> Arc<Value> {
        self.rv += 1;
        meta::metadata_mut(&mut last)
            .insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let key = key_of(&last);
        let prev = self.objects.get_mut(id).and_then(|m| m.remove(&key));
        let last = Arc::new(last);
        self.record(Change {
            rv: self.rv,
            resource: id.clone(),
            object: last.clone(),
            prev,
            deleted: true,
        });
        last
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.config.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_rv = dropped.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(change);
    }

    /// Drop the whole history: any watch or exact list from an older version than the
    /// current one now gets 410 Gone.
    pub fn compact(&mut self) -> u64 {
        self.history.clear();
        self.compacted_rv = self.rv;
        self.rv
    }

    /// End every open watch stream (their connections stay up).
    pub fn close_watches(&mut self) {
        self.watch_epoch.cancel();
        self.watch_epoch = CancellationToken::new();
    }

    /// Changes after `rv`, or 410 Gone when they are no longer all kept.
    pub fn changes_after(&self, rv: u64) -> Result<Vec<Arc<Change>>, ApiError> {
        if rv < self.compacted_rv {
            return Err(ApiError::expired(rv, self.compacted_rv));
        }
        Ok(self
            .history
            .iter()
            .filter(|change| change.rv > rv)
            .cloned()
            .collect())
    }

    /// Subscribe to live changes, with the epoch token that ends watches on
    /// [`State::close_watches`]. Call under the lock together with reading the state
    /// the watch starts from, so that no change falls between.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Change>>, CancellationToken) {
        (self.events.subscribe(), self.watch_epoch.clone())
    }

    /// Objects of `id` (in `namespace` or all) as they were at version `rv`, rebuilt by
    /// undoing the kept history; 410 Gone when `rv` is older than the history.
    pub fn objects_at(
        &self,
        id: &ResourceId,
        namespace: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let undo = self.changes_after(rv)?;
        let mut objects: BTreeMap<ObjectKey, Arc<Value>> = self
            .objects(id, namespace)
            .map(|object| (key_of(object), object.clone()))
            .collect();
        for change in undo.iter().rev().filter(|c| &c.resource == id) {
            if namespace.is_some_and(|ns| ns != change.namespace()) {
                continue;
            }
            let key = key_of(&change.object);
            match &change.prev {
                Some(prev) => objects.insert(key, prev.clone()),
                None => objects.remove(&key),
            };
        }
        Ok(objects.into_values().collect())
    }
}

/// The (namespace, name) key of an object.
pub fn key_of(object: &Value) -> ObjectKey {
    (
        meta::meta_str(object, "namespace").to_owned(),
        meta::meta_str(object, "name").to_owned(),
    )
}

/// The object as served at `rt`'s version: stored objects keep the apiVersion they
/// were written with, and are relabelled per request (no schema conversion).
pub fn present(rt: &ResourceType, object: &Value) -> Value {
    let mut object = object.clone();
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), Value::String(rt.api_version()));
        map.insert("kind".into(), Value::String(rt.kind.clone()));
    }
    object
}

/// Whether a change is visible to a watch of `rt` in `namespace` with `selectors`, and
/// as which event type (`ADDED`, `MODIFIED` or `DELETED`).
pub fn event_type(
    change: &Change,
    id: &ResourceId,
    namespace: Option<&str>,
    selectors: &Selectors,
) -> Option<&'static str> {
    if &change.resource != id || namespace.is_some_and(|ns| ns != change.namespace()) {
        return None;
    }
    let was = change.prev.as_deref().is_some_and(|p| selectors.matches(p));
    if change.deleted {
        return was.then_some("DELETED");
    }
    match (was, selectors.matches(&change.object)) {
        (false, true) => Some("ADDED"),
        (true, true) => Some("MODIFIED"),
        (true, false) => Some("DELETED"),
        (false, false) => None,
    }
}

/// The shared store: state behind a mutex.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
}

impl Store {
    /// An empty store with the built-in resources registered.
    pub fn new(config: SimConfig) -> Self {
        let namespaces = config.namespaces.clone();
        let store = Self {
            state: Mutex::new(State::new(config)),
        };
        {
            let mut state = store.lock();
            let namespace_type = state.registry.get("", "v1", "namespaces").cloned();
            for name in namespaces {
                let body = serde_json::json!({"metadata": {"name": name}});
                let created = namespace_type.as_ref().map(|rt| {
                    state.create(rt, "", body, &crate::operation::WriteOptions::default())
                });
                if let Some(Err(err)) = created {
                    tracing::warn!(namespace = %name, error = %err, "initial namespace not created");
                }
            }
        }
        store
    }

    /// Lock the state. A panic while locked cannot leave the maps half-written in a way
    /// that matters to a test server, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id() -> ResourceId {
        ResourceId {
            group: String::new(),
            plural: "configmaps".into(),
        }
    }

    fn cm(name: &str, value: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "data": {"v": value}})
    }

    fn state(limit: usize) -> State {
        State::new(SimConfig::default().history_limit(limit))
    }

    #[test]
    fn every_commit_bumps_the_global_version() {
        let mut state = state(10);
        let a = state.commit_put(&id(), cm("a", "1"));
        let b = state.commit_put(&id(), cm("b", "1"));
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        let gone = state.commit_remove(&id(), cm("a", "1"));
        assert_eq!(gone["metadata"]["resourceVersion"], "3");
        assert_eq!(state.objects(&id(), Some("default")).count(), 1);
    }

    #[test]
    fn history_window_expires_old_versions() {
        let mut state = state(2);
        for v in ["1", "2", "3"] {
            state.commit_put(&id(), cm("a", v));
        }
        assert_eq!(state.compacted_rv(), 1);
        assert_eq!(state.changes_after(1).map(|c| c.len()), Ok(2));
        assert_eq!(
            state.changes_after(0).map(|c| c.len()).map_err(|e| e.code),
            Err(410)
        );
        state.compact();
        assert_eq!(
            state.changes_after(2).map(|c| c.len()).map_err(|e| e.code),
            Err(410)
        );
        assert_eq!(state.changes_after(3).map(|c| c.len()), Ok(0));
    }

    #[test]
    fn objects_at_an_old_version_undo_later_changes() {
        let mut state = state(10);
        state.commit_put(&id(), cm("a", "1"));
        state.commit_put(&id(), cm("a", "2"));
        state.commit_put(&id(), cm("b", "1"));
        let at_1 = state.objects_at(&id(), None, 1).expect("kept");
        assert_eq!(at_1.len(), 1);
        assert_eq!(at_1[0]["data"]["v"], "1");
    }

    #[test]
    fn label_changes_turn_into_added_and_deleted_events() {
        let mut state = state(10);
        let selectors = Selectors::parse(Some("app=web"), None).expect("valid");
        let mut labelled = cm("a", "1");
        labelled["metadata"]["labels"] = json!({"app": "web"});
        state.commit_put(&id(), cm("a", "1"));
        state.commit_put(&id(), labelled);
        state.commit_put(&id(), cm("a", "2"));
        let types: Vec<Option<&str>> = state
            .changes_after(0)
            .expect("kept")
            .iter()
            .map(|c| event_type(c, &id(), None, &selectors))
            .collect();
        assert_eq!(types, [None, Some("ADDED"), Some("DELETED")]);
    }
}
