//! The Laws view: fit a law to measured ΔL (as a background job with bootstrap CIs) and show it
//! as a contour map over two of (N, Qr, Qb) with a slider for the third that re-evaluates the map
//! every frame; what-if sliders for the law's own parameters; excluding model sizes refits warm;
//! a parameter table with CIs, a measured-vs-predicted plot, and ΔL-budget curves.
//!
//! Data: the bundled demo sweep (`assets/demo/demo.sqlite`) when present, else points drawn from
//! the strong law with known parameters; or any CSV/results store the user opens. Figures are
//! computed in [`super::laws_figs`] and cached by the bits of everything they depend on.

use egui::{RichText, Ui};

mod side;

use super::help::{law_help, param_help};
use super::laws_data::{
    load_source, selection_label, store_dataset, store_families, store_slices, strong,
    synthetic_data, StoreSlice,
};
use super::laws_figs::{budget_figures, map_figure, range_of, residual_figure, MapSlice};
use super::plots::{human, Figure};
use super::session::FamilyChoice;
use super::session::{LawsState, Plane, Source};
use crate::jobs::{JobSlot, Waker};
use crate::laws::{Dataset, FitReport, Law, Var};
use crate::search::export::ConfigSummary;
use crate::tasks::fit::{FitData, FitOutcome, FitRequest, LawSpec};

/// What the typed-law field starts with: the strong unified law spelled as a formula.
pub const EXAMPLE_FORMULA: &str = "C*exp(A*Qr)*N^(-g)*(Qb+d)^c";

/// A ΔL law from typed text.
fn typed_law(text: &str) -> crate::Result<Law> {
    let f = crate::laws::formula::Formula::parse(text.trim())?;
    Ok(Law::from_formula(f, crate::laws::Target::DeltaLoss))
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
    /// Configurations of the loaded results store (empty for CSV or synthetic data).
    pub store: Vec<ConfigSummary>,
    /// The loaded results store's file.
    store_path: Option<std::path::PathBuf>,
    /// The bundled demo store as read at start-up, for the Sweep view to take instead of
    /// reading it again.
    pub demo_read: Option<crate::search::export::StoreContents>,
    law: Law,
    /// The typed-law text field.
    pub formula_edit: String,
    job: JobSlot<FitOutcome>,
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

/// The median of the positive measured values, to two significant digits.
fn median_budget(y: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = y
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).map(|m| side::snap_2sig(*m))
}

fn bits(v: f64) -> u64 {
    v.to_bits()
}

impl LawsPanel {
    /// A panel restoring `st`; fits at once unless the session holds a fit.
    pub fn new(mut st: LawsState, waker: Waker) -> Self {
        let (data, data_note, read, error) = match load_source(
            &st.source,
            &mut st.store_slice,
            &mut st.store_family,
            (st.metric, st.statistic),
        ) {
            Ok((d, n, s)) => (d, n, s, None),
            Err(e) => {
                st.source = Source::Synthetic;
                st.report = None;
                let d = synthetic_data();
                let n = format!("synthetic: strong law, σ = 0.08 ({} points)", d.len());
                (d, n, None, Some(format!("cannot load the data: {e}")))
            }
        };
        let st_is_demo = matches!(st.source, Source::Demo);
        let mut error = error;
        let law = if st.law_id == "formula" {
            match typed_law(&st.formula) {
                Ok(l) => l,
                Err(e) => {
                    error = Some(format!("cannot restore the typed law: {e}"));
                    strong()
                }
            }
        } else {
            Law::by_id(&st.law_id).unwrap_or_else(strong)
        };
        st.law_id = law.id.clone();
        let formula_edit = if st.formula.is_empty() {
            EXAMPLE_FORMULA.to_string()
        } else {
            st.formula.clone()
        };
        if st.params.len() != law.params.len() {
            st.params = law.params.iter().map(|p| p.starts[0]).collect();
        }
        let mut s = Self {
            st,
            data,
            data_note,
            store: read
                .as_ref()
                .map(|l| l.1.summary.clone())
                .unwrap_or_default(),
            store_path: read.as_ref().map(|l| l.0.clone()),
            demo_read: read.map(|l| l.1).filter(|_| st_is_demo),
            law,
            formula_edit,
            job: JobSlot::default(),
            tab: LawsTab::Map,
            grid_n: super::laws_figs::GRID_N,
            map: None,
            budget: None,
            error,
            waker,
        };
        // The default budget (0.05 nats) may lie above every measured ΔL, which leaves the
        // budget curves flat; a default budget starts at the data's median instead.
        if s.st.budget == LawsState::default().budget {
            s.st.budget = median_budget(&s.data.y).unwrap_or(s.st.budget);
        }
        if s.st
            .report
            .as_ref()
            .is_none_or(|r| r.law != s.law.id || r.formula != s.law.formula)
        {
            s.st.report = None;
            s.start_fit(None);
        }
        s
    }

