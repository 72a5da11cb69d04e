//! The Models view: the bundled families (run, architecture, N, D, train/eval loss, and the
//! held-out loss against N per token budget), and the tensors of one checkpoint (shape, dtype,
//! statistics, quantizable or not) with a histogram of the selected tensor's weights.
//!
//! Reading a checkpoint and computing statistics runs as a job; the table shows when it lands.
//! Units: losses in nats/token; N non-embedding parameters; D tokens seen in training.

use std::path::{Path, PathBuf};

use egui::{RichText, Ui};

use super::plots::{colour, human, Figure, Mark};
use super::session::ModelsState;
use crate::jobs::{JobSlot, Waker};
use crate::model::checkpoint::Checkpoint;
use crate::model::sites::quantizable;
use crate::train::report::{read_curves, Curves};
use crate::train::RunReport;

/// Histogram bins of a tensor's values.
pub use crate::tasks::quantize::HIST_BINS;

/// One bundled run (from its `train.json`).
#[derive(Clone, Debug)]
pub struct FamilyRow {
    /// Checkpoint folder.
    pub dir: PathBuf,
    /// The run's report.
    pub report: RunReport,
    /// Architecture from config.json.
    pub architecture: String,
    /// Its loss curves (None when the CSV files are missing or malformed).
    pub curves: Option<Curves>,
}

/// Every bundled run under `root` (folders with a `train.json`), sorted by family, N, D.
pub fn scan_families(root: &Path) -> Vec<FamilyRow> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut rows: Vec<FamilyRow> = entries
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            let report = RunReport::read(&dir.join("train.json")).ok()?;
            let architecture = crate::model::config::ArchConfig::load(&dir)
                .map(|c| c.architecture)
                .unwrap_or_default();
            let curves = read_curves(&dir).ok();
            Some(FamilyRow {
                dir,
                report,
                architecture,
                curves,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (
            &a.report.family,
            a.report.n_params_non_embedding,
            a.report.budget_tokens,
        )
            .cmp(&(
                &b.report.family,
                b.report.n_params_non_embedding,
                b.report.budget_tokens,
            ))
    });
    rows
}

/// Held-out (`eval_austen`) loss against N, one line per family and token budget.
pub fn family_figure(rows: &[FamilyRow]) -> Figure {
    let mut f = Figure::new(
        "family_loss",
        "Bundled families: held-out loss against model size",
        "N (non-embedding parameters)",
        "eval loss (nats/token, Persuasion)",
    );
    f.x_log = true;
    // Losses fall with N: the top right is empty, the bottom right is where the lines end.
    f.legend_top = true;
    let mut keys: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (r.report.family.clone(), r.report.budget_tokens))
        .collect();
    // Rows come sorted by family, N, D: the keys repeat per size.
    keys.sort();
    keys.dedup();
    for (i, (fam, d)) in keys.iter().enumerate() {
        let pts: Vec<[f64; 2]> = rows
            .iter()
            .filter(|r| &r.report.family == fam && r.report.budget_tokens == *d)
            .filter_map(|r| {
                Some([
                    (r.report.n_params_non_embedding as f64).log10(),
                    r.report.final_loss("eval_austen")?,
                ])
            })
            .collect();
        f.push(
            &format!("{fam} D = {}", human(*d as f64)),
            Mark::Line(2.0),
            colour(i),
            pts,
        );
    }
    f
}

/// Steps of the exponential moving average that smooths the training-batch loss.
pub const SMOOTH_STEPS: f64 = 20.0;

/// Loss curves of every size of `family` at `budget_tokens`: the training-batch loss (EMA over
/// [`SMOOTH_STEPS`] steps, thin) and the held-out probes on *Persuasion* (thick), one colour per
/// size, against tokens seen (log axis).
pub fn curves_figure(rows: &[FamilyRow], family: &str, budget_tokens: u64) -> Figure {
    let mut f = Figure::new(
        "training_curves",
        &format!(
            "{family} at D = {}: training batches (thin, EMA) and held-out Persuasion (thick)",
            human(budget_tokens as f64)
        ),
        "tokens seen",
        "loss (nats/token)",
    );
    f.x_log = true;
    f.legend_top = true;
    let runs = rows
        .iter()
        .filter(|r| r.report.family == family && r.report.budget_tokens == budget_tokens);
    for (i, r) in runs.enumerate() {
        let Some(c) = &r.curves else { continue };
        let name = format!(
            "{} (N = {})",
            r.report.size,
            human(r.report.n_params_non_embedding as f64)
        );
        let alpha = 1.0 / SMOOTH_STEPS;
        let mut ema = None;
        let smooth = c
            .train_batches
            .iter()
            .filter(|p| p[0] > 0.0)
            .map(|p| {
                let v = ema.map_or(p[1], |e: f64| e + alpha * (p[1] - e));
                ema = Some(v);
                [p[0].log10(), v]
            })
            .collect();
        f.push(&name, Mark::Line(1.0), colour(i), smooth);
        if let Some(p) = c.probe(crate::train::report::EVAL_SPLIT) {
            let pts = p
                .iter()
                .filter(|p| p[0] > 0.0)
                .map(|p| [p[0].log10(), p[1]])
                .collect();
            f.push(&name, Mark::Line(2.5), colour(i), pts);
        }
    }
    f
}

