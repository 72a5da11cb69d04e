//! The pareto task: which low format and block size to build. A format-aware law
//! (`format-eps`, ΔL = C·e^{A·Qr}·N^{−γ_N}·ε^κ) is fitted pooled over every low format and Qb of
//! a results store's slice; ε (= ‖W_q − W‖²/‖W‖², RTN) of each candidate format × Qb is measured
//! on a reference checkpoint's quantizable weights; the law then predicts ΔL at the target N and
//! Qr for every candidate, with a bootstrap band, and marks the Pareto front of bits per weight
//! against predicted ΔL. `quantscape pareto` and the Hardware view both run it ([`prepare`], then
//! [`Prepared::report`] per target), so one request gives one table through either.
//!
//! Units: N non-embedding parameters; Qr a fraction; bits per weight of the whole model
//! (Qr·bpw_low(Qb) + (1 − Qr)·16, the rest in bf16); ΔL nats per token; ε dimensionless.
//! Invariants: a prediction outside the fitted N range says by how many decades; a candidate
//! whose ε lies outside the fitted ε range is marked; the band is the fit's 95 % bootstrap
//! percentile interval, which does not cover the error of extrapolating the law's form.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::codecs::{energy_ratio, rtn_error_energy, Format};
use crate::error::{Error, Result};
use crate::jobs::JobCtx;
use crate::laws::diagnose::{Flag, HeldOutErrors};
use crate::laws::fit::ParamEstimate;
use crate::laws::{fit, Dataset, FitOptions, FitReport, Law, Target, Var, EMPTY_ROW};
use crate::model::Transformer;
use crate::search::models::{bundled_models_dir, resolve_model, ResolvedModel};
use crate::search::store::{FeatureRow, Store, SQNR_FEATURE};

/// The reference checkpoint when none is named and it is in the Hugging Face cache: real LLM
/// weights.
pub const DEFAULT_REFERENCE: &str = "HuggingFaceTB/SmolLM2-135M";

/// Candidate low formats (block-scaled presets).
pub const FORMATS: [&str; 9] = [
    "mxfp4",
    "nvfp4",
    "mxint4",
    "int4_sym",
    "int4_asym",
    "nf4",
    "int3_asym",
    "mxfp6_e2m3",
    "mxint8",
];

/// Candidate block sizes.
pub const BLOCKS: [usize; 6] = [8, 16, 32, 64, 128, 256];

/// The law the table is built on.
pub const LAW: &str = "format-eps";

/// A pareto table to build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParetoRequest {
    /// The results store whose slice the law is fitted to.
    pub results: PathBuf,
    /// `(column, value)` filters of the slice (default: layer-wise, bf16 high, RTN).
    pub filters: Vec<(String, String)>,
    /// The model whose weights ε is measured on (`bundled:NAME`, a folder or `org/name`);
    /// `None`: [`DEFAULT_REFERENCE`] when cached, else the store's largest model.
    pub reference: Option<String>,
    /// Candidate formats.
    pub formats: Vec<String>,
    /// Candidate block sizes.
    pub blocks: Vec<usize>,
    /// Bootstrap resamples of the fit (the band).
    pub bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
}

impl ParetoRequest {
    /// The defaults of `quantscape pareto` for `results`.
    pub fn new(results: PathBuf) -> Self {
        Self {
            results,
            filters: default_filters(),
            reference: None,
            formats: FORMATS.iter().map(|s| (*s).to_string()).collect(),
            blocks: BLOCKS.to_vec(),
            bootstrap: 200,
            seed: 0,
        }
    }

    /// Checks the options before anything is read.
    pub fn validate(&self) -> Result<()> {
        crate::limits::FIT_BOOTSTRAP.check(self.bootstrap)?;
        if self.formats.is_empty() || self.blocks.is_empty() {
            return Err(Error::Input(
                "pareto needs at least one format and one block size".into(),
            ));
        }
        for f in &self.formats {
            Format::parse(f)?;
        }
        if let Some(b) = self.blocks.iter().find(|b| **b == 0 || **b > 1 << 16) {
            return Err(Error::Input(format!("block size {b} is outside 1..=65536")));
        }
        Ok(())
    }
}

