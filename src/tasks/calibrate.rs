//! Quantizing a loaded model's linear layers for a task: RTN/HQQ need no data; GPTQ and AWQ
//! calibrate on [`CalibSettings::text`] (a bundled split or a file), which must not be the text
//! the result is evaluated on.

use serde::{Deserialize, Serialize};

use crate::codecs::{ErrorStats, Format, Method};
use crate::error::{Error, Result};
use crate::eval::windows::{make_windows, WindowSpec};
use crate::jobs::JobCtx;
use crate::model::calibrated::{
    quantize_calibrated, CalibReport, DEFAULT_CALIB_CTX, DEFAULT_CALIB_WINDOWS,
};
use crate::model::quantized::Overrides;
use crate::model::{Tokenizer, Transformer};

/// Calibration data of GPTQ and AWQ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibSettings {
    /// A file, or a bundled split (`calib`, `train`, `eval_austen`, `eval_kjv`).
    pub text: String,
    /// Calibration windows.
    pub windows: usize,
    /// Tokens per window, BOS included (capped at the model's maximum).
    pub ctx: usize,
    /// Seed of the window choice.
    pub seed: u64,
}

impl Default for CalibSettings {
    fn default() -> Self {
        Self {
            text: "calib".into(),
            windows: DEFAULT_CALIB_WINDOWS,
            ctx: DEFAULT_CALIB_CTX,
            seed: 0,
        }
    }
}

/// Quantizes every linear layer of `model` with `format` and `method` (stage `method id`, one
/// unit per layer). `eval_label` names the evaluation text, which calibration must not use.
pub fn quantize_model(
    model: &Transformer,
    tok: &Tokenizer,
    format: &Format,
    method: &Method,
    calib: &CalibSettings,
    eval_label: Option<&str>,
    ctx: &JobCtx,
) -> Result<(Overrides, Vec<ErrorStats>, CalibReport)> {
    let mut ids = Vec::new();
    let mut n_ctx = 0;
    if method.needs_calibration() {
        crate::limits::WINDOWS
            .named("--calib-windows")
            .check(calib.windows)?;
        let (text, label) = crate::eval::corpus::load_named(&calib.text)?;
        if eval_label == Some(label.as_str()) {
            return Err(Error::Input(format!(
                "--calib and --data are the same text ({label}): calibrate on held-apart text"
            )));
        }
        n_ctx = calib.ctx.min(model.config.max_positions);
        let tokens = tok.encode(&text)?;
        let spec = WindowSpec {
            ctx: n_ctx,
            stride: None,
            n_windows: calib.windows,
            seed: calib.seed,
        };
        ids = make_windows(&tokens, tok.bos, &spec, &label)?.ids;
    }
    let stage = method.id().to_string();
    ctx.report(&stage, 0, model.linears.len());
    let out = quantize_calibrated(model, &ids, n_ctx, format, method, &mut |done, total| {
        ctx.report(&stage, done, total);
        !ctx.cancelled()
    })?;
    ctx.check()?;
    Ok(out)
}
