//! The Laws view: fit a law (as a background job), draw ΔL over (N, Qr) as a heatmap with
//! labelled isolines and the measured points on top, with a slider for the third variable (Qb)
//! that re-evaluates the map every frame, what-if sliders for the law's own parameters, and
//! exclusion of model sizes with a warm refit.
//!
//! Everything drawn is precomputed here (grid, isolines) from `laws`; the plot only draws.
//! Axes: N on log10 (tick labels 10^k), Qr linear.

use std::collections::BTreeSet;

use egui::{Color32, RichText, Ui};
use egui_plot::{Heatmap, Legend, Line, Plot, PlotPoint, PlotPoints, Points, Text};

use crate::jobs::{Job, Waker};
use crate::laws::grid::{evaluate, Axis, GridValues, Isoline};
use crate::laws::{fit, grid_rows, synthesize, Dataset, FitOptions, FitReport, Law, Var};

/// An isoline polyline in plot coordinates, its label, and where to draw the label.
type LabelledLine = (String, Vec<[f64; 2]>, Option<[f64; 2]>);

/// Grid samples per axis.
pub const GRID_N: usize = 96;

/// Where the points come from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Source {
    /// Drawn from the strong law with known parameters (until the demo sweep is bundled).
    Synthetic,
    /// A CSV file (a sweep's `export` summary, or any table `quantscape fit` reads).
    Csv(String),
}

/// The view's state.
pub struct LawsPanel {
    /// Data source.
    pub source: Source,
    data: Dataset,
    /// Law id (`unified-strong`, `unified-weak`).
    pub law_id: String,
    law: Law,
    /// The last fit.
    pub report: Option<FitReport>,
    job: Option<Job<FitReport>>,
    /// Current parameters (fitted, or edited in what-if mode).
    pub params: Vec<f64>,
    /// Edit parameters by hand instead of showing the fit.
    pub what_if: bool,
    /// Qb for the map (log slider).
    pub qb: f64,
    /// Model sizes left out of the fit.
    pub excluded: BTreeSet<u64>,
    /// Bootstrap resamples for the next fit.
    pub bootstrap: usize,
    grid: Option<(Vec<u64>, GridValues, Vec<Isoline>)>,
    /// Last error, shown until dismissed.
    pub error: Option<String>,
    waker: Waker,
}

/// The synthetic dataset: 6 sizes × 9 ratios × 5 block sizes from the strong law, σ = 0.08.
pub fn synthetic_data() -> Dataset {
    let law = Law::by_id("unified-strong").unwrap_or_else(|| Law::builtins().remove(0));
    let sizes: Vec<f64> = (0..6).map(|i| 2.5e4 * 2.2f64.powi(i)).collect();
    let ratios: Vec<f64> = (1..=9).map(|i| f64::from(i) / 10.0).collect();
    let blocks = [16.0, 32.0, 64.0, 128.0, 256.0];
    let rows = grid_rows(&[(Var::N, &sizes), (Var::Qr, &ratios), (Var::Qb, &blocks)]);
    synthesize(&law, &[0.6, 2.2, 0.35, 8.0, 0.4], rows, 0.08, 7)
        .unwrap_or_else(|_| Dataset::new(Vec::new(), Vec::new()))
}

fn bits(v: f64) -> u64 {
    v.to_bits()
}

impl LawsPanel {
    /// A panel on `data`, fitting it at once.
    pub fn new(source: Source, data: Dataset, waker: Waker) -> Self {
        let law = Law::by_id("unified-strong").unwrap_or_else(|| Law::builtins().remove(0));
        let params = law.params.iter().map(|p| p.starts[0]).collect();
        let mut s = Self {
            source,
            data,
            law_id: law.id.clone(),
            law,
            report: None,
            job: None,
            params,
            what_if: false,
            qb: 32.0,
            excluded: BTreeSet::new(),
            bootstrap: 200,
            grid: None,
            error: None,
            waker,
        };
        s.start_fit(None);
        s
    }

    /// Points used by the fit (sizes not excluded).
    fn kept(&self) -> Dataset {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for (r, v) in self.data.rows.iter().zip(&self.data.y) {
            if !self.excluded.contains(&bits(r[Var::N.index()])) {
                rows.push(*r);
                y.push(*v);
            }
        }
        Dataset::new(rows, y)
    }

    /// Starts a fit job (warm from `start` when given).
    pub fn start_fit(&mut self, start: Option<Vec<f64>>) {
        if let Some(j) = &self.job {
            j.cancel();
        }
        let law = self.law.clone();
        let data = self.kept();
        let opts = FitOptions {
            bootstrap: self.bootstrap,
            start,
            ..FitOptions::default()
        };
        self.job = Some(Job::spawn(
            format!("fit {}", law.id),
            self.waker.clone(),
            move |ctx| {
                ctx.check()?;
                let r = fit(&law, &data, &opts);
                ctx.set_progress(1, 1);
                r
            },
        ));
    }

