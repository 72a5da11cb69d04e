//! CSV export of a results store: one row per trial (with the SE of its ΔL and KL over windows),
//! and one row per configuration with the distribution of ΔL across its trials (best = lowest,
//! mean, median, 10/25/75/90 % quantiles, worst) and of KL (mean, median, best), each of the
//! mean, median and best with its standard error (`*_se`, [`StatSummary`]), joined with the
//! model's N, D and base NLL — ready for pandas, R or `quantscape fit` (whose column names it
//! uses: `n_params`, `train_tokens`, `qr` (mean achieved), `qb`, `bits_per_weight`,
//! `delta_loss` (mean ΔL); `fit --statistic best` fits `delta_nll_best`, `--metric kl` the KL
//! columns, and a fit weights its points by the matching `*_se` column).

use std::collections::BTreeMap;
use std::path::Path;

pub use super::store::SQNR_FEATURE;
use super::store::{FeatureRow, ModelRow, Store, TrialRow};
use crate::error::{Error, Result};

/// A results store read whole: its trials, its models and the per-configuration summary.
#[derive(Clone, Debug, Default)]
pub struct StoreContents {
    /// Trials.
    pub trials: Vec<TrialRow>,
    /// Models.
    pub models: Vec<ModelRow>,
    /// Per-configuration summaries ([`summarize`]).
    pub summary: Vec<ConfigSummary>,
    /// The spec the store was written for.
    pub spec: super::SweepSpec,
}

/// Reads the store at `path` (an error naming the file when it is not a results store).
pub fn read_store(path: &Path) -> Result<StoreContents> {
    let (store, spec) = Store::open_existing(path)?;
    let trials = store.trials()?;
    let models = store.models()?;
    let summary = summarize(&trials, &models, &store.features()?);
    Ok(StoreContents {
        trials,
        models,
        summary,
        spec,
    })
}

/// Summary of one configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ConfigSummary {
    /// Configuration key.
    pub config_key: String,
    /// Model.
    pub model: String,
    /// The model's architecture (`LlamaForCausalLM`, …): its family in the laws' fits.
    pub architecture: Option<String>,
    /// Non-embedding parameters.
    pub n_params: Option<usize>,
    /// Training tokens.
    pub train_tokens: Option<u64>,
    /// Base NLL.
    pub nll_base: f64,
    /// Granularity.
    pub granularity: String,
    /// Low format.
    pub low: String,
    /// High format.
    pub high: String,
    /// Method.
    pub method: String,
    /// Qb as spelled (`32`, `channel`, `tensor`).
    pub qb_spec: String,
    /// Qb as a number (NaN for per-channel and per-tensor), the laws' `Qb`.
    pub qb: f64,
    /// Target Qr.
    pub qr_target: f64,
    /// Mean achieved Qr, the laws' `Qr`.
    pub qr: f64,
    /// Mean bits per weight.
    pub bits_per_weight: f64,
    /// Element bits of the low format (the laws' `P`; NaN when the spelling does not parse).
    pub element_bits: f64,
    /// Exponent bits of the low format's element (`E`; 0 for integer codes).
    pub exp_bits: f64,
    /// Mantissa bits of the low format's element (`M`; bits − 1 for integer codes).
    pub man_bits: f64,
    /// ε = 1/SQNR of the low format at its Qb on the model's quantizable weights, from the
    /// store's `rtn_sqnr_db` feature for `low|method`, else `low|rtn` (the format's own error
    /// on these weights; the laws' `eps`; NaN when not measured).
    pub eps: f64,
    /// Trials stored.
    pub n_trials: usize,
    /// Scored tokens per trial (the smallest among the trials). Not D: D is `train_tokens`.
    pub n_scored_tokens: usize,
    /// Mean ΔL over the trials, the laws' default target (the one mean; the other columns are
    /// order statistics).
    pub delta_loss: f64,
    /// Standard error of the mean ΔL, trial and window noise both ([`StatSummary`]).
    pub delta_loss_se: f64,
    /// Lowest ΔL (the best assignment found by random search).
    pub delta_nll_best: f64,
    /// Standard error of the best ΔL.
    pub delta_nll_best_se: f64,
    /// Median ΔL.
    pub delta_nll_median: f64,
    /// Standard error of the median ΔL.
    pub delta_nll_median_se: f64,
    /// 10 % quantile.
    pub delta_nll_q10: f64,
    /// 25 % quantile.
    pub delta_nll_q25: f64,
    /// 75 % quantile.
    pub delta_nll_q75: f64,
    /// 90 % quantile.
    pub delta_nll_q90: f64,
    /// Highest ΔL.
    pub delta_nll_worst: f64,
    /// Mean KL(base‖quant) over the trials.
    pub kl_mean: f64,
    /// Standard error of the mean KL (NaN for trials stored before KL SEs were).
    pub kl_mean_se: f64,
    /// Lowest KL over the trials.
    pub kl_best: f64,
    /// Standard error of the lowest KL.
    pub kl_best_se: f64,
    /// Median KL over the trials.
    pub kl_median: f64,
    /// Standard error of the median KL.
    pub kl_median_se: f64,
    /// Mean top-1 agreement.
    pub top1_mean: f64,
}