/// The slice the law is fitted to by default.
pub fn default_filters() -> Vec<(String, String)> {
    [
        ("granularity", "layer"),
        ("high", "bf16"),
        ("method", "rtn"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
    .collect()
}

/// A candidate's measured error on the reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Preset name.
    pub format: String,
    /// Block size.
    pub qb: usize,
    /// Bits per weight of the low format alone at this Qb.
    pub bits_low: f64,
    /// ε on the reference's quantizable weights.
    pub eps: f64,
}

/// The fitted law, the reference's candidates and the ranges the fit covers.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The request.
    pub request: ParetoRequest,
    /// The law.
    pub law: Law,
    /// Its fit (with the bootstrap parameter vectors).
    pub fit: FitReport,
    /// The reference model as named, and its folder.
    pub reference: (String, PathBuf),
    /// Candidates, formats × blocks in request order.
    pub candidates: Vec<Candidate>,
    /// Smallest and largest N fitted.
    pub n_range: [f64; 2],
    /// Smallest and largest ε fitted.
    pub eps_range: [f64; 2],
    /// Low formats in the fitted slice.
    pub fitted_formats: Vec<String>,
}

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParetoRow {
    /// Preset name.
    pub format: String,
    /// Block size.
    pub qb: usize,
    /// Bits per weight of the whole model at the target Qr.
    pub bits_per_weight: f64,
    /// ε on the reference.
    pub eps: f64,
    /// Predicted ΔL (nats/token).
    pub delta_loss: f64,
    /// 95 % bootstrap band of the prediction, when the fit was bootstrapped.
    pub ci: Option<[f64; 2]>,
    /// On the Pareto front (no other row has ≤ bits and ≤ ΔL with one strictly lower).
    pub pareto: bool,
    /// ε lies outside the fitted ε range (the law extrapolates in ε).
    pub eps_outside_fit: bool,
}

/// The table and what it rests on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParetoReport {
    /// The store.
    pub results: PathBuf,
    /// The slice's filters.
    pub filters: Vec<(String, String)>,
    /// Law id and formula.
    pub law: String,
    /// The formula.
    pub formula: String,
    /// Fitted parameters with SEs and bootstrap CIs.
    pub params: Vec<ParamEstimate>,
    /// Points fitted.
    pub n_points: usize,
    /// The statistic over trials fitted (`mean over trials`, …).
    #[serde(default)]
    pub statistic: String,
    /// How the points were weighted.
    #[serde(default)]
    pub weighting: String,
    /// R² of ln ΔL.
    pub r2_log: f64,
    /// Held-out errors (leave one size, format, Qb out).
    pub held_out: Vec<HeldOutErrors>,
    /// Degenerate-fit flags.
    pub flags: Vec<Flag>,
    /// Low formats fitted.
    pub fitted_formats: Vec<String>,
    /// N range fitted.
    pub n_range: [f64; 2],
    /// ε range fitted.
    pub eps_range: [f64; 2],
    /// The reference model as named.
    pub reference: String,
    /// Target N.
    pub n: f64,
    /// Target Qr.
    pub qr: f64,
    /// Decades of N between the target and the nearest end of the fitted range (0 inside).
    pub extrapolation_decades: f64,
    /// What the table cannot claim, in sentences.
    pub notices: Vec<String>,
    /// Formats × blocks, in request order.
    pub rows: Vec<ParetoRow>,
}

/// The reference: the named model, else [`DEFAULT_REFERENCE`] when cached, else the largest
/// model of the store.
fn reference_model(req: &ParetoRequest) -> Result<(String, PathBuf)> {
    let bundled = bundled_models_dir();
    if let Some(name) = &req.reference {
        let m = resolve_model(name, &bundled)?;
        return Ok((m.spec, m.dir));
    }
    if let Ok(m) = resolve_model(DEFAULT_REFERENCE, &bundled) {
        return Ok((m.spec, m.dir));
    }
    let contents = crate::search::export::read_store(&req.results)?;
    let largest = contents
        .models
        .iter()
        .max_by_key(|m| m.n_params_non_embedding)
        .ok_or_else(|| {
            Error::Input(format!(
                "{} has no models to measure ε on; name one with --reference",
                req.results.display()
            ))
        })?;
    let m = resolve_model(&largest.model, &bundled)?;
    Ok((m.spec, m.dir))
}

/// ε of every format (with its block size) on the linear weights of the checkpoint in `dir`,
/// one pass over the weights (stage `eps`, one step per weight matrix).
pub fn measure_eps(dir: &std::path::Path, parsed: &[Format], ctx: &JobCtx) -> Result<Vec<f64>> {
    let model = Transformer::load(dir)?;
    let n_sites = model.linears.len();
    let mut sums = vec![(0.0f64, 0.0f64); parsed.len()];
    let mut scratch = Vec::new();
    for (i, site) in model.linears.iter().enumerate() {
        ctx.report("eps", i, n_sites);
        if ctx.cancelled() {
            return Err(Error::Cancelled);
        }
        let w = model.linear(i)?.weight.flatten_all()?.to_vec1::<f32>()?;
        for (fmt, sum) in parsed.iter().zip(&mut sums) {
            let (e, s) =
                rtn_error_energy(&w, site.out_features, site.in_features, fmt, &mut scratch)?;
            sum.0 += e;
            sum.1 += s;
        }
    }
    ctx.report("eps", n_sites, n_sites);
    sums.into_iter()
        .map(|(e, s)| energy_ratio(e, s).map_err(|err| Error::checkpoint(dir, err.to_string())))
        .collect()
}

