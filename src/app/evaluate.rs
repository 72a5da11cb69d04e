//! The Evaluate view: compare several weight configurations (format × Qb × method) of one
//! checkpoint side by side on the same held-out windows — ΔL with its paired-bootstrap 95% CI,
//! perplexity, KL(base‖quant) and top-1 agreement — as a table and a bar chart with CI whiskers.
//!
//! One job: tokenize the bundled split, pick the windows (seeded), run the base model once, then
//! quantize and compare each configuration (progress per configuration, cancellable between
//! windows). With the GPU device the forward passes run on the resident GPU model (weights
//! quantized on the CPU, uploaded once per configuration; same figures to fp32 rounding).
//! Units: nats/token; KL in nats/token; top-1 as a fraction.

use std::path::PathBuf;

use egui::Ui;

use super::plots::{colour, Figure, Mark};
#[cfg(test)]
use super::quantize::Device;
use super::quantize::{ran_on, DeviceChoice};
use crate::eval::metrics::Report;
use crate::jobs::{JobSlot, Waker};
use crate::session::EvaluateState;
use crate::tasks::evaluate::{EvalReport, EvalRequest, QuantConfig};

/// One configuration to compare (as typed; saved with the session).
pub use crate::session::EvalConfig as Config;
/// Evaluation settings (saved with the session).
pub use crate::session::EvalSettings;

impl EvalSettings {
    /// The evaluate task's request for `configs` on the checkpoint in `dir` (the CLI's defaults
    /// for everything the view does not set: top-k, resamples, non-overlapping windows).
    pub fn request(
        &self,
        dir: &std::path::Path,
        configs: &[Config],
        device: crate::tasks::Device,
    ) -> crate::Result<EvalRequest> {
        let configs = configs
            .iter()
            .map(|c| {
                let (f, m) = c.parse()?;
                Ok(QuantConfig::weights(f, m))
            })
            .collect::<crate::Result<Vec<_>>>()?;
        let req = EvalRequest {
            configs,
            ctx: Some(self.ctx),
            windows: self.windows,
            seed: self.seed,
            device,
            ..EvalRequest::new(dir.to_string_lossy(), self.data.clone())
        };
        req.validate()?;
        Ok(req)
    }
}

/// Bars of ΔL per configuration with 95% CI whiskers (x = configuration index).
pub fn bars_figure(configs: &[Config], reports: &[Report]) -> Figure {
    let mut f = Figure::new(
        "evaluate_bars",
        "ΔL per configuration (95% CI, paired bootstrap over windows)",
        "configuration",
        "ΔL (nats/token)",
    );
    // Filled bars named on the x axis, in the order of the legend; CI whiskers with caps.
    let mut whiskers = Vec::new();
    for (i, (c, r)) in configs.iter().zip(reports).enumerate() {
        let x = i as f64;
        f.push(
            &c.label(),
            Mark::Bars(0.6),
            colour(i),
            vec![[x, r.delta_nll]],
        );
        f.x_names.push((x, c.label()));
        let (lo, hi, cap) = (r.delta_nll_ci95.lo, r.delta_nll_ci95.hi, 0.08);
        whiskers.extend([
            [x, lo],
            [x, hi],
            [f64::NAN, f64::NAN],
            [x - cap, lo],
            [x + cap, lo],
            [f64::NAN, f64::NAN],
            [x - cap, hi],
            [x + cap, hi],
            [f64::NAN, f64::NAN],
        ]);
    }
    f.push("95% CI", Mark::Line(1.5), [128, 128, 128], whiskers);
    f.legend_top = true;
    f
}

/// The view's state.
pub struct EvaluatePanel {
    /// Checkpoint folder.
    pub model_dir: Option<PathBuf>,
    /// Configurations to compare.
    pub configs: Vec<Config>,
    /// Settings.
    pub settings: EvalSettings,
    /// Results of the last run, one per configuration of `ran`.
    pub reports: Vec<Report>,
    /// Configurations of the last run.
    pub ran: Vec<Config>,
    /// Device choice (CPU reference or GPU) and where the last run ran.
    pub engine: DeviceChoice,
    job: JobSlot<EvalReport>,
    /// Last error.
    pub error: Option<String>,
    waker: Waker,
}

