//! Crash-safe file writes shared by every module that saves something (corpus, tokenizer, loss
//! curves, sessions, exports).
//!
//! Invariant: a reader sees either the old file or the complete new one, never a torn write —
//! bytes go to a sibling temporary file (same directory, so the rename is atomic), are synced, and
//! the temporary file is renamed over the target. On failure the temporary file is removed and
//! the target is untouched; errors name the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The sibling temporary path used while writing `path` (`NAME.tmp` next to it).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("rename", path, e)
    })
}

/// Like [`write_atomic`] but refuses to replace an existing file (exports never overwrite
/// without the user saying so).
pub fn write_new_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.exists() {
        return Err(Error::Path {
            reason: "already exists (not overwritten)".into(),
            path: path.to_path_buf(),
        });
    }
    write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_refuses_to_overwrite_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!temp_path(&p).exists());
        let e = write_new_atomic(&p, b"three").unwrap_err().to_string();
        assert!(e.contains("a.csv") && e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let bad = dir.path().join("missing").join("b.csv");
        let e = write_atomic(&bad, b"x").unwrap_err().to_string();
        assert!(e.contains("b.csv.tmp"), "{e}");
    }
}
