//! Presenter mode (F5, Escape to leave): large type, one "predicted degradation" slider over
//! model size with the frozen fit, the map with no editing chrome. Nothing here refits. It reads
//! the Laws view's law through [`Shared`] and keeps its own model size ([`App::presenter_n`]).

use egui::{RichText, Ui};

use super::panel::{FittedLaw, Shared};
use super::plots::{human, Figure, Mark};
use super::App;
use crate::laws::{Var, EMPTY_ROW};

/// Predicted ΔL (nats/token) of the Laws view's law at (n, qr, qb).
pub fn predicted(l: &FittedLaw, n: f64, qr: f64, qb: f64) -> f64 {
    let mut r = EMPTY_ROW;
    r[Var::N.index()] = n;
    r[Var::Qr.index()] = qr;
    r[Var::Qb.index()] = qb;
    l.law.eval(&l.params, &r)
}

/// Predicted ΔL against N (log–log) from the smallest measured size to 10^12 at (qr, qb), with
/// the slider's model marked.
pub fn curve(l: &FittedLaw, n: f64, qr: f64, qb: f64) -> Figure {
    let lo = l.sizes.first().copied().unwrap_or(1e4).max(1.0);
    let mut f = Figure::new(
        "presenter_curve",
        "Predicted ΔL against model size",
        "N (parameters)",
        "predicted ΔL (nats/token)",
    );
    f.x_log = true;
    f.y_log = true;
    let (a, b) = (lo.log10(), 12f64);
    let pts: Vec<[f64; 2]> = (0..=200)
        .map(|i| a + (b - a) * f64::from(i) / 200.0)
        .map(|t| [t, predicted(l, 10f64.powf(t), qr, qb).log10()])
        .collect();
    f.push("law", Mark::Line(3.0), [240, 170, 60], pts);
    f.push(
        &format!("N = {}", human(n)),
        Mark::Dots(8.0),
        [90, 200, 240],
        vec![[n.log10(), predicted(l, n, qr, qb).log10()]],
    );
    f
}

/// Draws presenter mode.
pub fn show(app: &mut App, ui: &mut Ui) {
    let shared: Shared = app.shared();
    egui::CentralPanel::default().show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.heading(RichText::new("Predicted degradation after quantization").strong());
            if ui.button("Leave presenter mode (Esc)").clicked() {
                app.push(super::Command::TogglePresenter);
            }
        });
        let Some(l) = &shared.law else {
            ui.label("no law fitted yet");
            return;
        };
        ui.add(
            egui::Slider::new(&mut app.presenter_n, 1e5..=1e12)
                .logarithmic(true)
                .text("model size N")
                .custom_formatter(|v, _| human(v)),
        );
        let (n, qr, qb) = (app.presenter_n, l.qr.max(0.0), l.qb);
        let qr = if qr > 0.0 { qr } else { 1.0 };
        let dl = predicted(l, n, qr, qb);
        ui.label(
            RichText::new(format!(
                "ΔL = {dl:.4} nats/token  (perplexity ×{:.3})",
                dl.exp()
            ))
            .size(40.0)
            .strong(),
        );
        ui.label(format!(
            "{} of the weights in the low format, blocks of {qb:.0}; law {} as fitted on the loaded data.",
            if qr >= 1.0 { "All".to_string() } else { format!("{:.0}%", 100.0 * qr) },
            l.law.id,
        ));
        curve(l, n, qr, qb).show(ui, None);
    });
}
