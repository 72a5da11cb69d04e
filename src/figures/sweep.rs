//! The Sweep view's figures, computed from a results store with no drawing: ΔL (or KL) against
//! achieved Qr per model for one (granularity, low format, Qb) slice, and the trial distribution
//! per configuration (whiskers q10–q90, box q25–q75, median). ΔL and KL in nats/token on a log
//! axis; trials with a value ≤ 0 cannot be drawn on it and are left out.

use super::{human, sequential, Figure, Mark};
use crate::search::export::StoreContents as Loaded;
use crate::search::spec::Metric;

/// The slice of trials shown: granularity, low format, Qb.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slice {
    /// Granularity id.
    pub granularity: String,
    /// Low format.
    pub low: String,
    /// Qb as spelled.
    pub qb: String,
    /// What the figures show per trial: ΔL or KL(base, quantized).
    pub metric: Metric,
}

/// A trial's value of `metric`.
fn value(t: &crate::search::TrialRow, metric: Metric) -> f64 {
    match metric {
        Metric::DeltaNll => t.delta_nll,
        Metric::Kl => t.kl_mean,
    }
}

/// The metric's name in titles.
pub fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::DeltaNll => "ΔL",
        Metric::Kl => "KL",
    }
}

/// The distinct values, sorted.
pub fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = values.collect();
    v.sort();
    v.dedup();
    v
}

/// Models in a stable order (by N) with their N.
fn model_order(l: &Loaded) -> Vec<(String, f64)> {
    let mut m: Vec<(String, f64)> = l
        .models
        .iter()
        .map(|m| (m.model.clone(), m.n_params_non_embedding as f64))
        .collect();
    m.sort_by(|a, b| a.1.total_cmp(&b.1));
    m
}

/// ΔL (or KL) against achieved Qr, one colour per model, for the slice.
pub fn scatter_figure(l: &Loaded, s: &Slice) -> Figure {
    let mut f = Figure::new(
        "sweep_scatter",
        &format!(
            "{} · {} · Qb {}: {} per trial",
            s.granularity,
            s.low,
            s.qb,
            metric_name(s.metric)
        ),
        "achieved Qr",
        s.metric.label(),
    );
    f.y_log = true;
    let order = model_order(l);
    for (i, (model, n)) in order.iter().enumerate() {
        let pts: Vec<[f64; 2]> = l
            .trials
            .iter()
            .filter(|t| {
                &t.model == model
                    && t.granularity == s.granularity
                    && t.low == s.low
                    && t.qb == s.qb
            })
            .map(|t| (t.qr_achieved, value(t, s.metric)))
            .filter(|&(_, v)| v > 0.0)
            .map(|(q, v)| [q, v.log10()])
            .collect();
        f.push(
            &format!("N = {}", human(*n)),
            Mark::Dots(2.5),
            sequential(i, order.len()),
            pts,
        );
    }
    f
}

/// Box plots of ΔL (or KL) over the trials of each configuration in the slice, at x = target
/// Qr (offset per model so the boxes sit side by side).
pub fn boxes_figure(l: &Loaded, s: &Slice) -> Figure {
    let mut f = Figure::new(
        "sweep_boxes",
        &format!(
            "{} over the trials of each configuration (q10–q90, q25–q75, median)",
            metric_name(s.metric)
        ),
        "target Qr",
        s.metric.label(),
    );
    f.y_log = true;
    let order = model_order(l);
    let k = order.len().max(1) as f64;
    for (i, (model, n)) in order.iter().enumerate() {
        let c = sequential(i, order.len());
        let dx = 0.1 / k;
        let x_off = (i as f64 - (k - 1.0) / 2.0) * dx;
        let mut whiskers = Vec::new();
        let mut boxes = Vec::new();
        let mut medians = Vec::new();
        let mut by_qr: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
        for t in l.trials.iter().filter(|t| {
            &t.model == model && t.granularity == s.granularity && t.low == s.low && t.qb == s.qb
        }) {
            by_qr
                .entry(t.qr_target.to_bits())
                .or_default()
                .push(value(t, s.metric));
        }
        // The target Qr levels that have a box name the x axis (the boxes sit beside them);
        // a level whose values are all 0 (Qr 0: the base model) has none on a log axis.
        let by_qr_levels: Vec<f64> = by_qr
            .iter()
            .filter(|(_, v)| v.iter().any(|x| *x > 0.0))
            .map(|(q, _)| f64::from_bits(*q))
            .collect();
        for (q, mut v) in by_qr {
            v.sort_by(f64::total_cmp);
            let at = |p: f64| {
                let x = crate::search::export::quantile(&v, p);
                if x > 0.0 {
                    x.log10()
                } else {
                    f64::NAN
                }
            };
            let x = f64::from_bits(q) + x_off;
            let w = dx * 0.35;
            whiskers.extend([[x, at(0.1)], [x, at(0.9)], [f64::NAN, f64::NAN]]);
            boxes.extend([
                [x - w, at(0.25)],
                [x + w, at(0.25)],
                [x + w, at(0.75)],
                [x - w, at(0.75)],
                [x - w, at(0.25)],
                [f64::NAN, f64::NAN],
            ]);
            medians.extend([[x - w, at(0.5)], [x + w, at(0.5)], [f64::NAN, f64::NAN]]);
        }
        for x in by_qr_levels.iter() {
            if !f.x_names.iter().any(|(v, _)| v == x) {
                f.x_names.push((*x, format!("{x}")));
            }
        }
        let name = format!("N = {}", human(*n));
        f.push(&name, Mark::Line(1.0), c, whiskers);
        f.push(&name, Mark::Line(1.5), c, boxes);
        f.push(&name, Mark::Line(2.5), c, medians);
    }
    f.x_names.sort_by(|a, b| a.0.total_cmp(&b.0));
    f
}
