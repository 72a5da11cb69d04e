//! AWQ-style activation-aware scaling (Lin et al. 2023, mit-han-lab/llm-awq, AutoAWQ): before
//! rounding, every input channel j of a layer is multiplied by s_j and the rounded weight is
//! divided by it again, Ŵ = Q(W·diag(s))·diag(s)⁻¹, so channels that see large activations get a
//! finer grid. Foldable: s can be folded into the operation that produces the input (a norm's
//! gain, the previous linear), so one s is shared by every linear reading the same input
//! (q/k/v; gate/up) — as the reference does.
//!
//! Search, as AutoAWQ's `_search_best_scale`: for α = 0, 1/n, …, (n−1)/n,
//! s = x̄^α / (w̄^(1−α) + 1e−4) (duo scaling; plain x̄^α without), clamped at 1e−4 and normalised
//! by √(max s · min s); x̄_j = mean |x_j| over calibration tokens, w̄_j = mean over rows of
//! |w_ij| / max |w| of its block. The chosen α minimises the layer-wise reconstruction error
//! Σ_layers ‖(W − Ŵ) X‖² = Σ_rows e H eᵀ · n/2 with H = 2 X Xᵀ / n — the reference measures the
//! error after the whole attention or MLP module instead (stated difference). α = 0 without duo
//! scaling is plain rounding, so the search never does worse than RTN on this loss. The
//! reference's clipping search (auto_clip) is not part of this method.

use rayon::prelude::*;

use super::linalg::gemm_rm;
pub use super::method::AwqParams;
use super::method::{HqqParams, Method};
use super::tensor::{check_shape, fake_quant};
use super::Format;
use crate::{Error, Result};

/// One weight `[rows, cols]` reading the shared input.
#[derive(Clone, Copy, Debug)]
pub struct AwqLayer<'a> {
    /// Row-major weights.
    pub weights: &'a [f32],
    /// Output features.
    pub rows: usize,
}

/// What the search chose.
#[derive(Clone, Debug)]
pub struct AwqOutput {
    /// Per-input-channel scale s (`cols`).
    pub scales: Vec<f32>,
    /// The chosen α.
    pub alpha: f32,
    /// Fake-quantized weights per layer, `Q(W·s)/s`.
    pub weights: Vec<Vec<f32>>,
    /// Reconstruction loss Σ e H eᵀ of plain rounding (s = 1).
    pub loss_plain: f64,
    /// Loss of the chosen scales.
    pub loss: f64,
}

/// Σ_rows e_r H e_rᵀ for E = W − Ŵ (`rows × cols`), H f32 `cols × cols`.
pub fn reconstruction_loss(w: &[f32], w_hat: &[f32], cols: usize, h: &[f32]) -> f64 {
    if cols == 0 {
        return 0.0;
    }
    let e: Vec<f32> = w.iter().zip(w_hat).map(|(a, b)| a - b).collect();
    e.par_chunks(cols * 32)
        .map(|ec| {
            let m = ec.len() / cols;
            let mut eh = vec![0f32; m * cols];
            gemm_rm(
                (m, cols, cols),
                1.0,
                (ec, cols),
                (h, cols),
                0.0,
                (&mut eh, cols),
            );
            eh.iter()
                .zip(ec)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>()
        })
        .sum()
}

/// Mean over rows of |w| / max |w| of the block, per input channel (AutoAWQ's w̄).
fn weight_mean(layers: &[AwqLayer<'_>], cols: usize, block: usize) -> Vec<f32> {
    let mut acc = vec![0f64; cols];
    let mut n_rows = 0usize;
    for l in layers {
        for row in l.weights.chunks(cols) {
            for (b, chunk) in row.chunks(block.max(1)).enumerate() {
                let m = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (j, v) in chunk.iter().enumerate() {
                    let r = if m > 0.0 { v.abs() / m } else { 0.0 };
                    acc[b * block + j] += f64::from(r);
                }
            }
            n_rows += 1;
        }
    }
    acc.iter()
        .map(|a| (a / n_rows.max(1) as f64) as f32)
        .collect()
}

/// Q(W·s)/s for one layer.
fn scaled_quant(
    l: &AwqLayer<'_>,
    cols: usize,
    s: &[f32],
    format: &Format,
    inner: &Method,
) -> Result<Vec<f32>> {
    let ws: Vec<f32> = l
        .weights
        .chunks(cols)
        .flat_map(|row| row.iter().zip(s).map(|(w, s)| w * s))
        .collect();
    let mut q = fake_quant(&ws, l.rows, cols, format, inner)?;
    for row in q.chunks_mut(cols) {
        for (v, s) in row.iter_mut().zip(s) {
            *v /= s;
        }
    }
    Ok(q)
}

/// Searches the shared input scale of `layers` (all `[rows_i, cols]`), with H (`cols × cols`,
/// f64) and the mean absolute input per channel `x_abs_mean` (`cols`).
pub fn awq(
    layers: &[AwqLayer<'_>],
    cols: usize,
    h: &[f64],
    x_abs_mean: &[f32],
    format: &Format,
    p: &AwqParams,
) -> Result<AwqOutput> {
    check_shape("awq hessian", h.len(), cols, cols)?;
    check_shape("awq input means", x_abs_mean.len(), 1, cols)?;
    for l in layers {
        check_shape("awq", l.weights.len(), l.rows, cols)?;
    }
    if x_abs_mean.iter().any(|v| !v.is_finite()) || h.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical(
            "AWQ: non-finite calibration statistics (non-finite activations)".into(),
        ));
    }
    let inner = if p.inner_hqq {
        Method::Hqq(HqqParams::default())
    } else {
        Method::Rtn
    };
    let hf: Vec<f32> = h.iter().map(|v| *v as f32).collect();
    let loss_of = |ws: &[Vec<f32>]| -> f64 {
        layers
            .iter()
            .zip(ws)
            .map(|(l, q)| reconstruction_loss(l.weights, q, cols, &hf))
            .sum()
    };
    let ones = vec![1f32; cols];
    let plain: Vec<Vec<f32>> = layers
        .iter()
        .map(|l| scaled_quant(l, cols, &ones, format, &inner))
        .collect::<Result<_>>()?;
    let loss_plain = loss_of(&plain);
    let w_mean = weight_mean(layers, cols, format.block.block_len(cols));
    let mut best = (loss_plain, 0f32, ones, plain);
    for g in 0..p.n_grid.max(1) {
        let alpha = g as f32 / p.n_grid.max(1) as f32;
        let mut s: Vec<f32> = x_abs_mean
            .iter()
            .zip(&w_mean)
            .map(|(x, w)| {
                let v = if p.duo_scaling {
                    x.powf(alpha) / (w.powf(1.0 - alpha) + 1e-4)
                } else {
                    x.powf(alpha)
                };
                v.max(1e-4)
            })
            .collect();
        let (lo, hi) = s.iter().fold((f32::INFINITY, 0f32), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
        let norm = (lo * hi).sqrt();
        if norm > 0.0 && norm.is_finite() {
            s.iter_mut().for_each(|v| *v /= norm);
        }
        if s.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            continue;
        }
        let ws: Vec<Vec<f32>> = layers
            .iter()
            .map(|l| scaled_quant(l, cols, &s, format, &inner))
            .collect::<Result<_>>()?;
        let loss = loss_of(&ws);
        if loss < best.0 {
            best = (loss, alpha, s, ws);
        }
    }
    Ok(AwqOutput {
        scales: best.2,
        alpha: best.1,
        weights: best.3,
        loss_plain,
        loss: best.0,
    })
}
