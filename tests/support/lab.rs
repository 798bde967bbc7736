//! A lab of the VM tests (three clusters in network namespaces) with its catalog in a temporary
//! directory on a local file system (the gateways watch it with inotify) and its logs where the
//! VM tier collects them (`MCWAN_TEST_LOGS`).

use mcwan::lab::{Lab, LabOptions, WanKind};

/// Builds the lab `prefix` with `wan`, and a management network when `management`; the
/// directory lives as long as the returned guard.
pub fn build(prefix: &str, wan: WanKind, management: bool) -> (Lab, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let logs = match std::env::var_os("MCWAN_TEST_LOGS") {
        Some(logs) => std::path::PathBuf::from(logs).join(prefix),
        None => dir.path().join("logs"),
    };
    let lab = Lab::build(LabOptions {
        prefix: prefix.to_owned(),
        wan,
        exe: env!("CARGO_BIN_EXE_mcwan").into(),
        dir: dir.path().to_owned(),
        logs,
        management,
    })
    .unwrap();
    (lab, dir)
}
