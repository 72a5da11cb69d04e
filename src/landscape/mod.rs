//! Loss landscape around a checkpoint: slices of the held-out loss along the direction a quantizer
//! moves the weights, and along filter-normalised random directions (DESIGN §8).
//!
//! Scope: the quantizable linear weights (the tensors quantization moves); embeddings, norms and
//! biases stay at their trained values. Directions are per linear site, `[out, in]` row-major.
//! - Quantization direction u = W_q − W for a format × method × Qb; points on it are written
//!   (1 − t)·W + t·W_q, so t = 0 is exactly the base model and t = 1 exactly the quantized one
//!   (bit for bit: both evaluations then see identical weights).
//! - Random direction: N(0, 1) entries (seeded per site), filter-normalised per output row:
//!   d_row ← d_row · ‖w_row‖ / (‖d_row‖ + 1e−10); points are W + t·d.
//!
//! - Top Hessian eigenvector (`hessian[:SEED]`): power iteration on the slice's own loss
//!   (see [`hessian`]), scaled so that ‖d‖ equals the norm of the covered weights; points are
//!   W + t·d. Its sign is fixed so the largest-magnitude entry is positive.
//!
//! Any direction can be restricted to some sites ([`SiteFilter`]: blocks and/or tensor kinds);
//! uncovered sites keep their trained weights (zero direction, W_q = W).
//!
//! Slices evaluate the mean NLL (nats/token) on fixed windows through the weight-override hook
//! (the model is loaded once), several grid points at once (one per rayon thread, each with its
//! own weight overrides) with progress and cancel between them; 1-D slices then refine next to
//! t = 0 and t = 1 ([`refine`]).

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

pub mod features;
pub mod hessian;
pub mod predictor;
pub mod sites;

pub use sites::SiteFilter;

use crate::codecs::{fake_quant, Format, Method};
use crate::eval::windows::{make_windows, WindowSpec};
use crate::eval::Evaluator;
use crate::model::quantized::Overrides;
use crate::model::{NoHooks, Tokenizer, Transformer};
use crate::{Error, Result};

/// What a direction is.
#[derive(Clone, Debug, PartialEq)]
pub enum DirectionSpec {
    /// u = W_q − W.
    Quant {
        /// Format (with its block size).
        format: Format,
        /// Method.
        method: Method,
    },
    /// A filter-normalised Gaussian direction.
    Random {
        /// Seed.
        seed: u64,
    },
    /// The top Hessian eigenvector of the loss being sliced.
    Hessian {
        /// Seed of the power iteration's start vector.
        seed: u64,
    },
}

impl DirectionSpec {
    /// Parses `quant:FORMAT[:QB[:METHOD]]` (e.g. `quant:mxfp4:32`, `quant:int4_asym:128:hqq`),
    /// `random:SEED` or `hessian[:SEED]`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Input(format!("direction `{s}`: {why}"));
        let mut parts = s.split(':');
        match parts.next() {
            Some("quant") => {
                let f = parts.next().ok_or_else(|| bad("quant needs a format"))?;
                let mut format = Format::parse(f)?;
                if let Some(qb) = parts.next().filter(|q| !q.is_empty()) {
                    format = format.with_block(qb.parse()?);
                }
                let method: Method = parts.next().unwrap_or("rtn").parse()?;
                if method.needs_calibration() {
                    return Err(bad(
                        "calibrated methods (gptq, awq) are not supported here yet",
                    ));
                }
                Ok(Self::Quant { format, method })
            }
            Some("random") => {
                let seed = parts
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .map_err(|_| bad("random:SEED needs an integer seed"))?;
                Ok(Self::Random { seed })
            }
            Some("hessian") => {
                let seed = parts
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .map_err(|_| bad("hessian:SEED needs an integer seed"))?;
                Ok(Self::Hessian { seed })
            }
            _ => Err(bad(
                "expected quant:FORMAT[:QB[:METHOD]], random:SEED or hessian[:SEED]",
            )),
        }
    }
}

/// A direction over the linear weights.
#[derive(Clone, Debug)]
pub struct Direction {
    /// How it was made.
    pub spec: DirectionSpec,
    /// Per linear site, `[out, in]`: u (quant) or d (random).
    pub delta: Vec<Vec<f32>>,
    /// Per linear site, W_q (quant directions only): the exact endpoint at t = 1.
    pub endpoint: Option<Vec<Vec<f32>>>,
    /// ‖delta‖ over all sites.
    pub norm: f64,
    /// The eigenvalue of a Hessian direction.
    pub eigenvalue: Option<f64>,
}

