//! The models of a sweep spec: `bundled:NAME`, `bundled:PATTERN` (`*` wildcards over the
//! bundled folders), local folders and Hugging Face cache ids, resolved to folders. A missing
//! model is an error naming it; a pattern matching nothing is an error too.

use std::path::{Path, PathBuf};

use super::spec::SweepSpec;
use crate::error::{Error, Result};
use crate::model::hub;

/// A model of the spec and its folder.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedModel {
    /// As written in the spec (after expansion).
    pub spec: String,
    /// Folder.
    pub dir: PathBuf,
}

/// `*` matches any run of characters (the only wildcard).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == name;
    }
    if name.len() < first.len() + last.len() || !name.starts_with(first) || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Expands `bundled:NAME`, `bundled:PATTERN` with `*` wildcards (every matching folder of
/// `bundled_root` holding a config.json, sorted), folders and Hugging Face cache ids. A missing
/// model is an error. A spec written with patterns picks up newly trained models on rerun.
pub fn expand_models(spec: &SweepSpec, bundled_root: &Path) -> Result<Vec<ResolvedModel>> {
    let mut out = Vec::new();
    for m in &spec.models {
        if let Some(name) = m.strip_prefix("bundled:") {
            if name.contains('*') {
                let mut found: Vec<String> = std::fs::read_dir(bundled_root)
                    .map_err(|e| Error::io("list", bundled_root, e))?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| glob_match(name, n) && !n.starts_with('.'))
                    .filter(|n| bundled_root.join(n).join("config.json").is_file())
                    .collect();
                found.sort();
                if found.is_empty() {
                    return Err(Error::Path {
                        reason: format!("no bundled model matches `{m}`"),
                        path: bundled_root.to_path_buf(),
                    });
                }
                out.extend(found.into_iter().map(|n| ResolvedModel {
                    spec: format!("bundled:{n}"),
                    dir: bundled_root.join(n),
                }));
            } else {
                let dir = bundled_root.join(name);
                if !dir.join("config.json").is_file() {
                    return Err(Error::Path {
                        reason: format!("bundled model `{name}` not found"),
                        path: dir,
                    });
                }
                out.push(ResolvedModel {
                    spec: m.clone(),
                    dir,
                });
            }
        } else {
            out.push(ResolvedModel {
                spec: m.clone(),
                dir: hub::resolve(m)?,
            });
        }
    }
    Ok(out)
}

/// Resolves one model spelling: `bundled:NAME` (no wildcard), a folder, or a Hugging Face cache
/// id. A missing model is an error naming it.
pub fn resolve_model(spec: &str, bundled_root: &Path) -> Result<ResolvedModel> {
    if spec.contains('*') {
        return Err(Error::Input(format!(
            "`{spec}`: one model is needed here, not a pattern"
        )));
    }
    let one = SweepSpec {
        models: vec![spec.to_string()],
        ..SweepSpec::default()
    };
    let mut found = expand_models(&one, bundled_root)?;
    found
        .pop()
        .ok_or_else(|| Error::Input(format!("no model `{spec}`")))
}

/// The bundled models folder (`assets/models` of the source tree).
pub fn bundled_models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join("models")
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("qs-llama-*", "qs-llama-s1-2M"));
        assert!(glob_match("qs-*-2M", "qs-neox-s5-2M"));
        assert!(!glob_match("qs-*-2M", "qs-neox-s5-500k"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXcYb"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("exact", "exact") && !glob_match("exact", "exactly"));
    }
}
