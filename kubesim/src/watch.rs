//! Watch streams: newline-delimited JSON `WatchEvent`s over a chunked HTTP response.
//!
//! A watch starts from the state or the history, under the store's lock and together
//! with its subscription to live changes, so no change is missed or sent twice:
//! - no `resourceVersion` (or `"0"`), or `sendInitialEvents=true`: a synthetic `ADDED`
//!   for every current object, then live changes (with `sendInitialEvents`, a
//!   `BOOKMARK` annotated `k8s.io/initial-events-end` marks the end of the initial
//!   events);
//! - `resourceVersion=N`: the kept changes after N, then live ones; if N is older than
//!   the history, a single `ERROR` event carrying a 410 `Expired` Status, as
//!   kube-apiserver answers (HTTP 200, the error inside the stream).
//!
//! Bookmarks (`allowWatchBookmarks=true`) carry a version no newer than what the watch
//! has seen: the current version when no change is pending for the watch, else the
//! version of the last change it received.

use std::collections::VecDeque;
use std::future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use serde_json::{json, Value};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::resource::ResourceType;
use crate::selector::Selectors;
use crate::store::{event_type, present, Change, Store};

/// What a watch request asks for.
#[derive(Clone, Debug)]
pub struct WatchRequest {
    /// The resource watched, at the version requested.
    pub rt: ResourceType,
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub selectors: Selectors,
    /// Start after this version; `None` starts from the current state.
    pub resource_version: Option<u64>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// How often to send bookmarks.
    pub bookmark_interval: Duration,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
}

/// One encoded watch event line.
fn frame(event_type: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// A running watch.
struct Watch {
    store: Arc<Store>,
    request: WatchRequest,
    pending: VecDeque<Bytes>,
    live: Option<(broadcast::Receiver<Arc<Change>>, CancellationToken)>,
    last_rv: u64,
    deadline: Option<Instant>,
    ticker: Interval,
}

impl Watch {
    fn start(store: Arc<Store>, request: WatchRequest) -> Self {
        let mut pending = VecDeque::new();
        let id = request.rt.id();
        let namespace = request
            .namespace
            .as_deref()
            .filter(|_| request.rt.namespaced);
        let state = store.lock();
        let start_rv = state.rv();
        let mut live = None;
        let initial = match request.resource_version {
            Some(rv) if !request.send_initial_events => state.changes_after(rv).map(Some),
            _ => Ok(None),
        };
        match initial {
            Err(gone) => pending.push_back(frame("ERROR", &gone.to_status())),
            Ok(Some(changes)) => {
                for change in &changes {
                    if let Some(kind) = event_type(change, &id, namespace, &request.selectors) {
                        pending.push_back(frame(kind, &present(&request.rt, &change.object)));
                    }
                }
                live = Some(state.subscribe());
            }
            Ok(None) => {
                for object in state
                    .objects(&id, namespace)
                    .filter(|o| request.selectors.matches(o))
                {
                    pending.push_back(frame("ADDED", &present(&request.rt, object)));
                }
                if request.send_initial_events {
                    pending.push_back(bookmark(&request.rt, start_rv, true));
                }
                live = Some(state.subscribe());
            }
        }
        drop(state);
        let period = request.bookmark_interval.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            deadline: request.timeout.map(|t| Instant::now() + t),
            store,
            request,
            pending,
            live,
            last_rv: start_rv,
            ticker,
        }
    }

    async fn next(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.pending.pop_front() {
            return Some(frame);
        }
        let id = self.request.rt.id();
        loop {
            let (rx, epoch) = self.live.as_mut()?;
            let deadline = self.deadline;
            let expired = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => future::pending().await,
                }
            };
            tokio::select! {
                () = epoch.cancelled() => return None,
                () = expired => return None,
                _ = self.ticker.tick(), if self.request.bookmarks => {
                    let rv = {
                        let state = self.store.lock();
                        if rx.is_empty() { state.rv() } else { self.last_rv }
                    };
                    self.last_rv = self.last_rv.max(rv);
                    return Some(bookmark(&self.request.rt, self.last_rv, false));
                }
                received = rx.recv() => match received {
                    Ok(change) => {
                        self.last_rv = change.rv;
                        let namespace = self.request.namespace.as_deref()
                            .filter(|_| self.request.rt.namespaced);
                        if let Some(kind) = event_type(&change, &id, namespace, &self.request.selectors) {
                            return Some(frame(kind, &present(&self.request.rt, &change.object)));
                        }
                    }
                    // Too slow (or the store is gone): end the watch; the client
                    // re-watches from its last version, as after any closed watch.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                }
            }
        }
    }
}

