//! CSV export of a results store: one row per trial, and one row per configuration with the
//! distribution of ΔL across its trials (best = lowest, mean, median, 10/25/75/90 % quantiles,
//! worst), joined with the model's N, D and base NLL — ready for pandas, R or `quantscape fit`
//! (whose column names it uses: `n_params`, `train_tokens`, `qr` (mean achieved), `qb`,
//! `bits_per_weight`, `delta_loss` (mean ΔL; `--target delta_nll_best` fits the best trials)).

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
}

/// Reads the store at `path` (an error naming the file when it is not a results store).
pub fn read_store(path: &Path) -> Result<StoreContents> {
    let (store, _) = Store::open_existing(path)?;
    let trials = store.trials()?;
    let models = store.models()?;
    let summary = summarize(&trials, &models, &store.features()?);
    Ok(StoreContents {
        trials,
        models,
        summary,
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
    /// Mean ΔL over the trials, the laws' default target (the one mean; the other columns are
    /// order statistics).
    pub delta_loss: f64,
    /// Lowest ΔL (the best assignment found by random search).
    pub delta_nll_best: f64,
    /// Median ΔL.
    pub delta_nll_median: f64,
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
    /// Mean KL.
    pub kl_mean: f64,
    /// Mean top-1 agreement.
    pub top1_mean: f64,
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
                delta_loss: mean(&|t| t.delta_nll),
                delta_nll_best: dl[0],
                delta_nll_median: quantile(&dl, 0.5),
                delta_nll_q10: quantile(&dl, 0.1),
                delta_nll_q25: quantile(&dl, 0.25),
                delta_nll_q75: quantile(&dl, 0.75),
                delta_nll_q90: quantile(&dl, 0.9),
                delta_nll_worst: dl[dl.len() - 1],
                kl_mean: mean(&|t| t.kl_mean),
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
