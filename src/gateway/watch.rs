//! Watching the static catalog directory: file events become wake-ups, coalesced so that an
//! editor's burst of writes causes one reload, and held back while a file is still being
//! written, so that a reload never reads a file half-written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
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
    /// Anything else (a file created, renamed or removed, a watch error, a lost event).
    Other,
}

/// Starts watching `dir` (recursively). Keep the returned watcher alive as long as wake-ups are
/// wanted.
pub fn watch_dir(dir: &Path) -> notify::Result<(RecommendedWatcher, mpsc::Receiver<Change>)> {
    let (tx, rx) = mpsc::channel(1024);
    let handler = move |event: notify::Result<notify::Event>| {
        let changes: Vec<Change> = match event {
            Ok(e) => match e.kind {
                EventKind::Modify(ModifyKind::Data(_)) => {
                    e.paths.into_iter().map(Change::Written).collect()
                }
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    e.paths.into_iter().map(Change::Closed).collect()
                }
                EventKind::Access(_) => Vec::new(),
                _ => vec![Change::Other],
            },
            Err(_) => vec![Change::Other],
        };
        for change in changes {
            // A full channel means a reload is pending anyway. A lost `Written` at worst lets a
            // reload read a file still being written, and its `Closed` reloads again; a lost
            // `Closed` holds the next reload back by `WRITE_WAIT` at most.
            let _ = tx.try_send(change);
        }
    };
    // Directory symlinks are not loaded (see the catalog loader): do not watch through them.
    let mut watcher = RecommendedWatcher::new(
        handler,
        notify::Config::default().with_follow_symlinks(false),
    )?;
    watcher.watch(dir, RecursiveMode::Recursive)?;
    Ok((watcher, rx))
}

/// Waits for the next change, then for the burst to settle and for every file written in it to
/// be closed (at most [`WRITE_WAIT`]). `None` when the watcher is gone.
pub async fn next_change(rx: &mut mpsc::Receiver<Change>) -> Option<()> {
    let mut writing = BTreeSet::new();
    note(&mut writing, rx.recv().await?);
    let give_up = tokio::time::Instant::now() + WRITE_WAIT;
    loop {
        let wait = if writing.is_empty() {
            SETTLE
        } else {
            give_up.saturating_duration_since(tokio::time::Instant::now())
        };
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(change)) => note(&mut writing, change),
            Ok(None) => return None,
            Err(_) if writing.is_empty() || tokio::time::Instant::now() >= give_up => {
                return Some(())
            }
            Err(_) => {}
        }
    }
}

fn note(writing: &mut BTreeSet<PathBuf>, change: Change) {
    match change {
        Change::Written(path) => {
            writing.insert(path);
        }
        Change::Closed(path) => {
            writing.remove(&path);
        }
        Change::Other => {}
    }
}
