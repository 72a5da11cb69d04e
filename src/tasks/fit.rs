//! The fit task: a law (built-in or typed) fitted to measured points (a CSV, a results store's
//! slice, or points already in memory) with bootstrap CIs and held-out errors; and the predict
//! task that reads a fit report back. `quantscape fit` and the Laws view both run [`run`], so the
//! same request gives the same [`FitReport`] through either.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::jobs::JobCtx;
use crate::laws::formula::Formula;
use crate::laws::per_format::per_format_scale;
use crate::laws::{fit, Dataset, FitOptions, FitReport, Law, Loss, Space, Target, Var};

/// Bounds and starts of one parameter of a typed formula.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamBounds {
    /// Parameter name.
    pub name: String,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Multi-start values.
    pub starts: Vec<f64>,
}

impl ParamBounds {
    /// Parses `NAME=LO:HI:START[,START…]`.
    pub fn parse(spec: &str) -> Result<Self> {
        let parsed = spec.split_once('=').and_then(|(name, rest)| {
            let mut it = rest.splitn(3, ':');
            let lower = it.next()?.parse::<f64>().ok()?;
            let upper = it.next()?.parse::<f64>().ok()?;
            let starts: Option<Vec<f64>> = it.next()?.split(',').map(|s| s.parse().ok()).collect();
            Some(Self {
                name: name.to_string(),
                lower,
                upper,
                starts: starts?,
            })
        });
        parsed.ok_or_else(|| {
            Error::Input(format!(
                "--param `{spec}`: expected NAME=LO:HI:START[,START…]"
            ))
        })
    }
}

/// Which law.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LawSpec {
    /// A built-in law by id.
    Builtin(String),
    /// A law typed as text; identifiers other than the variables are parameters.
    Formula {
        /// The formula.
        text: String,
        /// What it predicts.
        target: Target,
        /// Bounds and starts of its parameters.
        params: Vec<ParamBounds>,
    },
}

impl LawSpec {
    /// The law, or an error naming the built-in ids / the formula's problem.
    pub fn resolve(&self) -> Result<Law> {
        match self {
            LawSpec::Builtin(id) => Law::by_id(id).ok_or_else(|| {
                let ids: Vec<String> = Law::builtins().into_iter().map(|l| l.id).collect();
                Error::Input(format!(
                    "unknown law `{id}`; built-in laws: {}",
                    ids.join(", ")
                ))
            }),
            LawSpec::Formula {
                text,
                target,
                params,
            } => {
                let mut f = Formula::parse(text)?;
                for p in params {
                    f.set_param(&p.name, p.lower, p.upper, &p.starts)?;
                }
                Ok(Law::from_formula(f, *target))
            }
        }
    }
}

/// Where the points come from.
#[derive(Clone, Debug)]
pub enum FitData {
    /// A CSV or a results store, keeping the rows whose `(column, value)` filters all match.
    Path {
        /// The file.
        path: PathBuf,
        /// `--where` filters.
        filters: Vec<(String, String)>,
        /// Target column (None: the law's default names).
        target: Option<String>,
    },
    /// Points already loaded (the explorer's synthetic data, a CSV it read).
    Points(Dataset),
}

impl FitData {
    /// Loads the points for a law predicting `kind`.
    pub fn load(&self, kind: Target) -> Result<Dataset> {
        match self {
            FitData::Path {
                path,
                filters,
                target,
            } => Dataset::from_path_where(path, target.as_deref(), kind, filters),
            FitData::Points(d) => Ok(d.clone()),
        }
    }
}

/// A fit to run.
#[derive(Clone, Debug)]
pub struct FitRequest {
    /// The points.
    pub data: FitData,
    /// The law.
    pub law: LawSpec,
    /// Loss on the residuals.
    pub loss: Loss,
    /// Residual space.
    pub space: Space,
    /// Bootstrap resamples (0: none).
    pub bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Warm start (the explorer's refits), else the multi-start grid.
    pub start: Option<Vec<f64>>,
    /// Model sizes N left out of the fit.
    pub exclude_sizes: Vec<f64>,
    /// Also fit the law with one C per low format (the baseline of the format-aware laws).
    pub per_format_c: bool,
    /// Weight points by their standard errors when the data carries them.
    pub weighted: bool,
}

impl FitRequest {
    /// The defaults of `quantscape fit` (Huber δ = 1e-3 on log residuals, 1,000 resamples).
    pub fn new(data: FitData, law: LawSpec) -> Self {
        Self {
            data,
            law,
            loss: Loss::Huber { delta: 1e-3 },
            space: Space::Log,
            bootstrap: 1000,
            seed: 0,
            start: None,
            exclude_sizes: Vec::new(),
            per_format_c: false,
            weighted: true,
        }
    }