impl EvaluatePanel {
    /// A panel comparing MXFP4, MXINT4 and NVFP4 at their usual block sizes.
    pub fn new(st: EvaluateState, waker: Waker) -> Self {
        Self {
            model_dir: None,
            configs: st.configs,
            settings: st.settings,
            reports: Vec::new(),
            ran: Vec::new(),
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
    pub fn state(&self) -> EvaluateState {
        EvaluateState {
            configs: self.configs.clone(),
            settings: self.settings.clone(),
            device: self.engine.device,
        }
    }

    /// Starts the comparison.
    pub fn start(&mut self) {
        let Some(dir) = self.model_dir.clone() else {
            self.error = Some("choose a checkpoint first (Models view)".into());
            return;
        };
        let req = match self
            .settings
            .request(&dir, &self.configs, self.engine.device)
        {
            Ok(r) => r,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        self.ran = self.configs.clone();
        self.job.start("evaluate", self.waker.clone(), move |ctx| {
            crate::tasks::evaluate::run(&req, ctx)
        });
    }

    /// Progress of a running comparison.
    pub fn running(&self) -> Option<f32> {
        self.job.running()
    }

    /// Collects a finished run.
    pub fn poll(&mut self) {
        match self.job.finished() {
            Some(Ok(rep)) => {
                self.engine.ran_on = ran_on(&rep.device, rep.notice.as_deref());
                self.reports = rep.rows.into_iter().map(|r| r.report).collect();
            }
            Some(Err(e)) => self.error = Some(format!("evaluation failed: {e}")),
            None => {}
        }
    }

    /// The comparison table as (header, rows).
    pub fn table(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let rows = self
            .ran
            .iter()
            .zip(&self.reports)
            .map(|(c, r)| {
                vec![
                    c.label(),
                    format!("{:+.4}", r.delta_nll),
                    format!("[{:+.4}, {:+.4}]", r.delta_nll_ci95.lo, r.delta_nll_ci95.hi),
                    format!("{:.3} / {:.3}", r.ppl_base, r.ppl_quant),
                    format!("{:.4}", r.kl_mean),
                    format!("{:.1}%", 100.0 * r.top1_agreement),
                ]
            })
            .collect();
        (
            vec![
                "configuration",
                "ΔL",
                "95% CI",
                "perplexity",
                "KL mean",
                "top-1",
            ],
            rows,
        )
    }

    /// The bar chart (exports).
    pub fn current_figure(&self) -> Figure {
        bars_figure(&self.ran, &self.reports)
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.poll();
        super::error_row(ui, &mut self.error);
        super::checkpoint_row(ui, self.model_dir.as_deref());
        ui.horizontal(|ui| {
            ui.label("data");
            ui.add(egui::TextEdit::singleline(&mut self.settings.data).desired_width(140.0));
            ui.add(
                egui::DragValue::new(&mut self.settings.windows)
                    .range(1..=4096)
                    .prefix("windows "),
            );
            ui.add(
                egui::DragValue::new(&mut self.settings.ctx)
                    .range(2..=8192)
                    .prefix("ctx "),
            );
            ui.add(egui::DragValue::new(&mut self.settings.seed).prefix("seed "));
        });
        self.engine.ui(
            ui,
            "forward passes on the resident GPU model; same figures to fp32 rounding",
        );
        let mut remove = None;
        egui::Grid::new("eval_configs").show(ui, |ui| {
            for (i, c) in self.configs.iter_mut().enumerate() {
                ui.add_sized([220.0, 20.0], egui::TextEdit::singleline(&mut c.format))
                    .on_hover_text("format: a preset or a spelling such as elem=e3m2,scale=e8m0");
                ui.add_sized([70.0, 20.0], egui::TextEdit::singleline(&mut c.qb))
                    .on_hover_text("Qb: a number, channel or tensor");
                egui::ComboBox::from_id_salt(("eval_method", i))
                    .selected_text(c.method.as_str())
                    .show_ui(ui, |ui| {
                        for m in ["rtn", "hqq"] {
                            ui.selectable_value(&mut c.method, m.to_string(), m);
                        }
                    });
                if ui.small_button("Remove").clicked() {
                    remove = Some(i);
                }
                ui.end_row();
            }
        });
        if let Some(i) = remove {
            self.configs.remove(i);
        }
        ui.horizontal(|ui| {
            if ui.button("Add configuration").clicked() {
                let last = self.configs.last().cloned().unwrap_or(Config {
                    format: "mxfp4".into(),
                    qb: "32".into(),
                    method: "rtn".into(),
                });
                self.configs.push(last);
            }
            match super::job_controls(ui, self.running(), "Compare", "Cancel evaluation") {
                super::JobAction::Start => self.start(),
                super::JobAction::Cancel => {
                    self.job.cancel();
                }
                super::JobAction::None => {}
            }
        });
        ui.separator();
        let (header, rows) = self.table();
        super::table::table_ui(ui, "eval_table", &header, &rows, &Default::default());
        if !self.reports.is_empty() {
            self.current_figure().show(ui, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_configurations_on_shared_windows() {
        let mut p = EvaluatePanel::new(EvaluateState::default(), crate::jobs::no_waker());
        p.model_dir =
            Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny/llama"));
        p.settings.windows = 4;
        p.settings.ctx = 16;
        p.configs.truncate(2);
        p.configs.push(Config {
            format: "int8".into(),
            qb: "channel".into(),
            method: "rtn".into(),
        });
        p.start();
        crate::app::wait_for("the job", 120, || {
            p.poll();
            p.running().is_some()
        });
        assert!(p.error.is_none(), "{:?}", p.error);
        assert_eq!(p.reports.len(), 3);
        // One base for all: the base NLL is the same in every row.
        assert!(p
            .reports
            .iter()
            .all(|r| r.nll_base == p.reports[0].nll_base));
        // int8 per-channel is far closer to the base than the 4-bit formats.
        assert!(p.reports[2].kl_mean < p.reports[0].kl_mean);
        let (h, rows) = p.table();
        assert_eq!((h.len(), rows.len()), (6, 3));
        // A bar per configuration, named on the axis, and one series of capped whiskers.
        let fig = p.current_figure();
        assert_eq!(fig.series.len(), 3 + 1);
        assert_eq!(fig.x_names.len(), 3);
        assert!(fig.series[..3].iter().all(|s| s.mark == Mark::Bars(0.6)));
        assert_eq!(p.engine.ran_on, "CPU reference");
        // The GPU device (or its named CPU fallback) gives the same figures to fp32 rounding.
        let cpu = p.reports.clone();
        p.engine.device = Device::Auto;
        p.start();
        crate::app::wait_for("the job", 240, || {
            p.poll();
            p.running().is_some()
        });
        assert!(p.error.is_none(), "{:?}", p.error);
        assert!(
            p.engine.ran_on.starts_with("GPU: ") || p.engine.ran_on.contains("no GPU"),
            "{}",
            p.engine.ran_on
        );
        for (a, b) in cpu.iter().zip(&p.reports) {
            assert!(
                (a.nll_quant - b.nll_quant).abs() <= 1e-5 * a.nll_quant,
                "{a:?} vs {b:?}"
            );
        }
        p.configs[0].format = "nope".into();
        p.start();
        assert!(p.error.is_some());
    }
}
