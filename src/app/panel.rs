//! The contract between [`super::App`] and its seven views. `App` talks to a panel only through
//! [`Panel`] and through [`super::Command`]s: each frame it collects what the panels offer one
//! another into a [`Shared`] (the chosen checkpoint, the fitted law, the sweep's summary), polls
//! every panel's jobs, and draws the open one; exports ask the open panel for its figure and
//! table; a session is what every panel saves.

use std::path::PathBuf;
use std::sync::Arc;

use egui::Ui;

use super::plots::Figure;
use super::session::Session;
use super::{Command, View};
use crate::laws::Law;
use crate::search::export::StoreContents;

/// The Laws view's law as the other views use it.
#[derive(Clone, Debug)]
pub struct FittedLaw {
    /// The law.
    pub law: Law,
    /// Its current parameters (fitted, or what-if).
    pub params: Vec<f64>,
    /// What it was fitted on.
    pub note: String,
    /// Model sizes of the points (ascending).
    pub sizes: Vec<f64>,
    /// The map's Qr and Qb (the presenter's defaults).
    pub qr: f64,
    /// Qb.
    pub qb: f64,
    /// Bootstrap parameter vectors of the fit (empty for what-if parameters): the band.
    pub bootstrap: Vec<Vec<f64>>,
    /// The slice fitted: granularity · format · high (· family), or the source.
    pub slice: String,
}

/// What the panels offer one another, rebuilt every frame.
#[derive(Clone, Debug, Default)]
pub struct Shared {
    /// The checkpoint chosen in Models, else the largest bundled run.
    pub model_dir: Option<PathBuf>,
    /// The Laws view's law.
    pub law: Option<FittedLaw>,
    /// The Sweep view's results store as last read.
    pub store: Arc<StoreContents>,
}

/// A table as (header, rows).
pub type Table = (Vec<String>, Vec<Vec<String>>);

/// Owned header cells.
pub fn owned((h, r): (Vec<&str>, Vec<Vec<String>>)) -> Table {
    (h.into_iter().map(String::from).collect(), r)
}

/// One view of the explorer.
pub trait Panel {
    /// Which view this is.
    fn view(&self) -> View;
    /// Adds what this panel offers the others (default: nothing).
    fn publish(&self, _shared: &mut Shared) {}
    /// Collects finished jobs; called every frame for every panel, open or not.
    fn poll(&mut self, ctx: &egui::Context);
    /// Whether a job of this panel runs (the spinner in the top bar).
    fn busy(&self) -> bool;
    /// Draws the view; actions that reach beyond it (file dialogs) go to `commands`.
    fn ui(&mut self, ui: &mut Ui, shared: &Shared, commands: &mut Vec<Command>);
    /// The figure on screen (exports).
    fn figure(&mut self, shared: &Shared) -> Option<Figure>;
    /// The table on screen (exports).
    fn table(&self, shared: &Shared) -> Table;
    /// Writes this panel's choices into `session`.
    fn save(&self, session: &mut Session);
    /// Takes the part of a [`Command`] meant for this view (open a file it shows, save what it
    /// edits): None when the command is not its business, else a notice (empty: none) or the
    /// error to show. `App` then switches to the first view that took an `Open…` command.
    fn handle(&mut self, _command: &Command) -> Option<crate::Result<String>> {
        None
    }
}

/// Whether `path` names a results store (`.sqlite`, `.db`, `.sqlite3`).
fn is_store(path: &std::path::Path) -> bool {
    crate::laws::data::is_results_store(path)
}

