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

pub mod features;
pub mod hessian;
pub mod predictor;
pub mod sites;
pub mod slice;

pub use sites::SiteFilter;
pub use slice::{codec_name, compute, landing_points, refine, slice, steps, Request, Slice};

use crate::codecs::{fake_quant, Format, Method};
use crate::eval::windows::{make_windows, WindowSpec, Windows};
use crate::model::quantized::Overrides;
use crate::model::{Tokenizer, Transformer};
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

/// Loads the checkpoint in `dir` and cuts `n_windows` seeded windows of `ctx` tokens (capped at
/// the model's context) from `data` (a bundled split name or a file) with its tokenizer; also
/// returns the data's label.
pub fn load_with_windows(
    dir: &std::path::Path,
    data: &str,
    n_windows: usize,
    ctx: usize,
    seed: u64,
) -> Result<(Transformer, Windows, String)> {
    crate::limits::WINDOWS.check(n_windows)?;
    let model = Transformer::load(dir)?;
    let tok = Tokenizer::load(dir)?;
    let (text, label) = crate::eval::corpus::load_named(data)?;
    let ws = WindowSpec {
        ctx: ctx.min(model.config.max_positions),
        stride: None,
        n_windows,
        seed,
    };
    let windows = make_windows(&tok.encode(&text)?, tok.bos, &ws, &label)?;
    Ok((model, windows, label))
}