/// A configuration's statistics over its trials, each with a standard error that counts both
/// sources of noise: which sites the trials drew (trial noise) and which text the windows
/// sampled (window noise). The trials of a configuration share their windows, so window noise
/// does not average out over trials: SE(mean)² = s²/T + w̄², with s the standard deviation over
/// the T trials and w̄ the mean of the trials' window SEs. The median's and the best's trial
/// noise is a seeded bootstrap over trials (200 resamples), combined the same way with the
/// window SE of the trial each picks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatSummary {
    /// Mean.
    pub mean: f64,
    /// SE of the mean.
    pub mean_se: f64,
    /// Median.
    pub median: f64,
    /// SE of the median.
    pub median_se: f64,
    /// Lowest value.
    pub best: f64,
    /// SE of the lowest value.
    pub best_se: f64,
}

/// Bootstrap resamples behind the SE of the median and the best.
const STAT_RESAMPLES: usize = 200;

impl StatSummary {
    /// Statistics of `values` (one per trial) with their window SEs `window_se` (NaN when not
    /// measured); `seed` fixes the bootstrap.
    pub fn of(values: &[f64], window_se: &[f64], seed: u64) -> Self {
        use rand::{Rng as _, SeedableRng as _};
        let n = values.len();
        if n == 0 {
            return Self {
                mean: f64::NAN,
                mean_se: f64::NAN,
                median: f64::NAN,
                median_se: f64::NAN,
                best: f64::NAN,
                best_se: f64::NAN,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        let w_mean = window_se.iter().sum::<f64>() / window_se.len().max(1) as f64;
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = quantile(&sorted, 0.5);
        let best_i = (0..n)
            .min_by(|&a, &b| values[a].total_cmp(&values[b]))
            .unwrap_or(0);
        let (mut boot_med, mut boot_best) = (Vec::new(), Vec::new());
        if n > 1 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut draw = vec![0.0; n];
            for _ in 0..STAT_RESAMPLES {
                for d in draw.iter_mut() {
                    *d = values[rng.random_range(0..n)];
                }
                draw.sort_by(f64::total_cmp);
                boot_med.push(quantile(&draw, 0.5));
                boot_best.push(draw[0]);
            }
        }
        let sd = |xs: &[f64]| {
            if xs.len() < 2 {
                return 0.0;
            }
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
        };
        let w_best = window_se.get(best_i).copied().unwrap_or(f64::NAN);
        Self {
            mean,
            mean_se: (var / n as f64 + w_mean * w_mean).sqrt(),
            median,
            median_se: sd(&boot_med).hypot(w_mean),
            best: values[best_i],
            best_se: sd(&boot_best).hypot(w_best),
        }
    }
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// ε = 10^(−SQNR/10) per (model, `low|method`) from the store's features.
fn eps_table(features: &[FeatureRow]) -> BTreeMap<(&str, &str), f64> {
    features
        .iter()
        .filter(|f| f.feature == SQNR_FEATURE)
        .map(|f| {
            (
                (f.model.as_str(), f.direction.as_str()),
                10f64.powf(-f.value / 10.0),
            )
        })
        .collect()
}

/// Per-configuration summaries, in key order; ε joined from `features` (see
/// [`ConfigSummary::eps`]).
pub fn summarize(
    trials: &[TrialRow],
    models: &[ModelRow],
    features: &[FeatureRow],
) -> Vec<ConfigSummary> {
    let eps = eps_table(features);
    let mut by: BTreeMap<&str, Vec<&TrialRow>> = BTreeMap::new();
    for t in trials {
        by.entry(t.config_key.as_str()).or_default().push(t);
    }
    by.into_values()
        .filter_map(|ts| {
            let f = *ts.first()?;
            let m = models.iter().find(|m| m.model == f.model);
            let mut dl: Vec<f64> = ts.iter().map(|t| t.delta_nll).collect();
            dl.sort_by(f64::total_cmp);
            let n = ts.len() as f64;
            let mean = |g: &dyn Fn(&TrialRow) -> f64| ts.iter().map(|t| g(t)).sum::<f64>() / n;
            let element = crate::codecs::Format::parse(&f.low).ok().map(|x| x.element);
            let (e_bits, m_bits) = element.map_or((f64::NAN, f64::NAN), |e| {
                let (e, m) = e.exp_man_bits();
                (f64::from(e), f64::from(m))
            });
            let key = format!("{}|{}", f.low, f.method);
            let rtn_key = format!("{}|rtn", f.low);
            let seed = super::spec::fnv1a(f.config_key.as_bytes());
            let dls: Vec<f64> = ts.iter().map(|t| t.delta_nll).collect();
            let dl_se: Vec<f64> = ts.iter().map(|t| t.delta_nll_se).collect();
            let d = StatSummary::of(&dls, &dl_se, seed);
            let kls: Vec<f64> = ts.iter().map(|t| t.kl_mean).collect();
            let kl_se: Vec<f64> = ts.iter().map(|t| t.kl_se).collect();
            let k = StatSummary::of(&kls, &kl_se, seed);
            Some(ConfigSummary {
                config_key: f.config_key.clone(),
                model: f.model.clone(),
                architecture: m.map(|m| m.architecture.clone()),
                n_params: m.map(|m| m.n_params_non_embedding),
                train_tokens: m.and_then(|m| m.train_tokens),
                nll_base: f.nll_base,
                granularity: f.granularity.clone(),
                low: f.low.clone(),
                high: f.high.clone(),
                method: f.method.clone(),
                qb_spec: f.qb.clone(),
                qb: f.qb.parse().unwrap_or(f64::NAN),
                qr_target: f.qr_target,
                qr: mean(&|t| t.qr_achieved),
                bits_per_weight: mean(&|t| t.bits_per_weight),
                element_bits: element.map_or(f64::NAN, |e| f64::from(e.bits())),
                exp_bits: e_bits,
                man_bits: m_bits,
                eps: eps
                    .get(&(f.model.as_str(), key.as_str()))
                    .or_else(|| eps.get(&(f.model.as_str(), rtn_key.as_str())))
                    .copied()
                    .unwrap_or(f64::NAN),
                n_trials: ts.len(),
                n_scored_tokens: ts.iter().map(|t| t.n_tokens).min().unwrap_or(0),
                delta_loss: d.mean,
                delta_loss_se: d.mean_se,
                delta_nll_best: d.best,
                delta_nll_best_se: d.best_se,
                delta_nll_median: d.median,
                delta_nll_median_se: d.median_se,
                delta_nll_q10: quantile(&dl, 0.1),
                delta_nll_q25: quantile(&dl, 0.25),
                delta_nll_q75: quantile(&dl, 0.75),
                delta_nll_q90: quantile(&dl, 0.9),
                delta_nll_worst: dl[dl.len() - 1],
                kl_mean: k.mean,
                kl_mean_se: k.mean_se,
                kl_best: k.best,
                kl_best_se: k.best_se,
                kl_median: k.median,
                kl_median_se: k.median_se,
                top1_mean: mean(&|t| t.top1),
            })
        })
        .collect()
}

/// Writes serializable rows as CSV (header from the field names) to `path`, atomically.
pub fn write_csv<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let tmp = crate::io::temp_path(path);
    let written = (|| {
        let mut w = csv::Writer::from_path(&tmp).map_err(|e| csv_err(&tmp, e))?;
        for r in rows {
            w.serialize(r).map_err(|e| csv_err(&tmp, e))?;
        }
        w.flush().map_err(|e| Error::io("write", &tmp, e))?;
        drop(w);
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    Error::checkpoint(path, format!("CSV: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert!((quantile(&v, 0.1) - 1.4).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
