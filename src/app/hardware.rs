//! The Hardware view, for architects choosing a block format and block size: bits per weight
//! against the fitted law's predicted ΔL for every block format × Qb (Pareto front
//! highlighted), scale overhead against block size, and the memory footprint of a target model
//! (7B, 70B, 405B, or the slider's N) per format.
//!
//! Bits per weight = Qr·bpw_low(Qb) + (1 − Qr)·16 (the rest kept in bf16), where bpw_low(Qb) =
//! element bits + (scale bits + zero bits)/Qb ([`crate::codecs::Format::bits_per_weight_at`]).
//! The unified law has no term for the element format, so at one Qb every format gets the same
//! predicted ΔL; the view says so and the front is then decided by bits.

use egui::{RichText, Ui};

use super::plots::{colour, human, Figure, Mark};
use super::session::HardwareState;
use crate::codecs::Format;
use crate::laws::{Law, Var, EMPTY_ROW};
use crate::search::export::ConfigSummary;

/// Block formats compared (low precision, block-scaled).
pub const FORMATS: [&str; 9] = [
    "mxfp4",
    "mxint4",
    "nvfp4",
    "int4_sym",
    "int4_asym",
    "int3_asym",
    "nf4",
    "mxfp6_e2m3",
    "mxint8",
];

/// Block sizes compared.
pub const BLOCKS: [usize; 7] = [8, 16, 32, 64, 128, 256, 1024];

/// Model sizes of the footprint table.
pub const TARGETS: [f64; 3] = [7e9, 70e9, 405e9];

/// One format × Qb choice.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// Preset name.
    pub format: String,
    /// Block size.
    pub qb: usize,
    /// Bits per weight of the whole model at the view's Qr.
    pub bits_per_weight: f64,
    /// Predicted ΔL (nats/token), NaN when the law cannot say.
    pub delta_loss: f64,
    /// On the Pareto front (no other choice has ≤ bits and ≤ ΔL with one strictly lower).
    pub pareto: bool,
}

/// Bits per weight of preset `name` at block size `qb` (None for an unknown preset).
pub fn bpw(name: &str, qb: usize) -> Option<f64> {
    Format::preset(name).map(|f| f.bits_per_weight_at(qb))
}

/// Every format × Qb at model size `n` and ratio `qr`, with the Pareto front marked.
pub fn choices(law: &Law, params: &[f64], n: f64, qr: f64) -> Vec<Choice> {
    let mut out: Vec<Choice> = FORMATS
        .iter()
        .flat_map(|f| BLOCKS.iter().map(move |b| (*f, *b)))
        .filter_map(|(f, b)| {
            let low = bpw(f, b)?;
            let mut r = EMPTY_ROW;
            r[Var::N.index()] = n;
            r[Var::Qr.index()] = qr;
            r[Var::Qb.index()] = b as f64;
            Some(Choice {
                format: f.to_string(),
                qb: b,
                bits_per_weight: qr * low + (1.0 - qr) * 16.0,
                delta_loss: law.eval(params, &r),
                pareto: false,
            })
        })
        .collect();
    let snapshot = out.clone();
    for c in &mut out {
        c.pareto = c.delta_loss.is_finite()
            && !snapshot.iter().any(|o| {
                o.delta_loss.is_finite()
                    && o.bits_per_weight <= c.bits_per_weight
                    && o.delta_loss <= c.delta_loss
                    && (o.bits_per_weight < c.bits_per_weight || o.delta_loss < c.delta_loss)
            });
    }
    out
}

