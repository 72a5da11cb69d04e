//! `quantscape figures`: the standard figures of a results store as paper figures (SVG with the
//! heatmap as one image and a colour bar, PNG at a chosen DPI, the plotted data as CSV), drawn by
//! [`quantscape::figures::gallery`] with the explorer's own figure code, no display needed.
//!
//! Everything is drawn in memory first; nothing is written when drawing fails, and no existing
//! file is replaced without `--force`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use quantscape::figures::gallery::{gallery, GalleryRequest};
use quantscape::figures::{raster, svg};

/// Arguments of `figures`.
#[derive(clap::Args, Debug)]
pub struct FiguresArgs {
    /// A sweep's results store (`assets/demo/demo.sqlite`).
    pub results: PathBuf,
    /// Output folder (created when missing).
    #[arg(long)]
    pub out: PathBuf,
    /// File kinds to write (comma list of svg, png, csv).
    #[arg(long, value_delimiter = ',', default_value = "svg,png")]
    pub format: Vec<String>,
    /// Page size in CSS pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "860x540")]
    pub size: String,
    /// PNG resolution (96: one pixel per CSS pixel).
    #[arg(long, default_value_t = 150.0)]
    pub dpi: f64,
    /// Reference model of the Pareto figure's ε (as `quantscape pareto --reference`).
    #[arg(long)]
    pub reference: Option<String>,
    /// Target N of the Pareto figure (default: the store's largest model).
    #[arg(long)]
    pub n: Option<f64>,
    /// Bootstrap resamples of the fits.
    #[arg(long, default_value_t = 200)]
    pub bootstrap: usize,
    /// Replace files that already exist.
    #[arg(long)]
    pub force: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_size(s: &str) -> anyhow::Result<[f64; 2]> {
    let (w, h) = s
        .split_once(['x', 'X', '×'])
        .with_context(|| format!("--size {s:?}: expected WIDTHxHEIGHT, e.g. 860x540"))?;
    let w: f64 = w
        .trim()
        .parse()
        .with_context(|| format!("--size {s:?}: width"))?;
    let h: f64 = h
        .trim()
        .parse()
        .with_context(|| format!("--size {s:?}: height"))?;
    Ok([w, h])
}

/// Draws and writes the gallery.
pub fn run(a: &FiguresArgs) -> anyhow::Result<ExitCode> {
    let size = parse_size(&a.size)?;
    if !(size.iter().all(|v| v.is_finite()) && size[0] >= 320.0 && size[1] >= 240.0)
        || size[0] > 20_000.0
        || size[1] > 20_000.0
    {
        bail!("--size {}: expected 320x240 … 20000x20000", a.size);
    }
    if !(a.dpi.is_finite() && (24.0..=1200.0).contains(&a.dpi)) {
        bail!("--dpi {}: expected 24 … 1200", a.dpi);
    }
    for k in &a.format {
        if !["svg", "png", "csv"].contains(&k.as_str()) {
            bail!("--format {k:?}: expected svg, png or csv");
        }
    }
    if a.format.is_empty() {
        bail!("--format: name at least one of svg, png, csv");
    }
    if !a.results.is_file() {
        bail!("{}: no such results store", a.results.display());
    }
    quantscape::limits::FIT_BOOTSTRAP.check(a.bootstrap)?;
    let mut req = GalleryRequest::new(a.results.clone());
    req.reference = a.reference.clone();
    req.target_n = a.n;
    req.bootstrap = a.bootstrap;
    let g = super::run_task(a.quiet, |_| "steps", |ctx| gallery(&req, ctx))
        .with_context(|| format!("drawing the figures of {}", a.results.display()))?;
    // Every file in memory before the first is written.
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for f in &g.figures {
        for k in &a.format {
            let bytes = match k.as_str() {
                "svg" => svg::figure_svg_sized(f, size)?.into_bytes(),
                "png" => raster::figure_png(f, size, a.dpi)?,
                _ => svg::figure_csv(f).into_bytes(),
            };
            files.push((a.out.join(format!("{}.{k}", f.id)), bytes));
        }
    }
    if !a.force {
        if let Some((p, _)) = files.iter().find(|(p, _)| p.exists()) {
            bail!("{} exists; pass --force to replace it", p.display());
        }
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    // Every file is written before anything is printed: a closed stdout (`| head`) must not
    // stop the gallery half-written.
    for (p, bytes) in &files {
        quantscape::io::write_atomic(p, bytes)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    for (p, bytes) in &files {
        outln!("{} ({} KB)", p.display(), bytes.len().div_ceil(1024));
    }
    for (id, why) in &g.skipped {
        outln!("left out {id}: {why}");
    }
    Ok(ExitCode::SUCCESS)
}
