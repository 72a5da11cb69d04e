//! Fused CPU kernels of the forward pass and the evaluation (plain f32 arithmetic on
//! fixed-width chunks, which the compiler turns into SIMD; no `unsafe`).
//!
//! - [`exp_nonpositive`]: e^y for y ≤ 0 (max-shifted logits and attention scores), relative
//!   error ≤ 2e−7, branch-free so a chunk of [`LANES`] vectorizes (libm's `expf` is one call per
//!   element).
//! - [`chunk_max`], [`chunk_exp_sum`], [`for_chunks`]: the reductions the row kernels share.
//! - [`CausalSoftmax`]: softmax(scale · S + causal mask) over the last dimension of attention
//!   scores `[.., rows, keys]` in one pass (rows are query positions, `rep` consecutive rows per
//!   position, starting at position `offset`; keys after a row's position get exactly 0 and no
//!   exp), replacing the scale, mask-add and softmax passes of the unfused path and their
//!   three score-sized temporaries.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;

/// Width of the chunks the row kernels reduce lane-wise.
pub const LANES: usize = 16;

/// e^y for y ≤ 0 (y is a max-shifted logit), branch-free so a chunk vectorizes: y is clamped
/// to −87 (e^−87 ≈ 1.6e−38, below any sum that holds the row's max term, 1), n = round(y/ln 2)
/// by the 1.5·2²³ trick, r = y − n·ln 2 in two parts (Cody–Waite), e^r by its
/// degree-7 Taylor polynomial on |r| ≤ ln2/2 (truncation < 6e−9 relative) and 2ⁿ from the exponent bits.
/// Relative error ≤ 2e−7 against the exact value (tested over [−87, 0]); NaN stays NaN.
#[inline(always)]
pub fn exp_nonpositive(y: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23
                                     // A select, not f32::max: a NaN stays NaN.
    let y = if y < -87.0 { -87.0 } else { y };
    let t = y * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // n ∈ [−126, 0] sits in t's low mantissa bits (an integer subtraction, not a saturating
    // float→int cast, so the lanes stay in SIMD registers); 2ⁿ is a normal float.
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let two_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * two_n
}

/// The max of a chunk by a tree of lane-wise selects over a fixed width (SIMD max, no
/// loop-carried chain). A NaN lane may or may not win; a row with a NaN gives a NaN
/// log-sum-exp either way (its e^{x−m} is NaN).
#[inline(always)]
pub fn chunk_max(c: &[f32; LANES]) -> f32 {
    let mut m = *c;
    let mut w = LANES / 2;
    while w > 0 {
        for l in 0..w {
            m[l] = if m[l + w] > m[l] { m[l + w] } else { m[l] };
        }
        w /= 2;
    }
    m[0]
}

/// Σ e^{x − m} over a chunk, in f32 (a tree sum over the lanes).
#[inline(always)]
pub fn chunk_exp_sum(c: &[f32; LANES], m: f32) -> f32 {
    let mut e = [0.0f32; LANES];
    for l in 0..LANES {
        e[l] = exp_nonpositive(c[l] - m);
    }
    let mut w = LANES / 2;
    while w > 0 {
        for l in 0..w {
            e[l] += e[l + w];
        }
        w /= 2;
    }
    e[0]
}

/// Applies `f` to every chunk of [`LANES`] of `row` in order, the tail padded with `pad`.
#[inline(always)]
pub fn for_chunks(row: &[f32], pad: f32, mut f: impl FnMut(usize, &[f32; LANES])) {
    let full = row.chunks_exact(LANES);
    let tail = full.remainder();
    let mut n = 0;
    for c in full {
        if let Ok(c) = <&[f32; LANES]>::try_from(c) {
            f(n, c);
        }
        n += 1;
    }
    if !tail.is_empty() {
        let mut c = [pad; LANES];
        for (o, &x) in c.iter_mut().zip(tail) {
            *o = x;
        }
        f(n, &c);
    }
}

/// Softmax of `scale · s` over `row[..=i]` (keys up to query position `i`) into `dst[..=i]`,
/// zeros after it.
fn causal_softmax_row(src: &[f32], dst: &mut [f32], i: usize, scale: f32) {
    let (live_src, live_dst) = (&src[..=i], &mut dst[..=i]);
    let mut m = f32::NEG_INFINITY;
    for_chunks(live_src, f32::NEG_INFINITY, |_, c| {
        let cm = chunk_max(c) * scale;
        // scale > 0: the max of the scaled row is the scaled max.
        if cm > m || cm.is_nan() {
            m = cm;
        }
    });
    let mut sum = 0.0f32;
    let full = live_src.len() / LANES * LANES;
    for (sc, dc) in live_src[..full]
        .chunks_exact(LANES)
        .zip(live_dst[..full].chunks_exact_mut(LANES))
    {
        let mut acc = [0.0f32; LANES];
        for ((a, d), &x) in acc.iter_mut().zip(dc.iter_mut()).zip(sc) {
            *d = exp_nonpositive(x * scale - m);
            *a = *d;
        }
        let mut w = LANES / 2;
        while w > 0 {
            for l in 0..w {
                acc[l] += acc[l + w];
            }
            w /= 2;
        }
        sum += acc[0];
    }
    for (d, &x) in live_dst[full..].iter_mut().zip(&live_src[full..]) {
        *d = exp_nonpositive(x * scale - m);
        sum += *d;
    }
    let inv = 1.0 / sum;
    for d in live_dst.iter_mut() {
        *d *= inv;
    }
    for d in &mut dst[i + 1..] {
        *d = 0.0;
    }
}

