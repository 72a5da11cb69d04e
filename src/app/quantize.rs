//! The Quantize view: choose a format (a preset, or any spelling — element ExMy/int, scale type,
//! zero point, block size, rounding: the custom-format editor), a block size and a method, and
//! quantize every linear layer of a checkpoint as a job, on the CPU reference or (RTN) on the GPU
//! — bit-identical results; the GPU context is opened inside the job, never on the UI thread,
//! and a missing adapter falls back to the CPU with one notice. Shows a
//! sortable per-tensor error table (MSE, max |error|, SQNR, bits per weight) and, for the selected
//! tensor, a histogram of its weights with the format's grid overlaid: the representable values
//! of the block that holds the tensor's largest |w| (the coarsest grid in the tensor).
//!
//! Units: errors in weight units (MSE in squared units), SQNR in dB, bits per stored weight
//! including the tensor's scale/zero overhead ([`Format::bits_per_weight`]).

use std::path::PathBuf;

use egui::Ui;

use super::plots::{Figure, Mark};
use crate::codecs::{BlockSize, Format, Method, PRESET_NAMES};
use crate::jobs::{JobSlot, Waker};
use crate::session::QuantizeState;
use crate::tasks::quantize::{QuantizeReport, QuantizeRequest, HIST_BINS};
pub use crate::tasks::Device;

/// Block sizes offered.
pub const QB_CHOICES: [&str; 10] = [
    "8", "16", "32", "64", "128", "256", "512", "1024", "channel", "tensor",
];

/// One quantized tensor (the quantize task's per-tensor report).
pub type TensorResult = crate::tasks::quantize::TensorReport;

/// A view's choice of device and where its last run ran. Every view's jobs share the process's
/// one GPU context ([`crate::tasks::engine::shared_gpu`]).
#[derive(Default)]
pub struct DeviceChoice {
    /// Where the next run goes: the CPU reference, or the GPU when one works (`Auto`: the CPU
    /// with a notice otherwise).
    pub device: Device,
    /// Where the last run ran ("CPU reference", "GPU: adapter", or the CPU with the reason).
    pub ran_on: String,
}

impl DeviceChoice {
    /// The device radio buttons with the last run's engine.
    pub(super) fn ui(&mut self, ui: &mut Ui, hover: &str) {
        ui.horizontal(|ui| {
            ui.label("device");
            ui.radio_value(&mut self.device, Device::Cpu, "CPU reference");
            ui.radio_value(&mut self.device, Device::Auto, "GPU (wgpu)")
                .on_hover_text(hover);
            if !self.ran_on.is_empty() {
                ui.weak(format!("last run: {}", self.ran_on));
            }
        });
    }
}

/// What a panel shows as where a task ran: its engine, or the CPU with why.
pub(super) fn ran_on(device: &str, notice: Option<&str>) -> String {
    match (device, notice) {
        ("cpu", Some(why)) => format!("CPU reference ({why})"),
        ("cpu", None) => "CPU reference".to_string(),
        (gpu, _) => gpu
            .strip_prefix("gpu: ")
            .map_or_else(|| gpu.to_string(), |g| format!("GPU: {g}")),
    }
}

/// Histogram of one tensor's weights (steps) with its grid as vertical lines.
pub fn grid_figure(t: &TensorResult, format_label: &str) -> Figure {
    let mut f = Figure::new(
        "quantize_histogram",
        &format!(
            "{}: weights and the {format_label} grid of its max-|w| block",
            t.name
        ),
        "weight value",
        "count",
    );
    let w = 2.0 * t.absmax / HIST_BINS as f64;
    let top = t.histogram.iter().copied().max().unwrap_or(1) as f64;
    let pts: Vec<[f64; 2]> = t
        .histogram
        .iter()
        .enumerate()
        .map(|(i, c)| [-t.absmax + w * (i as f64 + 0.5), *c as f64])
        .collect();
    f.push("weights", Mark::Bars(w as f32), [90, 160, 240], pts);
    let mut grid = Vec::with_capacity(3 * t.grid.len());
    for g in &t.grid {
        let x = f64::from(*g);
        grid.extend([[x, 0.0], [x, top * 1.05], [f64::NAN, f64::NAN]]);
    }
    f.push("format grid", Mark::Line(1.0), [240, 170, 60], grid);
    f
}

