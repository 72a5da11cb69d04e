//! Local loss-landscape features of a checkpoint for the PTQ predictor (Xu et al., arXiv
//! 2410.12119: flatter models lose less to quantization), measured on fixed held-out windows.
//!
//! - Sharpness (nats): the largest loss increase max L(W + t·d_k) − L(W) over t ∈ {±ρ/2, ±ρ}
//!   along `n_directions` seeded filter-normalised random directions d_k (‖d_row‖ = ‖w_row‖, so
//!   ρ is a relative weight perturbation).
//! - Flatness (dimensionless radius): the mean over directions and both signs of the smallest
//!   t > 0 with L(W ± t·d_k) − L(W) ≥ ε, found by doubling from ρ and bisection to 1/64 of the
//!   bracket; a direction that never reaches ε before `max_radius` counts as `max_radius`
//!   (censored, reported). Larger is flatter.
//! - With Hessian probes on: top eigenvalue and Hutchinson trace of the Hessian of the same loss
//!   (see [`super::hessian`]), and for each requested quantization direction u = W_q − W the
//!   curvature uᵀHu/‖u‖², the second-order ΔL prediction and the measured ΔL.
//! - Always, for each quantization direction: the RTN/HQQ weight SQNR 10·log10(‖W‖²/‖u‖²) dB.
//!
//! Scope: the quantizable linear weights (as every landscape direction). Losses are mean NLL in
//! nats/token through the weight-override hook; the model is loaded once.

use std::time::Instant;

use super::hessian::{self, LossGrad as _, ProbeOptions};
use super::{build_in, linear_weights, point, DirectionSpec, Scope};
use crate::eval::Evaluator;
use crate::model::NoHooks;
use crate::{Error, Result};

/// What to measure.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FeatureRequest {
    /// Held-out text: a bundled split name or a file.
    pub data: String,
    /// Windows.
    pub windows: usize,
    /// Tokens per window (capped by the model).
    pub ctx: usize,
    /// Seed of the windows and of the random directions (direction k uses seed + k).
    pub seed: u64,
    /// Random directions for sharpness and flatness.
    pub n_directions: usize,
    /// Sharpness radius ρ (relative weight perturbation).
    pub rho: f64,
    /// Loss rise ε (nats) defining the flatness radius.
    pub epsilon: f64,
    /// Largest radius the flatness search tries.
    pub max_radius: f64,
    /// Hessian probes (eigenvalue, trace, curvature along u); `None` skips them.
    pub hessian: Option<ProbeOptions>,
    /// Quantization directions: (key stored with the value, direction).
    #[serde(skip)]
    pub quant: Vec<(String, DirectionSpec)>,
}

impl Default for FeatureRequest {
    fn default() -> Self {
        Self {
            data: "eval_austen".into(),
            windows: 16,
            ctx: 128,
            seed: 0,
            n_directions: 4,
            rho: 0.05,
            epsilon: 0.1,
            max_radius: 4.0,
            hessian: Some(ProbeOptions {
                max_iter: 20,
                max_samples: 30,
                tol: 1e-2,
                ..ProbeOptions::default()
            }),
            quant: Vec::new(),
        }
    }
}

/// Features of one quantization direction.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QuantFeatures {
    /// The key it was requested under.
    pub key: String,
    /// 10·log10(‖W‖²/‖W_q − W‖²), dB.
    pub sqnr_db: f64,
    /// Curvature, prediction and measurement along u (with Hessian probes on).
    pub along: Option<hessian::Along>,
}

/// The measured features.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Features {
    /// Non-embedding parameters N.
    pub n_params_non_embedding: usize,
    /// Mean NLL of the trained model on the windows.
    pub nll_base: f64,
    /// Sharpness (nats).
    pub sharpness: f64,
    /// Flatness radius.
    pub flatness: f64,
    /// How many of the 2·`n_directions` flatness searches hit `max_radius`.
    pub flatness_censored: usize,
    /// Top Hessian eigenvalue.
    pub top_eigenvalue: Option<f64>,
    /// Hessian trace.
    pub trace: Option<f64>,
    /// Per quantization direction.
    pub quant: Vec<QuantFeatures>,
    /// Windows and tokens per window used.
    pub windows: usize,
    /// Tokens per window.
    pub ctx: usize,
    /// Wall time.
    pub elapsed_secs: f64,
}

impl Features {
    /// (feature, direction key, value) rows as the results store keeps them.
    pub fn rows(&self) -> Vec<(String, String, f64)> {
        let mut out = vec![
            ("nll_base".into(), String::new(), self.nll_base),
            ("sharpness".into(), String::new(), self.sharpness),
            ("flatness".into(), String::new(), self.flatness),
        ];
        out.extend(
            self.top_eigenvalue
                .map(|v| ("top_eigenvalue".into(), String::new(), v)),
        );
        out.extend(self.trace.map(|v| ("trace".into(), String::new(), v)));
        for q in &self.quant {
            out.push(("rtn_sqnr_db".into(), q.key.clone(), q.sqnr_db));
            if let Some(a) = &q.along {
                out.push(("curvature_u".into(), q.key.clone(), a.curvature));
                out.push((
                    "predicted_delta_l".into(),
                    q.key.clone(),
                    a.predicted_delta_l,
                ));
                out.push(("measured_delta_l".into(), q.key.clone(), a.measured_delta_l));
            }
        }
        out.retain(|(_, _, v)| v.is_finite());
        out
    }
}

