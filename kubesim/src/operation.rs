//! The API verbs over the [`State`]: get, list, create, replace, patch, apply and
//! delete, with kube-apiserver's metadata, precondition, status-subresource and
//! finalizer semantics. Every function here answers with objects as served at the
//! requested version (see [`present`]).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::crd;
use crate::defaults;
use crate::error::{ApiError, Details};
use crate::meta::{self, NameRule};
use crate::patch::apply::{self, ApplyRequest};
use crate::patch::fields::Scope;
use crate::patch::{merge, PatchKind};
use crate::resource::{ResourceId, ResourceType};
use crate::selector::Selectors;
use crate::store::{present, State};

/// Options shared by write requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Validate and answer without persisting (`dryRun=All`).
    pub dry_run: bool,
    /// The `fieldManager` (required for apply).
    pub field_manager: Option<String>,
    /// Take over conflicting fields on apply.
    pub force: bool,
}

/// Preconditions of a delete (`DeleteOptions.preconditions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// The object must have this UID.
    pub uid: Option<String>,
    /// The object must be at this resource version.
    pub resource_version: Option<String>,
}

/// The result of a write that may create.
#[derive(Clone, Debug, PartialEq)]
pub enum Written {
    /// A new object (HTTP 201).
    Created(Value),
    /// An existing object was changed or left as it was (HTTP 200).
    Updated(Value),
}

/// The namespace key as stored ("" for cluster-scoped objects).
pub(crate) fn ns_key<'a>(rt: &ResourceType, namespace: &'a str) -> &'a str {
    if rt.namespaced {
        namespace
    } else {
        ""
    }
}

pub(crate) fn details(rt: &ResourceType, name: &str) -> Details {
    Details::new(&rt.group, &rt.plural, name)
}

pub(crate) fn namespaces_id() -> ResourceId {
    ResourceId {
        group: String::new(),
        plural: "namespaces".into(),
    }
}

pub(crate) fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
}

/// Check and complete the identity of a request body: apiVersion, kind, namespace
/// and (for requests on a named object) name.
fn check_identity(
    rt: &ResourceType,
    body: &mut Value,
    namespace: &str,
    url_name: Option<&str>,
) -> Result<(), ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON or YAML object",
        ));
    };
    let expected = rt.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(expected));
        }
        Some(found) if found != expected => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({found}) does not match the expected API version ({expected})"
            )))
        }
        Some(_) => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(rt.kind));
        }
        Some(found) if found != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({found}) does not match the expected kind ({}) for {}",
                rt.kind,
                rt.id()
            )))
        }
        Some(_) => {}
    }
    let meta = meta::metadata_mut(body);
    if rt.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("namespace".into(), json!(namespace));
            }
            Some(found) if found != namespace => {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({found}) does not match the namespace sent on the request ({namespace})"
                )))
            }
            Some(_) => {}
        }
    } else {
        meta.remove("namespace");
    }
    if let Some(url_name) = url_name {
        match meta.get("name").and_then(Value::as_str) {
            None | Some("") => {
                meta.insert("name".into(), json!(url_name));
            }
            Some(found) if found != url_name => {
                return Err(ApiError::bad_request(format!(
                "the name of the object ({found}) does not match the name on the URL ({url_name})"
            )))
            }
            Some(_) => {}
        }
    }
    if is_crd(rt) {
        if let Some(why) = crd::unapproved(body) {
            let name = meta::meta_str(body, "name").to_owned();
            return Err(ApiError::invalid(details(rt, &name), &why));
        }
    }
    Ok(())
}

/// Copy of `object` without what changes on every write even when nothing else does.
fn without_volatile(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
            for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                entry.remove("time");
            }
        }
    }
    object
}

/// The part of an object whose change bumps `metadata.generation`.
fn generation_relevant(object: &Value, status_subresource: bool) -> Value {
    let mut object = object.clone();
    if let Value::Object(map) = &mut object {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
        if status_subresource {
            map.remove("status");
        }
    }
    object
}

impl State {
    /// The resource types of a namespaced or cluster-scoped storage id.
    pub(crate) fn is_namespaced(&self, id: &ResourceId) -> bool {
        self.registry
            .versions_of(id)
            .first()
            .is_some_and(|rt| rt.namespaced)
    }

