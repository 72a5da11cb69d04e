//! The Hardware view's figures and tables, computed from the format-aware law's report
//! ([`crate::tasks::pareto`]) with no drawing: bits per weight against predicted ΔL with 95 %
//! bands and the Pareto front, scale overhead against block size, the Pareto table and the memory
//! footprint of 7B/70B/405B models.
//!
//! Bits per weight = Qr·bpw_low(Qb) + (1 − Qr)·16 (the rest kept in bf16), where bpw_low(Qb) =
//! element bits + (scale bits + zero bits)/Qb ([`crate::codecs::Format::bits_per_weight_at`]).

use super::svg::value_text;
use super::{colour, human, Figure, Label, Mark};
use crate::codecs::Format;
use crate::search::export::ConfigSummary;
use crate::tasks::pareto::{self, ParetoReport, ParetoRow, Prepared};

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
    // The top right holds the fewest points (the measured ones sit below the front there).
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
    // A hover on a point names its block size and ΔL with the band.
    for c in r.rows.iter().filter(|c| c.delta_loss > 0.0) {
        let band =
            c.ci.map(|[lo, hi]| format!(" [{}, {}]", value_text(lo), value_text(hi)))
                .unwrap_or_default();
        f.notes.push((
            pt(c),
            format!(
                "{} Qb {} · ΔL {}{band}{}",
                c.format,
                c.qb,
                value_text(c.delta_loss),
                if c.pareto { " · on the front" } else { "" }
            ),
        ));
    }
    // Front points labelled `format Qb`, skipping a label that would sit on one already placed
    // (within 20 % of the x range and 5 % of the y range, about a label's size on the page):
    // neighbours on the front are read off the table.
    let all: Vec<[f64; 2]> = r
        .rows
        .iter()
        .filter(|c| c.delta_loss > 0.0)
        .map(pt)
        .collect();
    let span = |k: usize| {
        let (lo, hi) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p[k]), b.max(p[k]))
            });
        (hi - lo).max(1e-9)
    };
    let (min_dx, min_dy) = (0.2 * span(0), 0.05 * span(1));
    let mut placed: Vec<[f64; 2]> = Vec::new();
    for c in front.iter().filter(|c| c.delta_loss > 0.0) {
        let at = pt(c);
        if placed
            .iter()
            .any(|p| (p[0] - at[0]).abs() < min_dx && (p[1] - at[1]).abs() < min_dy)
        {
            continue;
        }
        placed.push(at);
        f.labels.push(Label {
            at,
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

/// Scale (and zero-point) overhead in bits per weight against Qb, one line per distinct
/// overhead: formats whose scale and zero point cost the same bits (MXFP4, MXINT8, MXFP6 and
/// NVFP4 all pay 8 bits per block) share one line named after all of them, so no line hides
/// another.
pub fn overhead_figure() -> Figure {
    let mut f = Figure::new(
        "hardware_overhead",
        "Scale overhead against block size",
        "Qb (block size, elements)",
        "overhead (bits per weight)",
    );
    f.x_log = true;
    f.x_base2 = true;
    let mut lines: Vec<(Vec<&str>, Vec<[f64; 2]>)> = Vec::new();
    for name in FORMATS {
        let Some(fmt) = Format::preset(name) else {
            continue;
        };
        let elem = f64::from(fmt.element.bits());
        let pts: Vec<[f64; 2]> = (2..=10)
            .map(|k| {
                let qb = 1usize << k;
                [(qb as f64).log10(), fmt.bits_per_weight_at(qb) - elem]
            })
            .collect();
        match lines
            .iter_mut()
            .find(|(_, p)| p.iter().zip(&pts).all(|(a, b)| (a[1] - b[1]).abs() < 1e-9))
        {
            Some((names, _)) => names.push(name),
            None => lines.push((vec![name], pts)),
        }
    }
    for (i, (names, pts)) in lines.into_iter().enumerate() {
        f.push(&names.join(", "), Mark::Line(2.0), colour(i), pts);
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
