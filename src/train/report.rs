//! A trained family at a glance (`quantscape train --recipe R --report`): every finished run's
//! N, D and final losses (from its exported `train.json`), whether the held-out loss falls with
//! N at every token budget, and per budget the fit L(N) = E + A·N^(−α) of the final held-out
//! losses (least squares in linear space, R² of L; E is spelled `Linf` in the formula, since `E`
//! is the exponent-bit variable of the law language).
//!
//! Units: N non-embedding parameters, D training tokens, losses nats/token.

use std::path::Path;

use super::recipe::FamilyRecipe;
use super::RunReport;
use crate::laws::formula::Formula;
use crate::laws::{fit, Dataset, FitOptions, Law, Loss, Space, Target, Var, EMPTY_ROW};
use crate::{Error, Result};

/// The held-out split the fits and the monotonicity check use.
pub const EVAL_SPLIT: &str = "eval_austen";

/// The L(N) law fitted per budget.
pub const LOSS_LAW: &str = "Linf + A*N^(-alpha)";

/// One budget's fit.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BudgetFit {
    /// Token budget D.
    pub budget_tokens: u64,
    /// Runs in the fit.
    pub n_runs: usize,
    /// E (irreducible loss), A and α.
    pub e: f64,
    /// A.
    pub a: f64,
    /// α.
    pub alpha: f64,
    /// R² of L.
    pub r2: f64,
    /// Whether the held-out loss strictly falls with N at this budget.
    pub monotone: bool,
}

/// The family report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FamilyReport {
    /// Finished runs, by size then budget.
    pub runs: Vec<RunReport>,
    /// Runs of the recipe not exported yet.
    pub missing: Vec<String>,
    /// Exported runs trained with another size spec or recipe settings (left out of the fits).
    pub stale: Vec<String>,
    /// Per budget with at least four finished sizes.
    pub fits: Vec<BudgetFit>,
}

/// Reads the exported runs of `recipe` under `out_dir` and fits L(N) per budget.
pub fn family_report(recipe: &FamilyRecipe, out_dir: &Path) -> Result<FamilyReport> {
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for size in &recipe.sizes {
        for &budget in &recipe.budgets_tokens {
            let name = recipe.run_name(size, budget);
            let path = out_dir.join(&name).join("train.json");
            if !path.is_file() {
                missing.push(name);
                continue;
            }
            let r = RunReport::read(&path)?;
            if r.trained_as(recipe, size, budget) {
                runs.push(r);
            } else {
                stale.push(name);
            }
        }
    }
    let mut fits = Vec::new();
    for &budget in &recipe.budgets_tokens {
        let mut pts: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.budget_tokens == budget)
            .filter_map(|r| Some((r.n_params_non_embedding as f64, r.final_loss(EVAL_SPLIT)?)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Three parameters: a fit needs at least four sizes.
        if pts.len() < 4 {
            continue;
        }
        let monotone = pts.windows(2).all(|w| w[1].1 < w[0].1);
        let (e, a, alpha, r2) = fit_loss_law(&pts)?;
        fits.push(BudgetFit {
            budget_tokens: budget,
            n_runs: pts.len(),
            e,
            a,
            alpha,
            r2,
            monotone,
        });
    }
    Ok(FamilyReport {
        runs,
        missing,
        stale,
        fits,
    })
}

/// Fits L(N) = E + A·N^(−α) to (N, L) points: (E, A, α, R² of L).
pub fn fit_loss_law(pts: &[(f64, f64)]) -> Result<(f64, f64, f64, f64)> {
    let mut f = Formula::parse(LOSS_LAW)?;
    let lowest = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    f.set_param("Linf", 0.0, lowest, &[0.0, 0.5 * lowest, 0.9 * lowest])?;
    f.set_param("A", 0.0, 1e6, &[10.0, 100.0, 1000.0])?;
    f.set_param("alpha", 0.0, 3.0, &[0.1, 0.3, 0.7])?;
    let law = Law::from_formula(f, Target::Loss);
    let rows = pts
        .iter()
        .map(|(n, _)| {
            let mut r = EMPTY_ROW;
            r[Var::N.index()] = *n;
            r
        })
        .collect();
    let data = Dataset::new(rows, pts.iter().map(|p| p.1).collect());
    let opts = FitOptions {
        loss: Loss::LeastSquares,
        space: Space::Linear,
        leave_one_size_out: false,
        ..FitOptions::default()
    };
    let r = fit(&law, &data, &opts)?;
    let v = |name: &str| {
        r.params
            .iter()
            .find(|p| p.name == name)
            .map_or(f64::NAN, |p| p.value)
    };
    Ok((v("Linf"), v("A"), v("alpha"), r.r2_linear))
}

/// A run's loss curves as its run folder stores them (`loss.csv`: every optimiser step;
/// `eval.csv`: the periodic probes on fixed windows of each split).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Curves {
    /// (tokens seen, training batch loss) per step.
    pub train_batches: Vec<[f64; 2]>,
    /// Per probed split (`train`, `eval_austen`, `eval_kjv`): (tokens seen, loss) per probe.
    pub probes: Vec<(String, Vec<[f64; 2]>)>,
}

