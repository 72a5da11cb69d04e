//! Per-token metrics from logits, the compact base reference, and the paired report.
//!
//! For every scored position the base model keeps (in [`BaseRef`]): the target's NLL, its
//! argmax, and its top-k log-probabilities (ids and values) — `k` ≪ V, so 64 windows × 512
//! tokens × k = 64 is 16 MiB instead of a multi-GiB logits file. The quantized run then gives
//! NLL, top-1 agreement (argmax equal) and KL(base‖quant) per token, computed over the base's
//! top-k ids plus one tail bucket holding the rest of the mass on both sides:
//!
//!   KL ≈ Σ_{i∈topk} p_i (log p_i − log q_i) + r_p (log r_p − log r_q),  r = 1 − Σ_{topk} mass
//!
//! which is the exact KL of the coarsened distributions: never above the true KL (the log-sum
//! inequality), equal to it when k ≥ V, and within a few 1e-4 nats of it for k = 64 on trained
//! models whose top-64 hold almost all mass. The report gives ΔL with a paired bootstrap CI over
//! windows (windows are the independent units; tokens inside one are not).

use rand::{Rng as _, SeedableRng as _};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One scored position: its raw logits row and the id it should predict.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenLogits<'a> {
    /// The logits row, length V.
    pub logits: &'a [f32],
    /// The target id.
    pub target: u32,
}

use crate::model::kernels::{chunk_exp_sum, chunk_max, for_chunks, LANES};

/// Log-sum-exp and argmax of a logits row in two vectorized passes: (1) the max per chunk of
/// [`LANES`] (the argmax is the first index holding the row max, found in the first chunk
/// that reaches it); (2) Σ e^{x−max}, each term by [`crate::model::kernels::exp_nonpositive`], summed in f32 per chunk
/// and in f64 across chunks. A row with a NaN gives a NaN log-sum-exp; an empty row gives
/// (−∞, 0).
pub fn row_lse_argmax(row: &[f32]) -> (f64, u32) {
    let (mut m, mut best_chunk) = (f32::NEG_INFINITY, 0);
    let mut nan = false;
    for_chunks(row, f32::NEG_INFINITY, |i, c| {
        let cm = chunk_max(c);
        nan |= cm.is_nan();
        if cm > m {
            m = cm;
            best_chunk = i;
        }
    });
    let argmax = row
        .chunks(LANES)
        .nth(best_chunk)
        .and_then(|c| c.iter().position(|&x| x == m))
        .map_or(0, |j| (best_chunk * LANES + j) as u32);
    if !m.is_finite() {
        return (f64::from(m), argmax);
    }
    // Padding with −∞ adds e^−87 ≈ 1.6e−38 per padded lane: nothing, next to the max term's 1.
    let mut s = if nan { f64::NAN } else { 0.0 };
    for_chunks(row, f32::NEG_INFINITY, |_, c| {
        s += f64::from(chunk_exp_sum(c, m))
    });
    (f64::from(m) + s.ln(), argmax)
}

/// log Σ exp over a row (see [`row_lse_argmax`]): max-shifted, relative error of each term
/// ≤ 2e−7, accumulated in f64 over chunks of f32 partial sums.
pub fn log_sum_exp(row: &[f32]) -> f64 {
    row_lse_argmax(row).0
}