/// A `BOOKMARK` event for `rt` at version `rv`.
fn bookmark(rt: &ResourceType, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    frame(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata}),
    )
}

/// The event lines of a watch, ending on timeout, on [`Store`] watch closure, or when
/// the client goes away (the stream is then dropped with its connection).
pub fn stream(store: Arc<Store>, request: WatchRequest) -> impl Stream<Item = Bytes> + Send {
    let watch = Watch::start(store, request);
    futures::stream::unfold(watch, |mut watch| async move {
        watch.next().await.map(|frame| (frame, watch))
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::config::SimConfig;
    use crate::operation::WriteOptions;

    fn cm_type() -> ResourceType {
        ResourceType::namespaced("", "v1", "ConfigMap", "configmaps")
    }

    fn request(rv: Option<u64>) -> WatchRequest {
        WatchRequest {
            rt: cm_type(),
            namespace: Some("default".into()),
            selectors: Selectors::default(),
            resource_version: rv,
            send_initial_events: false,
            bookmarks: false,
            bookmark_interval: Duration::from_millis(50),
            timeout: Some(Duration::from_secs(5)),
        }
    }

    fn create(store: &Store, name: &str) {
        let body = json!({"metadata": {"name": name}});
        store
            .lock()
            .create(&cm_type(), "default", body, &WriteOptions::default())
            .expect("created");
    }

    async fn next_event(stream: &mut (impl Stream<Item = Bytes> + Unpin)) -> Value {
        let line = stream.next().await.expect("an event");
        serde_json::from_slice(&line).expect("json line")
    }

    #[tokio::test]
    async fn watch_without_version_lists_then_follows() {
        let store = Arc::new(Store::new(SimConfig::default()));
        create(&store, "a");
        let mut events = Box::pin(stream(store.clone(), request(None)));
        let first = next_event(&mut events).await;
        assert_eq!(first["type"], "ADDED");
        assert_eq!(first["object"]["metadata"]["name"], "a");
        create(&store, "b");
        let second = next_event(&mut events).await;
        assert_eq!(second["object"]["metadata"]["name"], "b");
    }

    #[tokio::test]
    async fn watch_from_version_replays_only_later_changes() {
        let store = Arc::new(Store::new(SimConfig::default()));
        create(&store, "a");
        let rv = store.lock().rv();
        create(&store, "b");
        let mut events = Box::pin(stream(store.clone(), request(Some(rv))));
        let event = next_event(&mut events).await;
        assert_eq!(event["object"]["metadata"]["name"], "b");
    }

    #[tokio::test]
    async fn watch_from_compacted_version_is_gone() {
        let store = Arc::new(Store::new(SimConfig::default()));
        create(&store, "a");
        let rv = store.lock().rv();
        create(&store, "b");
        store.lock().compact();
        let mut events = Box::pin(stream(store.clone(), request(Some(rv))));
        let event = next_event(&mut events).await;
        assert_eq!(event["type"], "ERROR");
        assert_eq!(event["object"]["code"], 410);
        assert_eq!(event["object"]["reason"], "Expired");
        assert!(events.next().await.is_none());
    }

    #[tokio::test]
    async fn bookmarks_carry_the_current_version() {
        let store = Arc::new(Store::new(SimConfig::default()));
        create(&store, "a");
        let rv = store.lock().rv();
        let mut req = request(Some(rv));
        req.bookmarks = true;
        let mut events = Box::pin(stream(store.clone(), req));
        let event = next_event(&mut events).await;
        assert_eq!(event["type"], "BOOKMARK");
        assert_eq!(
            event["object"]["metadata"]["resourceVersion"],
            rv.to_string()
        );
        assert_eq!(event["object"]["kind"], "ConfigMap");
    }

    #[tokio::test]
    async fn initial_events_end_with_an_annotated_bookmark() {
        let store = Arc::new(Store::new(SimConfig::default()));
        create(&store, "a");
        let mut req = request(None);
        req.send_initial_events = true;
        let mut events = Box::pin(stream(store.clone(), req));
        assert_eq!(next_event(&mut events).await["type"], "ADDED");
        let end = next_event(&mut events).await;
        assert_eq!(end["type"], "BOOKMARK");
        assert_eq!(
            end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
    }

    #[tokio::test]
    async fn closing_watches_ends_streams() {
        let store = Arc::new(Store::new(SimConfig::default()));
        let mut events = Box::pin(stream(store.clone(), request(None)));
        store.lock().close_watches();
        assert!(events.next().await.is_none());
    }
}