/// Measures ε for every (model, low format) of the store's trials that has none yet, on the
/// models of `models` (stage `eps`); returns how many were added. Stored as the
/// [`SQNR_FEATURE`] of direction `low|rtn`, which the format-aware laws read.
pub fn fill_eps(store: &Store, models: &[ResolvedModel], ctx: &JobCtx) -> Result<usize> {
    let have: HashSet<(String, String)> = store
        .features()?
        .into_iter()
        .filter(|f| f.feature == SQNR_FEATURE)
        .map(|f| (f.model, f.direction))
        .collect();
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in store.trials()? {
        if !have.contains(&(t.model.clone(), format!("{}|rtn", t.low))) {
            want.entry(t.model).or_default().insert(t.low);
        }
    }
    let mut added = 0;
    for (model, lows) in want {
        let Some(m) = models.iter().find(|m| m.spec == model) else {
            continue;
        };
        let lows: Vec<String> = lows.into_iter().collect();
        let formats: Vec<Format> = lows
            .iter()
            .map(|l| Format::parse(l))
            .collect::<Result<_>>()?;
        let eps = measure_eps(&m.dir, &formats, ctx)?;
        let rows: Vec<FeatureRow> = lows
            .iter()
            .zip(eps)
            .map(|(low, e)| FeatureRow {
                model: model.clone(),
                feature: SQNR_FEATURE.into(),
                direction: format!("{low}|rtn"),
                value: -10.0 * e.log10(),
                settings: r#"{"method":"rtn","measured_by":"sweep"}"#.into(),
            })
            .collect();
        store.add_features(&rows)?;
        added += rows.len();
    }
    Ok(added)
}

fn range(values: impl Iterator<Item = f64>) -> [f64; 2] {
    values.fold([f64::INFINITY, f64::NEG_INFINITY], |r, v| {
        [r[0].min(v), r[1].max(v)]
    })
}

