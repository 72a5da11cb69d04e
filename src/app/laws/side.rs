//! The Laws view's side panel: map variables and sliders, the parameter table (what-if
//! editing), model sizes in the fit and bootstrap resamples.

use egui::Ui;

use super::*;

impl LawsPanel {
    pub(super) fn side_ui(&mut self, ui: &mut Ui) {
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
        if ui.add(slider.text(label)).on_hover_text(help).changed() {
            // Block sizes snap to powers of two; N to two significant digits.
            self.st.qb = snap_pow2(self.st.qb);
            self.st.n = snap_2sig(self.st.n);
        }
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
                        // A drag value, 0.5 % of the value per point: a 30-point drag moves a
                        // parameter by ~15 %, not by 20× as a ±3×|v| slider did.
                        let (lo, hi) = slider_range(*v, spec.lower, spec.upper);
                        let speed = (v.abs() * 0.005).max(1e-4);
                        ui.add(
                            egui::DragValue::new(v)
                                .range(lo..=hi)
                                .speed(speed)
                                .max_decimals(4),
                        );
                    } else {
                        ui.label(num(*v));
                    }
                }
                let ci = self
                    .st
                    .report
                    .as_ref()
                    .and_then(|r| r.params.get(i))
                    .and_then(|p| Some((p.ci_low?, p.ci_high?)));
                ui.label(ci.map_or("–".into(), |(a, b)| format!("[{}, {}]", num(a), num(b))));
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
            ui.label(
                RichText::new(format!(
                    "target `{}` ({}); weights: {}",
                    r.target, r.statistic, r.weighting
                ))
                .small(),
            );
            for h in &r.held_out {
                ui.label(format!(
                    "leave one {} out: median |rel. error| {:.1}%, p90 {:.1}%",
                    h.by,
                    100.0 * h.median_abs_rel,
                    100.0 * h.p90_abs_rel
                ));
            }
        }
    }
}

/// A parameter value: 4 significant digits, scientific when very small or large.
fn num(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e4) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// The nearest power of two (in log space) of a block size.
pub fn snap_pow2(qb: f64) -> f64 {
    if qb.is_finite() && qb > 0.0 {
        2f64.powf(qb.log2().round())
    } else {
        qb
    }
}

/// `n` rounded to two significant digits (1.2M, 35K).
pub fn snap_2sig(n: f64) -> f64 {
    if n.is_finite() && n > 0.0 {
        let mag = 10f64.powf(n.log10().floor() - 1.0);
        (n / mag).round() * mag
    } else {
        n
    }
}

fn slider_range(v: f64, lo: f64, hi: f64) -> (f64, f64) {
    let span = if v.abs() > 1e-9 { v.abs() * 3.0 } else { 1.0 };
    ((v - span).max(lo), (v + span).min(hi))
}