/// Sort key of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    /// Site order.
    Site,
    /// Mean squared error, largest first.
    Mse,
    /// Max |error|, largest first.
    MaxErr,
    /// SQNR, lowest first.
    Sqnr,
}

/// The view's state.
pub struct QuantizePanel {
    /// Checkpoint folder.
    pub model_dir: Option<PathBuf>,
    /// Format spelling (a preset name or `key=value` list).
    pub spelling: String,
    /// Block size choice.
    pub qb: String,
    /// Method spelling (`rtn`, `hqq`).
    pub method: String,
    /// Results of the last run.
    pub results: Vec<TensorResult>,
    /// Label of the format of the results.
    pub results_format: String,
    /// Selected tensor.
    pub selected: Option<usize>,
    /// Table order.
    pub sort: SortBy,
    /// Device choice (CPU reference or GPU) and where the last run ran.
    pub engine: DeviceChoice,
    job: JobSlot<QuantizeReport>,
    /// Last error.
    pub error: Option<String>,
    waker: Waker,
}

impl QuantizePanel {
    /// A panel restoring `st` (MXFP4 at Qb = 32 and RTN by default).
    pub fn new(st: QuantizeState, waker: Waker) -> Self {
        Self {
            model_dir: None,
            spelling: st.spelling,
            qb: st.qb,
            method: st.method,
            results: Vec::new(),
            results_format: String::new(),
            selected: None,
            sort: SortBy::Site,
            engine: DeviceChoice {
                device: st.device,
                ran_on: String::new(),
            },
            job: JobSlot::default(),
            error: None,
            waker,
        }
    }

    /// The choices a session saves.
    pub fn state(&self) -> QuantizeState {
        QuantizeState {
            spelling: self.spelling.clone(),
            qb: self.qb.clone(),
            method: self.method.clone(),
            device: self.engine.device,
        }
    }

    /// The format the controls describe, or why not.
    pub fn format(&self) -> crate::Result<Format> {
        let f = Format::parse(&self.spelling)?;
        Ok(f.with_block(self.qb.parse::<BlockSize>()?))
    }

    /// Starts quantizing `model_dir`.
    pub fn start(&mut self) {
        let Some(dir) = self.model_dir.clone() else {
            self.error = Some(
                "choose a checkpoint first (Models view, or File > Open checkpoint folder)".into(),
            );
            return;
        };
        let format = match self.format() {
            Ok(f) => f,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        let method: Method = match self.method.parse() {
            Ok(m) => m,
            Err(e) => {
                self.error = Some(format!("{e}"));
                return;
            }
        };
        self.results_format = format.to_string();
        let req = QuantizeRequest {
            model: dir.to_string_lossy().into_owned(),
            format,
            // The GPU runs RTN; other methods stay on the CPU without a notice.
            device: if matches!(method, Method::Rtn) {
                self.engine.device
            } else {
                Device::Cpu
            },
            method,
            calib: Default::default(),
            out: None,
        };
        self.job.start("quantize", self.waker.clone(), move |ctx| {
            crate::tasks::quantize::run(&req, ctx)
        });
    }

    /// Whether a run is in progress, and its progress.
    pub fn running(&self) -> Option<f32> {
        self.job.running()
    }

    /// Cancels a running quantization.
    pub fn cancel(&self) {
        self.job.cancel();
    }

    /// Collects a finished run.
    pub fn poll(&mut self) {
        match self.job.finished() {
            Some(Ok(rep)) => {
                self.engine.ran_on = ran_on(&rep.device, rep.notice.as_deref());
                self.results = rep.tensors;
                self.selected = (!self.results.is_empty()).then_some(0);
            }
            Some(Err(e)) => self.error = Some(format!("quantize failed: {e}")),
            None => {}
        }
    }

    /// Row order of the table.
    pub fn order(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.results.len()).collect();
        let r = &self.results;
        match self.sort {
            SortBy::Site => {}
            SortBy::Mse => idx.sort_by(|a, b| r[*b].stats.mse.total_cmp(&r[*a].stats.mse)),
            SortBy::MaxErr => {
                idx.sort_by(|a, b| r[*b].stats.max_abs_err.total_cmp(&r[*a].stats.max_abs_err))
            }
            SortBy::Sqnr => {
                idx.sort_by(|a, b| r[*a].stats.sqnr_db().total_cmp(&r[*b].stats.sqnr_db()))
            }
        }
        idx
    }

