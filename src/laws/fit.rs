//! Fitting a [`Law`] to a [`Dataset`] and everything reported about the fit.
//!
//! Steps: check the law's variables are present; keep points with a finite target (log space
//! also excludes ΔL ≤ 0: measurement noise around zero, listed in the report); run the local
//! solver of `optim` from every start of the grid (Cartesian product of the non-linear
//! parameters' starts; scale and linear parameters are solved for) in parallel; keep the best.
//! Then: R² (log and linear), RMSE, MAPE, the Gauss–Newton covariance s²(JᵀJ)⁻¹ (as
//! scipy's curve_fit), leave-one-size-out predictions (each N held out, fitted on the rest;
//! the largest N is the extrapolation that matters) and percentile bootstrap CIs (resampling
//! points with replacement, warm-started at the optimum, one seeded RNG per resample so the
//! result does not depend on the thread count).

use nalgebra::DMatrix;
use rand::{Rng as _, SeedableRng as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::diagnose::{aic_bic, held_out, parameter_flags, simpler_flag};
pub use super::diagnose::{Flag, GroupError, HeldOutErrors, SimplerComparison};
pub use super::optim::{Loss, Space};
use super::optim::{Problem, Solution};
use super::{Dataset, Law, Row, Var};
use crate::{Error, Result};

/// Fit settings.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Loss on residuals (default Huber δ = 1e-3).
    pub loss: Loss,
    /// Residual space (default log).
    pub space: Space,
    /// Iteration cap per local solve.
    pub max_iter: usize,
    /// Bootstrap resamples (0 = none).
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
    /// Run the held-out validations: leave one size out, one low format out (when the points
    /// carry format labels), one block size out.
    pub leave_one_size_out: bool,
    /// Also fit the law's simpler nested form (unified-strong → unified-weak) and flag the fit
    /// when it is no better by AIC.
    pub compare_simpler: bool,
    /// Start from these parameters only (warm refit) instead of the grid.
    pub start: Option<Vec<f64>>,
    /// Set to stop the fit early with [`Error::Cancelled`] (checked between local solves).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Weight points by their standard errors when the data carries them ([`precision_weights`]).
    pub weighted: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            loss: Loss::Huber { delta: 1e-3 },
            space: Space::Log,
            max_iter: 200,
            bootstrap: 0,
            seed: 0,
            leave_one_size_out: true,
            compare_simpler: true,
            start: None,
            cancel: None,
            weighted: true,
        }
    }
}

/// One parameter's estimate.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamEstimate {
    /// Parameter name.
    pub name: String,
    /// Best-fit value.
    pub value: f64,
    /// Standard error from the covariance, when it could be computed.
    pub std_err: Option<f64>,
    /// Bootstrap 2.5 % percentile.
    pub ci_low: Option<f64>,
    /// Bootstrap 97.5 % percentile.
    pub ci_high: Option<f64>,
}

/// Prediction error for one held-out size.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldOut {
    /// The N held out.
    pub n: f64,
    /// Points at that N.
    pub n_points: usize,
    /// RMS of ln ŷ − ln y over them.
    pub rmse_log: f64,
    /// Mean |ŷ − y|/|y| over them.
    pub mape: f64,
}

/// One point's fit.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Residual {
    /// Index in the dataset.
    pub index: usize,
    /// Measured target.
    pub y: f64,
    /// Law's prediction.
    pub predicted: f64,
    /// Residual in the fitted space (ln ŷ − ln y, or ŷ − y).
    pub residual: f64,
}

