//! `quantscape landscape`: the held-out loss along the quantization direction (W_q − W) and
//! along filter-normalised random directions, 1-D or 2-D, written to a JSON file the explorer
//! reads. `--direction quant:mxfp4:32` puts the base model at t = 0 and the quantized one at
//! t = 1 exactly; `--direction2 random:0` adds a second axis.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::eval::Evaluator;
use quantscape::landscape::{build, linear_weights, slice, steps, DirectionSpec, Slice};
use quantscape::model::tokenizer::Tokenizer;
use quantscape::model::{hub, Transformer};

/// Arguments of `landscape`.
#[derive(clap::Args, Debug)]
pub struct LandscapeArgs {
    /// Model folder, `org/name` in the local Hugging Face cache, or a llama `.gguf` file.
    #[arg(long)]
    pub model: String,
    /// First direction: `quant:FORMAT[:QB[:METHOD]]` or `random:SEED`.
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
    /// Held-out text: a bundled split name or a file.
    #[arg(long, default_value = "eval_austen")]
    pub data: String,
    /// Windows per point.
    #[arg(long, default_value_t = 16)]
    pub windows: usize,
    /// Tokens per window.
    #[arg(long, default_value_t = 128)]
    pub ctx: usize,
    /// Window seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
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
    let d1spec = DirectionSpec::parse(&a.direction)?;
    let d2spec = a
        .direction2
        .as_deref()
        .map(DirectionSpec::parse)
        .transpose()?;
    let (lo, hi) = range(&a.range, "--range")?;
    let (lo2, hi2) = range(a.range2.as_deref().unwrap_or(&a.range), "--range2")?;
    let dir = hub::resolve(&a.model)?;
    let model = Transformer::load(&dir)?;
    let tok = Tokenizer::load(&dir)?;
    let (text, label) = super::calib::load_text(&a.data).context("--data")?;
    let spec = WindowSpec {
        ctx: a.ctx.min(model.config.max_positions),
        stride: None,
        n_windows: a.windows,
        seed: a.seed,
    };
    let windows = make_windows(&tok.encode(&text)?, tok.bos, &spec, &label)?;
    let ev = Evaluator::new(&model, &windows)?;
    let weights = linear_weights(&model)?;
    let d1 = build(&model, &weights, &d1spec)?;
    let d2 = d2spec
        .as_ref()
        .map(|s| build(&model, &weights, s))
        .transpose()?;
    let alpha = steps(lo, hi, a.grid);
    let beta = if d2.is_some() {
        steps(lo2, hi2, a.grid)
    } else {
        Vec::new()
    };
    let nll_base = ev.nll_mean(&quantscape::model::NoHooks, &mut |_, _| true)?;
    let bar = super::bar(a.quiet, "landscape", "points");
    let values = slice(
        &model,
        &ev,
        &weights,
        (&d1, d2.as_ref()),
        (&alpha, &beta),
        &mut |d, n| {
            bar.set_length(n as u64);
            bar.set_position(d as u64);
            true
        },
    )?;
    bar.finish_and_clear();
    let mut norms = vec![d1.norm];
    norms.extend(d2.as_ref().map(|d| d.norm));
    let s = Slice {
        direction1: a.direction.clone(),
        direction2: a.direction2.clone(),
        norms,
        alpha: alpha.clone(),
        beta,
        values: values.clone(),
        nll_base,
        n_windows: windows.len(),
        ctx: windows.ctx,
    };
    quantscape::io::write_atomic(&a.out, serde_json::to_string_pretty(&s)?.as_bytes())?;
    outln!(
        "{} ({}), {} windows × {} tokens of {label}; base NLL {nll_base:.5}",
        dir.display(),
        model.config.architecture,
        windows.len(),
        windows.ctx
    );
    outln!(
        "‖d1‖ = {:.4e} ({}){}",
        d1.norm,
        a.direction,
        d2.as_ref()
            .map_or(String::new(), |d| format!(", ‖d2‖ = {:.4e}", d.norm))
    );
    if s.beta.is_empty() {
        outln!("{:>9}  {:>10}  {:>10}", "t", "NLL", "ΔL");
        for (t, v) in alpha.iter().zip(&values) {
            outln!("{t:>9.4}  {v:>10.5}  {:>+10.5}", v - nll_base);
        }
    } else {
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        outln!(
            "{} × {} grid, NLL from {min:.5} to {max:.5}",
            alpha.len(),
            s.beta.len()
        );
    }
    outln!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
