//! The bundled public-domain corpus: Jane Austen's six novels and the King James Bible, in fixed,
//! checksummed splits (DESIGN §1; issue "bundled data").
//!
//! Sources: Debian `r-cran-janeaustenr` (the novels as R character vectors in
//! `data/Rdata.rdb`, read by [`super::rdata`]) and `bible-kjv` (`bible -f gen1:1-rev22:21`, one
//! verse per line with a reference prefix such as `Ge1:1 `, stripped here).
//! Normalisation: Austen's hard-wrapped lines are re-flowed into one line per paragraph,
//! paragraphs separated by a blank line, `_italics_` underscores removed, runs of spaces
//! collapsed; KJV verses one per line, a blank line between chapters. Text is UTF-8 with `\n`.
//!
//! Splits (fixed; names are the file stems under `assets/corpus/`):
//! - `train`: Emma, Mansfield Park, Pride and Prejudice, Sense and Sensibility, the first 75% of
//!   Northanger Abbey's paragraphs + the KJV without the held-out and calibration books;
//! - `eval_austen`: Persuasion (in domain); `eval_kjv`: Ruth, Esther, Jonah, Acts, James;
//! - `calib` (GPTQ calibration, disjoint from the others): the last 25% of Northanger Abbey,
//!   Proverbs, Hebrews.
//!
//! Files are zstd-compressed (`NAME.txt.zst`) with a `manifest.json` holding each split's
//! SHA-256, byte and word counts and contents; [`load`] verifies the checksum.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::rdata::{read_rdb, RObject};
use crate::{Error, Result};

/// The six novels: (R object name in janeaustenr, title).
pub const AUSTEN: [(&str, &str); 6] = [
    ("sensesensibility", "Sense and Sensibility"),
    ("prideprejudice", "Pride and Prejudice"),
    ("mansfieldpark", "Mansfield Park"),
    ("emma", "Emma"),
    ("northangerabbey", "Northanger Abbey"),
    ("persuasion", "Persuasion"),
];

/// KJV books held out for evaluation (abbreviations of `bible -f`).
pub const KJV_EVAL: [&str; 5] = ["Ruth", "Est", "Jonah", "Acts", "Jas"];
/// Fraction of Northanger Abbey's paragraphs (its end) moved from train to the calibration split.
pub const CALIB_TAIL_FRACTION: f64 = 0.25;
/// KJV books in the calibration split.
pub const KJV_CALIB: [&str; 2] = ["Prv", "Heb"];

/// A corpus split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Training text.
    Train,
    /// Persuasion.
    EvalAusten,
    /// Held-out KJV books.
    EvalKjv,
    /// Calibration text for GPTQ/AWQ.
    Calib,
}

impl Split {
    /// Every split.
    pub const ALL: [Split; 4] = [
        Split::Train,
        Split::EvalAusten,
        Split::EvalKjv,
        Split::Calib,
    ];

    /// File stem (`train`, `eval_austen`, `eval_kjv`, `calib`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::EvalAusten => "eval_austen",
            Split::EvalKjv => "eval_kjv",
            Split::Calib => "calib",
        }
    }
}

/// One split as written.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SplitInfo {
    /// Compressed file name.
    pub file: String,
    /// SHA-256 of the uncompressed UTF-8 text, hex.
    pub sha256: String,
    /// Uncompressed bytes.
    pub bytes: usize,
    /// Whitespace-separated words.
    pub words: usize,
    /// What is in it (titles and book abbreviations).
    pub contents: Vec<String>,
}

/// `manifest.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Provenance and licence.
    pub sources: Vec<String>,
    /// Splits by name.
    pub splits: BTreeMap<String, SplitInfo>,
}

/// Re-flows janeaustenr's lines (one R string per printed line, "" between paragraphs).
pub fn normalize_austen(lines: &[Option<String>]) -> String {
    let mut out = String::new();
    let mut para: Vec<String> = Vec::new();
    let flush = |para: &mut Vec<String>, out: &mut String| {
        if !para.is_empty() {
            let joined = para.join(" ").replace('_', "");
            let words: Vec<&str> = joined.split_whitespace().collect();
            if !words.is_empty() {
                out.push_str(&words.join(" "));
                out.push_str("\n\n");
            }
            para.clear();
        }
    };
    for l in lines {
        let l = l.as_deref().unwrap_or("").trim();
        if l.is_empty() {
            flush(&mut para, &mut out);
        } else {
            para.push(l.to_string());
        }
    }
    flush(&mut para, &mut out);
    out
}

/// One KJV verse.
#[derive(Clone, Debug, PartialEq)]
pub struct Verse {
    /// Book abbreviation as `bible` prints it (`Ge`, `1Sm`, `Rev`).
    pub book: String,
    /// Chapter number.
    pub chapter: u32,
    /// Text without the reference.
    pub text: String,
}

