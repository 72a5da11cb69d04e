//! Loss evaluation: NLL, perplexity, ΔL with a paired bootstrap CI, KL(base‖quant), top-1.
//!
//! Flow: text → [`windows::make_windows`] → [`Evaluator::base`] runs the unmodified model once
//! and keeps a compact [`metrics::BaseRef`] → [`Evaluator::compare`] runs the model under any
//! [`Hooks`] (quantized weights, quantized matmul operands) on the same windows and returns a
//! [`metrics::Report`]. Windows run in batches of at most [`Evaluator::max_batch_tokens`]
//! tokens, and the LM head runs in chunks of [`HEAD_CHUNK_ROWS`] rows fused with the per-token
//! metrics, so memory is the weights plus one batch's activations; the matmuls and the metrics
//! use every core. `progress(done, total)` is called after each batch; returning
//! `false` cancels with [`Error::Cancelled`].

pub mod corpus;
pub mod metrics;
pub mod rdata;
pub mod windows;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::model::{Hooks, NoHooks, Transformer};
use metrics::{BaseRef, Report, TokenCompare, TokenLogits};
use windows::Windows;

/// What an engine returns for one batch of windows.
#[derive(Debug)]
pub enum BatchOut {
    /// Logits `[B, T, V]` (an engine that applies the LM head itself, e.g. the GPU).
    Logits(candle_core::Tensor),
    /// Final hidden states `[B, T, d]`, after the final norm: the evaluator applies the LM head
    /// in chunks of scored rows ([`HEAD_CHUNK_ROWS`]), so the B·T·V logits never exist whole.
    Hidden(candle_core::Tensor),
}

/// Computes batch `(index, ids, windows)`: its logits or its final hidden states.
pub type BatchLogits<'a> = dyn FnMut(usize, &[u32], usize) -> Result<BatchOut> + 'a;

/// Default tokens per batch: 4 windows of 512. The linear layers' matmuls then have 2,048
/// rows, enough for the gemm kernel to run near its peak; the largest activation is the MLP's
/// `[2048, ff]` (12 MiB at SmolLM2's ff 1536).
pub const DEFAULT_BATCH_TOKENS: usize = 2048;

/// Most B·T·V logits per batch (32 Mi floats, 128 MiB) when an engine returns them whole.
pub const WHOLE_LOGITS_BUDGET: usize = 32 << 20;

/// Scored rows per LM-head chunk: [`HEAD_CHUNK_ROWS`] × V logits (32 MiB at V = 32k) are live
/// at once instead of B·T·V. Measured on 2 threads (`cargo bench --bench forward`, d 512,
/// V 32k): the head's matmul runs at 119 / 145 / 165 / 166 GFLOP/s in chunks of
/// 64 / 128 / 256 / 512 rows and at 74 GFLOP/s as one 2,048-row product (its output is
/// page-faulted in and written to memory once).
pub const HEAD_CHUNK_ROWS: usize = 256;

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
    /// Most tokens (B·T) per batch: the forward pass's activations scale with it; the logits
    /// do not (the LM head runs in chunks of [`HEAD_CHUNK_ROWS`] rows).
    pub max_batch_tokens: usize,
}

