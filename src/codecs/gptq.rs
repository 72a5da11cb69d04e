//! GPTQ: error-feedback rounding of one linear layer onto any format's grid, given the Hessian
//! of its layer-wise reconstruction loss (DESIGN §3; Frantar et al. 2022, IST-DASLab/gptq).
//!
//! Problem: minimise ‖W X − Ŵ X‖² over Ŵ on the format's grid, W `rows × cols` (`[out, in]`,
//! blocks along cols = K), X the calibration inputs, H = 2·X Xᵀ / n (`cols × cols`, f64).
//! Columns are rounded one at a time; the error of column i, divided by U_ii, is pushed onto the
//! not-yet-rounded columns through row i of U, the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU).
//!
//! As the reference: dead inputs (H_ii = 0) get H_ii = 1 and W[:, i] = 0; damping
//! `percdamp · mean(diag H)` on the diagonal; lazy blocks of `block_cols` columns (errors inside a
//! block are applied at once, the trailing columns get one GEMM per block); act-order (columns
//! by decreasing H_ii). Block parameters (scale, zero point, per the format's RTN rule):
//! - without act-order, every block of Qb columns is fitted when its first column comes up, on
//!   the *current* (error-updated) weights of that block — the MX shared E8M0 exponent included.
//!   Lazy blocks are cut so that a Qb block never straddles two of them, which makes "current"
//!   exact (the reference fits on `W`, stale inside a lazy block when Qb < block_cols);
//! - with act-order, blocks are "static groups": fitted once on the original weights, so a
//!   block's scale stays attached to Qb contiguous columns whatever the processing order;
//! - per-channel and per-tensor scales (and NVFP4's global scale) are fitted once, up front.
//!
//! Differences, stated: H⁻¹'s Cholesky factor is computed in f64 from one Cholesky of H with
//! rows and columns reversed (U = J·L'⁻¹·J with J·H·J = L'L'ᵀ), cheaper than the reference's
//! Cholesky → inverse → Cholesky and the same matrix; when H + damping is not positive
//! definite, the damping is multiplied by 10 (at most 4 times) and the factor actually used is
//! reported. The rounding itself runs in f32, as the reference does on the GPU.
//!
//! Invariant (tested): with H = I the result equals round-to-nearest bit for bit.

use rayon::prelude::*;

use super::format::BlockSize;
use super::kernel::{BlockParams, BlockStats, Kernel};
use super::linalg::gemm_rm;
pub use super::method::GptqParams;
use super::tensor::{blocks_per_row, check_shape, tensor_stats};
use super::Format;
use crate::{Error, Result};

/// What GPTQ produced for one layer.
#[derive(Clone, Debug)]
pub struct GptqOutput {
    /// Fake-quantized weights `rows × cols`, original column order.
    pub weights: Vec<f32>,
    /// Block parameters used, `row * blocks_per_row + block` (one entry for per-tensor).
    pub params: Vec<BlockParams>,
    /// NVFP4-style global scale, when the format has one.
    pub global: Option<f32>,
    /// Damping actually added to the diagonal (absolute).
    pub damp: f64,
    /// Inputs whose H_ii was 0.
    pub dead_cols: usize,
    /// The reference's loss: Σ (w − q)² / U_ii² / 2 over all weights.
    pub proxy_loss: f64,
}

/// Upper-triangular U with UᵀU = (H + damp·I)⁻¹, row-major f32, for symmetric `h` (`n × n`).
/// Returns U and the damping used. Fails with [`Error::Numerical`] when H stays indefinite.
pub fn inverse_cholesky_upper(h: &[f64], n: usize, percdamp: f64) -> Result<(Vec<f32>, f64)> {
    check_shape("gptq hessian", h.len(), n, n)?;
    let mean_diag = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n.max(1) as f64;
    let base = if mean_diag > 0.0 && mean_diag.is_finite() {
        mean_diag
    } else {
        1.0
    };
    let mut damp = percdamp * base;
    for _ in 0..5 {
        // J·(H + damp I)·J: reverse rows and columns.
        let mut l: Vec<f64> = (0..n * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                h[(n - 1 - r) * n + (n - 1 - c)] + if r == c { damp } else { 0.0 }
            })
            .collect();
        if cholesky_lower_in_place(&mut l, n) {
            let x = invert_lower(&l, n);
            // U = J·L'⁻¹·J (upper triangular).
            let mut u = vec![0f32; n * n];
            for r in 0..n {
                for c in r..n {
                    u[r * n + c] = x[(n - 1 - r) * n + (n - 1 - c)] as f32;
                }
            }
            if u.iter().all(|v| v.is_finite()) {
                return Ok((u, damp));
            }
        }
        damp *= 10.0;
    }
    Err(Error::Numerical(format!(
        "GPTQ: the {n} × {n} Hessian is not positive definite even with damping {:.3e} \
         (are the calibration inputs finite?)",
        damp / 10.0
    )))
}

