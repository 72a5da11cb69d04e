//! The dependency rule as written in ARCHITECTURE.md, checked against the code: every
//! `crate::…` and `super::…` path in `src/` (comments excluded) is resolved to the file it names;
//! a module may use only modules on lower rows of the layer table, files form no import cycle,
//! only `app` imports egui, and only `gpu` and `tasks::engine` open a GPU context.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/` (except the binary's) by module path (`["codecs", "gptq"]`).
fn library_files() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = root().join("src");
    let mut all = Vec::new();
    walk(&src, &mut all);
    let mut files = BTreeMap::new();
    for p in all {
        let rel = p.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|l| l == "mod") {
            parts.pop();
        }
        if parts == ["lib"] {
            parts.clear();
        }
        if parts.first().is_some_and(|f| f == "main" || f == "cli") {
            continue;
        }
        files.insert(parts, p);
    }
    files
}

/// The text without `//` comments (doc links are not imports) and without string literals'
/// contents.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut kept = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !in_str && c == '/' && chars.get(i + 1) == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            }
            if !in_str || c == '"' {
                kept.push(c);
            }
            prev = c;
            i += 1;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// The paths a file names, as segment lists relative to the crate root.
fn paths_in(module: &[String], is_mod_rs: bool, code: &str) -> Vec<Vec<String>> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let at = |s: &str| {
            s.chars()
                .enumerate()
                .all(|(k, c)| bytes.get(i + k) == Some(&c))
        };
        let starts_word = i == 0 || !ident(bytes[i - 1]);
        let base: Option<(Vec<String>, usize)> = if starts_word && at("crate::") {
            Some((Vec::new(), 7))
        } else if starts_word && at("super::") {
            // `super` of a file is its parent module; of a mod.rs, the module above it.
            let mut m = module.to_vec();
            if !is_mod_rs || !m.is_empty() {
                m.pop();
            }
            Some((m, 7))
        } else {
            None
        };
        let Some((mut segs, skip)) = base else {
            i += 1;
            continue;
        };
        i += skip;
        // more `super::`
        while bytes[i..].starts_with(&['s', 'u', 'p', 'e', 'r', ':', ':']) {
            segs.pop();
            i += 7;
        }
        let mut word = String::new();
        loop {
            match bytes.get(i) {
                Some(&c) if ident(c) => {
                    word.push(c);
                    i += 1;
                }
                Some(':') if bytes.get(i + 1) == Some(&':') => {
                    if !word.is_empty() {
                        segs.push(std::mem::take(&mut word));
                    }
                    i += 2;
                }
                Some('{') => {
                    // A use group: each item is a path below `segs`.
                    let mut depth = 0;
                    let start = i;
                    while i < bytes.len() {
                        match bytes[i] {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                    let inner: String = bytes[start + 1..i].iter().collect();
                    for item in inner.split([',', '{', '}']) {
                        let item = item.split(" as ").next().unwrap_or("").trim();
                        let mut p = segs.clone();
                        p.extend(
                            item.split("::")
                                .filter(|s| !s.is_empty() && s.chars().all(ident))
                                .map(String::from),
                        );
                        out.push(p);
                    }
                    break;
                }
                _ => break,
            }
        }
        if !word.is_empty() {
            segs.push(word);
        }
        out.push(segs);
    }
    out
}

/// file module path → the files it uses (by longest existing module prefix).
fn file_graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = library_files();
    let mut graph = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        // Unit tests may reach anywhere in their own module; cut the `#[cfg(test)] mod` tail.
        let text = match text.find("#[cfg(test)]\nmod ") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        let is_mod_rs = path
            .file_name()
            .is_some_and(|f| f == "mod.rs" || f == "lib.rs");
        let mut deps = BTreeSet::new();
        for p in paths_in(module, is_mod_rs, &code_of(text)) {
            let target = (1..=p.len())
                .rev()
                .map(|k| p[..k].to_vec())
                .find(|k| files.contains_key(k));
            if let Some(t) = target.filter(|t| t != module) {
                deps.insert(t);
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// The layer table of ARCHITECTURE.md: module → row.
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let block = text
        .split("```text layers")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("ARCHITECTURE.md has a ```text layers block");
    let mut out = BTreeMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split_whitespace();
        let row: usize = it.next().unwrap().parse().unwrap();
        for m in it {
            out.insert(m.to_string(), row);
        }
    }
    out
}