impl<'a> Evaluator<'a> {
    /// An evaluator with batches of at most [`DEFAULT_BATCH_TOKENS`] tokens.
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
            max_batch_tokens: DEFAULT_BATCH_TOKENS,
        })
    }

    /// Caps the batch for an engine that returns whole logits ([`BatchOut::Logits`], the
    /// GPU): at most [`WHOLE_LOGITS_BUDGET`] floats of B·T·V per batch (one window at least).
    pub fn for_whole_logits(mut self) -> Self {
        let per_window = self.windows.ctx * self.model.config.vocab_size;
        let windows = (WHOLE_LOGITS_BUDGET / per_window.max(1)).max(1);
        self.max_batch_tokens = self.max_batch_tokens.min(windows * self.windows.ctx);
        self
    }

    fn batch_windows(&self) -> usize {
        (self.max_batch_tokens / self.windows.ctx.max(1)).clamp(1, self.windows.len().max(1))
    }

    /// Runs every batch, the logits of batch `(index, ids, windows)` computed by `logits`;
    /// `each(first_token, rows)` receives the scored positions.
    fn run_with(
        &self,
        logits: &mut BatchLogits<'_>,
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
        let mut batch = 0;
        while w0 < n {
            let b = bw.min(n - w0);
            let ids = &self.windows.ids[w0 * ctx..(w0 + b) * ctx];
            match logits(batch, ids, b)? {
                BatchOut::Logits(t) => {
                    let logits = t.flatten_all()?.to_vec1::<f32>()?;
                    if logits.len() != b * ctx * v {
                        return Err(Error::Input(format!(
                            "the engine returned {} logits for {b} windows of {ctx} tokens and \
                             a vocabulary of {v}",
                            logits.len()
                        )));
                    }
                    let rows: Vec<TokenLogits<'_>> = (0..b)
                        .flat_map(|w| (0..per).map(move |p| (w, p)))
                        .map(|(w, p)| TokenLogits {
                            logits: &logits[(w * ctx + p) * v..(w * ctx + p + 1) * v],
                            target: ids[w * ctx + p + 1],
                        })
                        .collect();
                    each(w0 * per, &rows);
                }
                BatchOut::Hidden(h) => self.head_chunks(&h, ids, b, w0 * per, each)?,
            }
            w0 += b;
            batch += 1;
            if !progress(w0, n) {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }

    /// Applies the final norm's output `h` `[b, ctx, d]` to the LM head in chunks of
    /// [`HEAD_CHUNK_ROWS`] scored rows (the last position of each window predicts nothing and is
    /// skipped) and hands each chunk's rows to `each`, numbered from `first`.
    fn head_chunks(
        &self,
        h: &candle_core::Tensor,
        ids: &[u32],
        b: usize,
        first: usize,
        each: &mut dyn FnMut(usize, &[TokenLogits<'_>]),
    ) -> Result<()> {
        let (ctx, per) = (self.windows.ctx, self.windows.predictions_per_window());
        let (v, d) = (self.model.config.vocab_size, self.model.config.hidden_size);
        let h = h.flatten_all()?.to_vec1::<f32>()?;
        if h.len() != b * ctx * d {
            return Err(Error::Input(format!(
                "the engine returned {} hidden values for {b} windows of {ctx} tokens and a \
                 width of {d}",
                h.len()
            )));
        }
        // (hidden row, target) of every scored position, in evaluation order.
        let scored: Vec<(usize, u32)> = (0..b)
            .flat_map(|w| (0..per).map(move |p| w * ctx + p))
            .map(|r| (r, ids[r + 1]))
            .collect();
        let head_t = self.model.lm_head.t()?;
        let mut rows_h = Vec::with_capacity(HEAD_CHUNK_ROWS.min(scored.len()) * d);
        let mut done = 0;
        for chunk in scored.chunks(HEAD_CHUNK_ROWS) {
            rows_h.clear();
            for &(r, _) in chunk {
                rows_h.extend_from_slice(&h[r * d..(r + 1) * d]);
            }
            let hx = candle_core::Tensor::from_slice(
                &rows_h,
                (chunk.len(), d),
                &candle_core::Device::Cpu,
            )?;
            let z = hx.matmul(&head_t)?;
            // Read the product in place (a fresh contiguous CPU tensor), no copy.
            let (storage, layout) = z.storage_and_layout();
            let candle_core::Storage::Cpu(cpu) = &*storage else {
                return Err(Error::Input("the LM head ran off the CPU".into()));
            };
            let all = cpu.as_slice::<f32>()?;
            let Some((lo, hi)) = layout.contiguous_offsets() else {
                return Err(Error::Input(
                    "the LM head's product is not contiguous".into(),
                ));
            };
            let zs = all.get(lo..hi).unwrap_or_default();
            let rows: Vec<TokenLogits<'_>> = chunk
                .iter()
                .zip(zs.chunks_exact(v))
                .map(|(&(_, target), logits)| TokenLogits { logits, target })
                .collect();
            each(first + done, &rows);
            done += chunk.len();
        }
        Ok(())
    }

    /// Evaluates the unmodified model, keeping `top_k` entries per token.
    pub fn base(
        &self,
        top_k: usize,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<BaseRef> {
        self.base_with(
            top_k,
            &mut |_, ids, b| {
                Ok(BatchOut::Hidden(
                    self.model.hidden_states(ids, b, &NoHooks)?,
                ))
            },
            progress,
        )
    }

    /// [`Self::base`] with the logits computed by `logits` (another engine, e.g. the resident
    /// GPU forward pass of the unmodified model).
    pub fn base_with(
        &self,
        top_k: usize,
        logits: &mut BatchLogits<'_>,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<BaseRef> {
        crate::limits::TOP_K.check(top_k)?;
        let mut base = BaseRef {
            // More entries than the vocabulary holds add nothing.
            k: top_k.clamp(1, self.model.config.vocab_size.max(1)),
            per_window: self.windows.predictions_per_window(),
            ..BaseRef::default()
        };
        self.run_with(logits, progress, &mut |_, rows| base.push_rows(rows))?;
        Ok(base)
    }

    /// Mean NLL per scored token (nats) under `hooks`, computed token by token exactly as
    /// [`Self::base`] and [`Self::compare`] do (so equal weights give bit-equal means).
    pub fn nll_mean(
        &self,
        hooks: &dyn Hooks,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<f64> {
        self.nll_mean_with(
            &mut |_, ids, b| Ok(BatchOut::Hidden(self.model.hidden_states(ids, b, hooks)?)),
            progress,
        )
    }

    /// [`Self::nll_mean`] with the logits computed by `logits`.
    pub fn nll_mean_with(
        &self,
        logits: &mut BatchLogits<'_>,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<f64> {
        let mut nll: Vec<f32> =
            Vec::with_capacity(self.windows.len() * self.windows.predictions_per_window());
        self.run_with(logits, progress, &mut |_, rows| {
            nll.par_extend(rows.par_iter().map(|r| {
                let lse = metrics::log_sum_exp(r.logits);
                (lse - f64::from(r.logits[r.target as usize])) as f32
            }));
        })?;
        Ok(nll.iter().map(|&x| f64::from(x)).sum::<f64>() / nll.len().max(1) as f64)
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
        self.compare_with(
            base,
            &mut |_, ids, b| Ok(BatchOut::Hidden(self.model.hidden_states(ids, b, hooks)?)),
            resamples,
            seed,
            progress,
        )
    }

    /// [`Self::compare`] with the logits computed by `logits` (e.g. a quantized model resident
    /// on the GPU).
    pub fn compare_with(
        &self,
        base: &BaseRef,
        logits: &mut BatchLogits<'_>,
        resamples: usize,
        seed: u64,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Report> {
        crate::limits::RESAMPLES.check(resamples)?;
        if base.n_tokens() != self.windows.len() * self.windows.predictions_per_window() {
            return Err(Error::Input(
                "the base reference was computed on other windows".into(),
            ));
        }
        let mut cmp: Vec<TokenCompare> = Vec::with_capacity(base.n_tokens());
        self.run_with(logits, progress, &mut |first, rows| {
            cmp.extend(base.compare(first, rows))
        })?;
        Ok(metrics::report(base, &cmp, resamples, seed))
    }

    /// [`Self::compare`] reusing block outputs of an earlier evaluation: `block_sigs[l]` names
    /// what block l computes (its weights and operand formats); the leading blocks whose
    /// signatures equal those held by `prefix` are not recomputed (their outputs are read from
    /// it), and `prefix` then holds this evaluation's block outputs. Results are bit-identical
    /// to [`Self::compare`] with the same hooks.
    pub fn compare_prefix(
        &self,
        base: &BaseRef,
        hooks: &dyn Hooks,
        block_sigs: &[String],
        prefix: &mut PrefixCache,
        resamples: usize,
        seed: u64,
    ) -> Result<Report> {
        let n_blocks = self.model.blocks.len();
        if block_sigs.len() != n_blocks {
            return Err(Error::Input(format!(
                "{} block signatures for {n_blocks} blocks",
                block_sigs.len()
            )));
        }
        crate::limits::RESAMPLES.check(resamples)?;
        if base.n_tokens() != self.windows.len() * self.windows.predictions_per_window() {
            return Err(Error::Input(
                "the base reference was computed on other windows".into(),
            ));
        }
        let keep = prefix.enabled;
        let same = prefix
            .sigs
            .iter()
            .zip(block_sigs)
            .take_while(|(a, b)| a == b)
            .count();
        prefix.sigs.truncate(same);
        let mut cmp: Vec<TokenCompare> = Vec::with_capacity(base.n_tokens());
        let model = self.model;
        let mut logits = |batch: usize, ids: &[u32], b: usize| -> Result<BatchOut> {
            if keep && prefix.states.len() <= batch {
                prefix.states.resize_with(batch + 1, Vec::new);
            }
            let mut states = if keep {
                prefix.states.get_mut(batch)
            } else {
                None
            };
            // Blocks 0..start are the same as last time and their outputs are held.
            let start = states.as_ref().map_or(0, |s| same.min(s.len()));
            let mut x = match states.as_ref().and_then(|s| s.get(start.wrapping_sub(1))) {
                Some(t) if start > 0 => t.clone(),
                _ => model.embed_ids(ids, b)?,
            };
            if let Some(s) = states.as_mut() {
                s.truncate(start);
            }
            for l in start..n_blocks {
                x = model.block_forward(l, &x, hooks)?;
                if let Some(s) = states.as_mut() {
                    s.push(x.clone());
                }
            }
            prefix.blocks_total += n_blocks;
            prefix.blocks_computed += n_blocks - start;
            Ok(BatchOut::Hidden(model.final_norm.forward(&x)?))
        };
        self.run_with(&mut logits, &mut |_, _| true, &mut |first, rows| {
            cmp.extend(base.compare(first, rows))
        })?;
        if keep {
            prefix.sigs = block_sigs.to_vec();
        }
        Ok(metrics::report(base, &cmp, resamples, seed))
    }
}

/// Block outputs of the last evaluation, per batch, for [`Evaluator::compare_prefix`].
#[derive(Debug, Default)]
pub struct PrefixCache {
    /// Keep outputs (off: every block is recomputed, as `compare` does).
    pub enabled: bool,
    sigs: Vec<String>,
    states: Vec<Vec<candle_core::Tensor>>,
    /// Block evaluations a plain forward pass would have done.
    pub blocks_total: usize,
    /// Block evaluations actually done.
    pub blocks_computed: usize,
}

impl PrefixCache {
    /// An enabled, empty cache.
    pub fn new() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    /// Forgets the held outputs (another model or other windows).
    pub fn clear(&mut self) {
        self.sigs.clear();
        self.states.clear();
    }
}