/// ⟨a, b⟩ with four accumulators (so that it vectorises).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Cholesky–Crout of the row-major symmetric `a` (`n × n`): on success its lower triangle holds
/// L with A = L·Lᵀ and the strict upper triangle is zeroed; false when A is not positive
/// definite. n³/6 multiply–adds as contiguous dot products.
fn cholesky_lower_in_place(a: &mut [f64], n: usize) -> bool {
    for i in 0..n {
        for j in 0..=i {
            let (done, row_i) = a.split_at_mut(i * n);
            let s = if j < i {
                let row_j = &done[j * n..j * n + j];
                row_i[j] - dot(&row_i[..j], row_j)
            } else {
                row_i[i] - dot(&row_i[..i], &row_i[..i])
            };
            if j == i {
                if !(s > 0.0 && s.is_finite()) {
                    return false;
                }
                row_i[i] = s.sqrt();
            } else {
                let d = done[j * n + j];
                row_i[j] = s / d;
            }
        }
        a[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    true
}

/// X = L⁻¹ for lower-triangular row-major `l` with a positive diagonal: row i of X is
/// −(Σ_{k<i} L_ik·X_k)/L_ii plus 1/L_ii on the diagonal (n³/6 multiply–adds as axpys).
fn invert_lower(l: &[f64], n: usize) -> Vec<f64> {
    let mut x = vec![0f64; n * n];
    let mut acc = vec![0f64; n];
    for i in 0..n {
        acc[..i].fill(0.0);
        for k in 0..i {
            let lik = l[i * n + k];
            if lik != 0.0 {
                for (a, v) in acc[..=k].iter_mut().zip(&x[k * n..k * n + k + 1]) {
                    *a += lik * v;
                }
            }
        }
        let d = l[i * n + i];
        for c in 0..i {
            x[i * n + c] = -acc[c] / d;
        }
        x[i * n + i] = 1.0 / d;
    }
    x
}

/// Block-parameter source for a column.
enum Groups {
    /// Fitted when a Qb block starts, on the current weights (no act-order).
    Dynamic { qb: usize },
    /// Precomputed per `row * bpr + block` (or one per tensor), indexed by original column.
    Static {
        params: Vec<BlockParams>,
        qb: usize,
        bpr: usize,
        per_tensor: bool,
    },
}

/// RTN parameters of every block of `w` (the static groups).
fn static_params(
    k: &Kernel,
    w: &[f32],
    rows: usize,
    cols: usize,
    global: Option<f32>,
) -> Vec<BlockParams> {
    if k.format.block == BlockSize::PerTensor {
        return vec![k.params_rtn(&tensor_stats(w, cols), global)];
    }
    let blen = k.format.block.block_len(cols);
    w.par_chunks(cols)
        .take(rows)
        .flat_map_iter(|row| {
            row.chunks(blen)
                .map(|b| k.params_rtn(&BlockStats::of(b), global))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What GPTQ needs from H, computed once and shared by every layer reading the same input
/// (q, k, v; gate, up): dead inputs, the column order and U.
#[derive(Clone, Debug)]
pub struct GptqFactor {
    /// Columns.
    pub cols: usize,
    /// Inputs with H_ii = 0 (their weights are zeroed before rounding).
    pub dead: Vec<bool>,
    /// Processing order of the columns (identity without act-order).
    pub perm: Vec<usize>,
    /// Upper U with UᵀU = (H_perm + damp·I)⁻¹, row-major `cols × cols`.
    pub u: Vec<f32>,
    /// Damping added to the diagonal.
    pub damp: f64,
    /// Whether columns are processed by decreasing H_ii.
    pub act_order: bool,
}

impl GptqFactor {
    /// Prepares H (`cols × cols`, row-major, symmetric, f64).
    pub fn new(h: &[f64], cols: usize, p: &GptqParams) -> Result<Self> {
        check_shape("gptq hessian", h.len(), cols, cols)?;
        if h.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical(
                "GPTQ: the Hessian has non-finite entries (non-finite calibration activations)"
                    .into(),
            ));
        }
        let mut h = h.to_vec();
        let mut dead = vec![false; cols];
        for (i, d) in dead.iter_mut().enumerate() {
            if h[i * cols + i] == 0.0 {
                h[i * cols + i] = 1.0;
                *d = true;
            }
        }
        let mut perm: Vec<usize> = (0..cols).collect();
        if p.act_order {
            perm.sort_by(|&a, &b| h[b * cols + b].total_cmp(&h[a * cols + a]));
        }
        let identity = perm.iter().enumerate().all(|(i, &c)| i == c);
        if !identity {
            let mut hp = vec![0f64; cols * cols];
            for (i, &a) in perm.iter().enumerate() {
                for (j, &b) in perm.iter().enumerate() {
                    hp[i * cols + j] = h[a * cols + b];
                }
            }
            h = hp;
        }
        let (u, damp) = inverse_cholesky_upper(&h, cols, p.percdamp)?;
        Ok(Self {
            cols,
            dead,
            perm,
            u,
            damp,
            act_order: p.act_order,
        })
    }
}

/// Runs GPTQ on `w` (`rows × cols`, row-major `[out, in]`) with Hessian `h` (`cols × cols`,
/// row-major, symmetric), rounding onto `format`.
pub fn gptq(
    w: &[f32],
    rows: usize,
    cols: usize,
    h: &[f64],
    format: &Format,
    p: &GptqParams,
) -> Result<GptqOutput> {
    check_shape("gptq", w.len(), rows, cols)?;
    let factor = GptqFactor::new(h, cols, p)?;
    gptq_factored(w, rows, cols, &factor, format, p)
}

/// The checks GPTQ makes on a layer before touching it: shape, the factor's fit, finite weights.
fn check_layer(
    w: &[f32],
    rows: usize,
    cols: usize,
    factor: &GptqFactor,
    p: &GptqParams,
) -> Result<()> {
    check_shape("gptq", w.len(), rows, cols)?;
    if factor.cols != cols || factor.act_order != p.act_order {
        return Err(Error::Shape {
            op: "gptq",
            detail: format!(
                "factor prepared for {} columns (act-order {}), layer has {cols} (act-order {})",
                factor.cols, factor.act_order, p.act_order
            ),
        });
    }
    if let Some(bad) = w.iter().position(|v| !v.is_finite()) {
        return Err(Error::Numerical(format!(
            "GPTQ: weight ({}, {}) is {} — only finite weights can be calibrated",
            bad / cols.max(1),
            bad % cols.max(1),
            w[bad]
        )));
    }
    Ok(())
}

/// `w` (`rows × cols`) with its columns reordered: column j of the result is column `perm[j]` of
/// `w`, or, with `inverse`, the other way round.
fn permute_columns(w: &[f32], rows: usize, cols: usize, perm: &[usize], inverse: bool) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for (j, &c) in perm.iter().enumerate() {
            if inverse {
                out[r * cols + c] = w[r * cols + j];
            } else {
                out[r * cols + j] = w[r * cols + c];
            }
        }
    }
    out
}

/// What every row's pass through a lazy block shares.
struct RowPass<'a> {
    k: &'a Kernel,
    groups: &'a Groups,
    u: &'a [f32],
    perm: &'a [usize],
    cols: usize,
    global: Option<f32>,
}

