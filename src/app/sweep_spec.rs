//! The Sweep view's spec editor: the spec as RON text, checked on every edit (what it would run,
//! or why it cannot), revert, save as (only a valid spec, written atomically); a run uses the
//! editor's text once the editor has been opened.

use std::path::PathBuf;

use egui::Ui;

use super::sweep::SweepPanel;
use crate::search::spec::SweepSpec;

/// Checks a spec's text: what it would run, or why it is invalid.
pub fn check_spec(text: &str) -> Result<String, String> {
    let spec = SweepSpec::from_ron(text, "the edited spec").map_err(|e| e.to_string())?;
    let per_model = spec
        .configurations(&["model".to_string()])
        .map_err(|e| e.to_string())?;
    let trials: usize = per_model.iter().map(|c| c.trials).sum();
    Ok(format!(
        "valid: {} model entr{} × {} configurations ({} trials per model)",
        spec.models.len(),
        if spec.models.len() == 1 { "y" } else { "ies" },
        per_model.len(),
        trials
    ))
}

impl SweepPanel {
    /// Runs from another spec file (the editor rereads it when next shown).
    pub fn set_spec_path(&mut self, path: PathBuf) {
        self.spec_path = path;
        self.spec_read_from = None;
    }

    /// Reads `spec_path` into the editor unless it holds that file already.
    pub fn read_spec(&mut self) {
        if self.spec_read_from.as_ref() == Some(&self.spec_path) {
            return;
        }
        match std::fs::read_to_string(&self.spec_path) {
            Ok(t) => {
                self.spec_check = check_spec(&t);
                self.spec_saved = t.clone();
                self.spec_text = t;
            }
            Err(e) => {
                self.spec_text.clear();
                self.spec_saved.clear();
                self.spec_check = Err(format!("{}: {e}", self.spec_path.display()));
            }
        }
        self.spec_read_from = Some(self.spec_path.clone());
    }

    /// Whether the editor holds changes not in `spec_path`.
    pub fn spec_edited(&self) -> bool {
        self.spec_read_from.is_some() && self.spec_text != self.spec_saved
    }

    /// Writes the edited spec to `path` (atomically; refused when invalid) and runs from it.
    pub fn save_spec(&mut self, path: &std::path::Path) -> crate::Result<()> {
        self.spec_check = check_spec(&self.spec_text);
        if let Err(e) = &self.spec_check {
            return Err(crate::Error::Input(e.clone()));
        }
        crate::io::write_atomic(path, self.spec_text.as_bytes())?;
        self.spec_path = path.to_path_buf();
        self.spec_read_from = Some(path.to_path_buf());
        self.spec_saved = self.spec_text.clone();
        Ok(())
    }

    /// The spec editor: RON text checked on every edit, revert, save as.
    pub(super) fn spec_editor(&mut self, ui: &mut Ui, commands: &mut Vec<super::Command>) {
        self.read_spec();
        let edit = ui.add(
            egui::TextEdit::multiline(&mut self.spec_text)
                .code_editor()
                .desired_rows(12)
                .desired_width(f32::INFINITY),
        );
        if edit.changed() {
            self.spec_check = check_spec(&self.spec_text);
        }
        ui.horizontal(|ui| {
            match &self.spec_check {
                Ok(note) => ui.label(note.as_str()),
                Err(e) => ui.colored_label(ui.visuals().error_fg_color, e.as_str()),
            };
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(self.spec_edited(), egui::Button::new("Revert"))
                .clicked()
            {
                self.spec_read_from = None;
                self.read_spec();
            }
            if ui
                .add_enabled(self.spec_check.is_ok(), egui::Button::new("Save spec as…"))
                .on_hover_text("write the edited spec to a .ron file and run from it")
                .clicked()
            {
                commands.push(super::Command::Pick(super::Purpose::SaveSpec));
            }
            ui.label("Run / resume uses the text above; a changed spec needs a new results file.");
        });
    }
}
