//! `quantscape landscape`: the held-out loss along the quantization direction (W_q − W) and
//! along filter-normalised random directions, 1-D or 2-D, written to a JSON file the explorer
//! reads. `--direction quant:mxfp4:32` puts the base model at t = 0 and the quantized one at
//! t = 1 exactly; `--direction2 random:0` adds a second axis.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use quantscape::landscape::{compute, DirectionSpec, Request};
use quantscape::model::hub;

/// Arguments of `landscape`.
#[derive(clap::Args, Debug)]
pub struct LandscapeArgs {
    /// Model folder, `org/name` in the local Hugging Face cache, or a llama `.gguf` file.
    #[arg(long)]
    pub model: String,
    /// First direction: `quant:FORMAT[:QB[:METHOD]]`, `random:SEED` or `hessian[:SEED]` (top
    /// Hessian eigenvector of the sliced loss, scaled to ‖W‖).
    #[arg(long, default_value = "quant:mxfp4:32")]
    pub direction: String,
    /// Second direction for a 2-D slice.
    #[arg(long)]
    pub direction2: Option<String>,
    /// Points per axis (0 and 1 are always added when inside the range).
    #[arg(long, default_value_t = 21)]
    pub grid: usize,
    /// Range along the first direction: `LO,HI`.
    #[arg(long, default_value = "-1.5,1.5")]
    pub range: String,
    /// Range along the second direction: `LO,HI` (default: the first range).
    #[arg(long)]
    pub range2: Option<String>,
    #[command(flatten)]
    pub held_out: super::heldout::HeldOutArgs,
    #[command(flatten)]
    pub sites: super::heldout::SitesArgs,
    /// Adaptive refinement of a 1-D slice next to t = 0 and t = 1: at most this many halvings
    /// of the intervals there, where the loss departs from a straight line (0 = none).
    #[arg(long, default_value_t = 3)]
    pub refine: usize,
    /// Mark where these codecs land along a quant direction: block sizes of its format (`64`)
    /// or other formats (`nvfp4`, `int4_asym:64`).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    pub mark: Vec<String>,
    /// Output JSON file.
    #[arg(long)]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn range(s: &str, what: &str) -> anyhow::Result<(f64, f64)> {
    let parse = |v: &str| v.trim().parse::<f64>().ok().filter(|x| x.is_finite());
    match s
        .split_once(',')
        .and_then(|(a, b)| Some((parse(a)?, parse(b)?)))
    {
        Some((lo, hi)) if lo < hi => Ok((lo, hi)),
        _ => bail!("{what} `{s}`: expected LO,HI with LO < HI"),
    }
}

/// Runs the command.
pub fn run(a: &LandscapeArgs) -> anyhow::Result<ExitCode> {
    quantscape::limits::GRID.check(a.grid)?;
    DirectionSpec::parse(&a.direction)?;
    a.direction2
        .as_deref()
        .map(DirectionSpec::parse)
        .transpose()?;
    let range1 = range(&a.range, "--range")?;
    let range2 = range(a.range2.as_deref().unwrap_or(&a.range), "--range2")?;
    let dir = hub::resolve(&a.model)?;
    let req = Request {
        direction1: a.direction.clone(),
        direction2: a.direction2.clone(),
        range1,
        range2,
        grid: a.grid,
        data: a.held_out.data.clone(),
        windows: a.held_out.windows,
        ctx: a.held_out.ctx,
        seed: a.held_out.seed,
        marks: a.mark.clone(),
        sites: a.sites.filter()?,
        refine_levels: if a.direction2.is_some() { 0 } else { a.refine },
    };
    let bar = super::bar(a.quiet, "landscape", "points");
    let s = compute(&dir, &req, &mut |d, n| {
        bar.set_length(n as u64);
        bar.set_position(d as u64);
        true
    })?;
    bar.finish_and_clear();
    quantscape::io::write_atomic(&a.out, serde_json::to_string_pretty(&s)?.as_bytes())?;
    outln!(
        "{}: {} windows × {} tokens of {}; base NLL {:.5}",
        dir.display(),
        s.n_windows,
        s.ctx,
        a.held_out.data,
        s.nll_base
    );
    let norms: Vec<String> = s.norms.iter().map(|n| format!("{n:.4e}")).collect();
    outln!(
        "‖d‖ = {} ({}{})",
        norms.join(", "),
        a.direction,
        a.direction2
            .as_deref()
            .map_or(String::new(), |d| format!(", {d}"))
    );
    outln!("sites {}", s.sites);
    for (name, l) in [Some(&a.direction), a.direction2.as_ref()]
        .into_iter()
        .zip(&s.eigenvalues)
    {
        if let (Some(name), Some(l)) = (name, l) {
            outln!("{name}: top Hessian eigenvalue λ = {l:.4e}");
        }
    }
    if s.beta.is_empty() {
        outln!("{:>9}  {:>10}  {:>10}", "t", "NLL", "ΔL");
        for (t, v) in s.alpha.iter().zip(&s.values) {
            outln!("{t:>9.4}  {v:>10.5}  {:>+10.5}", v - s.nll_base);
        }
    } else {
        let (min, max) = s
            .values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(x, y), v| {
                (x.min(*v), y.max(*v))
            });
        outln!(
            "{} × {} grid, NLL from {min:.5} to {max:.5}",
            s.alpha.len(),
            s.beta.len()
        );
    }
    for (label, t) in &s.marks {
        outln!("{label} lands at t = {t:.4} along this direction");
    }
    outln!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