/// Statistics of one tensor.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Stored dtype.
    pub dtype: String,
    /// Whether quantscape quantizes it.
    pub quantizable: bool,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Largest |w|.
    pub absmax: f64,
    /// Excess kurtosis (outlier-heaviness; 0 for a Gaussian).
    pub kurtosis: f64,
    /// Counts over [−absmax, absmax] in [`HIST_BINS`] bins.
    pub histogram: Vec<u64>,
}

/// Statistics of `values`.
pub fn tensor_stats(
    name: &str,
    shape: &[usize],
    dtype: &str,
    quant: bool,
    values: &[f32],
) -> TensorInfo {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
    let (m2, m4) = values.iter().fold((0.0, 0.0), |(a, b), v| {
        let d = f64::from(*v) - mean;
        (a + d * d, b + d * d * d * d)
    });
    let var = m2 / n;
    let (histogram, absmax) = crate::tasks::quantize::histogram(values);
    TensorInfo {
        name: name.into(),
        shape: shape.to_vec(),
        dtype: dtype.into(),
        quantizable: quant,
        mean,
        std: var.sqrt(),
        absmax,
        kurtosis: if var > 0.0 {
            m4 / n / (var * var) - 3.0
        } else {
            0.0
        },
        histogram,
    }
}

/// Reads every tensor of the checkpoint in `dir` and computes its statistics.
pub fn read_tensors(dir: &Path) -> crate::Result<Vec<TensorInfo>> {
    let ck = Checkpoint::open(dir)?;
    let model_type = ck.model_type();
    let mut out = Vec::new();
    for (name, e) in &ck.tensors {
        let values = ck.read_f32(name)?;
        let q = quantizable(&model_type, name, &e.shape).is_some();
        out.push(tensor_stats(name, &e.shape, &e.dtype.name(), q, &values));
    }
    Ok(out)
}

/// The histogram of one tensor as a step line.
pub fn histogram_figure(t: &TensorInfo) -> Figure {
    let mut f = Figure::new(
        "tensor_histogram",
        &format!("{}: weight histogram", t.name),
        "weight value",
        "count",
    );
    let w = 2.0 * t.absmax / HIST_BINS as f64;
    let mut pts = Vec::with_capacity(2 * HIST_BINS);
    for (i, c) in t.histogram.iter().enumerate() {
        let x0 = -t.absmax + w * i as f64;
        pts.push([x0, *c as f64]);
        pts.push([x0 + w, *c as f64]);
    }
    f.push(&t.name, Mark::Line(1.5), [90, 160, 240], pts);
    f
}

/// The bundled runs and the Hugging Face cache's models (`org/name`, folder).
type Scanned = (Vec<FamilyRow>, Vec<(String, PathBuf)>);

/// The view's state.
pub struct ModelsPanel {
    /// Saved choices.
    pub st: ModelsState,
    /// Bundled runs.
    pub families: Vec<FamilyRow>,
    /// Models in the Hugging Face cache: (`org/name`, folder).
    pub cached: Vec<(String, PathBuf)>,
    /// Tensors of the selected checkpoint.
    pub tensors: Vec<TensorInfo>,
    job: JobSlot<Vec<TensorInfo>>,
    scan: JobSlot<Scanned>,
    /// Last error.
    pub error: Option<String>,
    waker: Waker,
}

