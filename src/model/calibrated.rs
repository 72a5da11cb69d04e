//! Calibrated quantization (GPTQ, AWQ): calibration windows are pushed through the model block
//! by block, and every linear layer is quantized from the statistics of its own inputs.
//!
//! Sequential mode, as IST-DASLab/gptq's `--true-sequential`: inside block l the linear layers
//! are taken in groups that read the same input, in forward order (`[q, k, v]` or the fused QKV,
//! `[o]`, `[gate, up]` or `[fc]`, `[down]` or `[proj]`). For each group the block runs on the current
//! block inputs with every layer quantized so far swapped in, the group's input X is captured,
//! H = 2·XᵀX/n (`in × in`) and the mean |x| per input channel are formed, and the group is
//! quantized. When the block is done, its output with all its layers quantized becomes the
//! input of block l + 1: each layer is calibrated on what the already-quantized network
//! actually feeds it. Cost ≈ (groups per block + 1) forward passes over the calibration set;
//! memory = the block inputs of every window (`windows × ctx × d` f32) plus one H.
//!
//! H is accumulated in f64 across batches from per-batch f32 GEMMs of at most `batch_tokens`
//! rows (the reference accumulates in f32 throughout). Layers of a group share H.
//! Methods without calibration (RTN, HQQ) fall through to [`quantize_all`].

use std::sync::Mutex;
use std::time::Instant;

use candle_core::Tensor;
use rayon::prelude::*;

use super::layers::Hooks;
use super::quantized::{quantize_all, quantize_linear, Overrides};
use super::transformer::{Block, Mlp, Qkv, Transformer};
use crate::codecs::{awq, gptq_factored, AwqLayer, ErrorStats, Format, GptqFactor, Method};
use crate::error::{Error, Result};

/// Default calibration windows and tokens per window (the reference's 128 × 2048 is scaled
/// to the context of small models).
pub const DEFAULT_CALIB_WINDOWS: usize = 128;
/// Default tokens per calibration window (capped at the model's maximum).
pub const DEFAULT_CALIB_CTX: usize = 512;
/// Tokens per forward batch during calibration.
pub const CALIB_BATCH_TOKENS: usize = 4096;

/// What calibration did to one linear layer.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteReport {
    /// Weight name.
    pub name: String,
    /// GPTQ: absolute damping added to diag H.
    pub damp: Option<f64>,
    /// GPTQ: inputs that never fired (H_ii = 0).
    pub dead_cols: Option<usize>,
    /// GPTQ: the reference's proxy loss Σ (w − q)²/U_ii²/2.
    pub proxy_loss: Option<f64>,
    /// AWQ: chosen α.
    pub alpha: Option<f32>,
    /// AWQ: reconstruction loss of plain rounding and of the chosen scales (group total).
    pub awq_loss_plain: Option<f64>,
    /// AWQ: loss with the chosen scales.
    pub awq_loss: Option<f64>,
}

/// Summary of a calibrated quantization.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibReport {
    /// Method spelling.
    pub method: String,
    /// Calibration windows and tokens per window.
    pub n_windows: usize,
    /// Tokens per window.
    pub ctx: usize,
    /// Per linear site, in forward order (empty for methods without calibration).
    pub sites: Vec<SiteReport>,
    /// Wall time.
    pub elapsed_secs: f64,
}

/// Groups of linear sites of a block that read the same input, in forward order.
pub fn input_groups(block: &Block) -> Vec<Vec<usize>> {
    let mut g = match &block.qkv {
        Qkv::Separate(q, k, v) => vec![vec![q.site, k.site, v.site]],
        Qkv::FusedBlocks(l) | Qkv::FusedPerHead(l) => vec![vec![l.site]],
    };
    g.push(vec![block.o.site]);
    match &block.mlp {
        Mlp::Gated { gate, up, down } => {
            g.push(vec![gate.site, up.site]);
            g.push(vec![down.site]);
        }
        Mlp::Plain { fc, proj } => {
            g.push(vec![fc.site]);
            g.push(vec![proj.site]);
        }
    }
    g
}

/// Input statistics of one linear site.
struct Accum {
    xtx: Vec<f64>,
    abs_sum: Vec<f64>,
    n: usize,
}

/// Hooks that apply the overrides so far and capture one site's input.
struct Capture<'a> {
    base: &'a Overrides,
    site: usize,
    acc: Mutex<Option<Accum>>,
}

