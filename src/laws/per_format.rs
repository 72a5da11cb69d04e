//! A law with one scale C per low format, every other parameter shared: the "per-format C"
//! baseline a format-aware law is compared with. Fitted in log space by backfitting — fit the law
//! to y·e^{−c_f}, move each format's ln-offset c_f by the Huber M-estimate (or mean, for least squares)
//! of its points' residuals, recentre the offsets (the law's C absorbs their mean), repeat until
//! no offset moves by 1e-7 (300 rounds at most). By construction it cannot predict a format it was not fitted on.
//!
//! Units: offsets and residuals are natural logs of ΔL ratios; AIC/BIC count the law's
//! parameters plus one per extra format ([`super::diagnose::aic_bic`]).

use std::collections::BTreeMap;

use super::diagnose::aic_bic;
pub use super::diagnose::PerFormatFit;
use super::{fit, Dataset, FitOptions, Law, Loss, Space};
use crate::error::{Error, Result};

/// The Huber M-estimate of location of sorted `r`: the root of Σ ψ_δ(r_i − m), which is
/// non-increasing in m (bisection between the extremes; unique when some point lies within δ).
fn huber_location(r: &[f64], delta: f64) -> f64 {
    let s = |m: f64| r.iter().map(|v| (v - m).clamp(-delta, delta)).sum::<f64>();
    let (mut lo, mut hi) = (r[0], r[r.len() - 1]);
    if lo == hi {
        return lo;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if s(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-15 * (1.0 + mid.abs()) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Fits `law` with one C per low format of `data` (log space; needs a scale parameter and at
/// least two labelled formats).
pub fn per_format_scale(law: &Law, data: &Dataset, opts: &FitOptions) -> Result<PerFormatFit> {
    let scale = law.scale_index().ok_or_else(|| {
        Error::Input(format!(
            "law {} has no single scale parameter to give each format",
            law.id
        ))
    })?;
    let mut formats: Vec<&str> = data.format.iter().map(String::as_str).collect();
    formats.sort_unstable();
    formats.dedup();
    if formats.len() < 2 || formats.contains(&"") {
        return Err(Error::Input(
            "a per-format C needs at least two low formats and a format label on every point"
                .into(),
        ));
    }
    let o = FitOptions {
        bootstrap: 0,
        leave_one_size_out: false,
        compare_simpler: false,
        space: Space::Log,
        ..opts.clone()
    };
    let mut offset: BTreeMap<&str, f64> = formats.iter().map(|f| (*f, 0.0)).collect();
    let mut adjusted = data.clone();
    let mut start = None;
    let mut iterations = 0;
    let (report, converged) = loop {
        iterations += 1;
        for (i, y) in adjusted.y.iter_mut().enumerate() {
            let factor = (-offset[data.format[i].as_str()]).exp();
            *y = data.y[i] * factor;
            if let (Some(s), Some(&s0)) = (adjusted.se.get_mut(i), data.se.get(i)) {
                *s = s0 * factor;
            }
        }
        let r = fit(
            law,
            &adjusted,
            &FitOptions {
                start: start.clone(),
                ..o.clone()
            },
        )?;
        start = Some(r.params.iter().map(|p| p.value).collect::<Vec<f64>>());
        let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for res in &r.residuals {
            by.entry(data.format[res.index].as_str())
                .or_default()
                .push(res.residual);
        }
        let mut moved: f64 = 0.0;
        for (f, mut rs) in by {
            rs.sort_by(f64::total_cmp);
            let m = match o.loss {
                Loss::LeastSquares => rs.iter().sum::<f64>() / rs.len() as f64,
                Loss::Huber { delta } => huber_location(&rs, delta),
            };
            if let Some(c) = offset.get_mut(f) {
                *c -= m;
                moved = moved.max(m.abs());
            }
        }
        let mean = offset.values().sum::<f64>() / offset.len() as f64;
        offset.values_mut().for_each(|c| *c -= mean);
        if moved < 1e-7 || iterations >= 300 {
            break (r, moved < 1e-7);
        }
    };
    let params: Vec<f64> = report.params.iter().map(|p| p.value).collect();
    let (mut ss_res, mut ly) = (0.0, Vec::new());
    for res in &report.residuals {
        let c = offset[data.format[res.index].as_str()];
        let ln_y = data.y[res.index].ln();
        let ln_hat = res.predicted.ln() + c;
        ss_res += (ln_hat - ln_y).powi(2);
        ly.push(ln_y);
    }
    let n = ly.len();
    let mean = ly.iter().sum::<f64>() / n.max(1) as f64;
    let ss_tot: f64 = ly.iter().map(|v| (v - mean).powi(2)).sum();
    let rmse_log = (ss_res / n.max(1) as f64).sqrt();
    let (aic, bic) = aic_bic(n, law.params.len() + formats.len() - 1, rmse_log);
    Ok(PerFormatFit {
        law: law.id.clone(),
        scales: offset
            .iter()
            .map(|(f, c)| ((*f).to_string(), params[scale] * c.exp()))
            .collect(),
        params,
        n_points: n,
        r2_log: if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            f64::NAN
        },
        rmse_log,
        aic,
        bic,
        iterations,
        converged,
    })
}
