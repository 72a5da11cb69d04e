//! The Landscape view: ΔL along the quantization direction u = W_q − W of the chosen checkpoint
//! (1-D, t = 0 the base model, t = 1 the quantized one), or over a 2-D plane with a second
//! direction (heatmap), computed as a job by [`crate::landscape`]; slices written by
//! `quantscape landscape` open here too.
//!
//! Markers: where other block sizes and formats land along u — the projection
//! t* = ⟨u_c, u⟩ / ‖u‖² of their own quantization error u_c — drawn on the curve, so one picture
//! shows how far each codec moves the weights in the direction that matters here.
//!
//! Hessian probe (a second job): top eigenvalue, trace and per-layer trace (bars), and along the
//! first direction the curvature uᵀHu/‖u‖² with the second-order ΔL prediction next to the
//! measured ΔL ([`crate::landscape::hessian::report`], 8 windows × 128 tokens).

use std::path::PathBuf;

use egui::{RichText, Ui};

use super::plots::{colour, Figure, Heat, Mark};
use crate::jobs::{JobSlot, Waker};
use crate::landscape::hessian::{report, HessianReport, HessianRequest, ProbeOptions};
use crate::landscape::{DirectionSpec, Request, SiteFilter, Slice};

/// Block sizes whose landing points are marked along a quant direction.
pub const MARK_QBS: [&str; 4] = ["16", "32", "64", "128"];

/// Other 4-bit formats (at their own block sizes) marked along a quant direction.
pub const MARK_FORMATS: [&str; 4] = ["mxfp4", "nvfp4", "mxint4", "int4_asym"];

/// Settings of a computation (saved with the session).
pub use crate::session::LandscapeSettings;

impl LandscapeSettings {
    /// The site restriction the two text fields spell.
    pub fn sites(&self) -> crate::Result<SiteFilter> {
        SiteFilter::parse(Some(&self.layers), Some(&self.kinds))
    }
}

/// Computes a slice of the checkpoint in `dir` on the bundled held-out split (128-token
/// windows, seed 0), marking where the quant direction's format lands at [`MARK_QBS`] and where
/// the other [`MARK_FORMATS`] land.
pub fn compute(
    dir: &std::path::Path,
    s: &LandscapeSettings,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> crate::Result<Slice> {
    let d2 = s.direction2.trim();
    let req = Request {
        direction1: s.direction.trim().to_string(),
        direction2: (!d2.is_empty()).then(|| d2.to_string()),
        range1: s.range,
        range2: s.range,
        grid: s.grid,
        data: "eval_austen".into(),
        windows: s.windows,
        ctx: 128,
        seed: 0,
        marks: MARK_QBS
            .iter()
            .chain(MARK_FORMATS.iter().filter(|f| !s.direction.contains(*f)))
            .map(|q| q.to_string())
            .collect(),
        sites: s.sites()?,
        refine_levels: 3,
    };
    crate::landscape::compute(dir, &req, progress)
}

/// ` (sites …)` when the slice covers only some sites, else empty.
fn sites_note(s: &Slice) -> String {
    if s.sites == "all" {
        String::new()
    } else {
        format!(" ({})", s.sites)
    }
}

/// The slice as a figure: ΔL against t (1-D, with markers) or a ΔL heatmap over (α, β).
pub fn slice_figure(s: &Slice) -> Figure {
    if s.beta.is_empty() {
        let mut f = Figure::new(
            "landscape_1d",
            &format!("ΔL along {}{}", s.direction1, sites_note(s)),
            if s.direction1.starts_with("quant") {
                "t (0 = trained weights, 1 = quantized along this direction)"
            } else {
                "t (0 = trained weights; W + t·d)"
            },
            "ΔL (nats/token)",
        );
        let pts: Vec<[f64; 2]> = s
            .alpha
            .iter()
            .zip(&s.values)
            .map(|(t, v)| [*t, v - s.nll_base])
            .collect();
        f.push("ΔL", Mark::Line(2.0), [240, 170, 60], pts.clone());
        f.push("evaluated", Mark::Dots(3.0), [240, 170, 60], pts.clone());
        for (i, (label, t)) in s.marks.iter().enumerate() {
            f.push(
                label,
                Mark::Dots(6.0),
                colour(i + 2),
                vec![[*t, interpolate(&pts, *t)]],
            );
        }
        return f;
    }
    let mut f = Figure::new(
        "landscape_2d",
        &format!(
            "ΔL over {} (α) × {} (β){}",
            s.direction1,
            s.direction2.clone().unwrap_or_default(),
            sites_note(s)
        ),
        "α",
        "β",
    );
    let (a0, a1) = (s.alpha[0], s.alpha[s.alpha.len() - 1]);
    let (b0, b1) = (s.beta[0], s.beta[s.beta.len() - 1]);
    // Resample onto an even grid (0 and 1 were inserted into the steps).
    let n = 64;
    let mut vals = Vec::with_capacity(n * n);
    for j in 0..n {
        let b = b0 + (b1 - b0) * (j as f64 + 0.5) / n as f64;
        for i in 0..n {
            let a = a0 + (a1 - a0) * (i as f64 + 0.5) / n as f64;
            vals.push(bilinear(s, a, b) - s.nll_base);
        }
    }
    let (lo, hi) = vals
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(x, y), v| {
            (x.min(*v), y.max(*v))
        });
    f.heat = Some(Heat {
        name: "ΔL".into(),
        values: vals,
        nx: n,
        origin: [a0, b0],
        size: [a1 - a0, b1 - b0],
        range: [lo, hi],
        log_values: false,
    });
    f.push(
        "trained weights",
        Mark::Dots(5.0),
        [255, 255, 255],
        vec![[0.0, 0.0]],
    );
    f.push(
        "quantized (α = 1)",
        Mark::Dots(5.0),
        [240, 90, 70],
        vec![[1.0, 0.0]],
    );
    f
}

