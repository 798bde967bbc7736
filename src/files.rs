//! Files mcwan writes for others to read (its state, catalog entries, lab configuration).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` atomically: written aside (`<path>.new`), synced, renamed over
/// `path`, the directory synced. A reader sees the old file or the new one, never a part; after
/// a crash the file is one of the two.
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut aside = path.as_os_str().to_owned();
    aside.push(".new");
    let aside = PathBuf::from(aside);
    {
        let mut f = std::fs::File::create(&aside)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&aside, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_and_nothing_is_left_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "old").unwrap();
        replace_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.yaml")]);
    }
}