#[test]
fn modules_use_only_lower_layers() {
    let layers = layers();
    let graph = file_graph();
    let mut broken = Vec::new();
    for (file, deps) in &graph {
        let Some(top) = file.first() else { continue };
        let row = *layers
            .get(top)
            .unwrap_or_else(|| panic!("module `{top}` is missing from ARCHITECTURE.md's layers"));
        for d in deps {
            let Some(dt) = d.first() else { continue };
            if dt == top {
                continue;
            }
            let drow = layers[dt];
            if drow >= row {
                broken.push(format!(
                    "src/{} (layer {row}) uses {} (layer {drow})",
                    file.join("/"),
                    d.join("::")
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "dependency rule broken:\n{}",
        broken.join("\n")
    );
    // Every top-level module has a row, and the table names no module that is gone.
    let tops: BTreeSet<&String> = graph.keys().filter_map(|k| k.first()).collect();
    for m in layers.keys() {
        assert!(
            tops.contains(m),
            "ARCHITECTURE.md lists `{m}`, which src/ does not have"
        );
    }
}

#[test]
fn no_file_level_import_cycles() {
    let graph = file_graph();
    // Depth-first search with colours; report the first cycle found as a path.
    #[derive(Clone, Copy, PartialEq)]
    enum C {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<&Vec<String>, C> = graph.keys().map(|k| (k, C::White)).collect();
    fn visit<'a>(
        v: &'a Vec<String>,
        g: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        colour: &mut BTreeMap<&'a Vec<String>, C>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        colour.insert(v, C::Grey);
        stack.push(v);
        for w in &g[v] {
            match colour.get(w).copied() {
                Some(C::Grey) => {
                    let from = stack.iter().position(|s| *s == w).unwrap_or(0);
                    let mut cyc: Vec<String> = stack[from..].iter().map(|s| s.join("/")).collect();
                    cyc.push(w.join("/"));
                    return Some(cyc);
                }
                Some(C::White) => {
                    if let Some(c) = visit(w, g, colour, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        colour.insert(v, C::Black);
        None
    }
    for v in graph.keys() {
        if colour[v] == C::White {
            let mut stack = Vec::new();
            if let Some(c) = visit(v, &graph, &mut colour, &mut stack) {
                panic!("import cycle: {}", c.join(" → "));
            }
        }
    }
}

#[test]
fn only_app_imports_egui_and_only_the_engine_opens_a_gpu() {
    for (module, path) in library_files() {
        let code = code_of(&std::fs::read_to_string(&path).unwrap());
        let top = module.first().map(String::as_str).unwrap_or("");
        if top != "app" {
            for ui in ["egui::", "eframe::", "egui_plot::", "rfd::"] {
                assert!(!code.contains(ui), "{} uses {ui}", path.display());
            }
        }
        let engine = module == ["tasks", "engine"];
        if top != "gpu" && !engine {
            for open in ["GpuContext::try_new", "GpuContext::new", "Gpu::try_new"] {
                assert!(
                    !code.contains(open),
                    "{} opens its own GPU context ({open}); use tasks::engine::shared_gpu",
                    path.display()
                );
            }
        }
    }
}

/// The checker itself: it sees `use` groups, nested paths, `super`, and ignores comments.
#[test]
fn the_path_reader_sees_groups_super_and_skips_comments() {
    let m = vec!["laws".to_string(), "fit".to_string()];
    let code = code_of(
        "use super::optim::{Loss, Space};\nuse crate::{codecs::Format, eval};\n\
         // crate::app::nothing\nlet s = \"crate::gpu::x\";\nsuper::super::io::write(x);",
    );
    let got = paths_in(&m, false, &code);
    let has = |p: &[&str]| got.iter().any(|g| g == p);
    assert!(has(&["laws", "optim", "Loss"]), "{got:?}");
    assert!(has(&["codecs", "Format"]), "{got:?}");
    assert!(has(&["eval"]), "{got:?}");
    assert!(has(&["io", "write"]), "{got:?}");
    assert!(!got
        .iter()
        .any(|g| g.first().is_some_and(|f| f == "app" || f == "gpu")));
}