/// Everything known about a fit.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FitReport {
    /// Law id.
    pub law: String,
    /// The law's formula.
    pub formula: String,
    /// The target column fitted (`delta_loss`, `delta_nll_best`, `kl_mean`, …).
    #[serde(default)]
    pub target: String,
    /// Which statistic over a configuration's trials the target is (`mean over trials`, `best
    /// of T trials`, …; `as given` for a column of another name).
    #[serde(default)]
    pub statistic: String,
    /// How points were weighted.
    #[serde(default)]
    pub weighting: String,
    /// Residual space.
    pub space: Space,
    /// Loss.
    pub loss: Loss,
    /// Points used.
    pub n_points: usize,
    /// Points excluded, with the reason.
    pub excluded: Vec<(usize, String)>,
    /// Parameter estimates in law order.
    pub params: Vec<ParamEstimate>,
    /// Final objective Σρ(r).
    pub objective: f64,
    /// Whether the best local solve stopped on a tolerance (not the iteration cap).
    pub converged: bool,
    /// Iterations of the best local solve.
    pub iterations: usize,
    /// Starts tried.
    pub starts_total: usize,
    /// Starts whose solve converged.
    pub starts_converged: usize,
    /// Starts that reached the best optimum (objective within 1e-6 relative, parameters 1e-3).
    pub starts_at_best: usize,
    /// R² of ln y.
    pub r2_log: f64,
    /// R² of y.
    pub r2_linear: f64,
    /// RMS of ŷ − y.
    pub rmse: f64,
    /// RMS of ln ŷ − ln y (positive points).
    pub rmse_log: f64,
    /// Mean |ŷ − y|/|y|.
    pub mape: f64,
    /// Parameter covariance (law order), when JᵀJ is invertible.
    pub covariance: Option<Vec<Vec<f64>>>,
    /// Leave-one-size-out, sizes ascending (the last is the largest-N extrapolation).
    pub leave_one_size_out: Vec<HeldOut>,
    /// Bootstrap resamples requested.
    pub bootstrap_resamples: usize,
    /// Resamples whose refit failed (excluded from the CIs).
    pub bootstrap_failed: usize,
    /// Parameter vectors of the successful resamples (for bands in plots).
    #[serde(skip)]
    pub bootstrap_params: Vec<Vec<f64>>,
    /// Per-point residuals of the kept points.
    pub residuals: Vec<Residual>,
    /// Held-out errors: leave one size, one low format, one block size out (each when the
    /// points have at least 3 sizes, 2 formats, 3 block sizes).
    #[serde(default)]
    pub held_out: Vec<HeldOutErrors>,
    /// What the fit cannot claim: parameters at a bound, unidentified parameters, no better than
    /// the simpler law. Empty for a sound fit.
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// The law with one C per low format (other parameters shared), when asked for
    /// ([`crate::laws::per_format`]); it cannot predict a held-out format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_format: Option<super::diagnose::PerFormatFit>,
    /// The simpler nested law fitted to the same points, when the law has one.
    #[serde(default)]
    pub simpler: Option<SimplerComparison>,
}

impl FitReport {
    /// Whether anything is flagged (a parameter at a bound or unidentified, or no better than
    /// the simpler law).
    pub fn degenerate(&self) -> bool {
        !self.flags.is_empty()
    }

    /// Best-fit parameter values in law order.
    pub fn values(&self) -> Vec<f64> {
        self.params.iter().map(|p| p.value).collect()
    }
}

/// The law's prediction at `x` after checking the parameters.
pub fn predict(law: &Law, params: &[f64], x: &Row) -> Result<f64> {
    law.check_params(params)?;
    for v in &law.vars {
        if !x[v.index()].is_finite() {
            return Err(Error::Input(format!(
                "law {} needs a value for {v}",
                law.id
            )));
        }
    }
    Ok(law.eval(params, x))
}

/// Points left out of a fit: (index, why).
type Excluded = Vec<(usize, String)>;

/// The indices of the points a fit can use, and why the others are excluded; an error when the
/// data lacks one of the law's variables or has too few usable points.
fn usable_points(law: &Law, data: &Dataset, space: Space) -> Result<(Vec<usize>, Excluded)> {
    for v in &law.vars {
        if !data.rows.iter().any(|r| r[v.index()].is_finite()) {
            return Err(Error::Input(format!(
                "law {} needs a finite {v}; the data has {}",
                law.id,
                present(data)
            )));
        }
    }
    let mut keep = Vec::new();
    let mut excluded = Vec::new();
    for (i, &y) in data.y.iter().enumerate() {
        let missing = law
            .vars
            .iter()
            .find(|v| !data.rows[i][v.index()].is_finite());
        if let Some(v) = missing {
            let why = if *v == Var::Qb {
                "no finite Qb (per-channel scales: one block per row)".to_string()
            } else {
                format!("no finite {v}")
            };
            excluded.push((i, why));
        } else if !y.is_finite() {
            excluded.push((i, "target is missing or not finite".to_string()));
        } else if space == Space::Log && y <= 0.0 {
            excluded.push((
                i,
                "target ≤ 0 (noise around zero) cannot enter a log-space fit".into(),
            ));
        } else {
            keep.push(i);
        }
    }
    let n_params = law.params.len();
    if keep.len() <= n_params {
        return Err(Error::Input(format!(
            "law {} has {n_params} parameters but only {} usable points",
            law.id,
            keep.len()
        )));
    }
    Ok((keep, excluded))
}

