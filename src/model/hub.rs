//! Finding a model: a folder path, or `org/name` in the local Hugging Face cache.
//!
//! Cache root: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
//! else `~/.cache/huggingface/hub`. Layout: `models--org--name/snapshots/<revision>/`; the
//! revision is `refs/main` when present, else the most recently modified snapshot. Nothing is
//! ever downloaded: a model that is not on disk is an error saying where it was looked for.
//!
//! A `.gguf` file (llama architecture) is converted once into a Hugging Face folder under
//! `$QS_CACHE`, else `$XDG_CACHE_HOME/quantscape`, else `~/.cache/quantscape`, in
//! `gguf/<stem>-<bytes>-<mtime>/` (a changed file gets a new folder), and that folder is used.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Hugging Face hub cache folder this environment points at.
pub fn cache_root() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("HF_HUB_CACHE")
        .or_else(|| env("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| env("XDG_CACHE_HOME").map(|c| c.join("huggingface").join("hub")))
        .or_else(|| env("HOME").map(|h| h.join(".cache").join("huggingface").join("hub")))
}

/// Resolves `spec` (a folder, or `org/name` in the cache under `root`) to a model folder.
pub fn resolve_in(spec: &str, root: Option<&Path>) -> Result<PathBuf> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    let parts: Vec<&str> = spec.split('/').collect();
    let repo_like = parts.len() == 2
        && parts
            .iter()
            .all(|s| !s.is_empty() && *s != "." && *s != "..");
    let Some(root) = root.filter(|_| repo_like) else {
        return Err(Error::Path {
            reason: "no such model folder (and not an org/name in the Hugging Face cache)".into(),
            path: p.to_path_buf(),
        });
    };
    let repo = root.join(format!("models--{}--{}", parts[0], parts[1]));
    let snaps = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let dir = snaps.join(rev.trim());
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    let newest = std::fs::read_dir(&snaps)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    newest.map(|e| e.path()).ok_or_else(|| Error::Path {
        reason: format!("model {spec} is not in the Hugging Face cache (quantscape never downloads; fetch it with `huggingface-cli download {spec}`)"),
        path: repo,
    })
}

/// Models in the Hugging Face cache under `root` that quantscape can open (a snapshot with a
/// `config.json`): (`org/name`, snapshot folder), sorted by name.
pub fn list_cached(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let rest = name.strip_prefix("models--")?;
            let (org, repo) = rest.split_once("--")?;
            let spec = format!("{org}/{repo}");
            let dir = resolve_in(&spec, Some(root)).ok()?;
            dir.join("config.json").is_file().then_some((spec, dir))
        })
        .collect();
    out.sort();
    out
}

/// Resolves `spec` against the environment's cache (`.gguf` files through [`gguf_folder`]).
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let p = Path::new(spec);
    if p.is_file()
        && p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        let root = quantscape_cache().ok_or_else(|| Error::Path {
            reason: "no cache folder for the converted GGUF (set QS_CACHE or HOME)".into(),
            path: p.to_path_buf(),
        })?;
        return gguf_folder(p, &root);
    }
    resolve_in(spec, cache_root().as_deref())
}

/// quantscape's own cache folder (converted GGUF files).
pub fn quantscape_cache() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("QS_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|c| c.join("quantscape")))
        .or_else(|| env("HOME").map(|h| h.join(".cache").join("quantscape")))
}

/// The Hugging Face folder converted from `gguf` under `root`, converting on first use.
pub fn gguf_folder(gguf: &Path, root: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(gguf).map_err(|e| Error::io("stat", gguf, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let stem = gguf
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().to_string());
    let dir = root
        .join("gguf")
        .join(format!("{stem}-{}-{mtime}", meta.len()));
    if dir.join("config.json").is_file() {
        return Ok(dir);
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    }
    super::gguf::convert(gguf, &dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_cached_models_with_a_config() {
        let root = tempfile::tempdir().unwrap();
        let snap = root.path().join("models--org--good/snapshots/abc");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        std::fs::create_dir_all(root.path().join("models--org--noconfig/snapshots/abc")).unwrap();
        std::fs::create_dir_all(root.path().join("datasets--org--data/snapshots/abc")).unwrap();
        let l = list_cached(root.path());
        assert_eq!(l, vec![("org/good".to_string(), snap)]);
        assert!(list_cached(Path::new("/nonexistent")).is_empty());
    }
}