impl Hooks for Capture<'_> {
    fn weight(&self, linear: usize) -> Option<&Tensor> {
        self.base.weight(linear)
    }
    fn captures(&self) -> bool {
        true
    }
    fn capture(&self, linear: usize, input: &Tensor) -> Result<()> {
        if linear != self.site {
            return Ok(());
        }
        let (n, k) = input.dims2()?;
        let xtx = input.t()?.matmul(input)?.flatten_all()?.to_vec1::<f32>()?;
        let abs = input.abs()?.sum(0)?.to_vec1::<f32>()?;
        if xtx.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical(format!(
                "calibration input of linear site {linear} has non-finite values"
            )));
        }
        let mut g = self
            .acc
            .lock()
            .map_err(|_| Error::Numerical("calibration accumulator poisoned".into()))?;
        let acc = g.get_or_insert_with(|| Accum {
            xtx: vec![0.0; k * k],
            abs_sum: vec![0.0; k],
            n: 0,
        });
        for (a, v) in acc.xtx.iter_mut().zip(&xtx) {
            *a += f64::from(*v);
        }
        for (a, v) in acc.abs_sum.iter_mut().zip(&abs) {
            *a += f64::from(*v);
        }
        acc.n += n;
        Ok(())
    }
}

/// Quantizes every linear site of `model` with `method`, calibrating on `calib_ids`: windows of
/// `ctx` token ids, row-major (from the calibration split, never the evaluation text). `progress(done, total)` counts linear sites;
/// returning false cancels ([`Error::Cancelled`]).
pub fn quantize_calibrated(
    model: &Transformer,
    calib_ids: &[u32],
    ctx: usize,
    format: &Format,
    method: &Method,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<(Overrides, Vec<ErrorStats>, CalibReport)> {
    let t0 = Instant::now();
    let n_sites = model.linears.len();
    if !method.needs_calibration() {
        let (o, s) = quantize_all(model, format, method)?;
        progress(n_sites, n_sites);
        let report = CalibReport {
            method: method.spelling(),
            n_windows: 0,
            ctx: 0,
            sites: Vec::new(),
            elapsed_secs: t0.elapsed().as_secs_f64(),
        };
        return Ok((o, s, report));
    }
    if calib_ids.is_empty() || ctx == 0 || !calib_ids.len().is_multiple_of(ctx) {
        return Err(Error::Input(format!(
            "`{method}` needs calibration windows of {ctx} tokens, got {} ids",
            calib_ids.len()
        )));
    }
    let n_windows = calib_ids.len() / ctx;
    let per_batch = (CALIB_BATCH_TOKENS / ctx).max(1);
    let mut xs: Vec<Tensor> = calib_ids
        .chunks(per_batch * ctx)
        .map(|c| model.embed_ids(c, c.len() / ctx))
        .collect::<Result<_>>()?;
    let mut overrides = Overrides {
        weights: vec![None; n_sites],
        operands: Vec::new(),
    };
    let mut stats: Vec<Option<ErrorStats>> = vec![None; n_sites];
    let mut reports: Vec<Option<SiteReport>> = vec![None; n_sites];
    let mut done = 0;
    if !progress(done, n_sites) {
        return Err(Error::Cancelled);
    }
    for (l, block) in model.blocks.iter().enumerate() {
        for group in input_groups(block) {
            let cap = Capture {
                base: &overrides,
                site: group[0],
                acc: Mutex::new(None),
            };
            for x in &xs {
                model.block_forward(l, x, &cap)?;
            }
            let acc = cap
                .acc
                .into_inner()
                .map_err(|_| Error::Numerical("calibration accumulator poisoned".into()))?
                .ok_or_else(|| Error::Input(format!("linear site {} saw no input", group[0])))?;
            let scale = 2.0 / acc.n.max(1) as f64;
            let h: Vec<f64> = acc.xtx.iter().map(|v| v * scale).collect();
            let x_abs_mean: Vec<f32> = acc
                .abs_sum
                .iter()
                .map(|v| (v / acc.n.max(1) as f64) as f32)
                .collect();
            let results = quantize_group(model, &group, &h, &x_abs_mean, format, method)?;
            for (site, (w, st, rep)) in group.iter().zip(results) {
                overrides.weights[*site] = Some(w);
                stats[*site] = Some(st);
                reports[*site] = Some(rep);
                done += 1;
            }
            if !progress(done, n_sites) {
                return Err(Error::Cancelled);
            }
        }
        if l + 1 < model.blocks.len() {
            xs = xs
                .iter()
                .map(|x| model.block_forward(l, x, &overrides))
                .collect::<Result<_>>()?;
        }
    }
    // Sites outside the blocks' groups cannot exist, but never leave one unquantized silently.
    for (i, (w, st)) in overrides.weights.iter_mut().zip(&mut stats).enumerate() {
        if w.is_none() {
            let q = quantize_linear(model, i, format, &Method::Rtn)?;
            *w = Some(q.weight);
            *st = Some(q.stats);
        }
    }
    let report = CalibReport {
        method: method.spelling(),
        n_windows,
        ctx,
        sites: reports
            .into_iter()
            .zip(&model.linears)
            .map(|(r, l)| {
                r.unwrap_or(SiteReport {
                    name: l.name.clone(),
                    damp: None,
                    dead_cols: None,
                    proxy_loss: None,
                    alpha: None,
                    awq_loss_plain: None,
                    awq_loss: None,
                })
            })
            .collect(),
        elapsed_secs: t0.elapsed().as_secs_f64(),
    };
    let stats = stats.into_iter().map(Option::unwrap_or_default).collect();
    Ok((overrides, stats, report))
}

type Quantized = (Tensor, ErrorStats, SiteReport);

/// Quantizes the linear sites of one input group from their shared statistics.
fn quantize_group(
    model: &Transformer,
    group: &[usize],
    h: &[f64],
    x_abs_mean: &[f32],
    format: &Format,
    method: &Method,
) -> Result<Vec<Quantized>> {
    let weights: Vec<(Vec<f32>, usize, usize)> = group
        .iter()
        .map(|&i| {
            let lin = model.linear(i)?;
            let (rows, cols) = lin.weight.dims2()?;
            Ok((lin.weight.flatten_all()?.to_vec1::<f32>()?, rows, cols))
        })
        .collect::<Result<_>>()?;
    let dev = model.embed.device();
    let blank = |i: usize| SiteReport {
        name: model.linears[i].name.clone(),
        damp: None,
        dead_cols: None,
        proxy_loss: None,
        alpha: None,
        awq_loss_plain: None,
        awq_loss: None,
    };
    match method {
        Method::Gptq(p) => {
            let cols = weights.first().map_or(0, |w| w.2);
            let factor = GptqFactor::new(h, cols, p).map_err(|e| at_site(model, group[0], e))?;
            group
                .par_iter()
                .zip(&weights)
                .map(|(&i, (w, rows, cols))| {
                    let out = gptq_factored(w, *rows, *cols, &factor, format, p)
                        .map_err(|e| at_site(model, i, e))?;
                    let st = ErrorStats::compute(w, &out.weights);
                    let rep = SiteReport {
                        damp: Some(out.damp),
                        dead_cols: Some(out.dead_cols),
                        proxy_loss: Some(out.proxy_loss),
                        ..blank(i)
                    };
                    Ok((Tensor::from_vec(out.weights, (*rows, *cols), dev)?, st, rep))
                })
                .collect()
        }
        Method::Awq(p) => {
            let cols = weights.first().map_or(0, |w| w.2);
            let layers: Vec<AwqLayer<'_>> = weights
                .iter()
                .map(|(w, rows, _)| AwqLayer {
                    weights: w,
                    rows: *rows,
                })
                .collect();
            let out = awq(&layers, cols, h, x_abs_mean, format, p)
                .map_err(|e| at_site(model, group[0], e))?;
            group
                .iter()
                .zip(&weights)
                .zip(out.weights)
                .map(|((&i, (w, rows, cols)), q)| {
                    let st = ErrorStats::compute(w, &q);
                    let rep = SiteReport {
                        alpha: Some(out.alpha),
                        awq_loss_plain: Some(out.loss_plain),
                        awq_loss: Some(out.loss),
                        ..blank(i)
                    };
                    Ok((Tensor::from_vec(q, (*rows, *cols), dev)?, st, rep))
                })
                .collect()
        }
        _ => group
            .iter()
            .map(|&i| {
                let q = quantize_linear(model, i, format, method)?;
                Ok((q.weight, q.stats, blank(i)))
            })
            .collect(),
    }
}

fn at_site(model: &Transformer, i: usize, e: Error) -> Error {
    match e {
        Error::Numerical(m) => Error::Numerical(format!("{} ({m})", model.linears[i].name)),
        other => other,
    }
}
