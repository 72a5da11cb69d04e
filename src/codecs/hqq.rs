//! HQQ: half-quadratic optimisation of a block's zero point (affine formats) or scale
//! (scale-only formats), needing no data.
//!
//! Reference: dropbox/hqq (mobiusml/hqq) `optimize_weights_proximal_legacy`. With our dequant
//! scale s (HQQ stores the inverse), per iteration:
//!   W_q = clamp(round(W/s + z)),  W_r = (W_q − z)·s,
//!   W_e = shrink_p(W − W_r, β) = sign·relu(|·| − |·|^(p−1)/β),
//!   z ← mean(W_q − (W − W_e)/s) over the block,  β ← κ·β,
//! and the tensor-wide mean |W − W_r| drives the early stop. Defaults p = 0.7, β = 10,
//! κ = 1.01, 20 iterations.
//!
//! Differences, stated: (1) W_r is always computed with the scale and zero rounded to their
//! storage types, so the error tracked is the error of what gets stored; (2) on early stop we
//! keep the parameters whose error was measured best (the reference keeps the zero computed in
//! that same iteration); (3) for formats without a zero point (MX, NVFP4, int-sym, NF4) the same
//! loop updates the scale by least squares, s ← ⟨W − W_e, Q⟩ / ⟨Q, Q⟩ with Q the element
//! values, projected onto the scale type (E8M0: nearest power of two). The initial point is
//! the RTN scale (and HQQ's min/max zero point).

use rayon::prelude::*;

use super::format::{BlockSize, ZeroPoint};
use super::kernel::{BlockParams, BlockStats, Kernel};
use super::method::HqqParams;
use crate::Result;

#[inline]
fn shrink(x: f32, beta: f32, p: f32) -> f32 {
    let a = x.abs();
    let t = (a - a.powf(p - 1.0) / beta).max(0.0);
    if x < 0.0 {
        -t
    } else {
        t
    }
}

/// Per-block optimisation state: raw total scale and zero point.
#[derive(Clone, Copy, Debug)]
struct State {
    scale: f32,
    zero: f32,
}

/// Returns optimised parameters for every block (`row * blocks_per_row + b`, or one entry for
/// a per-tensor block).
pub fn optimize(
    k: &Kernel,
    w: &[f32],
    rows: usize,
    cols: usize,
    hp: &HqqParams,
    global: Option<f32>,
) -> Result<Vec<BlockParams>> {
    let f = &k.format;
    if w.is_empty() || f.scale.is_none() {
        return Ok(Vec::new());
    }
    // Views of every block: (row, start, len). Per-tensor: one block spanning all of `w`.
    let blen = f.block.block_len(cols);
    let blocks: Vec<&[f32]> = if f.block == BlockSize::PerTensor {
        vec![w]
    } else {
        w.chunks(cols).flat_map(|r| r.chunks(blen)).collect()
    };
    debug_assert!(rows == 0 || !blocks.is_empty());
    let affine = f.zero != ZeroPoint::None;
    let init: Vec<BlockParams> = blocks
        .par_iter()
        .map(|xs| k.params_rtn(&BlockStats::of(xs), global))
        .collect();
    let mut state: Vec<State> = init
        .iter()
        .map(|p| State {
            scale: p.mul,
            zero: p.zero,
        })
        .collect();
    let n = w.len() as f64;
    let mut beta = hp.beta;
    let mut best_err = f64::INFINITY;
    let mut best = state.clone();
    for _ in 0..hp.iters {
        let results: Vec<(f64, State)> = blocks
            .par_iter()
            .zip(state.par_iter())
            .zip(init.par_iter())
            .map(|((xs, st), p0)| {
                if p0.nan {
                    return (0.0, *st);
                }
                let p = k.params_from_values(st.scale, st.zero, global);
                if p.nan || p.mul.is_nan() || p.mul <= 0.0 {
                    return (0.0, *st);
                }
                let (s, z) = (p.mul, p.zero);
                let mut err = 0.0f64;
                let (mut num, mut den, mut zsum) = (0.0f64, 0.0f64, 0.0f64);
                for &x in xs.iter() {
                    let code = k.encode_one(x, &p);
                    let q = k.value(code);
                    let wr = (q - z) * s;
                    err += f64::from((x - wr).abs());
                    let we = shrink(x - wr, beta, hp.lp_norm);
                    if affine {
                        zsum += f64::from(q - (x - we) / s);
                    } else {
                        num += f64::from(x - we) * f64::from(q);
                        den += f64::from(q) * f64::from(q);
                    }
                }
                let next = if affine {
                    State {
                        scale: st.scale,
                        zero: (zsum / xs.len().max(1) as f64) as f32,
                    }
                } else if den > 0.0 {
                    State {
                        scale: (num / den) as f32,
                        zero: st.zero,
                    }
                } else {
                    *st
                };
                (err, next)
            })
            .collect();
        let err = results.iter().map(|r| r.0).sum::<f64>() / n;
        if err < best_err {
            best_err = err;
            best.clone_from(&state);
        } else if hp.early_stop {
            break;
        }
        state = results.into_iter().map(|r| r.1).collect();
        beta *= hp.kappa;
    }
    Ok(best
        .iter()
        .zip(&init)
        .map(|(st, p0)| {
            if p0.nan {
                *p0
            } else {
                k.params_from_values(st.scale, st.zero, global)
            }
        })
        .collect())
}
