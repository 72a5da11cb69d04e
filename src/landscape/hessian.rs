//! Hessian probes of the held-out loss with respect to the quantizable linear weights:
//! Hessian-vector products, the top eigenvalue (power iteration), the trace (Hutchinson, also
//! per layer), curvature along a direction and the second-order prediction of ΔL.
//!
//! HVPs are central finite differences of exact (autograd) gradients:
//! Hv ≈ (∇L(x + εv) − ∇L(x − εv)) / 2ε with ε = `rel_step`·‖x‖/‖v‖ (candle has no double
//! backward). The error is O(ε²·‖∇³L‖) plus f32 gradient noise / ε; [`Probe::hvp_rel_error`]
//! reports ‖Hv(ε) − Hv(ε/2)‖ / ‖Hv(ε)‖ on the first power-iteration vector, so a bad step shows.
//! Stopping rules follow PyHessian: power iteration stops when the eigenvalue changes by less than
//! `tol` (relative) or after `max_iter` products; Hutchinson (Rademacher vectors) stops when the
//! running mean changes by less than `tol` (relative) after at least [`MIN_SAMPLES`], or after
//! `max_samples`.
//!
//! Everything is generic over [`LossGrad`] so the algorithms are tested on an exact quadratic
//! (analytic eigenvalue and trace) through the same code that probes a language model
//! ([`ModelLoss`]: a trainable copy of the checkpoint, gradients by candle autograd).
//! Vectors are lists of blocks (one per linear site, `[out, in]` row-major, f32); dots in f64.

use candle_core::{Tensor, Var};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::eval::windows::Windows;
use crate::model::{NoHooks, Transformer};
use crate::{Error, Result};

/// Hutchinson samples before the stopping rule may end the estimate (PyHessian may stop after
/// two, which on a noisy estimator stops on a lucky pair).
pub const MIN_SAMPLES: usize = 10;

/// Parameters as blocks (one per linear site).
pub type Blocks = Vec<Vec<f32>>;

/// A loss with its exact gradient.
pub trait LossGrad {
    /// Loss and gradient at `x`.
    fn loss_grad(&self, x: &[Vec<f32>]) -> Result<(f64, Blocks)>;
}

fn dot(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(p, q)| f64::from(*p) * f64::from(*q))
                .sum::<f64>()
        })
        .sum()
}

fn norm(a: &[Vec<f32>]) -> f64 {
    dot(a, a).sqrt()
}

/// x + s·v.
fn axpy(x: &[Vec<f32>], s: f64, v: &[Vec<f32>]) -> Blocks {
    x.iter()
        .zip(v)
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(p, q)| (f64::from(*p) + s * f64::from(*q)) as f32)
                .collect()
        })
        .collect()
}

fn scale(v: &[Vec<f32>], s: f64) -> Blocks {
    v.iter()
        .map(|b| b.iter().map(|p| (f64::from(*p) * s) as f32).collect())
        .collect()
}

/// Hv by central differences with ε = `rel_step`·‖x‖/‖v‖ (see the module docs).
pub fn hvp(f: &dyn LossGrad, x: &[Vec<f32>], v: &[Vec<f32>], rel_step: f64) -> Result<Blocks> {
    let nv = norm(v);
    if nv == 0.0 {
        return Ok(scale(v, 0.0));
    }
    let eps = rel_step * norm(x).max(1e-12) / nv;
    let (_, gp) = f.loss_grad(&axpy(x, eps, v))?;
    let (_, gm) = f.loss_grad(&axpy(x, -eps, v))?;
    Ok(gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(p, q)| ((f64::from(*p) - f64::from(*q)) / (2.0 * eps)) as f32)
                .collect()
        })
        .collect())
}

/// Stopping rules and the finite-difference step.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProbeOptions {
    /// ε relative to ‖x‖ (for a unit-norm direction scaled to ‖v‖).
    pub rel_step: f64,
    /// Power-iteration products at most.
    pub max_iter: usize,
    /// Hutchinson samples at most.
    pub max_samples: usize,
    /// Relative tolerance of both stopping rules (PyHessian: 1e-3).
    pub tol: f64,
    /// Seed of the random vectors.
    pub seed: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            rel_step: 1e-3,
            max_iter: 20,
            max_samples: 50,
            tol: 1e-3,
            seed: 0,
        }
    }
}

fn gaussian_like(x: &[Vec<f32>], rng: &mut impl Rng) -> Blocks {
    x.iter()
        .map(|b| {
            b.iter()
                .map(|_| crate::model::trainable::standard_normal(rng) as f32)
                .collect()
        })
        .collect()
}