/// What a direction covers and, for Hessian directions, the loss whose curvature it follows.
pub struct Scope<'a> {
    /// One flag per linear site (see [`SiteFilter::mask`]).
    pub mask: Vec<bool>,
    /// The loss (with gradients) at the model's weights; needed by `hessian` directions.
    pub loss: Option<&'a dyn hessian::LossGrad>,
}

impl Scope<'_> {
    /// Every site, no loss.
    pub fn all(model: &Transformer) -> Self {
        Scope {
            mask: vec![true; model.linears.len()],
            loss: None,
        }
    }
}

/// The model's linear weights, `[out, in]` per site.
pub fn linear_weights(model: &Transformer) -> Result<Vec<Vec<f32>>> {
    (0..model.linears.len())
        .map(|i| Ok(model.linear(i)?.weight.flatten_all()?.to_vec1::<f32>()?))
        .collect()
}

/// Scales each row (`cols` long) of `d` to the norm of the same row of `w`.
pub fn filter_normalize(d: &mut [f32], w: &[f32], cols: usize) {
    for (dr, wr) in d.chunks_mut(cols.max(1)).zip(w.chunks(cols.max(1))) {
        let nd = dr.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        let nw = wr.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        let s = (nw / (nd + 1e-10)) as f32;
        dr.iter_mut().for_each(|v| *v *= s);
    }
}

/// A standard normal draw (Box–Muller).
fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Builds a direction over every linear site of `model` (whose linear weights are `weights`);
/// `hessian` directions need [`build_in`] with a loss.
pub fn build(model: &Transformer, weights: &[Vec<f32>], spec: &DirectionSpec) -> Result<Direction> {
    build_in(model, weights, spec, &Scope::all(model))
}

/// Builds a direction over the sites of `scope`.
pub fn build_in(
    model: &Transformer,
    weights: &[Vec<f32>],
    spec: &DirectionSpec,
    scope: &Scope<'_>,
) -> Result<Direction> {
    let covered = |i: usize| scope.mask.get(i).copied().unwrap_or(false);
    let mut delta = Vec::with_capacity(weights.len());
    let mut endpoint = None;
    let mut eigenvalue = None;
    match spec {
        DirectionSpec::Quant { format, method } => {
            let mut ends = Vec::with_capacity(weights.len());
            for (i, (site, w)) in model.linears.iter().zip(weights).enumerate() {
                let q = if covered(i) {
                    fake_quant(w, site.out_features, site.in_features, format, method)?
                } else {
                    w.clone()
                };
                delta.push(q.iter().zip(w).map(|(a, b)| a - b).collect());
                ends.push(q);
            }
            endpoint = Some(ends);
        }
        DirectionSpec::Random { seed } => {
            for (i, (site, w)) in model.linears.iter().zip(weights).enumerate() {
                let mut rng = rand::rngs::StdRng::seed_from_u64(
                    seed.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64),
                );
                let mut d: Vec<f32> = (0..w.len()).map(|_| gaussian(&mut rng)).collect();
                if covered(i) {
                    filter_normalize(&mut d, w, site.in_features);
                } else {
                    d.iter_mut().for_each(|v| *v = 0.0);
                }
                delta.push(d);
            }
        }
        DirectionSpec::Hessian { seed } => {
            let loss = scope.loss.ok_or_else(|| {
                Error::Input("a hessian direction needs the loss it follows (use build_in)".into())
            })?;
            let masked = hessian::Masked {
                inner: loss,
                mask: &scope.mask,
            };
            let o = hessian::ProbeOptions {
                seed: *seed,
                max_iter: 30,
                ..hessian::ProbeOptions::default()
            };
            let (lambda, v, _, _) = hessian::top_eigenvalue(&masked, weights, &o)?;
            let w_norm = weights
                .iter()
                .enumerate()
                .filter(|(i, _)| covered(*i))
                .flat_map(|(_, w)| w.iter())
                .map(|x| f64::from(*x).powi(2))
                .sum::<f64>()
                .sqrt();
            let peak = v
                .iter()
                .flatten()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(0.0);
            let s = if peak < 0.0 { -w_norm } else { w_norm } as f32;
            delta = v
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let on = if covered(i) { s } else { 0.0 };
                    b.iter().map(|x| x * on).collect()
                })
                .collect();
            eigenvalue = Some(lambda);
        }
    }
    let norm = delta
        .iter()
        .flatten()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    Ok(Direction {
        spec: spec.clone(),
        delta,
        endpoint,
        norm,
        eigenvalue,
    })
}

