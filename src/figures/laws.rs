//! The Laws view's figures, computed from a law, its parameters and the data (no drawing here):
//! the contour map over two of (N, Qr, Qb) at a fixed value of the third, the measured-versus-
//! predicted residual plot, and the ΔL-budget curves (the largest Qr, and the largest Qb, that
//! keep the predicted ΔL within a budget, per model size).
//!
//! Units: ΔL in nats/token; N in parameters (log10 on the plot); Qb in elements (log10); Qr in
//! [0, 1]. The heatmap shows log10 ΔL so that decades get equal colour.

use super::{nice_levels, Figure, Heat, Label, Mark};
use crate::laws::grid::{evaluate, Axis};
use crate::laws::{Dataset, FitReport, Law, Row, Var, EMPTY_ROW};
use crate::session::Plane;
use crate::Result;

/// Grid samples per map axis (default).
pub const GRID_N: usize = 96;

const GOOD: [u8; 3] = [80, 220, 120];
const BAD: [u8; 3] = [240, 90, 70];

/// Axis range of each variable: N from the data's sizes (padded), Qr in [0, 1], Qb 4..1024.
pub fn range_of(var: Var, sizes: &[f64]) -> (f64, f64) {
    match var {
        Var::N => (
            sizes.first().copied().unwrap_or(1e4) / 2.0,
            sizes.last().copied().unwrap_or(1e6) * 4.0,
        ),
        Var::Qb => (4.0, 1024.0),
        _ => (0.0, 1.0),
    }
}

fn plot_coord(var: Var, v: f64) -> f64 {
    if var.is_log_scale() {
        v.log10()
    } else {
        v
    }
}

fn axis_label(var: Var) -> &'static str {
    match var {
        Var::N => "N (non-embedding parameters)",
        Var::Qr => "Qr (low-precision fraction)",
        Var::Qb => "Qb (block size, elements)",
        _ => "",
    }
}

/// Whether a measured point lies on the slice `third = value` (within half an octave of Qb,
/// 0.05 of Qr, or 0.15 decades of N); points without the variable are always shown.
pub fn on_slice(third: Var, value: f64, row: &Row) -> bool {
    let v = row[third.index()];
    if !v.is_finite() {
        return true;
    }
    match third {
        Var::Qb => (v.log2() - value.log2()).abs() < 0.5,
        Var::N => (v.log10() - value.log10()).abs() < 0.15,
        _ => (v - value).abs() < 0.05 + 1e-9,
    }
}

/// Which map: the plane, the slider variable's value, and the samples per axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapSlice {
    /// The two axes (the third variable is on the slider).
    pub plane: Plane,
    /// Value of the slider variable.
    pub third_value: f64,
    /// Samples per axis.
    pub grid_n: usize,
}

/// "KL" when the dataset's target is a KL column, else "ΔL".
pub fn target_symbol(data: &Dataset) -> &'static str {
    symbol_of(&data.target_name)
}

/// "KL" for a KL column name (`kl_mean`, `kl_best`, …), else "ΔL".
fn symbol_of(target: &str) -> &'static str {
    if target.to_ascii_lowercase().starts_with("kl") {
        "KL"
    } else {
        "ΔL"
    }
}

