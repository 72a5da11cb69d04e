//! The explorer's chrome: the menu bar with the view tabs, the notices in the top-right corner
//! (with the overwrite confirmation of exports), and the dismissible message rows the panels use.

use egui::{Color32, RichText, Ui};

use super::{App, Command, ExportKind, Purpose, View};

impl App {
    pub(super) fn top_bar(&mut self, ui: &mut Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                for (label, p) in [
                    (
                        "Open points (CSV, sweep results, landscape JSON)…",
                        Purpose::OpenData,
                    ),
                    ("Open checkpoint folder…", Purpose::OpenModel),
                    ("Open sweep spec…", Purpose::OpenSpec),
                    ("Load session…", Purpose::LoadSession),
                    ("Save session…", Purpose::SaveSession),
                ] {
                    if ui.button(label).clicked() {
                        self.commands.push(Command::Pick(p));
                    }
                }
            });
            ui.menu_button("Export", |ui| {
                for (label, k) in [
                    ("Figure as PNG…", ExportKind::FigurePng),
                    ("Figure as SVG…", ExportKind::FigureSvg),
                    ("Figure data as CSV…", ExportKind::FigureCsv),
                    ("Table as CSV…", ExportKind::TableCsv),
                ] {
                    if ui.button(label).clicked() {
                        self.commands.push(Command::Pick(Purpose::Export(k)));
                    }
                }
                // Without a desktop portal or zenity the dialogs above cannot open: a visible
                // path and one button per kind always work.
                ui.separator();
                ui.label("Save to (no dialog needed):");
                ui.add(
                    egui::TextEdit::singleline(&mut self.export_path)
                        .desired_width(320.0)
                        .hint_text("path/to/figure"),
                )
                .labelled_by(ui.label("save path").id);
                ui.horizontal(|ui| {
                    for (label, k) in [
                        ("Save PNG", ExportKind::FigurePng),
                        ("Save SVG", ExportKind::FigureSvg),
                        ("Save CSV", ExportKind::FigureCsv),
                        ("Save table", ExportKind::TableCsv),
                    ] {
                        if ui.button(label).clicked() {
                            let path = std::path::PathBuf::from(self.export_path.trim())
                                .with_extension(k.extension());
                            self.commands.push(Command::Export {
                                kind: k,
                                path,
                                overwrite: false,
                            });
                            ui.close();
                        }
                    }
                });
            });
            ui.menu_button("View", |ui| {
                if ui.button("Presenter mode (F5)").clicked() {
                    self.commands.push(Command::TogglePresenter);
                }
                let theme = if self.dark {
                    "Light theme"
                } else {
                    "Dark theme"
                };
                if ui.button(theme).clicked() {
                    self.commands.push(Command::ToggleTheme);
                }
            });
            ui.separator();
            ui.label(RichText::new("quantscape").strong());
            ui.separator();
            for v in View::ALL {
                if ui.selectable_label(self.view == v, v.label()).clicked() {
                    self.commands.push(Command::ShowView(v));
                }
            }
            if self.busy() {
                ui.separator();
                ui.spinner();
            }
        });
    }

    /// Drops information notices shown for `NOTICE_SECS` (errors wait for the user) and asks
    /// for a repaint while some remain. Runs before the band is laid out, so the frame in which
    /// the last notice expires draws no empty band.
    pub(super) fn expire_notices(&mut self, ctx: &egui::Context) {
        let now = ctx.input(|i| i.time);
        for n in &mut self.notices {
            n.shown_at.get_or_insert(now);
        }
        self.notices
            .retain(|n| n.error || n.shown_at.is_none_or(|t| now - t < super::NOTICE_SECS));
        if self.notices.iter().any(|n| !n.error) {
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(0.5));
        }
    }

    pub(super) fn notices_ui(&mut self, ui: &mut Ui) {
        if let Some((kind, path)) = self.confirm.clone() {
            ui.horizontal(|ui| {
                ui.label(format!("{} exists. Replace it?", path.display()));
                if ui.button("Replace").clicked() {
                    self.confirm = None;
                    self.commands.push(Command::Export {
                        kind,
                        path,
                        overwrite: true,
                    });
                }
                if ui.button("Keep it").clicked() {
                    self.confirm = None;
                }
            });
        }
        let mut dismiss = None;
        for (i, n) in self.notices.iter().enumerate() {
            let c = if n.error {
                Color32::LIGHT_RED
            } else {
                Color32::LIGHT_GREEN
            };
            if dismissible(ui, &n.text, c) {
                dismiss = Some(i);
            }
        }
        if let Some(i) = dismiss {
            self.notices.remove(i);
        }
    }
}

/// A message with a Dismiss button before it (a long message wraps instead of pushing the button
/// off screen); true when dismissed.
pub(crate) fn dismissible(ui: &mut Ui, text: &str, colour: Color32) -> bool {
    ui.horizontal(|ui| {
        let clicked = ui.small_button("Dismiss").clicked();
        ui.add(egui::Label::new(RichText::new(text).color(colour)).wrap());
        clicked
    })
    .inner
}

/// An optional error line, cleared when dismissed.
pub(crate) fn error_row(ui: &mut Ui, error: &mut Option<String>) {
    if let Some(e) = error.as_deref() {
        if dismissible(ui, e, Color32::LIGHT_RED) {
            *error = None;
        }
    }
}

/// The "checkpoint: PATH" line of the views that work on one model.
pub(crate) fn checkpoint_row(ui: &mut Ui, dir: Option<&std::path::Path>) {
    ui.horizontal(|ui| {
        ui.label(RichText::new("checkpoint").strong());
        ui.label(dir.map_or("none: pick a run in Models".into(), |d| {
            d.display().to_string()
        }));
    });
}

/// What the user asked of a job's controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobAction {
    /// Nothing.
    None,
    /// Start it.
    Start,
    /// Cancel it.
    Cancel,
}

/// A start button, or a progress bar with a cancel button while the job runs.
pub(crate) fn job_controls(
    ui: &mut Ui,
    running: Option<f32>,
    start: &str,
    cancel: &str,
) -> JobAction {
    match running {
        Some(p) => {
            ui.add(
                egui::ProgressBar::new(p)
                    .desired_width(220.0)
                    .show_percentage(),
            );
            if ui.button(cancel).clicked() {
                return JobAction::Cancel;
            }
        }
        None => {
            if ui.button(start).clicked() {
                return JobAction::Start;
            }
        }
    }
    JobAction::None
}
