//! The Laws view: fit a law to measured ΔL (as a background job with bootstrap CIs) and show it
//! as a contour map over two of (N, Qr, Qb) with a slider for the third that re-evaluates the map
//! every frame; what-if sliders for the law's own parameters; excluding model sizes refits warm;
//! a parameter table with CIs, a measured-vs-predicted plot, and ΔL-budget curves.
//!
//! Data: the bundled demo sweep (`assets/demo/demo.sqlite`) when present, else points drawn from
//! the strong law with known parameters; or any CSV/results store the user opens. Figures are
//! computed in [`super::laws_figs`] and cached by the bits of everything they depend on.

use egui::{RichText, Ui};

use super::help::{law_help, param_help};
use super::laws_figs::{budget_figures, map_figure, range_of, residual_figure, MapSlice};
use super::plots::{human, Figure};
use super::session::{LawsState, Plane, Source};
use crate::jobs::{Job, Waker};
use crate::laws::{fit, grid_rows, synthesize, Dataset, FitOptions, FitReport, Law, Target, Var};

/// The bundled demo sweep's results store.
pub fn demo_store() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/demo.sqlite")
}

/// Which figure the main area shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LawsTab {
    /// Contour map.
    Map,
    /// Measured vs predicted.
    Residuals,
    /// ΔL budget curves.
    Budget,
}

/// The view's state: the saved choices plus the runtime (data, job, figure caches).
pub struct LawsPanel {
    /// Saved choices.
    pub st: LawsState,
    data: Dataset,
    data_note: String,
    law: Law,
    job: Option<Job<FitReport>>,
    /// Figure shown.
    pub tab: LawsTab,
    /// Map samples per axis.
    pub grid_n: usize,
    map: Option<(Vec<u64>, Figure)>,
    budget: Option<(Vec<u64>, (Figure, Figure))>,
    /// Last error, shown until dismissed.
    pub error: Option<String>,
    waker: Waker,
}

/// The synthetic dataset: 6 sizes × 9 ratios × 5 block sizes from the strong law, σ = 0.08.
pub fn synthetic_data() -> Dataset {
    let law = strong();
    let sizes: Vec<f64> = (0..6).map(|i| 2.5e4 * 2.2f64.powi(i)).collect();
    let ratios: Vec<f64> = (1..=9).map(|i| f64::from(i) / 10.0).collect();
    let blocks = [16.0, 32.0, 64.0, 128.0, 256.0];
    let rows = grid_rows(&[(Var::N, &sizes), (Var::Qr, &ratios), (Var::Qb, &blocks)]);
    synthesize(&law, &[0.6, 2.2, 0.35, 8.0, 0.4], rows, 0.08, 7)
        .unwrap_or_else(|_| Dataset::new(Vec::new(), Vec::new()))
}

fn strong() -> Law {
    Law::by_id("unified-strong").unwrap_or_else(|| Law::builtins().remove(0))
}

/// Loads the points of `source`: (data, a note saying what they are).
pub fn load_source(source: &Source) -> crate::Result<(Dataset, String)> {
    let synthetic = || {
        let d = synthetic_data();
        let note = format!("synthetic: strong law, σ = 0.08 ({} points)", d.len());
        (d, note)
    };
    match source {
        Source::Synthetic => Ok(synthetic()),
        Source::Demo => {
            let p = demo_store();
            if !p.is_file() {
                return Ok(synthetic());
            }
            let d = Dataset::from_path(&p, None, Target::DeltaLoss)?;
            Ok((
                d.clone(),
                format!("demo sweep ({} configurations)", d.len()),
            ))
        }
        Source::Csv(path) => {
            let d = Dataset::from_path(std::path::Path::new(path), None, Target::DeltaLoss)?;
            Ok((d.clone(), format!("{path} ({} points)", d.len())))
        }
    }
}

fn bits(v: f64) -> u64 {
    v.to_bits()
}

impl LawsPanel {
    /// A panel restoring `st`; fits at once unless the session holds a fit.
    pub fn new(mut st: LawsState, waker: Waker) -> Self {
        let (data, data_note, error) = match load_source(&st.source) {
            Ok((d, n)) => (d, n, None),
            Err(e) => {
                st.source = Source::Synthetic;
                st.report = None;
                let d = synthetic_data();
                let n = format!("synthetic: strong law, σ = 0.08 ({} points)", d.len());
                (d, n, Some(format!("cannot load the data: {e}")))
            }
        };
        let law = Law::by_id(&st.law_id).unwrap_or_else(strong);
        st.law_id = law.id.clone();
        if st.params.len() != law.params.len() {
            st.params = law.params.iter().map(|p| p.starts[0]).collect();
        }
        let mut s = Self {
            st,
            data,
            data_note,
            law,
            job: None,
            tab: LawsTab::Map,
            grid_n: super::laws_figs::GRID_N,
            map: None,
            budget: None,
            error,
            waker,
        };
        if s.st.report.as_ref().is_none_or(|r| r.law != s.law.id) {
            s.st.report = None;
            s.start_fit(None);
        }
        s
    }