/// The best solution of a multi-start, and how many starts reached it.
fn best_of(law: &Law, sols: &[Solution]) -> Result<(Solution, usize)> {
    let best = sols
        .iter()
        .filter(|s| s.objective.is_finite())
        .min_by(|a, b| a.objective.total_cmp(&b.objective))
        .cloned()
        .ok_or_else(|| {
            Error::Input(format!(
                "law {} could not be evaluated at any start (outside its domain for this data?)",
                law.id
            ))
        })?;
    let at_best = sols
        .iter()
        .filter(|s| {
            s.objective <= best.objective * (1.0 + 1e-6) + 1e-12
                && s.params
                    .iter()
                    .zip(&best.params)
                    .all(|(a, b)| (a - b).abs() <= 1e-3 * (b.abs() + 1e-8))
        })
        .count();

    Ok((best, at_best))
}

/// Parameter estimates: values, standard errors from the covariance, bootstrap percentile CIs.
fn estimates(
    law: &Law,
    p: &[f64],
    covariance: Option<&Vec<Vec<f64>>>,
    boots: &[Vec<f64>],
) -> Vec<ParamEstimate> {
    law.params
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let mut samples: Vec<f64> = boots.iter().map(|b| b[i]).collect();
            samples.sort_by(f64::total_cmp);
            ParamEstimate {
                name: spec.name.clone(),
                value: p[i],
                std_err: covariance.map(|c| c[i][i].max(0.0).sqrt()),
                ci_low: percentile(&samples, 0.025),
                ci_high: percentile(&samples, 0.975),
            }
        })
        .collect()
}

/// The statistic over trials that a results-store column holds (see `search::export`).
pub fn statistic_of(column: &str) -> &'static str {
    let c = column.to_ascii_lowercase();
    if c == "delta_loss" || c == "kl_mean" {
        "mean over trials"
    } else if c.ends_with("_median") {
        "median over trials"
    } else if c.ends_with("_best") {
        "best of T trials"
    } else {
        "as given"
    }
}

