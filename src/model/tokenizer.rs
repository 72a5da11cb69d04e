//! Tokenizer (`tokenizer.json` through the `tokenizers` crate) and the BOS policy.
//!
//! Text is encoded without special tokens; whether a window starts with BOS is decided per
//! tokenizer, the way its own post-processor would: if encoding with special tokens puts a
//! special token first (Llama-style `<s> $A` templates), that id is the BOS every evaluation
//! window starts with; otherwise (GPT-2, GPT-NeoX byte-level BPE) windows are plain text.

use std::path::{Path, PathBuf};

use std::str::FromStr as _;

use crate::error::{guard_panics, Error, Result};

/// A loaded tokenizer.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    /// The id windows start with, if the tokenizer adds one.
    pub bos: Option<u32>,
}

impl Tokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::Path {
                reason: "no tokenizer.json in the model folder".into(),
                path,
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        Self::from_json(&text, &path)
    }

    /// Loads a `tokenizer.json` document; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        // `tokenizers` streams the file through serde and `expect`s inside some of its
        // deserializers (a file cut inside `"decoder"` panics); a document that is valid JSON
        // never reaches those panics, and any other panic is caught and named.
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| Error::checkpoint(&path, format!("tokenizer.json is not JSON: {e}")))?;
        let (inner, with, without) = guard_panics(&path, "loading the tokenizer", || {
            let inner = tokenizers::Tokenizer::from_str(text)
                .map_err(|e| Error::checkpoint(&path, format!("cannot load tokenizer: {e}")))?;
            let enc = |special: bool| {
                inner
                    .encode("a", special)
                    .map_err(|e| Error::checkpoint(&path, format!("tokenizer fails on text: {e}")))
            };
            let (with, without) = (enc(true)?, enc(false)?);
            Ok((inner, with, without))
        })?;
        if inner.get_vocab_size(true) == 0 || without.is_empty() {
            return Err(Error::checkpoint(
                &path,
                "the tokenizer has an empty vocabulary (it encodes `a` as no token)",
            ));
        }
        let bos = match (
            with.get_ids().first(),
            with.get_special_tokens_mask().first(),
        ) {
            (Some(&id), Some(&1)) if with.len() > without.len() => Some(id),
            _ => None,
        };
        Ok(Self { inner, path, bos })
    }

    /// Token ids of `text`, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::checkpoint(&self.path, format!("cannot tokenize: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| Error::checkpoint(&self.path, format!("cannot decode: {e}")))
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// The special token of tokenizers trained by [`train_bpe`]: BOS of every window, id 0.
pub const BOS_TOKEN: &str = "<|endoftext|>";

/// Trains a byte-level BPE tokenizer (GPT-2 style pre-tokenizer and decoder, NFC) with
/// `vocab_size` entries on `texts` (each line one sequence), whose post-processor starts every
/// encoding with [`BOS_TOKEN`] (so [`Tokenizer::load`] detects BOS id 0), and saves it as
/// `tokenizer.json` at `out`. Deterministic for the same input.
pub fn train_bpe(texts: &[&str], vocab_size: usize, out: &Path) -> Result<()> {
    use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
    use tokenizers::normalizers::unicode::NFC;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::processors::template::TemplateProcessing;
    use tokenizers::{AddedToken, TokenizerBuilder};

    let fail = |e: String| Error::Input(format!("tokenizer training: {e}"));
    if vocab_size < 256 + 1 {
        return Err(fail(format!(
            "vocabulary {vocab_size} is smaller than the 256 bytes + BOS"
        )));
    }
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(vocab_size)
        .min_frequency(2)
        .special_tokens(vec![AddedToken::from(BOS_TOKEN.to_string(), true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let post = TemplateProcessing::builder()
        .try_single(format!("{BOS_TOKEN} $A"))
        .map_err(|e| fail(e.to_string()))?
        .special_tokens(vec![(BOS_TOKEN.to_string(), 0)])
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut tok = TokenizerBuilder::<BPE, NFC, ByteLevel, TemplateProcessing, ByteLevel>::new()
        .with_model(BPE::default())
        .with_normalizer(Some(NFC))
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(Some(post))
        .with_decoder(Some(ByteLevel::default()))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let lines = texts
        .iter()
        .flat_map(|t| t.lines())
        .filter(|l| !l.trim().is_empty());
    tok.train(&mut trainer, lines)
        .map_err(|e| fail(e.to_string()))?;
    let json = tok.to_string(true).map_err(|e| fail(e.to_string()))?;
    crate::io::write_atomic(out, json.as_bytes())
}