impl Curves {
    /// The probe curve of `split`.
    pub fn probe(&self, split: &str) -> Option<&[[f64; 2]]> {
        self.probes
            .iter()
            .find(|(s, _)| s == split)
            .map(|(_, p)| p.as_slice())
    }
}

/// Reads `loss.csv` and `eval.csv` of the run folder `dir`. A missing or malformed file is an
/// error naming it; a row with a non-finite loss is dropped, so the curve joins across a
/// diverged step instead of wrecking the axis (and the EMA of the batch loss stays finite).
pub fn read_curves(dir: &Path) -> Result<Curves> {
    let table = |name: &str| -> Result<(Vec<String>, Vec<Vec<f64>>)> {
        let path = dir.join(name);
        let bad = |e: &dyn std::fmt::Display| Error::checkpoint(&path, format!("loss curve: {e}"));
        let mut r = csv::Reader::from_path(&path).map_err(|e| bad(&e))?;
        let header: Vec<String> = r
            .headers()
            .map_err(|e| bad(&e))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| bad(&e))?;
            let row = rec
                .iter()
                .map(|v| v.trim().parse::<f64>())
                .collect::<std::result::Result<Vec<f64>, _>>()
                .map_err(|e| bad(&format!("row {}: {e}", i + 2)))?;
            if row.len() != header.len() {
                return Err(bad(&format!("row {} has {} fields", i + 2, row.len())));
            }
            rows.push(row);
        }
        Ok((header, rows))
    };
    let column = |header: &[String], name: &str, file: &str| -> Result<usize> {
        header.iter().position(|h| h == name).ok_or_else(|| {
            Error::checkpoint(dir.join(file), format!("loss curve: no `{name}` column"))
        })
    };
    let (h, rows) = table("loss.csv")?;
    let (tok, loss) = (
        column(&h, "tokens", "loss.csv")?,
        column(&h, "loss", "loss.csv")?,
    );
    let train_batches = rows
        .iter()
        .map(|r| [r[tok], r[loss]])
        .filter(|p| p[1].is_finite())
        .collect();
    let (h, rows) = table("eval.csv")?;
    let tok = column(&h, "tokens", "eval.csv")?;
    let probes = h
        .iter()
        .enumerate()
        .filter(|(i, name)| *i != tok && name.as_str() != "step")
        .map(|(i, name)| {
            let pts = rows
                .iter()
                .map(|r| [r[tok], r[i]])
                .filter(|p| p[1].is_finite())
                .collect();
            (name.clone(), pts)
        })
        .collect();
    Ok(Curves {
        train_batches,
        probes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_power_law() {
        let pts: Vec<(f64, f64)> = [1e4, 3e4, 1e5, 3e5, 1e6]
            .iter()
            .map(|&n: &f64| (n, 3.0 + 40.0 * n.powf(-0.35)))
            .collect();
        let (e, a, alpha, r2) = fit_loss_law(&pts).unwrap();
        assert!((e - 3.0).abs() < 1e-3 && (a - 40.0).abs() < 0.1, "{e} {a}");
        assert!((alpha - 0.35).abs() < 1e-3 && r2 > 0.9999, "{alpha} {r2}");
    }

    #[test]
    fn loss_curves_of_a_bundled_run_and_bad_files() {
        let dir = crate::search::runner::bundled_models_dir().join("qs-llama-s1-2M");
        let c = read_curves(&dir).unwrap();
        assert_eq!(c.train_batches.len(), 493);
        assert_eq!(c.train_batches[0][0], 4064.0);
        let austen = c.probe("eval_austen").unwrap();
        assert!(austen.len() >= 10);
        assert!(austen.windows(2).all(|w| w[1][0] > w[0][0]));
        assert!(austen.last().unwrap()[1] < austen[0][1]);
        assert!(c.probe("eval_kjv").is_some() && c.probe("step").is_none());

        let tmp = std::env::temp_dir().join(format!("qs-curves-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let err = read_curves(&tmp).unwrap_err().to_string();
        assert!(err.contains("loss.csv"), "{err}");
        std::fs::write(
            tmp.join("loss.csv"),
            "step,tokens,loss
1,10,nan
2,20,7.5
",
        )
        .unwrap();
        std::fs::write(
            tmp.join("eval.csv"),
            "step,tokens,eval_austen
1,10,x
",
        )
        .unwrap();
        let err = read_curves(&tmp).unwrap_err().to_string();
        assert!(err.contains("eval.csv") && err.contains("row 2"), "{err}");
        std::fs::write(
            tmp.join("eval.csv"),
            "step,tokens,eval_austen
1,10,7.9
",
        )
        .unwrap();
        let c = read_curves(&tmp).unwrap();
        assert_eq!(c.train_batches, vec![[20.0, 7.5]]);
        assert_eq!(c.probe("eval_austen").unwrap(), &[[10.0, 7.9]]);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
