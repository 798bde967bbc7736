//! Watching the static catalog directory: file events become wake-ups, coalesced so that an
//! editor's burst of writes causes one reload.

use std::path::Path;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long to wait after a change for more changes before reloading.
pub const SETTLE: Duration = Duration::from_millis(15);

/// Starts watching `dir` (recursively). Keep the returned watcher alive as long as wake-ups are
/// wanted; each change sends one `()` (extra ones are dropped while one is pending).
pub fn watch_dir(dir: &Path) -> notify::Result<(RecommendedWatcher, mpsc::Receiver<()>)> {
    let (tx, rx) = mpsc::channel(1);
    let handler = move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(e) => !matches!(e.kind, notify::EventKind::Access(_)),
            Err(_) => true,
        };
        if relevant {
            // A full channel means a reload is already pending: nothing is lost.
            let _ = tx.try_send(());
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

/// Waits for the next change, then for the burst to settle.
pub async fn next_change(rx: &mut mpsc::Receiver<()>) -> Option<()> {
    rx.recv().await?;
    loop {
        tokio::time::sleep(SETTLE).await;
        if rx.try_recv().is_err() {
            return Some(());
        }
    }
}