/// An entry of the top-k min-heap: ordered by value (total order), then by id.
#[derive(Clone, Copy, PartialEq)]
struct Entry(f32, u32);

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed, so BinaryHeap (a max-heap) keeps the smallest kept value on top.
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// The `k` largest entries of `row` as (id, value), largest first (ties: the lower id first;
/// values in `f32::total_cmp` order); one pass, O(V log k). Once `k` entries are held, a chunk
/// of [`LANES`] whose every value is ≤ the smallest one held is skipped with one vectorized
/// test (a chunk holding a NaN is always scanned, so NaNs order exactly as before).
pub fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut heap: std::collections::BinaryHeap<Entry> =
        std::collections::BinaryHeap::with_capacity(k + 1);
    if k == 0 {
        return Vec::new();
    }
    for (ci, c) in row.chunks(LANES).enumerate() {
        if heap.len() == k {
            if let Some(min) = heap.peek() {
                let thr: f32 = min.0;
                // All lanes ≤ thr (false for a NaN lane): nothing here can enter.
                if let Ok(full) = <&[f32; LANES]>::try_from(c) {
                    // A NaN lane counts as above, so its chunk is scanned.
                    let mut any_above = 0u32;
                    for &x in full {
                        any_above |= u32::from(x > thr || x.is_nan());
                    }
                    if any_above == 0 && !thr.is_nan() && thr != 0.0 {
                        continue;
                    }
                }
            }
        }
        for (j, &x) in c.iter().enumerate() {
            let i = (ci * LANES + j) as u32;
            if heap.len() < k {
                heap.push(Entry(x, i));
            } else if let Some(min) = heap.peek() {
                if x.total_cmp(&min.0).is_gt() {
                    heap.pop();
                    heap.push(Entry(x, i));
                }
            }
        }
    }
    heap.into_sorted_vec()
        .into_iter()
        .map(|e| (e.1, e.0))
        .collect()
}

/// One base position: NLL, argmax, top entries (id, log-prob).
type BaseRecord = (f32, u32, Vec<(u32, f32)>);

/// The base model's per-token record, `k` top entries each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BaseRef {
    /// Top entries kept per token.
    pub k: usize,
    /// Scored tokens per window.
    pub per_window: usize,
    /// NLL of each target (nats).
    pub nll: Vec<f32>,
    /// Argmax id of each position.
    pub argmax: Vec<u32>,
    /// `n_tokens × k` ids of the largest probabilities.
    pub top_ids: Vec<u32>,
    /// `n_tokens × k` their log-probabilities.
    pub top_logp: Vec<f32>,
}

/// What the quantized run gives per token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TokenCompare {
    /// NLL of the target under the quantized model.
    pub nll: f32,
    /// KL(base‖quant), nats (see the module docs).
    pub kl: f32,
    /// Argmax equals the base's.
    pub agree: bool,
}

impl BaseRef {
    /// Number of scored tokens.
    pub fn n_tokens(&self) -> usize {
        self.nll.len()
    }

    /// Mean NLL per scored token (nats); 0 when empty.
    pub fn nll_mean(&self) -> f64 {
        if self.nll.is_empty() {
            return 0.0;
        }
        self.nll.iter().map(|v| f64::from(*v)).sum::<f64>() / self.nll.len() as f64
    }