/// The contour map: heatmap of log10 ΔL (or KL), labelled isolines, and the measured points on the
/// slice coloured by |log residual| (< 0.1 green, else red; unfitted points green).
pub fn map_figure(
    law: &Law,
    params: &[f64],
    slice: MapSlice,
    data: &Dataset,
    residuals: &[Option<f64>],
    sizes: &[f64],
) -> Result<Figure> {
    let MapSlice {
        plane,
        third_value,
        grid_n,
    } = slice;
    let (xv, yv, third) = plane.vars();
    let (x0, x1) = range_of(xv, sizes);
    let (y0, y1) = range_of(yv, sizes);
    let mut base = EMPTY_ROW;
    base[third.index()] = third_value;
    let g = evaluate(
        law,
        params,
        Axis::new(xv, x0, x1, grid_n),
        Axis::new(yv, y0, y1, grid_n),
        &base,
    )?;
    let levels = nice_levels(&g.values);
    let sym = target_symbol(data);
    let iso = g
        .isolines(&levels, &format!("{sym} = "))
        .unwrap_or_default();
    let mut f = Figure::new(
        "laws_map",
        &format!(
            "{}: {sym} at {} = {}",
            law.id,
            third,
            fmt_value(third, third_value)
        ),
        axis_label(xv),
        axis_label(yv),
    );
    f.x_log = xv.is_log_scale();
    f.y_log = yv.is_log_scale();
    f.x_base2 = xv == Var::Qb;
    f.y_base2 = yv == Var::Qb;
    let vals: Vec<f64> = g
        .values
        .iter()
        .map(|v| if *v > 0.0 { v.log10() } else { f64::NAN })
        .collect();
    let (vmin, vmax) = vals
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let (px0, px1) = (plot_coord(xv, x0), plot_coord(xv, x1));
    let (py0, py1) = (plot_coord(yv, y0), plot_coord(yv, y1));
    f.heat = Some(Heat {
        name: format!("log10 {sym}"),
        values: vals,
        nx: g.xs.len(),
        origin: [px0, py0],
        size: [px1 - px0, py1 - py0],
        range: [vmin, vmax],
        log_values: true,
    });
    for l in &iso {
        for (k, line) in l.lines.iter().enumerate() {
            let pts = line
                .iter()
                .map(|p| [plot_coord(xv, p[0]), plot_coord(yv, p[1])])
                .collect();
            f.push("isolines", Mark::Line(1.2), [255, 255, 255], pts);
            if let (0, Some(a)) = (k, l.label_at) {
                f.labels.push(Label {
                    at: [plot_coord(xv, a[0]), plot_coord(yv, a[1])],
                    text: l.label.clone(),
                });
            }
        }
    }
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (r, res) in data.rows.iter().zip(residuals) {
        if !on_slice(third, third_value, r) {
            continue;
        }
        let p = [plot_coord(xv, r[xv.index()]), plot_coord(yv, r[yv.index()])];
        if res.is_none_or(|v| v.abs() < 0.1) {
            good.push(p);
        } else {
            bad.push(p);
        }
    }
    f.push(
        "measured (|log residual| < 0.1)",
        Mark::Dots(3.0),
        GOOD,
        good,
    );
    f.push("measured (|log residual| ≥ 0.1)", Mark::Dots(3.0), BAD, bad);
    Ok(f)
}

/// Measured against predicted ΔL (or KL; log–log) with the identity line.
pub fn residual_figure(report: &FitReport) -> Figure {
    let sym = symbol_of(&report.target);
    let mut f = Figure::new(
        "laws_residuals",
        &format!("{}: measured vs predicted", report.law),
        &format!("predicted {sym}"),
        &format!("measured {sym}"),
    );
    f.x_log = true;
    f.y_log = true;
    let pts: Vec<[f64; 2]> = report
        .residuals
        .iter()
        .filter(|r| r.y > 0.0 && r.predicted > 0.0)
        .map(|r| [r.predicted.log10(), r.y.log10()])
        .collect();
    let (lo, hi) = pts
        .iter()
        .flat_map(|p| [p[0], p[1]])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() {
        f.push(
            "measured = predicted",
            Mark::Line(1.0),
            [160, 160, 160],
            vec![[lo, lo], [hi, hi]],
        );
    }
    f.push("points", Mark::Dots(2.5), [90, 160, 240], pts);
    f
}

