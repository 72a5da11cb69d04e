//! The standard figures of a results store, for a report written without a display
//! (`quantscape figures`), built by the same code as the explorer's views:
//!
//! | id | figure |
//! |---|---|
//! | `delta_vs_qr` | ΔL against achieved Qr per model (N), one slice and Qb |
//! | `delta_vs_qb` | ΔL against Qb per low format, the largest model at the largest Qr |
//! | `delta_vs_n` | ΔL against N per low format at the largest Qr and the slice's Qb |
//! | `sweep_trials` | every trial of the slice (the Sweep view's scatter) |
//! | `law_map` | the fitted law over N × Qr at the slice's Qb: heatmap, isolines, points |
//! | `measured_vs_predicted` | the fit's residual plot |
//! | `pareto` | bits per weight vs predicted ΔL of every format × Qb (the Hardware view) |
//! | `scale_overhead` | scale/zero-point bits per weight against Qb |
//!
//! Points are configuration means over trials (the store's `delta_loss`) with 95 % intervals
//! (± 1.96 SE of the mean, trial and window noise both); every title names the statistic, the
//! slice, the format and the block size. ΔL in nats/token, log axes. A figure whose data is
//! missing from the store (no Qb variation, no ε for the Pareto table) is left out with the
//! reason, never drawn empty.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::laws::{default_family, default_slice, map_figure, residual_figure, MapSlice};
use super::{colour, human, Figure, Mark};
use crate::jobs::JobCtx;
use crate::laws::data::StoreSlice;
use crate::laws::Var;
use crate::search::export::{read_store, ConfigSummary, StoreContents};
use crate::search::spec::Metric;
use crate::session::Plane;
use crate::tasks::fit::{FitData, FitRequest, LawSpec};
use crate::tasks::pareto::{self, ParetoRequest};
use crate::Result;

/// What to draw.
#[derive(Clone, Debug)]
pub struct GalleryRequest {
    /// The results store.
    pub store: PathBuf,
    /// Reference model of the Pareto figure's ε (None: as `quantscape pareto`).
    pub reference: Option<String>,
    /// Target N of the Pareto figure (None: the store's largest model).
    pub target_n: Option<f64>,
    /// Bootstrap resamples of the fits.
    pub bootstrap: usize,
}

impl GalleryRequest {
    /// Defaults for `store`.
    pub fn new(store: PathBuf) -> Self {
        Self {
            store,
            reference: None,
            target_n: None,
            bootstrap: 200,
        }
    }
}

/// The figures drawn and the ones left out (id, reason).
#[derive(Clone, Debug, Default)]
pub struct Gallery {
    /// Figures, in the table's order.
    pub figures: Vec<Figure>,
    /// Figures left out and why.
    pub skipped: Vec<(String, String)>,
}

/// The preferred Qb of a slice: 32 when measured, else the most common.
fn slice_qb(rows: &[&ConfigSummary]) -> Option<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for c in rows.iter().filter(|c| c.qb.is_finite()) {
        *count.entry(c.qb_spec.as_str()).or_default() += 1;
    }
    if count.contains_key("32") {
        return Some("32".into());
    }
    count
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(q, _)| q.to_string())
}

/// Models of the selection by N (ascending).
fn models_by_n(rows: &[&ConfigSummary]) -> Vec<(String, f64)> {
    let mut m: Vec<(String, f64)> = rows
        .iter()
        .map(|c| (c.model.clone(), c.n_params.unwrap_or(0) as f64))
        .collect();
    m.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    m.dedup();
    m
}

/// A mean with its 95 % interval as dots and whiskers on a log-y axis, appended to `f`.
fn push_means(f: &mut Figure, name: &str, rgb: [u8; 3], pts: &[(f64, &ConfigSummary)]) {
    let mut dots = Vec::new();
    let mut whiskers = Vec::new();
    let mut line = Vec::new();
    for (x, c) in pts {
        if !(c.delta_loss > 0.0 && x.is_finite()) {
            continue;
        }
        let y = c.delta_loss.log10();
        dots.push([*x, y]);
        line.push([*x, y]);
        let half = 1.96 * c.delta_loss_se;
        if half.is_finite() && half > 0.0 {
            let lo = c.delta_loss - half;
            let lo = if lo > 0.0 { lo.log10() } else { y - 1.0 };
            whiskers.extend([[*x, lo], [*x, (c.delta_loss + half).log10()], [f64::NAN; 2]]);
        }
    }
    f.push(name, Mark::Line(1.5), rgb, line);
    f.push(name, Mark::Line(1.0), rgb, whiskers);
    f.push(name, Mark::Dots(3.5), rgb, dots);
}