/// softmax(scale · S + causal mask) over the last dimension of contiguous f32 scores
/// `[.., rows, keys]` (see the module docs): row r of each `[rows, keys]` matrix is query
/// position `offset + r / rep` and sees keys `0..=offset + r / rep`. `scale` must be positive
/// and every position below `keys`.
#[derive(Clone, Copy, Debug)]
pub struct CausalSoftmax {
    /// Multiplies the scores before the softmax (1/√head_dim).
    pub scale: f32,
    /// Consecutive rows per query position (the query heads of a GQA group), ≥ 1.
    pub rep: usize,
    /// Position of the first row.
    pub offset: usize,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(all) = storage else {
            candle_core::bail!("causal-softmax takes f32 scores")
        };
        let Some((lo, hi)) = layout.contiguous_offsets() else {
            candle_core::bail!("causal-softmax takes contiguous scores")
        };
        let dims = layout.shape().dims();
        let (rows, keys) = match dims {
            [.., r, k] => (*r, *k),
            _ => candle_core::bail!("causal-softmax takes [.., rows, keys] scores"),
        };
        let rep = self.rep.max(1);
        let last = self.offset + rows.saturating_sub(1) / rep;
        if keys == 0 || rows == 0 || last >= keys || self.scale.is_nan() || self.scale <= 0.0 {
            candle_core::bail!(
                "causal-softmax: {rows} rows from position {} ({rep} per position) over {keys} \
                 keys, scale {}",
                self.offset,
                self.scale
            );
        }
        let src = all.get(lo..hi).unwrap_or_default();
        let mut dst = vec![0.0f32; src.len()];
        let (offset, scale) = (self.offset, self.scale);
        dst.par_chunks_mut(keys)
            .zip(src.par_chunks(keys))
            .enumerate()
            .for_each(|(r, (d, s))| causal_softmax_row(s, d, offset + (r % rows) / rep, scale));
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The polynomial e^y against f64's exp on a dense grid of [−87, 0] and at its edges.
    #[test]
    fn exp_nonpositive_is_within_2e_7_relative() {
        let mut worst = 0.0f64;
        let n = 2_000_000;
        for i in 0..=n {
            let y = -87.0 * i as f32 / n as f32;
            let got = f64::from(exp_nonpositive(y));
            let want = f64::from(y).exp();
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst <= 2e-7, "worst relative error {worst:e}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(f32::NEG_INFINITY) < 1e-37);
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    /// The fused op equals scale, mask and softmax done as separate candle ops, within 1e−6:
    /// 3 rows per position (a GQA group) starting at position 5 over 17 keys.
    #[test]
    fn causal_softmax_matches_the_unfused_ops() {
        let (rep, offset, keys) = (3, 5, 17);
        let rows = rep * (keys - offset);
        let vals: Vec<f32> = (0..2 * rows * keys)
            .map(|i| ((i * 7919) % 997) as f32 / 50.0 - 10.0)
            .collect();
        let dev = candle_core::Device::Cpu;
        let s = candle_core::Tensor::from_vec(vals, (2, rows, keys), &dev).unwrap();
        let scale = 0.125f32;
        let got = s
            .apply_op1_no_bwd(&CausalSoftmax { scale, rep, offset })
            .unwrap();
        let mask: Vec<f32> = (0..rows)
            .flat_map(|r| {
                (0..keys).map(move |j| {
                    if j <= offset + r / rep {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
            })
            .collect();
        let mask = candle_core::Tensor::from_vec(mask, (rows, keys), &dev).unwrap();
        let want = candle_nn::ops::softmax_last_dim(
            &s.affine(f64::from(scale), 0.0)
                .unwrap()
                .broadcast_add(&mask)
                .unwrap(),
        )
        .unwrap();
        let (g, w) = (
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let worst = g
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "worst {worst}");
        assert!(
            g.iter().zip(&w).all(|(a, b)| (*b == 0.0) == (*a == 0.0)),
            "masked entries are 0"
        );
        // A position past the keys is refused, not read out of bounds.
        let bad = CausalSoftmax {
            scale,
            rep,
            offset: offset + 1,
        };
        assert!(s.apply_op1_no_bwd(&bad).is_err());
    }
}