/// Fits `law` to `data`.
pub fn fit(law: &Law, data: &Dataset, opts: &FitOptions) -> Result<FitReport> {
    crate::limits::FIT_BOOTSTRAP.check(opts.bootstrap)?;
    let (keep, excluded) = usable_points(law, data, opts.space)?;
    let rows: Vec<Row> = keep.iter().map(|&i| data.rows[i]).collect();
    let y: Vec<f64> = keep.iter().map(|&i| data.y[i]).collect();
    let mut problem = Problem::new(law, &rows, &y, opts.space, opts.loss);
    problem.max_iter = opts.max_iter;
    let weighting = weigh(&mut problem, data, &keep, opts);
    let ones = vec![1.0; rows.len()];

    let starts = match &opts.start {
        Some(s) => {
            law.check_params(s)?;
            vec![s.clone()]
        }
        None => start_grid(law),
    };
    let warm = opts.start.is_some();
    let sols: Vec<Solution> = starts
        .par_iter()
        .map(|s| problem.solve(s, &ones, !warm))
        .collect();
    let (best, at_best) = best_of(law, &sols)?;
    let p = best.params.clone();
    let pred: Vec<f64> = rows.iter().map(|r| law.eval(&p, r)).collect();
    let residuals: Vec<Residual> = keep
        .iter()
        .zip(&y)
        .zip(&pred)
        .map(|((&index, &yi), &pi)| Residual {
            index,
            y: yi,
            predicted: pi,
            residual: match opts.space {
                Space::Log => pi.ln() - yi.ln(),
                Space::Linear => pi - yi,
            },
        })
        .collect();
    let covariance = covariance(law, &p, &rows, &y, opts.space, &problem.precision);
    let cancelled = || {
        opts.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    };
    if cancelled() {
        return Err(Error::Cancelled);
    }
    let boots = if opts.bootstrap > 0 {
        bootstrap(
            &problem,
            &p,
            rows.len(),
            opts.bootstrap,
            opts.seed,
            &cancelled,
        )
    } else {
        Vec::new()
    };
    if cancelled() {
        return Err(Error::Cancelled);
    }
    let params = estimates(law, &p, covariance.as_ref(), &boots);
    let (r2_log, r2_linear, rmse, rmse_log, mape) = scores(&y, &pred);
    let (held_out, mut loso) = if opts.leave_one_size_out {
        held_out_all(&problem, &p, (&rows, &y), &keep, data)
    } else {
        (Vec::new(), Vec::new())
    };
    if !law.vars.contains(&Var::N) {
        loso.clear();
    }
    let simpler = if opts.compare_simpler {
        compare_simpler(law, data, opts, (rows.len(), rmse_log, r2_log))
    } else {
        None
    };
    let estimates_ci: Vec<(f64, Option<f64>, Option<f64>)> = params
        .iter()
        .map(|e: &ParamEstimate| (e.value, e.ci_low, e.ci_high))
        .collect();
    let statistic = statistic_of(&data.target_name).to_string();
    let mut flags = parameter_flags(&law.params, &estimates_ci);
    flags.extend(simpler.as_ref().and_then(simpler_flag));
    Ok(FitReport {
        law: law.id.clone(),
        formula: law.formula.clone(),
        target: data.target_name.clone(),
        statistic,
        weighting,
        space: opts.space,
        loss: opts.loss,
        n_points: rows.len(),
        excluded,
        params,
        objective: best.objective,
        converged: best.converged,
        iterations: best.iterations,
        starts_total: sols.len(),
        starts_converged: sols.iter().filter(|s| s.converged).count(),
        starts_at_best: at_best,
        r2_log,
        r2_linear,
        rmse,
        rmse_log,
        mape,
        covariance,
        leave_one_size_out: loso,
        bootstrap_resamples: opts.bootstrap,
        bootstrap_failed: opts.bootstrap - boots.len(),
        bootstrap_params: boots,
        residuals,
        held_out,
        flags,
        per_format: None,
        simpler,
    })
}

/// Leave-one-size-out, -format-out and -Qb-out on the kept points (`keep` indexes `data`), and
/// the per-size errors of the size groups (one refit per held-out group, shared by both).
fn held_out_all(
    problem: &Problem<'_>,
    p: &[f64],
    (rows, y): (&[Row], &[f64]),
    keep: &[usize],
    data: &Dataset,
) -> (Vec<HeldOutErrors>, Vec<HeldOut>) {
    let by_var = |v: Var, name: &str| -> Vec<(String, f64)> {
        rows.iter()
            .map(|r| (format!("{name} = {}", r[v.index()]), r[v.index()]))
            .collect()
    };
    let formats: Vec<(String, f64)> = keep
        .iter()
        .map(|&i| (data.format.get(i).cloned().unwrap_or_default(), 0.0))
        .collect();
    let mut out = Vec::new();
    let mut sizes = Vec::new();
    if rows.iter().all(|r| r[Var::N.index()].is_finite()) {
        if let Some((e, points)) = held_out(problem, p, (rows, y), "size", &by_var(Var::N, "N"), 3)
        {
            out.push(e);
            sizes = points.into_iter().map(size_error).collect();
        }
    }
    if formats.iter().all(|(f, _)| !f.is_empty()) {
        out.extend(held_out(problem, p, (rows, y), "format", &formats, 2).map(|(e, _)| e));
    }
    if rows.iter().all(|r| r[Var::Qb.index()].is_finite()) {
        out.extend(
            held_out(problem, p, (rows, y), "qb", &by_var(Var::Qb, "Qb"), 3).map(|(e, _)| e),
        );
    }
    (out, sizes)
}