/// Weight overrides at W + a·d1 (+ b·d2): quant directions use (1 − a)·W + a·W_q so that a = 0
/// and a = 1 are exact.
pub fn point(
    model: &Transformer,
    weights: &[Vec<f32>],
    d1: (&Direction, f64),
    d2: Option<(&Direction, f64)>,
) -> Result<Overrides> {
    let mut out = Overrides::default();
    for (i, (site, w)) in model.linears.iter().zip(weights).enumerate() {
        let (dir, a) = d1;
        let a32 = a as f32;
        let mut v: Vec<f32> = match &dir.endpoint {
            Some(ends) => w
                .iter()
                .zip(&ends[i])
                .map(|(x, q)| (1.0 - a32) * x + a32 * q)
                .collect(),
            None => w
                .iter()
                .zip(&dir.delta[i])
                .map(|(x, d)| x + a32 * d)
                .collect(),
        };
        if let Some((dir2, b)) = d2 {
            let b32 = b as f32;
            v.iter_mut()
                .zip(&dir2.delta[i])
                .for_each(|(x, d)| *x += b32 * d);
        }
        let dev = model.linear(i)?.weight.device().clone();
        out.weights.push(Some(candle_core::Tensor::from_vec(
            v,
            (site.out_features, site.in_features),
            &dev,
        )?));
    }
    Ok(out)
}

/// A computed slice: 1-D (`beta` empty) or 2-D (`values` row-major, one row per β).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Slice {
    /// First direction as spelled.
    pub direction1: String,
    /// Second direction, for 2-D slices.
    pub direction2: Option<String>,
    /// ‖d1‖ and ‖d2‖ over the linear weights.
    pub norms: Vec<f64>,
    /// Steps along d1.
    pub alpha: Vec<f64>,
    /// Steps along d2 (empty for 1-D).
    pub beta: Vec<f64>,
    /// Mean NLL (nats/token) at each point.
    pub values: Vec<f64>,
    /// Mean NLL of the unmodified model on the same windows.
    pub nll_base: f64,
    /// Windows × tokens evaluated per point.
    pub n_windows: usize,
    /// Tokens per window.
    pub ctx: usize,
    /// Where other block sizes of a quant direction land along it: (label, t* = ⟨u_c, u⟩/‖u‖²).
    #[serde(default)]
    pub marks: Vec<(String, f64)>,
    /// Sites the directions cover (`all`, or e.g. `layers 0,1 · kinds mlp`).
    #[serde(default = "all_sites")]
    pub sites: String,
    /// Eigenvalues of Hessian directions, in direction order (`None` for other kinds).
    #[serde(default)]
    pub eigenvalues: Vec<Option<f64>>,
}

fn all_sites() -> String {
    "all".into()
}

/// What to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// First direction (`quant:…` or `random:…`).
    pub direction1: String,
    /// Second direction for a 2-D slice.
    pub direction2: Option<String>,
    /// Range along the first direction.
    pub range1: (f64, f64),
    /// Range along the second direction.
    pub range2: (f64, f64),
    /// Points per axis (0 and 1 added when inside).
    pub grid: usize,
    /// Held-out text: a bundled split name or a file.
    pub data: String,
    /// Windows per point.
    pub windows: usize,
    /// Tokens per window (capped by the model).
    pub ctx: usize,
    /// Window seed.
    pub seed: u64,
    /// Codecs whose landing points are marked along a quant first direction: block sizes of the
    /// same format (`64`) or other formats (`nvfp4`, `int4_asym:64`); see [`landing_points`].
    pub marks: Vec<String>,
    /// Sites the directions cover.
    pub sites: SiteFilter,
    /// Halvings of the 1-D intervals next to t = 0 and t = 1 (see [`refine`]; 0 = none).
    pub refine_levels: usize,
}

