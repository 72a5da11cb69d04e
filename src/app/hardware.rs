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

use super::plots::{colour, human, Figure, Label, Mark};
use super::session::HardwareState;
use crate::codecs::Format;
use crate::jobs::{JobSlot, Waker};
use crate::search::export::ConfigSummary;
use crate::tasks::pareto::{self, ParetoReport, ParetoRequest, ParetoRow, Prepared};

/// Block formats compared.
pub const FORMATS: [&str; 9] = pareto::FORMATS;

/// Block sizes compared.
pub const BLOCKS: [usize; 6] = pareto::BLOCKS;

/// Model sizes of the footprint table.
pub const TARGETS: [f64; 3] = [7e9, 70e9, 405e9];

/// Bits per weight of preset `name` at block size `qb` (None for an unknown preset).
pub fn bpw(name: &str, qb: usize) -> Option<f64> {
    Format::preset(name).map(|f| f.bits_per_weight_at(qb))
}

/// Bits per weight against predicted ΔL: one dot series per format (legend), the 95 % bands
/// as whiskers, the Pareto front as a line with every front point labelled `format Qb`, and
/// measured points of a sweep when given.
pub fn tradeoff_figure(r: &ParetoReport, measured: Option<&(String, Vec<[f64; 2]>)>) -> Figure {
    let mut f = Figure::new(
        "hardware_tradeoff",
        &format!(
            "N = {}, Qr = {:.2}: bits per weight vs predicted ΔL ({})",
            human(r.n),
            r.qr,
            r.law
        ),
        "bits per weight",
        "predicted ΔL (nats/token)",
    );
    f.y_log = true;
    f.legend_top = true;
    let pt = |c: &ParetoRow| [c.bits_per_weight, c.delta_loss.log10()];
    for row in r.rows.iter().filter(|c| c.delta_loss > 0.0) {
        if let Some([lo, hi]) = row.ci.filter(|[lo, _]| *lo > 0.0) {
            f.push(
                "95 % band",
                Mark::Line(1.0),
                [120, 120, 135],
                vec![
                    [row.bits_per_weight, lo.log10()],
                    [row.bits_per_weight, hi.log10()],
                ],
            );
        }
    }
    let mut front: Vec<&ParetoRow> = r.rows.iter().filter(|c| c.pareto).collect();
    front.sort_by(|a, b| a.bits_per_weight.total_cmp(&b.bits_per_weight));
    f.push(
        "Pareto front",
        Mark::Line(2.0),
        [240, 170, 60],
        front.iter().map(|c| pt(c)).collect(),
    );
    let mut names: Vec<&str> = r.rows.iter().map(|c| c.format.as_str()).collect();
    names.dedup();
    for (i, name) in names.iter().enumerate() {
        let pts: Vec<[f64; 2]> = r
            .rows
            .iter()
            .filter(|c| c.format == *name && c.delta_loss > 0.0)
            .map(pt)
            .collect();
        f.push(name, Mark::Dots(3.5), colour(i), pts);
    }
    for c in front.iter().filter(|c| c.delta_loss > 0.0) {
        f.labels.push(Label {
            at: pt(c),
            text: format!("{} {}", c.format, c.qb),
        });
    }
    if let Some((label, pts)) = measured {
        f.push(label, Mark::Dots(3.0), [90, 200, 240], pts.clone());
    }
    f
}