impl ModelsPanel {
    /// A panel on the bundled families, reloading the saved selection.
    pub fn new(st: ModelsState, waker: Waker) -> Self {
        let mut p = Self {
            st,
            families: Vec::new(),
            cached: Vec::new(),
            tensors: Vec::new(),
            job: JobSlot::default(),
            scan: JobSlot::default(),
            error: None,
            waker,
        };
        // Reading every bundled run and listing the Hugging Face cache touch many files: a job.
        p.scan.start("scan models", p.waker.clone(), move |_| {
            let families = scan_families(&crate::search::runner::bundled_models_dir());
            let cached = crate::model::hub::cache_root()
                .map(|r| crate::model::hub::list_cached(&r))
                .unwrap_or_default();
            Ok((families, cached))
        });
        if let Some(dir) = p.st.selected.clone() {
            p.open(PathBuf::from(dir));
        }
        p
    }

    /// Loads a checkpoint folder's tensors in the background.
    pub fn open(&mut self, dir: PathBuf) {
        self.st.selected = Some(dir.display().to_string());
        self.tensors.clear();
        self.job.start(
            format!("read {}", dir.display()),
            self.waker.clone(),
            move |ctx| {
                ctx.check()?;
                read_tensors(&dir)
            },
        );
    }

    /// Whether a checkpoint is being read.
    pub fn loading(&self) -> bool {
        self.job.is_running()
    }

    /// The checkpoint chosen here, else the largest bundled run (what Quantize, Evaluate and
    /// Landscape work on).
    pub fn chosen(&self) -> Option<PathBuf> {
        self.st.selected.as_ref().map(PathBuf::from).or_else(|| {
            self.families
                .iter()
                .max_by_key(|f| f.report.n_params_non_embedding)
                .map(|f| f.dir.clone())
        })
    }

    /// Whether the bundled runs and the cache are still being listed.
    pub fn scanning(&self) -> bool {
        self.scan.is_running()
    }

    /// Collects a finished read.
    pub fn poll(&mut self) {
        match self.scan.finished() {
            Some(Ok((families, cached))) => {
                self.families = families;
                self.cached = cached;
            }
            Some(Err(e)) => self.error = Some(format!("cannot list the models: {e}")),
            None => {}
        }
        match self.job.finished() {
            Some(Ok(t)) => self.tensors = t,
            Some(Err(e)) => self.error = Some(format!("cannot read the checkpoint: {e}")),
            None => {}
        }
    }

