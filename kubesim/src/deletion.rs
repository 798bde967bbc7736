//! Deletion: finalizers, namespace termination, and what removing an object triggers
//! (a CRD stops being served, a terminating namespace that became empty goes away).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::crd;
use crate::defaults;
use crate::error::ApiError;
use crate::meta;
use crate::operation::{details, is_crd, namespaces_id, ns_key, Preconditions, WriteOptions};
use crate::resource::ResourceType;
use crate::selector::Selectors;
use crate::store::{present, State};

impl State {
    /// DELETE one object: removed at once, or marked with `deletionTimestamp` while
    /// finalizers remain.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        preconditions: &Preconditions,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let namespace = ns_key(rt, namespace);
        let old = self
            .object(&rt.id(), namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(details(rt, name)))?;
        if preconditions
            .uid
            .as_deref()
            .is_some_and(|uid| uid != meta::meta_str(&old, "uid"))
        {
            return Err(ApiError::conflict(
                details(rt, name),
                "Precondition failed: UID in precondition does not match the UID in the object",
            ));
        }
        if preconditions
            .resource_version
            .as_deref()
            .is_some_and(|rv| rv != meta::meta_str(&old, "resourceVersion"))
        {
            return Err(ApiError::conflict(
                details(rt, name),
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let is_namespace = rt.id() == namespaces_id();
        let holds = !meta::finalizers(&old).is_empty()
            || (is_namespace && self.namespace_has_content(name));
        if options.dry_run {
            return Ok(present(rt, &old));
        }
        if !holds {
            let removed = self.remove_object(rt, (*old).clone());
            return Ok(present(rt, &removed));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(present(rt, &old));
        }
        let mut marked = (*old).clone();
        let generation = meta::generation(&marked) + 1;
        let meta = meta::metadata_mut(&mut marked);
        meta.insert("deletionTimestamp".into(), json!(meta::now()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        meta.insert("generation".into(), json!(generation));
        defaults::apply(self, rt, &mut marked, Some(&old));
        let stored = self.commit_put(&rt.id(), marked);
        if is_namespace {
            self.delete_namespace_content(name);
            self.finish_namespace(name);
            if let Some(still) = self.object(&namespaces_id(), "", name) {
                return Ok(present(rt, still));
            }
        }
        Ok(present(rt, &stored))
    }

    /// DELETE a collection: every matching object, as single deletes would.
    pub fn delete_collection(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selectors: &Selectors,
        options: &WriteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let (items, _) = self.list_objects(rt, namespace, selectors, None, false)?;
        let mut deleted = Vec::with_capacity(items.len());
        for item in items {
            let ns = meta::meta_str(&item, "namespace").to_owned();
            let name = meta::meta_str(&item, "name").to_owned();
            deleted.push(self.delete(rt, &ns, &name, &Preconditions::default(), options)?);
        }
        Ok(deleted)
    }

    /// Remove an object for good, then run what its removal triggers: a CRD stops
    /// being served; a terminating namespace that became empty goes away.
    pub(crate) fn remove_object(&mut self, rt: &ResourceType, last: Value) -> Arc<Value> {
        let removed = self.commit_remove(&rt.id(), last);
        if is_crd(rt) {
            self.stop_serving_crd(&removed);
        }
        if rt.namespaced {
            let namespace = meta::meta_str(&removed, "namespace").to_owned();
            self.finish_namespace(&namespace);
        }
        removed
    }

    fn namespace_has_content(&self, namespace: &str) -> bool {
        self.stored_resources()
            .iter()
            .filter(|id| self.is_namespaced(id))
            .any(|id| self.objects(id, Some(namespace)).next().is_some())
    }

    /// Delete every object in a terminating namespace (finalizers are honoured).
    fn delete_namespace_content(&mut self, namespace: &str) {
        for id in self.stored_resources() {
            let Some(rt) = self
                .registry
                .versions_of(&id)
                .first()
                .map(|rt| (*rt).clone())
            else {
                continue;
            };
            if !rt.namespaced {
                continue;
            }
            let names: Vec<String> = self
                .objects(&id, Some(namespace))
                .map(|o| meta::meta_str(o, "name").to_owned())
                .collect();
            for name in names {
                // The object exists: only a precondition could fail, and there is none.
                let _ = self.delete(
                    &rt,
                    namespace,
                    &name,
                    &Preconditions::default(),
                    &WriteOptions::default(),
                );
            }
        }
    }

    /// Remove a terminating namespace once it holds nothing.
    fn finish_namespace(&mut self, namespace: &str) {
        let terminating = self
            .object(&namespaces_id(), "", namespace)
            .filter(|ns| ns.pointer("/metadata/deletionTimestamp").is_some())
            .cloned();
        if let Some(ns) = terminating {
            if meta::finalizers(&ns).is_empty() && !self.namespace_has_content(namespace) {
                self.commit_remove(&namespaces_id(), (*ns).clone());
            }
        }
    }

    /// Register the resources a stored CRD defines.
    pub(crate) fn serve_crd(&mut self, crd: &Value) {
        let types = crd::resource_types(crd);
        if let Some(first) = types.first() {
            self.registry.unregister(&first.id());
        }
        for rt in types {
            self.registry.register(rt);
        }
    }

    /// Unregister a deleted CRD's resources and drop their objects.
    fn stop_serving_crd(&mut self, crd: &Value) {
        let Some(id) = crd::resource_types(crd).first().map(ResourceType::id) else {
            return;
        };
        let objects: Vec<Value> = self.objects(&id, None).map(|o| (**o).clone()).collect();
        for object in objects {
            self.commit_remove(&id, object);
        }
        self.registry.unregister(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use crate::patch::fields::Scope;
    use crate::patch::PatchKind;
    use crate::store::Store;

    fn cm_type() -> ResourceType {
        ResourceType::namespaced("", "v1", "ConfigMap", "configmaps")
    }

    fn store() -> Store {
        Store::new(SimConfig::default().require_namespaces(false))
    }

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
    }

    #[test]
    fn finalizers_hold_deletion_until_removed() {
        let store = store();
        let mut state = store.lock();
        let opts = WriteOptions::default();
        let mut body = cm("a");
        body["metadata"]["finalizers"] = json!(["mcw.l7mp.io/cleanup"]);
        state
            .create(&cm_type(), "ns", body, &opts)
            .expect("created");
        let marked = state
            .delete(&cm_type(), "ns", "a", &Preconditions::default(), &opts)
            .expect("marked");
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert!(state.get_object(&cm_type(), "ns", "a").is_ok());

        let add = json!({"metadata": {"finalizers": ["mcw.l7mp.io/cleanup", "other"]}});
        let scope = Scope::Object {
            status_subresource: false,
        };
        let err = state
            .patch(&cm_type(), "ns", "a", PatchKind::Merge, &add, scope, &opts)
            .expect_err("no new finalizers while deleting");
        assert_eq!(err.code, 422);

        let clear = json!({"metadata": {"finalizers": null}});
        state
            .patch(
                &cm_type(),
                "ns",
                "a",
                PatchKind::Merge,
                &clear,
                scope,
                &opts,
            )
            .expect("finalizer removed");
        let err = state.get_object(&cm_type(), "ns", "a").expect_err("gone");
        assert_eq!(err.code, 404);
    }

    #[test]
    fn namespace_deletion_waits_for_held_objects() {
        let store = Store::new(SimConfig::default());
        let mut state = store.lock();
        let opts = WriteOptions::default();
        let ns_type = state
            .registry
            .get("", "v1", "namespaces")
            .cloned()
            .expect("served");
        state
            .create(&ns_type, "", json!({"metadata": {"name": "team"}}), &opts)
            .expect("namespace");
        let mut held = cm("held");
        held["metadata"]["finalizers"] = json!(["x"]);
        state
            .create(&cm_type(), "team", held, &opts)
            .expect("created");
        state
            .create(&cm_type(), "team", cm("free"), &opts)
            .expect("created");
        let ns = state
            .delete(&ns_type, "", "team", &Preconditions::default(), &opts)
            .expect("terminating");
        assert_eq!(ns["status"]["phase"], "Terminating");
        assert!(state.get_object(&cm_type(), "team", "free").is_err());
        let err = state
            .create(&cm_type(), "team", cm("new"), &opts)
            .expect_err("terminating");
        assert_eq!(err.code, 403);
        let clear = json!({"metadata": {"finalizers": null}});
        let scope = Scope::Object {
            status_subresource: false,
        };
        state
            .patch(
                &cm_type(),
                "team",
                "held",
                PatchKind::Merge,
                &clear,
                scope,
                &opts,
            )
            .expect("released");
        assert!(
            state.get_object(&ns_type, "", "team").is_err(),
            "namespace gone"
        );
    }
}
