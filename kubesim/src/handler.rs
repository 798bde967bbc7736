//! HTTP request handling: routes a request to discovery or to an API verb on the
//! store, and renders the answer (objects, lists, watch streams or `Status` errors).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::discovery;
use crate::error::ApiError;
use crate::operation::{Preconditions, WriteOptions, Written};
use crate::patch::fields::Scope;
use crate::patch::PatchKind;
use crate::query::Query;
use crate::resource::ResourceType;
use crate::route::{self, ResourcePath, Route};
use crate::selector::Selectors;
use crate::store::Store;
use crate::table;
use crate::watch::{self, WatchRequest};

/// Response body: a whole JSON document or a watch stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What every request handler shares.
#[derive(Debug)]
pub struct App {
    /// The object store.
    pub store: Arc<Store>,
}

/// A parsed request: what the handlers below need from it.
struct Call {
    method: Method,
    path: String,
    query: Query,
    content_type: String,
    host: String,
    wants_table: bool,
    body: Bytes,
}

/// Handle one request.
pub async fn handle(app: Arc<App>, request: Request<Incoming>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let path = parts.uri.path().to_owned();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return error(&ApiError::bad_request(format!("reading body: {err}"))),
    };
    let query = match Query::parse(parts.uri.query()) {
        Ok(query) => query,
        Err(err) => return error(&err),
    };
    let call = Call {
        method: parts.method.clone(),
        path,
        query,
        content_type: header(CONTENT_TYPE),
        host: header(hyper::header::HOST),
        wants_table: header(hyper::header::ACCEPT).contains("as=Table"),
        body,
    };
    let response = match dispatch(&app, &call) {
        Ok(response) => response,
        Err(err) => error(&err),
    };
    tracing::debug!(
        method = %call.method,
        uri = %parts.uri,
        status = response.status().as_u16(),
        "kubesim request"
    );
    response
}

fn dispatch(app: &Arc<App>, call: &Call) -> Result<Response<Body>, ApiError> {
    let route = route::parse(&call.path).ok_or_else(|| ApiError::no_route(&call.path))?;
    if !matches!(route, Route::Resource(_)) && call.method != Method::GET {
        return Err(ApiError::method_not_allowed(
            call.method.as_str(),
            &call.path,
        ));
    }
    let state = app.store.lock();
    let not_found = || ApiError::no_route(&call.path);
    let document = match route {
        Route::Version => discovery::version(),
        Route::Health => return Ok(text(StatusCode::OK, "ok")),
        Route::CoreVersions => discovery::core_versions(&call.host),
        Route::Groups => discovery::groups(&state.registry),
        Route::Group(group) => discovery::group(&state.registry, &group).ok_or_else(not_found)?,
        Route::GroupVersion { group, version } => {
            discovery::resources(&state.registry, &group, &version).ok_or_else(not_found)?
        }
        Route::OpenApiIndex => discovery::openapi_index(&state.registry),
        Route::OpenApiGroupVersion { group, version } => {
            discovery::openapi_group_version(&state.registry, &group, &version)
                .ok_or_else(not_found)?
        }
        Route::Resource(path) => {
            let rt = state
                .registry
                .get(&path.group, &path.version, &path.plural)
                .cloned()
                .ok_or_else(not_found)?;
            drop(state);
            return resource(app, call, &rt, &path);
        }
    };
    Ok(json_response(StatusCode::OK, &document))
}