    /// The family table as (header, rows) for display and CSV export.
    pub fn family_table(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let header = vec![
            "run",
            "architecture",
            "N",
            "N total",
            "D",
            "train",
            "eval Austen",
            "eval KJV",
        ];
        let f = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3}"));
        let rows = self
            .families
            .iter()
            .map(|r| {
                vec![
                    r.report.run.clone(),
                    r.architecture.clone(),
                    r.report.n_params_non_embedding.to_string(),
                    r.report.n_params_total.to_string(),
                    r.report.budget_tokens.to_string(),
                    f(r.report.final_loss("train")),
                    f(r.report.final_loss("eval_austen")),
                    f(r.report.final_loss("eval_kjv")),
                ]
            })
            .collect();
        (header, rows)
    }

    /// The tensor table as (header, rows).
    pub fn tensor_table(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let header = vec![
            "tensor",
            "shape",
            "dtype",
            "quantized",
            "std",
            "absmax",
            "kurtosis",
        ];
        let rows = self
            .tensors
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    format!("{:?}", t.shape),
                    t.dtype.clone(),
                    if t.quantizable { "yes" } else { "no" }.into(),
                    format!("{:.4}", t.std),
                    format!("{:.4}", t.absmax),
                    format!("{:.2}", t.kurtosis),
                ]
            })
            .collect();
        (header, rows)
    }

    /// The figure on screen: the selected tensor's histogram; else, with a bundled run
    /// selected, the training curves of its family at its budget; else the loss against N.
    pub fn current_figure(&self) -> Figure {
        let sel = self.st.tensor.as_ref();
        if let Some(t) = self.tensors.iter().find(|t| Some(&t.name) == sel) {
            return histogram_figure(t);
        }
        let run = self
            .families
            .iter()
            .find(|r| Some(r.dir.display().to_string()) == self.st.selected && r.curves.is_some());
        match run {
            Some(r) => curves_figure(&self.families, &r.report.family, r.report.budget_tokens),
            None => family_figure(&self.families),
        }
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.poll();
        super::error_row(ui, &mut self.error);
        ui.heading("Bundled families");
        let (header, rows) = self.family_table();
        let mut open = None;
        egui::ScrollArea::vertical()
            .id_salt("families")
            .max_height(ui.available_height() * 0.35)
            .show(ui, |ui| {
                let selected = self.st.selected.clone();
                let families = &self.families;
                let on =
                    |r: usize| families.get(r).map(|f| f.dir.display().to_string()) == selected;
                let how = super::table::Interact {
                    row_on: Some(&on),
                    ..Default::default()
                };
                let c = super::table::table_ui(ui, "family_table", &header, &rows, &how);
                if let Some(f) = c.row.and_then(|r| families.get(r)) {
                    open = Some(f.dir.clone());
                }
            });
        egui::CollapsingHeader::new(format!("Hugging Face cache ({} models)", self.cached.len()))
            .show(ui, |ui| {
                if self.cached.is_empty() {
                    ui.label("No models in the local cache (HF_HUB_CACHE, HF_HOME or ~/.cache/huggingface/hub); quantscape never downloads.");
                }
                for (spec, dir) in &self.cached {
                    if ui.selectable_label(self.st.selected.as_deref() == Some(&dir.display().to_string()), spec).clicked() {
                        open = Some(dir.clone());
                    }
                }
            });
        if let Some(d) = open {
            self.open(d);
        }
        ui.separator();
        ui.columns(2, |cols| {
            self.tensors_ui(&mut cols[0]);
            self.current_figure().show(&mut cols[1], None);
        });
    }

    fn tensors_ui(&mut self, ui: &mut Ui) {
        match (&self.st.selected, self.loading()) {
            (_, true) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("reading tensors…");
                });
            }
            (None, false) => {
                ui.label("Select a run above (or open a checkpoint folder) to list its tensors.");
            }
            (Some(dir), false) => {
                ui.label(RichText::new(dir.as_str()).small());
            }
        }
        let (header, rows) = self.tensor_table();
        egui::ScrollArea::both().id_salt("tensors").show(ui, |ui| {
            let chosen = self.st.tensor.clone();
            let on = |r: usize| rows.get(r).map(|row| &row[0]) == chosen.as_ref();
            let how = super::table::Interact {
                row_on: Some(&on),
                ..Default::default()
            };
            let c = super::table::table_ui(ui, "tensor_table", &header, &rows, &how);
            if let Some(name) = c.row.and_then(|r| rows.get(r)).map(|row| row[0].clone()) {
                self.st.tensor = if chosen.as_ref() == Some(&name) {
                    None
                } else {
                    Some(name)
                };
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_families_and_tensor_statistics() {
        let rows = scan_families(&crate::search::runner::bundled_models_dir());
        assert!(rows.len() >= 3, "bundled runs: {}", rows.len());
        assert!(rows
            .iter()
            .all(|r| r.report.final_loss("eval_austen").is_some_and(|l| l > 0.0)));
        let f = family_figure(&rows);
        assert!(f.series.iter().all(|s| !s.points.is_empty()));
        let mut keys: Vec<_> = rows
            .iter()
            .map(|r| (&r.report.family, r.report.budget_tokens))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(f.series.len(), keys.len(), "one line per family and budget");
        let c = curves_figure(&rows, "qs-llama", 2_000_000);
        let sizes = rows
            .iter()
            .filter(|r| r.report.family == "qs-llama" && r.report.budget_tokens == 2_000_000)
            .count();
        assert!(sizes >= 3);
        assert_eq!(
            c.series.len(),
            2 * sizes,
            "a smoothed and a held-out line per size"
        );
        for s in &c.series {
            assert!(
                s.points.len() >= 10 && s.points.iter().all(|p| p[0].is_finite() && p[1] > 0.0)
            );
        }
        // The EMA starts at the first batch's loss and stays inside the batches' range.
        let first = rows.iter().find(|r| r.report.family == "qs-llama").unwrap();
        let batches = &first.curves.as_ref().unwrap().train_batches;
        let (lo, hi) = batches
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
        let smooth = &curves_figure(&rows, "qs-llama", first.report.budget_tokens).series[0];
        assert_eq!(smooth.points[0][1], batches[0][1]);
        assert!(smooth.points.iter().all(|p| p[1] >= lo && p[1] <= hi));
        let t = tensor_stats("w", &[2, 2], "f32", true, &[-1.0, 1.0, -1.0, 1.0]);
        assert_eq!((t.mean, t.std, t.absmax, t.kurtosis), (0.0, 1.0, 1.0, -2.0));
        assert_eq!(t.histogram.iter().sum::<u64>(), 4);
        assert_eq!((t.histogram[0], t.histogram[HIST_BINS - 1]), (2, 2));
        let tensors = read_tensors(&rows[0].dir).unwrap();
        assert!(tensors.iter().any(|t| t.quantizable) && tensors.iter().any(|t| !t.quantizable));
        assert!(read_tensors(Path::new("/nonexistent")).is_err());
    }
}