    /// Replaces the data (a CSV or results store the user opened) and refits.
    pub fn open(&mut self, source: Source) {
        match load_source(&source) {
            Ok((d, note)) => {
                self.st.source = source;
                self.data = d;
                self.data_note = note;
                self.st.excluded.clear();
                self.st.report = None;
                self.start_fit(None);
            }
            Err(e) => self.error = Some(format!("cannot open the data: {e}")),
        }
    }

    /// Replaces the points without refitting (benchmarks, tests); `note` says what they are.
    pub fn set_data(&mut self, data: Dataset, note: String) {
        self.data = data;
        self.data_note = note;
        self.map = None;
        self.budget = None;
    }

    /// The loaded points.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The law in use.
    pub fn law(&self) -> &Law {
        &self.law
    }

    /// Switches the law and refits.
    pub fn set_law(&mut self, id: &str) {
        if let Some(l) = Law::by_id(id) {
            self.st.law_id = l.id.clone();
            self.st.params = l.params.iter().map(|p| p.starts[0]).collect();
            self.law = l;
            self.st.report = None;
            self.start_fit(None);
        }
    }

    /// Points used by the fit (sizes not excluded).
    fn kept(&self) -> Dataset {
        let keep = |r: &crate::laws::Row| !self.is_excluded(r[Var::N.index()]);
        let (rows, y) = self
            .data
            .rows
            .iter()
            .zip(&self.data.y)
            .filter(|(r, _)| keep(r))
            .map(|(r, v)| (*r, *v))
            .unzip();
        Dataset::new(rows, y)
    }

    fn is_excluded(&self, n: f64) -> bool {
        self.st.excluded.iter().any(|e| bits(*e) == bits(n))
    }