/// Where other codecs land along the quant direction `d1`: t* = ⟨u_c, u⟩ / ‖u‖² for each entry
/// of `marks` — a block size (`64`: the same format and method at that Qb) or another format
/// (`nvfp4`, `int4_asym:64`: that format with the same method, at its own Qb or the one given).
pub fn landing_points(
    model: &Transformer,
    weights: &[Vec<f32>],
    d1: &Direction,
    marks: &[String],
    scope: &Scope<'_>,
) -> Result<Vec<(String, f64)>> {
    let DirectionSpec::Quant { format, method } = &d1.spec else {
        return Ok(Vec::new());
    };
    let uu = d1.norm * d1.norm;
    let mut out = Vec::new();
    for m in marks {
        let other = match m.parse::<crate::codecs::BlockSize>() {
            Ok(qb) => format.with_block(qb),
            Err(_) => {
                let (f, qb) = m.split_once(':').unwrap_or((m.as_str(), ""));
                let f = Format::parse(f)?;
                if qb.is_empty() {
                    f
                } else {
                    f.with_block(qb.parse()?)
                }
            }
        };
        let label = format!("{} Qb {}", codec_name(&other), other.block.id());
        let spec = DirectionSpec::Quant {
            format: other,
            method: *method,
        };
        let d = build_in(model, weights, &spec, scope)?;
        let dot: f64 = d
            .delta
            .iter()
            .flatten()
            .zip(d1.delta.iter().flatten())
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        if uu > 0.0 {
            out.push((label, dot / uu));
        }
    }
    Ok(out)
}

/// A format's preset name whatever its block size (`mxfp4`), else its spelling.
pub fn codec_name(f: &Format) -> String {
    crate::codecs::PRESET_NAMES
        .iter()
        .find(|n| Format::preset(n).map(|p| p.with_block(f.block)) == Some(*f))
        .map_or_else(|| f.to_string(), |n| n.to_string())
}