/// Draws the gallery (stages `read`, `fit`, `pareto`).
pub fn gallery(req: &GalleryRequest, ctx: &JobCtx) -> Result<Gallery> {
    ctx.report("read", 0, 1);
    let contents = read_store(&req.store)?;
    let summary = &contents.summary;
    let slice = default_slice(summary).ok_or_else(|| {
        crate::Error::Input(format!(
            "{} holds no finished configuration to draw",
            req.store.display()
        ))
    })?;
    let families = super::laws::store_families(summary);
    let family = default_family(summary, &families, &slice);
    let in_sel = |c: &&ConfigSummary| {
        StoreSlice::of(c) == slice
            && family
                .as_deref()
                .is_none_or(|f| super::laws::family_of(c) == f)
    };
    let sel: Vec<&ConfigSummary> = summary.iter().filter(in_sel).collect();
    let qb = slice_qb(&sel).unwrap_or_else(|| "32".into());
    let label = super::laws::selection_label(&slice, family.as_deref());
    let stat = "mean over trials ± 95 % CI";
    let mut out = Gallery::default();
    ctx.report("read", 1, 1);

    // ΔL vs Qr per N.
    let mut f = Figure::new(
        "delta_vs_qr",
        &format!("ΔL vs Qr per model · {label} · Qb {qb} ({stat})"),
        "achieved Qr (low-precision fraction)",
        "ΔL (nats/token)",
    );
    f.y_log = true;
    let models = models_by_n(&sel);
    for (i, (model, n)) in models.iter().enumerate() {
        let mut pts: Vec<(f64, &ConfigSummary)> = sel
            .iter()
            .filter(|c| &c.model == model && c.qb_spec == qb)
            .map(|c| (c.qr, *c))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        push_means(
            &mut f,
            &format!("N = {}", human(*n)),
            super::sequential(i, models.len()),
            &pts,
        );
    }
    out.figures.push(f);

    let big_n = format_figures(summary, &slice, family.as_deref(), &qb, stat, &mut out);

    // Every trial of the slice (the Sweep view's figure).
    let mut f = super::sweep::scatter_figure(
        &StoreContents {
            trials: contents
                .trials
                .iter()
                .filter(|t| {
                    family.is_none()
                        || contents.models.iter().any(|m| {
                            m.model == t.model && Some(m.architecture.as_str()) == family.as_deref()
                        })
                })
                .cloned()
                .collect(),
            ..contents.clone()
        },
        &super::sweep::Slice {
            granularity: slice.granularity.clone(),
            low: slice.low.clone(),
            qb: qb.clone(),
            metric: Metric::DeltaNll,
        },
    );
    f.id = "sweep_trials".into();
    f.title = format!("ΔL of every trial · {label} · Qb {qb}");
    out.figures.push(f);

    fit_figures(req, &slice, family.as_deref(), &label, &qb, ctx, &mut out)?;
    pareto_figures(req, big_n, ctx, &mut out)?;
    Ok(out)
}

/// The unified law fitted to the slice: its map over N × Qr at the slice's Qb and the
/// measured-versus-predicted plot (a failed fit is left out with its reason).
fn fit_figures(
    req: &GalleryRequest,
    slice: &StoreSlice,
    family: Option<&str>,
    label: &str,
    qb: &str,
    ctx: &JobCtx,
    out: &mut Gallery,
) -> Result<()> {
    // The unified law fitted to the slice, mapped over N × Qr at the slice's Qb.
    ctx.check()?;
    ctx.report("fit", 0, 1);
    let mut fit_req = FitRequest::new(
        FitData::Path {
            path: req.store.clone(),
            filters: slice.filters(family),
            target: None,
        },
        LawSpec::Builtin("unified-strong".into()),
    );
    fit_req.bootstrap = req.bootstrap;
    match crate::tasks::fit::run(&fit_req, ctx) {
        Ok(fit) => {
            let sizes: Vec<f64> = {
                let mut s: Vec<f64> = fit.data.rows.iter().map(|r| r[Var::N.index()]).collect();
                s.sort_by(f64::total_cmp);
                s.dedup();
                s
            };
            let mut residuals = vec![None; fit.data.rows.len()];
            for r in &fit.report.residuals {
                if let Some(slot) = residuals.get_mut(r.index) {
                    *slot = Some(r.residual);
                }
            }
            let params: Vec<f64> = fit.report.params.iter().map(|p| p.value).collect();
            let qb_value: f64 = qb.parse().unwrap_or(32.0);
            let mut map = map_figure(
                &fit.law,
                &params,
                MapSlice {
                    plane: Plane::NQr,
                    third_value: qb_value,
                    grid_n: super::laws::GRID_N,
                },
                &fit.data,
                &residuals,
                &sizes,
            )?;
            map.title = format!(
                "{} fitted · {label} · Qb {qb} · R² (log) {:.3} · mean over trials{}",
                fit.law.id,
                fit.report.r2_log,
                at_bound_note(&fit.report)
            );
            map.id = "law_map".into();
            out.figures.push(map);
            let mut res = residual_figure(&fit.report);
            res.id = "measured_vs_predicted".into();
            res.title = format!("{} · {label}: measured vs predicted ΔL", fit.law.id);
            out.figures.push(res);
        }
        Err(crate::Error::Cancelled) => return Err(crate::Error::Cancelled),
        Err(e) => {
            out.skipped
                .push(("law_map".into(), format!("the fit failed: {e}")));
        }
    }
    ctx.report("fit", 1, 1);
    Ok(())
}