    /// Starts a fit job (warm from `start` when given), cancelling a running one.
    pub fn start_fit(&mut self, start: Option<Vec<f64>>) {
        if let Some(j) = &self.job {
            j.cancel();
        }
        let law = self.law.clone();
        let data = self.kept();
        let opts = FitOptions {
            bootstrap: self.st.bootstrap,
            start,
            ..FitOptions::default()
        };
        self.job = Some(Job::spawn(
            format!("fit {}", law.id),
            self.waker.clone(),
            move |ctx| {
                ctx.check()?;
                let opts = FitOptions {
                    cancel: Some(ctx.cancel_flag()),
                    ..opts
                };
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

    /// Cancels a running fit.
    pub fn cancel(&mut self) {
        if let Some(j) = &self.job {
            j.cancel();
        }
    }

    /// Collects a finished fit (call once per frame).
    pub fn poll(&mut self) {
        let Some(job) = &mut self.job else { return };
        if let Some(r) = job.poll() {
            self.job = None;
            match r {
                Ok(rep) => {
                    if !self.st.what_if {
                        self.st.params = rep.values();
                    }
                    self.st.report = Some(rep);
                }
                Err(crate::Error::Cancelled) => {}
                Err(e) => self.error = Some(format!("fit failed: {e}")),
            }
        }
    }

    /// Distinct model sizes in the data, ascending.
    pub fn sizes(&self) -> Vec<f64> {
        let mut s: Vec<f64> = self.data.rows.iter().map(|r| r[Var::N.index()]).collect();
        s.retain(|v| v.is_finite());
        s.sort_by(f64::total_cmp);
        s.dedup();
        s
    }

    /// Value of the slider variable of the current plane.
    pub fn third_value(&self) -> f64 {
        match self.st.plane.vars().2 {
            Var::Qb => self.st.qb,
            Var::N => self.st.n,
            _ => self.st.qr,
        }
    }

    fn residuals(&self) -> Vec<Option<f64>> {
        let mut v = vec![None; self.data.len()];
        if let Some(r) = &self.st.report {
            // Residual indices refer to the kept points; map them back.
            let kept: Vec<usize> = (0..self.data.len())
                .filter(|&i| !self.is_excluded(self.data.rows[i][Var::N.index()]))
                .collect();
            for res in &r.residuals {
                if let Some(&i) = kept.get(res.index) {
                    v[i] = Some(res.residual);
                }
            }
        }
        v
    }

    fn key(&self, extra: &[f64]) -> Vec<u64> {
        let mut k: Vec<u64> = self.st.params.iter().map(|v| bits(*v)).collect();
        k.extend(extra.iter().map(|v| bits(*v)));
        k.push(self.st.report.as_ref().map_or(0, |r| r.n_points as u64));
        k.push(self.data.len() as u64);
        k.push(self.st.excluded.len() as u64);
        k
    }

    /// The contour map for the current parameters, plane and slider (cached).
    pub fn map_figure(&mut self) -> Option<&Figure> {
        let plane_code = Plane::ALL
            .iter()
            .position(|p| *p == self.st.plane)
            .unwrap_or(0);
        let key = self.key(&[self.third_value(), plane_code as f64, self.grid_n as f64]);
        if self.map.as_ref().map(|m| &m.0) != Some(&key) {
            let slice = MapSlice {
                plane: self.st.plane,
                third_value: self.third_value(),
                grid_n: self.grid_n,
            };
            let f = map_figure(
                &self.law,
                &self.st.params,
                slice,
                &self.data,
                &self.residuals(),
                &self.sizes(),
            )
            .ok()?;
            self.map = Some((key, f));
        }
        self.map.as_ref().map(|m| &m.1)
    }

    /// The ΔL budget curves (cached).
    pub fn budget_figures(&mut self) -> &(Figure, Figure) {
        let key = self.key(&[self.st.budget, self.st.qb]);
        if self.budget.as_ref().map(|b| &b.0) != Some(&key) {
            let figs = budget_figures(
                &self.law,
                &self.st.params,
                self.st.budget,
                self.st.qb,
                &self.sizes(),
            );
            self.budget = Some((key, figs));
        }
        &self.budget.get_or_insert_with(Default::default).1
    }

    /// The figure on screen (for exports).
    pub fn current_figure(&mut self) -> Option<Figure> {
        match self.tab {
            LawsTab::Map => self.map_figure().cloned(),
            LawsTab::Residuals => self.st.report.as_ref().map(residual_figure),
            LawsTab::Budget => Some(self.budget_figures().0.clone()),
        }
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.poll();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Law").strong());
            for id in ["unified-strong", "unified-weak"] {
                if ui
                    .selectable_label(self.st.law_id == id, id)
                    .on_hover_text(law_help(id))
                    .clicked()
                    && self.st.law_id != id
                {
                    self.set_law(id);
                }
            }
            ui.separator();
            ui.label(format!("data: {}", self.data_note));
            ui.separator();
            if self.fitting() {
                ui.spinner();
                ui.label("fitting…");
                if ui.button("Cancel fit").clicked() {
                    self.cancel();
                }
            } else if ui.button("Refit").clicked() {
                self.start_fit(None);
            }
        });
        super::error_row(ui, &mut self.error);
        egui::Panel::right("laws_side")
            .resizable(true)
            .default_size(330.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.side_ui(ui));
            });
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.tab, LawsTab::Map, "Contour map");
            ui.selectable_value(&mut self.tab, LawsTab::Residuals, "Measured vs predicted");
            ui.selectable_value(&mut self.tab, LawsTab::Budget, "ΔL budget curves");
        });
        if self.st.report.is_none() && !self.st.what_if {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!(
                    "fitting {} to {} points ({} bootstrap resamples)…",
                    self.law.id,
                    self.data.len(),
                    self.st.bootstrap
                ));
            });
            return;
        }
        match self.tab {
            LawsTab::Map => match self.map_figure() {
                Some(f) => f.show(ui, None),
                None => {
                    ui.label("The law cannot be evaluated with these parameters.");
                }
            },
            LawsTab::Residuals => match &self.st.report {
                Some(r) => residual_figure(r).show(ui, None),
                None => {
                    ui.label("No fit yet.");
                }
            },
            LawsTab::Budget => {
                let h = ui.available_height() / 2.0 - 4.0;
                let (a, b) = self.budget_figures().clone();
                a.show(ui, Some(h));
                b.show(ui, Some(h));
            }
        }
    }

    fn side_ui(&mut self, ui: &mut Ui) {
        ui.heading("Map");
        ui.horizontal(|ui| {
            for p in Plane::ALL {
                ui.selectable_value(&mut self.st.plane, p, p.label());
            }
        });
        let (lo_n, hi_n) = range_of(Var::N, &self.sizes());
        let third = self.st.plane.vars().2;
        let (label, help) = match third {
            Var::Qb => ("Qb (block size)", "Elements that share one scale."),
            Var::N => ("N (model size)", "Non-embedding parameters of the model."),
            _ => (
                "Qr (low-precision fraction)",
                "Fraction of weights in the low format.",
            ),
        };
        let slider = match third {
            Var::Qb => egui::Slider::new(&mut self.st.qb, 4.0..=1024.0).logarithmic(true),
            Var::N => egui::Slider::new(&mut self.st.n, lo_n..=hi_n.max(1e12))
                .logarithmic(true)
                .custom_formatter(|v, _| human(v)),
            _ => egui::Slider::new(&mut self.st.qr, 0.0..=1.0),
        };
        ui.add(slider.text(label)).on_hover_text(help);
        ui.add(
            egui::Slider::new(&mut self.st.budget, 0.001..=1.0)
                .logarithmic(true)
                .text("ΔL budget"),
        )
        .on_hover_text("Nats/token of degradation allowed, for the budget curves.");
        ui.separator();
        ui.heading("Parameters");
        ui.checkbox(&mut self.st.what_if, "what-if (edit by hand)");
        self.params_ui(ui);
        ui.separator();
        ui.heading("Model sizes in the fit");
        let mut toggled = false;
        for n in self.sizes() {
            let mut on = !self.is_excluded(n);
            if ui.checkbox(&mut on, format!("N = {}", human(n))).changed() {
                if on {
                    self.st.excluded.retain(|e| bits(*e) != bits(n));
                } else {
                    self.st.excluded.push(n);
                }
                toggled = true;
            }
        }
        if toggled {
            let warm = self.st.report.as_ref().map(FitReport::values);
            self.start_fit(warm);
        }
        ui.add(egui::Slider::new(&mut self.st.bootstrap, 0..=1000).text("bootstrap resamples"));
    }

    fn params_ui(&mut self, ui: &mut Ui) {
        egui::Grid::new("params").striped(true).show(ui, |ui| {
            ui.label("name");
            ui.label("value");
            ui.label("95% CI");
            ui.end_row();
            for (i, spec) in self.law.params.iter().enumerate() {
                ui.label(&spec.name).on_hover_text(param_help(&spec.name));
                if let Some(v) = self.st.params.get_mut(i) {
                    if self.st.what_if {
                        let (lo, hi) = slider_range(*v, spec.lower, spec.upper);
                        ui.add(egui::Slider::new(v, lo..=hi).max_decimals(4));
                    } else {
                        ui.label(format!("{v:.4}"));
                    }
                }
                let ci = self
                    .st
                    .report
                    .as_ref()
                    .and_then(|r| r.params.get(i))
                    .and_then(|p| Some((p.ci_low?, p.ci_high?)));
                ui.label(ci.map_or("–".into(), |(a, b)| format!("[{a:.3}, {b:.3}]")));
                ui.end_row();
            }
        });
        if !self.st.what_if {
            if let Some(r) = &self.st.report {
                self.st.params = r.values();
            }
        }
        if let Some(r) = &self.st.report {
            ui.label(format!(
                "R² log {:.4}  RMSE log {:.4}  MAPE {:.1}%  ({} points, {} bootstrap)",
                r.r2_log,
                r.rmse_log,
                100.0 * r.mape,
                r.n_points,
                r.bootstrap_resamples
            ));
        }
    }
}