/// Bits per weight against predicted ΔL, Pareto front as a line.
pub fn tradeoff_figure(
    choices: &[Choice],
    n: f64,
    qr: f64,
    measured: Option<&(String, Vec<[f64; 2]>)>,
) -> Figure {
    let mut f = Figure::new(
        "hardware_tradeoff",
        &format!(
            "N = {}, Qr = {qr:.2}: bits per weight vs predicted ΔL",
            human(n)
        ),
        "bits per weight",
        "predicted ΔL (nats/token)",
    );
    f.y_log = true;
    let pt = |c: &Choice| [c.bits_per_weight, c.delta_loss.log10()];
    let mut front: Vec<[f64; 2]> = choices.iter().filter(|c| c.pareto).map(pt).collect();
    front.sort_by(|a, b| a[0].total_cmp(&b[0]));
    f.push(
        "choices",
        Mark::Dots(3.0),
        [150, 150, 170],
        choices
            .iter()
            .filter(|c| !c.pareto && c.delta_loss > 0.0)
            .map(pt)
            .collect(),
    );
    f.push(
        "Pareto front",
        Mark::Line(2.0),
        [240, 170, 60],
        front.clone(),
    );
    f.push("on the front", Mark::Dots(4.5), [240, 170, 60], front);
    if let Some((label, pts)) = measured {
        f.push(label, Mark::Dots(3.5), [90, 200, 240], pts.clone());
    }
    f
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

/// The footprint table at block size `qb` and ratio `qr`: (header, rows).
pub fn footprint_table(
    law: &Law,
    params: &[f64],
    qb: usize,
    qr: f64,
    extra_n: f64,
) -> (Vec<String>, Vec<Vec<String>>) {
    let mut sizes = TARGETS.to_vec();
    if !sizes.iter().any(|s| (s / extra_n - 1.0).abs() < 1e-9) {
        sizes.push(extra_n);
    }
    let mut header = vec!["format".to_string(), format!("bits/weight (Qb {qb})")];
    for n in &sizes {
        header.push(format!("{} GB", human(*n)));
        header.push(format!("{} ΔL", human(*n)));
    }
    let mut rows = Vec::new();
    for name in std::iter::once("bf16").chain(FORMATS) {
        let Some(low) = bpw(name, qb) else { continue };
        let (bits, q) = if name == "bf16" {
            (16.0, 0.0)
        } else {
            (qr * low + (1.0 - qr) * 16.0, qr)
        };
        let mut row = vec![name.to_string(), format!("{bits:.3}")];
        for n in &sizes {
            let mut r = EMPTY_ROW;
            r[Var::N.index()] = *n;
            r[Var::Qr.index()] = q;
            r[Var::Qb.index()] = qb as f64;
            let dl = if q == 0.0 { 0.0 } else { law.eval(params, &r) };
            row.push(format!("{:.1}", footprint_gb(*n, bits)));
            row.push(format!("{dl:.4}"));
        }
        rows.push(row);
    }
    (header, rows)
}

/// The view's state.
pub struct HardwarePanel {
    /// Saved choices.
    pub st: HardwareState,
    /// Block size of the footprint table.
    pub qb: usize,
}

impl HardwarePanel {
    /// A panel restoring `st`.
    pub fn new(st: HardwareState) -> Self {
        Self { st, qb: 32 }
    }

    /// The trade-off figure for the law in use, with measured points when a sweep is loaded.
    pub fn current_figure(&self, law: &Law, params: &[f64], summary: &[ConfigSummary]) -> Figure {
        let measured = measured_points(summary);
        tradeoff_figure(
            &choices(law, params, self.st.target_n, self.st.qr),
            self.st.target_n,
            self.st.qr,
            measured.as_ref(),
        )
    }

    /// Draws the view with the Laws view's law and parameters.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        law: &Law,
        params: &[f64],
        data_note: &str,
        summary: &[ConfigSummary],
    ) {
        ui.horizontal(|ui| {
            ui.add(
                egui::Slider::new(&mut self.st.target_n, 1e5..=1e12)
                    .logarithmic(true)
                    .text("target N")
                    .custom_formatter(|v, _| human(v)),
            );
            ui.add(egui::Slider::new(&mut self.st.qr, 0.0..=1.0).text("Qr"));
            egui::ComboBox::from_label("Qb of the table")
                .selected_text(self.qb.to_string())
                .show_ui(ui, |ui| {
                    for b in BLOCKS {
                        ui.selectable_value(&mut self.qb, b, b.to_string());
                    }
                });
        });
        ui.label(
            RichText::new(format!(
                "Predicted ΔL from {} fitted on {data_note}; the law has no element-format term, \
                 so formats differ here only in bits.",
                law.id
            ))
            .small(),
        );
        let (header, rows) = footprint_table(law, params, self.qb, self.st.qr, self.st.target_n);
        super::table::table_ui(ui, "footprint", &header, &rows, &Default::default());
        ui.separator();
        let h = ui.available_height();
        ui.columns(2, |cols| {
            self.current_figure(law, params, summary)
                .show(&mut cols[0], Some(h));
            overhead_figure().show(&mut cols[1], Some(h));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_overheads_and_footprints() {
        let law = Law::by_id("unified-strong").unwrap();
        let p = [0.6, 2.2, 0.35, 8.0, 0.4];
        let cs = choices(&law, &p, 7e9, 1.0);
        assert_eq!(cs.len(), FORMATS.len() * BLOCKS.len());
        let front: Vec<&Choice> = cs.iter().filter(|c| c.pareto).collect();
        assert!(!front.is_empty());
        // No front point is dominated, and every other point is dominated by a front point.
        for c in &cs {
            let dominated = front.iter().any(|f| {
                f.bits_per_weight <= c.bits_per_weight
                    && f.delta_loss <= c.delta_loss
                    && (f.bits_per_weight < c.bits_per_weight || f.delta_loss < c.delta_loss)
            });
            assert_eq!(dominated, !c.pareto, "{c:?}");
        }
        // int3_asym at Qb = 1024 is the fewest bits, so it is on the front.
        assert!(front
            .iter()
            .any(|c| c.format == "int3_asym" && c.qb == 1024));
        // mxfp4: 4 + 8/32 bits.
        assert_eq!(bpw("mxfp4", 32), Some(4.25));
        let o = overhead_figure();
        let mx = o.series.iter().find(|s| s.name == "mxfp4").unwrap();
        assert!(
            (mx.points[2][1] - 0.5).abs() < 1e-12,
            "8 bits / 16 elements"
        );
        assert!((footprint_gb(7e9, 16.0) - 14.0).abs() < 1e-12);
        let (h, rows) = footprint_table(&law, &p, 32, 1.0, 1e6);
        assert_eq!(h.len(), 2 + 2 * 4);
        assert_eq!(rows[0][0], "bf16");
        assert_eq!(rows[0][2], "14.0");
    }
}