/// RMS log error and MAPE of one held-out size's (measured, predicted) points.
fn size_error((n, held): (f64, Vec<(f64, f64)>)) -> HeldOut {
    let m = held.len() as f64;
    HeldOut {
        n,
        n_points: held.len(),
        rmse_log: (held
            .iter()
            .map(|(a, b)| (b.ln() - a.ln()).powi(2))
            .sum::<f64>()
            / m)
            .sqrt(),
        mape: held.iter().map(|(a, b)| ((b - a) / a).abs()).sum::<f64>() / m,
    }
}

/// The law's simpler nested form fitted to the same points (no bootstrap), against this fit's
/// (points, RMS log residual, R² log).
fn compare_simpler(
    law: &Law,
    data: &Dataset,
    opts: &FitOptions,
    (n, rmse_log, r2_log): (usize, f64, f64),
) -> Option<SimplerComparison> {
    let weak = law.simpler()?;
    let o = FitOptions {
        bootstrap: 0,
        leave_one_size_out: false,
        compare_simpler: false,
        start: None,
        ..opts.clone()
    };
    // The same points: those the nested law could use but this one could not are left out.
    let r = fit(&weak, &data.with_vars(&law.vars), &o).ok()?;
    let (aic, bic) = aic_bic(n, law.params.len(), rmse_log);
    let (aic_w, bic_w) = aic_bic(r.n_points, weak.params.len(), r.rmse_log);
    Some(SimplerComparison {
        law: weak.id,
        aic: (aic, aic_w),
        bic: (bic, bic_w),
        r2_log: (r2_log, r.r2_log),
    })
}

fn present(data: &Dataset) -> String {
    let vars: Vec<&str> = Var::ALL
        .iter()
        .filter(|v| data.has(**v))
        .map(|v| v.name())
        .collect();
    if vars.is_empty() {
        "no complete variable columns".into()
    } else {
        vars.join(", ")
    }
}

/// Cartesian product of the non-linear parameters' starts (scale 1, linear 1: solved later).
fn start_grid(law: &Law) -> Vec<Vec<f64>> {
    let mut grid = vec![Vec::with_capacity(law.params.len())];
    for spec in &law.params {
        let values: Vec<f64> = if spec.starts.is_empty() {
            vec![1.0]
        } else {
            spec.starts.clone()
        };
        grid = grid
            .into_iter()
            .flat_map(|g| {
                values.iter().map(move |&v| {
                    let mut g = g.clone();
                    g.push(v);
                    g
                })
            })
            .collect();
    }
    grid
}

/// The `q` quantile of sorted `samples` (linear interpolation), None when there are none.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| crate::search::export::quantile(sorted, q))
}

/// (R² log, R² linear, RMSE, RMSE log, MAPE).
fn scores(y: &[f64], pred: &[f64]) -> (f64, f64, f64, f64, f64) {
    let r2 = |a: &[f64], b: &[f64]| {
        let mean = a.iter().sum::<f64>() / a.len() as f64;
        let ss_tot: f64 = a.iter().map(|v| (v - mean).powi(2)).sum();
        let ss_res: f64 = a.iter().zip(b).map(|(v, w)| (v - w).powi(2)).sum();
        if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            f64::NAN
        }
    };
    let pos: Vec<(f64, f64)> = y
        .iter()
        .zip(pred)
        .filter(|(a, b)| **a > 0.0 && **b > 0.0)
        .map(|(a, b)| (a.ln(), b.ln()))
        .collect();
    let (ly, lp): (Vec<f64>, Vec<f64>) = pos.iter().copied().unzip();
    let n = y.len() as f64;
    let rmse = (y
        .iter()
        .zip(pred)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let rmse_log = if ly.is_empty() {
        f64::NAN
    } else {
        (ly.iter()
            .zip(&lp)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / ly.len() as f64)
            .sqrt()
    };
    let nz: Vec<f64> = y
        .iter()
        .zip(pred)
        .filter(|(a, _)| **a != 0.0)
        .map(|(a, b)| ((b - a) / a).abs())
        .collect();
    let mape = nz.iter().sum::<f64>() / nz.len().max(1) as f64;
    (r2(&ly, &lp), r2(y, pred), rmse, rmse_log, mape)
}

