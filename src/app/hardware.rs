//! The Hardware view, for architects choosing a block format and block size: the format-aware
//! law's table ([`crate::tasks::pareto`]) at a target N and Qr — bits per weight against predicted
//! ΔL for every format × Qb, with 95 % bootstrap bands and the Pareto front, ε measured on a
//! reference checkpoint's weights (so formats and block sizes differ for a measured reason) — the
//! law's fit and held-out errors, an extrapolation notice when the target lies outside the fitted
//! N range, scale overhead against block size, and the memory footprint of 7B/70B/405B models.
//!
//! Bits per weight = Qr·bpw_low(Qb) + (1 − Qr)·16 (the rest kept in bf16), where bpw_low(Qb) =
//! element bits + (scale bits + zero bits)/Qb ([`crate::codecs::Format::bits_per_weight_at`]).
//! The fit and the ε measurement run as a job when the store or the reference changes; moving N
//! or Qr only re-evaluates the fitted law.

use std::path::PathBuf;

use egui::{RichText, Ui};

use super::plots::{human, Figure};
use super::session::HardwareState;
use crate::jobs::{JobSlot, Waker};
use crate::search::export::ConfigSummary;
use crate::tasks::pareto::{self, ParetoReport, ParetoRequest, Prepared};

pub use crate::figures::hardware::*;

/// The view's state.
pub struct HardwarePanel {
    /// Saved choices.
    pub st: HardwareState,
    /// Block size of the footprint table.
    pub qb: usize,
    /// The fitted law and the reference's ε, once ready.
    pub prepared: Option<Prepared>,
    /// Why the last preparation failed.
    pub error: Option<String>,
    job: JobSlot<Prepared>,
    /// What `prepared` (or the running job) was built for: store and reference.
    key: Option<(PathBuf, Option<String>)>,
    waker: Waker,
}

impl HardwarePanel {
    /// A panel restoring `st`; the table is prepared when the view is first drawn.
    pub fn new(st: HardwareState, waker: Waker) -> Self {
        Self {
            st,
            qb: 32,
            prepared: None,
            error: None,
            job: JobSlot::default(),
            key: None,
            waker,
        }
    }

    /// The store the law is fitted on: the state's, else the bundled demo sweep.
    pub fn results(&self) -> PathBuf {
        self.st
            .results
            .clone()
            .unwrap_or_else(super::laws_data::demo_store)
    }

    /// Starts preparing the table when the store or the reference changed.
    pub fn ensure_prepared(&mut self) {
        let key = (self.results(), self.st.reference.clone());
        if self.key.as_ref() == Some(&key) {
            return;
        }
        let mut req = ParetoRequest::new(key.0.clone());
        req.reference = key.1.clone();
        self.key = Some(key);
        self.prepared = None;
        self.error = None;
        self.job.start("pareto", self.waker.clone(), move |ctx| {
            pareto::prepare(&req, ctx)
        });
    }

    /// Whether the preparation runs, with its progress.
    pub fn preparing(&self) -> Option<f32> {
        self.job.running()
    }

    /// Takes a finished preparation.
    pub fn poll(&mut self) {
        match self.job.finished() {
            Some(Ok(p)) => self.prepared = Some(p),
            Some(Err(e)) => self.error = Some(e.to_string()),
            None => {}
        }
    }

    /// The table at the state's N and Qr, once prepared.
    pub fn report(&self) -> Option<ParetoReport> {
        self.prepared
            .as_ref()
            .and_then(|p| p.report(self.st.target_n, self.st.qr).ok())
    }

    /// The trade-off figure, with measured points when a sweep is loaded.
    pub fn current_figure(&self, summary: &[ConfigSummary]) -> Option<Figure> {
        let r = self.report()?;
        Some(tradeoff_figure(&r, measured_points(summary).as_ref()))
    }