/// Loads the checkpoint in `dir` once and computes the requested slice (with landing points).
pub fn compute(
    dir: &std::path::Path,
    r: &Request,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Slice> {
    let spec1 = DirectionSpec::parse(&r.direction1)?;
    let spec2 = r
        .direction2
        .as_deref()
        .map(DirectionSpec::parse)
        .transpose()?;
    let model = Transformer::load(dir)?;
    let tok = Tokenizer::load(dir)?;
    let (text, label) = crate::eval::corpus::load_named(&r.data)?;
    let ws = WindowSpec {
        ctx: r.ctx.min(model.config.max_positions),
        stride: None,
        n_windows: r.windows,
        seed: r.seed,
    };
    let windows = make_windows(&tok.encode(&text)?, tok.bos, &ws, &label)?;
    let ev = Evaluator::new(&model, &windows)?;
    let weights = linear_weights(&model)?;
    let wants_loss = std::iter::once(&spec1)
        .chain(spec2.as_ref())
        .any(|s| matches!(s, DirectionSpec::Hessian { .. }));
    let loss = if wants_loss {
        Some(hessian::ModelLoss::new(dir, &windows)?)
    } else {
        None
    };
    let scope = Scope {
        mask: r.sites.mask(&model.linears)?,
        loss: loss.as_ref().map(|l| l as &dyn hessian::LossGrad),
    };
    let d1 = build_in(&model, &weights, &spec1, &scope)?;
    let d2 = spec2
        .as_ref()
        .map(|s| build_in(&model, &weights, s, &scope))
        .transpose()?;
    let alpha = steps(r.range1.0, r.range1.1, r.grid);
    let beta = if d2.is_some() {
        steps(r.range2.0, r.range2.1, r.grid)
    } else {
        Vec::new()
    };
    let nll_base = ev.nll_mean(&NoHooks, &mut |_, _| true)?;
    let mut alpha = alpha;
    let mut values = slice(
        &model,
        &ev,
        &weights,
        (&d1, d2.as_ref()),
        (&alpha, &beta),
        progress,
    )?;
    if d2.is_none() && r.refine_levels > 0 {
        let mut done = alpha.len();
        let mut at = |t: f64| -> Result<f64> {
            let hooks = point(&model, &weights, (&d1, t), None)?;
            let v = ev.nll_mean(&hooks, &mut |_, _| true)?;
            done += 1;
            if !progress(done, done + 1) {
                return Err(Error::Cancelled);
            }
            Ok(v)
        };
        refine(&mut alpha, &mut values, r.refine_levels, &mut at)?;
    }
    let marks = landing_points(&model, &weights, &d1, &r.marks, &scope)?;
    let mut norms = vec![d1.norm];
    norms.extend(d2.as_ref().map(|d| d.norm));
    let mut eigenvalues = vec![d1.eigenvalue];
    eigenvalues.extend(d2.as_ref().map(|d| d.eigenvalue));
    Ok(Slice {
        direction1: r.direction1.clone(),
        direction2: r.direction2.clone(),
        norms,
        alpha,
        beta,
        values,
        nll_base,
        n_windows: windows.len(),
        ctx: windows.ctx,
        marks,
        sites: r.sites.describe(),
        eigenvalues,
    })
}

/// Evaluates the mean NLL at every α (and every β when `d2` is given), as many points at once
/// as rayon has threads, reporting `progress(done, total)`; stops with `Cancelled` when it
/// returns false.
pub fn slice(
    model: &Transformer,
    ev: &Evaluator<'_>,
    weights: &[Vec<f32>],
    (d1, d2): (&Direction, Option<&Direction>),
    (alpha, beta): (&[f64], &[f64]),
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<f64>> {
    let betas: Vec<Option<f64>> = match d2 {
        Some(_) => beta.iter().map(|b| Some(*b)).collect(),
        None => vec![None],
    };
    let points: Vec<(f64, Option<f64>)> = betas
        .iter()
        .flat_map(|b| alpha.iter().map(move |a| (*a, *b)))
        .collect();
    let total = points.len();
    let mut out = Vec::with_capacity(total);
    // Points are independent: evaluate one per thread at a time, reporting (and honouring a
    // cancel) between chunks; each value is what a lone evaluation gives, bit for bit.
    let chunk = rayon::current_num_threads().max(1);
    for group in points.chunks(chunk) {
        let values: Vec<Result<f64>> = group
            .par_iter()
            .map(|(a, b)| {
                let hooks = point(model, weights, (d1, *a), d2.zip(*b))?;
                ev.nll_mean(&hooks, &mut |_, _| true)
            })
            .collect();
        for v in values {
            out.push(v?);
        }
        if !progress(out.len(), total) {
            return Err(Error::Cancelled);
        }
    }
    Ok(out)
}

/// Adaptive refinement of a 1-D slice near t = 0 (the trained weights) and t = 1 (the quantized
/// ones): an interval of `alpha` with 0 or 1 as an end is halved when the loss at its midpoint
/// departs from the chord through its ends by more than 2 % of the slice's range (at least
/// 1e−6 nats), and the half that still ends at 0 or 1 is examined again, at most `levels` times.
/// `at(t)` evaluates the loss; `alpha` stays sorted with `values` alongside.
pub fn refine(
    alpha: &mut Vec<f64>,
    values: &mut Vec<f64>,
    levels: usize,
    at: &mut dyn FnMut(f64) -> Result<f64>,
) -> Result<()> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let tol = (0.02 * (hi - lo)).max(1e-6);
    let mut work: Vec<(f64, f64, usize)> = Vec::new();
    for anchor in [0.0, 1.0] {
        if let Some(i) = alpha.iter().position(|t| *t == anchor) {
            if i > 0 {
                work.push((alpha[i - 1], anchor, 0));
            }
            if i + 1 < alpha.len() {
                work.push((anchor, alpha[i + 1], 0));
            }
        }
    }
    let value_at = |alpha: &[f64], values: &[f64], t: f64| {
        alpha.iter().position(|x| *x == t).map(|i| values[i])
    };
    while let Some((a, b, depth)) = work.pop() {
        let mid = 0.5 * (a + b);
        if depth >= levels || alpha.contains(&mid) {
            continue;
        }
        let (Some(fa), Some(fb)) = (value_at(alpha, values, a), value_at(alpha, values, b)) else {
            continue;
        };
        let fm = at(mid)?;
        let k = alpha.partition_point(|x| *x < mid);
        alpha.insert(k, mid);
        values.insert(k, fm);
        if (fm - 0.5 * (fa + fb)).abs() > tol {
            for (x, y) in [(a, mid), (mid, b)] {
                if [x, y].iter().any(|e| *e == 0.0 || *e == 1.0) {
                    work.push((x, y, depth + 1));
                }
            }
        }
    }
    Ok(())
}

/// `n` points evenly over [lo, hi], with 0 and 1 added when inside (the base model and the
/// quantized model), sorted.
pub fn steps(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let n = n.max(2);
    let mut v: Vec<f64> = (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect();
    for k in [0.0, 1.0] {
        if k >= lo && k <= hi && !v.iter().any(|x| (x - k).abs() < 1e-12) {
            v.push(k);
        }
    }
    v.sort_by(f64::total_cmp);
    v
}
