//! Reading one cluster's manifests (multi-document YAML, `kind: List` too) into its
//! [`ClusterObjects`]. A document that cannot be used is reported and skipped; the others load.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::convert::{self, FieldError};
use crate::crd::{self, MCS_DRAFT_GROUP, MCS_GROUP};
use crate::model::{ClusterObjects, ExportGroup, ServiceKey};
use crate::problem::{ObjectRef, Problem};

/// Loads every document of `text` (from the file `source`) into `objects`.
pub fn load(
    cluster: &str,
    source: &str,
    text: &str,
    objects: &mut ClusterObjects,
    problems: &mut Vec<Problem>,
) {
    // Documents are numbered as the reader yields them; empty documents yield nothing.
    let mut bytes = text.as_bytes();
    for (i, doc) in serde_saphyr::read::<_, Value>(&mut bytes).enumerate() {
        let file_ref =
            || ObjectRef::cluster_scoped("file", &format!("{source} (document {})", i + 1));
        match doc {
            Ok(Value::Null) => {}
            Ok(json) => load_object(cluster, json, &file_ref, objects, problems),
            // After a syntax error the reader ends: it cannot find the next document. After a
            // document that is YAML but not a JSON-compatible value it goes on with the next.
            Err(e) => problems.push(Problem::error(
                Some(cluster),
                file_ref(),
                None,
                format!("not a usable YAML document: {e}"),
            )),
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn load_object(
    cluster: &str,
    mut json: Value,
    file_ref: &dyn Fn() -> ObjectRef,
    objects: &mut ClusterObjects,
    problems: &mut Vec<Problem>,
) {
    let api_version = str_at(&json, &["apiVersion"])
        .unwrap_or_default()
        .to_owned();
    let kind = str_at(&json, &["kind"]).unwrap_or_default().to_owned();
    let (group, version) = api_version
        .rsplit_once('/')
        .unwrap_or(("", api_version.as_str()));
    let name = str_at(&json, &["metadata", "name"]).map(str::to_owned);
    let namespace = str_at(&json, &["metadata", "namespace"])
        .unwrap_or("default")
        .to_owned();
    let object = |namespaced: bool| match (&name, namespaced) {
        (Some(n), true) => {
            ObjectRef::namespaced(&kind, &ServiceKey::new(namespace.clone(), n.clone()))
        }
        (Some(n), false) => ObjectRef::cluster_scoped(&kind, n),
        (None, _) => ObjectRef::cluster_scoped(&kind, &file_ref().name),
    };
    let err = |namespaced: bool, e: FieldError| {
        Problem::error(Some(cluster), object(namespaced), Some(&e.field), e.message)
    };

    match (group, version, kind.as_str()) {
        ("", "v1", "List") => {
            if let Some(Value::Array(items)) = json.get_mut("items").map(Value::take) {
                for item in items {
                    load_object(cluster, item, file_ref, objects, problems);
                }
            }
        }
        ("", "v1", "Namespace") => match name {
            Some(n) => {
                objects.namespaces.insert(n);
            }
            None => problems.push(err(false, FieldError::new("metadata.name", "missing"))),
        },
        ("", "v1", "Service") => {
            match parse::<k8s_openapi::api::core::v1::Service>(json)
                .and_then(|s| convert::service(&s))
            {
                Ok(svc) => insert_unique(
                    cluster,
                    &kind,
                    &mut objects.services,
                    svc.key.clone(),
                    Arc::new(svc),
                    problems,
                ),
                Err(e) => problems.push(err(true, e)),
            }
        }
        ("discovery.k8s.io", "v1", "EndpointSlice") => {
            match parse::<k8s_openapi::api::discovery::v1::EndpointSlice>(json)
                .and_then(|s| convert::endpoint_slice(&s))
            {
                Ok(slice) => {
                    let slices = objects
                        .endpoint_slices
                        .entry(slice.service.clone())
                        .or_default();
                    if slices.iter().any(|s| s.name == slice.name) {
                        problems.push(Problem::error(
                            Some(cluster),
                            object(true),
                            None,
                            "defined twice; the first definition is used".into(),
                        ));
                    } else {
                        slices.push(Arc::new(slice));
                    }
                }
                Err(e) => problems.push(err(true, e)),
            }
        }
        (MCS_GROUP | MCS_DRAFT_GROUP, "v1alpha1", "ServiceExport") => {
            let export_group = if group == MCS_GROUP {
                ExportGroup::Mcs
            } else {
                ExportGroup::Draft
            };
            if export_group == ExportGroup::Draft {
                problems.push(Problem::warning(
                    Some(cluster),
                    object(true),
                    Some("apiVersion"),
                    format!("{api_version} is the draft MCS group; read as {MCS_GROUP}/v1alpha1, please update the manifest"),
                ));
            }
            match parse::<crd::ServiceExport>(json)
                .and_then(|e| convert::service_export(&e, export_group))
            {
                Ok((export, warnings)) => {
                    for w in warnings {
                        problems.push(Problem::warning(
                            Some(cluster),
                            object(true),
                            Some(&w.field),
                            w.message,
                        ));
                    }
                    insert_unique(
                        cluster,
                        &kind,
                        &mut objects.exports,
                        export.key.clone(),
                        Arc::new(export),
                        problems,
                    )
                }
                Err(e) => problems.push(err(true, e)),
            }
        }
        ("mcw.l7mp.io", "v1alpha1", "WANPolicy") => {
            let (json, name) = hoist_misplaced_name(cluster, json, name, problems);
            let object = ObjectRef::cluster_scoped(&kind, name.as_deref().unwrap_or("(unnamed)"));
            match parse::<crd::WanPolicy>(json).and_then(|p| convert::wan_policy(&p)) {
                Ok(policy) => insert_unique(
                    cluster,
                    &kind,
                    &mut objects.wan_policies,
                    policy.name.clone(),
                    policy,
                    problems,
                ),
                Err(e) => problems.push(Problem::error(
                    Some(cluster),
                    object,
                    Some(&e.field),
                    e.message,
                )),
            }
        }
        ("mcw.l7mp.io", "v1alpha1", "WANImport") => {
            match parse::<crd::WanImport>(json).and_then(|i| convert::wan_import(&i)) {
                Ok(import) => insert_unique(
                    cluster,
                    &kind,
                    &mut objects.wan_imports,
                    import.key.clone(),
                    import,
                    problems,
                ),
                Err(e) => problems.push(err(true, e)),
            }
        }
        ("mcw.l7mp.io", "v1alpha1", "WANRoute") => {
            match parse::<crd::WanRoute>(json).and_then(|r| convert::wan_route(&r)) {
                Ok(route) => insert_unique(
                    cluster,
                    &kind,
                    &mut objects.wan_routes,
                    route.key.clone(),
                    route,
                    problems,
                ),
                Err(e) => problems.push(err(true, e)),
            }
        }
        (_, _, "") => problems.push(Problem::error(
            Some(cluster),
            file_ref(),
            Some("kind"),
            "missing".into(),
        )),
        _ => problems.push(Problem::warning(
            Some(cluster),
            object(true),
            Some("kind"),
            format!("{api_version} {kind} is not read by mcwan; ignored"),
        )),
    }
}

/// The seeds' first WANPolicy has `name:` at the top level under an empty `metadata:`; take it
/// as `metadata.name`, with a warning, so that manifest loads as written.
fn hoist_misplaced_name(
    cluster: &str,
    mut json: Value,
    name: Option<String>,
    problems: &mut Vec<Problem>,
) -> (Value, Option<String>) {
    if name.is_some() {
        return (json, name);
    }
    let Some(Value::String(top)) = json.as_object_mut().and_then(|o| o.remove("name")) else {
        return (json, name);
    };
    problems.push(Problem::warning(
        Some(cluster),
        ObjectRef::cluster_scoped("WANPolicy", &top),
        Some("metadata.name"),
        "found `name` at the top level instead of under `metadata`; read as metadata.name".into(),
    ));
    if let Some(obj) = json.as_object_mut() {
        let meta = obj.entry("metadata").or_insert(Value::Null);
        if !meta.is_object() {
            *meta = Value::Object(Default::default());
        }
        if let Some(m) = meta.as_object_mut() {
            m.insert("name".into(), Value::String(top.clone()));
        }
    }
    (json, Some(top))
}

/// Deserializes `json`, naming the field at fault: the path serde stopped at, plus the field
/// for a "missing field" error (whose path is the parent's).
fn parse<T: DeserializeOwned>(json: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        let field = match (path.as_str(), missing) {
            (".", Some(m)) => m,
            (".", None) => "(object)".to_owned(),
            (p, Some(m)) => format!("{p}.{m}"),
            (p, None) => p.to_owned(),
        };
        FieldError::new(field, message)
    })
}

fn insert_unique<K: Ord + Clone + std::fmt::Display, V>(
    cluster: &str,
    kind: &str,
    map: &mut std::collections::BTreeMap<K, V>,
    key: K,
    value: V,
    problems: &mut Vec<Problem>,
) {
    match map.entry(key) {
        std::collections::btree_map::Entry::Occupied(e) => problems.push(Problem::error(
            Some(cluster),
            ObjectRef::cluster_scoped(kind, &e.key().to_string()),
            None,
            "defined twice; the first definition is used".into(),
        )),
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(value);
        }
    }
}
