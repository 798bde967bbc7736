//! The one task that writes to this cluster's API server. It receives the whole set of desired
//! writes after every reconcile and applies the difference: a server-side apply (field manager
//! `mcwan`, forced) for each object whose content changed since it last applied it (a hash per
//! object), a delete for each object it owns that is no longer desired. On start, when the API
//! server answers again after failing (a watch reconnected, or a call got no answer) and every
//! few minutes it lists the objects labelled as managed by mcwan, deletes the ones not desired
//! and re-applies the desired ones that are missing. A failing object is
//! logged with its name and retried with backoff; the others go on.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::Client;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::object::{Kind, ObjectId, Part, Write, Writes};
use super::{FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_SLICE_MANAGED_BY, MANAGED_BY};

/// How long one API call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How many API calls are in flight at once.
pub const CONCURRENCY: usize = 16;
/// How many writes a round makes before it looks for newer desired writes (and starts again
/// from those): a change waits for at most this many writes of an earlier one.
pub const CHUNK: usize = 8 * CONCURRENCY;
/// First and longest delay before retrying a failed object.
pub const RETRY_MIN: Duration = Duration::from_millis(250);
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// How often the writer lists what it manages even when nothing failed.
pub const RESYNC_EVERY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{id}: {source}")]
    Api {
        id: ObjectId,
        #[source]
        source: kube::Error,
    },
    #[error("{id}: no answer within {CALL_TIMEOUT:?}")]
    Timeout { id: ObjectId },
    #[error("cannot list the {kind} objects mcwan manages: {source}")]
    List {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
}

impl WriteError {
    /// Whether the API server did not answer (as opposed to refusing the request), so that
    /// what it holds may have changed unseen.
    fn is_transport(&self) -> bool {
        match self {
            Self::Api { source, .. } | Self::List { source, .. } => {
                !matches!(source, kube::Error::Api(_))
            }
            Self::Timeout { .. } => true,
        }
    }

    fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { source: kube::Error::Api(s), .. } if s.code == 404)
    }
}

/// What one round does, given the desired writes and what was applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Objects (and statuses) to apply, objects first.
    pub apply: Vec<ObjectId>,
    /// Owned objects no longer desired.
    pub delete: Vec<ObjectId>,
    /// Parts no longer desired that go away with their object (nothing to call).
    pub forget: Vec<ObjectId>,
}

/// The difference between `desired` and `applied`, leaving out objects waiting to be retried.
/// Objects come before statuses; within each, the most recently changed writes first (by the
/// round that `changed` says each last changed in), so that a change made while a long round
/// runs (a clusterset's first thousands of writes) does not queue behind it.
pub fn diff(
    desired: &Writes,
    applied: &HashMap<ObjectId, u64>,
    changed: &HashMap<ObjectId, u64>,
    waiting: impl Fn(&ObjectId) -> bool,
) -> Diff {
    let mut out = Diff::default();
    for w in desired.values() {
        if applied.get(&w.id) != Some(&w.hash) && !waiting(&w.id) {
            out.apply.push(w.id.clone());
        }
    }
    for id in applied.keys().filter(|id| !desired.contains_key(*id)) {
        if !id.deletable() {
            out.forget.push(id.clone());
        } else if !waiting(id) {
            out.delete.push(id.clone());
        }
    }
    let mut ordered: Vec<(Part, std::cmp::Reverse<u64>, ObjectId)> = std::mem::take(&mut out.apply)
        .into_iter()
        .map(|id| {
            let round = changed.get(&id).copied().unwrap_or(0);
            (id.part, std::cmp::Reverse(round), id)
        })
        .collect();
    ordered.sort();
    out.apply = ordered.into_iter().map(|(_, _, id)| id).collect();
    out.delete.sort();
    out.forget.sort();
    out
}

/// Notes in `changed` the writes of `desired` that differ from `previous`'s (all of them when
/// there is none) as changed in `round`, and forgets the writes no longer desired.
fn mark_changed(
    changed: &mut HashMap<ObjectId, u64>,
    desired: &Writes,
    previous: Option<&Writes>,
    round: u64,
) {
    let mut differ = std::collections::BTreeSet::new();
    crate::desired::differing(previous.unwrap_or(&Writes::new()), desired, &mut differ);
    for id in differ.into_iter().filter(|id| desired.contains_key(id)) {
        changed.insert(id, round);
    }
    changed.retain(|id, _| desired.contains_key(id));
}