    /// Appends the records of `rows` (logits and targets) with `k` entries each.
    pub fn push_rows(&mut self, rows: &[TokenLogits<'_>]) {
        let k = self.k;
        let recs: Vec<BaseRecord> = rows
            .par_iter()
            .map(|r| {
                let (lse, am) = row_lse_argmax(r.logits);
                let nll = (lse - f64::from(r.logits[r.target as usize])) as f32;
                let top = top_k(r.logits, k)
                    .into_iter()
                    .map(|(i, z)| (i, (f64::from(z) - lse) as f32))
                    .collect();
                (nll, am, top)
            })
            .collect();
        for (nll, am, top) in recs {
            self.nll.push(nll);
            self.argmax.push(am);
            for j in 0..k {
                // Rows shorter than k (V < k) pad with an impossible entry.
                let (i, lp) = top.get(j).copied().unwrap_or((u32::MAX, f32::NEG_INFINITY));
                self.top_ids.push(i);
                self.top_logp.push(lp);
            }
        }
    }

    /// Compares quantized `rows` against base tokens `first..first + rows.len()`.
    pub fn compare(&self, first: usize, rows: &[TokenLogits<'_>]) -> Vec<TokenCompare> {
        rows.par_iter()
            .enumerate()
            .map(|(j, r)| {
                let t = first + j;
                let (lse, am) = row_lse_argmax(r.logits);
                let nll = (lse - f64::from(r.logits[r.target as usize])) as f32;
                let (mut kl, mut mass_p, mut mass_q) = (0.0f64, 0.0f64, 0.0f64);
                for e in t * self.k..(t + 1) * self.k {
                    let id = self.top_ids[e];
                    let Some(&z) = r.logits.get(id as usize) else {
                        continue;
                    };
                    let lp = f64::from(self.top_logp[e]);
                    let lq = f64::from(z) - lse;
                    let p = lp.exp();
                    kl += p * (lp - lq);
                    mass_p += p;
                    mass_q += lq.exp();
                }
                let (rp, rq) = ((1.0 - mass_p).max(0.0), (1.0 - mass_q).max(1e-30));
                if rp > 1e-12 {
                    kl += rp * (rp.ln() - rq.ln());
                }
                TokenCompare {
                    nll,
                    kl: kl.max(0.0) as f32,
                    agree: am == self.argmax[t],
                }
            })
            .collect()
    }
}

/// A two-sided confidence interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

/// The evaluation of one configuration against the base.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Windows evaluated.
    pub n_windows: usize,
    /// Scored tokens.
    pub n_tokens: usize,
    /// Mean NLL of the base model (nats/token).
    pub nll_base: f64,
    /// Mean NLL of the quantized model.
    pub nll_quant: f64,
    /// exp(nll_base).
    pub ppl_base: f64,
    /// exp(nll_quant).
    pub ppl_quant: f64,
    /// ΔL = nll_quant − nll_base.
    pub delta_nll: f64,
    /// Paired bootstrap 95% interval of ΔL over windows.
    pub delta_nll_ci95: Interval,
    /// Standard error of ΔL over windows: sd(per-window ΔL)/√windows (NaN below 2 windows;
    /// reports saved before it existed read as NaN).
    #[serde(default = "not_measured")]
    pub delta_nll_se: f64,
    /// Standard error of the mean KL over windows, as for ΔL.
    #[serde(default = "not_measured")]
    pub kl_se: f64,
    /// Mean ΔL of each window (the paired comparisons between configurations use them).
    #[serde(skip)]
    pub window_delta: Vec<f64>,
    /// Mean KL(base‖quant) per token (nats).
    pub kl_mean: f64,
    /// Median per-token KL.
    pub kl_p50: f64,
    /// 90th percentile.
    pub kl_p90: f64,
    /// 99th percentile.
    pub kl_p99: f64,
    /// Fraction of positions where the argmax agrees with the base.
    pub top1_agreement: f64,
    /// Top-k entries per token the KL used.
    pub kl_top_k: usize,
    /// Bootstrap resamples behind the interval.
    pub bootstrap_resamples: usize,
}

fn percentile(sorted: &[f32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i])
}

/// Paired bootstrap: resample windows with replacement, `resamples` times, and return the
/// 2.5% / 97.5% quantiles of the mean of `per_window` (windows are equally long).
pub fn bootstrap_ci(per_window: &[f64], resamples: usize, seed: u64) -> Interval {
    let n = per_window.len();
    if n == 0 || resamples == 0 {
        return Interval {
            lo: f64::NAN,
            hi: f64::NAN,
        };
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            (0..n)
                .map(|_| per_window[rng.random_range(0..n)])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * resamples as f64) as usize).min(resamples - 1)];
    Interval {
        lo: at(0.025),
        hi: at(0.975),
    }
}

fn not_measured() -> f64 {
    f64::NAN
}

