//! Held-out text → token windows.
//!
//! A window is `ctx` token ids. With a BOS policy (see [`crate::model::tokenizer`]) it is
//! `[BOS] + ctx−1` text tokens and every text token is scored; without, it is `ctx` text tokens
//! and the first is context only. Either way a window scores `ctx − 1` next-token predictions.
//! Candidate windows start every `stride` text tokens; `n_windows` of them are chosen by a
//! seeded shuffle (then sorted by position), so a seed fixes the evaluation set exactly and two
//! runs (base, quantized) always share windows.

use rand::seq::SliceRandom as _;
use rand::SeedableRng as _;

use crate::error::{Error, Result};

/// How to cut windows.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSpec {
    /// Tokens per window, BOS included.
    pub ctx: usize,
    /// Text tokens between window starts (`ctx` minus BOS = non-overlapping).
    pub stride: Option<usize>,
    /// Windows to keep (all candidates when fewer exist).
    pub n_windows: usize,
    /// Selection seed.
    pub seed: u64,
}

/// The chosen windows.
#[derive(Clone, Debug, PartialEq)]
pub struct Windows {
    /// Tokens per window.
    pub ctx: usize,
    /// `n × ctx` ids, row-major.
    pub ids: Vec<u32>,
    /// Start offset of each window in the text's token stream.
    pub starts: Vec<usize>,
    /// Candidate windows the text offered.
    pub n_candidates: usize,
}

impl Windows {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Scored predictions per window.
    pub fn predictions_per_window(&self) -> usize {
        self.ctx.saturating_sub(1)
    }

    /// Window `i`'s ids.
    pub fn window(&self, i: usize) -> &[u32] {
        &self.ids[i * self.ctx..(i + 1) * self.ctx]
    }
}

/// Cuts `tokens` (the text's ids) into windows. `what` names the text in errors.
pub fn make_windows(
    tokens: &[u32],
    bos: Option<u32>,
    spec: &WindowSpec,
    what: &str,
) -> Result<Windows> {
    if spec.ctx < 2 {
        return Err(Error::Input(format!(
            "context must be at least 2 tokens, got {}",
            spec.ctx
        )));
    }
    if spec.n_windows == 0 {
        return Err(Error::Input("at least one window is needed".into()));
    }
    // Windows are capped where a user sets them (`usize::MAX` here means "every window").
    crate::limits::CTX.check(spec.ctx)?;
    if tokens.is_empty() {
        return Err(Error::Input(format!("{what}: the text is empty")));
    }
    let text_len = spec.ctx - usize::from(bos.is_some());
    if tokens.len() < text_len {
        return Err(Error::Input(format!(
            "{what}: {} tokens, shorter than one window of {} (use a smaller --ctx)",
            tokens.len(),
            spec.ctx
        )));
    }
    let stride = spec.stride.unwrap_or(text_len).max(1);
    let mut starts: Vec<usize> = (0..=tokens.len() - text_len).step_by(stride).collect();
    let n_candidates = starts.len();
    if starts.len() > spec.n_windows {
        let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
        starts.shuffle(&mut rng);
        starts.truncate(spec.n_windows);
        starts.sort_unstable();
    }
    let mut ids = Vec::with_capacity(starts.len() * spec.ctx);
    for &s in &starts {
        ids.extend(bos);
        ids.extend_from_slice(&tokens[s..s + text_len]);
    }
    Ok(Windows {
        ctx: spec.ctx,
        ids,
        starts,
        n_candidates,
    })
}