#[derive(Clone, Copy, Debug)]
struct Retry {
    delay: Duration,
    at: Instant,
}

/// The writer's state: what it applied (by hash) and what waits for a retry.
pub struct Writer {
    client: Client,
    applied: HashMap<ObjectId, u64>,
    retry: HashMap<ObjectId, Retry>,
    /// What the last round was given, its number, and the round in which each write not yet
    /// applied last changed.
    previous: Option<Arc<Writes>>,
    rounds: u64,
    changed: HashMap<ObjectId, u64>,
    resync_needed: bool,
    next_resync: Instant,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("applied", &self.applied.len())
            .field("retrying", &self.retry.len())
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            applied: HashMap::new(),
            retry: HashMap::new(),
            previous: None,
            rounds: 0,
            changed: HashMap::new(),
            resync_needed: true,
            next_resync: Instant::now() + RESYNC_EVERY,
        }
    }

    /// Applies every desired state it receives until `cancel`. `None` means "nothing known
    /// yet": the writer neither writes nor deletes before the first real desired state.
    /// A notification on `reconnected` (the API server answers again) makes the next round
    /// list what mcwan manages first.
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<Option<Arc<Writes>>>,
        reconnected: Arc<Notify>,
        cancel: CancellationToken,
    ) {
        loop {
            let wake = self
                .retry
                .values()
                .map(|r| r.at)
                .min()
                .map_or(self.next_resync, |t| t.min(self.next_resync));
            tokio::select! {
                _ = cancel.cancelled() => return,
                changed = desired.changed() => if changed.is_err() { return },
                _ = reconnected.notified() => self.resync_needed = true,
                _ = tokio::time::sleep_until(wake) => {}
            }
            let Some(writes) = desired.borrow_and_update().clone() else {
                continue;
            };
            let newer = || cancel.is_cancelled() || desired.has_changed().unwrap_or(true);
            self.round(&writes, newer).await;
        }
    }

    /// Applies the difference between `desired` and what was applied, a chunk at a time; ends
    /// early when `newer` says there is more recent work (newer desired writes, or none).
    async fn round(&mut self, desired: &Arc<Writes>, newer: impl Fn() -> bool) {
        let now = Instant::now();
        if now >= self.next_resync {
            self.resync_needed = true;
        }
        if self.resync_needed {
            self.resync(desired).await;
        }
        let now = Instant::now();
        self.rounds += 1;
        mark_changed(
            &mut self.changed,
            desired,
            self.previous.as_deref(),
            self.rounds,
        );
        self.previous = Some(desired.clone());
        let plan = diff(desired, &self.applied, &self.changed, |id| {
            self.retry.get(id).is_some_and(|r| r.at > now)
        });
        for id in &plan.forget {
            self.applied.remove(id);
            self.retry.remove(id);
        }
        let (objects, statuses): (Vec<&ObjectId>, Vec<&ObjectId>) =
            plan.apply.iter().partition(|id| id.part == Part::Object);
        let mut failed_objects = BTreeSet::new();
        let (mut written, mut deleted) = (0usize, 0usize);
        let interrupted = 'round: {
            for chunk in objects.chunks(CHUNK) {
                let (applied, failed) = self.apply_chunk(desired, chunk).await;
                written += applied;
                failed_objects.extend(failed);
                if newer() {
                    break 'round true;
                }
            }
            let statuses: Vec<&ObjectId> = statuses
                .into_iter()
                .filter(|id| !failed_objects.contains(&id.with_part(Part::Object)))
                .collect();
            for chunk in statuses.chunks(CHUNK) {
                written += self.apply_chunk(desired, chunk).await.0;
                if newer() {
                    break 'round true;
                }
            }
            for chunk in plan.delete.chunks(CHUNK) {
                for (id, result) in self.delete_all(chunk).await {
                    match result {
                        Ok(()) => {
                            deleted += 1;
                            self.succeeded(&id, None);
                            self.applied.remove(&id.with_part(Part::Status));
                        }
                        Err(e) => self.failed(&id, &e),
                    }
                }
                if newer() {
                    break 'round true;
                }
            }
            false
        };
        if written + deleted > 0 {
            info!(
                written,
                deleted,
                retrying = self.retry.len(),
                interrupted,
                "kube writes applied"
            );
        }
    }

    /// Applies `ids` and records each outcome; gives how many were applied, and the ids that
    /// failed.
    async fn apply_chunk(&mut self, desired: &Writes, ids: &[&ObjectId]) -> (usize, Vec<ObjectId>) {
        let mut applied = 0;
        let mut failed = Vec::new();
        for (id, result) in self.apply_all(desired, ids).await {
            match result {
                Ok(hash) => {
                    applied += 1;
                    self.succeeded(&id, Some(hash));
                }
                Err(e) => {
                    self.failed(&id, &e);
                    failed.push(id);
                }
            }
        }
        (applied, failed)
    }

    fn succeeded(&mut self, id: &ObjectId, hash: Option<u64>) {
        self.retry.remove(id);
        self.changed.remove(id);
        match hash {
            Some(h) => self.applied.insert(id.clone(), h),
            None => self.applied.remove(id),
        };
    }

    fn failed(&mut self, id: &ObjectId, error: &WriteError) {
        let delay = self
            .retry
            .get(id)
            .map_or(RETRY_MIN, |r| (r.delay * 2).min(RETRY_MAX));
        self.retry.insert(
            id.clone(),
            Retry {
                delay,
                at: Instant::now() + delay,
            },
        );
        if error.is_transport() {
            self.resync_needed = true;
        }
        if error.is_not_found() && matches!(id.kind, Kind::ServiceExport | Kind::WanRoute) {
            // The ServiceExport or WANRoute went away before its status could be written.
            debug!(object = %id, "not written: {error}");
        } else {
            warn!(object = %id, retry_in = ?delay, "write failed: {error}");
        }
    }

    async fn apply_all(
        &self,
        desired: &Writes,
        ids: &[&ObjectId],
    ) -> Vec<(ObjectId, Result<u64, WriteError>)> {
        let owned: Vec<Arc<Write>> = ids
            .iter()
            .filter_map(|id| desired.get(*id).cloned())
            .collect();
        futures::stream::iter(owned)
            .map(|w| {
                let client = self.client.clone();
                async move {
                    let result = apply(client, &w).await.map(|()| w.hash);
                    (w.id.clone(), result)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    async fn delete_all(&self, ids: &[ObjectId]) -> Vec<(ObjectId, Result<(), WriteError>)> {
        futures::stream::iter(ids.to_vec())
            .map(|id| {
                let client = self.client.clone();
                async move {
                    let result = delete(client, &id).await;
                    (id, result)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    /// Lists what mcwan manages: deletes what is not desired, forgets the hashes of desired
    /// objects that are missing so they are applied again.
    async fn resync(&mut self, desired: &Writes) {
        let existing = match list_managed(&self.client).await {
            Ok(existing) => existing,
            Err(e) => {
                warn!("resync postponed: {e}");
                self.next_resync = Instant::now() + RETRY_MAX.min(RESYNC_EVERY);
                return;
            }
        };
        for id in &existing {
            if !desired.contains_key(id) {
                // Not applied by this run (or left over): make the diff delete it.
                self.applied.entry(id.clone()).or_insert(0);
            }
        }
        let missing: Vec<ObjectId> = desired
            .keys()
            .filter(|id| id.deletable() && !existing.contains(*id))
            .cloned()
            .collect();
        for id in missing {
            self.applied.remove(&id.with_part(Part::Status));
            self.applied.remove(&id);
        }
        self.resync_needed = false;
        self.next_resync = Instant::now() + RESYNC_EVERY;
        debug!(managed = existing.len(), "resynced with the API server");
    }
}

async fn apply(client: Client, write: &Write) -> Result<(), WriteError> {
    let id = &write.id;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &id.namespace, &id.kind.api_resource());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&write.body);
    let call = async {
        match id.part {
            Part::Object => api.patch(&id.name, &params, &patch).await,
            Part::Status => api.patch_status(&id.name, &params, &patch).await,
        }
    };
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => Err(WriteError::Timeout { id: id.clone() }),
        Ok(Err(source)) => Err(WriteError::Api {
            id: id.clone(),
            source,
        }),
        Ok(Ok(_)) => {
            debug!(object = %id, "applied");
            Ok(())
        }
    }
}

async fn delete(client: Client, id: &ObjectId) -> Result<(), WriteError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &id.namespace, &id.kind.api_resource());
    match tokio::time::timeout(CALL_TIMEOUT, api.delete(&id.name, &DeleteParams::default())).await {
        Err(_) => Err(WriteError::Timeout { id: id.clone() }),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(()),
        Ok(Err(source)) => Err(WriteError::Api {
            id: id.clone(),
            source,
        }),
        Ok(Ok(_)) => {
            debug!(object = %id, "deleted");
            Ok(())
        }
    }
}

/// The EndpointSlices and ServiceImports labelled as managed by mcwan.
async fn list_managed(client: &Client) -> Result<BTreeSet<ObjectId>, WriteError> {
    let mut out = BTreeSet::new();
    for (kind, label) in [
        (Kind::EndpointSlice, LABEL_SLICE_MANAGED_BY),
        (Kind::ServiceImport, LABEL_MANAGED_BY),
    ] {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.api_resource());
        let params = ListParams::default().labels(&format!("{label}={MANAGED_BY}"));
        let list = match tokio::time::timeout(CALL_TIMEOUT, api.list(&params)).await {
            Ok(result) => result.map_err(|source| WriteError::List {
                kind: kind.as_str(),
                source,
            })?,
            Err(_) => {
                return Err(WriteError::List {
                    kind: kind.as_str(),
                    source: kube::Error::Service("timed out".into()),
                })
            }
        };
        for obj in list.items {
            if let (Some(ns), Some(name)) = (&obj.metadata.namespace, &obj.metadata.name) {
                out.insert(ObjectId::new(kind, Part::Object, ns, name));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(kind: Kind, part: Part, name: &str, v: i32) -> Write {
        Write::new(ObjectId::new(kind, part, "ns", name), json!({"v": v}))
    }

    fn writes(ws: Vec<Write>) -> Writes {
        ws.into_iter()
            .map(|w| (w.id.clone(), Arc::new(w)))
            .collect()
    }

    #[test]
    fn only_changed_objects_are_applied() {
        let a = write(Kind::EndpointSlice, Part::Object, "a", 1);
        let b = write(Kind::EndpointSlice, Part::Object, "b", 1);
        let applied = HashMap::from([(a.id.clone(), a.hash), (b.id.clone(), 0)]);
        let d = diff(
            &writes(vec![a, b.clone()]),
            &applied,
            &HashMap::new(),
            |_| false,
        );
        assert_eq!(d.apply, vec![b.id]);
        assert!(d.delete.is_empty());
    }

    #[test]
    fn objects_no_longer_desired_are_deleted_and_statuses_forgotten() {
        let si = write(Kind::ServiceImport, Part::Object, "a", 1);
        let st = write(Kind::ServiceImport, Part::Status, "a", 1);
        let ex = write(Kind::ServiceExport, Part::Status, "b", 1);
        let applied = HashMap::from([
            (si.id.clone(), si.hash),
            (st.id.clone(), st.hash),
            (ex.id.clone(), ex.hash),
        ]);
        let d = diff(&Writes::new(), &applied, &HashMap::new(), |_| false);
        assert_eq!(d.delete, vec![si.id]);
        assert_eq!(d.forget.len(), 2);
    }

    #[test]
    fn objects_come_before_statuses_and_waiting_ones_are_left_out() {
        let st = write(Kind::ServiceImport, Part::Status, "a", 1);
        let si = write(Kind::ServiceImport, Part::Object, "a", 1);
        let late = write(Kind::EndpointSlice, Part::Object, "z", 1);
        let waiting = late.id.clone();
        let d = diff(
            &writes(vec![st.clone(), si.clone(), late]),
            &HashMap::new(),
            &HashMap::new(),
            |id| *id == waiting,
        );
        assert_eq!(d.apply, vec![si.id, st.id]);
    }

    #[test]
    fn the_most_recently_changed_writes_come_first() {
        let before = writes(
            ["a", "b", "c"]
                .iter()
                .map(|n| write(Kind::ServiceImport, Part::Object, n, 1))
                .collect(),
        );
        let mut changed = HashMap::new();
        mark_changed(&mut changed, &before, None, 1);
        // None of the three applied yet; now c changes, d is new and b goes.
        let mut now = before.clone();
        now.remove(&write(Kind::ServiceImport, Part::Object, "b", 1).id);
        for w in [
            write(Kind::ServiceImport, Part::Object, "c", 2),
            write(Kind::ServiceImport, Part::Object, "d", 1),
        ] {
            now.insert(w.id.clone(), Arc::new(w));
        }
        mark_changed(&mut changed, &now, Some(&before), 2);
        assert_eq!(changed.len(), 3, "{changed:?}");
        let d = diff(&now, &HashMap::new(), &changed, |_| false);
        let names: Vec<&str> = d.apply.iter().map(|id| id.name.as_str()).collect();
        assert_eq!(names, ["c", "d", "a"]);
    }
}
