//! The Sweep view: run or resume a sweep spec into a results store as a job, and watch trials
//! stream in — ΔL (or KL, a toggle) against achieved Qr per model for one (granularity, low
//! format, Qb) slice, and the trial distribution per configuration (whiskers q10–q90, box
//! q25–q75, median).
//!
//! The store is re-read in a job every [`REFRESH_SECS`] while a sweep runs (SQLite WAL lets the
//! reader and the writer work at once), and when a store is opened. ΔL and KL in nats/token
//! (log axis; trials with a value ≤ 0 are listed in the counts but cannot be drawn on it).

use std::path::PathBuf;
use std::time::Instant;

use egui::{RichText, Ui};

use super::plots::Figure;
use crate::jobs::{Job, JobSlot, Waker};
use crate::search::export::{read_store, StoreContents};
use crate::search::runner::RunSummary;
use crate::search::spec::{Metric, Shard, SweepSpec};
use crate::session::SweepState;

/// Seconds between re-reads of the store while a sweep runs.
pub const REFRESH_SECS: f64 = 2.0;

/// What was read from a store.
pub type Loaded = StoreContents;

/// Reads a results store.
pub fn load_store(path: &std::path::Path) -> crate::Result<Loaded> {
    read_store(path)
}

pub use crate::figures::sweep::*;

/// The view's state.
pub struct SweepPanel {
    /// Spec to run.
    pub spec_path: PathBuf,
    /// Results store shown (and written by a run).
    pub results: PathBuf,
    /// What was last read.
    pub loaded: std::sync::Arc<Loaded>,
    /// Slice shown.
    pub slice: Slice,
    /// Not a `JobSlot`: a second start must not replace a running sweep, and a cancelled run
    /// reports itself ("run again to resume") where a slot drops cancelled results silently.
    run_job: Option<Job<(RunSummary, String)>>,
    /// Where trials run: the GPU takes the layer- and block-wise ones.
    pub engine: super::quantize::DeviceChoice,
    load_job: JobSlot<Loaded>,
    last_load: Option<Instant>,
    /// Last run's summary line.
    pub status: String,
    /// Last error.
    pub error: Option<String>,
    /// The spec editor's text (read from `spec_path` when the editor first opens).
    pub spec_text: String,
    /// The file `spec_text` was read from (None: not read yet).
    pub(super) spec_read_from: Option<PathBuf>,
    /// The text as read, to tell an edited spec.
    pub(super) spec_saved: String,
    /// Validation of `spec_text`: a summary, or the parse error.
    pub spec_check: Result<String, String>,
    waker: Waker,
}