/// s²·(JᵀJ)⁻¹ with J the Jacobian of the residuals in the fitted space, natural parameters.
fn covariance(
    law: &Law,
    p: &[f64],
    rows: &[Row],
    y: &[f64],
    space: Space,
    precision: &[f64],
) -> Option<Vec<Vec<f64>>> {
    let k = p.len();
    let n = rows.len();
    if n <= k {
        return None;
    }
    let mut jtj = DMatrix::<f64>::zeros(k, k);
    let mut grad = vec![0.0; k];
    let mut ss = 0.0;
    for (i, (row, &yi)) in rows.iter().zip(y).enumerate() {
        let wi = precision.get(i).copied().unwrap_or(1.0);
        let v = law.eval_grad(p, row, &mut grad);
        let (r, scale) = match space {
            Space::Log => (v.ln() - yi.ln(), 1.0 / v),
            Space::Linear => (v - yi, 1.0),
        };
        ss += wi * r * r;
        for a in 0..k {
            for b in 0..k {
                jtj[(a, b)] += wi * grad[a] * grad[b] * scale * scale;
            }
        }
    }
    let s2 = ss / (n - k) as f64;
    let inv = jtj.try_inverse()?;
    let cov: Vec<Vec<f64>> = (0..k)
        .map(|a| (0..k).map(|b| s2 * inv[(a, b)]).collect())
        .collect();
    cov.iter().flatten().all(|v| v.is_finite()).then_some(cov)
}

/// Gives `problem` the precision weights of the kept points when `opts` asks for them and the
/// data carries SEs; returns how the points are weighted, in words.
fn weigh(problem: &mut Problem<'_>, data: &Dataset, keep: &[usize], opts: &FitOptions) -> String {
    let se: Vec<f64> = keep
        .iter()
        .map(|&i| data.se.get(i).copied().unwrap_or(f64::NAN))
        .collect();
    match precision_weights(problem.y, &se, opts.space) {
        Some(w) if opts.weighted => {
            problem.precision = w;
            format!("inverse variance from `{}_se`", data.target_name)
        }
        _ => "none (every point equal)".to_string(),
    }
}

/// Precision weights of points with targets `y` and standard errors `se` in the residual
/// space: σ = se/y in log space (delta method), se in linear space; w = 1/σ², with σ floored at
/// a tenth of the median σ (so that no point with a tiny SE outweighs the rest) and the weights
/// scaled to mean 1 (so that the Huber threshold keeps its meaning). None when any point lacks
/// a finite, positive SE: a fit is weighted whole or not at all.
pub fn precision_weights(y: &[f64], se: &[f64], space: Space) -> Option<Vec<f64>> {
    if y.is_empty() || se.len() != y.len() {
        return None;
    }
    let sigma: Vec<f64> = y
        .iter()
        .zip(se)
        .map(|(&yi, &s)| match space {
            Space::Log => s / yi.abs(),
            Space::Linear => s,
        })
        .collect();
    if !sigma.iter().all(|s| s.is_finite() && *s > 0.0) {
        return None;
    }
    let mut sorted = sigma.clone();
    sorted.sort_by(f64::total_cmp);
    let floor = 0.1 * sorted[sorted.len() / 2];
    let w: Vec<f64> = sigma.iter().map(|s| 1.0 / s.max(floor).powi(2)).collect();
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    Some(w.iter().map(|x| x / mean).collect())
}

fn bootstrap(
    problem: &Problem<'_>,
    p: &[f64],
    n: usize,
    resamples: usize,
    seed: u64,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Vec<Vec<f64>> {
    (0..resamples)
        .into_par_iter()
        .filter_map(|b| {
            if cancelled() {
                return None;
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(splitmix(seed ^ splitmix(b as u64)));
            let mut w = vec![0.0; n];
            for _ in 0..n {
                w[rng.random_range(0..n)] += 1.0;
            }
            let sol = problem.solve(p, &w, false);
            (sol.objective.is_finite() && sol.params.iter().all(|v| v.is_finite()))
                .then_some(sol.params)
        })
        .collect()
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