    /// Whether a fit is running.
    pub fn fitting(&self) -> bool {
        self.job.is_some()
    }

    /// Collects a finished fit (call once per frame).
    pub fn poll(&mut self) {
        let Some(job) = &mut self.job else { return };
        if let Some(r) = job.poll() {
            self.job = None;
            match r {
                Ok(rep) => {
                    if !self.what_if {
                        self.params = rep.values();
                    }
                    self.report = Some(rep);
                }
                Err(crate::Error::Cancelled) => {}
                Err(e) => self.error = Some(format!("fit failed: {e}")),
            }
        }
    }

    fn sizes(&self) -> Vec<f64> {
        let mut s: Vec<f64> = self.data.rows.iter().map(|r| r[Var::N.index()]).collect();
        s.sort_by(f64::total_cmp);
        s.dedup();
        s.retain(|v| v.is_finite());
        s
    }

    /// The grid and isolines for the current parameters and Qb (cached by their bits).
    fn grid(&mut self) -> Option<&(Vec<u64>, GridValues, Vec<Isoline>)> {
        let mut key: Vec<u64> = self.params.iter().map(|v| bits(*v)).collect();
        key.push(bits(self.qb));
        if self.grid.as_ref().map(|g| &g.0) != Some(&key) {
            let sizes = self.sizes();
            let (lo, hi) = (
                sizes.first().copied().unwrap_or(1e4) / 2.0,
                sizes.last().copied().unwrap_or(1e6) * 4.0,
            );
            let x = Axis::new(Var::N, lo, hi, GRID_N);
            let y = Axis::new(Var::Qr, 0.0, 1.0, GRID_N);
            let mut base = crate::laws::EMPTY_ROW;
            base[Var::Qb.index()] = self.qb;
            let g = evaluate(&self.law, &self.params, x, y, &base).ok()?;
            let finite: Vec<f64> = g
                .values
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect();
            let levels = nice_levels(&finite);
            let iso = g.isolines(&levels, "ΔL = ").unwrap_or_default();
            self.grid = Some((key, g, iso));
        }
        self.grid.as_ref()
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.poll();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Law").strong());
            for id in ["unified-strong", "unified-weak"] {
                if ui
                    .selectable_label(self.law_id == id, id)
                    .on_hover_text(law_help(id))
                    .clicked()
                    && self.law_id != id
                {
                    if let Some(l) = Law::by_id(id) {
                        self.law_id = id.to_string();
                        self.params = l.params.iter().map(|p| p.starts[0]).collect();
                        self.law = l;
                        self.report = None;
                        self.start_fit(None);
                    }
                }
            }
            ui.separator();
            ui.label(format!(
                "data: {} ({} points)",
                match &self.source {
                    Source::Synthetic => "synthetic (strong law, σ = 0.08)".to_string(),
                    Source::Csv(p) => p.clone(),
                },
                self.data.len()
            ));
            ui.separator();
            if self.fitting() {
                ui.spinner();
                ui.label("fitting…");
                if ui.button("Cancel").clicked() {
                    if let Some(j) = &self.job {
                        j.cancel();
                    }
                }
            } else if ui.button("Refit").clicked() {
                self.start_fit(None);
            }
        });
        if let Some(e) = self.error.clone() {
            ui.horizontal(|ui| {
                ui.colored_label(Color32::LIGHT_RED, e);
                if ui.button("Dismiss").clicked() {
                    self.error = None;
                }
            });
        }
        egui::Panel::right("laws_side")
            .resizable(true)
            .default_size(320.0)
            .show(ui, |ui| self.side_ui(ui));
        self.plot_ui(ui);
    }

    fn side_ui(&mut self, ui: &mut Ui) {
        ui.heading("Map");
        let mut qb = self.qb;
        ui.add(
            egui::Slider::new(&mut qb, 4.0..=1024.0)
                .logarithmic(true)
                .text("Qb (block size)"),
        )
        .on_hover_text("Block size of the low-precision format: elements that share one scale.");
        self.qb = qb;
        ui.separator();
        ui.heading("Parameters");
        ui.checkbox(&mut self.what_if, "what-if (edit by hand)");
        let mut changed = false;
        egui::Grid::new("params").striped(true).show(ui, |ui| {
            ui.label("name");
            ui.label("value");
            ui.label("95% CI");
            ui.end_row();
            for (i, spec) in self.law.params.iter().enumerate() {
                ui.label(&spec.name).on_hover_text(param_help(&spec.name));
                if let Some(v) = self.params.get_mut(i) {
                    if self.what_if {
                        let (lo, hi) = slider_range(*v, spec.lower, spec.upper);
                        changed |= ui
                            .add(egui::Slider::new(v, lo..=hi).max_decimals(4))
                            .changed();
                    } else {
                        ui.label(format!("{v:.4}"));
                    }
                }
                let ci = self
                    .report
                    .as_ref()
                    .and_then(|r| r.params.get(i))
                    .and_then(|p| Some((p.ci_low?, p.ci_high?)));
                ui.label(ci.map_or("–".into(), |(a, b)| format!("[{a:.3}, {b:.3}]")));
                ui.end_row();
            }
        });
        if changed {
            self.grid = None;
        }
        if !self.what_if {
            if let Some(r) = &self.report {
                self.params = r.values();
            }
        }
        if let Some(r) = &self.report {
            ui.label(format!(
                "R² log {:.4}  RMSE log {:.4}  MAPE {:.1}%  ({} points, {} bootstrap)",
                r.r2_log,
                r.rmse_log,
                100.0 * r.mape,
                r.n_points,
                r.bootstrap_resamples
            ));
        }
        ui.separator();
        ui.heading("Model sizes in the fit");
        let mut toggled = false;
        for n in self.sizes() {
            let mut on = !self.excluded.contains(&bits(n));
            if ui.checkbox(&mut on, format!("N = {}", human(n))).changed() {
                if on {
                    self.excluded.remove(&bits(n));
                } else {
                    self.excluded.insert(bits(n));
                }
                toggled = true;
            }
        }
        if toggled {
            let warm = self.report.as_ref().map(FitReport::values);
            self.start_fit(warm);
        }
    }

    fn plot_ui(&mut self, ui: &mut Ui) {
        let residual_of: Vec<Option<f64>> = {
            let mut v = vec![None; self.data.len()];
            if let Some(r) = &self.report {
                // Residual indices refer to the kept points; map them back.
                let kept_idx: Vec<usize> = (0..self.data.len())
                    .filter(|&i| {
                        !self
                            .excluded
                            .contains(&bits(self.data.rows[i][Var::N.index()]))
                    })
                    .collect();
                for res in &r.residuals {
                    if let Some(&i) = kept_idx.get(res.index) {
                        v[i] = Some(res.residual);
                    }
                }
            }
            v
        };
        let qb = self.qb;
        let points: Vec<([f64; 2], Option<f64>)> = self
            .data
            .rows
            .iter()
            .zip(&residual_of)
            .filter(|(r, _)| {
                let b = r[Var::Qb.index()];
                !b.is_finite() || (b.log2() - qb.log2()).abs() < 0.5
            })
            .map(|(r, res)| ([r[Var::N.index()].log10(), r[Var::Qr.index()]], *res))
            .collect();
        let Some((_, g, iso)) = self.grid() else {
            ui.label("The law cannot be evaluated with these parameters.");
            return;
        };
        let nx = g.xs.len();
        // Heatmap rows run bottom-up like the grid's (Qr ascending).
        let vals: Vec<f64> = g
            .values
            .iter()
            .map(|v| if *v > 0.0 { v.log10() } else { f64::NAN })
            .collect();
        let (x0, x1) = (g.x.min.log10(), g.x.max.log10());
        let (vmin, vmax) = vals
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let heat = Heatmap::new(vals, nx)
            .at(PlotPoint::new(x0, 0.0))
            .size((x1 - x0) as f32, 1.0)
            .show_labels(false)
            .palette(&VIRIDIS)
            .range(vmin, vmax.max(vmin + 1e-9))
            .name("log10 ΔL");
        let lines: Vec<LabelledLine> = iso
            .iter()
            .flat_map(|l| {
                l.lines.iter().enumerate().map(move |(k, pl)| {
                    (
                        l.label.clone(),
                        pl.iter().map(|p| [p[0].log10(), p[1]]).collect(),
                        if k == 0 {
                            l.label_at.map(|p| [p[0].log10(), p[1]])
                        } else {
                            None
                        },
                    )
                })
            })
            .collect();
        Plot::new("laws_map")
            .x_axis_label("N (non-embedding parameters, log)")
            .y_axis_label("Qr (low-precision fraction)")
            .x_axis_formatter(|m, _| log_tick(m.value))
            .legend(Legend::default().position(egui_plot::Corner::RightBottom))
            .show(ui, |p| {
                p.heatmap(heat);
                for (label, pts, at) in lines {
                    p.line(
                        Line::new("isolines", PlotPoints::from(pts))
                            .color(Color32::WHITE)
                            .width(1.2),
                    );
                    if let Some(a) = at {
                        p.text(Text::new(
                            "labels",
                            PlotPoint::new(a[0], a[1]),
                            RichText::new(label).color(Color32::WHITE).small(),
                        ));
                    }
                }
                let (good, bad): (Vec<_>, Vec<_>) = points
                    .iter()
                    .partition(|(_, r)| r.is_none_or(|r| r.abs() < 0.1));
                p.points(
                    Points::new(
                        "measured (|log residual| < 0.1)",
                        PlotPoints::from(good.iter().map(|(x, _)| *x).collect::<Vec<_>>()),
                    )
                    .radius(3.0)
                    .color(Color32::from_rgb(80, 220, 120)),
                );
                p.points(
                    Points::new(
                        "measured (|log residual| ≥ 0.1)",
                        PlotPoints::from(bad.iter().map(|(x, _)| *x).collect::<Vec<_>>()),
                    )
                    .radius(3.0)
                    .color(Color32::from_rgb(240, 90, 70)),
                );
            });
    }
}