/// Largest x in [lo, hi] with `g(x) ≤ budget`, by bisection, for `g` increasing in x; `lo` when
/// even `g(lo)` is over budget (None), `hi` when all of it fits.
fn max_within(lo: f64, hi: f64, budget: f64, g: impl Fn(f64) -> f64) -> Option<f64> {
    let fits = |x: f64| g(x) <= budget;
    if !fits(lo) {
        return None;
    }
    if g(hi) <= budget {
        return Some(hi);
    }
    let (mut a, mut b) = (lo, hi);
    for _ in 0..50 {
        let m = 0.5 * (a + b);
        if g(m) <= budget {
            a = m;
        } else {
            b = m;
        }
    }
    Some(a)
}

/// Budget curves over N: the largest Qr at block size `qb`, and the largest Qb (log) with every
/// weight in the low format, that keep the predicted ΔL ≤ `budget`. Returns (Qr figure, Qb
/// figure); sizes where even the smallest value is over budget are left out.
pub fn budget_figures(
    law: &Law,
    params: &[f64],
    budget: f64,
    qb: f64,
    sizes: &[f64],
) -> (Figure, Figure) {
    let (n0, n1) = range_of(Var::N, sizes);
    let ns = Axis::new(Var::N, n0, n1, 64).values();
    let at = |n: f64, qr: f64, b: f64| {
        let mut r = EMPTY_ROW;
        r[Var::N.index()] = n;
        r[Var::Qr.index()] = qr;
        r[Var::Qb.index()] = b;
        law.eval(params, &r)
    };
    let title = format!("ΔL budget {budget}");
    let mut fq = Figure::new("laws_budget_qr", &title, axis_label(Var::N), "largest Qr");
    fq.x_log = true;
    let qr: Vec<[f64; 2]> = ns
        .iter()
        .filter_map(|&n| max_within(0.0, 1.0, budget, |q| at(n, q, qb)).map(|q| [n.log10(), q]))
        .collect();
    fq.push(
        &format!("max Qr at Qb = {qb:.0}"),
        Mark::Line(2.0),
        [240, 170, 60],
        qr,
    );
    let mut fb = Figure::new(
        "laws_budget_qb",
        &title,
        axis_label(Var::N),
        "largest Qb (Qr = 1)",
    );
    fb.x_log = true;
    fb.y_log = true;
    let qbs: Vec<[f64; 2]> = ns
        .iter()
        .filter_map(|&n| {
            max_within(0.0, 4.0, budget, |lb| at(n, 1.0, 10f64.powf(lb))).map(|lb| [n.log10(), lb])
        })
        .collect();
    fb.push("max Qb at Qr = 1", Mark::Line(2.0), [120, 200, 240], qbs);
    (fq, fb)
}