/// Top eigenvalue (largest |λ|) by power iteration: (λ, unit eigenvector, products used,
/// relative HVP step error).
pub fn top_eigenvalue(
    f: &dyn LossGrad,
    x: &[Vec<f32>],
    o: &ProbeOptions,
) -> Result<(f64, Blocks, usize, f64)> {
    crate::limits::ITERATIONS
        .named("--max-iter")
        .check(o.max_iter)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed);
    let mut v = gaussian_like(x, &mut rng);
    v = scale(&v, 1.0 / norm(&v).max(1e-30));
    let mut lambda = 0.0;
    let mut err = f64::NAN;
    for it in 1..=o.max_iter.max(1) {
        let hv = hvp(f, x, &v, o.rel_step)?;
        if it == 1 {
            let half = hvp(f, x, &v, o.rel_step / 2.0)?;
            let diff = axpy(&hv, -1.0, &half);
            err = norm(&diff) / norm(&hv).max(1e-30);
        }
        let new = dot(&v, &hv);
        let n = norm(&hv);
        if n == 0.0 {
            return Ok((0.0, v, it, err));
        }
        v = scale(&hv, 1.0 / n);
        if it > 1 && (new - lambda).abs() <= o.tol * new.abs().max(1e-30) {
            return Ok((new, v, it, err));
        }
        lambda = new;
    }
    Ok((lambda, v, o.max_iter.max(1), err))
}

/// Hutchinson trace with Rademacher vectors: (trace, per-block trace, samples used).
pub fn hutchinson(
    f: &dyn LossGrad,
    x: &[Vec<f32>],
    o: &ProbeOptions,
) -> Result<(f64, Vec<f64>, usize)> {
    crate::limits::ITERATIONS
        .named("--samples")
        .check(o.max_samples)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed ^ 0x5eed_7ace);
    let mut per_block = vec![0.0; x.len()];
    let mut mean = 0.0;
    for s in 1..=o.max_samples.max(1) {
        let v: Blocks = x
            .iter()
            .map(|b| {
                b.iter()
                    .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                    .collect()
            })
            .collect();
        let hv = hvp(f, x, &v, o.rel_step)?;
        let mut total = 0.0;
        for (i, (a, b)) in v.iter().zip(&hv).enumerate() {
            let t = dot(std::slice::from_ref(a), std::slice::from_ref(b));
            per_block[i] += (t - per_block[i]) / s as f64;
            total += t;
        }
        let new = mean + (total - mean) / s as f64;
        if s >= MIN_SAMPLES && (new - mean).abs() <= o.tol * new.abs().max(1e-30) {
            return Ok((new, per_block, s));
        }
        mean = new;
    }
    Ok((mean, per_block, o.max_samples.max(1)))
}

/// Along a direction u: (gᵀu, uᵀHu, ‖u‖) at x.
pub fn along(
    f: &dyn LossGrad,
    x: &[Vec<f32>],
    g: &[Vec<f32>],
    u: &[Vec<f32>],
    rel_step: f64,
) -> Result<(f64, f64, f64)> {
    let hu = hvp(f, x, u, rel_step)?;
    Ok((dot(g, u), dot(u, &hu), norm(u)))
}

/// The probes' results.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// Loss at the weights (nats/token).
    pub loss: f64,
    /// Largest-magnitude Hessian eigenvalue.
    pub top_eigenvalue: f64,
    /// Power-iteration products used.
    pub eig_iterations: usize,
    /// Hessian trace (Hutchinson).
    pub trace: f64,
    /// Per-block (linear site) trace estimates.
    pub trace_per_block: Vec<f64>,
    /// Hutchinson samples used.
    pub trace_samples: usize,
    /// ‖Hv(ε) − Hv(ε/2)‖ / ‖Hv(ε)‖ on the first power-iteration vector.
    pub hvp_rel_error: f64,
    /// Options used.
    pub options: ProbeOptions,
}

/// Loss and trace probes at x.
pub fn probe(f: &dyn LossGrad, x: &[Vec<f32>], o: &ProbeOptions) -> Result<Probe> {
    let (loss, _) = f.loss_grad(x)?;
    let (top_eigenvalue, _, eig_iterations, hvp_rel_error) = top_eigenvalue(f, x, o)?;
    let (trace, trace_per_block, trace_samples) = hutchinson(f, x, o)?;
    Ok(Probe {
        loss,
        top_eigenvalue,
        eig_iterations,
        trace,
        trace_per_block,
        trace_samples,
        hvp_rel_error,
        options: *o,
    })
}

/// The mean next-token NLL of fixed windows as a function of the linear weights of a
/// trainable copy of the model (gradients by candle autograd).
pub struct ModelLoss {
    model: Transformer,
    vars: Vec<(Var, Vec<usize>)>,
    ids: Vec<u32>,
    batch: usize,
}