/// Standard error of the mean of `xs`: the sample standard deviation (n − 1) over √n; NaN
/// for fewer than two values.
pub fn standard_error(xs: &[f64]) -> f64 {
    let n = xs.len();
    if n < 2 {
        return f64::NAN;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt()
}

/// Builds the report from the base reference and the per-token comparisons (same order).
pub fn report(base: &BaseRef, cmp: &[TokenCompare], resamples: usize, seed: u64) -> Report {
    let n = cmp.len().min(base.n_tokens());
    let per = base.per_window.max(1);
    let n_windows = n / per;
    let mean = |xs: &mut dyn Iterator<Item = f64>| xs.sum::<f64>() / n.max(1) as f64;
    let nll_base = mean(&mut base.nll[..n].iter().map(|&x| f64::from(x)));
    let nll_quant = mean(&mut cmp[..n].iter().map(|c| f64::from(c.nll)));
    let kl_mean = mean(&mut cmp[..n].iter().map(|c| f64::from(c.kl)));
    let top1 = mean(&mut cmp[..n].iter().map(|c| f64::from(u8::from(c.agree))));
    let per_window: Vec<f64> = (0..n_windows)
        .map(|w| {
            let r = w * per..(w + 1) * per;
            r.clone()
                .map(|t| f64::from(cmp[t].nll) - f64::from(base.nll[t]))
                .sum::<f64>()
                / per as f64
        })
        .collect();
    let window_kl: Vec<f64> = (0..n_windows)
        .map(|w| {
            cmp[w * per..(w + 1) * per]
                .iter()
                .map(|c| f64::from(c.kl))
                .sum::<f64>()
                / per as f64
        })
        .collect();
    let mut kls: Vec<f32> = cmp[..n].iter().map(|c| c.kl).collect();
    kls.sort_by(f32::total_cmp);
    Report {
        n_windows,
        n_tokens: n,
        nll_base,
        nll_quant,
        ppl_base: nll_base.exp(),
        ppl_quant: nll_quant.exp(),
        delta_nll: nll_quant - nll_base,
        delta_nll_ci95: bootstrap_ci(&per_window, resamples, seed),
        delta_nll_se: standard_error(&per_window),
        kl_se: standard_error(&window_kl),
        window_delta: per_window,
        kl_mean,
        kl_p50: percentile(&kls, 0.5),
        kl_p90: percentile(&kls, 0.9),
        kl_p99: percentile(&kls, 0.99),
        top1_agreement: top1,
        kl_top_k: base.k,
        bootstrap_resamples: resamples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log-sum-exp within 1e−6 of the f64 reference and the argmax equal to the first index of
    /// the max, on rows of awkward lengths with ties, −∞ entries and large offsets.
    #[test]
    fn row_kernels_match_the_scalar_definitions() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        for len in [1usize, 5, 16, 17, 100, 32_003] {
            for case in 0..4 {
                let mut row: Vec<f32> = (0..len)
                    .map(|_| 20.0 * next() - 10.0 + 30.0 * case as f32)
                    .collect();
                if case == 1 && len > 3 {
                    // Ties at the max: the first one is the argmax.
                    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) + 1.0;
                    row[len / 2] = m;
                    row[len - 1] = m;
                    row[1] = f32::NEG_INFINITY;
                }
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let want_lse = f64::from(m)
                    + row
                        .iter()
                        .map(|&x| f64::from(x - m).exp())
                        .sum::<f64>()
                        .ln();
                let want_arg = row.iter().position(|&x| x == m).unwrap() as u32;
                let (lse, arg) = row_lse_argmax(&row);
                assert!(
                    (lse - want_lse).abs() <= 1e-6,
                    "len {len} case {case}: {lse} vs {want_lse}"
                );
                assert_eq!(arg, want_arg, "len {len} case {case}");
            }
        }
        assert_eq!(row_lse_argmax(&[]).0, f64::NEG_INFINITY);
        assert!(log_sum_exp(&[1.0, f32::NAN, 2.0]).is_nan());
    }

    /// The chunk-skipping top-k equals a full sort in `total_cmp` order (ties to the lower id),
    /// with signed zeros, repeated values and NaNs in the row.
    #[test]
    fn top_k_with_ties_zeros_and_nans_matches_a_sort() {
        let mut row: Vec<f32> = (0..1000)
            .map(|i| ((i * 37) % 101) as f32 / 10.0 - 5.0)
            .collect();
        row[3] = 0.0;
        row[500] = -0.0;
        row[700] = f32::NAN;
        row[999] = -f32::NAN;
        let mut sorted: Vec<(u32, f32)> = row
            .iter()
            .enumerate()
            .map(|(i, &x)| (i as u32, x))
            .collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for k in [1, 3, 16, 64, 500, 1000] {
            let got = top_k(&row, k);
            let ids: Vec<u32> = got.iter().map(|e| e.0).collect();
            let want: Vec<u32> = sorted[..k].iter().map(|e| e.0).collect();
            assert_eq!(ids, want, "k = {k}");
        }
        let zeros = vec![0.0f32; 40];
        let mut with_pos = zeros.clone();
        with_pos[33] = 0.0;
        with_pos[2] = -0.0;
        assert_eq!(top_k(&with_pos, 39).len(), 39);
        assert!(
            !top_k(&with_pos, 39).iter().any(|e| e.0 == 2),
            "−0 orders below +0"
        );
    }
}
