//! `quantscape laws`, `fit` and `predict`: the law library from the command line.
//!
//! `fit DATA.csv --law unified-strong [--bootstrap 1000]` prints parameters with standard errors
//! and bootstrap 95% CIs, R², RMSE, MAPE, multi-start agreement and leave-one-size-out errors;
//! `--json` prints the whole report (which `predict --fit` reads back). `--formula` fits a law
//! typed as text, with `--param NAME=LO:HI:START[,START…]` for its bounds and starts.
//! `predict` evaluates a law at given variable values (comma lists form a grid).
//! Data: CSV, or a sweep's results store (one point per configuration); `--where COLUMN=VALUE`
//! keeps one slice (granularity, formats, architecture, …); `--metric` (ΔL or KL) and
//! `--statistic` (mean, median, best of T) pick the store's column, and points are weighted by
//! their standard errors unless `--unweighted`. The report names the statistic and weighting.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use quantscape::laws::{
    grid_rows, is_results_store, predict, Dataset, FitReport, Law, Loss, Space, Target, Var,
};
use quantscape::search::{Metric, Statistic};
use quantscape::tasks::fit::{self, read_fit_report, FitData, FitRequest, LawSpec, ParamBounds};

/// Arguments of `laws`.
#[derive(clap::Args, Debug)]
pub struct LawsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Which law: a built-in id or a typed formula.
#[derive(clap::Args, Debug)]
pub struct LawChoice {
    /// Built-in law id (see `quantscape laws`).
    #[arg(long, default_value = "unified-strong")]
    pub law: String,
    /// A law typed as text instead, e.g. `C*exp(A*Qr)*N^(-g)`; other identifiers are parameters.
    #[arg(long)]
    pub formula: Option<String>,
    /// What the formula predicts: `delta` (ΔL) or `loss`.
    #[arg(long, default_value = "delta")]
    pub formula_target: String,
    /// Bounds and starts of a formula parameter: NAME=LO:HI:START[,START…] (repeatable).
    #[arg(long = "param")]
    pub params: Vec<String>,
}

