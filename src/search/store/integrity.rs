//! Checks on a results store as a file: read whole before it is merged from, and discarded
//! when a run that created it failed before storing a trial (nothing of value is in it).

use std::path::Path;

use super::{db, Store};
use crate::error::{Error, Result};

impl Store {
    /// Reads the whole store (SQLite's `quick_check`, then every model, trial and feature row),
    /// so a damaged file is refused before anything is built from it.
    pub fn check_readable(&self) -> Result<()> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| db(&self.path, e))?;
        if verdict != "ok" {
            return Err(Error::checkpoint(
                &self.path,
                format!("the database is damaged: {verdict}"),
            ));
        }
        self.models()?;
        self.trials()?;
        self.features()?;
        Ok(())
    }

    /// Removes the store at `path` (and SQLite's `-wal`, `-shm`, `-journal` companions) when it
    /// holds no finished trial: what a run that created it and then failed leaves behind. A store
    /// with trials is kept (results already written are never lost); returns whether it was
    /// removed. Call it only for a store the failed run created.
    pub fn discard_if_empty(path: &Path) -> bool {
        let empty = match Store::open_existing(path) {
            Ok((s, _)) => s.finished().is_ok_and(|f| f.is_empty()),
            // Not even readable as a store: nothing of value in it.
            Err(_) => path.is_file(),
        };
        if empty {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut p = path.as_os_str().to_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(std::path::PathBuf::from(p));
            }
        }
        empty
    }
}
