//! Watching the static catalog directory: file events become wake-ups, coalesced so that an
//! editor's burst of writes causes one reload, and held back while a file is still being
//! written, so that a reload never reads a file half-written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long to wait after a change for more changes before reloading.
pub const SETTLE: Duration = Duration::from_millis(15);

/// The longest a reload waits for a file written to be closed (a writer that keeps its file
/// open must not hold reloads back for ever).
pub const WRITE_WAIT: Duration = Duration::from_secs(1);

/// What the watcher saw.
#[derive(Debug)]
pub enum Change {
    /// A file's data changed: it may still be open for writing.
    Written(PathBuf),
    /// A file open for writing was closed: what it holds is whole.
    Closed(PathBuf),
    /// A file created, renamed or removed (the paths it names), or, as `None`, anything whose
    /// paths are not known (a watch error, an overflow, an event without paths).
    Other(Option<Vec<PathBuf>>),
}

/// What changed in a burst: the paths events named, or `None` when anything may have changed
/// (an event was lost or named no path), which asks for a full reload.
pub type ChangedPaths = Option<BTreeSet<PathBuf>>;

/// The receiving end of a watch: its events, and whether any was lost.
#[derive(Debug)]
pub struct Changes {
    rx: mpsc::Receiver<Change>,
    lost: Arc<AtomicBool>,
}

/// Starts watching `dir` (recursively). Keep the returned watcher alive as long as wake-ups are
/// wanted.
pub fn watch_dir(dir: &Path) -> notify::Result<(RecommendedWatcher, Changes)> {
    let (tx, rx) = mpsc::channel(1024);
    let lost = Arc::new(AtomicBool::new(false));
    let lost_in_handler = lost.clone();
    let handler = move |event: notify::Result<notify::Event>| {
        let changes: Vec<Change> = match event {
            Ok(e) if e.need_rescan() || e.paths.is_empty() => vec![Change::Other(None)],
            Ok(e) => match e.kind {
                EventKind::Modify(ModifyKind::Data(_)) => {
                    e.paths.into_iter().map(Change::Written).collect()
                }
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    e.paths.into_iter().map(Change::Closed).collect()
                }
                EventKind::Access(_) => Vec::new(),
                _ => vec![Change::Other(Some(e.paths))],
            },
            Err(_) => vec![Change::Other(None)],
        };
        for change in changes {
            // A full channel means a reload is pending anyway, but it no longer knows every
            // path that changed: it reloads everything. A lost `Written` at worst lets a
            // reload read a file still being written, and its `Closed` reloads again; a lost
            // `Closed` holds the next reload back by `WRITE_WAIT` at most.
            if tx.try_send(change).is_err() {
                lost_in_handler.store(true, Ordering::SeqCst);
            }
        }
    };
    // Directory symlinks are not loaded (see the catalog loader): do not watch through them.
    let mut watcher = RecommendedWatcher::new(
        handler,
        notify::Config::default().with_follow_symlinks(false),
    )?;
    watcher.watch(dir, RecursiveMode::Recursive)?;
    Ok((watcher, Changes { rx, lost }))
}

/// Waits for the next change, then for the burst to settle and for every file written in it to
/// be closed (at most [`WRITE_WAIT`]); returns the paths the burst changed. `None` when the
/// watcher is gone.
pub async fn next_change(changes: &mut Changes) -> Option<ChangedPaths> {
    let rx = &mut changes.rx;
    let mut burst = Burst::default();
    burst.note(rx.recv().await?);
    let give_up = tokio::time::Instant::now() + WRITE_WAIT;
    loop {
        let wait = if burst.writing.is_empty() {
            SETTLE
        } else {
            give_up.saturating_duration_since(tokio::time::Instant::now())
        };
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(change)) => burst.note(change),
            Ok(None) => return None,
            Err(_) if burst.writing.is_empty() || tokio::time::Instant::now() >= give_up => {
                // Taken after the burst: an event lost before now belongs to it.
                let lost = changes.lost.swap(false, Ordering::SeqCst);
                return Some(if lost { None } else { burst.paths });
            }
            Err(_) => {}
        }
    }
}

/// A burst of changes being collected.
#[derive(Debug)]
struct Burst {
    /// Files written and not closed yet.
    writing: BTreeSet<PathBuf>,
    /// Every path named so far; `None` once an event named none.
    paths: ChangedPaths,
}

impl Default for Burst {
    fn default() -> Self {
        Self {
            writing: BTreeSet::new(),
            paths: Some(BTreeSet::new()),
        }
    }
}

impl Burst {
    fn note(&mut self, change: Change) {
        let named = match change {
            Change::Written(path) => {
                self.writing.insert(path.clone());
                vec![path]
            }
            Change::Closed(path) => {
                self.writing.remove(&path);
                vec![path]
            }
            Change::Other(Some(paths)) => paths,
            Change::Other(None) => {
                self.paths = None;
                return;
            }
        };
        if let Some(paths) = &mut self.paths {
            paths.extend(named);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_collects_the_paths_its_events_name() {
        let mut burst = Burst::default();
        burst.note(Change::Written("/c/a.yaml".into()));
        burst.note(Change::Other(Some(vec!["/c/b.yaml".into(), "/c/d".into()])));
        assert_eq!(burst.writing.len(), 1);
        burst.note(Change::Closed("/c/a.yaml".into()));
        assert!(burst.writing.is_empty());
        let paths: Vec<PathBuf> = burst.paths.unwrap().into_iter().collect();
        assert_eq!(paths, ["/c/a.yaml", "/c/b.yaml", "/c/d"].map(PathBuf::from));
    }

    #[test]
    fn an_event_without_paths_asks_for_a_full_reload() {
        let mut burst = Burst::default();
        burst.note(Change::Written("/c/a.yaml".into()));
        burst.note(Change::Other(None));
        burst.note(Change::Closed("/c/a.yaml".into()));
        assert!(burst.paths.is_none());
        assert!(burst.writing.is_empty());
    }
}