/// The format-aware law's Pareto front (ε on a reference checkpoint) and the scale overheads.
fn pareto_figures(req: &GalleryRequest, big_n: f64, ctx: &JobCtx, out: &mut Gallery) -> Result<()> {
    // The Pareto front of the format-aware law (ε on a reference checkpoint).
    ctx.check()?;
    let mut p_req = ParetoRequest::new(req.store.clone());
    p_req.reference = req.reference.clone();
    p_req.bootstrap = req.bootstrap;
    let target_n = req
        .target_n
        .unwrap_or(if big_n > 0.0 { big_n } else { 1e6 });
    match pareto::run(&p_req, target_n, 1.0, ctx) {
        Ok(r) => {
            let mut f = super::hardware::tradeoff_figure(&r, None);
            f.id = "pareto".into();
            out.figures.push(f);
        }
        Err(crate::Error::Cancelled) => return Err(crate::Error::Cancelled),
        Err(e) => out.skipped.push(("pareto".into(), e.to_string())),
    }
    let mut f = super::hardware::overhead_figure();
    f.id = "scale_overhead".into();
    out.figures.push(f);
    Ok(())
}

/// ΔL against Qb per format (the largest model, the largest Qr) and against N per format (the
/// slice's Qb): every low format of the slice's granularity, high format and family. Returns
/// the largest model's N.
fn format_figures(
    summary: &[ConfigSummary],
    slice: &StoreSlice,
    family: Option<&str>,
    qb: &str,
    stat: &str,
    out: &mut Gallery,
) -> f64 {
    // ΔL vs Qb per format (all low formats of the granularity/high/family), largest model,
    // largest Qr.
    let wide: Vec<&ConfigSummary> = summary
        .iter()
        .filter(|c| {
            c.granularity == slice.granularity
                && c.high == slice.high
                && family.is_none_or(|f| super::laws::family_of(c) == f)
        })
        .collect();
    let qr_max = wide.iter().map(|c| c.qr_target).fold(0.0, f64::max);
    let (big, big_n) = models_by_n(&wide).last().cloned().unwrap_or_default();
    // The low format's name without its spelled options (`mxint4,block=16` → `mxint4`).
    let base = |c: &ConfigSummary| c.low.split(',').next().unwrap_or("").to_string();
    let mut lows: Vec<String> = Vec::new();
    for c in &wide {
        if !lows.contains(&base(c)) {
            lows.push(base(c));
        }
    }
    let mut f = Figure::new(
        "delta_vs_qb",
        &format!(
            "ΔL vs block size per format · {} · N = {} · Qr {qr_max:.1} ({stat}; per-channel not shown)",
            slice.granularity,
            human(big_n)
        ),
        "Qb (block size, elements)",
        "ΔL (nats/token)",
    );
    f.x_log = true;
    f.x_base2 = true;
    f.y_log = true;
    let mut any_qb = false;
    for (i, low) in lows.iter().enumerate() {
        let mut pts: Vec<(f64, &ConfigSummary)> = wide
            .iter()
            .filter(|c| &base(c) == low && c.model == big && c.qr_target == qr_max)
            .filter(|c| c.qb.is_finite() && c.qb > 0.0)
            .map(|c| (c.qb.log10(), *c))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        any_qb |= pts.len() >= 2;
        push_means(&mut f, low, colour(i), &pts);
    }
    if any_qb {
        out.figures.push(f);
    } else {
        out.skipped.push((
            "delta_vs_qb".into(),
            "no format was measured at two or more block sizes".into(),
        ));
    }

    // ΔL vs N per format at the largest Qr and the slice's Qb.
    let mut f = Figure::new(
        "delta_vs_n",
        &format!(
            "ΔL vs N per format · {} · Qb {qb} · Qr {qr_max:.1} ({stat})",
            slice.granularity
        ),
        "N (non-embedding parameters)",
        "ΔL (nats/token)",
    );
    f.x_log = true;
    f.y_log = true;
    for (i, low) in lows.iter().enumerate() {
        let mut pts: Vec<(f64, &ConfigSummary)> = wide
            .iter()
            .filter(|c| &base(c) == low && c.qb_spec == qb && c.qr_target == qr_max)
            .filter_map(|c| c.n_params.map(|n| ((n as f64).log10(), *c)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        push_means(&mut f, low, colour(i), &pts);
    }
    out.figures.push(f);

    big_n
}

/// The map title's note naming the parameters the fit flags as not results (at a bound, a CI
/// reaching a bound, or a CI over most of the range: `laws::diagnose::parameter_flags`).
fn at_bound_note(report: &crate::laws::FitReport) -> String {
    let mut names: Vec<&str> = report
        .flags
        .iter()
        .filter(|f| matches!(f.kind.as_str(), "at_bound" | "ci_at_bound" | "unidentified"))
        .filter_map(|f| f.param.as_deref())
        .collect();
    names.dedup();
    if names.is_empty() {
        String::new()
    } else {
        format!(
            " · {} not identified (at or reaching a bound)",
            names.join(", ")
        )
    }
}