/// Linear interpolation of a polyline sorted by x (clamped at the ends).
fn interpolate(pts: &[[f64; 2]], x: f64) -> f64 {
    match pts.iter().position(|p| p[0] >= x) {
        Some(0) => pts[0][1],
        Some(i) => {
            let (p, q) = (pts[i - 1], pts[i]);
            p[1] + (q[1] - p[1]) * (x - p[0]) / (q[0] - p[0]).max(1e-300)
        }
        None => pts.last().map_or(f64::NAN, |p| p[1]),
    }
}

fn bilinear(s: &Slice, a: f64, b: f64) -> f64 {
    let idx = |v: &[f64], x: f64| {
        let i = v.iter().position(|t| *t >= x).unwrap_or(v.len() - 1).max(1);
        let f = ((x - v[i - 1]) / (v[i] - v[i - 1]).max(1e-300)).clamp(0.0, 1.0);
        (i, f)
    };
    let (i, fa) = idx(&s.alpha, a);
    let (j, fb) = idx(&s.beta, b);
    let na = s.alpha.len();
    let at = |ii: usize, jj: usize| s.values[jj * na + ii];
    let lo = at(i - 1, j - 1) * (1.0 - fa) + at(i, j - 1) * fa;
    let hi = at(i - 1, j) * (1.0 - fa) + at(i, j) * fa;
    lo * (1.0 - fb) + hi * fb
}

/// The view's state.
pub struct LandscapePanel {
    /// Checkpoint folder.
    pub model_dir: Option<PathBuf>,
    /// Settings.
    pub settings: LandscapeSettings,
    /// Last result.
    pub result: Option<Slice>,
    job: JobSlot<Slice>,
    /// Last Hessian probe.
    pub hessian: Option<HessianReport>,
    hessian_job: JobSlot<HessianReport>,
    /// Last error.
    pub error: Option<String>,
    waker: Waker,
}

impl LandscapePanel {
    /// A panel restoring `settings` (MXFP4 Qb 32's direction, 1-D, by default).
    pub fn new(settings: LandscapeSettings, waker: Waker) -> Self {
        Self {
            model_dir: None,
            settings,
            result: None,
            job: JobSlot::default(),
            hessian: None,
            hessian_job: JobSlot::default(),
            error: None,
            waker,
        }
    }

