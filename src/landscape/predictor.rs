//! The random-forest PTQ predictor (Xu et al., arXiv 2410.12119) on a sweep's results store: one
//! point per configuration (mean ΔL over its trials, Qr > 0), inputs from the model, the format
//! and — where `quantscape features` wrote them next to the results — the landscape features
//! ([`super::features`]). Evaluation holds out one model (or one family) at a time, so it
//! measures how well the predictor extrapolates to a model it has not seen, and compares the
//! forest with and without the landscape features and the size-only baseline.
//!
//! Units: ΔL in nats/token; N non-embedding parameters; Qr a fraction.

use std::collections::BTreeMap;

use crate::codecs::Format;
use crate::laws::forest::{leave_one_group_out, ForestConfig, GroupOutReport, PtqFeatures};
use crate::search::export::summarize;
use crate::search::store::Store;
use crate::{Error, Result};

/// Qb that per-channel and per-tensor scales count as (a block longer than any bundled row).
pub const PER_CHANNEL_QB: f64 = 4096.0;

/// One configuration of the store as a predictor point.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PtqPoint {
    /// Model spec.
    pub model: String,
    /// Family (the model name without its `-sN-…` size suffix).
    pub family: String,
    /// Configuration key.
    pub config_key: String,
    /// Inputs.
    pub features: PtqFeatures,
    /// Mean ΔL over the configuration's trials.
    pub delta_nll: f64,
}

/// The family of a model spec: `bundled:qs-llama-s3-2M` → `qs-llama`; names without a
/// `-s<digit>` component are their own family.
pub fn family_of(model: &str) -> String {
    let name = model.rsplit(['/', ':']).next().unwrap_or(model);
    let parts: Vec<&str> = name.split('-').collect();
    match parts.iter().rposition(|p| {
        p.len() > 1 && p.starts_with('s') && p[1..].chars().all(|c| c.is_ascii_digit())
    }) {
        Some(i) if i > 0 => parts[..i].join("-"),
        _ => name.to_string(),
    }
}

/// Predictor points of every configuration with Qr > 0 in `store`.
pub fn dataset(store: &Store) -> Result<Vec<PtqPoint>> {
    let models = store.models()?;
    let features = store.features()?;
    let mut feats: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for f in features.iter().cloned() {
        feats.insert((f.model, f.feature, f.direction), f.value);
    }
    let get = |model: &str, name: &str, dir: &str| {
        feats
            .get(&(model.to_string(), name.to_string(), dir.to_string()))
            .copied()
    };
    let mut out = Vec::new();
    for c in summarize(&store.trials()?, &models, &features) {
        if c.qr_target <= 0.0 || !c.delta_loss.is_finite() {
            continue;
        }
        let format: Format = c.low.parse()?;
        let (element_bits, exponent_bits, mantissa_bits) = PtqFeatures::format_bits(&format);
        let n_params = c.n_params.ok_or_else(|| {
            Error::Input(format!("model {} has no row in the results store", c.model))
        })? as f64;
        let key = format!("{}|{}", c.low, c.method);
        let block_size = if c.qb.is_finite() {
            c.qb
        } else {
            PER_CHANNEL_QB
        };
        out.push(PtqPoint {
            family: family_of(&c.model),
            features: PtqFeatures {
                n_params,
                base_loss: c.nll_base,
                element_bits,
                exponent_bits,
                mantissa_bits,
                block_size,
                bits_per_weight: c.bits_per_weight,
                qr: c.qr,
                rtn_sqnr_db: get(&c.model, "rtn_sqnr_db", &key),
                flatness: get(&c.model, "flatness", ""),
                sharpness: get(&c.model, "sharpness", ""),
                top_eigenvalue: get(&c.model, "top_eigenvalue", ""),
                trace: get(&c.model, "trace", ""),
                curvature_u: get(&c.model, "curvature_u", &key),
            },
            model: c.model,
            config_key: c.config_key,
            delta_nll: c.delta_loss,
        });
    }
    Ok(out)
}

/// What the predictor holds out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
pub enum HoldOut {
    /// One model at a time.
    Model,
    /// One family at a time.
    Family,
}

/// The evaluation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PredictorReport {
    /// Points (configurations with Qr > 0).
    pub n_points: usize,
    /// Models with landscape features.
    pub models_with_features: Vec<String>,
    /// What was held out.
    pub hold_out: HoldOut,
    /// Forest on every feature.
    pub with_landscape: GroupOutReport,
    /// Forest with the landscape features blanked (−1).
    pub without_landscape: GroupOutReport,
    /// Feature importances of the forest fitted on every point: (name, share).
    pub importances: Vec<(String, f64)>,
}

/// Leave-one-group-out evaluation of the forest on `points`.
pub fn evaluate(points: &[PtqPoint], by: HoldOut, cfg: &ForestConfig) -> Result<PredictorReport> {
    let groups: Vec<String> = points
        .iter()
        .map(|p| match by {
            HoldOut::Model => p.model.clone(),
            HoldOut::Family => p.family.clone(),
        })
        .collect();
    let x: Vec<Vec<f64>> = points.iter().map(|p| p.features.row()).collect();
    let y: Vec<f64> = points.iter().map(|p| p.delta_nll).collect();
    let blank: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r[PtqFeatures::LANDSCAPE].iter_mut().for_each(|v| *v = -1.0);
            r
        })
        .collect();
    let size = PtqFeatures::SIZE_FEATURE;
    let with_landscape = leave_one_group_out(&x, &y, &groups, size, cfg)?;
    let without_landscape = leave_one_group_out(&blank, &y, &groups, size, cfg)?;
    let all = crate::laws::forest::RandomForest::fit(&x, &y, cfg)?;
    let importances = PtqFeatures::NAMES
        .iter()
        .map(|n| n.to_string())
        .zip(all.importances.iter().copied())
        .collect();
    let mut models_with_features: Vec<String> = points
        .iter()
        .filter(|p| p.features.flatness.is_some())
        .map(|p| p.model.clone())
        .collect();
    models_with_features.sort();
    models_with_features.dedup();
    Ok(PredictorReport {
        n_points: points.len(),
        models_with_features,
        hold_out: by,
        with_landscape,
        without_landscape,
        importances,
    })
}

#[cfg(test)]
mod tests {
    use super::family_of;

    #[test]
    fn families_drop_the_size_suffix() {
        assert_eq!(family_of("bundled:qs-llama-s3-2M"), "qs-llama");
        assert_eq!(family_of("bundled:qs-neox-s10-500k"), "qs-neox");
        assert_eq!(family_of("HuggingFaceTB/SmolLM2-135M"), "SmolLM2-135M");
        assert_eq!(family_of("/x/y/model-small"), "model-small");
    }
}