impl RowPass<'_> {
    /// Quantizes columns `span` of row `r` (permuted order) one at a time, spreading each
    /// error over the rest of the lazy block; records the scaled errors in `e` and fitted block
    /// parameters in `row_params`; returns the row's proxy loss.
    fn row(
        &self,
        r: usize,
        row: &mut [f32],
        e: &mut [f32],
        row_params: &mut [BlockParams],
        span: std::ops::Range<usize>,
    ) -> f64 {
        let (k, u, perm, cols, global) = (self.k, self.u, self.perm, self.cols, self.global);
        let (i1, i2) = (span.start, span.end);
        let mut loss = 0f64;
        let mut cur = k.params_rtn(&BlockStats::EMPTY, global);
        for i in span {
            let params = match self.groups {
                Groups::Dynamic { qb } => {
                    // i1 is a multiple of Qb, so every block starts inside this pass.
                    if i % qb == 0 {
                        let end = (i + qb).min(cols);
                        cur = k.params_rtn(&BlockStats::of(&row[i..end]), global);
                        if let Some(slot) = row_params.get_mut(i / qb) {
                            *slot = cur;
                        }
                    }
                    cur
                }
                Groups::Static {
                    params,
                    qb,
                    bpr,
                    per_tensor,
                } => {
                    let idx = if *per_tensor {
                        0
                    } else {
                        r * bpr + perm[i] / qb
                    };
                    params.get(idx).copied().unwrap_or(cur)
                }
            };
            let x = row[i];
            let mut q = [0f32];
            k.fake_block(&[x], &params, &mut q);
            let d = u[i * cols + i];
            let ei = (x - q[0]) / d;
            loss += f64::from(ei) * f64::from(ei) / 2.0;
            row[i] = q[0];
            e[i - i1] = ei;
            let urow = &u[i * cols + i + 1..i * cols + i2];
            for (wj, uj) in row[i + 1..i2].iter_mut().zip(urow) {
                *wj -= ei * uj;
            }
        }
        loss
    }
}