impl SweepPanel {
    /// A panel on the demo spec and store; `demo` is the store as another view already read it.
    pub fn new(st: SweepState, waker: Waker, demo: Option<Loaded>) -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let own_store = st.results.is_some();
        let mut p = Self {
            spec_path: st
                .spec_path
                .unwrap_or_else(|| root.join("assets/sweeps/demo.ron")),
            results: st.results.unwrap_or_else(super::laws_data::demo_store),
            loaded: Default::default(),
            slice: Slice::default(),
            run_job: None,
            engine: super::quantize::DeviceChoice {
                device: st.device,
                ran_on: String::new(),
            },
            load_job: JobSlot::default(),
            last_load: None,
            status: String::new(),
            error: None,
            spec_text: String::new(),
            spec_read_from: None,
            spec_saved: String::new(),
            spec_check: Err("not read yet".into()),
            waker,
        };
        match demo.filter(|_| !own_store) {
            Some(l) => {
                p.loaded = std::sync::Arc::new(l);
                p.fix_slice();
            }
            None if p.results.is_file() => p.reload(),
            None => {}
        }
        p
    }

    /// The choices a session saves.
    pub fn state(&self) -> SweepState {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let demo_spec = root.join("assets/sweeps/demo.ron");
        SweepState {
            spec_path: (self.spec_path != demo_spec).then(|| self.spec_path.clone()),
            results: (self.results != super::laws_data::demo_store()).then(|| self.results.clone()),
            device: self.engine.device,
        }
    }

    /// Shows another results store.
    pub fn open_results(&mut self, path: PathBuf) {
        self.results = path;
        self.loaded = Default::default();
        self.reload();
    }

    /// Re-reads the store in the background (nothing to read until a run has created it).
    pub fn reload(&mut self) {
        if self.load_job.is_running() || !self.results.is_file() {
            return;
        }
        let path = self.results.clone();
        self.last_load = Some(Instant::now());
        self.load_job
            .start("read results", self.waker.clone(), move |_| {
                load_store(&path)
            });
    }

    /// Starts (or resumes) the sweep into `results`: of the editor's text when it was opened,
    /// else of `spec_path`.
    pub fn start_run(&mut self) {
        if self.run_job.is_some() {
            return;
        }
        let (spec_path, results) = (self.spec_path.clone(), self.results.clone());
        let text = self
            .spec_read_from
            .is_some()
            .then(|| self.spec_text.clone());
        self.status = if self.spec_edited() {
            format!("running the edited {}…", spec_path.display())
        } else {
            format!("running {}…", spec_path.display())
        };
        let device = self.engine.device;
        self.run_job = Some(Job::spawn("sweep", self.waker.clone(), move |ctx| {
            let spec = match text {
                Some(t) => SweepSpec::from_ron(&t, &spec_path.display().to_string())?,
                None => SweepSpec::load(&spec_path)?,
            };
            let req = crate::tasks::sweep::SweepRequest {
                spec,
                out: results,
                shard: Shard::ALL,
                cache_bytes: 1 << 30,
                device,
            };
            let rep = crate::tasks::sweep::run(&req, ctx)?;
            let ran = super::quantize::ran_on(&rep.device, rep.notice.as_deref());
            // Matmul-wise trials stay on the CPU even with a GPU: say both.
            let ran = if rep.device != "cpu" && rep.summary.devices.iter().any(|d| d == "cpu") {
                format!("{ran} (matmul-wise trials on the CPU)")
            } else {
                ran
            };
            Ok((rep.summary, ran))
        }));
        self.reload();
    }

    /// Whether a sweep runs.
    pub fn running(&self) -> bool {
        self.run_job.is_some()
    }

    /// Progress of the running sweep in [0, 1].
    pub fn progress(&self) -> f32 {
        self.run_job.as_ref().map_or(0.0, Job::progress)
    }

    /// Asks the running sweep to stop after the trial in flight.
    pub fn cancel(&mut self) {
        if let Some(j) = &self.run_job {
            j.cancel();
        }
    }

    /// Collects finished jobs and schedules refreshes (call once per frame).
    pub fn poll(&mut self, ctx: &egui::Context) {
        match self.load_job.finished() {
            Some(Ok(l)) => {
                self.loaded = std::sync::Arc::new(l);
                self.fix_slice();
            }
            // While a run creates the store, a read can land before its schema; retry.
            Some(Err(_)) if self.run_job.is_some() => {}
            Some(Err(e)) => self.error = Some(format!("cannot read the results: {e}")),
            None => {}
        }
        if let Some(j) = &mut self.run_job {
            if let Some(r) = j.poll() {
                self.run_job = None;
                self.status = match r {
                    Ok((s, ran_on)) => {
                        self.engine.ran_on = ran_on;
                        format!(
                            "done: {} evaluated, {} reused, {} already stored, {} unreachable in {:.0} s",
                            s.evaluated, s.reused, s.already_done, s.unreachable, s.elapsed_secs
                        )
                    }
                    Err(crate::Error::Cancelled) => "cancelled; run again to resume".into(),
                    Err(e) => {
                        self.error = Some(format!("sweep failed: {e}"));
                        String::new()
                    }
                };
                self.reload();
            } else {
                let due = self
                    .last_load
                    .is_none_or(|t| t.elapsed().as_secs_f64() > REFRESH_SECS);
                if due {
                    self.reload();
                }
                ctx.request_repaint_after(std::time::Duration::from_secs_f64(REFRESH_SECS));
            }
        }
    }

    /// Picks a slice that exists in the data when the current one does not.
    fn fix_slice(&mut self) {
        let t = &self.loaded.trials;
        let exists = t.iter().any(|r| {
            r.granularity == self.slice.granularity
                && r.low == self.slice.low
                && r.qb == self.slice.qb
        });
        if !exists {
            // Layer-wise MXINT4 at its own block size when the store has it (the Laws view's
            // default slice too), else the first trial with Qr > 0.
            let preferred = t
                .iter()
                .find(|r| r.granularity == "layer" && r.low == "mxint4" && r.qr_target > 0.0);
            if let Some(r) = preferred
                .or_else(|| t.iter().find(|r| r.qr_target > 0.0))
                .or(t.first())
            {
                self.slice = Slice {
                    granularity: r.granularity.clone(),
                    low: r.low.clone(),
                    qb: r.qb.clone(),
                    metric: self.slice.metric,
                };
            }
        }
    }

    /// The per-configuration summaries as a table (exports).
    pub fn table(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let rows = self
            .loaded
            .summary
            .iter()
            .map(|c| {
                vec![
                    c.model.clone(),
                    c.granularity.clone(),
                    c.low.clone(),
                    c.high.clone(),
                    c.qb_spec.clone(),
                    c.qr_target.to_string(),
                    c.qr.to_string(),
                    c.n_trials.to_string(),
                    c.delta_loss.to_string(),
                    c.delta_nll_best.to_string(),
                ]
            })
            .collect();
        let h = vec![
            "model",
            "granularity",
            "low",
            "high",
            "qb",
            "qr_target",
            "qr",
            "trials",
            "delta_loss",
            "delta_nll_best",
        ];
        (h, rows)
    }

    /// The scatter on screen (exports).
    pub fn current_figure(&self) -> Figure {
        scatter_figure(&self.loaded, &self.slice)
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut Ui, commands: &mut Vec<super::Command>) {
        self.poll(ui.ctx());
        super::error_row(ui, &mut self.error);
        ui.horizontal(|ui| {
            ui.label(RichText::new("spec").strong());
            ui.label(self.spec_path.display().to_string());
            if self.spec_edited() {
                ui.label(RichText::new("(edited)").italics());
            }
            ui.separator();
            ui.label(RichText::new("results").strong());
            ui.label(self.results.display().to_string());
        });
        ui.horizontal(|ui| {
            let running = self.running().then(|| self.progress());
            match super::job_controls(ui, running, "Run / resume", "Cancel sweep") {
                super::JobAction::Start => self.start_run(),
                super::JobAction::Cancel => self.cancel(),
                super::JobAction::None => {}
            }
            if ui.button("Reload results").clicked() {
                self.reload();
            }
            ui.label(&self.status);
        });
        self.engine.ui(
            ui,
            "layer- and block-wise trials on the GPU, against a base reference computed there; \
             matmul-wise trials quantize activations and stay on the CPU",
        );
        egui::CollapsingHeader::new("Edit spec")
            .id_salt("spec editor")
            .show(ui, |ui| self.spec_editor(ui, commands));
        let l = &self.loaded;
        ui.label(format!(
            "{} trials over {} configurations and {} models",
            l.trials.len(),
            l.summary.len(),
            l.models.len()
        ));
        let grans = distinct(l.trials.iter().map(|t| t.granularity.clone()));
        let lows = distinct(l.trials.iter().map(|t| t.low.clone()));
        let mut qbs = distinct(l.trials.iter().map(|t| t.qb.clone()));
        qbs.sort_by_key(|q| q.parse::<u64>().unwrap_or(u64::MAX));
        ui.horizontal(|ui| {
            for (label, options, value) in [
                ("granularity", &grans, &mut self.slice.granularity),
                ("low format", &lows, &mut self.slice.low),
                ("Qb", &qbs, &mut self.slice.qb),
            ] {
                egui::ComboBox::from_label(label)
                    .selected_text(value.as_str())
                    .show_ui(ui, |ui| {
                        for o in options.iter() {
                            ui.selectable_value(value, o.clone(), o);
                        }
                    });
            }
            for m in Metric::ALL {
                ui.selectable_value(&mut self.slice.metric, m, metric_name(m))
                    .on_hover_text(
                        "per trial: ΔL = NLL(quantized) − NLL(base), or KL(base, quantized) per \
                         token (positive, and far less noisy at small degradations)",
                    );
            }
        });
        let h = ui.available_height();
        ui.columns(2, |cols| {
            scatter_figure(&self.loaded, &self.slice).show(&mut cols[0], Some(h));
            boxes_figure(&self.loaded, &self.slice).show(&mut cols[1], Some(h));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::sweep_spec::check_spec;
    use super::*;

    #[test]
    fn a_small_sweep_runs_as_a_job_and_its_figures_show_every_trial() {
        let dir = tempfile::tempdir().unwrap();
        let spec_path = dir.path().join("s.ron");
        let tiny = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny/llama");
        std::fs::write(
            &spec_path,
            format!(
                r#"SweepSpec(name: "t", models: ["{}"], granularities: [layer], low_formats: ["mxint4"],
                high_formats: ["bf16"], methods: ["rtn"], block_sizes: ["32"], qr: [0.5, 1.0], trials: 2,
                qr_tolerance: 0.5, seed: 0, eval: (data: "eval_austen", windows: 2, ctx: 16, seed: 0,
                resamples: 10, top_k: 4))"#,
                tiny.display()
            ),
        )
        .unwrap();
        let mut p = SweepPanel::new(SweepState::default(), crate::jobs::no_waker(), None);
        p.spec_path = spec_path;
        p.results = dir.path().join("r.sqlite");
        p.start_run();
        let ctx = egui::Context::default();
        crate::app::wait_for("the job", 120, || {
            p.poll(&ctx);
            p.running() || p.load_job.is_running()
        });
        assert!(p.error.is_none(), "{:?}", p.error);
        assert!(p.status.starts_with("done"), "{}", p.status);
        assert!(!p.loaded.trials.is_empty());
        let s = &p.slice;
        assert_eq!(
            (s.granularity.as_str(), s.low.as_str(), s.qb.as_str()),
            ("layer", "mxint4", "32")
        );
        let drawn: usize = scatter_figure(&p.loaded, s)
            .series
            .iter()
            .map(|x| x.points.len())
            .sum();
        let positive = p.loaded.trials.iter().filter(|t| t.delta_nll > 0.0).count();
        assert_eq!(drawn, positive);
        // The Hardware view's measured points: the all-low configurations with ΔL > 0.
        let full: Vec<&crate::search::export::ConfigSummary> = p
            .loaded
            .summary
            .iter()
            .filter(|c| c.qr_target >= 1.0 && c.delta_loss > 0.0)
            .collect();
        let m = super::super::hardware::measured_points(&p.loaded.summary);
        assert_eq!(m.map_or(0, |m| m.1.len()), full.len());
        let boxes = boxes_figure(&p.loaded, s);
        assert_eq!(boxes.series.len(), 3);
        // KL: every trial of the slice has a positive KL, so every one is drawn, and the
        // figures name it.
        let kl = Slice {
            metric: Metric::Kl,
            ..s.clone()
        };
        let f = scatter_figure(&p.loaded, &kl);
        let in_slice = p
            .loaded
            .trials
            .iter()
            .filter(|t| t.granularity == kl.granularity && t.low == kl.low && t.qb == kl.qb)
            .filter(|t| t.kl_mean > 0.0)
            .count();
        assert_eq!(
            f.series.iter().map(|x| x.points.len()).sum::<usize>(),
            in_slice
        );
        assert!(f.title.contains("KL") && boxes_figure(&p.loaded, &kl).title.contains("KL"));
        assert!(load_store(&dir.path().join("missing.sqlite")).is_err());

        // The editor: reads the spec, checks every edit, refuses to save an invalid one, runs
        // the edited text.
        p.read_spec();
        assert!(p
            .spec_check
            .as_ref()
            .is_ok_and(|n| n.contains("2 configurations")));
        assert!(!p.spec_edited());
        p.spec_text = p.spec_text.replace("qr: [0.5, 1.0]", "qr: [1.5]");
        p.spec_check = check_spec(&p.spec_text);
        assert!(
            p.spec_check.as_ref().is_err_and(|e| e.contains("Qr")),
            "{:?}",
            p.spec_check
        );
        assert!(p.save_spec(&dir.path().join("bad.ron")).is_err());
        assert!(!dir.path().join("bad.ron").exists());
        p.spec_text = p.spec_text.replace("qr: [1.5]", "qr: [1.0]");
        assert!(p.spec_edited());
        p.results = dir.path().join("r2.sqlite");
        p.start_run();
        crate::app::wait_for("the job", 240, || {
            p.poll(&ctx);
            p.running() || p.load_job.is_running()
        });
        assert!(p.status.starts_with("done"), "{} {:?}", p.status, p.error);
        assert_eq!(load_store(&p.results).unwrap().trials.len(), 1);
        p.save_spec(&dir.path().join("s2.ron")).unwrap();
        assert_eq!(p.spec_path, dir.path().join("s2.ron"));
        assert!(!p.spec_edited());
        assert!(std::fs::read_to_string(&p.spec_path)
            .unwrap()
            .contains("qr: [1.0]"));
    }
}
