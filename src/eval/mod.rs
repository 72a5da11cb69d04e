//! Loss evaluation: NLL, perplexity, ΔL with a paired bootstrap CI, KL(base‖quant), top-1.
//!
//! Flow: text → [`windows::make_windows`] → [`Evaluator::base`] runs the unmodified model once
//! and keeps a compact [`metrics::BaseRef`] → [`Evaluator::compare`] runs the model under any
//! [`Hooks`] (quantized weights, quantized matmul operands) on the same windows and returns a
//! [`metrics::Report`]. Windows run in batches whose logits stay under
//! [`Evaluator::max_batch_logits`] floats, so memory is the weights plus one batch; candle's
//! matmuls use every core. `progress(done, total)` is called after each batch; returning
//! `false` cancels with [`Error::Cancelled`].

pub mod corpus;
pub mod metrics;
pub mod rdata;
pub mod windows;

use crate::error::{Error, Result};
use crate::model::{Hooks, NoHooks, Transformer};
use metrics::{BaseRef, Report, TokenCompare, TokenLogits};
use windows::Windows;

/// Default top-k kept per base token for KL.
pub const DEFAULT_TOP_K: usize = 64;
/// Default bootstrap resamples.
pub const DEFAULT_RESAMPLES: usize = 1000;

/// Runs a model over fixed windows.
pub struct Evaluator<'a> {
    /// The model.
    pub model: &'a Transformer,
    /// The windows.
    pub windows: &'a Windows,
    /// Largest B·T·V logits tensor per batch (floats).
    pub max_batch_logits: usize,
}

impl<'a> Evaluator<'a> {
    /// An evaluator with batches of at most 32 Mi logits (128 MiB).
    pub fn new(model: &'a Transformer, windows: &'a Windows) -> Result<Self> {
        if windows.ctx > model.config.max_positions {
            return Err(Error::Input(format!(
                "context of {} tokens exceeds the model's maximum of {}",
                windows.ctx, model.config.max_positions
            )));
        }
        Ok(Self {
            model,
            windows,
            max_batch_logits: 32 << 20,
        })
    }

    fn batch_windows(&self) -> usize {
        let per = self.windows.ctx * self.model.config.vocab_size;
        (self.max_batch_logits / per.max(1)).clamp(1, self.windows.len().max(1))
    }

    /// Runs every batch; `each(first_token, rows)` receives the scored positions.
    fn run(
        &self,
        hooks: &dyn Hooks,
        progress: &mut dyn FnMut(usize, usize) -> bool,
        each: &mut dyn FnMut(usize, &[TokenLogits<'_>]),
    ) -> Result<()> {
        let (n, ctx, v) = (
            self.windows.len(),
            self.windows.ctx,
            self.model.config.vocab_size,
        );
        let per = self.windows.predictions_per_window();
        let bw = self.batch_windows();
        let mut w0 = 0;
        while w0 < n {
            let b = bw.min(n - w0);
            let ids = &self.windows.ids[w0 * ctx..(w0 + b) * ctx];
            let logits = self
                .model
                .forward(ids, b, hooks)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let rows: Vec<TokenLogits<'_>> = (0..b)
                .flat_map(|w| (0..per).map(move |p| (w, p)))
                .map(|(w, p)| TokenLogits {
                    logits: &logits[(w * ctx + p) * v..(w * ctx + p + 1) * v],
                    target: ids[w * ctx + p + 1],
                })
                .collect();
            each(w0 * per, &rows);
            w0 += b;
            if !progress(w0, n) {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }

    /// Evaluates the unmodified model, keeping `top_k` entries per token.
    pub fn base(
        &self,
        top_k: usize,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<BaseRef> {
        let mut base = BaseRef {
            k: top_k.max(1),
            per_window: self.windows.predictions_per_window(),
            ..BaseRef::default()
        };
        self.run(&NoHooks, progress, &mut |_, rows| base.push_rows(rows))?;
        Ok(base)
    }

    /// Evaluates the model under `hooks` against `base`.
    pub fn compare(
        &self,
        base: &BaseRef,
        hooks: &dyn Hooks,
        resamples: usize,
        seed: u64,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Report> {
        if base.n_tokens() != self.windows.len() * self.windows.predictions_per_window() {
            return Err(Error::Input(
                "the base reference was computed on other windows".into(),
            ));
        }
        let mut cmp: Vec<TokenCompare> = Vec::with_capacity(base.n_tokens());
        self.run(hooks, progress, &mut |first, rows| {
            cmp.extend(base.compare(first, rows))
        })?;
        Ok(metrics::report(base, &cmp, resamples, seed))
    }
}