/// The table rows as text: format, Qb, bits per weight, ε, ΔL, band, front.
pub fn pareto_table(r: &ParetoReport) -> (Vec<String>, Vec<Vec<String>>) {
    let header = [
        "format",
        "Qb",
        "bits/weight",
        "ε",
        "ΔL",
        "95 % band",
        "front",
    ]
    .map(String::from)
    .to_vec();
    let rows = r
        .rows
        .iter()
        .map(|c| {
            vec![
                c.format.clone(),
                c.qb.to_string(),
                format!("{:.3}", c.bits_per_weight),
                format!("{:.3e}{}", c.eps, if c.eps_outside_fit { " *" } else { "" }),
                format!("{:.3e}", c.delta_loss),
                c.ci.map_or("-".into(), |[l, h]| format!("[{l:.2e}, {h:.2e}]")),
                if c.pareto {
                    "yes".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    (header, rows)
}

/// Measured points for the trade-off plot: every configuration of the largest model in a sweep
/// with all weights in the low format (target Qr = 1, weight-only granularities): (label,
/// [bits per weight, log10 ΔL]). ΔL ≤ 0 (within noise of the base) cannot be drawn on the log axis
/// and is left out.
pub fn measured_points(summary: &[ConfigSummary]) -> Option<(String, Vec<[f64; 2]>)> {
    let largest = summary.iter().filter_map(|c| c.n_params).max()?;
    let pts: Vec<[f64; 2]> = summary
        .iter()
        .filter(|c| c.n_params == Some(largest) && c.qr_target >= 1.0 && c.granularity != "matmul")
        .filter(|c| c.delta_loss > 0.0 && c.bits_per_weight.is_finite())
        .map(|c| [c.bits_per_weight, c.delta_loss.log10()])
        .collect();
    (!pts.is_empty()).then(|| {
        (
            format!("measured, N = {} (sweep, Qr = 1)", human(largest as f64)),
            pts,
        )
    })
}

/// Scale (and zero-point) overhead in bits per weight against Qb, one line per format.
pub fn overhead_figure() -> Figure {
    let mut f = Figure::new(
        "hardware_overhead",
        "Scale overhead against block size",
        "Qb (block size, elements)",
        "overhead (bits per weight)",
    );
    f.x_log = true;
    for (i, name) in FORMATS.iter().enumerate() {
        let Some(fmt) = Format::preset(name) else {
            continue;
        };
        let elem = f64::from(fmt.element.bits());
        let pts = (2..=10)
            .map(|k| {
                let qb = 1usize << k;
                [(qb as f64).log10(), fmt.bits_per_weight_at(qb) - elem]
            })
            .collect();
        f.push(name, Mark::Line(1.5), colour(i), pts);
    }
    f
}

/// Memory (GB, 10^9 bytes) of `n` weights at `bits_per_weight`.
pub fn footprint_gb(n: f64, bits_per_weight: f64) -> f64 {
    n * bits_per_weight / 8.0 / 1e9
}

/// The footprint table at block size `qb` and ratio `qr`: per format (bf16 first), bits per
/// weight and, per model size (7B, 70B, 405B and `extra_n`), GB and predicted ΔL.
pub fn footprint_table(
    prepared: &Prepared,
    qb: usize,
    qr: f64,
    extra_n: f64,
) -> crate::Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut sizes = TARGETS.to_vec();
    if !sizes.iter().any(|s| (s / extra_n - 1.0).abs() < 1e-9) {
        sizes.push(extra_n);
    }
    let mut header = vec!["format".to_string(), format!("bits/weight (Qb {qb})")];
    for n in &sizes {
        header.push(format!("{} GB", human(*n)));
        header.push(format!("{} ΔL", human(*n)));
    }
    let reports: Vec<ParetoReport> = sizes
        .iter()
        .map(|n| prepared.report(*n, qr))
        .collect::<crate::Result<_>>()?;
    let mut rows = vec![{
        let mut row = vec!["bf16".to_string(), "16.000".to_string()];
        for n in &sizes {
            row.push(format!("{:.1}", footprint_gb(*n, 16.0)));
            row.push("0".into());
        }
        row
    }];
    for name in &prepared.request.formats {
        let mut row = vec![name.clone()];
        let mut bits = None;
        for (n, r) in sizes.iter().zip(&reports) {
            let Some(c) = r.rows.iter().find(|c| &c.format == name && c.qb == qb) else {
                continue;
            };
            bits = Some(c.bits_per_weight);
            row.push(format!("{:.1}", footprint_gb(*n, c.bits_per_weight)));
            row.push(format!("{:.2e}", c.delta_loss));
        }
        if let Some(b) = bits {
            row.insert(1, format!("{b:.3}"));
            rows.push(row);
        }
    }
    Ok((header, rows))
}

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
        assert_eq!(
            fig.labels.len(),
            front.len(),
            "every front point is labelled"
        );
        assert!(fig.series.iter().any(|s| s.name == "nvfp4"));
        assert!(r.extrapolation_decades > 3.0 && !r.notices.is_empty());
        // mxfp4: 4 + 8/32 bits.
        assert_eq!(bpw("mxfp4", 32), Some(4.25));
        let o = overhead_figure();
        let mx = o.series.iter().find(|s| s.name == "mxfp4").unwrap();
        assert!(
            (mx.points[2][1] - 0.5).abs() < 1e-12,
            "8 bits / 16 elements"
        );
        assert!((footprint_gb(7e9, 16.0) - 14.0).abs() < 1e-12);
        let (h, rows) = footprint_table(&p, 32, 1.0, 1e6).unwrap();
        assert_eq!(h.len(), 2 + 2 * 4);
        assert_eq!(rows[0][0], "bf16");
        assert_eq!(rows[0][2], "14.0");
        assert_eq!(rows.len(), 1 + FORMATS.len());
        assert!(rows.iter().all(|r| r.len() == h.len()), "{rows:?}");
    }
}