/// Up to 7 isoline levels at 1-2-5 steps spanning the positive values.
pub fn nice_levels(values: &[f64]) -> Vec<f64> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(*v), b.max(*v)));
    if !(lo.is_finite() && hi > lo) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    for e in e0..=e1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(e);
            if v > lo && v < hi {
                out.push(v);
            }
        }
    }
    while out.len() > 7 {
        out = out.into_iter().step_by(2).collect();
    }
    out
}

/// A viridis-like palette (dark blue → green → yellow).
const VIRIDIS: [Color32; 6] = [
    Color32::from_rgb(68, 1, 84),
    Color32::from_rgb(65, 68, 135),
    Color32::from_rgb(42, 120, 142),
    Color32::from_rgb(34, 168, 132),
    Color32::from_rgb(122, 209, 81),
    Color32::from_rgb(253, 231, 37),
];

/// Tick label of a log10 axis: `10^k` → "10K"-style numbers at integer and half decades.
fn log_tick(t: f64) -> String {
    let v = 10f64.powf(t);
    if (t - t.round()).abs() < 1e-6 || (t * 2.0 - (t * 2.0).round()).abs() < 1e-6 {
        human(v)
    } else {
        String::new()
    }
}

fn slider_range(v: f64, lo: f64, hi: f64) -> (f64, f64) {
    let span = if v.abs() > 1e-9 { v.abs() * 3.0 } else { 1.0 };
    ((v - span).max(lo), (v + span).min(hi))
}