/// Parse a request body as JSON, or YAML for YAML media types.
fn parse_body(call: &Call) -> Result<Value, ApiError> {
    let yaml = call.content_type.contains("yaml");
    let parsed = if yaml {
        serde_saphyr::from_slice::<Value>(&call.body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(&call.body).map_err(|e| e.to_string())
    };
    parsed.map_err(|err| ApiError::bad_request(format!("invalid request body: {err}")))
}

fn resource(
    app: &Arc<App>,
    call: &Call,
    rt: &ResourceType,
    path: &ResourcePath,
) -> Result<Response<Body>, ApiError> {
    let not_found = || ApiError::no_route(&call.path);
    if !rt.namespaced && path.namespace.is_some() {
        return Err(not_found());
    }
    let scope = match path.subresource.as_deref() {
        None => Scope::Object {
            status_subresource: rt.status_subresource,
        },
        Some("status") if rt.status_subresource => Scope::Status,
        Some(_) => return Err(not_found()),
    };
    let namespace = path.namespace.as_deref().unwrap_or("");
    let query = &call.query;
    let options = WriteOptions {
        dry_run: query.dry_run,
        field_manager: query.field_manager.clone(),
        force: query.force,
    };
    let selectors = || {
        Selectors::parse(
            query.label_selector.as_deref(),
            query.field_selector.as_deref(),
        )
    };
    let Some(name) = path.name.as_deref() else {
        let collection_namespace = path.namespace.as_deref();
        return match call.method {
            Method::GET if query.watch => Ok(watch_response(app, call, rt, path, selectors()?)),
            Method::GET => {
                let rv = query.resource_version_number()?;
                let exact = query.resource_version_match.as_deref() == Some("Exact");
                let (items, list_rv) = app.store.lock().list_objects(
                    rt,
                    collection_namespace,
                    &selectors()?,
                    rv,
                    exact,
                )?;
                let document = if call.wants_table {
                    table::render(rt, &items, list_rv)
                } else {
                    list_document(rt, items, list_rv)
                };
                Ok(json_response(StatusCode::OK, &document))
            }
            Method::POST if rt.namespaced && collection_namespace.is_none() => Err(
                ApiError::method_not_allowed(call.method.as_str(), &call.path),
            ),
            Method::POST => {
                let body = parse_body(call)?;
                let created = app.store.lock().create(rt, namespace, body, &options)?;
                Ok(json_response(StatusCode::CREATED, &created))
            }
            Method::DELETE => {
                let deleted = app.store.lock().delete_collection(
                    rt,
                    collection_namespace,
                    &selectors()?,
                    &options,
                )?;
                let rv = app.store.lock().rv();
                Ok(json_response(
                    StatusCode::OK,
                    &list_document(rt, deleted, rv),
                ))
            }
            _ => Err(ApiError::method_not_allowed(
                call.method.as_str(),
                &call.path,
            )),
        };
    };
    if rt.namespaced && path.namespace.is_none() {
        return Err(not_found());
    }
    match call.method {
        Method::GET if query.watch && scope != Scope::Status => {
            // Watching one object is watching its collection pinned to its name.
            let pinned = match query.field_selector.as_deref() {
                Some(fields) if !fields.is_empty() => format!("{fields},metadata.name={name}"),
                _ => format!("metadata.name={name}"),
            };
            let selectors = Selectors::parse(query.label_selector.as_deref(), Some(&pinned))?;
            Ok(watch_response(app, call, rt, path, selectors))
        }
        Method::GET => {
            let object = app.store.lock().get_object(rt, namespace, name)?;
            let document = if call.wants_table {
                table::render(rt, std::slice::from_ref(&object), app.store.lock().rv())
            } else {
                object
            };
            Ok(json_response(StatusCode::OK, &document))
        }
        Method::PUT => {
            let body = parse_body(call)?;
            let object = app
                .store
                .lock()
                .replace(rt, namespace, name, body, scope, &options)?;
            Ok(json_response(StatusCode::OK, &object))
        }
        Method::PATCH => {
            let kind = PatchKind::from_content_type(&call.content_type)?;
            let patch = parse_body(call)?;
            let written = app
                .store
                .lock()
                .patch(rt, namespace, name, kind, &patch, scope, &options)?;
            Ok(match written {
                Written::Created(object) => json_response(StatusCode::CREATED, &object),
                Written::Updated(object) => json_response(StatusCode::OK, &object),
            })
        }
        Method::DELETE => {
            let (preconditions, dry_run) = delete_options(call)?;
            let options = WriteOptions {
                dry_run: options.dry_run || dry_run,
                ..options
            };
            let object = app
                .store
                .lock()
                .delete(rt, namespace, name, &preconditions, &options)?;
            Ok(json_response(StatusCode::OK, &object))
        }
        _ => Err(ApiError::method_not_allowed(
            call.method.as_str(),
            &call.path,
        )),
    }
}

/// `DeleteOptions` from a DELETE body, if any: preconditions and dry run.
fn delete_options(call: &Call) -> Result<(Preconditions, bool), ApiError> {
    if call.body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Preconditions::default(), false));
    }
    let body = parse_body(call)?;
    let text = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let dry_run = body["dryRun"]
        .as_array()
        .is_some_and(|modes| modes.iter().any(|m| m == "All"));
    Ok((
        Preconditions {
            uid: text("/preconditions/uid"),
            resource_version: text("/preconditions/resourceVersion"),
        },
        dry_run,
    ))
}

fn list_document(rt: &ResourceType, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "kind": rt.list_kind(),
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

fn watch_response(
    app: &Arc<App>,
    call: &Call,
    rt: &ResourceType,
    path: &ResourcePath,
    selectors: Selectors,
) -> Response<Body> {
    let resource_version = match call.query.resource_version_number() {
        Ok(rv) => rv,
        Err(err) => return error(&err),
    };
    let bookmark_interval = app.store.lock().config.bookmark_interval;
    let request = WatchRequest {
        rt: rt.clone(),
        namespace: path.namespace.clone(),
        selectors,
        resource_version,
        send_initial_events: call.query.send_initial_events,
        bookmarks: call.query.allow_bookmarks,
        bookmark_interval,
        timeout: call.query.timeout,
    };
    let frames = watch::stream(app.store.clone(), request)
        .map(|line| Ok::<_, Infallible>(Frame::data(line)));
    let mut response = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn json_response(status: StatusCode, document: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(document).unwrap_or_default();
    let mut response = Response::new(BodyExt::boxed_unsync(Full::new(Bytes::from(bytes))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(BodyExt::boxed_unsync(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn error(err: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &err.to_status())
}
