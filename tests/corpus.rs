//! The bundled corpus and tokenizer: checksums hold, splits are disjoint, tampering is caught,
//! the tokenizer round-trips and starts windows with BOS. When the Debian sources are at hand
//! (`QS_AUSTEN_RDB`, `QS_KJV_DUMP`, as scripts/extract_corpus.sh prepares them), the corpus is
//! rebuilt from them and must match the committed manifest byte for byte.

use quantscape::eval::corpus::{self, Split};
use quantscape::model::tokenizer::Tokenizer;
use quantscape::Error;

fn paragraphs(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| p.len() > 200)
        .collect()
}

#[test]
fn bundled_splits_match_their_checksums_and_sizes() {
    let dir = corpus::bundled_dir();
    let m = corpus::manifest(&dir).unwrap();
    assert_eq!(m.splits.len(), 4);
    for split in Split::ALL {
        let text = corpus::load(&dir, split).unwrap();
        let info = &m.splits[split.name()];
        assert_eq!(text.len(), info.bytes, "{}", split.name());
        assert_eq!(text.split_whitespace().count(), info.words);
        assert!(
            !text.contains('\r') && !text.contains('_'),
            "normalised: {}",
            split.name()
        );
    }
    // ~2M training tokens at ~3.4 bytes/token (issue: "the data is ~2M tokens").
    let train = &m.splits["train"];
    assert!(
        (6_000_000..9_000_000).contains(&train.bytes),
        "{}",
        train.bytes
    );
}

#[test]
fn splits_are_disjoint() {
    let dir = corpus::bundled_dir();
    let train = corpus::load(&dir, Split::Train).unwrap();
    for split in [Split::EvalAusten, Split::EvalKjv, Split::Calib] {
        let text = corpus::load(&dir, split).unwrap();
        let paras = paragraphs(&text);
        let lines: Vec<&str> = text.lines().filter(|l| l.len() > 120).collect();
        assert!(paras.len() + lines.len() > 50, "{}", split.name());
        // Long passages are unique enough that a shared one means the split leaked.
        let leaked = lines.iter().filter(|l| train.contains(**l)).count();
        assert!(
            leaked * 100 <= lines.len(),
            "{}: {leaked} of {} lines also in train",
            split.name(),
            lines.len()
        );
    }
    let persuasion = corpus::load(&dir, Split::EvalAusten).unwrap();
    assert!(persuasion.starts_with("Persuasion"));
    assert!(train.contains("It is a truth universally acknowledged"));
    assert!(!train.contains("Sir Walter Elliot, of Kellynch Hall"));
    let kjv = corpus::load(&dir, Split::EvalKjv).unwrap();
    assert!(kjv.contains("Now the word of the LORD came unto Jonah"));
    assert!(!train.contains("Now the word of the LORD came unto Jonah"));
    assert!(train.contains("In the beginning God created the heaven and the earth."));
}

#[test]
fn a_tampered_split_is_refused_with_its_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let src = corpus::bundled_dir();
    for f in ["manifest.json", "eval_kjv.txt.zst"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let text = corpus::load(tmp.path(), Split::EvalKjv).unwrap();
    let forged = text.replacen("Jonah", "Jonas", 1);
    std::fs::write(
        tmp.path().join("eval_kjv.txt.zst"),
        zstd::encode_all(forged.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let e = corpus::load(tmp.path(), Split::EvalKjv)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("eval_kjv.txt.zst") && e.contains("checksum"),
        "{e}"
    );
    std::fs::write(tmp.path().join("eval_kjv.txt.zst"), b"not zstd").unwrap();
    let e = corpus::load(tmp.path(), Split::EvalKjv)
        .unwrap_err()
        .to_string();
    assert!(e.contains("eval_kjv.txt.zst"), "{e}");
    let e = corpus::load(tmp.path(), Split::Train).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn bundled_tokenizer_round_trips_and_adds_bos() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tokenizer");
    let tok = Tokenizer::load(&dir).unwrap();
    assert_eq!(tok.vocab_size(), 2048);
    assert_eq!(tok.bos, Some(0));
    let text = corpus::load(&corpus::bundled_dir(), Split::EvalAusten).unwrap();
    let sample: String = text.chars().take(20_000).collect();
    let ids = tok.encode(&sample).unwrap();
    assert!(!ids.contains(&0), "BOS is not part of plain text");
    assert_eq!(tok.decode(&ids).unwrap(), sample);
    let bytes_per_token = sample.len() as f64 / ids.len() as f64;
    assert!((2.8..4.5).contains(&bytes_per_token), "{bytes_per_token}");
}

#[test]
fn rebuild_from_debian_sources_matches_the_committed_manifest() {
    let (Ok(rdb), Ok(kjv)) = (std::env::var("QS_AUSTEN_RDB"), std::env::var("QS_KJV_DUMP")) else {
        eprintln!(
            "skipped: set QS_AUSTEN_RDB and QS_KJV_DUMP (scripts/extract_corpus.sh) to rebuild"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let built = corpus::build(rdb.as_ref(), kjv.as_ref(), tmp.path()).unwrap();
    let committed = corpus::manifest(&corpus::bundled_dir()).unwrap();
    for (name, s) in &committed.splits {
        assert_eq!(built.splits[name].sha256, s.sha256, "split {name}");
    }
}