fn human(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn law_help(id: &str) -> &'static str {
    match id {
        "unified-strong" => {
            "ΔL = C·e^(A·Qr)·N^(−γ_N)·(Qb + d)^γ_c — Cao et al., arXiv 2410.06722: loss grows \
             exponentially with the low-precision ratio, shrinks as a power of model size, and \
             grows sub-linearly with the block size."
        }
        _ => "ΔL = C·e^(A·Qr)·N^(−γ_N) — the same law without the block-size term.",
    }
}

fn param_help(name: &str) -> &'static str {
    match name {
        "C" => "Overall scale of the degradation.",
        "A" => "Ratio term: how fast ΔL grows as more of the model is in low precision (e^(A·Qr)).",
        "gamma_N" => "Size term: larger models degrade less, as N^(−γ_N).",
        "d" => "Offset of the block size in the granularity term (Qb + d).",
        "gamma_c" => "Granularity exponent (0 < γ_c < 1): coarser blocks cost more, sub-linearly.",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_fit(p: &mut LawsPanel) {
        let t = std::time::Instant::now();
        while p.fitting() {
            p.poll();
            assert!(t.elapsed().as_secs() < 60, "fit did not finish");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn fits_in_the_background_and_refits_without_a_size() {
        let mut p = LawsPanel::new(Source::Synthetic, synthetic_data(), crate::jobs::no_waker());
        p.bootstrap = 20;
        wait_fit(&mut p);
        let r = p.report.clone().expect("a fit");
        assert!(r.r2_log > 0.95, "R² {}", r.r2_log);
        // Truth: A = 2.2, γ_N = 0.35 (σ = 0.08 noise).
        assert!((p.params[1] - 2.2).abs() < 0.15 && (p.params[2] - 0.35).abs() < 0.05);
        let g = p.grid().expect("grid").1.values.len();
        assert_eq!(g, GRID_N * GRID_N);
        let n_all = r.n_points;
        let largest = *p.sizes().last().unwrap();
        p.excluded.insert(bits(largest));
        p.start_fit(Some(p.params.clone()));
        wait_fit(&mut p);
        assert_eq!(p.report.as_ref().unwrap().n_points, n_all - n_all / 6);
        // A new Qb changes the map.
        let before = p.grid().unwrap().1.values.clone();
        p.qb = 256.0;
        assert_ne!(p.grid().unwrap().1.values, before);
    }

    #[test]
    fn levels_are_1_2_5_steps_inside_the_range() {
        let l = nice_levels(&[0.013, 0.9]);
        assert_eq!(l, vec![0.02, 0.05, 0.1, 0.2, 0.5]);
        assert!(nice_levels(&[]).is_empty());
    }
}