    /// Checks the options before any data is read.
    pub fn validate(&self) -> Result<()> {
        crate::limits::FIT_BOOTSTRAP.check(self.bootstrap)?;
        if let Loss::Huber { delta } = self.loss {
            if !(delta > 0.0 && delta.is_finite()) {
                return Err(Error::Input(format!(
                    "--huber-delta must be positive, got {delta}"
                )));
            }
        }
        Ok(())
    }
}

/// A fit's law, points and report.
#[derive(Clone, Debug)]
pub struct FitOutcome {
    /// The law fitted.
    pub law: Law,
    /// The points it was fitted to (excluded sizes removed).
    pub data: Dataset,
    /// The report.
    pub report: FitReport,
}

/// `data` without the rows whose N is one of `sizes` (bit-equal).
pub fn without_sizes(data: &Dataset, sizes: &[f64]) -> Dataset {
    if sizes.is_empty() {
        return data.clone();
    }
    let keep = |r: &crate::laws::Row| {
        let n = r[Var::N.index()];
        !sizes.iter().any(|s| s.to_bits() == n.to_bits())
    };
    let mut out = data.clone();
    out.rows.clear();
    out.y.clear();
    out.family.clear();
    out.format.clear();
    out.se.clear();
    for (i, r) in data.rows.iter().enumerate() {
        if keep(r) {
            out.rows.push(*r);
            out.y.push(data.y[i]);
            out.family
                .push(data.family.get(i).cloned().unwrap_or_default());
            out.format
                .push(data.format.get(i).cloned().unwrap_or_default());
            out.se.push(data.se.get(i).copied().unwrap_or(f64::NAN));
        }
    }
    out
}

/// Fits the law (stage `fit`; cancellable between local solves).
pub fn run(req: &FitRequest, ctx: &JobCtx) -> Result<FitOutcome> {
    req.validate()?;
    let law = req.law.resolve()?;
    let data = without_sizes(&req.data.load(law.target)?, &req.exclude_sizes);
    ctx.report("fit", 0, 1);
    let opts = FitOptions {
        loss: req.loss,
        space: req.space,
        bootstrap: req.bootstrap,
        seed: req.seed,
        start: req.start.clone(),
        cancel: Some(ctx.cancel_flag()),
        weighted: req.weighted,
        ..FitOptions::default()
    };
    let in_file = |e: Error| match (&req.data, e) {
        (_, Error::Cancelled) => Error::Cancelled,
        (FitData::Path { path, .. }, e) => Error::Input(format!("fitting {}: {e}", path.display())),
        (_, e) => e,
    };
    let mut report = fit(&law, &data, &opts).map_err(in_file)?;
    if req.per_format_c {
        report.per_format = Some(per_format_scale(&law, &data, &opts).map_err(in_file)?);
    }
    ctx.report("fit", 1, 1);
    Ok(FitOutcome { law, data, report })
}

/// Reads a report written by `fit --json`: the law it names (re-built from its formula when it
/// was typed) and its fitted parameter values.
pub fn read_fit_report(path: &Path) -> Result<(Law, Vec<f64>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let r: FitReport = serde_json::from_str(&text)
        .map_err(|e| Error::Input(format!("not a fit report: {e} ({})", path.display())))?;
    let law = if r.law == "formula" {
        Law::from_formula(Formula::parse(&r.formula)?, Target::DeltaLoss)
    } else {
        Law::by_id(&r.law)
            .ok_or_else(|| Error::Input(format!("unknown law `{}` ({})", r.law, path.display())))?
    };
    let values: Vec<f64> = r.params.iter().map(|p| p.value).collect();
    if values.len() != law.params.len() {
        return Err(Error::Input(format!(
            "the report has {} parameter values but law `{}` takes {} ({})",
            values.len(),
            law.id,
            law.params.len(),
            path.display()
        )));
    }
    Ok((law, values))
}
