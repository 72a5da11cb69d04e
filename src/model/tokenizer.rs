//! Tokenizer (`tokenizer.json` through the `tokenizers` crate) and the BOS policy.
//!
//! Text is encoded without special tokens; whether a window starts with BOS is decided per
//! tokenizer, the way its own post-processor would: if encoding with special tokens puts a
//! special token first (Llama-style `<s> $A` templates), that id is the BOS every evaluation
//! window starts with; otherwise (GPT-2, GPT-NeoX byte-level BPE) windows are plain text.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| Error::checkpoint(&path, format!("cannot load tokenizer: {e}")))?;
        let with = inner
            .encode("a", true)
            .map_err(|e| Error::checkpoint(&path, format!("tokenizer fails on text: {e}")))?;
        let without = inner
            .encode("a", false)
            .map_err(|e| Error::checkpoint(&path, format!("tokenizer fails on text: {e}")))?;
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
