//! The explorer (feature `gui`): the only module that imports egui. `App` holds the runtime
//! (jobs, panels' caches); the Laws view is the first panel (DESIGN §7); the other views join as
//! their engines land (Models, Quantize, Evaluate, Sweep, Landscape, Hardware).
//!
//! The UI thread never blocks: fits run as [`crate::jobs::Job`]s whose waker requests a repaint.

pub mod laws;

use std::sync::Arc;

use laws::{synthetic_data, LawsPanel, Source};

/// Views of the explorer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Scaling-law contours.
    Laws,
}

/// The running explorer.
pub struct App {
    view: View,
    laws: LawsPanel,
}

impl App {
    /// An app on the bundled data (synthetic until the demo sweep is bundled).
    pub fn new(ctx: &egui::Context) -> Self {
        let c = ctx.clone();
        let waker: crate::jobs::Waker = Arc::new(move || c.request_repaint());
        Self {
            view: View::Laws,
            laws: LawsPanel::new(Source::Synthetic, synthetic_data(), waker),
        }
    }

    /// The Laws panel (tests).
    pub fn laws(&mut self) -> &mut LawsPanel {
        &mut self.laws
    }

    /// Draws one frame into `ui`.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("top").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("quantscape");
                ui.separator();
                ui.selectable_value(&mut self.view, View::Laws, "Laws");
                for (name, issue) in [
                    ("Models", "the explorer issue"),
                    ("Quantize", "the GPU / explorer issues"),
                    ("Sweep", "the demo sweep"),
                    ("Landscape", "the landscape issue"),
                    ("Hardware", "the explorer issue"),
                ] {
                    ui.add_enabled(false, egui::Button::new(name))
                        .on_disabled_hover_text(format!("arrives with {issue}"));
                }
            });
        });
        egui::CentralPanel::default().show(ui, |ui| match self.view {
            View::Laws => self.laws.ui(ui),
        });
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// Opens the explorer window (blocks until it is closed).
pub fn run() -> crate::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_title("quantscape"),
        ..Default::default()
    };
    eframe::run_native(
        "quantscape",
        options,
        Box::new(|cc| Ok(Box::new(App::new(&cc.egui_ctx)))),
    )
    .map_err(|e| {
        crate::Error::Input(format!(
            "cannot open the explorer window: {e} (no display? run it under a desktop session \
             or `xvfb-run`, or use a subcommand: `quantscape --help`)"
        ))
    })
}
