//! Text sources and calibration for `quantize` and `eval`: a text argument is a file path or the
//! name of a bundled corpus split (`train`, `eval_austen`, `eval_kjv`, `calib`); `--method gptq`
//! / `awq` calibrate on `--calib` (default: the bundled calibration split) (the task layer's
//! [`quantscape::tasks::calibrate`] does the work).

use quantscape::model::calibrated::{DEFAULT_CALIB_CTX, DEFAULT_CALIB_WINDOWS};
use quantscape::tasks::calibrate::CalibSettings;

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

impl CalibArgs {
    /// The calibration settings of a task request.
    pub fn settings(&self) -> CalibSettings {
        CalibSettings {
            text: self.calib.clone(),
            windows: self.calib_windows,
            ctx: self.calib_ctx,
            seed: self.calib_seed,
        }
    }
}