    fn controls(&mut self, ui: &mut Ui, summary_models: &[String]) {
        ui.horizontal(|ui| {
            ui.add(
                egui::Slider::new(&mut self.st.target_n, 1e5..=1e12)
                    .logarithmic(true)
                    .text("target N")
                    .custom_formatter(|v, _| human(v)),
            );
            ui.add(egui::Slider::new(&mut self.st.qr, 0.0..=1.0).text("Qr"));
            egui::ComboBox::from_label("Qb of the footprint table")
                .selected_text(self.qb.to_string())
                .show_ui(ui, |ui| {
                    for b in BLOCKS {
                        ui.selectable_value(&mut self.qb, b, b.to_string());
                    }
                });
            let shown = self
                .st
                .reference
                .clone()
                .unwrap_or_else(|| "default".into());
            egui::ComboBox::from_label("ε measured on")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.st.reference, None, "default")
                        .on_hover_text(
                            "SmolLM2-135M when it is in the Hugging Face cache, else the \
                             store's largest model",
                        );
                    let cached = crate::model::hub::cache_root()
                        .map(|r| crate::model::hub::list_cached(&r))
                        .unwrap_or_default();
                    for m in summary_models
                        .iter()
                        .cloned()
                        .chain(cached.into_iter().map(|(name, _)| name))
                    {
                        ui.selectable_value(&mut self.st.reference, Some(m.clone()), m);
                    }
                });
        });
    }

    fn fit_summary(ui: &mut Ui, r: &ParetoReport, reference: &str) {
        let kappa = r.params.iter().find(|p| p.name == "kappa");
        let kappa = kappa.map_or(String::new(), |k| match (k.ci_low, k.ci_high) {
            (Some(l), Some(h)) => format!(
                "κ = {:.2} (95 % CI {l:.2}–{h:.2}; second order: 1)",
                k.value
            ),
            _ => format!("κ = {:.2}", k.value),
        });
        let held: Vec<String> = r
            .held_out
            .iter()
            .map(|h| {
                format!(
                    "leave-one-{}-out median {:.0} %",
                    h.by,
                    100.0 * h.median_abs_rel
                )
            })
            .collect();
        ui.label(
            RichText::new(format!(
                "{}: {} — fitted on {} points ({}; ΔL {}, weights {}), R² log {:.3}; {kappa}; {}. ε on {reference}.",
                r.law,
                r.formula,
                r.n_points,
                r.fitted_formats.join(", "),
                r.statistic,
                r.weighting,
                r.r2_log,
                held.join(", ")
            ))
            .small(),
        );
        for n in &r.notices {
            ui.label(
                RichText::new(format!("NOTICE: {n}")).color(egui::Color32::from_rgb(230, 160, 40)),
            );
        }
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut Ui, summary: &[ConfigSummary], models: &[String]) {
        self.ensure_prepared();
        self.controls(ui, models);
        if let Some(p) = self.preparing() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!(
                    "fitting {} and measuring ε… {:.0} %",
                    pareto::LAW,
                    100.0 * p
                ));
            });
        }
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::from_rgb(230, 90, 80), e);
        }
        let (Some(prepared), Some(r)) = (self.prepared.as_ref(), self.report()) else {
            return;
        };
        Self::fit_summary(ui, &r, &prepared.reference.0);
        let h = ui.available_height();
        ui.columns(2, |cols| {
            let (header, rows) = pareto_table(&r);
            egui::ScrollArea::vertical()
                .id_salt("pareto_rows")
                .max_height(h * 0.62)
                .show(&mut cols[0], |ui| {
                    super::table::table_ui(ui, "pareto", &header, &rows, &Default::default());
                });
            egui::CollapsingHeader::new("Memory footprint of 7B, 70B, 405B and the target").show(
                &mut cols[0],
                |ui| {
                    if let Ok((header, rows)) =
                        footprint_table(prepared, self.qb, self.st.qr, self.st.target_n)
                    {
                        egui::ScrollArea::both()
                            .id_salt("footprint")
                            .show(ui, |ui| {
                                super::table::table_ui(
                                    ui,
                                    "footprint",
                                    &header,
                                    &rows,
                                    &Default::default(),
                                );
                            });
                    }
                },
            );
            egui::CollapsingHeader::new("Scale overhead against block size")
                .show(&mut cols[0], |ui| {
                    overhead_figure().show(ui, Some(h * 0.35))
                });
            tradeoff_figure(&r, measured_points(summary).as_ref()).show(&mut cols[1], Some(h));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::pareto::ParetoRow;

    #[test]
    fn pareto_table_figure_overheads_and_footprints() {
        let mut req = ParetoRequest::new(super::super::laws_data::demo_store());
        req.reference = Some("bundled:qs-llama-s2-2M".into());
        req.bootstrap = 20;
        let p = pareto::prepare(&req, &crate::jobs::JobCtx::quiet()).unwrap();
        let r = p.report(7e9, 1.0).unwrap();
        assert_eq!(r.rows.len(), FORMATS.len() * BLOCKS.len());
        let front: Vec<&ParetoRow> = r.rows.iter().filter(|c| c.pareto).collect();
        assert!(!front.is_empty());
        // No front point is dominated, and every other point is dominated by a front point.
        for c in &r.rows {
            let dominated = front.iter().any(|f| {
                f.bits_per_weight <= c.bits_per_weight
                    && f.delta_loss <= c.delta_loss
                    && (f.bits_per_weight < c.bits_per_weight || f.delta_loss < c.delta_loss)
            });
            assert_eq!(dominated, !c.pareto, "{c:?}");
        }
        let fig = tradeoff_figure(&r, None);
        // Front points are labelled, except one that would overlap a label already placed.
        assert!(!fig.labels.is_empty() && fig.labels.len() <= front.len());
        let pts: Vec<[f64; 2]> = r
            .rows
            .iter()
            .filter(|c| c.delta_loss > 0.0)
            .map(|c| [c.bits_per_weight, c.delta_loss.log10()])
            .collect();
        let span = |k: usize| {
            pts.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max)
                - pts.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min)
        };
        for (i, a) in fig.labels.iter().enumerate() {
            assert!(front
                .iter()
                .any(|c| a.text == format!("{} {}", c.format, c.qb)));
            for b in &fig.labels[..i] {
                assert!(
                    (a.at[0] - b.at[0]).abs() >= 0.2 * span(0)
                        || (a.at[1] - b.at[1]).abs() >= 0.05 * span(1),
                    "{} overlaps {}",
                    a.text,
                    b.text
                );
            }
        }
        assert!(fig.series.iter().any(|s| s.name == "nvfp4"));
        assert!(r.extrapolation_decades > 3.0 && !r.notices.is_empty());
        // mxfp4: 4 + 8/32 bits.
        assert_eq!(bpw("mxfp4", 32), Some(4.25));
        let o = overhead_figure();
        let mx = o
            .series
            .iter()
            .find(|s| s.name.split(", ").any(|n| n == "mxfp4"))
            .unwrap();
        assert!(
            (mx.points[2][1] - 0.5).abs() < 1e-12,
            "8 bits / 16 elements"
        );
        // Every format is on exactly one line, and no two lines coincide.
        for name in FORMATS {
            let on = o
                .series
                .iter()
                .filter(|s| s.name.split(", ").any(|n| n == name))
                .count();
            assert_eq!(on, 1, "{name}");
        }
        for (i, a) in o.series.iter().enumerate() {
            for b in &o.series[..i] {
                assert!(a.points.iter().zip(&b.points).any(|(p, q)| p[1] != q[1]));
            }
        }
        assert!((footprint_gb(7e9, 16.0) - 14.0).abs() < 1e-12);
        let (h, rows) = footprint_table(&p, 32, 1.0, 1e6).unwrap();
        assert_eq!(h.len(), 2 + 2 * 4);
        assert_eq!(rows[0][0], "bf16");
        assert_eq!(rows[0][2], "14.0");
        assert_eq!(rows.len(), 1 + FORMATS.len());
        assert!(rows.iter().all(|r| r.len() == h.len()), "{rows:?}");
    }
}