/// The distance along one direction at which the loss first rises by ε (doubling from ρ, then
/// bisection to 1/64 of the bracket); None when it stays below ε up to the maximum radius.
fn flat_radius(rise: impl Fn(f64) -> Result<f64>, r: &FeatureRequest) -> Result<Option<f64>> {
    let (mut lo, mut hi) = (0.0, r.rho);
    while rise(hi)? < r.epsilon {
        lo = hi;
        hi *= 2.0;
        if hi > r.max_radius {
            return Ok(None);
        }
    }
    let tol = (hi - lo) / 64.0;
    while hi - lo > tol {
        let mid = 0.5 * (lo + hi);
        if rise(mid)? >= r.epsilon {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(Some(0.5 * (lo + hi)))
}

/// Measures the features of the checkpoint in `dir`; `progress(done, total)` counts loss
/// evaluations (forward passes and gradients) and returning false cancels.
pub fn measure(
    dir: &std::path::Path,
    r: &FeatureRequest,
    progress: &dyn Fn(usize, usize) -> bool,
) -> Result<Features> {
    crate::limits::ITERATIONS
        .named("--directions")
        .check(r.n_directions)?;
    if !(r.rho > 0.0 && r.epsilon > 0.0 && r.max_radius > r.rho) || r.n_directions == 0 {
        return Err(Error::Input(
            "landscape features need ρ > 0, ε > 0, max radius > ρ and at least one direction"
                .into(),
        ));
    }
    let start = Instant::now();
    let (model, windows, _) = super::load_with_windows(dir, &r.data, r.windows, r.ctx, r.seed)?;
    let ev = Evaluator::new(&model, &windows)?;
    let weights = linear_weights(&model)?;
    let loss = match r.hessian {
        Some(_) => Some(hessian::ModelLoss::new(dir, &windows)?),
        None => None,
    };
    let scope = Scope {
        mask: vec![true; model.linears.len()],
        loss: loss.as_ref().map(|l| l as &dyn hessian::LossGrad),
    };
    // Forward passes: base, 4 sharpness points per direction, ≤ 20 per flatness search; gradient
    // work: the Hessian probes, the gradient at W and 3 per quantization direction (an HVP and
    // the measured ΔL; estimates for the bar).
    let hess_calls = r.hessian.map_or(0, |o| {
        2 * o.max_iter.max(1) + 2 + 2 * o.max_samples.max(1) + 1
    });
    let total = 1 + r.n_directions * (4 + 2 * 20) + hess_calls + 1 + r.quant.len() * 3;
    let tick = hessian::ticker(total, progress);
    let nll_at = |d: &super::Direction, t: f64| -> Result<f64> {
        tick()?;
        let hooks = point(&model, &weights, (d, t), None)?;
        ev.nll_mean(&hooks, &mut |_, _| true)
    };
    tick()?;
    let nll_base = ev.nll_mean(&NoHooks, &mut |_, _| true)?;

    let mut sharpness = f64::NEG_INFINITY;
    let mut radii = Vec::new();
    let mut censored = 0;
    for k in 0..r.n_directions {
        let spec = DirectionSpec::Random {
            seed: r.seed.wrapping_add(k as u64),
        };
        let d = build_in(&model, &weights, &spec, &scope)?;
        for t in [-r.rho, -r.rho / 2.0, r.rho / 2.0, r.rho] {
            sharpness = sharpness.max(nll_at(&d, t)? - nll_base);
        }
        for sign in [1.0, -1.0] {
            let rise = |t: f64| -> Result<f64> { Ok(nll_at(&d, sign * t)? - nll_base) };
            match flat_radius(rise, r)? {
                Some(radius) => radii.push(radius),
                None => {
                    censored += 1;
                    radii.push(r.max_radius);
                }
            }
        }
    }
    let flatness = radii.iter().sum::<f64>() / radii.len().max(1) as f64;

    let (mut top_eigenvalue, mut trace) = (None, None);
    // The weights and the gradient at them, shared by the probes along every quant direction.
    let mut at_weights = None;
    if let (Some(o), Some(f)) = (&r.hessian, &loss) {
        let watched = hessian::Watched {
            inner: f,
            tick: &tick,
        };
        let x = f.weights()?;
        top_eigenvalue = Some(hessian::top_eigenvalue(&watched, &x, o)?.0);
        trace = Some(hessian::hutchinson(&watched, &x, o)?.0);
        if !r.quant.is_empty() {
            let (_, g) = watched.loss_grad(&x)?;
            at_weights = Some((o, watched, x, g));
        }
    }
    let w_sq: f64 = weights
        .iter()
        .flatten()
        .map(|v| f64::from(*v).powi(2))
        .sum();
    let mut quant = Vec::with_capacity(r.quant.len());
    for (key, spec) in &r.quant {
        let d = build_in(&model, &weights, spec, &scope)?;
        let sqnr_db = 10.0 * (w_sq / (d.norm * d.norm).max(1e-300)).log10();
        let along = match &at_weights {
            Some((o, watched, x, g)) => {
                let parts = hessian::along(watched, x, g, &d.delta, o.rel_step)?;
                let measured = nll_at(&d, 1.0)? - nll_base;
                Some(hessian::Along::new(key.clone(), parts, measured))
            }
            None => None,
        };
        quant.push(QuantFeatures {
            key: key.clone(),
            sqnr_db,
            along,
        });
    }
    Ok(Features {
        n_params_non_embedding: model.n_params_non_embedding,
        nll_base,
        sharpness,
        flatness,
        flatness_censored: censored,
        top_eigenvalue,
        trace,
        quant,
        windows: windows.len(),
        ctx: windows.ctx,
        elapsed_secs: start.elapsed().as_secs_f64(),
    })
}