/// GPTQ with a prepared [`GptqFactor`] (`p.act_order` must be the factor's).
pub fn gptq_factored(
    w: &[f32],
    rows: usize,
    cols: usize,
    factor: &GptqFactor,
    format: &Format,
    p: &GptqParams,
) -> Result<GptqOutput> {
    check_layer(w, rows, cols, factor, p)?;
    let k = Kernel::new(format)?;
    if w.is_empty() {
        return Ok(GptqOutput {
            weights: Vec::new(),
            params: Vec::new(),
            global: None,
            damp: factor.damp,
            dead_cols: 0,
            proxy_loss: 0.0,
        });
    }
    let (perm, u, damp) = (&factor.perm, &factor.u, factor.damp);
    // Dead inputs.
    let mut w = w.to_vec();
    let dead_cols = factor.dead.iter().filter(|d| **d).count();
    if dead_cols > 0 {
        for row in w.chunks_mut(cols) {
            for (v, d) in row.iter_mut().zip(&factor.dead) {
                if *d {
                    *v = 0.0;
                }
            }
        }
    }
    let global = k.global_scale(&tensor_stats(&w, cols));
    let bpr = blocks_per_row(format, cols);
    let qb = format.block.block_len(cols);
    let groups = match format.block {
        BlockSize::Elements(_) if !p.act_order => Groups::Dynamic { qb },
        _ => Groups::Static {
            params: static_params(&k, &w, rows, cols, global),
            qb,
            bpr,
            per_tensor: format.block == BlockSize::PerTensor,
        },
    };
    let identity = perm.iter().enumerate().all(|(i, &c)| i == c);
    let mut wp = if identity {
        w
    } else {
        permute_columns(&w, rows, cols, perm, false)
    };

    // Lazy block width: a multiple of Qb when blocks are fitted dynamically.
    let bc = (p.block_cols.max(1) as usize).min(cols);
    let width = match groups {
        Groups::Dynamic { qb } if qb <= bc => (bc / qb) * qb,
        Groups::Dynamic { qb } => qb,
        Groups::Static { .. } => bc,
    };
    // Parameters fitted on the fly (dynamic groups), one slot per (row, block) in every mode so
    // that rows zip with their slots.
    let mut fitted = vec![k.params_rtn(&BlockStats::EMPTY, global); rows * bpr.max(1)];
    let mut proxy_loss = 0f64;
    let mut err = vec![0f32; rows * width];
    let pass = RowPass {
        k: &k,
        groups: &groups,
        u,
        perm,
        cols,
        global,
    };
    let mut i1 = 0;
    while i1 < cols {
        let i2 = (i1 + width).min(cols);
        let bw = i2 - i1;
        // Inside the lazy block: every row independently.
        let loss: f64 = wp
            .par_chunks_mut(cols)
            .zip(err.par_chunks_mut(width))
            .zip(fitted.par_chunks_mut(bpr.max(1)))
            .enumerate()
            .map(|(r, ((row, e), row_params))| pass.row(r, row, e, row_params, i1..i2))
            .sum();
        proxy_loss += loss;
        // Trailing columns: W[:, i2:] −= Err · U[i1:i2, i2:] (one GEMM, rows split over threads).
        let rest = cols - i2;
        if rest > 0 {
            let chunk = 64usize;
            wp.par_chunks_mut(cols * chunk)
                .zip(err.par_chunks(width * chunk))
                .for_each(|(wc, ec)| {
                    let m = wc.len() / cols;
                    gemm_rm(
                        (m, bw, rest),
                        -1.0,
                        (ec, width),
                        (&u[i1 * cols + i2..], cols),
                        1.0,
                        (&mut wc[i2..], cols),
                    );
                });
        }
        i1 = i2;
    }
    // Undo the permutation.
    let weights = if identity {
        wp
    } else {
        permute_columns(&wp, rows, cols, perm, true)
    };
    let params = match groups {
        Groups::Dynamic { .. } => fitted,
        Groups::Static { params, .. } => params,
    };
    Ok(GptqOutput {
        weights,
        params,
        global,
        damp,
        dead_cols,
        proxy_loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    #[test]
    fn reversed_cholesky_equals_cholesky_of_inverse() {
        let n = 7;
        let a = DMatrix::<f64>::from_fn(n, n, |r, c| ((r * 3 + c * 5) % 7) as f64 - 3.0);
        let h = &a * a.transpose() + DMatrix::<f64>::identity(n, n);
        let hv: Vec<f64> = (0..n * n).map(|i| h[(i / n, i % n)]).collect();
        let (u, damp) = inverse_cholesky_upper(&hv, n, 0.0).unwrap();
        assert_eq!(damp, 0.0);
        let inv = (h).try_inverse().unwrap();
        let ur = inv.cholesky().unwrap().l().transpose();
        for r in 0..n {
            for c in 0..n {
                let want = ur[(r, c)];
                assert!((f64::from(u[r * n + c]) - want).abs() < 1e-5 * (1.0 + want.abs()));
            }
        }
    }

    #[test]
    fn strided_gemm_matches_naive_at_every_size() {
        for (m, k, n) in [(1, 1, 1), (2, 3, 4), (5, 5, 5), (7, 6, 9), (13, 17, 11)] {
            let (lda, ldb, ldc) = (k + 2, n + 3, n + 1);
            let a: Vec<f32> = (0..m * lda).map(|i| (i % 7) as f32 - 3.0).collect();
            let b: Vec<f32> = (0..k * ldb).map(|i| (i % 5) as f32 * 0.5).collect();
            let mut c: Vec<f32> = (0..m * ldc).map(|i| i as f32).collect();
            let mut want = c.clone();
            for r in 0..m {
                for j in 0..n {
                    let dot: f32 = (0..k).map(|t| a[r * lda + t] * b[t * ldb + j]).sum();
                    want[r * ldc + j] = 0.5 * want[r * ldc + j] - 2.0 * dot;
                }
            }
            gemm_rm((m, k, n), -2.0, (&a, lda), (&b, ldb), 0.5, (&mut c, ldc));
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{m}×{k}×{n}");
            }
        }
    }

    #[test]
    fn indefinite_hessian_gets_more_damping() {
        // Rank-one H: singular, fine once damped.
        let n = 4;
        let v = [1.0, 2.0, -1.0, 0.5];
        let h: Vec<f64> = (0..n * n).map(|i| v[i / n] * v[i % n]).collect();
        let (u, damp) = inverse_cholesky_upper(&h, n, 0.01).unwrap();
        assert!(damp > 0.0 && u.iter().all(|x| x.is_finite()));
        // Negative definite: refused with a clear error.
        let neg: Vec<f64> = (0..n * n)
            .map(|i| if i / n == i % n { -1e6 } else { 0.0 })
            .collect();
        let e = inverse_cholesky_upper(&neg, n, 0.01).unwrap_err();
        assert!(e.to_string().contains("not positive definite"), "{e}");
    }
}