    /// The error table as (header, rows) in display order.
    pub fn table(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let rows = self
            .order()
            .into_iter()
            .map(|i| {
                let t = &self.results[i];
                vec![
                    t.name.clone(),
                    format!("{}×{}", t.shape_k[0], t.shape_k[1]),
                    format!("{:.4}", t.bits_per_weight),
                    format!("{:.3e}", t.stats.mse),
                    format!("{:.3e}", t.stats.max_abs_err),
                    format!("{:.2}", t.stats.sqnr_db()),
                ]
            })
            .collect();
        (
            vec![
                "tensor",
                "shape",
                "bits/weight",
                "MSE",
                "max |err|",
                "SQNR dB",
            ],
            rows,
        )
    }

    /// The histogram of the selected tensor (exports).
    pub fn current_figure(&self) -> Option<Figure> {
        let t = self.results.get(self.selected?)?;
        Some(grid_figure(t, &self.results_format))
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.poll();
        super::error_row(ui, &mut self.error);
        super::checkpoint_row(ui, self.model_dir.as_deref());
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("preset")
                .selected_text(self.spelling.split(',').next().unwrap_or(""))
                .show_ui(ui, |ui| {
                    for p in PRESET_NAMES {
                        if ui.selectable_label(self.spelling == p, p).clicked() {
                            self.spelling = p.to_string();
                            // A preset brings its native block size (NVFP4: 16).
                            if let Some(crate::codecs::BlockSize::Elements(n)) =
                                crate::codecs::Format::preset(p).map(|f| f.block)
                            {
                                self.qb = n.to_string();
                            }
                        }
                    }
                });
            ui.add(egui::TextEdit::singleline(&mut self.spelling).desired_width(300.0))
                .on_hover_text(
                    "A preset with overrides, or any format: elem=e3m2,scale=e8m0,block=32 · \
                     elem=uint3,scale=fp16,zero=int · round=away · overflow=saturate",
                );
            egui::ComboBox::from_label("Qb")
                .selected_text(self.qb.as_str())
                .show_ui(ui, |ui| {
                    for q in QB_CHOICES {
                        ui.selectable_value(&mut self.qb, q.to_string(), q);
                    }
                });
            egui::ComboBox::from_label("method")
                .selected_text(self.method.as_str())
                .show_ui(ui, |ui| {
                    for m in ["rtn", "hqq"] {
                        ui.selectable_value(&mut self.method, m.to_string(), m);
                    }
                    for m in ["gptq", "awq"] {
                        ui.add_enabled(false, egui::Button::new(m))
                            .on_disabled_hover_text(
                                "needs calibration data: `quantscape quantize --method gptq`",
                            );
                    }
                });
        });
        self.engine.ui(
            ui,
            "RTN on the GPU, bit-identical to the CPU reference; HQQ runs on the CPU",
        );
        match self.format() {
            Ok(f) => {
                ui.label(format!(
                    "{f}: {:.4} bits per weight at this Qb",
                    f.bits_per_weight_at(f.block.block_len(4096))
                ));
            }
            Err(e) => {
                ui.colored_label(egui::Color32::LIGHT_RED, e.to_string());
            }
        }
        ui.horizontal(|ui| {
            match super::job_controls(ui, self.running(), "Quantize", "Cancel quantize") {
                super::JobAction::Start => self.start(),
                super::JobAction::Cancel => self.cancel(),
                super::JobAction::None => {}
            }
        });
        ui.separator();
        ui.columns(2, |cols| {
            self.table_ui(&mut cols[0]);
            if let Some(f) = self.current_figure() {
                f.show(&mut cols[1], None);
            }
        });
    }

    fn table_ui(&mut self, ui: &mut Ui) {
        let (header, rows) = self.table();
        let order = self.order();
        const SORTS: [SortBy; 6] = [
            SortBy::Site,
            SortBy::Site,
            SortBy::Site,
            SortBy::Mse,
            SortBy::MaxErr,
            SortBy::Sqnr,
        ];
        let (sort, selected) = (self.sort, self.selected);
        let header_on = |h: usize| {
            SORTS
                .get(h)
                .is_some_and(|s| *s == sort && *s != SortBy::Site)
        };
        let row_on = |r: usize| order.get(r).is_some_and(|i| Some(*i) == selected);
        let how = super::table::Interact {
            header_on: Some(&header_on),
            row_on: Some(&row_on),
        };
        let c = egui::ScrollArea::both()
            .id_salt("quantize_table")
            .show(ui, |ui| {
                super::table::table_ui(ui, "quantize_grid", &header, &rows, &how)
            })
            .inner;
        if let Some(s) = c.header.and_then(|h| SORTS.get(h)) {
            self.sort = *s;
        }
        if let Some(i) = c.row.and_then(|r| order.get(r)) {
            self.selected = Some(*i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantizes_a_checkpoint_with_a_custom_format_and_sorts_its_errors() {
        let mut p = QuantizePanel::new(QuantizeState::default(), crate::jobs::no_waker());
        p.model_dir =
            Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny/llama"));
        p.spelling = "elem=e2m1,scale=e8m0".into();
        p.qb = "16".into();
        assert!(p.format().is_ok());
        p.start();
        crate::app::wait_for("the job", 60, || {
            p.poll();
            p.running().is_some()
        });
        assert!(p.error.is_none(), "{:?}", p.error);
        assert!(!p.results.is_empty());
        assert_eq!(p.engine.ran_on, "CPU reference");
        // The GPU engine (or its CPU fallback, named) gives the same errors bit for bit.
        let cpu: Vec<_> = p.results.iter().map(|r| r.stats).collect();
        p.engine.device = Device::Auto;
        p.start();
        crate::app::wait_for("the job", 120, || {
            p.poll();
            p.running().is_some()
        });
        assert!(p.error.is_none(), "{:?}", p.error);
        assert!(
            p.engine.ran_on.starts_with("GPU: ") || p.engine.ran_on.contains("no GPU"),
            "{}",
            p.engine.ran_on
        );
        assert_eq!(cpu, p.results.iter().map(|r| r.stats).collect::<Vec<_>>());
        // E2M1 has 8 magnitudes: at most 15 values (±0 once) in a block, and the grid shown is
        // every one the block's range reaches, symmetric, whatever values its weights use.
        for r in &p.results {
            assert!(
                r.grid.len() >= 11 && r.grid.len() <= 15 && r.grid.len() % 2 == 1,
                "{}: {:?}",
                r.name,
                r.grid
            );
            for (a, b) in r.grid.iter().zip(r.grid.iter().rev()) {
                assert_eq!(*a, -*b, "{}: {:?}", r.name, r.grid);
            }
            assert!((r.bits_per_weight - (4.0 + 8.0 / 16.0)).abs() < 0.1);
        }
        p.sort = SortBy::Mse;
        let o = p.order();
        assert!(o
            .windows(2)
            .all(|w| p.results[w[0]].stats.mse >= p.results[w[1]].stats.mse));
        let f = p.current_figure().unwrap();
        assert_eq!(f.series.len(), 2);
        p.spelling = "elem=e9m9".into();
        assert!(p.format().is_err());
        p.model_dir = None;
        p.start();
        assert!(p.error.as_deref().unwrap().contains("checkpoint"));
    }
}