/// Arguments of `fit`.
#[derive(clap::Args, Debug)]
pub struct FitArgs {
    /// Measured points: a CSV with columns such as N, D, Qr, Qb, P, E, M, bits and the target, or
    /// a sweep's results store (`.sqlite`: one point per configuration, mean ΔL over its trials).
    pub data: PathBuf,
    /// The law.
    #[command(flatten)]
    pub choice: LawChoice,
    /// Target column (default: dL/delta_loss for ΔL laws, loss/nll for loss laws; for a
    /// results store, the column of --metric and --statistic).
    #[arg(long, conflicts_with_all = ["metric", "statistic"])]
    pub target: Option<String>,
    /// What to fit from a results store: `delta_nll` (ΔL) or `kl` (KL(base‖quant)).
    #[arg(long)]
    pub metric: Option<String>,
    /// Which statistic of a configuration's trials to fit: `mean` (random assignments),
    /// `median`, or `best` (best of T: what a random search finds). Default: the store's spec
    /// says, else mean.
    #[arg(long)]
    pub statistic: Option<String>,
    /// Fit every point with equal weight, even when the data carries standard errors
    /// (default: inverse-variance weights from the target's `_se` column).
    #[arg(long)]
    pub unweighted: bool,
    /// Keep only the points whose COLUMN holds VALUE (repeatable, all must hold), e.g.
    /// `--where granularity=layer --where low=mxfp4 --where high=bf16 --where
    /// architecture=LlamaForCausalLM` for one slice of one family of a results store; a format
    /// matches with or without its `,block=…` override.
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    pub filters: Vec<String>,
    /// Huber threshold δ on the residuals.
    #[arg(long, default_value_t = 1e-3)]
    pub huber_delta: f64,
    /// Plain least squares instead of Huber.
    #[arg(long)]
    pub least_squares: bool,
    /// Residuals: `log` (ln ŷ − ln y; drops y ≤ 0) or `linear` (ŷ − y).
    #[arg(long, default_value = "log")]
    pub space: String,
    /// Bootstrap resamples for the confidence intervals (0 = none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also fit the law with one C per low format (other parameters shared): the baseline a
    /// format-aware law must beat; it cannot predict a held-out format.
    #[arg(long)]
    pub per_format_c: bool,
    /// Print the full report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// The law.
    #[command(flatten)]
    pub choice: LawChoice,
    /// Parameter values NAME=VALUE,NAME=VALUE… (all of them, see `quantscape laws`).
    #[arg(long = "values", conflicts_with = "fit")]
    pub values: Option<String>,
    /// A report written by `fit --json` (law and parameters come from it).
    #[arg(long)]
    pub fit: Option<PathBuf>,
    /// Non-embedding parameter counts (comma list).
    #[arg(long = "N")]
    pub n: Option<String>,
    /// Training tokens.
    #[arg(long = "D")]
    pub d: Option<String>,
    /// Low-precision fractions.
    #[arg(long = "Qr")]
    pub qr: Option<String>,
    /// Block sizes.
    #[arg(long = "Qb")]
    pub qb: Option<String>,
    /// Precision bits.
    #[arg(long = "P")]
    pub p: Option<String>,
    /// Exponent bits.
    #[arg(long = "E")]
    pub e: Option<String>,
    /// Mantissa bits.
    #[arg(long = "M")]
    pub m: Option<String>,
    /// Bits per weight.
    #[arg(long = "bits")]
    pub bits: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Lists the built-in laws.
pub fn run_laws(a: &LawsArgs) -> anyhow::Result<ExitCode> {
    let laws = Law::builtins();
    if a.json {
        let v: Vec<serde_json::Value> = laws
            .iter()
            .map(|l| {
                serde_json::json!({"id": l.id, "title": l.title, "formula": l.formula,
                    "target": l.target, "vars": l.vars, "params": l.params})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    for l in &laws {
        outln!("{:<15} {}", l.id, l.title);
        outln!("{:<15} {}", "", l.formula);
        let ps: Vec<String> = l
            .params
            .iter()
            .map(|p| format!("{} ∈ [{:e}, {:e}]", p.name, p.lower, p.upper))
            .collect();
        outln!("{:<15} {}", "", ps.join(", "));
        outln!();
    }
    Ok(ExitCode::SUCCESS)
}

impl LawChoice {
    /// The law these flags name.
    fn spec(&self) -> anyhow::Result<LawSpec> {
        let Some(text) = &self.formula else {
            if !self.params.is_empty() {
                bail!("--param applies to --formula laws only");
            }
            return Ok(LawSpec::Builtin(self.law.clone()));
        };
        let target = match self.formula_target.as_str() {
            "delta" => Target::DeltaLoss,
            "loss" => Target::Loss,
            other => bail!("--formula-target `{other}`: expected delta or loss"),
        };
        let params = self
            .params
            .iter()
            .map(|p| ParamBounds::parse(p))
            .collect::<quantscape::Result<Vec<_>>>()?;
        Ok(LawSpec::Formula {
            text: text.clone(),
            target,
            params,
        })
    }
}

fn resolve_law(c: &LawChoice) -> anyhow::Result<Law> {
    Ok(c.spec()?.resolve()?)
}

/// `--where COLUMN=VALUE` filters as pairs.
pub(crate) fn parse_filters(filters: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    filters
        .iter()
        .map(|f| match f.split_once('=') {
            Some((c, v)) if !c.trim().is_empty() => {
                Ok((c.trim().to_string(), v.trim().to_string()))
            }
            _ => bail!("--where `{f}`: expected COLUMN=VALUE"),
        })
        .collect()
}

impl FitArgs {
    /// The fit request these flags describe.
    pub fn request(&self) -> anyhow::Result<FitRequest> {
        let target = match (&self.target, &self.metric, &self.statistic) {
            (Some(t), _, _) => Some(t.clone()),
            (None, None, None) if !is_results_store(&self.data) => None,
            (None, m, s) => {
                let metric: Metric = m.as_deref().unwrap_or("delta_nll").parse()?;
                let stat: Statistic = match s {
                    Some(s) => s.parse()?,
                    None => store_statistic(&self.data),
                };
                Some(metric.column(stat).to_string())
            }
        };
        let data = FitData::Path {
            path: self.data.clone(),
            filters: parse_filters(&self.filters)?,
            target,
        };
        let req = FitRequest {
            loss: if self.least_squares {
                Loss::LeastSquares
            } else {
                Loss::Huber {
                    delta: self.huber_delta,
                }
            },
            space: match self.space.as_str() {
                "log" => Space::Log,
                "linear" => Space::Linear,
                other => bail!("--space `{other}`: expected log or linear"),
            },
            bootstrap: self.bootstrap,
            seed: self.seed,
            per_format_c: self.per_format_c,
            weighted: !self.unweighted,
            ..FitRequest::new(data, self.choice.spec()?)
        };
        req.validate()?;
        Ok(req)
    }
}

/// The statistic a results store's spec names (mean when it names none or cannot be read: the
/// fit then reports the store's own error).
fn store_statistic(path: &std::path::Path) -> Statistic {
    if !is_results_store(path) {
        return Statistic::Mean;
    }
    quantscape::search::Store::open_existing(path)
        .ok()
        .and_then(|(_, spec)| spec.statistic)
        .unwrap_or_default()
}

/// Fits a law and prints the report.
pub fn run_fit(a: &FitArgs) -> anyhow::Result<ExitCode> {
    let req = a.request()?;
    let out = super::run_task(true, super::unit_of, |ctx| fit::run(&req, ctx))?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&out.report)?);
    } else {
        print_report(&out.law, &out.data, &out.report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(law: &Law, data: &Dataset, r: &FitReport) -> anyhow::Result<()> {
    outln!("law {}: {}", law.id, law.formula);
    let loss = match r.loss {
        Loss::Huber { delta } => format!("Huber δ = {delta}"),
        Loss::LeastSquares => "least squares".into(),
    };
    let space = if r.space == Space::Log {
        "log"
    } else {
        "linear"
    };
    outln!(
        "fit: {loss} on {space} residuals of `{}` ({}; weights: {}), {} points, {} excluded; {} after {} iterations; {}/{} starts reached the best optimum",
        data.target_name,
        r.statistic,
        r.weighting,
        r.n_points,
        r.excluded.len(),
        if r.converged { "converged" } else { "NOT converged" },
        r.iterations,
        r.starts_at_best,
        r.starts_total
    );
    for (i, why) in r.excluded.iter().take(5) {
        outln!("  excluded row {}: {why}", i + 2);
    }
    let ci_head = if r.bootstrap_resamples > 0 {
        format!(
            "95% CI ({} bootstrap resamples, {} failed)",
            r.bootstrap_resamples, r.bootstrap_failed
        )
    } else {
        "95% CI (no bootstrap)".into()
    };
    outln!(
        "{:<12} {:>13} {:>11}  {ci_head}",
        "param",
        "value",
        "std err"
    );
    for p in &r.params {
        let se = p.std_err.map_or("-".into(), |v| format!("{v:.4e}"));
        let ci = match (p.ci_low, p.ci_high) {
            (Some(l), Some(h)) => format!("[{l:.5e}, {h:.5e}]"),
            _ => "-".into(),
        };
        outln!("{:<12} {:>13.6e} {:>11}  {ci}", p.name, p.value, se);
    }
    outln!(
        "R² log {:.5}  R² linear {:.5}  RMSE {:.4e}  RMSE log {:.4}  MAPE {:.2} %",
        r.r2_log,
        r.r2_linear,
        r.rmse,
        r.rmse_log,
        100.0 * r.mape
    );
    for h in &r.held_out {
        outln!(
            "leave-one-{}-out: median |relative error| {:.1} %, 90th percentile {:.1} % over {} held-out points ({} groups)",
            h.by,
            100.0 * h.median_abs_rel,
            100.0 * h.p90_abs_rel,
            h.n_points,
            h.groups.len()
        );
    }
    if let Some(c) = &r.simpler {
        outln!(
            "against {}: AIC {:.1} vs {:.1}, BIC {:.1} vs {:.1}, R² log {:.4} vs {:.4}",
            c.law,
            c.aic.0,
            c.aic.1,
            c.bic.0,
            c.bic.1,
            c.r2_log.0,
            c.r2_log.1
        );
    }
    if let Some(pf) = &r.per_format {
        let (aic, bic) =
            quantscape::laws::diagnose::aic_bic(r.n_points, law.params.len(), r.rmse_log);
        outln!(
            "with one C per low format: R² log {:.4} vs {:.4}, AIC {:.1} vs {:.1}, BIC {:.1} vs {:.1} ({} rounds{}); it cannot predict a held-out format",
            pf.r2_log,
            r.r2_log,
            pf.aic,
            aic,
            pf.bic,
            bic,
            pf.iterations,
            if pf.converged { "" } else { ", NOT converged" }
        );
        for (f, c) in &pf.scales {
            outln!("  C[{f}] = {c:.5e}");
        }
    }
    for f in &r.flags {
        outln!("WARNING degenerate fit: {}", f.message);
    }
    if !r.leave_one_size_out.is_empty() {
        outln!("leave-one-size-out (each N predicted from the other sizes):");
        for h in &r.leave_one_size_out {
            outln!(
                "  N {:>10.3e}  {:>5} points  MAPE {:>7.2} %  RMSE log {:.4}",
                h.n,
                h.n_points,
                100.0 * h.mape,
                h.rmse_log
            );
        }
    }
    Ok(())
}

fn parse_list(flag: &str, v: &Option<String>) -> anyhow::Result<Option<Vec<f64>>> {
    v.as_ref()
        .map(|s| {
            s.split(',')
                .map(|x| {
                    x.trim()
                        .parse::<f64>()
                        .with_context(|| format!("--{flag}: `{x}` is not a number"))
                })
                .collect()
        })
        .transpose()
}

/// Evaluates a law at the given points.
pub fn run_predict(a: &PredictArgs) -> anyhow::Result<ExitCode> {
    let (law, params) = match &a.fit {
        Some(path) => read_fit_report(path)?,
        None => {
            let law = resolve_law(&a.choice)?;
            let text = a
                .values
                .as_deref()
                .context("give --values NAME=VALUE,… or --fit FILE")?;
            let mut params = vec![f64::NAN; law.params.len()];
            for kv in text.split(',') {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--values: `{kv}` is not NAME=VALUE"))?;
                let i = law.param_index(k.trim()).with_context(|| {
                    format!(
                        "--values: law {} has no parameter `{k}` ({})",
                        law.id,
                        law.param_names().join(", ")
                    )
                })?;
                params[i] = v
                    .trim()
                    .parse()
                    .with_context(|| format!("--values: `{v}` is not a number"))?;
            }
            let missing: Vec<&str> = law
                .params
                .iter()
                .zip(&params)
                .filter(|(_, v)| v.is_nan())
                .map(|(p, _)| p.name.as_str())
                .collect();
            if !missing.is_empty() {
                bail!(
                    "--values: no value for {} (law {} needs {})",
                    missing.join(", "),
                    law.id,
                    law.param_names().join(", ")
                );
            }
            (law, params)
        }
    };
    let lists = [
        (Var::N, parse_list("N", &a.n)?),
        (Var::D, parse_list("D", &a.d)?),
        (Var::Qr, parse_list("Qr", &a.qr)?),
        (Var::Qb, parse_list("Qb", &a.qb)?),
        (Var::P, parse_list("P", &a.p)?),
        (Var::E, parse_list("E", &a.e)?),
        (Var::M, parse_list("M", &a.m)?),
        (Var::Bits, parse_list("bits", &a.bits)?),
    ];
    let axes: Vec<(Var, &[f64])> = lists
        .iter()
        .filter_map(|(v, l)| l.as_deref().map(|l| (*v, l)))
        .collect();
    let rows = grid_rows(&axes);
    let mut out = Vec::new();
    for r in &rows {
        out.push(predict(&law, &params, r)?);
    }
    let what = if law.target == Target::DeltaLoss {
        "dL"
    } else {
        "loss"
    };
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .zip(&out)
            .map(|(r, y)| {
                let mut m = serde_json::Map::new();
                for (var, _) in &axes {
                    m.insert(var.name().into(), r[var.index()].into());
                }
                m.insert(what.into(), (*y).into());
                serde_json::Value::Object(m)
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let head: Vec<&str> = axes.iter().map(|(v, _)| v.name()).collect();
        outln!("{},{what}", head.join(","));
        for (r, y) in rows.iter().zip(&out) {
            let cells: Vec<String> = axes
                .iter()
                .map(|(v, _)| format!("{}", r[v.index()]))
                .collect();
            outln!("{},{y:.6e}", cells.join(","));
        }
    }
    Ok(ExitCode::SUCCESS)
}