fn slider_range(v: f64, lo: f64, hi: f64) -> (f64, f64) {
    let span = if v.abs() > 1e-9 { v.abs() * 3.0 } else { 1.0 };
    ((v - span).max(lo), (v + span).min(hi))
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
        let st = LawsState {
            source: Source::Synthetic,
            bootstrap: 20,
            ..LawsState::default()
        };
        let mut p = LawsPanel::new(st, crate::jobs::no_waker());
        wait_fit(&mut p);
        let r = p.st.report.clone().expect("a fit");
        assert!(r.r2_log > 0.95, "R² {}", r.r2_log);
        // Truth: A = 2.2, γ_N = 0.35 (σ = 0.08 noise).
        assert!((p.st.params[1] - 2.2).abs() < 0.15 && (p.st.params[2] - 0.35).abs() < 0.05);
        let n_all = r.n_points;
        let largest = *p.sizes().last().unwrap();
        p.st.excluded.push(largest);
        p.start_fit(Some(p.st.params.clone()));
        wait_fit(&mut p);
        assert_eq!(p.st.report.as_ref().unwrap().n_points, n_all - n_all / 6);
        // A new Qb changes the map; a restored session does not refit.
        let before = p.map_figure().unwrap().heat.clone();
        p.st.qb = 256.0;
        assert_ne!(p.map_figure().unwrap().heat, before);
        let again = LawsPanel::new(p.st.clone(), crate::jobs::no_waker());
        assert!(!again.fitting());
        assert_eq!(again.st.params, p.st.params);
    }

    #[test]
    fn a_bad_source_falls_back_with_a_message() {
        let st = LawsState {
            source: Source::Csv("/nonexistent/points.csv".into()),
            bootstrap: 0,
            ..LawsState::default()
        };
        let p = LawsPanel::new(st, crate::jobs::no_waker());
        assert_eq!(p.st.source, Source::Synthetic);
        assert!(p
            .error
            .as_deref()
            .unwrap()
            .contains("/nonexistent/points.csv"));
        assert!(!p.data().is_empty());
    }
}