    /// The choices a session saves.
    pub fn state(&self) -> LandscapeSettings {
        self.settings.clone()
    }

    /// Opens a slice written by `quantscape landscape`.
    pub fn open(&mut self, path: &std::path::Path) {
        let r = std::fs::read(path)
            .map_err(|e| crate::Error::io("read", path, e))
            .and_then(|b| {
                serde_json::from_slice::<Slice>(&b).map_err(|source| crate::Error::Json {
                    path: path.to_path_buf(),
                    source,
                })
            });
        match r {
            Ok(slice) if slice.values.len() == slice.alpha.len() * slice.beta.len().max(1) => {
                self.result = Some(slice);
            }
            Ok(_) => {
                self.error = Some(format!(
                    "{}: the grid and its values disagree in size",
                    path.display()
                ))
            }
            Err(e) => self.error = Some(format!("cannot open the slice: {e}")),
        }
    }

    /// Starts the computation.
    pub fn start(&mut self) {
        let Some(dir) = self.model_dir.clone() else {
            self.error = Some("choose a checkpoint first (Models view)".into());
            return;
        };
        if let Err(e) = DirectionSpec::parse(&self.settings.direction).and(self.settings.sites()) {
            self.error = Some(e.to_string());
            return;
        }
        let s = self.settings.clone();
        self.job.start("landscape", self.waker.clone(), move |ctx| {
            compute(&dir, &s, &mut |d, n| {
                ctx.set_progress(d, n);
                !ctx.cancelled()
            })
        });
    }