    /// Replaces the data (a CSV or results store the user opened) and refits.
    pub fn open(&mut self, source: Source) {
        let mut slice = self.st.store_slice.clone();
        let mut family = FamilyChoice::Auto;
        match load_source(&source, &mut slice, &mut family, self.measure()) {
            Ok((d, note, read)) => {
                self.st.source = source;
                self.st.store_slice = slice;
                self.st.store_family = family;
                self.store_path = read.as_ref().map(|l| l.0.clone());
                self.store = read.map(|l| l.1.summary).unwrap_or_default();
                self.data = d;
                self.data_note = note;
                self.map = None;
                self.budget = None;
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

    /// Fits another (granularity, low, high) slice of the loaded results store.
    pub fn set_slice(&mut self, slice: StoreSlice) {
        let family = self.st.store_family.clone();
        self.select(slice, family);
    }

    /// What a results store's points measure.
    pub fn measure(&self) -> super::laws_data::Measure {
        (self.st.metric, self.st.statistic)
    }

    /// Fits another measure (ΔL or KL; mean, median or best of T) of the same slice.
    pub fn set_measure(&mut self, (metric, stat): super::laws_data::Measure) {
        self.st.metric = metric;
        self.st.statistic = stat;
        if let Some(slice) = self.st.store_slice.clone() {
            let family = self.st.store_family.clone();
            self.select(slice, family);
        }
    }

    /// Fits another model family of the loaded results store (the same slice).
    pub fn set_family(&mut self, family: FamilyChoice) {
        if let Some(slice) = self.st.store_slice.clone() {
            self.select(slice, family);
        }
    }

    fn select(&mut self, slice: StoreSlice, family: FamilyChoice) {
        let Some(path) = self.store_path.clone() else {
            return;
        };
        let d = match store_dataset(&path, &slice, family.only(), self.measure()) {
            Ok(d) => d,
            Err(e) => {
                self.error = Some(format!("cannot read the slice: {e}"));
                return;
            }
        };
        let what = self
            .data_note
            .split(':')
            .next()
            .unwrap_or("results")
            .to_string();
        self.data_note = format!(
            "{what}: {} ({} configurations; {})",
            selection_label(&slice, family.only()),
            d.len(),
            super::laws_data::measure_label(self.measure())
        );
        self.st.store_slice = Some(slice);
        self.st.store_family = family;
        self.data = d;
        self.map = None;
        self.budget = None;
        self.st.excluded.clear();
        self.st.report = None;
        self.start_fit(None);
    }

    /// The loaded points.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// What the points are (source, slice, family, count).
    pub fn data_note(&self) -> &str {
        &self.data_note
    }

    /// The slice fitted (`layer · mxint4 · bf16`, with the family when one is chosen), else the
    /// source.
    pub fn slice_label(&self) -> String {
        match (&self.st.source, &self.st.store_slice) {
            (Source::Demo | Source::Csv(_), Some(sel)) => {
                selection_label(sel, self.st.store_family.only())
            }
            _ => self.source_note(),
        }
    }

    /// What the law was fitted on, in a few words (the Hardware view's caption).
    pub fn source_note(&self) -> String {
        match &self.st.source {
            Source::Csv(p) => p.clone(),
            Source::Demo if super::laws_data::demo_store().is_file() => "the demo sweep".into(),
            Source::Demo | Source::Synthetic => "synthetic points".into(),
        }
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

    /// Switches to the law typed as `text` and refits; a formula that does not parse is an error
    /// notice and changes nothing.
    pub fn set_formula(&mut self, text: &str) {
        match typed_law(text) {
            Ok(l) => {
                self.st.law_id = l.id.clone();
                self.st.formula = text.trim().to_string();
                self.st.params = l.params.iter().map(|p| p.starts[0]).collect();
                self.law = l;
                self.st.report = None;
                self.map = None;
                self.budget = None;
                self.start_fit(None);
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn is_excluded(&self, n: f64) -> bool {
        self.st.excluded.iter().any(|e| bits(*e) == bits(n))
    }

    /// The fit task's request for the current data, law and options (warm from `start`).
    pub fn fit_request(&self, start: Option<Vec<f64>>) -> FitRequest {
        let law = if self.law.id == "formula" {
            LawSpec::Formula {
                text: self.law.formula.clone(),
                target: self.law.target,
                params: Vec::new(),
            }
        } else {
            LawSpec::Builtin(self.law.id.clone())
        };
        FitRequest {
            bootstrap: self.st.bootstrap,
            start,
            exclude_sizes: self.st.excluded.clone(),
            ..FitRequest::new(FitData::Points(self.data.clone()), law)
        }
    }

    /// Starts a fit job (warm from `start` when given), cancelling a running one.
    pub fn start_fit(&mut self, start: Option<Vec<f64>>) {
        let req = self.fit_request(start);
        self.job.start(
            format!("fit {}", self.law.id),
            self.waker.clone(),
            move |ctx| crate::tasks::fit::run(&req, ctx),
        );
    }

    /// Whether a fit is running.
    pub fn fitting(&self) -> bool {
        self.job.is_running()
    }

    /// Cancels a running fit.
    pub fn cancel(&mut self) {
        self.job.cancel();
    }

    /// Collects a finished fit (call once per frame).
    pub fn poll(&mut self) {
        match self.job.finished() {
            Some(Ok(out)) => {
                if !self.st.what_if {
                    self.st.params = out.report.values();
                }
                self.st.report = Some(out.report);
            }
            Some(Err(e)) => self.error = Some(format!("fit failed: {e}")),
            None => {}
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
            let mut f = map_figure(
                &self.law,
                &self.st.params,
                slice,
                &self.data,
                &self.residuals(),
                &self.sizes(),
            )
            .ok()?;
            // Exports name what was fitted: law · slice · format (· family), then the Qb.
            if let (Source::Demo | Source::Csv(_), Some(sel)) =
                (&self.st.source, &self.st.store_slice)
            {
                f.title = format!(
                    "{} · {}",
                    f.title,
                    selection_label(sel, self.st.store_family.only())
                );
            }
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

    /// The fitted parameters with their CIs as a table (exports).
    pub fn table(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let f = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        let rows = self
            .st
            .report
            .iter()
            .flat_map(|r| &r.params)
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.value.to_string(),
                    f(p.ci_low),
                    f(p.ci_high),
                ]
            })
            .collect();
        (vec!["parameter", "value", "ci_low", "ci_high"], rows)
    }

    /// The figure on screen (for exports).
    pub fn current_figure(&mut self) -> Option<Figure> {
        match self.tab {
            LawsTab::Map => self.map_figure().cloned(),
            LawsTab::Residuals => self.st.report.as_ref().map(residual_figure),
            LawsTab::Budget => Some(self.budget_figures().0.clone()),
        }
    }

    /// The degenerate-fit warning: what the fit cannot claim, and the simpler law to use instead.
    fn flags_ui(&mut self, ui: &mut Ui) {
        let Some(r) = self.st.report.as_ref().filter(|r| r.degenerate()) else {
            return;
        };
        let simpler = r.simpler.as_ref().map(|c| c.law.clone());
        let lines: Vec<String> = r.flags.iter().map(|f| format!("• {}", f.message)).collect();
        let mut switch = false;
        egui::Frame::group(ui.style())
            .stroke(egui::Stroke::new(
                1.5,
                egui::Color32::from_rgb(230, 160, 40),
            ))
            .show(ui, |ui| {
                ui.label(
                    RichText::new(format!("Degenerate fit of {}", self.law.id))
                        .strong()
                        .color(egui::Color32::from_rgb(230, 160, 40)),
                );
                for l in &lines {
                    ui.label(l);
                }
                if let Some(id) = &simpler {
                    switch = ui
                        .button(format!("Use the simpler law ({id})"))
                        .on_hover_text(law_help(id))
                        .clicked();
                }
            });
        if let (true, Some(id)) = (switch, simpler) {
            self.set_law(&id);
        }
    }

    /// The data line: the store's slice and family choosers, or what the points are.
    fn selection_ui(&mut self, ui: &mut Ui) {
        if self.store.is_empty() {
            ui.label(format!("data: {}", self.data_note));
        } else {
            let label = |s: &StoreSlice| selection_label(s, None);
            let current = self.st.store_slice.clone();
            let mut chosen = None;
            egui::ComboBox::from_label(format!("({} configurations)", self.data.len()))
                .selected_text(current.as_ref().map_or(String::new(), label))
                .show_ui(ui, |ui| {
                    for s in store_slices(&self.store) {
                        if ui
                            .selectable_label(current.as_ref() == Some(&s), label(&s))
                            .clicked()
                        {
                            chosen = Some(s);
                        }
                    }
                })
                .response
                .on_hover_text(
                    "granularity · low format · high format of the configurations fitted",
                );
            if let Some(s) = chosen.filter(|s| Some(s) != current.as_ref()) {
                self.set_slice(s);
            }
            let families = store_families(&self.store);
            if families.len() > 1 {
                let current = self.st.store_family.clone();
                let name = |c: &FamilyChoice| c.only().unwrap_or("all families").to_string();
                let mut chosen = None;
                egui::ComboBox::from_id_salt("laws_family")
                    .selected_text(name(&current))
                    .show_ui(ui, |ui| {
                        let all = std::iter::once(FamilyChoice::All)
                            .chain(families.into_iter().map(FamilyChoice::Only));
                        for c in all {
                            if ui.selectable_label(c == current, name(&c)).clicked() {
                                chosen = Some(c);
                            }
                        }
                    })
                    .response
                    .on_hover_text(
                        "model family (architecture) fitted: the unified law has no family \
                         term, so families with different ΔL at equal N fit badly together",
                    );
                if let Some(c) = chosen.filter(|c| *c != current) {
                    self.set_family(c);
                }
            }
            let current = self.measure();
            let mut chosen = None;
            egui::ComboBox::from_id_salt("laws_measure")
                .selected_text(super::laws_data::measure_label(current))
                .show_ui(ui, |ui| {
                    for metric in crate::search::Metric::ALL {
                        for stat in crate::search::Statistic::ALL {
                            let m = (metric, stat);
                            let text = super::laws_data::measure_label(m);
                            if ui.selectable_label(m == current, text).clicked() {
                                chosen = Some(m);
                            }
                        }
                    }
                })
                .response
                .on_hover_text(
                    "what each point is: ΔL or KL(base, quantized), and the mean of the random \
                     assignments, their median, or the best of T (what a random search finds); \
                     points are weighted by their standard errors",
                );
            if let Some(m) = chosen.filter(|m| *m != current) {
                self.set_measure(m);
            }
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
            let typed = ui
                .add(
                    egui::TextEdit::singleline(&mut self.formula_edit)
                        .desired_width(220.0)
                        .hint_text(EXAMPLE_FORMULA),
                )
                .on_hover_text(law_help("formula"));
            let enter = typed.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let label = if self.st.law_id == "formula" {
                RichText::new("typed law").strong()
            } else {
                RichText::new("typed law")
            };
            if enter
                || ui
                    .button(label)
                    .on_hover_text(law_help("formula"))
                    .clicked()
            {
                let text = self.formula_edit.clone();
                self.set_formula(&text);
            }
            ui.separator();
            self.selection_ui(ui);
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
        self.flags_ui(ui);
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
}
