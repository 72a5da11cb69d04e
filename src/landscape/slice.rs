//! Slices of the held-out loss along one or two directions (see the parent module): grid
//! sampling with t = 0 and t = 1 included, parallel evaluation of grid points, adaptive
//! refinement next to t = 0 and t = 1, and where other codecs land along a quant direction.

use rayon::prelude::*;

use super::{
    build_in, hessian, linear_weights, load_with_windows, point, Direction, DirectionSpec,
};
use super::{Scope, SiteFilter};
use crate::codecs::Format;
use crate::eval::Evaluator;
use crate::model::{NoHooks, Transformer};
use crate::{Error, Result};

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

/// Most halvings [`refine`] may do next to t = 0 and t = 1.
pub const MAX_REFINE_LEVELS: usize = 24;

/// Loads the checkpoint in `dir` once and computes the requested slice (with landing points).
pub fn compute(
    dir: &std::path::Path,
    r: &Request,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Slice> {
    crate::limits::GRID.check(r.grid)?;
    if r.refine_levels > MAX_REFINE_LEVELS {
        return Err(Error::Input(format!(
            "--refine {} exceeds {MAX_REFINE_LEVELS} halvings (2^-{MAX_REFINE_LEVELS} of a step is below f32 resolution)",
            r.refine_levels
        )));
    }
    let spec1 = DirectionSpec::parse(&r.direction1)?;
    let spec2 = r
        .direction2
        .as_deref()
        .map(DirectionSpec::parse)
        .transpose()?;
    let (model, windows, _) = load_with_windows(dir, &r.data, r.windows, r.ctx, r.seed)?;
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