/// Whether `path` names a landscape slice written by `quantscape landscape` (`.json`).
fn is_slice(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

impl Panel for super::laws::LawsPanel {
    fn view(&self) -> View {
        View::Laws
    }
    fn publish(&self, shared: &mut Shared) {
        shared.law = Some(FittedLaw {
            law: self.law().clone(),
            params: self.st.params.clone(),
            note: self.source_note(),
            sizes: self.sizes(),
            qr: self.st.qr,
            qb: self.st.qb,
            bootstrap: if self.st.what_if {
                Vec::new()
            } else {
                self.st
                    .report
                    .as_ref()
                    .map(|r| r.bootstrap_params.clone())
                    .unwrap_or_default()
            },
            slice: self.slice_label(),
        });
    }
    fn poll(&mut self, _: &egui::Context) {
        Self::poll(self);
    }
    fn busy(&self) -> bool {
        self.fitting()
    }
    fn ui(&mut self, ui: &mut Ui, _: &Shared, _: &mut Vec<Command>) {
        Self::ui(self, ui);
    }
    fn figure(&mut self, _: &Shared) -> Option<Figure> {
        self.current_figure()
    }
    fn table(&self, _: &Shared) -> Table {
        owned(Self::table(self))
    }
    fn save(&self, session: &mut Session) {
        session.laws = self.st.clone();
    }
    fn handle(&mut self, c: &Command) -> Option<crate::Result<String>> {
        match c {
            Command::OpenData(path) if !is_slice(path) => {
                self.open(super::session::Source::Csv(path.display().to_string()));
                Some(Ok(String::new()))
            }
            _ => None,
        }
    }
}

impl Panel for super::models::ModelsPanel {
    fn view(&self) -> View {
        View::Models
    }
    fn publish(&self, shared: &mut Shared) {
        shared.model_dir = self.chosen();
    }
    fn poll(&mut self, _: &egui::Context) {
        Self::poll(self);
    }
    fn busy(&self) -> bool {
        self.loading() || self.scanning()
    }
    fn ui(&mut self, ui: &mut Ui, _: &Shared, _: &mut Vec<Command>) {
        Self::ui(self, ui);
    }
    fn figure(&mut self, _: &Shared) -> Option<Figure> {
        Some(self.current_figure())
    }
    fn table(&self, _: &Shared) -> Table {
        if self.tensors.is_empty() {
            owned(self.family_table())
        } else {
            owned(self.tensor_table())
        }
    }
    fn save(&self, session: &mut Session) {
        session.models = self.st.clone();
    }
    fn handle(&mut self, c: &Command) -> Option<crate::Result<String>> {
        match c {
            Command::OpenModel(dir) => {
                self.open(dir.clone());
                Some(Ok(String::new()))
            }
            _ => None,
        }
    }
}

impl Panel for super::hardware::HardwarePanel {
    fn view(&self) -> View {
        View::Hardware
    }
    fn poll(&mut self, _: &egui::Context) {
        Self::poll(self);
    }
    fn busy(&self) -> bool {
        self.preparing().is_some()
    }
    fn ui(&mut self, ui: &mut Ui, shared: &Shared, _: &mut Vec<Command>) {
        let models: Vec<String> = shared
            .store
            .models
            .iter()
            .map(|m| m.model.clone())
            .collect();
        Self::ui(self, ui, &shared.store.summary, &models);
    }
    fn figure(&mut self, shared: &Shared) -> Option<Figure> {
        self.current_figure(&shared.store.summary)
    }
    fn table(&self, _: &Shared) -> Table {
        self.report().map_or((Vec::new(), Vec::new()), |r| {
            super::hardware::pareto_table(&r)
        })
    }
    fn save(&self, session: &mut Session) {
        session.hardware = self.st.clone();
    }
    fn handle(&mut self, c: &Command) -> Option<crate::Result<String>> {
        match c {
            Command::OpenData(path) if is_store(path) => {
                self.st.results = Some(path.clone());
                Some(Ok(String::new()))
            }
            _ => None,
        }
    }
}

impl Panel for super::sweep::SweepPanel {
    fn view(&self) -> View {
        View::Sweep
    }
    fn publish(&self, shared: &mut Shared) {
        shared.store = self.loaded.clone();
    }
    fn poll(&mut self, ctx: &egui::Context) {
        Self::poll(self, ctx);
    }
    fn busy(&self) -> bool {
        self.running()
    }
    fn ui(&mut self, ui: &mut Ui, _: &Shared, commands: &mut Vec<Command>) {
        Self::ui(self, ui, commands);
    }
    fn figure(&mut self, _: &Shared) -> Option<Figure> {
        Some(self.current_figure())
    }
    fn table(&self, _: &Shared) -> Table {
        owned(Self::table(self))
    }
    fn save(&self, session: &mut Session) {
        session.sweep = self.state();
    }
    fn handle(&mut self, c: &Command) -> Option<crate::Result<String>> {
        match c {
            // The Laws view takes the same store and, first in View::ALL, is the one shown.
            Command::OpenData(path) if is_store(path) => {
                self.open_results(path.clone());
                Some(Ok(String::new()))
            }
            Command::OpenSpec(path) => {
                self.set_spec_path(path.clone());
                Some(Ok(String::new()))
            }
            Command::SaveSpec(path) => Some(
                self.save_spec(path)
                    .map(|()| format!("saved the spec to {}", path.display())),
            ),
            _ => None,
        }
    }
}

/// The Panel of a view that works on the checkpoint chosen in Models (it takes it from
/// [`Shared`] before drawing) and saves its choices as `session.$field`.
macro_rules! checkpoint_view {
    ($ty:ty, $view:expr, $field:ident, |$p:ident| $figure:expr $(, $extra:item)*) => {
        impl Panel for $ty {
            fn view(&self) -> View {
                $view
            }
            fn poll(&mut self, _: &egui::Context) {
                Self::poll(self);
            }
            fn busy(&self) -> bool {
                self.running().is_some()
            }
            fn ui(&mut self, ui: &mut Ui, shared: &Shared, _: &mut Vec<Command>) {
                self.model_dir.clone_from(&shared.model_dir);
                Self::ui(self, ui);
            }
            fn figure(&mut self, _: &Shared) -> Option<Figure> {
                let $p = self;
                $figure
            }
            fn table(&self, _: &Shared) -> Table {
                owned(Self::table(self))
            }
            fn save(&self, session: &mut Session) {
                session.$field = self.state();
            }
            $($extra)*
        }
    };
}

checkpoint_view!(
    super::quantize::QuantizePanel,
    View::Quantize,
    quantize,
    |p| p.current_figure()
);
checkpoint_view!(
    super::evaluate::EvaluatePanel,
    View::Evaluate,
    evaluate,
    |p| Some(p.current_figure())
);
checkpoint_view!(
    super::landscape::LandscapePanel,
    View::Landscape,
    landscape,
    |p| p.current_figure(),
    fn handle(&mut self, c: &Command) -> Option<crate::Result<String>> {
        match c {
            Command::OpenData(path) if is_slice(path) => {
                self.open(path);
                Some(Ok(String::new()))
            }
            _ => None,
        }
    }
);