/// Parses `bible -f` output (`Ge1:1 In the beginning…`).
pub fn parse_kjv(dump: &str) -> Result<Vec<Verse>> {
    let mut out = Vec::new();
    for (i, line) in dump.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || {
            Error::Input(format!(
                "KJV dump line {}: expected `Book1:1 text`, got `{line}`",
                i + 1
            ))
        };
        let (reference, text) = line.split_once(' ').ok_or_else(bad)?;
        let (head, _verse) = reference.rsplit_once(':').ok_or_else(bad)?;
        // The book is everything before the trailing chapter digits (books may start with 1-3).
        let split = head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (book, chapter) = head.split_at(split);
        let chapter: u32 = chapter.parse().map_err(|_| bad())?;
        if book.is_empty() {
            return Err(bad());
        }
        out.push(Verse {
            book: book.to_string(),
            chapter,
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        });
    }
    if out.is_empty() {
        return Err(Error::Input("KJV dump is empty".into()));
    }
    Ok(out)
}

fn kjv_text(verses: &[&Verse]) -> String {
    let mut out = String::new();
    let mut prev: Option<(&str, u32)> = None;
    for v in verses {
        let key = (v.book.as_str(), v.chapter);
        if prev.is_some_and(|p| p != key) {
            out.push('\n');
        }
        out.push_str(&v.text);
        out.push('\n');
        prev = Some(key);
    }
    out
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds every split from the Debian sources and writes them (zstd level 19) with the manifest
/// into `out_dir` (created if needed; files replaced atomically).
pub fn build(austen_rdb: &Path, kjv_dump: &Path, out_dir: &Path) -> Result<Manifest> {
    let objects = read_rdb(austen_rdb)?;
    let novel = |name: &str| -> Result<String> {
        match objects.iter().find(|(n, _)| n == name) {
            Some((_, RObject::Strings(lines))) => Ok(normalize_austen(lines)),
            _ => Err(Error::checkpoint(
                austen_rdb,
                format!("no character vector `{name}`"),
            )),
        }
    };
    let dump = std::fs::read_to_string(kjv_dump).map_err(|e| Error::io("read", kjv_dump, e))?;
    let verses = parse_kjv(&dump)?;
    let in_books = |books: &[&str]| -> Vec<&Verse> {
        verses
            .iter()
            .filter(|v| books.contains(&v.book.as_str()))
            .collect()
    };
    let held: Vec<&str> = KJV_EVAL.iter().chain(&KJV_CALIB).copied().collect();
    let train_kjv: Vec<&Verse> = verses
        .iter()
        .filter(|v| !held.contains(&v.book.as_str()))
        .collect();
    for b in &held {
        if in_books(&[b]).is_empty() {
            return Err(Error::Input(format!(
                "KJV dump has no book `{b}` ({})",
                kjv_dump.display()
            )));
        }
    }
    let title = |n: &str| {
        AUSTEN
            .iter()
            .find(|(k, _)| *k == n)
            .map_or(n, |(_, t)| t)
            .to_string()
    };
    let train_novels = [
        "sensesensibility",
        "prideprejudice",
        "mansfieldpark",
        "emma",
    ];
    let mut train = String::new();
    for n in train_novels {
        train.push_str(&novel(n)?);
    }
    let (na_train, na_calib) = split_paragraphs(&novel("northangerabbey")?, CALIB_TAIL_FRACTION);
    train.push_str(&na_train);
    train.push_str(&kjv_text(&train_kjv));
    let mut calib = na_calib;
    calib.push_str(&kjv_text(&in_books(&KJV_CALIB)));
    let splits: Vec<(Split, String, Vec<String>)> = vec![
        (
            Split::Train,
            train,
            train_novels
                .iter()
                .map(|n| title(n))
                .chain([format!(
                    "{} (first {:.0}% of paragraphs)",
                    title("northangerabbey"),
                    100.0 * (1.0 - CALIB_TAIL_FRACTION)
                )])
                .chain(["KJV without the eval and calibration books".to_string()])
                .collect(),
        ),
        (
            Split::EvalAusten,
            novel("persuasion")?,
            vec![title("persuasion")],
        ),
        (
            Split::EvalKjv,
            kjv_text(&in_books(&KJV_EVAL)),
            KJV_EVAL.iter().map(|b| format!("KJV {b}")).collect(),
        ),
        (
            Split::Calib,
            calib,
            std::iter::once(format!(
                "{} (last {:.0}% of paragraphs)",
                title("northangerabbey"),
                100.0 * CALIB_TAIL_FRACTION
            ))
            .chain(KJV_CALIB.iter().map(|b| format!("KJV {b}")))
            .collect(),
        ),
    ];
    write_splits(out_dir, splits)
}

/// Writes each split compressed and the manifest of their checksums, atomically.
fn write_splits(out_dir: &Path, splits: Vec<(Split, String, Vec<String>)>) -> Result<Manifest> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io("create", out_dir, e))?;
    let mut manifest = Manifest {
        version: 1,
        sources: vec![
            "Jane Austen, six novels (public domain), from Debian r-cran-janeaustenr 1.0.0 (package MIT, Julia Silge), data/Rdata.rdb".into(),
            "King James Bible (public domain outside the UK), from Debian bible-kjv-text 4.38 via `bible -f gen1:1-rev22:21`".into(),
        ],
        splits: BTreeMap::new(),
    };
    for (split, text, contents) in splits {
        let file = format!("{}.txt.zst", split.name());
        let packed = zstd::encode_all(text.as_bytes(), 19)
            .map_err(|e| Error::io("compress", out_dir.join(&file), e))?;
        crate::io::write_atomic(&out_dir.join(&file), &packed)?;
        manifest.splits.insert(
            split.name().to_string(),
            SplitInfo {
                file,
                sha256: sha256_hex(&text),
                bytes: text.len(),
                words: text.split_whitespace().count(),
                contents,
            },
        );
    }
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| Error::Input(e.to_string()))?;
    crate::io::write_atomic(
        &out_dir.join("manifest.json"),
        format!("{json}\n").as_bytes(),
    )?;
    Ok(manifest)
}