/// A variable's value as the slider shows it.
pub fn fmt_value(var: Var, v: f64) -> String {
    match var {
        Var::N => super::human(v),
        Var::Qb => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// Every slice of a store's configurations, sorted.
pub fn store_slices(
    summary: &[crate::search::export::ConfigSummary],
) -> Vec<crate::laws::data::StoreSlice> {
    let mut v: Vec<_> = summary
        .iter()
        .map(crate::laws::data::StoreSlice::of)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The slice fitted by default: layer × mxint4 × bf16 when present (a format whose ΔL moves
/// with Qb, so the granularity term has something to fit), else layer × mxfp4 × bf16, else the
/// first.
pub fn default_slice(
    summary: &[crate::search::export::ConfigSummary],
) -> Option<crate::laws::data::StoreSlice> {
    let all = store_slices(summary);
    ["mxint4", "mxfp4"]
        .iter()
        .find_map(|low| {
            let want = crate::laws::data::StoreSlice::new("layer", low, "bf16");
            all.iter().find(|s| **s == want)
        })
        .or(all.first())
        .cloned()
}

/// A configuration's model family: its architecture (`unknown` when the store lacks it).
pub fn family_of(c: &crate::search::export::ConfigSummary) -> &str {
    c.architecture.as_deref().unwrap_or("unknown")
}

/// Every model family of a store's configurations, sorted.
pub fn store_families(summary: &[crate::search::export::ConfigSummary]) -> Vec<String> {
    let mut v: Vec<String> = summary.iter().map(|c| family_of(c).to_string()).collect();
    v.sort();
    v.dedup();
    v
}

/// The family fitted by default among `families` (the store's, sorted): all (None) when there
/// is one; else the family with the most model sizes in `slice`, ties going to the family of
/// the first model by name (so the order of the sweep's model names decides, not the
/// architecture's spelling).
pub fn default_family(
    summary: &[crate::search::export::ConfigSummary],
    families: &[String],
    slice: &crate::laws::data::StoreSlice,
) -> Option<String> {
    if families.len() < 2 {
        return None;
    }
    let models = |f: &str| {
        summary
            .iter()
            .filter(|c| family_of(c) == f && &crate::laws::data::StoreSlice::of(c) == slice)
            .map(|c| c.model.as_str())
            .collect::<std::collections::BTreeSet<_>>()
    };
    families
        .iter()
        .map(|f| (f, models(f)))
        .max_by(|(_, a), (_, b)| {
            a.len()
                .cmp(&b.len())
                .then_with(|| b.first().cmp(&a.first()))
        })
        .map(|(f, _)| f.clone())
}

/// What a store selection is called: `layer · mxfp4 · bf16` (`… · LlamaForCausalLM`).
pub fn selection_label(slice: &crate::laws::data::StoreSlice, family: Option<&str>) -> String {
    match family {
        Some(f) => format!("{slice} · {f}"),
        None => slice.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strong() -> (Law, Vec<f64>) {
        (
            Law::by_id("unified-strong").unwrap(),
            vec![0.6, 2.2, 0.35, 8.0, 0.4],
        )
    }

    #[test]
    fn maps_on_every_plane_and_budget_curves_respect_the_budget() {
        let (law, p) = strong();
        let data = crate::laws::synthesize(
            &law,
            &p,
            crate::laws::grid_rows(&[
                (Var::N, &[1e5, 1e6]),
                (Var::Qr, &[0.5]),
                (Var::Qb, &[32.0, 256.0]),
            ]),
            0.0,
            1,
        )
        .unwrap();
        let res = vec![None, Some(0.5), None, None];
        let sizes = [1e5, 1e6];
        for plane in [Plane::NQr, Plane::NQb, Plane::QrQb] {
            let third = match plane {
                Plane::NQr => 32.0,
                Plane::NQb => 0.5,
                Plane::QrQb => 1e5,
            };
            let f = map_figure(
                &law,
                &p,
                MapSlice {
                    plane,
                    third_value: third,
                    grid_n: GRID_N,
                },
                &data,
                &res,
                &sizes,
            )
            .unwrap();
            assert_eq!(f.heat.as_ref().unwrap().values.len(), GRID_N * GRID_N);
            assert!(f.series.iter().any(|s| s.name == "isolines"));
            let shown: usize = f
                .series
                .iter()
                .filter(|s| s.name.starts_with("measured"))
                .map(|s| s.points.len())
                .sum();
            // Qb = 32 slice: 2 points; Qr = 0.5 slice: all 4; N = 1e5 slice: 2.
            assert_eq!(shown, if plane == Plane::NQb { 4 } else { 2 }, "{plane:?}");
        }
        let (fq, fb) = budget_figures(&law, &p, 0.2, 32.0, &sizes);
        for pt in &fq.series[0].points {
            let n = 10f64.powf(pt[0]);
            let mut r = EMPTY_ROW;
            r[Var::N.index()] = n;
            r[Var::Qr.index()] = pt[1];
            r[Var::Qb.index()] = 32.0;
            assert!(law.eval(&p, &r) <= 0.2 + 1e-9);
        }
        // Larger models tolerate more: the curves never decrease with N.
        for s in [&fq.series[0].points, &fb.series[0].points] {
            assert!(!s.is_empty());
            assert!(s.windows(2).all(|w| w[1][1] >= w[0][1] - 1e-9));
        }
    }
}