impl ModelLoss {
    /// Loads `dir` as a trainable model and binds every linear site's weight variable.
    pub fn new(dir: &std::path::Path, windows: &Windows) -> Result<Self> {
        let (model, vars) = crate::model::trainable::load_trainable(dir)?;
        let mut bound = Vec::with_capacity(model.linears.len());
        for i in 0..model.linears.len() {
            let w = &model.linear(i)?.weight;
            let var = vars
                .iter()
                .find(|(_, v)| v.as_tensor().id() == w.id())
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    Error::Input(format!(
                        "linear site {i} ({}) is not a trainable variable of this architecture \
                         (Hessian probes need Llama- or NeoX-style [out, in] weights)",
                        model.linears[i].name
                    ))
                })?;
            bound.push((var, w.dims().to_vec()));
        }
        if windows.is_empty() {
            return Err(Error::Input("no windows to probe the loss on".into()));
        }
        Ok(Self {
            model,
            vars: bound,
            ids: windows.ids.clone(),
            batch: windows.len(),
        })
    }

    /// The current linear weights as blocks.
    pub fn weights(&self) -> Result<Blocks> {
        self.vars
            .iter()
            .map(|(v, _)| Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }

    /// The model (for its sites and sizes).
    pub fn model(&self) -> &Transformer {
        &self.model
    }
}

impl LossGrad for ModelLoss {
    fn loss_grad(&self, x: &[Vec<f32>]) -> Result<(f64, Blocks)> {
        for ((var, shape), w) in self.vars.iter().zip(x) {
            var.set(&Tensor::from_slice(w, shape.as_slice(), var.device())?)?;
        }
        let logits = self.model.forward(&self.ids, self.batch, &NoHooks)?;
        let (b, t, v) = logits.dims3()?;
        let inputs = logits.narrow(1, 0, t - 1)?.reshape((b * (t - 1), v))?;
        let targets = Tensor::from_slice(&self.ids, (b, t), logits.device())?
            .narrow(1, 1, t - 1)?
            .flatten_all()?;
        let loss = candle_nn::loss::cross_entropy(&inputs, &targets)?;
        let grads = loss.backward()?;
        let g = self
            .vars
            .iter()
            .map(|(var, _)| match grads.get(var.as_tensor()) {
                Some(g) => Ok(g.flatten_all()?.to_vec1::<f32>()?),
                None => Ok(vec![0.0; var.as_tensor().elem_count()]),
            })
            .collect::<Result<Blocks>>()?;
        Ok((f64::from(loss.to_scalar::<f32>()?), g))
    }
}

/// A loss whose gradient is zero outside the masked blocks: HVPs, eigenvectors and traces of
/// it are those of the Hessian restricted to the selected linear sites.
pub struct Masked<'a> {
    /// The full loss.
    pub inner: &'a dyn LossGrad,
    /// One flag per block.
    pub mask: &'a [bool],
}

impl LossGrad for Masked<'_> {
    fn loss_grad(&self, x: &[Vec<f32>]) -> Result<(f64, Blocks)> {
        let (loss, mut g) = self.inner.loss_grad(x)?;
        for (b, on) in g.iter_mut().zip(self.mask) {
            if !on {
                b.iter_mut().for_each(|v| *v = 0.0);
            }
        }
        Ok((loss, g))
    }
}

/// A counter for [`Watched`] and other loops of evaluations: each call counts one, reports
/// `progress(done, total)` (done capped at the estimate `total`) and turns a cancel request
/// (`progress` returning false) into [`Error::Cancelled`].
pub fn ticker<'a>(
    total: usize,
    progress: &'a dyn Fn(usize, usize) -> bool,
) -> impl Fn() -> Result<()> + 'a {
    let done = std::cell::Cell::new(0usize);
    move || {
        done.set(done.get() + 1);
        if progress(done.get().min(total), total) {
            Ok(())
        } else {
            Err(Error::Cancelled)
        }
    }
}

/// Runs `tick` before every gradient evaluation of `inner`: progress counting, and a cancel
/// request (`tick` returning [`Error::Cancelled`]) takes effect at the next evaluation.
pub struct Watched<'a> {
    /// The loss being watched.
    pub inner: &'a dyn LossGrad,
    /// Called before each evaluation.
    pub tick: &'a dyn Fn() -> Result<()>,
}

impl LossGrad for Watched<'_> {
    fn loss_grad(&self, x: &[Vec<f32>]) -> Result<(f64, Blocks)> {
        (self.tick)()?;
        self.inner.loss_grad(x)
    }
}