    /// Starts a Hessian probe along the first direction.
    pub fn start_hessian(&mut self) {
        let Some(dir) = self.model_dir.clone() else {
            self.error = Some("choose a checkpoint first (Models view)".into());
            return;
        };
        let direction = self.settings.direction.trim().to_string();
        let sites = match DirectionSpec::parse(&direction).and(self.settings.sites()) {
            Ok(sites) => sites,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        let req = HessianRequest {
            data: "eval_austen".into(),
            windows: 8,
            ctx: 128,
            direction: Some(direction),
            options: ProbeOptions {
                max_iter: 15,
                max_samples: 30,
                tol: 1e-2,
                ..ProbeOptions::default()
            },
            sites,
        };
        self.hessian_job
            .start("hessian", self.waker.clone(), move |ctx| {
                report(&dir, &req, &|d, n| {
                    ctx.set_progress(d, n);
                    !ctx.cancelled()
                })
            });
    }

    /// Per-layer Hessian trace as bars.
    pub fn hessian_figure(h: &HessianReport) -> Figure {
        let mut f = Figure::new(
            "hessian_trace",
            "Hessian trace per layer (Hutchinson)",
            "layer",
            "trace",
        );
        for (i, t) in h.trace_per_layer.iter().enumerate() {
            let (x, w) = (i as f64, 0.35);
            f.push(
                &format!("layer {i}"),
                Mark::Line(2.0),
                colour(0),
                vec![
                    [x - w, 0.0],
                    [x - w, *t],
                    [x + w, *t],
                    [x + w, 0.0],
                    [x - w, 0.0],
                ],
            );
        }
        f
    }

    /// Progress of a running computation.
    pub fn running(&self) -> Option<f32> {
        self.job.running()
    }

    /// Collects a finished computation.
    pub fn poll(&mut self) {
        match self.job.finished() {
            Some(Ok(c)) => self.result = Some(c),
            Some(Err(e)) => self.error = Some(format!("landscape failed: {e}")),
            None => {}
        }
        match self.hessian_job.finished() {
            Some(Ok(h)) => self.hessian = Some(h),
            Some(Err(e)) => self.error = Some(format!("Hessian probe failed: {e}")),
            None => {}
        }
    }

    /// The figure on screen.
    pub fn current_figure(&self) -> Option<Figure> {
        self.result.as_ref().map(slice_figure)
    }

    /// The slice's points as a table (exports): α, β (2-D), NLL and ΔL.
    pub fn table(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let mut rows = Vec::new();
        if let Some(s) = &self.result {
            for j in 0..s.beta.len().max(1) {
                for (i, a) in s.alpha.iter().enumerate() {
                    let v = s.values[j * s.alpha.len() + i];
                    rows.push(vec![
                        a.to_string(),
                        s.beta.get(j).map_or(String::new(), f64::to_string),
                        v.to_string(),
                        (v - s.nll_base).to_string(),
                    ]);
                }
            }
        }
        (vec!["alpha", "beta", "nll", "delta_nll"], rows)
    }

    /// The directions, range, grid and site restriction.
    fn settings_ui(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.label("direction");
            ui.add_sized(
                [200.0, 20.0],
                egui::TextEdit::singleline(&mut self.settings.direction),
            )
            .on_hover_text(
                "quant:FORMAT[:QB[:METHOD]] (u = W_q − W), random:SEED (filter-normalised) or \
                 hessian[:SEED] (top Hessian eigenvector, scaled to the weights' norm)",
            );
            ui.label("second direction");
            ui.add_sized(
                [120.0, 20.0],
                egui::TextEdit::singleline(&mut self.settings.direction2),
            )
            .on_hover_text("empty for a 1-D slice, e.g. random:0 for a 2-D map");
            ui.add(
                egui::DragValue::new(&mut self.settings.range.0)
                    .speed(0.1)
                    .prefix("from "),
            );
            ui.add(
                egui::DragValue::new(&mut self.settings.range.1)
                    .speed(0.1)
                    .prefix("to "),
            );
            ui.add(
                egui::DragValue::new(&mut self.settings.grid)
                    .range(2..=101)
                    .prefix("points "),
            );
            ui.add(
                egui::DragValue::new(&mut self.settings.windows)
                    .range(1..=512)
                    .prefix("windows "),
            );
        });
        ui.horizontal(|ui| {
            ui.label("layers");
            ui.add_sized(
                [80.0, 20.0],
                egui::TextEdit::singleline(&mut self.settings.layers),
            )
            .on_hover_text("only these transformer blocks, e.g. 0,2-3 (empty: all)");
            ui.label("kinds");
            ui.add_sized(
                [160.0, 20.0],
                egui::TextEdit::singleline(&mut self.settings.kinds),
            )
            .on_hover_text(
                "only these tensor kinds, e.g. q_proj,down_proj, or attention / mlp (empty: \
                 all); other weights stay trained",
            );
        });
    }

    /// Draws the view.
    pub fn ui(&mut self, ui: &mut Ui) {
        self.poll();
        super::error_row(ui, &mut self.error);
        super::checkpoint_row(ui, self.model_dir.as_deref());
        self.settings_ui(ui);
        ui.horizontal(|ui| {
            match super::job_controls(ui, self.running(), "Compute", "Cancel landscape") {
                super::JobAction::Start => self.start(),
                super::JobAction::Cancel => {
                    self.job.cancel();
                }
                super::JobAction::None => {}
            }
            match super::job_controls(
                ui,
                self.hessian_job.running(),
                "Hessian probe",
                "Cancel Hessian probe",
            ) {
                super::JobAction::Start => self.start_hessian(),
                super::JobAction::Cancel => self.hessian_job.cancel(),
                super::JobAction::None => {}
            }
            if let Some(s) = &self.result {
                ui.label(
                    RichText::new(format!(
                        "base NLL {:.4} on {} windows × {} tokens; |d| = {}",
                        s.nll_base,
                        s.n_windows,
                        s.ctx,
                        s.norms
                            .iter()
                            .map(|n| format!("{n:.3e}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .small(),
                );
            }
        });
        if let Some(h) = &self.hessian {
            let p = &h.probe;
            let mut line = format!(
                "Hessian: top λ {:.4e}, trace {:.4e} ({} windows × {} tokens, step error {:.1e})",
                p.top_eigenvalue, p.trace, h.windows, h.ctx, p.hvp_rel_error
            );
            if let Some(a) = &h.along {
                line.push_str(&format!(
                    "; along {}: curvature u·Hu/|u|² {:.3e}, ΔL predicted {:+.5} vs measured {:+.5}",
                    a.direction, a.curvature, a.predicted_delta_l, a.measured_delta_l
                ));
            }
            ui.label(RichText::new(line).small());
        }
        if let Some(f) = self.current_figure() {
            match &self.hessian {
                Some(h) => {
                    ui.columns(2, |cols| {
                        f.show(&mut cols[0], None);
                        Self::hessian_figure(h).show(&mut cols[1], None);
                    });
                }
                None => f.show(ui, None),
            }
        } else if let Some(h) = &self.hessian {
            Self::hessian_figure(h).show(ui, None);
        } else {
            ui.label("Compute a slice, or open one written by `quantscape landscape` (File > Open points).");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_a_1d_slice_with_markers_and_a_2d_map() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny/llama");
        let mut s = LandscapeSettings {
            direction: "quant:mxint4:32".into(),
            direction2: String::new(),
            range: (-1.0, 2.0),
            grid: 4,
            windows: 2,
            layers: String::new(),
            kinds: String::new(),
        };
        let c = compute(&dir, &s, &mut |_, _| true).unwrap();
        assert_eq!(c.sites, "all");
        assert_eq!(c.values.len(), c.alpha.len());
        // The direction's own block size lands at t = 1 exactly.
        let own = c.marks.iter().find(|m| m.0 == "mxint4 Qb 32").unwrap();
        assert!(
            c.marks.iter().any(|m| m.0 == "mxint4 Qb 128"),
            "{:?}",
            c.marks
        );
        assert!((own.1 - 1.0).abs() < 1e-9, "{own:?}");
        let f = slice_figure(&c);
        // mxint4 is the direction itself: three other formats.
        assert_eq!(f.series.len(), 2 + MARK_QBS.len() + 3);
        assert!(
            c.marks.iter().any(|m| m.0 == "nvfp4 Qb 16"),
            "{:?}",
            c.marks
        );
        s.direction2 = "random:1".into();
        s.grid = 3;
        let c2 = compute(&dir, &s, &mut |_, _| true).unwrap();
        assert_eq!(c2.values.len(), c2.alpha.len() * c2.beta.len());
        let f2 = slice_figure(&c2);
        let h = f2.heat.unwrap();
        assert!(h.values.iter().all(|v| v.is_finite()));
        assert!(interpolate(&[[0.0, 0.0], [2.0, 4.0]], 1.0) == 2.0);
        // Restricted to block 1's MLP: a different, smaller direction.
        s.layers = "1".into();
        s.kinds = "mlp".into();
        let c3 = compute(&dir, &s, &mut |_, _| true).unwrap();
        assert_eq!(c3.sites, "layers 1 · kinds mlp");
        assert!(c3.norms[0] < c2.norms[0]);
        s.kinds = "nonsense".into();
        assert!(compute(&dir, &s, &mut |_, _| true).is_err());
        s.kinds.clear();
        s.direction = "sideways".into();
        assert!(compute(&dir, &s, &mut |_, _| true).is_err());
    }

    #[test]
    fn runs_a_hessian_probe_as_a_job() {
        let mut p = LandscapePanel::new(LandscapeSettings::default(), crate::jobs::no_waker());
        p.model_dir =
            Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny/llama"));
        p.settings.direction = "quant:int4_asym:32".into();
        p.start_hessian();
        crate::app::wait_for("the job", 120, || {
            p.poll();
            p.hessian_job.running().is_some()
        });
        p.poll();
        assert!(p.error.is_none(), "{:?}", p.error);
        let h = p.hessian.as_ref().unwrap();
        assert!(h.probe.top_eigenvalue.is_finite());
        let a = h.along.as_ref().unwrap();
        assert!(a.measured_delta_l.is_finite() && a.curvature.is_finite());
        let f = LandscapePanel::hessian_figure(h);
        assert_eq!(f.series.len(), h.trace_per_layer.len());
    }
}