    /// GET one object.
    pub fn get_object(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.object(&rt.id(), ns_key(rt, namespace), name)
            .map(|object| present(rt, object))
            .ok_or_else(|| ApiError::not_found(details(rt, name)))
    }

    /// LIST objects in one namespace (or all), filtered by selectors. `rv` with
    /// `exact` reads the state at that version; otherwise the current state is
    /// returned (it is never older than `rv`). Returns the items and the list's version.
    pub fn list_objects(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selectors: &Selectors,
        rv: Option<u64>,
        exact: bool,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let namespace = if rt.namespaced { namespace } else { None };
        if let Some(rv) = rv.filter(|rv| *rv > self.rv()) {
            return Err(ApiError::too_large_resource_version(rv, self.rv()));
        }
        let (objects, list_rv) = match rv {
            Some(rv) if exact => (self.objects_at(&rt.id(), namespace, rv)?, rv),
            _ => (
                self.objects(&rt.id(), namespace).cloned().collect(),
                self.rv(),
            ),
        };
        let items = objects
            .iter()
            .filter(|object| selectors.matches(object))
            .map(|object| present(rt, object))
            .collect();
        Ok((items, list_rv))
    }

    /// POST: create an object.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut body: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        check_identity(rt, &mut body, ns_key(rt, namespace), None)?;
        self.insert_new(rt, body, options, false)
    }

    /// Store a new object: name generation and validation, namespace existence,
    /// server-set metadata, status reset, defaulting.
    fn insert_new(
        &mut self,
        rt: &ResourceType,
        mut object: Value,
        options: &WriteOptions,
        keep_managed_fields: bool,
    ) -> Result<Value, ApiError> {
        let namespace = meta::meta_str(&object, "namespace").to_owned();
        let mut name = meta::meta_str(&object, "name").to_owned();
        if name.is_empty() {
            let prefix = meta::meta_str(&object, "generateName");
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    details(rt, ""),
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
            name = format!("{prefix}{}", self.uids.suffix());
        }
        if let Some(why) = NameRule::for_resource(&rt.group, &rt.plural).check(&name) {
            return Err(ApiError::invalid(details(rt, &name), &why));
        }
        if rt.namespaced && self.config.require_namespaces {
            match self.object(&namespaces_id(), "", &namespace) {
                None => {
                    return Err(ApiError::not_found(Details::new(
                        "",
                        "namespaces",
                        &namespace,
                    )))
                }
                Some(ns) if ns.pointer("/metadata/deletionTimestamp").is_some() => {
                    return Err(ApiError::forbidden(format!(
                        "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                        rt.id()
                    )))
                }
                Some(_) => {}
            }
        }
        if self.object(&rt.id(), &namespace, &name).is_some() {
            return Err(ApiError::already_exists(details(rt, &name)));
        }
        let uid = self.uids.next();
        let meta = meta::metadata_mut(&mut object);
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(meta::now()));
        meta.insert("generation".into(), json!(1));
        for server_set in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(server_set);
        }
        if !keep_managed_fields {
            meta.remove("managedFields");
        }
        if rt.status_subresource {
            if let Value::Object(map) = &mut object {
                map.remove("status");
            }
        }
        defaults::apply(self, rt, &mut object, None);
        if options.dry_run {
            return Ok(present(rt, &object));
        }
        let stored = self.commit_put(&rt.id(), object);
        if is_crd(rt) {
            self.serve_crd(&stored);
        }
        Ok(present(rt, &stored))
    }

    /// PUT: replace an object (or its status).
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        mut body: Value,
        scope: Scope,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let namespace = ns_key(rt, namespace);
        check_identity(rt, &mut body, namespace, Some(name))?;
        let old = self
            .object(&rt.id(), namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(details(rt, name)))?;
        self.update_existing(rt, &old, body, scope, options)
    }

    /// PATCH an object (or its status) with any patch kind; apply may create.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        scope: Scope,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let namespace = ns_key(rt, namespace);
        let old = self.object(&rt.id(), namespace, name).cloned();
        if kind == PatchKind::Apply {
            return self.apply(rt, namespace, name, old, patch, scope, options);
        }
        let old = old.ok_or_else(|| ApiError::not_found(details(rt, name)))?;
        let mut patched = present(rt, &old);
        match kind {
            PatchKind::Merge => json_patch::merge(&mut patched, patch),
            PatchKind::Strategic => merge::strategic_merge_patch(&mut patched, patch),
            PatchKind::Json => {
                let invalid = |err: String| ApiError::invalid(details(rt, name), &err);
                let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                    .map_err(|err| invalid(format!("invalid JSON patch document: {err}")))?;
                // On error the document is left as it was (the crate undoes applied operations).
                json_patch::patch(&mut patched, &ops).map_err(|err| invalid(err.to_string()))?;
            }
            PatchKind::Apply => unreachable!("handled above"),
        }
        check_identity(rt, &mut patched, namespace, Some(name))?;
        self.update_existing(rt, &old, patched, scope, options)
            .map(Written::Updated)
    }

    /// Server-side apply.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        old: Option<Arc<Value>>,
        applied: &Value,
        scope: Scope,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let manager = options
            .field_manager
            .as_deref()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("PATCH, fieldManager is required for apply requests")
            })?;
        let mut applied = applied.clone();
        for field in ["apiVersion", "kind"] {
            if applied
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request(format!(
                    "{field} is required for apply requests on {} \"{name}\"",
                    rt.id()
                )));
            }
        }
        check_identity(rt, &mut applied, namespace, Some(name))?;
        let api_version = rt.api_version();
        let now = meta::now();
        let request = ApplyRequest {
            manager,
            force: options.force,
            scope,
            api_version: &api_version,
            now: &now,
        };
        let live = old.as_deref().map(|o| present(rt, o));
        let merged = apply::apply(live.as_ref(), &applied, &request).map_err(|conflicts| {
            ApiError::apply_conflict(details(rt, name), apply::describe(&conflicts))
        })?;
        match old {
            Some(old) => self
                .update_existing(rt, &old, merged, scope, options)
                .map(Written::Updated),
            None if scope == Scope::Status => Err(ApiError::not_found(details(rt, name))),
            None => self
                .insert_new(rt, merged, options, true)
                .map(Written::Created),
        }
    }

    /// Write `new` over the stored `old`: resourceVersion precondition, status
    /// isolation, immutable metadata, generation, finalizer rules, no-op detection.
    fn update_existing(
        &mut self,
        rt: &ResourceType,
        old: &Arc<Value>,
        new: Value,
        scope: Scope,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let name = meta::meta_str(old, "name").to_owned();
        let wanted_rv = meta::meta_str(&new, "resourceVersion");
        if !wanted_rv.is_empty() && wanted_rv != meta::meta_str(old, "resourceVersion") {
            return Err(ApiError::conflict(
                details(rt, &name),
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let mut result = match scope {
            Scope::Status => {
                let mut result = (**old).clone();
                match new.get("status") {
                    Some(status) => result["status"] = status.clone(),
                    None => {
                        if let Value::Object(map) = &mut result {
                            map.remove("status");
                        }
                    }
                }
                if let Some(managed) = new.pointer("/metadata/managedFields") {
                    meta::metadata_mut(&mut result).insert("managedFields".into(), managed.clone());
                }
                result
            }
            Scope::Object { .. } => {
                let mut result = new;
                let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
                let meta = meta::metadata_mut(&mut result);
                for kept in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ] {
                    match old_meta.get(kept) {
                        Some(value) => meta.insert(kept.into(), value.clone()),
                        None => meta.remove(kept),
                    };
                }
                if !meta.contains_key("managedFields") {
                    if let Some(managed) = old_meta.get("managedFields") {
                        meta.insert("managedFields".into(), managed.clone());
                    }
                }
                if rt.status_subresource {
                    if let Value::Object(map) = &mut result {
                        match old.get("status") {
                            Some(status) => map.insert("status".into(), status.clone()),
                            None => map.remove("status"),
                        };
                    }
                }
                result
            }
        };
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let before = meta::finalizers(old);
            if meta::finalizers(&result)
                .iter()
                .any(|f| !before.contains(f))
            {
                return Err(ApiError::invalid(
                    details(rt, &name),
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        defaults::apply(self, rt, &mut result, Some(old));
        let mut generation = meta::generation(old);
        if generation_relevant(old, rt.status_subresource)
            != generation_relevant(&result, rt.status_subresource)
        {
            generation += 1;
        }
        meta::metadata_mut(&mut result).insert("generation".into(), json!(generation));

        if without_volatile(&present(rt, old)) == without_volatile(&present(rt, &result)) {
            return Ok(present(rt, old));
        }
        if options.dry_run {
            return Ok(present(rt, &result));
        }
        let finished = result.pointer("/metadata/deletionTimestamp").is_some()
            && meta::finalizers(&result).is_empty();
        let stored = if finished {
            self.remove_object(rt, result)
        } else {
            self.commit_put(&rt.id(), result)
        };
        if is_crd(rt) && !finished {
            self.serve_crd(&stored);
        }
        Ok(present(rt, &stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use crate::store::Store;

    fn cm_type() -> ResourceType {
        ResourceType::namespaced("", "v1", "ConfigMap", "configmaps")
    }

    fn se_type() -> ResourceType {
        ResourceType::namespaced(
            "multicluster.x-k8s.io",
            "v1alpha1",
            "ServiceExport",
            "serviceexports",
        )
        .with_status()
    }

    fn store() -> Store {
        Store::new(SimConfig::default().require_namespaces(false))
    }

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
    }

    #[test]
    fn create_sets_server_metadata_and_rejects_duplicates() {
        let store = store();
        let mut state = store.lock();
        let opts = WriteOptions::default();
        let created = state
            .create(&cm_type(), "ns", cm("a"), &opts)
            .expect("created");
        assert_eq!(created["metadata"]["namespace"], "ns");
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(created["metadata"]["uid"].is_string());
        assert!(created["metadata"]["creationTimestamp"].is_string());
        let err = state
            .create(&cm_type(), "ns", cm("a"), &opts)
            .expect_err("duplicate");
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
    }

    #[test]
    fn create_validates_names_and_identity() {
        let store = store();
        let mut state = store.lock();
        let opts = WriteOptions::default();
        let err = state
            .create(&cm_type(), "ns", cm("Bad_Name"), &opts)
            .expect_err("invalid");
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        let mut wrong = cm("a");
        wrong["kind"] = json!("Secret");
        let err = state
            .create(&cm_type(), "ns", wrong, &opts)
            .expect_err("kind mismatch");
        assert_eq!(err.code, 400);
        let mut other_ns = cm("a");
        other_ns["metadata"]["namespace"] = json!("other");
        assert_eq!(
            state
                .create(&cm_type(), "ns", other_ns, &opts)
                .map_err(|e| e.code),
            Err(400)
        );
    }

    #[test]
    fn generate_name_makes_a_unique_name() {
        let store = store();
        let mut state = store.lock();
        let body = json!({"metadata": {"generateName": "ev-"}});
        let created = state
            .create(&cm_type(), "ns", body, &WriteOptions::default())
            .expect("created");
        let name = created["metadata"]["name"].as_str().expect("name");
        assert!(name.starts_with("ev-") && name.len() == 8, "{name}");
    }

    #[test]
    fn replace_with_stale_resource_version_conflicts() {
        let store = store();
        let mut state = store.lock();
        let opts = WriteOptions::default();
        let created = state
            .create(&cm_type(), "ns", cm("a"), &opts)
            .expect("created");
        let mut update = created.clone();
        update["data"]["a"] = json!("2");
        let updated = state
            .replace(
                &cm_type(),
                "ns",
                "a",
                update.clone(),
                Scope::Object {
                    status_subresource: false,
                },
                &opts,
            )
            .expect("replaced");
        assert_eq!(updated["metadata"]["generation"], 2);
        let err = state
            .replace(
                &cm_type(),
                "ns",
                "a",
                update,
                Scope::Object {
                    status_subresource: false,
                },
                &opts,
            )
            .expect_err("stale");
        assert_eq!((err.code, err.reason), (409, "Conflict"));
    }

    #[test]
    fn status_writes_are_isolated_from_spec_writes() {
        let store = store();
        let mut state = store.lock();
        let opts = WriteOptions::default();
        let body = json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"ok": false}});
        let created = state
            .create(&se_type(), "ns", body, &opts)
            .expect("created");
        assert!(
            created.get("status").is_none(),
            "status is dropped on create"
        );

        let mut status_put = created.clone();
        status_put["spec"] = json!({"x": 99});
        status_put["status"] = json!({"ok": true});
        let after = state
            .replace(&se_type(), "ns", "a", status_put, Scope::Status, &opts)
            .expect("status written");
        assert_eq!(after["spec"]["x"], 1);
        assert_eq!(after["status"]["ok"], true);
        assert_eq!(after["metadata"]["generation"], 1);

        let mut spec_put = after.clone();
        spec_put["status"] = json!({"ok": false});
        spec_put["spec"]["x"] = json!(2);
        let after = state
            .replace(
                &se_type(),
                "ns",
                "a",
                spec_put,
                Scope::Object {
                    status_subresource: true,
                },
                &opts,
            )
            .expect("spec written");
        assert_eq!(after["status"]["ok"], true);
        assert_eq!(after["metadata"]["generation"], 2);
    }

    #[test]
    fn unchanged_update_is_a_no_op() {
        let store = store();
        let mut state = store.lock();
        let opts = WriteOptions::default();
        let created = state
            .create(&cm_type(), "ns", cm("a"), &opts)
            .expect("created");
        let rv = state.rv();
        let patch = json!({"data": {"a": "1"}});
        let same = state
            .patch(
                &cm_type(),
                "ns",
                "a",
                PatchKind::Merge,
                &patch,
                Scope::Object {
                    status_subresource: false,
                },
                &opts,
            )
            .expect("patched");
        assert_eq!(same, Written::Updated(created));
        assert_eq!(state.rv(), rv);
    }

    #[test]
    fn apply_creates_then_updates_and_requires_a_manager() {
        let store = store();
        let mut state = store.lock();
        let scope = Scope::Object {
            status_subresource: false,
        };
        let mut opts = WriteOptions::default();
        let err = state
            .patch(
                &cm_type(),
                "ns",
                "a",
                PatchKind::Apply,
                &cm("a"),
                scope,
                &opts,
            )
            .expect_err("no manager");
        assert_eq!(err.code, 400);
        opts.field_manager = Some("mcwan".into());
        let created = state
            .patch(
                &cm_type(),
                "ns",
                "a",
                PatchKind::Apply,
                &cm("a"),
                scope,
                &opts,
            )
            .expect("created");
        assert!(matches!(created, Written::Created(_)));
        let mut changed = cm("a");
        changed["data"] = json!({"b": "2"});
        let Written::Updated(updated) = state
            .patch(
                &cm_type(),
                "ns",
                "a",
                PatchKind::Apply,
                &changed,
                scope,
                &opts,
            )
            .expect("updated")
        else {
            panic!("expected an update");
        };
        assert_eq!(updated["data"], json!({"b": "2"}));
    }

    #[test]
    fn namespaced_create_needs_the_namespace() {
        let store = Store::new(SimConfig::default());
        let mut state = store.lock();
        let err = state
            .create(&cm_type(), "missing", cm("a"), &WriteOptions::default())
            .expect_err("no namespace");
        assert_eq!(err.code, 404);
        assert_eq!(err.message, "namespaces \"missing\" not found");
    }

    #[test]
    fn exact_list_reads_an_old_version() {
        let store = store();
        let mut state = store.lock();
        let opts = WriteOptions::default();
        state
            .create(&cm_type(), "ns", cm("a"), &opts)
            .expect("created");
        let rv = state.rv();
        state
            .create(&cm_type(), "ns", cm("b"), &opts)
            .expect("created");
        let all = Selectors::default();
        let (items, list_rv) = state
            .list_objects(&cm_type(), Some("ns"), &all, Some(rv), true)
            .expect("listed");
        assert_eq!((items.len(), list_rv), (1, rv));
        let err = state
            .list_objects(&cm_type(), None, &all, Some(rv + 5), false)
            .expect_err("future");
        assert_eq!(err.code, 504);
    }
}