/// Fits the law on the slice and measures ε on the reference (stages `fit`, `eps`).
pub fn prepare(req: &ParetoRequest, ctx: &JobCtx) -> Result<Prepared> {
    req.validate()?;
    let law = Law::by_id(LAW).ok_or_else(|| Error::Input(format!("no law {LAW}")))?;
    let data = Dataset::from_path_where(&req.results, None, Target::DeltaLoss, &req.filters)?;
    if !data.has(Var::Eps) {
        return Err(Error::Input(format!(
            "{}: the slice has configurations without a measured ε (rtn_sqnr_db); rerun \
             `quantscape sweep` on it to measure them",
            req.results.display()
        )));
    }
    ctx.report("fit", 0, 1);
    let opts = FitOptions {
        bootstrap: req.bootstrap,
        seed: req.seed,
        cancel: Some(ctx.cancel_flag()),
        ..FitOptions::default()
    };
    let report = fit(&law, &data, &opts).map_err(|e| match e {
        Error::Cancelled => Error::Cancelled,
        e => Error::Input(format!("fitting {}: {e}", req.results.display())),
    })?;
    ctx.report("fit", 1, 1);
    let reference = reference_model(req)?;
    let pairs: Vec<(String, usize)> = req
        .formats
        .iter()
        .flat_map(|f| req.blocks.iter().map(move |b| (f.clone(), *b)))
        .collect();
    let formats: Vec<Format> = pairs
        .iter()
        .map(|(f, qb)| Format::parse(&format!("{f},block={qb}")))
        .collect::<Result<_>>()?;
    let eps = measure_eps(&reference.1, &formats, ctx)?;
    let candidates = pairs
        .into_iter()
        .zip(eps)
        .map(|((format, qb), eps)| {
            let bits_low = Format::parse(&format)?.bits_per_weight_at(qb);
            Ok(Candidate {
                format,
                qb,
                bits_low,
                eps,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut fitted_formats: Vec<String> = data.format.clone();
    fitted_formats.sort();
    fitted_formats.dedup();
    Ok(Prepared {
        request: req.clone(),
        law,
        n_range: range(data.rows.iter().map(|r| r[Var::N.index()])),
        eps_range: range(data.rows.iter().map(|r| r[Var::Eps.index()])),
        fit: report,
        reference,
        candidates,
        fitted_formats,
    })
}

/// Marks the rows no other row dominates (≤ bits and ≤ ΔL, one strictly lower).
pub fn mark_front(rows: &mut [ParetoRow]) {
    let pts: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (r.bits_per_weight, r.delta_loss))
        .collect();
    for r in rows.iter_mut() {
        r.pareto = r.delta_loss.is_finite()
            && !pts.iter().any(|&(b, d)| {
                d.is_finite()
                    && b <= r.bits_per_weight
                    && d <= r.delta_loss
                    && (b < r.bits_per_weight || d < r.delta_loss)
            });
    }
}

/// Decades of `n` beyond `range` (0 inside it).
pub fn decades_outside(n: f64, range: [f64; 2]) -> f64 {
    if n > range[1] {
        (n / range[1]).log10()
    } else if n < range[0] {
        (range[0] / n).log10()
    } else {
        0.0
    }
}

impl Prepared {
    /// The table at target size `n` and ratio `qr` (cheap: no fit, no weights).
    pub fn report(&self, n: f64, qr: f64) -> Result<ParetoReport> {
        if !(n.is_finite() && n >= 1.0 && (0.0..=1.0).contains(&qr)) {
            return Err(Error::Input(format!(
                "pareto needs N ≥ 1 and Qr in [0, 1], got N = {n}, Qr = {qr}"
            )));
        }
        let values: Vec<f64> = self.fit.params.iter().map(|p| p.value).collect();
        let boots = &self.fit.bootstrap_params;
        let mut rows: Vec<ParetoRow> = self
            .candidates
            .iter()
            .map(|c| {
                let mut x = EMPTY_ROW;
                x[Var::N.index()] = n;
                x[Var::Qr.index()] = qr;
                x[Var::Eps.index()] = c.eps;
                let delta_loss = if qr == 0.0 {
                    0.0
                } else {
                    self.law.eval(&values, &x)
                };
                let ci = (!boots.is_empty() && qr > 0.0).then(|| {
                    let mut s: Vec<f64> = boots.iter().map(|p| self.law.eval(p, &x)).collect();
                    s.sort_by(f64::total_cmp);
                    [
                        crate::search::export::quantile(&s, 0.025),
                        crate::search::export::quantile(&s, 0.975),
                    ]
                });
                ParetoRow {
                    format: c.format.clone(),
                    qb: c.qb,
                    bits_per_weight: qr * c.bits_low + (1.0 - qr) * 16.0,
                    eps: c.eps,
                    delta_loss,
                    ci,
                    pareto: false,
                    eps_outside_fit: c.eps < self.eps_range[0] || c.eps > self.eps_range[1],
                }
            })
            .collect();
        mark_front(&mut rows);
        let decades = decades_outside(n, self.n_range);
        let mut notices = Vec::new();
        if decades > 0.0 {
            notices.push(format!(
                "target N = {n:.3e} lies {decades:.1} decades outside the fitted N range \
                 [{:.3e}, {:.3e}]: the band is the fit's uncertainty only, not the error of \
                 extrapolating the law's form",
                self.n_range[0], self.n_range[1]
            ));
        }
        let outside = rows.iter().filter(|r| r.eps_outside_fit).count();
        if outside > 0 {
            notices.push(format!(
                "{outside} of {} candidates have ε outside the fitted range [{:.3e}, {:.3e}] \
                 (ε measured on {})",
                rows.len(),
                self.eps_range[0],
                self.eps_range[1],
                self.reference.0
            ));
        }
        if !self.fit.flags.is_empty() {
            notices.push(format!(
                "the fit is flagged: {}",
                self.fit
                    .flags
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        Ok(ParetoReport {
            results: self.request.results.clone(),
            filters: self.request.filters.clone(),
            law: self.law.id.clone(),
            formula: self.law.formula.clone(),
            params: self.fit.params.clone(),
            n_points: self.fit.n_points,
            statistic: self.fit.statistic.clone(),
            weighting: self.fit.weighting.clone(),
            r2_log: self.fit.r2_log,
            held_out: self.fit.held_out.clone(),
            flags: self.fit.flags.clone(),
            fitted_formats: self.fitted_formats.clone(),
            n_range: self.n_range,
            eps_range: self.eps_range,
            reference: self.reference.0.clone(),
            n,
            qr,
            extrapolation_decades: decades,
            notices,
            rows,
        })
    }
}

/// [`prepare`] then [`Prepared::report`] at `n` and `qr`.
pub fn run(req: &ParetoRequest, n: f64, qr: f64, ctx: &JobCtx) -> Result<ParetoReport> {
    prepare(req, ctx)?.report(n, qr)
}
