//! Text sources and calibration for `quantize` and `eval`: a text argument is a file path or the
//! name of a bundled corpus split (`train`, `eval_austen`, `eval_kjv`, `calib`); `--method gptq`
//! / `awq` calibrate on `--calib` (default: the bundled calibration split) with a progress bar.

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use quantscape::codecs::{ErrorStats, Format, Method};
use quantscape::eval::corpus;
use quantscape::eval::windows::{make_windows, WindowSpec};
use quantscape::model::calibrated::{
    quantize_calibrated, CalibReport, DEFAULT_CALIB_CTX, DEFAULT_CALIB_WINDOWS,
};
use quantscape::model::quantized::Overrides;
use quantscape::model::{Tokenizer, Transformer};

/// Calibration options (used by `--method gptq` and `--method awq`).
#[derive(clap::Args, Debug)]
pub struct CalibArgs {
    /// Calibration text: a file, or a bundled split (`calib`, `train`, `eval_austen`, `eval_kjv`).
    #[arg(long, default_value = "calib")]
    pub calib: String,
    /// Calibration windows.
    #[arg(long, default_value_t = DEFAULT_CALIB_WINDOWS)]
    pub calib_windows: usize,
    /// Tokens per calibration window, BOS included (capped at the model's maximum).
    #[arg(long, default_value_t = DEFAULT_CALIB_CTX)]
    pub calib_ctx: usize,
    /// Seed of the calibration window choice.
    #[arg(long, default_value_t = 0)]
    pub calib_seed: u64,
}

/// Reads `spec`: an existing file, else a bundled split name. Returns the text and a label.
pub fn load_text(spec: &str) -> anyhow::Result<(String, String)> {
    Ok(corpus::load_named(spec)?)
}

/// Quantizes every linear layer of `model`: calibrated methods read `--calib`, the others need
/// no data. `eval_label` (the evaluation text) must not be the calibration text.
pub fn quantize_model(
    model: &Transformer,
    tok: &Tokenizer,
    format: &Format,
    method: &Method,
    a: &CalibArgs,
    eval_label: Option<&str>,
    quiet: bool,
) -> anyhow::Result<(Overrides, Vec<ErrorStats>, CalibReport)> {
    let mut ids = Vec::new();
    let mut ctx = 0;
    if method.needs_calibration() {
        quantscape::limits::WINDOWS
            .named("--calib-windows")
            .check(a.calib_windows)?;
        let (text, label) = load_text(&a.calib).context("--calib")?;
        if eval_label == Some(label.as_str()) {
            bail!("--calib and --data are the same text ({label}): calibrate on held-apart text");
        }
        ctx = a.calib_ctx.min(model.config.max_positions);
        let tokens = tok.encode(&text)?;
        let spec = WindowSpec {
            ctx,
            stride: None,
            n_windows: a.calib_windows,
            seed: a.calib_seed,
        };
        ids = make_windows(&tokens, tok.bos, &spec, &label)?.ids;
    }
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(model.linears.len() as u64)
    };
    if let Ok(s) = ProgressStyle::with_template(
        "{msg:>10} [{bar:30}] {pos}/{len} layers {elapsed} (eta {eta})",
    ) {
        bar.set_style(s.progress_chars("=> "));
    }
    bar.set_message(method.id().to_string());
    let out = quantize_calibrated(model, &ids, ctx, format, method, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        true
    })?;
    bar.finish_and_clear();
    Ok(out)
}