/// Splits paragraph-formatted text (paragraphs end in a blank line) so that the last
/// `tail_fraction` of its paragraphs form the second part.
fn split_paragraphs(text: &str, tail_fraction: f64) -> (String, String) {
    let paras: Vec<&str> = text.split_inclusive("\n\n").collect();
    let cut = ((paras.len() as f64) * (1.0 - tail_fraction)).round() as usize;
    (paras[..cut].concat(), paras[cut..].concat())
}

/// Reads `manifest.json` of a corpus folder.
pub fn manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::Json { path, source })
}

/// Loads one split, checking its SHA-256 against the manifest.
pub fn load(dir: &Path, split: Split) -> Result<String> {
    let m = manifest(dir)?;
    let info = m.splits.get(split.name()).ok_or_else(|| {
        Error::checkpoint(
            dir.join("manifest.json"),
            format!("no split `{}`", split.name()),
        )
    })?;
    let path = dir.join(&info.file);
    let packed = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let raw = zstd::decode_all(&packed[..])
        .map_err(|e| Error::checkpoint(&path, format!("bad zstd stream: {e}")))?;
    let text = String::from_utf8(raw).map_err(|_| Error::checkpoint(&path, "not UTF-8"))?;
    let sum = sha256_hex(&text);
    if sum != info.sha256 {
        return Err(Error::checkpoint(
            &path,
            format!("checksum mismatch: {sum}, manifest says {}", info.sha256),
        ));
    }
    Ok(text)
}

/// Reads a text argument: an existing file, else the name of a bundled split (`train`,
/// `eval_austen`, `eval_kjv`, `calib`). Returns the text and a label (`bundled:NAME` or the path).
pub fn load_named(spec: &str) -> Result<(String, String)> {
    let p = Path::new(spec);
    if p.exists() {
        let text = std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?;
        return Ok((text, p.display().to_string()));
    }
    if let Some(split) = Split::ALL.iter().find(|s| s.name() == spec) {
        return Ok((load(&bundled_dir(), *split)?, format!("bundled:{spec}")));
    }
    let names: Vec<&str> = Split::ALL.iter().map(|s| s.name()).collect();
    Err(Error::Path {
        reason: format!(
            "no such file, and not a bundled split ({})",
            names.join(", ")
        ),
        path: p.to_path_buf(),
    })
}

/// The bundled corpus folder (`assets/corpus` of the source tree).
pub fn bundled_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join("corpus")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn austen_lines_reflow_into_paragraphs() {
        let lines: Vec<Option<String>> = [
            "CHAPTER 1",
            "",
            "It is a _truth_  universally",
            "acknowledged.",
            "",
            "",
            "Next.",
        ]
        .iter()
        .map(|s| Some(s.to_string()))
        .collect();
        assert_eq!(
            normalize_austen(&lines),
            "CHAPTER 1\n\nIt is a truth universally acknowledged.\n\nNext.\n\n"
        );
    }

    #[test]
    fn kjv_references_are_stripped_and_chapters_separated() {
        let v =
            parse_kjv("Ge1:1 In the beginning.\nGe1:2 And the earth.\n1Sm2:1 And Hannah prayed.\n")
                .unwrap();
        assert_eq!(v[2].book, "1Sm");
        assert_eq!(v[2].chapter, 2);
        let refs: Vec<&Verse> = v.iter().collect();
        assert_eq!(
            kjv_text(&refs),
            "In the beginning.\nAnd the earth.\n\nAnd Hannah prayed.\n"
        );
        assert!(parse_kjv("no reference here").is_err());
    }
}
