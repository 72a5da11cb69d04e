//! Presenter mode (F5, Escape to leave; a light theme for projectors): large type, one
//! "predicted degradation" slider over model size with the frozen fit and its 95 % bootstrap
//! band, the Laws map (heatmap, isolines, measured points, colour bar) beside the ΔL-against-N
//! curve, the slice, format and Qb named. Nothing here refits. It reads the Laws view's law
//! through [`Shared`] and keeps its own model size ([`App::presenter_n`]).

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

/// The 95 % band of the prediction at (n, qr, qb) over the fit's bootstrap parameter vectors
/// (None with fewer than 20 of them).
pub fn band(l: &FittedLaw, n: f64, qr: f64, qb: f64) -> Option<[f64; 2]> {
    if l.bootstrap.len() < 20 {
        return None;
    }
    let mut r = EMPTY_ROW;
    r[Var::N.index()] = n;
    r[Var::Qr.index()] = qr;
    r[Var::Qb.index()] = qb;
    let mut v: Vec<f64> = l
        .bootstrap
        .iter()
        .map(|p| l.law.eval(p, &r))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if v.len() < 20 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| crate::search::export::quantile(&v, p);
    Some([q(0.025), q(0.975)])
}

/// Predicted ΔL against N (log–log) from the smallest measured size to 10^12 at (qr, qb), with
/// its 95 % bootstrap band, the slider's model marked, the format and Qb in the title.
pub fn curve(l: &FittedLaw, n: f64, qr: f64, qb: f64) -> Figure {
    let lo = l.sizes.first().copied().unwrap_or(1e4).max(1.0);
    let mut f = Figure::new(
        "presenter_curve",
        &format!("Predicted ΔL vs N · {} · Qb {qb:.0} · Qr {qr:.2}", l.slice),
        "N (parameters)",
        "predicted ΔL (nats/token)",
    );
    f.x_log = true;
    f.y_log = true;
    let (a, b) = (lo.log10(), 12f64);
    let ts: Vec<f64> = (0..=200)
        .map(|i| a + (b - a) * f64::from(i) / 200.0)
        .collect();
    let bands: Vec<Option<[f64; 2]>> = ts.iter().map(|t| band(l, 10f64.powf(*t), qr, qb)).collect();
    if bands.iter().all(Option::is_some) {
        // The band as its two edges (drawn first, under the law).
        for k in 0..2 {
            let edge: Vec<[f64; 2]> = ts
                .iter()
                .zip(&bands)
                .filter_map(|(t, b)| b.map(|b| [*t, b[k].log10()]))
                .collect();
            f.push(
                "95 % band (bootstrap)",
                Mark::Line(1.5),
                [150, 150, 150],
                edge,
            );
        }
    }
    let pts: Vec<[f64; 2]> = ts
        .iter()
        .map(|t| [*t, predicted(l, 10f64.powf(*t), qr, qb).log10()])
        .collect();
    f.push("law (frozen fit)", Mark::Line(3.0), [240, 170, 60], pts);
    f.push(
        &format!("N = {}", human(n)),
        Mark::Dots(8.0),
        [90, 200, 240],
        vec![[n.log10(), predicted(l, n, qr, qb).log10()]],
    );
    // The curve falls from the top left: the top right is empty.
    f.legend_top = true;
    f
}

/// Draws presenter mode: the prediction in big type with its band, the Laws map (frozen fit,
/// measured points) beside the ΔL-against-N curve.
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
        let ci =
            band(l, n, qr, qb).map_or(String::new(), |[a, b]| format!("  95 % [{a:.4}, {b:.4}]"));
        ui.label(
            RichText::new(format!("ΔL = {dl:.4} nats/token{ci}"))
                .size(34.0)
                .strong(),
        );
        ui.label(format!(
            "{} of the weights in {}, blocks of {qb:.0} (perplexity ×{:.3}); law {} as fitted.",
            if qr >= 1.0 {
                "All".to_string()
            } else {
                format!("{:.0}%", 100.0 * qr)
            },
            l.slice,
            dl.exp(),
            l.law.id,
        ));
        let map = app.laws.map_figure().cloned();
        let h = ui.available_height();
        ui.columns(2, |cols| {
            if let Some(m) = &map {
                m.show(&mut cols[0], Some(h));
            }
            curve(l, n, qr, qb).show(&mut cols[1], Some(h));
        });
    });
}