/// Curvature along one direction.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Along {
    /// The direction's spelling.
    pub direction: String,
    /// ‖u‖.
    pub norm: f64,
    /// gᵀu.
    pub g_dot_u: f64,
    /// uᵀHu.
    pub u_h_u: f64,
    /// uᵀHu / ‖u‖².
    pub curvature: f64,
    /// gᵀu + ½uᵀHu.
    pub predicted_delta_l: f64,
    /// L(W + u) − L(W) (for quant directions exactly the quantized model's).
    pub measured_delta_l: f64,
}

impl Along {
    /// The record from (gᵀu, uᵀHu, ‖u‖) as [`along`] returns them and the measured ΔL.
    pub fn new(direction: String, parts: (f64, f64, f64), measured_delta_l: f64) -> Self {
        let (g_dot_u, u_h_u, norm) = parts;
        Self {
            direction,
            norm,
            g_dot_u,
            u_h_u,
            curvature: u_h_u / (norm * norm).max(1e-30),
            predicted_delta_l: g_dot_u + 0.5 * u_h_u,
            measured_delta_l,
        }
    }
}

/// Everything `quantscape hessian` and the Landscape view report.
#[derive(Clone, Debug, Serialize)]
pub struct HessianReport {
    /// Non-embedding parameters N.
    pub n_params_non_embedding: usize,
    /// Held-out data label.
    pub data: String,
    /// Windows in the batch.
    pub windows: usize,
    /// Tokens per window.
    pub ctx: usize,
    /// The probes.
    pub probe: Probe,
    /// Hutchinson trace summed per transformer block.
    pub trace_per_layer: Vec<f64>,
    /// Curvature and ΔL prediction along the requested direction.
    pub along: Option<Along>,
    /// The sites probed (`all`, or the restriction).
    pub sites: String,
}

/// What to probe.
#[derive(Clone, Debug)]
pub struct HessianRequest {
    /// Held-out text: a bundled split name or a file.
    pub data: String,
    /// Windows (one batch).
    pub windows: usize,
    /// Tokens per window (capped at the model's maximum).
    pub ctx: usize,
    /// Direction spelling (`quant:…`, `random:…`) to probe along, if any.
    pub direction: Option<String>,
    /// Probe options (the window seed is `options.seed`).
    pub options: ProbeOptions,
    /// Restrict the probes (and the direction) to these sites: the Hessian of the loss with
    /// respect to their weights only.
    pub sites: super::SiteFilter,
}

/// Runs the probes on the checkpoint in `dir`; `progress(done, total)` counts gradient
/// evaluations and returning `false` cancels.
pub fn report(
    dir: &std::path::Path,
    r: &HessianRequest,
    progress: &dyn Fn(usize, usize) -> bool,
) -> Result<HessianReport> {
    let spec = r
        .direction
        .as_deref()
        .map(super::DirectionSpec::parse)
        .transpose()?;
    let (base, windows, label) =
        super::load_with_windows(dir, &r.data, r.windows, r.ctx, r.options.seed)?;
    let model_loss = ModelLoss::new(dir, &windows)?;
    let mask = r.sites.mask(&model_loss.model().linears)?;
    let masked = Masked {
        inner: &model_loss,
        mask: &mask,
    };
    let o = &r.options;
    let total = 1 + 4 + 2 * o.max_iter.max(1) + 2 * o.max_samples.max(1) + 4;
    let tick = ticker(total, progress);
    let f = Watched {
        inner: &masked,
        tick: &tick,
    };
    let x = model_loss.weights()?;
    let p = probe(&f, &x, o)?;
    let model = model_loss.model();
    let mut per_layer = vec![0.0; model.blocks.len()];
    for (site, t) in model.linears.iter().zip(&p.trace_per_block) {
        if let Some(s) = per_layer.get_mut(site.layer) {
            *s += t;
        }
    }
    let along_u = match (&spec, &r.direction) {
        (Some(s), Some(name)) => {
            let scope = super::Scope {
                mask: mask.clone(),
                loss: Some(&f),
            };
            let d = super::build_in(&base, &x, s, &scope)?;
            let (_, g) = f.loss_grad(&x)?;
            let parts = along(&f, &x, &g, &d.delta, o.rel_step)?;
            let moved = match &d.endpoint {
                Some(e) => e.clone(),
                None => axpy(&x, 1.0, &d.delta),
            };
            let measured = f.loss_grad(&moved)?.0 - p.loss;
            Some(Along::new(name.clone(), parts, measured))
        }
        _ => None,
    };
    Ok(HessianReport {
        n_params_non_embedding: model.n_params_non_embedding,
        data: label,
        windows: windows.len(),
        ctx: windows.ctx,
        probe: p,
        trace_per_layer: per_layer,
        along: along_u,
        sites: r.sites.describe(),
    })
}
